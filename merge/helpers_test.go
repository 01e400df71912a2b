package merge

import (
	"strings"
	"testing"

	"github.com/pgshard/pgshard/codec"
)

// fd is a column of a test RowDescription.
type fd struct {
	name   string
	oid    uint32
	format int16
}

func rowDesc(cols ...fd) []byte {
	fields := make([]codec.FieldDescription, len(cols))
	for i, c := range cols {
		size := int16(-1)
		switch c.oid {
		case oidInt8, oidFloat8, oidTimestamp, oidTimestamptz, oidTime:
			size = 8
		case oidInt4, oidFloat4, oidDate, oidOID:
			size = 4
		case oidInt2:
			size = 2
		case oidBool:
			size = 1
		}
		fields[i] = codec.FieldDescription{Name: []byte(c.name), TableOID: 16384, ColumnNumber: int16(i + 1),
			TypeOID: c.oid, TypeSize: size, TypeModifier: -1, Format: c.format}
	}
	return codec.AppendRowDescription(nil, fields)
}

// dataRow builds a DataRow: a string is a value's bytes, nil is NULL, []byte is raw bytes.
func dataRow(vals ...any) []byte {
	vs := make([][]byte, len(vals))
	for i, v := range vals {
		switch x := v.(type) {
		case nil:
		case string:
			vs[i] = []byte(x)
		case []byte:
			vs[i] = append([]byte{}, x...)
			if vs[i] == nil {
				vs[i] = []byte{}
			}
		default:
			panic("dataRow: bad value")
		}
	}
	return codec.AppendDataRow(nil, vs)
}

// textRows decodes a stream of DataRows into "a|b|NULL" strings.
func textRows(t testing.TB, b []byte) []string {
	t.Helper()
	var out []string
	for len(b) > 0 {
		msg, n, err := codec.ReadMessage(b, 0)
		if err != nil || n == 0 || msg.Type != codec.DataRow {
			t.Fatalf("bad emitted stream: %v (n=%d type %q)", err, n, msg.Type)
		}
		dr, err := codec.ParseDataRow(msg.Body)
		if err != nil {
			t.Fatal(err)
		}
		cols, err := dr.Columns(nil)
		if err != nil {
			t.Fatal(err)
		}
		parts := make([]string, len(cols))
		for i, c := range cols {
			if c == nil {
				parts[i] = "NULL"
			} else {
				parts[i] = string(c)
			}
		}
		out = append(out, strings.Join(parts, "|"))
		b = b[n:]
	}
	return out
}

// rawRows decodes a stream of DataRows into their column values.
func rawRows(t testing.TB, b []byte) [][][]byte {
	t.Helper()
	var out [][][]byte
	for len(b) > 0 {
		msg, n, err := codec.ReadMessage(b, 0)
		if err != nil || n == 0 || msg.Type != codec.DataRow {
			t.Fatalf("bad emitted stream: %v", err)
		}
		dr, _ := codec.ParseDataRow(msg.Body)
		cols, err := dr.Columns(nil)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, cols)
		b = b[n:]
	}
	return out
}

// runMerge feeds every shard's description and rows (round robin, one row at a time, emitting after each) and
// returns the emitted rows as text.
func runMerge(t testing.TB, spec *Spec, args Args, desc []byte, shards ...[][]byte) ([]string, error) {
	t.Helper()
	out, err := runMergeRaw(t, spec, args, desc, shards...)
	if err != nil {
		return nil, err
	}
	return textRows(t, out), nil
}

func runMergeRaw(t testing.TB, spec *Spec, args Args, desc []byte, shards ...[][]byte) ([]byte, error) {
	t.Helper()
	m := New(spec, len(shards), args)
	for s := range shards {
		if err := m.Describe(s, desc); err != nil {
			return nil, err
		}
	}
	var out []byte
	var err error
	next := make([]int, len(shards))
	for more := true; more; {
		more = false
		for s, rows := range shards {
			if next[s] < len(rows) {
				if err := m.Row(s, rows[next[s]]); err != nil {
					return nil, err
				}
				next[s]++
				more = true
			} else if next[s] == len(rows) {
				m.End(s)
				next[s]++
			}
			if out, err = m.Emit(out); err != nil {
				return nil, err
			}
		}
	}
	for s := range shards {
		m.End(s)
	}
	if out, err = m.Emit(out); err != nil {
		return nil, err
	}
	if got := uint64(len(textRows(t, out))); got != m.Rows() {
		t.Errorf("Rows() = %d, emitted %d", m.Rows(), got)
	}
	return out, nil
}

func rows(r ...[]byte) [][]byte { return r }

func vals(specVals ...Value) []Value { return specVals }

// cols0 is Values that are shard columns 0..n-1.
func cols0(n int) []Value {
	v := make([]Value, n)
	for i := range v {
		v[i] = Value{Col: i}
	}
	return v
}
