package merge

import (
	"bytes"
	"encoding/binary"
	"math"
	"strconv"
	"testing"
	"time"

	"github.com/pgshard/pgshard/codec"
)

// Fuzz targets for everything the merger reads from servers. Bad input must give an error, never a panic.
//
//	go test -run XXX -fuzz FuzzMergerRows ./merge/

// fuzzSpecs are the shapes FuzzMergerRows runs, over the columns of fuzzDesc.
var fuzzSpecs = []*Spec{
	{Values: cols0(3), Visible: 3},
	{Values: cols0(3), Visible: 2, Distinct: true},
	{Values: cols0(3), Visible: 3, Order: []SortKey{{Value: 0}, {Value: 1, Desc: true}}},
	{Values: cols0(3), Visible: 3, Order: []SortKey{{Value: 2, NullsFirst: true}}, DistinctOn: []int{2}},
	{Aggregate: true, Group: []int{2}, Visible: 4, Values: vals(Value{Col: 2}, Value{Agg: AggSum, Col: 0}, Value{Agg: AggAvg, Col: 1, Col2: 0},
		Value{Agg: AggMax, Col: 1}), Order: []SortKey{{Value: 3}}, Having: &Cond{Op: CondCmp, Cmp: CmpGt, L: Operand{Value: 1, Const: -1}, R: Operand{Value: -1, Const: 0}}},
	{Aggregate: true, Visible: 2, Values: vals(Value{Agg: AggStringAgg, Col: 2, Col2: 2}, Value{Agg: AggArrayAgg, Col: 2})},
}

// fuzzDescs: (int8, numeric, text) in text form and in binary form.
var fuzzDescs = [][]byte{
	rowDesc(fd{"a", oidInt8, 0}, fd{"b", oidNumeric, 0}, fd{"c", oidText, 0}),
	rowDesc(fd{"a", oidInt8, 1}, fd{"b", oidNumeric, 1}, fd{"c", oidText, 1}),
	rowDesc(fd{"a", oidInt8, 0}, fd{"b", oidTimestamptz, 0}, fd{"c", oidBytea, 0}),
}

// FuzzMergerRows feeds a stream of messages to a merger: data[0] picks the spec and description, then each
// message is shard byte, a two-byte length and that many bytes of DataRow body (or, with the top bit of the
// shard byte, an End).
func FuzzMergerRows(f *testing.F) {
	f.Add([]byte{0, 0, 0, 0x12, 0, 3, 0, 0, 0, 1, '1', 0, 0, 0, 3, '1', '.', '5', 0, 0, 0, 1, 'x'})
	f.Add([]byte{2, 1, 0, 0x12, 0, 3, 0, 0, 0, 1, '7', 0, 0, 0, 3, '2', '.', '5', 0, 0, 0, 1, 'y', 0x80, 0x81})
	f.Add(append([]byte{4 * 3, 0, 0, 0x12}, dataRow("1", "2024-01-02 03:04:05+01", `\x01`)[5:]...))
	f.Add(append([]byte{5*3 + 2, 1, 0, 0x12}, dataRow("1", "infinity", `\x01`)[5:]...))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 {
			return
		}
		spec := fuzzSpecs[int(data[0]/3)%len(fuzzSpecs)]
		desc := fuzzDescs[int(data[0])%3]
		const k = 3
		m := New(spec, k, Args{Limit: int64(data[0]%7) - 1, Offset: int64(data[0] % 2), Consts: [][]byte{[]byte("1")}})
		var out []byte
		for s := 0; s < k; s++ {
			if err := m.Describe(s, desc); err != nil {
				return // an unsupported combination: fine
			}
		}
		data = data[1:]
		for len(data) >= 3 {
			shard := int(data[0] & 0x7f % k)
			if data[0]&0x80 != 0 {
				m.End(shard)
				data = data[1:]
				continue
			}
			n := int(binary.BigEndian.Uint16(data[1:]))
			data = data[3:]
			if n > len(data) {
				n = len(data)
			}
			msg := append([]byte{codec.DataRow, 0, 0, 0, 0}, data[:n]...)
			codec.FinishMessage(msg, 0)
			data = data[n:]
			if err := m.Row(shard, msg); err != nil {
				checkError(t, err)
				return
			}
			var err error
			if out, err = m.Emit(out); err != nil {
				checkError(t, err)
				return
			}
			_ = m.Queued(shard)
		}
		for s := 0; s < k; s++ {
			m.End(s)
		}
		var err error
		if out, err = m.Emit(out); err != nil {
			checkError(t, err)
			return
		}
		for len(out) > 0 { // what is emitted is well-formed
			msg, n, err := codec.ReadMessage(out, 0)
			if err != nil || n == 0 || msg.Type != codec.DataRow {
				t.Fatalf("emitted a bad message: %v", err)
			}
			dr, err := codec.ParseDataRow(msg.Body)
			if err != nil || dr.NumColumns() != spec.Visible {
				t.Fatalf("emitted a bad row: %v", err)
			}
			if _, err := dr.Columns(nil); err != nil {
				t.Fatal(err)
			}
			out = out[n:]
		}
	})
}

func checkError(t *testing.T, err error) {
	t.Helper()
	if e, ok := err.(*codec.Error); !ok || len(e.Code) != 5 || e.Message == "" {
		t.Fatalf("error without SQLSTATE: %#v", err)
	}
}

// FuzzDescribe feeds arbitrary RowDescription bodies, then one row, to each spec.
func FuzzDescribe(f *testing.F) {
	for _, d := range fuzzDescs {
		f.Add(d[5:], []byte{0, 3, 0, 0, 0, 1, '1', 0, 0, 0, 1, '2', 0, 0, 0, 1, '3'})
	}
	f.Add([]byte{0, 1, 'a', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 1}, []byte{0, 1, 0, 0, 0, 1, 1})
	f.Fuzz(func(t *testing.T, desc, row []byte) {
		msg := codec.FinishMessage(append([]byte{codec.RowDescription, 0, 0, 0, 0}, desc...), 0)
		rmsg := codec.FinishMessage(append([]byte{codec.DataRow, 0, 0, 0, 0}, row...), 0)
		if out, err := ClientRowDescription(fuzzSpecs[0], nil, msg); err == nil {
			if _, err := codec.ParseRowDescription(out[5:]); err != nil {
				t.Fatalf("ClientRowDescription made a bad message: %v", err)
			}
		}
		for _, spec := range fuzzSpecs {
			m := New(spec, 2, Args{Limit: -1, Consts: [][]byte{[]byte("1")}})
			if err := m.Describe(0, msg); err != nil {
				checkError(t, err)
				continue
			}
			if err := m.Describe(1, msg); err != nil {
				t.Fatalf("the same description twice: %v", err)
			}
			out := m.RowDescription(nil)
			if _, err := codec.ParseRowDescription(out[5:]); err != nil {
				t.Fatalf("RowDescription made a bad message: %v", err)
			}
			if err := m.Row(0, rmsg); err != nil {
				checkError(t, err)
				continue
			}
			m.End(0)
			m.End(1)
			if _, err := m.Emit(nil); err != nil {
				checkError(t, err)
			}
		}
	})
}

// FuzzNumericBinary reads binary numerics: a value that reads must survive binary → text → binary and compare
// equal to its text form.
func FuzzNumericBinary(f *testing.F) {
	for _, s := range []string{"0", "0.000", "12345.678", "-0.00012", "NaN", "Infinity", "-Infinity", "1e100"} {
		var d decimal
		d.parse(codec.FormatText, []byte(s))
		f.Add(d.appendBinary(nil))
	}
	f.Add([]byte{0, 4, 0, 1, 0, 0, 0, 2, 0, 0, 0, 1, 0x13, 0x88, 0, 0})
	f.Fuzz(func(t *testing.T, v []byte) {
		var k key
		if parseKey(kNumeric, codec.FormatBinary, v, &k) != nil {
			return
		}
		var d decimal
		if !d.parse(codec.FormatBinary, v) {
			t.Fatalf("key reads but decimal does not: % x", v)
		}
		if d.scale > maxDisplayScale*20 {
			return
		}
		text := d.appendText(nil)
		var e decimal
		if !e.parse(codec.FormatText, text) {
			t.Fatalf("% x: own output %q does not read", v, text)
		}
		if got := e.appendText(nil); !bytes.Equal(got, text) {
			t.Fatalf("% x: %q reads back as %q", v, text, got)
		}
		if got := e.appendBinary(nil); !bytes.Equal(e.appendText(nil), text) || len(got) < 8 {
			t.Fatalf("bad binary % x", got)
		}
		// Digits past the display scale are dropped by the text form; compare only values without them.
		var kt key
		parseKey(kNumeric, codec.FormatText, text, &kt)
		var back key
		bin := d.appendBinary(nil)
		if parseKey(kNumeric, codec.FormatBinary, bin, &back) != nil {
			t.Fatalf("own binary % x does not read", bin)
		}
		if cmpKeys(kNumeric, &kt, &back) != 0 {
			t.Fatalf("% x: text %q and binary % x differ", v, text, bin)
		}
	})
}

// FuzzNumericText reads numeric literals: a value that reads prints as a value that reads back the same.
func FuzzNumericText(f *testing.F) {
	for _, s := range []string{"0", "-1.50", "1e3", ".5", "NaN", "-inf", "  12.50  ", "1.5e-3", "00012"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var d decimal
		if !d.parse(codec.FormatText, []byte(s)) {
			return
		}
		out := d.appendText(nil)
		var e decimal
		if !e.parse(codec.FormatText, out) || e.cmp(&d) != 0 || !bytes.Equal(e.appendText(nil), out) {
			t.Fatalf("%q -> %q does not read back", s, out)
		}
		var k1, k2 key
		if parseKey(kNumeric, 0, []byte(s), &k1) != nil || parseKey(kNumeric, 0, out, &k2) != nil {
			t.Fatal("key does not read")
		}
		if cmpKeys(kNumeric, &k1, &k2) != 0 {
			t.Fatalf("%q and %q compare unequal", s, out)
		}
	})
}

// FuzzArray reads arrays in text and binary form.
func FuzzArray(f *testing.F) {
	f.Add([]byte("{1,2}"), []byte("{3}"))
	f.Add([]byte(`[1:2][0:1]={{1,2},{3,4}}`), []byte(`{{"a\"",NULL}}`))
	f.Add(binArrayInt4(1, []int32{2}, 1, nil), binArrayInt4(1, []int32{1}, 3))
	f.Add(binArrayInt4(1, []int32{1, 2}, 1, 2), binArrayInt4(1, []int32{2, 2}, 3, 4, 5, 6))
	f.Fuzz(func(t *testing.T, a, b []byte) {
		var ta textArray
		if ta.add(a) == nil && ta.add(b) == nil {
			out := ta.appendTo(nil)
			if _, _, ok := splitArrayText(out); !ok {
				t.Fatalf("%q + %q = %q does not read", a, b, out)
			}
		}
		out, err := mergeArrayBinary(nil, a, b)
		if err != nil {
			checkError(t, err)
			return
		}
		var x, y, z binArray
		if !parseArrayBinary(out, &z) || !parseArrayBinary(a, &x) || !parseArrayBinary(b, &y) {
			t.Fatalf("% x + % x = % x does not read", a, b, out)
		}
		if x.ndim > 0 && y.ndim > 0 && z.dims[0][0] != x.dims[0][0]+y.dims[0][0] {
			t.Fatalf("dimension %d + %d = %d", x.dims[0][0], y.dims[0][0], z.dims[0][0])
		}
	})
}

// FuzzDateTimeText reads dates and timestamps; what reads agrees with Go's calendar for years 1 to 9999.
func FuzzDateTimeText(f *testing.F) {
	for _, s := range []string{"2024-01-02", "0044-03-15 BC", "infinity", "2024-01-02 03:04:05.123456", "12345-01-01 00:00:00",
		"2024-01-02 03:04:05+05:30", "0044-03-15 12:00:00+00:19:32 BC", "2000-02-29 24:00:00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		parseDateText([]byte(s))
		parseTimeText([]byte(s))
		parseTimestampText([]byte(s), true)
		us, ok := parseTimestampText([]byte(s), false)
		if !ok || len(s) < 19 || s[4] != '-' {
			return
		}
		tm, err := time.Parse("2006-01-02 15:04:05", s[:19])
		if err != nil || len(trimSpace([]byte(s))) != 19 {
			return
		}
		want := (tm.Unix() - 946684800) * usPerSecond
		if us != want {
			t.Fatalf("%q: %d µs, Go says %d", s, us, want)
		}
	})
}

// FuzzKeys reads any bytes as every kind in both formats: reading never panics, and a value equals itself.
func FuzzKeys(f *testing.F) {
	f.Add(uint8(kNumeric), false, []byte("1.5"))
	f.Add(uint8(kBytea), false, []byte(`\x0102`))
	f.Add(uint8(kTimestamptz), false, []byte("2024-01-02 03:04:05+01"))
	f.Add(uint8(kUUID), true, make([]byte, 16))
	f.Fuzz(func(t *testing.T, k uint8, bin bool, v []byte) {
		kd := kind(k % (uint8(kUUID) + 1))
		format := int16(codec.FormatText)
		if bin {
			format = codec.FormatBinary
		}
		var a, b key
		if err := parseKey(kd, format, v, &a); err != nil {
			checkError(t, err)
			return
		}
		parseKey(kd, format, v, &b)
		if cmpKeys(kd, &a, &b) != 0 {
			t.Fatalf("%s %q is not equal to itself", kindName(kd), v)
		}
		c1, err := appendCanon(nil, kd, format, v, &key{})
		if err != nil {
			t.Fatalf("canonical form of a readable value: %v", err)
		}
		c2, _ := appendCanon(nil, kd, format, v, &key{})
		if !bytes.Equal(c1, c2) {
			t.Fatal("canonical form not stable")
		}
	})
}

// FuzzFloatFormat: what appendFloat8/appendFloat4 write reads back as the same value.
func FuzzFloatFormat(f *testing.F) {
	f.Add(uint64(0x4370c6c9ae3a8d7e)) // 6.9737173531754496e+16: shortest digits on the boundary
	f.Add(uint64(0x3ff0000000000000))
	f.Fuzz(func(t *testing.T, bits uint64) {
		x := math.Float64frombits(bits)
		if x == x && !math.IsInf(x, 0) {
			s := appendFloat8(nil, x)
			if y, err := strconv.ParseFloat(string(s), 64); err != nil || y != x {
				t.Fatalf("%v -> %s -> %v", x, s, y)
			}
		}
		x32 := math.Float32frombits(uint32(bits))
		if x32 == x32 && !math.IsInf(float64(x32), 0) {
			s := appendFloat4(nil, x32)
			if y, err := strconv.ParseFloat(string(s), 32); err != nil || float32(y) != x32 {
				t.Fatalf("%v -> %s -> %v", x32, s, y)
			}
		}
	})
}
