package merge

import (
	"fmt"
	"testing"
)

// BenchmarkPassThrough is plain fan-out without ORDER BY: one op is one row in and out.
func BenchmarkPassThrough(b *testing.B) {
	desc := rowDesc(fd{"aid", oidInt4, 0}, fd{"abalance", oidInt4, 0}, fd{"filler", oidBpchar, 0})
	spec := &Spec{Values: cols0(3), Visible: 3}
	msgs := make([][]byte, 64)
	for i := range msgs {
		msgs[i] = dataRow(fmt.Sprint(i), "0", "                                                                                    ")
	}
	m := New(spec, 3, noLimit)
	var out []byte
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if i%1024 == 0 {
			m.Reset(spec, 3, noLimit)
			for s := 0; s < 3; s++ {
				m.Describe(s, desc)
			}
		}
		if err := m.Row(i%3, msgs[i%len(msgs)]); err != nil {
			b.Fatal(err)
		}
		if i%16 == 0 {
			out, _ = m.Emit(out[:0])
		}
	}
}

// BenchmarkPassThroughHidden drops a hidden column (the row is re-encoded).
func BenchmarkPassThroughHidden(b *testing.B) {
	desc := rowDesc(fd{"aid", oidInt4, 0}, fd{"abalance", oidInt4, 0}, fd{"hidden", oidInt8, 0})
	spec := &Spec{Values: cols0(3), Visible: 2}
	msg := dataRow("12345", "-17", "99")
	m := New(spec, 3, noLimit)
	for s := 0; s < 3; s++ {
		m.Describe(s, desc)
	}
	var out []byte
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := m.Row(i%3, msg); err != nil {
			b.Fatal(err)
		}
		if i%16 == 0 {
			out, _ = m.Emit(out[:0])
		}
	}
}

func benchOrdered(b *testing.B, desc []byte, order []SortKey, row func(i int) []byte) {
	const k = 3
	spec := &Spec{Values: cols0(3), Visible: 3, Order: order}
	const n = 3000 // rows per shard and execution
	msgs := make([][][]byte, k)
	for s := range msgs {
		for i := 0; i < n; i++ {
			msgs[s] = append(msgs[s], row(i*k+s))
		}
	}
	m := New(spec, k, noLimit)
	var out []byte
	b.ReportAllocs()
	b.ResetTimer()
	for done := 0; done < b.N; {
		m.Reset(spec, k, noLimit)
		for s := 0; s < k; s++ {
			if err := m.Describe(s, desc); err != nil {
				b.Fatal(err)
			}
		}
		// Rows arrive in bursts of 8 per shard, as reads off sockets do.
		for i := 0; i < n && done < b.N; i += 8 {
			for s := 0; s < k; s++ {
				for j := i; j < i+8 && j < n; j++ {
					if err := m.Row(s, msgs[s][j]); err != nil {
						b.Fatal(err)
					}
					done++
				}
				var err error
				if out, err = m.Emit(out[:0]); err != nil {
					b.Fatal(err)
				}
			}
		}
		for s := 0; s < k; s++ {
			m.End(s)
		}
		out, _ = m.Emit(out[:0])
	}
}

// BenchmarkOrderedMerge3 is a 3-way merge on a bigint key in text form: one op is one row.
func BenchmarkOrderedMerge3(b *testing.B) {
	desc := rowDesc(fd{"aid", oidInt8, 0}, fd{"abalance", oidInt4, 0}, fd{"name", oidText, 0})
	benchOrdered(b, desc, []SortKey{{Value: 0}}, func(i int) []byte { return dataRow(fmt.Sprint(i), "0", "some text value") })
}

// BenchmarkOrderedMerge3Binary merges on (numeric DESC, timestamptz) in binary form.
func BenchmarkOrderedMerge3Binary(b *testing.B) {
	desc := rowDesc(fd{"n", oidNumeric, 1}, fd{"ts", oidTimestamptz, 1}, fd{"name", oidText, 1})
	benchOrdered(b, desc, []SortKey{{Value: 0, Desc: true}, {Value: 1}}, func(i int) []byte {
		return dataRow(numBin(b, fmt.Sprintf("%d.%02d", 1000000-i/7, i%100)), int8Bin(int64(i)*1000), "some text value")
	})
}

// BenchmarkOrderedMerge3Text merges on (numeric, float8, text) in text form.
func BenchmarkOrderedMerge3Text(b *testing.B) {
	desc := rowDesc(fd{"n", oidNumeric, 0}, fd{"f", oidFloat8, 0}, fd{"name", oidText, 0})
	benchOrdered(b, desc, []SortKey{{Value: 0}, {Value: 1}, {Value: 2}}, func(i int) []byte {
		return dataRow(fmt.Sprintf("%d.%02d", i/5, i%3), fmt.Sprint(float64(i%7)/3), fmt.Sprintf("name %d", i))
	})
}

// BenchmarkGroupBy combines 3 shards' partial count/sum per group over 1000 groups.
func BenchmarkGroupBy(b *testing.B) {
	desc := rowDesc(fd{"g", oidInt4, 0}, fd{"count", oidInt8, 0}, fd{"sum", oidNumeric, 0})
	spec := &Spec{Aggregate: true, Group: []int{0}, Visible: 3, Values: vals(Value{Col: 0}, Value{Agg: AggCount, Col: 1}, Value{Agg: AggSum, Col: 2})}
	const groups = 1000
	msgs := make([][]byte, groups)
	for i := range msgs {
		msgs[i] = dataRow(fmt.Sprint(i), "3", fmt.Sprintf("%d.5", i))
	}
	m := New(spec, 3, noLimit)
	var out []byte
	b.ReportAllocs()
	b.ResetTimer()
	for done := 0; done < b.N; {
		m.Reset(spec, 3, noLimit)
		for s := 0; s < 3; s++ {
			m.Describe(s, desc)
			for _, msg := range msgs {
				if err := m.Row(s, msg); err != nil {
					b.Fatal(err)
				}
				done++
			}
			m.End(s)
		}
		out, _ = m.Emit(out[:0])
	}
}
