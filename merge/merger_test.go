package merge

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/pgshard/pgshard/codec"
)

var noLimit = Args{Limit: -1}

func TestPassThrough(t *testing.T) {
	desc := rowDesc(fd{"id", oidInt4, 0}, fd{"name", oidText, 0})
	spec := &Spec{Values: cols0(2), Visible: 2}
	s0 := rows(dataRow("1", "a"), dataRow("3", nil))
	s1 := rows(dataRow("2", "b"))
	got, err := runMerge(t, spec, noLimit, desc, s0, s1)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"1|a", "2|b", "3|NULL"}; !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	// The rows are the shards' bytes.
	raw, _ := runMergeRaw(t, spec, noLimit, desc, s0)
	if want := append(append([]byte{}, s0[0]...), s0[1]...); !bytes.Equal(raw, want) {
		t.Errorf("rows re-encoded: % x", raw)
	}
}

func TestPassThroughHiddenColumns(t *testing.T) {
	desc := rowDesc(fd{"a", oidInt4, 0}, fd{"b", oidText, 0}, fd{"hidden", oidInt4, 0})
	spec := &Spec{Values: vals(Value{Col: 1}, Value{Col: 0}, Value{Col: 2}), Visible: 2}
	got, err := runMerge(t, spec, noLimit, desc, rows(dataRow("1", "x", "9")), rows(dataRow("2", "", "8")))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"x|1", "|2"}; !slices.Equal(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
	rd := New(spec, 1, noLimit)
	if err := rd.Describe(0, desc); err != nil {
		t.Fatal(err)
	}
	msg := rd.RowDescription(nil)
	p, _ := codec.ParseRowDescription(msg[5:])
	f := p.Fields(nil)
	if len(f) != 2 || string(f[0].Name) != "b" || f[0].TypeOID != oidText || string(f[1].Name) != "a" || f[1].ColumnNumber != 1 {
		t.Errorf("client RowDescription: %+v", f)
	}
}

func TestPassThroughWithoutDescribe(t *testing.T) {
	spec := &Spec{Values: cols0(1), Visible: 1}
	m := New(spec, 2, Args{Limit: 2})
	for _, r := range []struct {
		shard int
		v     string
	}{{0, "a"}, {1, "b"}, {0, "c"}} {
		if err := m.Row(r.shard, dataRow(r.v)); err != nil {
			t.Fatal(err)
		}
	}
	out, err := m.Emit(nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := textRows(t, out); !slices.Equal(got, []string{"a", "b"}) || !m.Satisfied() || m.Rows() != 2 {
		t.Fatalf("got %v satisfied=%v rows=%d", got, m.Satisfied(), m.Rows())
	}
	// A row with fewer columns than the spec needs.
	m.Reset(&Spec{Values: vals(Value{Col: 3}), Visible: 1}, 1, noLimit)
	if err := m.Row(0, dataRow("a")); sqlstate(err) != codec.SQLStateProtocolViolation {
		t.Errorf("short row: %v", err)
	}
}

func TestLimitOffsetPassThrough(t *testing.T) {
	desc := rowDesc(fd{"v", oidInt4, 0})
	spec := &Spec{Values: cols0(1), Visible: 1, Limit: true, Offset: true}
	s0 := rows(dataRow("1"), dataRow("2"), dataRow("3"))
	s1 := rows(dataRow("4"), dataRow("5"))
	for _, c := range []struct {
		limit, offset int64
		want          []string
	}{
		{-1, 0, []string{"1", "4", "2", "5", "3"}},
		{2, 0, []string{"1", "4"}},
		{2, 1, []string{"4", "2"}},
		{10, 4, []string{"3"}},
		{-1, 5, nil},
		{0, 0, nil},
	} {
		got, err := runMerge(t, spec, Args{Limit: c.limit, Offset: c.offset}, desc, s0, s1)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("limit %d offset %d: got %v, want %v", c.limit, c.offset, got, c.want)
		}
	}
	m := New(spec, 2, Args{Limit: 0})
	if !m.Satisfied() {
		t.Error("LIMIT 0 is satisfied from the start")
	}
	m.Reset(spec, 2, Args{Limit: 1, Offset: 1})
	m.Describe(0, desc)
	m.Row(0, dataRow("1"))
	if m.Satisfied() {
		t.Error("satisfied while skipping the offset")
	}
	m.Row(1, dataRow("2"))
	if !m.Satisfied() {
		t.Error("not satisfied after the limit")
	}
	if err := m.Row(0, dataRow("3")); err != nil { // rows after the limit are dropped
		t.Error(err)
	}
	out, _ := m.Emit(nil)
	if got := textRows(t, out); !slices.Equal(got, []string{"2"}) {
		t.Errorf("got %v", got)
	}
}

func TestOrderedMerge(t *testing.T) {
	desc := rowDesc(fd{"k", oidInt8, 0}, fd{"v", oidText, 0})
	spec := &Spec{Values: cols0(2), Visible: 2, Order: []SortKey{{Value: 0}}}
	s0 := rows(dataRow("1", "a0"), dataRow("3", "b0"), dataRow("3", "c0"), dataRow("10", "d0"))
	s1 := rows(dataRow("2", "a1"), dataRow("3", "b1"), dataRow(nil, "n1"))
	s2 := rows()
	got, err := runMerge(t, spec, noLimit, desc, s0, s1, s2)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"1|a0", "2|a1", "3|b0", "3|c0", "3|b1", "10|d0", "NULL|n1"}
	if !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	// DESC NULLS FIRST.
	spec = &Spec{Values: cols0(2), Visible: 2, Order: []SortKey{{Value: 0, Desc: true, NullsFirst: true}}}
	got, err = runMerge(t, spec, noLimit, desc, rows(dataRow("10", "a"), dataRow("3", "b")), rows(dataRow(nil, "n"), dataRow("4", "c"), dataRow("3", "d")))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"NULL|n", "10|a", "4|c", "3|b", "3|d"}; !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

func TestOrderedMergeWaitsForEveryShard(t *testing.T) {
	desc := rowDesc(fd{"k", oidInt4, 0})
	spec := &Spec{Values: cols0(1), Visible: 1, Order: []SortKey{{Value: 0}}}
	m := New(spec, 3, noLimit)
	for s := 0; s < 3; s++ {
		if err := m.Describe(s, desc); err != nil {
			t.Fatal(err)
		}
	}
	emit := func() []string {
		t.Helper()
		out, err := m.Emit(nil)
		if err != nil {
			t.Fatal(err)
		}
		return textRows(t, out)
	}
	m.Row(0, dataRow("1"))
	m.Row(0, dataRow("5"))
	m.Row(1, dataRow("2"))
	if got := emit(); got != nil {
		t.Fatalf("emitted %v before shard 2 sent a row", got)
	}
	if m.Queued(0) != 2 || m.Queued(1) != 1 || m.Queued(2) != 0 {
		t.Fatalf("queued %d %d %d", m.Queued(0), m.Queued(1), m.Queued(2))
	}
	m.End(2) // shard 2 has no rows
	if got := emit(); !slices.Equal(got, []string{"1", "2"}) {
		t.Fatalf("got %v", got)
	}
	if m.Queued(0) != 1 || m.Queued(1) != 0 {
		t.Fatalf("queued %d %d", m.Queued(0), m.Queued(1))
	}
	m.Row(1, dataRow("7"))
	if got := emit(); !slices.Equal(got, []string{"5"}) {
		t.Fatalf("got %v", got)
	}
	m.End(0)
	if got := emit(); !slices.Equal(got, []string{"7"}) { // shard 0 ended: shard 1's row may go
		t.Fatalf("got %v", got)
	}
	m.End(1)
	if got := emit(); got != nil || m.Rows() != 4 {
		t.Fatalf("got %v, rows %d", got, m.Rows())
	}
}

func TestOrderedLimit(t *testing.T) {
	desc := rowDesc(fd{"k", oidInt4, 1})
	spec := &Spec{Values: cols0(1), Visible: 1, Order: []SortKey{{Value: 0}}, Limit: true, Offset: true}
	m := New(spec, 2, Args{Limit: 2, Offset: 1})
	m.Describe(0, desc)
	m.Describe(1, desc)
	for i := int32(0); i < 5; i++ {
		m.Row(0, dataRow(int4Bin(2*i)))
		m.Row(1, dataRow(int4Bin(2*i+1)))
	}
	out, err := m.Emit(nil)
	if err != nil {
		t.Fatal(err)
	}
	got := rawRows(t, out)
	if len(got) != 2 || !bytes.Equal(got[0][0], int4Bin(1)) || !bytes.Equal(got[1][0], int4Bin(2)) {
		t.Fatalf("got %v", got)
	}
	if !m.Satisfied() || m.Queued(0) != 0 || m.Queued(1) != 0 {
		t.Fatalf("satisfied %v, queued %d %d", m.Satisfied(), m.Queued(0), m.Queued(1))
	}
}

// TestOrderedMergeProperty merges random sorted streams arriving in random chunks, one shard at a time, and
// compares with a stable sort of all rows (ties: lower shard first, then the shard's own order).
func TestOrderedMergeProperty(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	type colGen struct {
		fd  fd
		gen func() any
	}
	gens := []colGen{
		{fd{"i", oidInt8, 0}, func() any { return fmt.Sprint(r.IntN(20) - 10) }},
		{fd{"i", oidInt4, 1}, func() any { return int4Bin(int32(r.IntN(20) - 10)) }},
		{fd{"n", oidNumeric, 0}, func() any {
			return []string{"-1.5", "0", "0.00", "1", "1.0", "1.25", "NaN", "Infinity", "-Infinity", "100"}[r.IntN(10)]
		}},
		{fd{"f", oidFloat8, 0}, func() any { return []string{"-0", "0", "1.5", "NaN", "-Infinity", "1e+300", "2"}[r.IntN(7)] }},
		{fd{"s", oidText, 0}, func() any { return []string{"", "a", "ab", "b", "B", "é"}[r.IntN(6)] }},
		{fd{"c", oidBpchar, 0}, func() any { return []string{"a", "a  ", "b", " "}[r.IntN(4)] }},
		{fd{"ts", oidTimestamptz, 0}, func() any {
			return []string{"2024-01-02 03:04:05+00", "2024-01-02 04:04:05+01", "2024-01-02 03:04:06+00", "infinity", "0044-03-15 12:00:00+00 BC"}[r.IntN(5)]
		}},
		{fd{"u", oidUUID, 1}, func() any { b := make([]byte, 16); b[r.IntN(16)] = byte(r.IntN(3)); return b }},
	}
	for iter := 0; iter < 300; iter++ {
		nkeys := 1 + r.IntN(3)
		var fds []fd
		var gs []colGen
		var order []SortKey
		for i := 0; i < nkeys; i++ {
			g := gens[r.IntN(len(gens))]
			gs = append(gs, g)
			fds = append(fds, g.fd)
			order = append(order, SortKey{Value: i, Desc: r.IntN(2) == 0, NullsFirst: r.IntN(2) == 0})
		}
		fds = append(fds, fd{"tag", oidText, 0})
		desc := rowDesc(fds...)
		spec := &Spec{Values: cols0(nkeys + 1), Visible: nkeys + 1, Order: order}
		if r.IntN(3) == 0 { // hide the first key
			spec.Values = append(spec.Values[1:], spec.Values[0])
			for i := range spec.Order {
				spec.Order[i].Value = (spec.Order[i].Value + nkeys) % (nkeys + 1)
			}
			spec.Visible = nkeys
		}
		k := 1 + r.IntN(5)
		m := New(spec, k, noLimit)
		for s := 0; s < k; s++ {
			if err := m.Describe(s, desc); err != nil {
				t.Fatal(err)
			}
		}
		type trow struct {
			shard int
			keys  []key
			msg   []byte
		}
		var all []trow
		shardRows := make([][]trow, k)
		for s := 0; s < k; s++ {
			n := r.IntN(12)
			for j := 0; j < n; j++ {
				vs := make([]any, nkeys+1)
				for i := range gs {
					if r.IntN(8) == 0 {
						vs[i] = nil
					} else {
						vs[i] = gs[i].gen()
					}
				}
				vs[nkeys] = fmt.Sprintf("s%dr%d", s, j)
				msg := dataRow(vs...)
				var row trow
				row.shard, row.msg = s, msg
				cols, _ := func() ([][]byte, error) { d, _ := codec.ParseDataRow(msg[5:]); return d.Columns(nil) }()
				for i, o := range spec.Order {
					var kk key
					v := spec.Values[o.Value]
					if err := parseKey(kindOf(fds[v.Col].oid), fds[v.Col].format, cols[v.Col], &kk); err != nil {
						t.Fatal(err)
					}
					_ = i
					row.keys = append(row.keys, kk)
				}
				shardRows[s] = append(shardRows[s], row)
			}
			cmp := func(a, b trow) int { return m.cmpKeyRows(a.keys, b.keys) }
			slices.SortStableFunc(shardRows[s], cmp)
			all = append(all, shardRows[s]...)
		}
		slices.SortStableFunc(all, func(a, b trow) int { return m.cmpKeyRows(a.keys, b.keys) })
		var want []string
		for _, row := range all {
			want = append(want, strings.Join(projectText(t, spec, row.msg), "|"))
		}
		// Feed in random chunks.
		next := make([]int, k)
		var out []byte
		for {
			var open []int
			for s := 0; s < k; s++ {
				if next[s] <= len(shardRows[s]) {
					open = append(open, s)
				}
			}
			if len(open) == 0 {
				break
			}
			s := open[r.IntN(len(open))]
			n := 1 + r.IntN(4)
			for ; n > 0 && next[s] < len(shardRows[s]); n-- {
				if err := m.Row(s, shardRows[s][next[s]].msg); err != nil {
					t.Fatal(err)
				}
				next[s]++
			}
			if next[s] == len(shardRows[s]) && r.IntN(2) == 0 {
				m.End(s)
				next[s]++
			}
			var err error
			if out, err = m.Emit(out); err != nil {
				t.Fatal(err)
			}
			for s := 0; s < k; s++ {
				if m.Queued(s) > len(shardRows[s]) {
					t.Fatalf("queued %d of %d", m.Queued(s), len(shardRows[s]))
				}
			}
		}
		got := textRows(t, out)
		if !slices.Equal(got, want) {
			t.Fatalf("iteration %d (k=%d, order %+v):\ngot  %q\nwant %q", iter, k, spec.Order, got, want)
		}
	}
}

// projectText returns the visible values of a shard row as text (binary values in hex).
func projectText(t testing.TB, spec *Spec, msg []byte) []string {
	d, _ := codec.ParseDataRow(msg[5:])
	cols, _ := d.Columns(nil)
	var out []string
	for _, v := range spec.Values[:spec.Visible] {
		c := cols[v.Col]
		if c == nil {
			out = append(out, "NULL")
		} else {
			out = append(out, string(c))
		}
	}
	return out
}

func TestDistinct(t *testing.T) {
	desc := rowDesc(fd{"a", oidNumeric, 0}, fd{"b", oidText, 0})
	spec := &Spec{Values: cols0(2), Visible: 2, Distinct: true}
	got, err := runMerge(t, spec, noLimit, desc,
		rows(dataRow("1.5", "x"), dataRow("2", "x"), dataRow(nil, nil)),
		rows(dataRow("1.50", "x"), dataRow("2", "y"), dataRow(nil, nil), dataRow("2", "x")))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"1.5|x", "2|x", "2|y", "NULL|NULL"}; !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	// With ORDER BY on the first column: equal rows come within a run of equal keys, from any shard.
	spec.Order = []SortKey{{Value: 0}}
	got, err = runMerge(t, spec, Args{Limit: 3},
		desc,
		rows(dataRow("1", "b"), dataRow("1", "a"), dataRow("2", "a"), dataRow("3", "z")),
		rows(dataRow("1.0", "a"), dataRow("1", "b"), dataRow("2", "a"), dataRow("2", "b")))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"1|b", "1|a", "2|a"}; !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	// A long run (past the short-run list) of distinct rows with one repeat.
	var s0, s1 [][]byte
	for i := 0; i < 100; i++ {
		s0 = append(s0, dataRow("7", fmt.Sprint(i)))
	}
	s1 = append(s1, dataRow("7", "50"), dataRow("7", "100"), dataRow("8", "0"), dataRow("8", "0"))
	got, err = runMerge(t, spec, noLimit, desc, s0, s1)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 102 || got[101] != "8|0" {
		t.Fatalf("got %d rows, last %q", len(got), got[len(got)-1])
	}
}

func TestDistinctOn(t *testing.T) {
	desc := rowDesc(fd{"a", oidInt4, 0}, fd{"b", oidText, 0})
	// DISTINCT ON (a) ... ORDER BY a, b: the first row of each run of equal a.
	spec := &Spec{Values: cols0(2), Visible: 2, DistinctOn: []int{0}, Order: []SortKey{{Value: 0}, {Value: 1}}}
	got, err := runMerge(t, spec, noLimit, desc,
		rows(dataRow("1", "b"), dataRow("2", "a"), dataRow("3", "c")),
		rows(dataRow("1", "a"), dataRow("2", "b"), dataRow(nil, "x"), dataRow(nil, "y")))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"1|a", "2|a", "3|c", "NULL|x"}; !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	// Without ORDER BY: the first seen per key.
	spec = &Spec{Values: cols0(2), Visible: 2, DistinctOn: []int{0}}
	got, err = runMerge(t, spec, noLimit, desc, rows(dataRow("1", "b"), dataRow("2", "a")), rows(dataRow("1", "a"), dataRow("3", "b")))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"1|b", "2|a", "3|b"}; !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

func TestDescribeMismatch(t *testing.T) {
	spec := &Spec{Values: cols0(2), Visible: 2}
	m := New(spec, 2, noLimit)
	if err := m.Describe(0, rowDesc(fd{"a", oidInt4, 0}, fd{"b", oidText, 0})); err != nil {
		t.Fatal(err)
	}
	err := m.Describe(1, rowDesc(fd{"a", oidInt8, 0}, fd{"b", oidText, 0}))
	e, ok := err.(*codec.Error)
	if !ok || e.Code != "42804" || !strings.Contains(e.Message, `"a"`) || !strings.Contains(e.Message, "integer") ||
		!strings.Contains(e.Message, "bigint") || !strings.Contains(e.Hint, "same on every shard") {
		t.Fatalf("got %#v", err)
	}
	if err := m.Row(0, dataRow("1", "x")); err != e {
		t.Errorf("the error sticks: %v", err)
	}
	m.Reset(spec, 2, noLimit)
	m.Describe(0, rowDesc(fd{"a", oidInt4, 0}, fd{"b", oidText, 0}))
	if err := m.Describe(1, rowDesc(fd{"a", oidInt4, 0})); sqlstate(err) != "42804" {
		t.Errorf("column count: %v", err)
	}
	m.Reset(spec, 2, noLimit)
	m.Describe(0, rowDesc(fd{"a", oidInt4, 0}, fd{"b", oidText, 0}))
	if err := m.Describe(1, rowDesc(fd{"a", oidInt4, 1}, fd{"b", oidText, 0})); sqlstate(err) != "42804" {
		t.Errorf("format: %v", err)
	}
	// Names may differ.
	m.Reset(spec, 2, noLimit)
	m.Describe(0, rowDesc(fd{"a", oidInt4, 0}, fd{"b", oidText, 0}))
	if err := m.Describe(1, rowDesc(fd{"x", oidInt4, 0}, fd{"y", oidText, 0})); err != nil {
		t.Errorf("names: %v", err)
	}
}

func TestUnsupportedTypes(t *testing.T) {
	const oidInterval = 1186
	desc := rowDesc(fd{"d", oidInterval, 0}, fd{"n", oidInt8, 0})
	for name, spec := range map[string]*Spec{
		"order":  {Values: cols0(2), Visible: 2, Order: []SortKey{{Value: 0}}},
		"min":    {Aggregate: true, Values: vals(Value{Agg: AggMin, Col: 0}), Visible: 1},
		"sum":    {Aggregate: true, Values: vals(Value{Agg: AggSum, Col: 0}), Visible: 1},
		"avg":    {Aggregate: true, Values: vals(Value{Agg: AggAvg, Col: 0, Col2: 1}), Visible: 1},
		"having": {Aggregate: true, Values: vals(Value{Col: 0}), Visible: 1, Having: &Cond{Op: CondCmp, Cmp: CmpEq, L: Operand{Value: 0, Const: -1}, R: Operand{Value: -1, Const: 0}}},
	} {
		m := New(spec, 1, Args{Limit: -1, Consts: [][]byte{[]byte("1 day")}})
		err := m.Describe(0, desc)
		e, ok := err.(*codec.Error)
		if !ok || e.Code != codec.SQLStateFeatureNotSupported || !strings.Contains(e.Message, "interval") || e.Hint == "" {
			t.Errorf("%s: got %#v", name, err)
		}
	}
	// Group keys and passed-through values of any type are fine.
	spec := &Spec{Aggregate: true, Group: []int{0}, Values: vals(Value{Col: 0}, Value{Agg: AggCount, Col: 1}), Visible: 2}
	got, err := runMerge(t, spec, noLimit, desc, rows(dataRow("1 day", "2")), rows(dataRow("1 day", "3"), dataRow("2 days", "1")))
	if err != nil || !slices.Equal(got, []string{"1 day|5", "2 days|1"}) {
		t.Errorf("group by interval: %v %v", got, err)
	}
}

func TestMalformed(t *testing.T) {
	desc := rowDesc(fd{"a", oidInt4, 0})
	spec := &Spec{Values: cols0(1), Visible: 1, Order: []SortKey{{Value: 0}}}
	for name, msg := range map[string][]byte{
		"type":      append([]byte{'X'}, dataRow("1")[1:]...),
		"length":    dataRow("1")[:8],
		"columns":   dataRow("1", "2"),
		"value":     dataRow("x"),
		"truncated": {'D', 0, 0, 0, 10, 0, 1, 0, 0, 0, 9},
	} {
		m := New(spec, 1, noLimit)
		if err := m.Describe(0, desc); err != nil {
			t.Fatal(err)
		}
		err := m.Row(0, msg)
		if err == nil {
			m.End(0)
			_, err = m.Emit(nil)
		}
		if _, ok := err.(*codec.Error); !ok {
			t.Errorf("%s: %v", name, err)
		}
	}
	m := New(spec, 1, noLimit)
	if err := m.Describe(0, []byte{'T', 0, 0, 0, 6, 0, 1}); sqlstate(err) != codec.SQLStateProtocolViolation {
		t.Errorf("bad RowDescription: %v", err)
	}
	m.Reset(spec, 1, noLimit)
	if err := m.Row(0, dataRow("1")); sqlstate(err) != codec.SQLStateInternalError {
		t.Errorf("row before the description: %v", err)
	}
	m.Reset(spec, 1, noLimit)
	if err := m.Describe(3, desc); err == nil {
		t.Error("shard out of range")
	}
	m.Reset(&Spec{Values: vals(Value{Col: 5}), Visible: 1}, 1, noLimit)
	if err := m.Describe(0, desc); sqlstate(err) != codec.SQLStateInternalError {
		t.Errorf("spec out of range: %v", err)
	}
}

func TestClientRowDescription(t *testing.T) {
	desc := rowDesc(fd{"g", oidText, 0}, fd{"s", oidInt8, 0}, fd{"c", oidInt8, 0}, fd{"fs", oidFloat4, 0}, fd{"fc", oidInt8, 0})
	spec := &Spec{Aggregate: true, Group: []int{0}, Visible: 3, Values: vals(
		Value{Col: 0}, Value{Agg: AggAvg, Col: 1, Col2: 2, Name: "avg"}, Value{Agg: AggAvg, Col: 3, Col2: 4}, Value{Agg: AggCount, Col: 2})}
	out, err := ClientRowDescription(spec, nil, desc)
	if err != nil {
		t.Fatal(err)
	}
	m := New(spec, 1, noLimit)
	if err := m.Describe(0, desc); err != nil {
		t.Fatal(err)
	}
	if out2 := m.RowDescription(nil); !bytes.Equal(out, out2) {
		t.Errorf("ClientRowDescription and RowDescription differ")
	}
	p, err := codec.ParseRowDescription(out[5:])
	if err != nil {
		t.Fatal(err)
	}
	f := p.Fields(nil)
	if len(f) != 3 || string(f[0].Name) != "g" || f[0].TypeOID != oidText ||
		string(f[1].Name) != "avg" || f[1].TypeOID != oidNumeric || f[1].TypeSize != -1 || f[1].TypeModifier != -1 ||
		string(f[2].Name) != "fs" || f[2].TypeOID != oidFloat8 || f[2].TypeSize != 8 {
		t.Errorf("fields %+v", f)
	}
	if _, err := ClientRowDescription(&Spec{Values: vals(Value{Col: 9}), Visible: 1}, nil, desc); err == nil {
		t.Error("a spec out of range is an error")
	}
	if _, err := ClientRowDescription(spec, nil, desc[:10]); err == nil {
		t.Error("a bad message is an error")
	}
}

func TestReuse(t *testing.T) {
	desc := rowDesc(fd{"k", oidInt4, 0})
	ordered := &Spec{Values: cols0(1), Visible: 1, Order: []SortKey{{Value: 0}}}
	agg := &Spec{Aggregate: true, Values: vals(Value{Agg: AggCount, Col: 0}), Visible: 1}
	descAgg := rowDesc(fd{"count", oidInt8, 0})
	m := New(ordered, 2, noLimit)
	for i := 0; i < 3; i++ {
		m.Reset(ordered, 2, noLimit)
		m.Describe(0, desc)
		m.Describe(1, desc)
		m.Row(0, dataRow("2"))
		m.Row(1, dataRow("1"))
		m.End(0)
		m.End(1)
		out, err := m.Emit(nil)
		if err != nil || !slices.Equal(textRows(t, out), []string{"1", "2"}) {
			t.Fatalf("ordered run %d: %v %v", i, textRows(t, out), err)
		}
		m.Reset(agg, 3, noLimit)
		for s := 0; s < 3; s++ {
			m.Describe(s, descAgg)
			m.Row(s, dataRow(fmt.Sprint(s+1)))
			m.End(s)
		}
		out, err = m.Emit(nil)
		if err != nil || !slices.Equal(textRows(t, out), []string{"6"}) {
			t.Fatalf("aggregate run %d: %v %v", i, textRows(t, out), err)
		}
	}
}

// TestOrderedQueueCompaction queues many rows of one shard while another trickles in, so that the queue's buffer
// is compacted while rows are still queued.
func TestOrderedQueueCompaction(t *testing.T) {
	desc := rowDesc(fd{"k", oidInt4, 0}, fd{"pad", oidText, 0})
	spec := &Spec{Values: cols0(2), Visible: 1, Order: []SortKey{{Value: 0}}}
	m := New(spec, 2, noLimit)
	m.Describe(0, desc)
	m.Describe(1, desc)
	pad := strings.Repeat("x", 200)
	const n = 2000
	var out []byte
	for i := 0; i < n; i += 2 {
		if err := m.Row(0, dataRow(fmt.Sprint(i), pad)); err != nil {
			t.Fatal(err)
		}
	}
	m.End(0)
	for i := 1; i < n; i += 2 {
		if err := m.Row(1, dataRow(fmt.Sprint(i), pad)); err != nil {
			t.Fatal(err)
		}
		var err error
		if out, err = m.Emit(out); err != nil {
			t.Fatal(err)
		}
		if i == n/2+1 && cap(m.qs[0].buf) > 0 && m.qs[0].offs[m.qs[0].head] > len(m.qs[0].buf)/2+1 {
			t.Errorf("queue not compacted: head at %d of %d", m.qs[0].offs[m.qs[0].head], len(m.qs[0].buf))
		}
	}
	m.End(1)
	out, err := m.Emit(out)
	if err != nil {
		t.Fatal(err)
	}
	got := textRows(t, out)
	if len(got) != n {
		t.Fatalf("%d rows", len(got))
	}
	for i, g := range got {
		if g != fmt.Sprint(i) {
			t.Fatalf("row %d is %s", i, g)
		}
	}
}

// TestZeroAllocs holds the hot paths to no allocation per row in steady state.
func TestZeroAllocs(t *testing.T) {
	desc := rowDesc(fd{"k", oidInt8, 0}, fd{"n", oidNumeric, 1}, fd{"v", oidText, 0})
	msg := dataRow("42", numBin(t, "1.5"), "value")
	for name, spec := range map[string]*Spec{
		"pass":    {Values: cols0(3), Visible: 3},
		"hidden":  {Values: cols0(3), Visible: 2},
		"ordered": {Values: cols0(3), Visible: 3, Order: []SortKey{{Value: 0}, {Value: 1, Desc: true}, {Value: 2}}},
	} {
		m := New(spec, 3, noLimit)
		var out []byte
		run := func() {
			m.Reset(spec, 3, noLimit)
			for s := 0; s < 3; s++ {
				m.Describe(s, desc)
			}
			for i := 0; i < 100; i++ {
				for s := 0; s < 3; s++ {
					if err := m.Row(s, msg); err != nil {
						t.Fatal(err)
					}
				}
				out, _ = m.Emit(out[:0])
			}
			for s := 0; s < 3; s++ {
				m.End(s)
			}
			out, _ = m.Emit(out[:0])
		}
		run()
		if n := testing.AllocsPerRun(10, run); n != 0 {
			t.Errorf("%s: %v allocations per execution of 300 rows", name, n)
		}
	}
}
