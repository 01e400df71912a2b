package merge

import (
	"bytes"
	"slices"
	"testing"

	"github.com/pgshard/pgshard/codec"
)

func TestAggregatesWithoutGroupBy(t *testing.T) {
	// SELECT count(*), sum(i), sum(n), sum(f), min(t), max(t), avg(i), bool_and(b), bool_or(b) — partials per shard.
	desc := rowDesc(fd{"count", oidInt8, 0}, fd{"sum", oidInt8, 0}, fd{"sumn", oidNumeric, 0}, fd{"sumf", oidFloat8, 0},
		fd{"min", oidText, 0}, fd{"max", oidText, 0}, fd{"avgsum", oidInt8, 0}, fd{"avgcount", oidInt8, 0},
		fd{"band", oidBool, 0}, fd{"bor", oidBool, 0})
	spec := &Spec{Aggregate: true, Visible: 9, Values: vals(
		Value{Agg: AggCount, Col: 0}, Value{Agg: AggSum, Col: 1}, Value{Agg: AggSum, Col: 2}, Value{Agg: AggSum, Col: 3},
		Value{Agg: AggMin, Col: 4}, Value{Agg: AggMax, Col: 5}, Value{Agg: AggAvg, Col: 6, Col2: 7},
		Value{Agg: AggBoolAnd, Col: 8}, Value{Agg: AggBoolOr, Col: 9})}
	got, err := runMerge(t, spec, noLimit, desc,
		rows(dataRow("2", "3", "1.5", "0.5", "b", "b", "3", "2", "t", "f")),
		rows(dataRow("0", nil, nil, nil, nil, nil, nil, "0", nil, nil)),
		rows(dataRow("1", "-10", "2.25", "1e+300", "a", "c", "2", "1", "t", "t")))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"3|-7|3.75|1e+300|a|c|1.6666666666666667|t|t"}; !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	// All partials NULL (no rows anywhere): count 0, the rest NULL.
	got, err = runMerge(t, spec, noLimit, desc, rows(dataRow("0", nil, nil, nil, nil, nil, nil, "0", nil, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"0|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL"}; !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	// No shard at all: one row all the same.
	m := New(spec, 0, noLimit)
	out, err := m.Emit(nil)
	if err != nil || !slices.Equal(textRows(t, out), []string{"0|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL"}) {
		t.Fatalf("k=0: %v %v", textRows(t, out), err)
	}
}

func TestAggregatesBinary(t *testing.T) {
	desc := rowDesc(fd{"count", oidInt8, 1}, fd{"sumn", oidNumeric, 1}, fd{"sumf4", oidFloat4, 1}, fd{"avgsum", oidNumeric, 1},
		fd{"avgcount", oidInt8, 1}, fd{"max", oidInt4, 1}, fd{"fsum", oidFloat8, 1}, fd{"fcount", oidInt8, 1}, fd{"b", oidBool, 1})
	spec := &Spec{Aggregate: true, Visible: 7, Values: vals(
		Value{Agg: AggCount, Col: 0}, Value{Agg: AggSum, Col: 1}, Value{Agg: AggSum, Col: 2}, Value{Agg: AggAvg, Col: 3, Col2: 4},
		Value{Agg: AggMax, Col: 5}, Value{Agg: AggAvg, Col: 6, Col2: 7}, Value{Agg: AggBoolAnd, Col: 8})}
	out, err := runMergeRaw(t, spec, noLimit, desc,
		rows(dataRow(int8Bin(2), numBin(t, "1.25"), f4Bin(1.5), numBin(t, "10"), int8Bin(2), int4Bin(-5), f8Bin(1), int8Bin(1), []byte{1})),
		rows(dataRow(int8Bin(3), numBin(t, "-0.250"), f4Bin(2), numBin(t, "0.5"), int8Bin(3), int4Bin(7), f8Bin(2), int8Bin(3), []byte{0})))
	if err != nil {
		t.Fatal(err)
	}
	r := rawRows(t, out)
	if len(r) != 1 {
		t.Fatalf("%d rows", len(r))
	}
	want := [][]byte{int8Bin(5), numBin(t, "1.000"), f4Bin(3.5), numBin(t, "2.1000000000000000"), int4Bin(7), f8Bin(0.75), {0}}
	for i, w := range want {
		if !bytes.Equal(r[0][i], w) {
			t.Errorf("value %d: % x, want % x", i, r[0][i], w)
		}
	}
}

func TestGroupBy(t *testing.T) {
	// SELECT g, count(*), sum(x) ... GROUP BY g ORDER BY sum(x) DESC, g
	desc := rowDesc(fd{"g", oidText, 0}, fd{"count", oidInt8, 0}, fd{"sum", oidNumeric, 0})
	spec := &Spec{Aggregate: true, Group: []int{0}, Visible: 3,
		Values: vals(Value{Col: 0}, Value{Agg: AggCount, Col: 1}, Value{Agg: AggSum, Col: 2}),
		Order:  []SortKey{{Value: 2, Desc: true, NullsFirst: true}, {Value: 0}}}
	s0 := rows(dataRow("a", "1", "10"), dataRow("b", "2", "5.5"), dataRow(nil, "1", "1"))
	s1 := rows(dataRow("b", "1", "4.50"), dataRow("c", "3", "10"), dataRow(nil, "2", "2"), dataRow("d", "1", nil))
	got, err := runMerge(t, spec, noLimit, desc, s0, s1)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"d|1|NULL", "a|1|10", "b|3|10.00", "c|3|10", "NULL|3|3"}
	if !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	// LIMIT/OFFSET over the sorted groups.
	got, err = runMerge(t, spec, Args{Limit: 2, Offset: 1}, desc, s0, s1)
	if err != nil || !slices.Equal(got, want[1:3]) {
		t.Fatalf("limit: %v %v", got, err)
	}
	// Without ORDER BY: first-seen order.
	spec.Order = nil
	got, err = runMerge(t, spec, noLimit, desc, s0, s1)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"a|1|10", "b|3|10.00", "c|3|10", "NULL|3|3", "d|1|NULL"}; !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	// Group keys equal as values though not as bytes (numeric 1.5 and 1.50) are one group; a hidden group key.
	desc = rowDesc(fd{"count", oidInt8, 0}, fd{"g", oidNumeric, 0})
	spec = &Spec{Aggregate: true, Group: []int{1}, Visible: 1, Values: vals(Value{Agg: AggCount, Col: 0}, Value{Col: 1}),
		Order: []SortKey{{Value: 1}}}
	got, err = runMerge(t, spec, noLimit, desc, rows(dataRow("1", "1.5"), dataRow("1", "2")), rows(dataRow("5", "1.50")))
	if err != nil || !slices.Equal(got, []string{"6", "1"}) {
		t.Fatalf("got %v %v", got, err)
	}
}

func TestGroupByDistinct(t *testing.T) {
	// SELECT DISTINCT count(*) FROM t GROUP BY g
	desc := rowDesc(fd{"count", oidInt8, 0}, fd{"g", oidInt4, 0})
	spec := &Spec{Aggregate: true, Group: []int{1}, Visible: 1, Distinct: true, Values: vals(Value{Agg: AggCount, Col: 0}, Value{Col: 1})}
	got, err := runMerge(t, spec, noLimit, desc, rows(dataRow("1", "1"), dataRow("2", "2")), rows(dataRow("1", "2"), dataRow("3", "3")))
	if err != nil || !slices.Equal(got, []string{"1", "3"}) {
		t.Fatalf("got %v %v", got, err)
	}
	spec.Order = []SortKey{{Value: 0, Desc: true}}
	got, err = runMerge(t, spec, noLimit, desc, rows(dataRow("1", "1"), dataRow("2", "2")), rows(dataRow("1", "2"), dataRow("3", "3"), dataRow("1", "4")))
	if err != nil || !slices.Equal(got, []string{"3", "1"}) {
		t.Fatalf("got %v %v", got, err)
	}
}

func TestSumOverflow(t *testing.T) {
	desc := rowDesc(fd{"sum", oidInt8, 0})
	spec := &Spec{Aggregate: true, Visible: 1, Values: vals(Value{Agg: AggSum, Col: 0})}
	_, err := runMerge(t, spec, noLimit, desc, rows(dataRow("9223372036854775807")), rows(dataRow("1")))
	if e, ok := err.(*codec.Error); !ok || e.Code != "22003" || e.Message != "bigint out of range" {
		t.Fatalf("got %v", err)
	}
	got, err := runMerge(t, spec, noLimit, desc, rows(dataRow("9223372036854775807")), rows(dataRow("-1")), rows(dataRow("1")))
	if err != nil || got[0] != "9223372036854775807" {
		t.Fatalf("got %v %v", got, err)
	}
	_, err = runMerge(t, spec, noLimit, desc, rows(dataRow("-9223372036854775808")), rows(dataRow("-1")))
	if sqlstate(err) != "22003" {
		t.Fatalf("negative overflow: %v", err)
	}
	desc = rowDesc(fd{"count", oidInt8, 0})
	spec = &Spec{Aggregate: true, Visible: 1, Values: vals(Value{Agg: AggCount, Col: 0})}
	if _, err = runMerge(t, spec, noLimit, desc, rows(dataRow("9223372036854775807")), rows(dataRow("1"))); sqlstate(err) != "22003" {
		t.Fatalf("count overflow: %v", err)
	}
	for _, c := range []struct {
		oid  uint32
		a, b string
	}{{oidFloat8, "1e+308", "1e+308"}, {oidFloat4, "3e+38", "3e+38"}} {
		desc = rowDesc(fd{"sum", c.oid, 0})
		spec = &Spec{Aggregate: true, Visible: 1, Values: vals(Value{Agg: AggSum, Col: 0})}
		_, err = runMerge(t, spec, noLimit, desc, rows(dataRow(c.a)), rows(dataRow(c.b)))
		if e, ok := err.(*codec.Error); !ok || e.Code != "22003" || e.Message != "value out of range: overflow" {
			t.Fatalf("%s: got %v", typeName(c.oid), err)
		}
		// Infinity is no overflow.
		got, err = runMerge(t, spec, noLimit, desc, rows(dataRow("Infinity")), rows(dataRow(c.b)))
		if err != nil || got[0] != "Infinity" {
			t.Fatalf("%s: got %v %v", typeName(c.oid), got, err)
		}
	}
}

func TestAvg(t *testing.T) {
	for _, c := range []struct {
		sumOID uint32
		parts  [][2]any // sum, count per shard
		want   string
	}{
		{oidInt8, [][2]any{{"1", "1"}, {"2", "1"}}, "1.5000000000000000"},
		{oidInt8, [][2]any{{"1", "1"}, {"4", "2"}}, "1.6666666666666667"},
		{oidInt8, [][2]any{{nil, "0"}, {nil, "0"}}, "NULL"},
		{oidInt8, [][2]any{{"0", "2"}, {nil, "0"}}, "0.00000000000000000000"},
		{oidNumeric, [][2]any{{"1.50", "1"}, {"2.251", "1"}}, "1.8755000000000000"},
		{oidNumeric, [][2]any{{"123456789012", "1"}, {"1", "1"}}, "61728394506.50000000"},
		{oidNumeric, [][2]any{{"NaN", "1"}, {"1", "1"}}, "NaN"},
		{oidNumeric, [][2]any{{"Infinity", "1"}, {"1", "1"}}, "Infinity"},
		{oidFloat8, [][2]any{{"1", "1"}, {"2", "2"}}, "1"},
		{oidFloat8, [][2]any{{"0.1", "1"}, {"0.2", "2"}}, "0.10000000000000002"},
		{oidFloat4, [][2]any{{"1", "1"}, {"2", "1"}}, "1.5"},
	} {
		desc := rowDesc(fd{"sum", c.sumOID, 0}, fd{"count", oidInt8, 0})
		spec := &Spec{Aggregate: true, Visible: 1, Values: vals(Value{Agg: AggAvg, Col: 0, Col2: 1})}
		var shards [][][]byte
		for _, p := range c.parts {
			shards = append(shards, rows(dataRow(p[0], p[1])))
		}
		got, err := runMerge(t, spec, noLimit, desc, shards...)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[0] != c.want {
			t.Errorf("avg %v (%s): got %v, want %s", c.parts, typeName(c.sumOID), got, c.want)
		}
	}
}

func TestStringAgg(t *testing.T) {
	desc := rowDesc(fd{"g", oidInt4, 0}, fd{"s", oidText, 0}, fd{"d", oidText, 0})
	spec := &Spec{Aggregate: true, Group: []int{0}, Visible: 2, Values: vals(Value{Col: 0}, Value{Agg: AggStringAgg, Col: 1, Col2: 2})}
	got, err := runMerge(t, spec, noLimit, desc,
		rows(dataRow("1", "a,b", ","), dataRow("2", nil, ","), dataRow("3", "x", nil)),
		rows(dataRow("1", "c", ","), dataRow("2", nil, ","), dataRow("3", "y", nil)),
		rows(dataRow("1", nil, ","), dataRow("2", "z", ",")))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"1|a,b,c", "2|z", "3|xy"}; !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	// bytea in hex.
	desc = rowDesc(fd{"s", oidBytea, 0}, fd{"d", oidBytea, 0})
	spec = &Spec{Aggregate: true, Visible: 1, Values: vals(Value{Agg: AggStringAgg, Col: 0, Col2: 1})}
	got, err = runMerge(t, spec, noLimit, desc, rows(dataRow(`\x0102`, `\x00`)), rows(dataRow(`\x03`, `\xff`)))
	if err != nil || !slices.Equal(got, []string{`\x0102ff03`}) {
		t.Fatalf("bytea: %v %v", got, err)
	}
	if _, err = runMerge(t, spec, noLimit, desc, rows(dataRow(`\001`, `\x00`)), rows(dataRow(`\x03`, `\xff`))); sqlstate(err) != codec.SQLStateFeatureNotSupported {
		t.Fatalf("bytea escape: %v", err)
	}
	// Binary text: the bytes themselves.
	desc = rowDesc(fd{"s", oidText, 1}, fd{"d", oidText, 1})
	got, err = runMerge(t, spec, noLimit, desc, rows(dataRow("a", "-")), rows(dataRow("b", "+")))
	if err != nil || !slices.Equal(got, []string{"a+b"}) {
		t.Fatalf("binary: %v %v", got, err)
	}
}

func TestArrayAggText(t *testing.T) {
	desc := rowDesc(fd{"a", 1007, 0})
	spec := &Spec{Aggregate: true, Visible: 1, Values: vals(Value{Agg: AggArrayAgg, Col: 0})}
	for _, c := range []struct {
		parts []any
		want  string
	}{
		{[]any{"{1,2}", "{3}"}, "{1,2,3}"},
		{[]any{"{1,2}", nil, "{NULL}"}, "{1,2,NULL}"},
		{[]any{nil, nil}, "NULL"},
		{[]any{`{"a,b","{"}`, `{"\"x"}`}, `{"a,b","{","\"x"}`},
		{[]any{"{{1,2},{3,4}}", "{{5,6}}"}, "{{1,2},{3,4},{5,6}}"},
		{[]any{"[1:2][0:1]={{1,2},{3,4}}", "[1:1][0:1]={{5,6}}"}, "[1:3][0:1]={{1,2},{3,4},{5,6}}"},
		{[]any{"{}", "{1}"}, "{1}"},
	} {
		var shards [][][]byte
		for _, p := range c.parts {
			shards = append(shards, rows(dataRow(p)))
		}
		got, err := runMerge(t, spec, noLimit, desc, shards...)
		if err != nil {
			t.Fatalf("%v: %v", c.parts, err)
		}
		if got[0] != c.want {
			t.Errorf("%v: got %s, want %s", c.parts, got[0], c.want)
		}
	}
	for _, bad := range [][]any{{"{1,2}", "1,2"}, {"[1:2]={1}", "{2}"}, {"[1:1][0:1]={{1,2}}", "[1:1][1:2]={{3,4}}"}, {`{"1}`, "{2}"}} {
		var shards [][][]byte
		for _, p := range bad {
			shards = append(shards, rows(dataRow(p)))
		}
		if _, err := runMerge(t, spec, noLimit, desc, shards...); err == nil {
			t.Errorf("%v: no error", bad)
		}
	}
}

func binArrayInt4(lb int32, dims []int32, elems ...any) []byte {
	var b []byte
	b = codec.AppendInt32(b, int32(len(dims)))
	hasNull := int32(0)
	for _, e := range elems {
		if e == nil {
			hasNull = 1
		}
	}
	b = codec.AppendInt32(b, hasNull)
	b = codec.AppendInt32(b, oidInt4)
	for i, d := range dims {
		b = codec.AppendInt32(b, d)
		if i == 0 {
			b = codec.AppendInt32(b, lb)
		} else {
			b = codec.AppendInt32(b, 1)
		}
	}
	for _, e := range elems {
		if e == nil {
			b = codec.AppendInt32(b, -1)
			continue
		}
		b = codec.AppendInt32(b, 4)
		b = codec.AppendInt32(b, int32(e.(int)))
	}
	return b
}

func TestArrayAggBinary(t *testing.T) {
	desc := rowDesc(fd{"a", 1007, 1})
	spec := &Spec{Aggregate: true, Visible: 1, Values: vals(Value{Agg: AggArrayAgg, Col: 0})}
	out, err := runMergeRaw(t, spec, noLimit, desc,
		rows(dataRow(binArrayInt4(1, []int32{2}, 1, 2))), rows(dataRow(binArrayInt4(1, []int32{0}))), rows(dataRow(binArrayInt4(1, []int32{2}, nil, 4))))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := rawRows(t, out)[0][0], binArrayInt4(1, []int32{4}, 1, 2, nil, 4); !bytes.Equal(got, want) {
		t.Errorf("got % x\nwant % x", got, want)
	}
	// Two dimensions.
	out, err = runMergeRaw(t, spec, noLimit, desc, rows(dataRow(binArrayInt4(1, []int32{1, 2}, 1, 2))), rows(dataRow(binArrayInt4(1, []int32{2, 2}, 3, 4, 5, 6))))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := rawRows(t, out)[0][0], binArrayInt4(1, []int32{3, 2}, 1, 2, 3, 4, 5, 6); !bytes.Equal(got, want) {
		t.Errorf("got % x\nwant % x", got, want)
	}
	// Different inner dimensions, different element types, garbage.
	for _, b := range [][]byte{binArrayInt4(1, []int32{1, 3}, 1, 2, 3), binArrayInt4(1, []int32{1}, 1), {1, 2, 3}} {
		_, err = runMergeRaw(t, spec, noLimit, desc, rows(dataRow(binArrayInt4(1, []int32{1, 2}, 1, 2))), rows(dataRow(b)))
		if err == nil {
			t.Errorf("% x: no error", b)
		}
	}
	other := binArrayInt4(1, []int32{1}, 1)
	other[11] = 20 // element type int8
	if _, err = runMergeRaw(t, spec, noLimit, desc, rows(dataRow(binArrayInt4(1, []int32{1}, 1))), rows(dataRow(other))); err == nil {
		t.Error("element types differ: no error")
	}
}

func TestHaving(t *testing.T) {
	// SELECT g FROM ... GROUP BY g HAVING <cond> ORDER BY g, with count, sum(numeric), max(text), sum(float8) hidden.
	desc := rowDesc(fd{"g", oidInt4, 0}, fd{"count", oidInt8, 0}, fd{"sum", oidNumeric, 0}, fd{"max", oidText, 0}, fd{"f", oidFloat8, 0})
	spec := func(c *Cond) *Spec {
		return &Spec{Aggregate: true, Group: []int{0}, Visible: 1, Having: c, Order: []SortKey{{Value: 0}},
			Values: vals(Value{Col: 0}, Value{Agg: AggCount, Col: 1}, Value{Agg: AggSum, Col: 2}, Value{Agg: AggMax, Col: 3}, Value{Agg: AggSum, Col: 4})}
	}
	val := func(i int) Operand { return Operand{Value: i, Const: -1} }
	cst := func(i int) Operand { return Operand{Value: -1, Const: i} }
	cmp := func(l Operand, op CmpOp, r Operand) *Cond { return &Cond{Op: CondCmp, Cmp: op, L: l, R: r} }
	and := func(c ...*Cond) *Cond { return &Cond{Op: CondAnd, Args: c} }
	or := func(c ...*Cond) *Cond { return &Cond{Op: CondOr, Args: c} }
	not := func(c *Cond) *Cond { return &Cond{Op: CondNot, Args: []*Cond{c}} }
	// Groups: 1: count 3, sum 4.0, max z, f 1.5; 2: count 2, sum NULL, max b, f 2; 3: count 1, sum 10, max NULL, f NaN;
	// 4: count 5, sum -1, max c, f -Infinity.
	s0 := rows(dataRow("1", "1", "1.5", "a", "1"), dataRow("2", "2", nil, "b", "2"), dataRow("3", "1", "10", nil, "NaN"))
	s1 := rows(dataRow("1", "2", "2.5", "z", "0.5"), dataRow("4", "5", "-1", "c", "-Infinity"))
	consts := [][]byte{[]byte("2"), []byte("1.5"), []byte("b"), nil, []byte(" 4 "), []byte("Infinity"), []byte("1e300")}
	for _, c := range []struct {
		name string
		cond *Cond
		want []string
	}{
		{"count > 2", cmp(val(1), CmpGt, cst(0)), []string{"1", "4"}},
		{"count >= 1.5 (a numeric constant against bigint)", cmp(val(1), CmpGe, cst(1)), []string{"1", "2", "4"}},
		{"2 < count (constant on the left)", cmp(cst(0), CmpLt, val(1)), []string{"1", "4"}},
		{"sum = ' 4 '", cmp(val(2), CmpEq, cst(4)), []string{"1"}},
		{"sum <> 4", cmp(val(2), CmpNe, cst(4)), []string{"3", "4"}},
		{"sum <= count (numeric against bigint)", cmp(val(2), CmpLe, val(1)), []string{"4"}},
		{"max >= 'b'", cmp(val(3), CmpGe, cst(2)), []string{"1", "2", "4"}},
		{"max < 'b'", cmp(val(3), CmpLt, cst(2)), nil},
		{"sum = NULL", cmp(val(2), CmpEq, cst(3)), nil},
		{"sum IS NULL", &Cond{Op: CondIsNull, L: val(2)}, []string{"2"}},
		{"max IS NOT NULL", &Cond{Op: CondIsNotNull, L: val(3)}, []string{"1", "2", "4"}},
		{"f < Infinity (NaN is above)", cmp(val(4), CmpLt, cst(5)), []string{"1", "2", "4"}},
		{"f > count (float against bigint)", cmp(val(4), CmpGt, val(1)), []string{"3"}},
		{"f >= 1e300 (NaN is above every number)", cmp(val(4), CmpGe, cst(6)), []string{"3"}},
		{"NOT (sum > 0): NULL stays NULL", not(cmp(val(2), CmpGt, cst(0))), []string{"4"}},
		{"sum > 0 OR count = 2", or(cmp(val(2), CmpGt, cst(0)), cmp(val(1), CmpEq, cst(0))), []string{"1", "2", "3"}},
		{"sum > 0 AND max > 'b'", and(cmp(val(2), CmpGt, cst(0)), cmp(val(3), CmpGt, cst(2))), []string{"1"}},
		{"NOT (sum > 0 AND max > 'b'): NULL AND false is false", not(and(cmp(val(2), CmpGt, cst(0)), cmp(val(3), CmpGt, cst(2)))), []string{"2", "4"}},
	} {
		got, err := runMerge(t, spec(c.cond), Args{Limit: -1, Consts: consts}, desc, s0, s1)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, got, c.want)
		}
	}
	// A parameter sent in binary is read as the binary value of the other side's type.
	got, err := runMerge(t, spec(cmp(val(1), CmpGt, cst(0))), Args{Limit: -1, Consts: [][]byte{int8Bin(2)}, ConstFormats: []int16{codec.FormatBinary}}, desc, s0, s1)
	if err != nil || !slices.Equal(got, []string{"1", "4"}) {
		t.Errorf("binary constant: %v %v", got, err)
	}
	// A constant that does not read as the type.
	_, err = runMerge(t, spec(cmp(val(1), CmpGt, cst(2))), Args{Limit: -1, Consts: consts}, desc, s0, s1)
	if sqlstate(err) != codec.SQLStateInvalidTextRepresentation {
		t.Errorf("bad constant: %v", err)
	}
	// A constant index past Args.Consts.
	_, err = runMerge(t, spec(cmp(val(1), CmpGt, cst(9))), Args{Limit: -1, Consts: consts}, desc, s0, s1)
	if sqlstate(err) != codec.SQLStateInternalError {
		t.Errorf("missing constant: %v", err)
	}
	// Types that do not compare.
	_, err = runMerge(t, spec(cmp(val(3), CmpGt, val(1))), Args{Limit: -1, Consts: consts}, desc, s0, s1)
	if sqlstate(err) != codec.SQLStateFeatureNotSupported {
		t.Errorf("text against bigint: %v", err)
	}
}

func TestAggregateEmptyGroups(t *testing.T) {
	// GROUP BY over no rows: no row at all.
	desc := rowDesc(fd{"g", oidInt4, 0}, fd{"count", oidInt8, 0})
	spec := &Spec{Aggregate: true, Group: []int{0}, Visible: 2, Values: vals(Value{Col: 0}, Value{Agg: AggCount, Col: 1})}
	got, err := runMerge(t, spec, noLimit, desc, rows(), rows())
	if err != nil || len(got) != 0 {
		t.Fatalf("got %v %v", got, err)
	}
}

func TestMinMaxTypes(t *testing.T) {
	for _, c := range []struct {
		oid      uint32
		format   int16
		vals     []any
		min, max string
	}{
		{oidNumeric, 0, []any{"1.50", "NaN", "-Infinity", "2", nil}, "-Infinity", "NaN"},
		{oidFloat8, 0, []any{"-0", "NaN", "1e+300", "-1"}, "-1", "NaN"},
		{oidDate, 0, []any{"2024-01-01", "0044-03-15 BC", "infinity"}, "0044-03-15 BC", "infinity"},
		{oidTimestamptz, 0, []any{"2024-01-02 03:00:00+01", "2024-01-02 02:30:00+00"}, "2024-01-02 03:00:00+01", "2024-01-02 02:30:00+00"},
		{oidBpchar, 0, []any{"b ", "a  ", "ab"}, "a  ", "b "},
		{oidUUID, 0, []any{"ffffffff-ffff-ffff-ffff-ffffffffffff", "00000000-0000-0000-0000-000000000001"}, "00000000-0000-0000-0000-000000000001", "ffffffff-ffff-ffff-ffff-ffffffffffff"},
		{oidBool, 0, []any{"t", "f"}, "f", "t"},
		{oidBytea, 0, []any{`\x41`, `\x0102`}, `\x0102`, `\x41`},
	} {
		desc := rowDesc(fd{"min", c.oid, c.format}, fd{"max", c.oid, c.format})
		spec := &Spec{Aggregate: true, Visible: 2, Values: vals(Value{Agg: AggMin, Col: 0}, Value{Agg: AggMax, Col: 1})}
		var shards [][][]byte
		for _, v := range c.vals {
			shards = append(shards, rows(dataRow(v, v)))
		}
		got, err := runMerge(t, spec, noLimit, desc, shards...)
		if err != nil {
			t.Fatal(err)
		}
		if want := c.min + "|" + c.max; got[0] != want {
			t.Errorf("%s: got %s, want %s", typeName(c.oid), got[0], want)
		}
	}
}
