package merge

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/pgshard/pgshard/codec"
	"github.com/pgshard/pgshard/internal/pgtest"
)

// The Postgres oracle: a real server formats floats and numerics, divides for avg, and sorts; the merger must
// produce the same bytes (text and binary). Skipped in -short mode.

type oracle struct {
	t   *testing.T
	ctx context.Context
	pc  *pgconn.PgConn
}

// query runs sql with text parameters and returns its RowDescription and DataRows as the server would send
// them, every column in format.
func (o *oracle) query(sql string, format int16, params ...string) ([]byte, [][]byte) {
	o.t.Helper()
	vals := make([][]byte, len(params))
	for i, p := range params {
		vals[i] = []byte(p)
	}
	res := o.pc.ExecParams(o.ctx, sql, vals, nil, nil, []int16{format}).Read()
	if res.Err != nil {
		o.t.Fatalf("%s: %v", sql, res.Err)
	}
	fields := make([]codec.FieldDescription, len(res.FieldDescriptions))
	for i, f := range res.FieldDescriptions {
		fields[i] = codec.FieldDescription{Name: []byte(f.Name), TableOID: f.TableOID, ColumnNumber: int16(f.TableAttributeNumber),
			TypeOID: f.DataTypeOID, TypeSize: f.DataTypeSize, TypeModifier: f.TypeModifier, Format: f.Format}
	}
	rows := make([][]byte, len(res.Rows))
	for i, r := range res.Rows {
		rows[i] = codec.AppendDataRow(nil, r)
	}
	return codec.AppendRowDescription(nil, fields), rows
}

func (o *oracle) exec(sql string) {
	o.t.Helper()
	if err := o.pc.Exec(o.ctx, sql).Close(); err != nil {
		o.t.Fatalf("%s: %v", sql, err)
	}
}

func pgArray(vals []string) string { return "{" + strings.Join(vals, ",") + "}" }

func TestPostgresOracle(t *testing.T) {
	c := pgtest.Start(t, pgtest.Options{})
	conn := c.Connect(t, "postgres", pgtest.Superuser, "")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	o := &oracle{t: t, ctx: ctx, pc: conn.PgConn()}
	r := rand.New(rand.NewPCG(11, 13))
	t.Run("float8out", func(t *testing.T) { o.t = t; oracleFloats(o, r, false) })
	t.Run("float4out", func(t *testing.T) { o.t = t; oracleFloats(o, r, true) })
	t.Run("numeric", func(t *testing.T) { o.t = t; oracleNumeric(o, r) })
	t.Run("aggregates", func(t *testing.T) { o.t = t; oracleAggregates(o, r) })
	t.Run("order", func(t *testing.T) { o.t = t; oracleOrder(o, r) })
}

// oracleFloats compares float8out/float4out with appendFloat8/appendFloat4 over random doubles.
func oracleFloats(o *oracle, r *rand.Rand, single bool) {
	t := o.t
	var vals []float64
	for _, f := range []float64{0, math.Copysign(0, -1), 1, -1, 0.1, 1e14, 1e15, 1e16, 123456789012345, 1234567890123456, 1e-4, 1e-5,
		9.999e-5, 99999, 100000, 999999, 1000000, 1e7, math.MaxFloat64, math.SmallestNonzeroFloat64, 2.2250738585072014e-308,
		math.MaxFloat32, 1.401298464324817e-45, 1.1754943508222875e-38, math.Inf(1), math.Inf(-1), math.NaN()} {
		vals = append(vals, f)
	}
	for i := 0; i < 2000; i++ {
		var f float64
		switch i % 4 {
		case 0:
			f = math.Float64frombits(r.Uint64())
		case 1:
			f = float64(r.Int64N(1e9)) / math.Pow(10, float64(r.IntN(12)))
		case 2:
			f = r.NormFloat64() * math.Pow(10, float64(r.IntN(40)-20))
		default:
			f = float64(math.Float32frombits(r.Uint32()))
		}
		if single {
			f = float64(float32(f))
		}
		if f != f && i%4 != 3 {
			continue
		}
		vals = append(vals, f)
	}
	texts := make([]string, len(vals))
	typ := "float8"
	if single {
		typ = "float4"
	}
	for i, f := range vals {
		// Shortest round-trip forms read back exactly in Postgres too.
		switch {
		case f != f:
			texts[i] = "NaN"
		case math.IsInf(f, 1):
			texts[i] = "Infinity"
		case math.IsInf(f, -1):
			texts[i] = "-Infinity"
		case single:
			texts[i] = strconv.FormatFloat(f, 'g', -1, 32)
		default:
			texts[i] = strconv.FormatFloat(f, 'g', -1, 64)
		}
	}
	_, rows := o.query("SELECT x::text, x FROM unnest($1::"+typ+"[]) WITH ORDINALITY AS u(x, i) ORDER BY i", codec.FormatText, pgArray(texts))
	if len(rows) != len(vals) {
		t.Fatalf("%d rows for %d values", len(rows), len(vals))
	}
	bad := 0
	for i, row := range rows {
		var got []byte
		if single {
			got = appendFloat4(nil, float32(vals[i]))
		} else {
			got = appendFloat8(nil, vals[i])
		}
		want := rawRows(t, row)[0][0]
		if !bytes.Equal(got, want) {
			t.Errorf("%s %v (%s): ours %q, Postgres %q", typ, vals[i], texts[i], got, want)
			if bad++; bad > 10 {
				t.FailNow()
			}
		}
	}
	t.Logf("%d %s values", len(vals), typ)
}

// oracleNumeric compares numeric_out and numeric_send, and numeric division, with ours.
func oracleNumeric(o *oracle, r *rand.Rand) {
	t := o.t
	vals := []string{"0", "0.000", "-0.00", "NaN", "Infinity", "-Infinity", "1e20", "1.5e-10", "12345.678", "-0.00012", "10000", "9999.9999"}
	for i := 0; i < 1500; i++ {
		vals = append(vals, randomNumeric(r))
	}
	q := "SELECT x::numeric::text, x::numeric FROM unnest($1::text[]) WITH ORDINALITY AS u(x, i) ORDER BY i"
	_, textRows := o.query(q, codec.FormatText, pgArray(vals))
	_, binRows := o.query(q, codec.FormatBinary, pgArray(vals))
	for i, v := range vals {
		wantText := rawRows(t, textRows[i])[0][0]
		wantBin := rawRows(t, binRows[i])[0][1]
		d := dec(t, v)
		if got := d.appendText(nil); !bytes.Equal(got, wantText) {
			t.Errorf("numeric %q: out %q, Postgres %q", v, got, wantText)
		}
		if got := d.appendBinary(nil); !bytes.Equal(got, wantBin) {
			t.Errorf("numeric %q: send % x, Postgres % x", v, got, wantBin)
		}
		var e decimal
		if !e.parse(codec.FormatBinary, wantBin) || !bytes.Equal(e.appendText(nil), wantText) {
			t.Errorf("numeric %q: Postgres's binary % x reads as %q", v, wantBin, e.appendText(nil))
		}
	}
	// Division as avg does it: numeric / bigint count.
	var pairs []string
	type pair struct{ n, m string }
	var ps []pair
	for i := 0; i < 1500; i++ {
		n := randomNumeric(r)
		m := strconv.Itoa(1 + r.IntN(20))
		if i%3 == 0 {
			m = strconv.FormatInt(1+r.Int64N(1e12), 10)
		}
		ps = append(ps, pair{n, m})
		pairs = append(pairs, `"(`+n+","+m+`)"`)
	}
	o.exec("CREATE TYPE pair AS (n numeric, m bigint)")
	_, rows := o.query("SELECT n / m FROM unnest($1::pair[]) WITH ORDINALITY AS u(n, m, i) ORDER BY i", codec.FormatText, pgArray(pairs))
	for i, p := range ps {
		var q decimal
		q.div(dec(t, p.n), dec(t, p.m))
		if got, want := q.appendText(nil), rawRows(t, rows[i])[0][0]; !bytes.Equal(got, want) {
			t.Errorf("%s / %s: ours %s, Postgres %s", p.n, p.m, got, want)
		}
	}
}

// oracleAggregates splits a table in three "shards", merges the partial aggregates the router asks the shards
// for, and compares with Postgres's aggregates over the whole table, in text and in binary.
func oracleAggregates(o *oracle, r *rand.Rand) {
	t := o.t
	o.exec("CREATE TABLE agg (id int, g int, i int4, b int8, n numeric, f float8, t text, ok bool)")
	var sb strings.Builder
	sb.WriteString("INSERT INTO agg VALUES ")
	for id := 0; id < 3000; id++ {
		if id > 0 {
			sb.WriteString(",")
		}
		null := func(s string) string {
			if r.IntN(10) == 0 {
				return "NULL"
			}
			return s
		}
		fmt.Fprintf(&sb, "(%d,%d,%s,%s,%s,%s,%s,%s)", id, r.IntN(40), null(strconv.Itoa(r.IntN(2000)-1000)),
			null(strconv.FormatInt(r.Int64N(1<<60)-1<<59, 10)), null(randomNumeric(r)), null(strconv.Itoa(r.IntN(4000)-2000)+"/4.0"),
			null("'"+strconv.Itoa(r.IntN(1000))+"'"), null([]string{"true", "false"}[r.IntN(2)]))
	}
	o.exec(sb.String())
	o.exec("INSERT INTO agg VALUES (3000, 40, NULL, NULL, NULL, NULL, NULL, NULL)") // a group of NULLs only
	// Shard columns: g, count(*), sum(i), count(i), sum(b), count(b), sum(n), count(n), sum(f), count(f),
	// min(n), max(t), bool_and(ok), bool_or(ok), sum(i) again (for sum), min(f)
	shardSQL := `SELECT g, count(*), sum(i), count(i), sum(b), count(b), sum(n), count(n), sum(f), count(f),
	                    min(n), max(t COLLATE "C"), bool_and(ok), bool_or(ok), sum(n), min(f)
	             FROM agg WHERE id % 3 = $1 GROUP BY g`
	wholeSQL := `SELECT g, count(*), avg(i), avg(b), avg(n), avg(f), min(n), max(t COLLATE "C"), bool_and(ok), bool_or(ok), sum(n), min(f), sum(i)
	             FROM agg GROUP BY g ORDER BY g`
	spec := &Spec{Aggregate: true, Group: []int{0}, Visible: 13, Order: []SortKey{{Value: 0}},
		Values: vals(Value{Col: 0}, Value{Agg: AggCount, Col: 1}, Value{Agg: AggAvg, Col: 2, Col2: 3}, Value{Agg: AggAvg, Col: 4, Col2: 5},
			Value{Agg: AggAvg, Col: 6, Col2: 7}, Value{Agg: AggAvg, Col: 8, Col2: 9}, Value{Agg: AggMin, Col: 10}, Value{Agg: AggMax, Col: 11},
			Value{Agg: AggBoolAnd, Col: 12}, Value{Agg: AggBoolOr, Col: 13}, Value{Agg: AggSum, Col: 14}, Value{Agg: AggMin, Col: 15},
			Value{Agg: AggSum, Col: 2})}
	for _, format := range []int16{codec.FormatText, codec.FormatBinary} {
		var desc []byte
		var shards [][][]byte
		for s := 0; s < 3; s++ {
			d, rows := o.query(shardSQL, format, strconv.Itoa(s))
			desc = d
			r.Shuffle(len(rows), func(i, j int) { rows[i], rows[j] = rows[j], rows[i] })
			shards = append(shards, rows)
		}
		m := New(spec, 3, noLimit)
		for s := range shards {
			if err := m.Describe(s, desc); err != nil {
				t.Fatal(err)
			}
		}
		wantDesc, want := o.query(wholeSQL, format)
		got, err := runMergeRaw(t, spec, noLimit, desc, shards...)
		if err != nil {
			t.Fatal(err)
		}
		if len(want) != 41 {
			t.Fatalf("%d groups", len(want))
		}
		gotRows, wantRows := rawRows(t, got), rawRows(t, bytes.Join(want, nil))
		if len(gotRows) != len(wantRows) {
			t.Fatalf("format %d: %d rows, Postgres %d", format, len(gotRows), len(wantRows))
		}
		names := []string{"g", "count", "avg(int4)", "avg(int8)", "avg(numeric)", "avg(float8)", "min(numeric)", "max(text)",
			"bool_and", "bool_or", "sum(numeric)", "min(float8)", "sum(int4)"}
		for i := range wantRows {
			for j := range wantRows[i] {
				if !bytes.Equal(gotRows[i][j], wantRows[i][j]) {
					t.Errorf("format %d, group %d, %s: ours %q, Postgres %q", format, i, names[j], gotRows[i][j], wantRows[i][j])
				}
			}
		}
		// The client's RowDescription has Postgres's types for the finished aggregates (names aside).
		ours, _ := codec.ParseRowDescription(m.RowDescription(nil)[5:])
		theirs, _ := codec.ParseRowDescription(wantDesc[5:])
		of, tf := ours.Fields(nil), theirs.Fields(nil)
		for i := range tf {
			if of[i].TypeOID != tf[i].TypeOID || of[i].TypeSize != tf[i].TypeSize || of[i].Format != tf[i].Format {
				t.Errorf("column %s: ours type %d size %d format %d, Postgres %d %d %d", names[i], of[i].TypeOID, of[i].TypeSize, of[i].Format,
					tf[i].TypeOID, tf[i].TypeSize, tf[i].Format)
			}
		}
	}
}

// oracleOrder merges three sorted "shards" and compares with Postgres's ORDER BY over the whole table, for keys
// of every supported type, both directions and NULLS placements, in text and binary.
func oracleOrder(o *oracle, r *rand.Rand) {
	t := o.t
	o.exec(`CREATE TABLE ord (id int, i2 int2, i8 int8, n numeric, f4 float4, f8 float8, t text, c char(4), by bytea, u uuid,
		d date, tm time, ts timestamp, tz timestamptz, b bool, o oid)`)
	pick := func(vs ...string) string {
		if r.IntN(8) == 0 {
			return "NULL"
		}
		return vs[r.IntN(len(vs))]
	}
	var sb strings.Builder
	sb.WriteString("INSERT INTO ord VALUES ")
	for id := 0; id < 600; id++ {
		if id > 0 {
			sb.WriteString(",")
		}
		fmt.Fprintf(&sb, "(%d,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)", id,
			pick("-32768", "-1", "0", "7", "32767"),
			pick("-9223372036854775808", "-5", "0", "5", "9223372036854775807"),
			pick("'NaN'", "'Infinity'", "'-Infinity'", "1.5", "1.50", "-2", "0", "0.000", "123456789.123456789", "-0.0001"),
			pick("'NaN'", "'Infinity'", "'-0'", "0", "1.5", "-3.25e10", "1e-40"),
			pick("'NaN'", "'-Infinity'", "'-0'", "0", "0.1", "1e300", "-2.5"),
			pick("''", "'a'", "'B'", "'ab'", "'é'", "' a'"),
			pick("'a'", "'a  '", "' b'", "''", "'ab'"),
			pick(`'\x'`, `'\x00'`, `'\x0001'`, `'\xff'`, `'\x41'`),
			pick("'00000000-0000-0000-0000-000000000000'", "'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'", "'ffffffff-ffff-ffff-ffff-ffffffffffff'"),
			pick("'-infinity'", "'infinity'", "'2024-01-02'", "'0044-03-15 BC'", "'10000-01-01'", "'2000-02-29'"),
			pick("'00:00'", "'24:00'", "'12:34:56.789'", "'03:04:05.000001'"),
			pick("'-infinity'", "'infinity'", "'2024-01-02 03:04:05.5'", "'0044-03-15 12:00:00 BC'", "'2024-01-02 03:04:05'"),
			// The last four are around DST ends in Amsterdam and St John's: local time goes back.
			pick("'2024-01-02 03:04:05+00'", "'2024-01-02 04:04:05.25+01'", "'1900-01-01 00:00:00+00'", "'0044-03-15 12:00:00+00 BC'", "'infinity'",
				"'2024-10-27 00:30:00+00'", "'2024-10-27 01:10:00+00'", "'2024-11-03 04:00:00+00'", "'2024-11-03 04:40:00+00'"),
			pick("true", "false"),
			pick("0", "1", "4294967295", "2147483648"))
	}
	o.exec(sb.String())
	// Odd UTC offsets in timestamptz text (Amsterdam had +00:19:32 in 1900, St John's is -03:30).
	o.exec("SET TimeZone = 'Europe/Amsterdam'")
	defer o.exec("RESET TimeZone")
	cols := []string{"i2", "i8", "n", "f4", "f8", "t", "c", "by", "u", "d", "tm", "ts", "tz", "b", "o"}
	for iter := 0; iter < 24; iter++ {
		if iter == 12 {
			o.exec("SET TimeZone = 'America/St_Johns'")
		}
		nk := 1 + r.IntN(3)
		var keys []string
		var order []SortKey
		for j := 0; j < nk; j++ {
			col := cols[r.IntN(len(cols))]
			desc, nullsFirst := r.IntN(2) == 0, r.IntN(2) == 0
			k := col
			if col == "t" || col == "c" {
				k += ` COLLATE "C"`
			}
			if desc {
				k += " DESC"
			}
			if nullsFirst {
				k += " NULLS FIRST"
			} else {
				k += " NULLS LAST"
			}
			keys = append(keys, k)
			order = append(order, SortKey{Value: j, Desc: desc, NullsFirst: nullsFirst})
		}
		// Columns: the keys, then id (a last key, so that the order is total).
		var sel []string
		for _, k := range keys {
			sel = append(sel, strings.Fields(k)[0])
		}
		sel = append(sel, "id")
		order = append(order, SortKey{Value: nk})
		orderBy := strings.Join(keys, ", ") + ", id"
		spec := &Spec{Values: cols0(nk + 1), Visible: nk + 1, Order: order}
		for _, format := range []int16{codec.FormatText, codec.FormatBinary} {
			var desc []byte
			var shards [][][]byte
			for s := 0; s < 3; s++ {
				d, rows := o.query("SELECT "+strings.Join(sel, ", ")+" FROM ord WHERE id % 3 = $1 ORDER BY "+orderBy, format, strconv.Itoa(s))
				desc, shards = d, append(shards, rows)
			}
			_, want := o.query("SELECT "+strings.Join(sel, ", ")+" FROM ord ORDER BY "+orderBy, format)
			got, err := runMergeRaw(t, spec, noLimit, desc, shards...)
			if err != nil {
				t.Fatalf("ORDER BY %s: %v", orderBy, err)
			}
			if w := bytes.Join(want, nil); !bytes.Equal(got, w) {
				g, wr := rawRows(t, got), rawRows(t, w)
				for i := range wr {
					if i >= len(g) || fmt.Sprint(g[i]) != fmt.Sprint(wr[i]) {
						t.Fatalf("ORDER BY %s (format %d): row %d differs:\nours     %q\nPostgres %q", orderBy, format, i, g[i], wr[i])
					}
				}
				t.Fatalf("ORDER BY %s (format %d): rows differ", orderBy, format)
			}
		}
	}
}
