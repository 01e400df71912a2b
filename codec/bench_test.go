package codec

import (
	"strconv"
	"testing"
)

// benchRow is a typical narrow row: bigint, text, NULL, timestamp, numeric (text format).
var benchRow = [][]byte{[]byte("123456789"), []byte("alice@example.com"), nil, []byte("2024-05-01 12:34:56.789+00"), []byte("1234.50")}

const benchRows = 1000

func benchRowStream() []byte {
	var buf []byte
	for i := 0; i < benchRows; i++ {
		buf = AppendDataRow(buf, benchRow)
	}
	return append(buf, AppendCommandComplete(nil, "SELECT "+strconv.Itoa(benchRows))...)
}

// BenchmarkReadMessageDataRows frames a buffer of 1000 DataRows and a CommandComplete (one op = the whole buffer).
func BenchmarkReadMessageDataRows(b *testing.B) {
	buf := benchRowStream()
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		rest, count := buf, 0
		for {
			m, n, err := ReadMessage(rest, DefaultMaxMessageSize)
			if err != nil || n == 0 {
				break
			}
			if m.Type == DataRow {
				count++
			}
			rest = rest[n:]
		}
		if count != benchRows {
			b.Fatal(count)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*(benchRows+1)), "ns/msg")
}

func BenchmarkDataRowColumns(b *testing.B) {
	body := AppendDataRow(nil, benchRow)[HeaderLen:]
	cols := make([][]byte, 0, 16)
	b.ReportAllocs()
	for b.Loop() {
		m, err := ParseDataRow(body)
		if err != nil {
			b.Fatal(err)
		}
		cols, err = m.Columns(cols)
		if err != nil || len(cols) != len(benchRow) {
			b.Fatal(err)
		}
	}
}

func BenchmarkDataRowIter(b *testing.B) {
	body := AppendDataRow(nil, benchRow)[HeaderLen:]
	b.ReportAllocs()
	for b.Loop() {
		m, _ := ParseDataRow(body)
		it, n := m.Iter(), 0
		for it.Next() {
			n += len(it.Value())
		}
		if it.Err() != nil || n == 0 {
			b.Fatal(it.Err())
		}
	}
}

func BenchmarkParseBind(b *testing.B) {
	body := AppendBind(nil, "", "pgshard_s42", []int16{1, 0, 0}, [][]byte{{0, 0, 0, 0, 0, 0, 0, 42}, []byte("alice"), nil}, []int16{1})[HeaderLen:]
	b.ReportAllocs()
	for b.Loop() {
		m, err := ParseBind(body)
		if err != nil {
			b.Fatal(err)
		}
		it := m.Params()
		for it.Next() {
		}
		if len(m.Statement) == 0 {
			b.Fatal("no statement")
		}
	}
}

func BenchmarkParseParse(b *testing.B) {
	body := AppendParse(nil, "s1", "select abalance from pgbench_accounts where aid = $1", []uint32{20})[HeaderLen:]
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseParse(body); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseRowDescription(b *testing.B) {
	fields := []FieldDescription{
		{Name: []byte("aid"), TableOID: 16390, ColumnNumber: 1, TypeOID: 23, TypeSize: 4, TypeModifier: -1},
		{Name: []byte("bid"), TableOID: 16390, ColumnNumber: 2, TypeOID: 23, TypeSize: 4, TypeModifier: -1},
		{Name: []byte("abalance"), TableOID: 16390, ColumnNumber: 3, TypeOID: 23, TypeSize: 4, TypeModifier: -1},
		{Name: []byte("filler"), TableOID: 16390, ColumnNumber: 4, TypeOID: 1042, TypeSize: -1, TypeModifier: 88},
	}
	body := AppendRowDescription(nil, fields)[HeaderLen:]
	dst := make([]FieldDescription, 0, 8)
	b.ReportAllocs()
	for b.Loop() {
		m, err := ParseRowDescription(body)
		if err != nil {
			b.Fatal(err)
		}
		dst = m.Fields(dst[:0])
	}
}

func BenchmarkAppendDataRow(b *testing.B) {
	dst := make([]byte, 0, 1024)
	b.ReportAllocs()
	for b.Loop() {
		dst = AppendDataRow(dst[:0], benchRow)
	}
}

func BenchmarkAppendQuery(b *testing.B) {
	dst := make([]byte, 0, 1024)
	b.ReportAllocs()
	for b.Loop() {
		dst = AppendQuery(dst[:0], "select abalance from pgbench_accounts where aid = 42")
	}
}

func BenchmarkAppendErrorResponse(b *testing.B) {
	e := NewError(SQLStateFeatureNotSupported, "cross-shard UPDATE of the shard key is not supported").
		WithHint("update the row on its shard, or delete and re-insert it")
	dst := make([]byte, 0, 1024)
	b.ReportAllocs()
	for b.Loop() {
		dst = AppendErrorResponse(dst[:0], e)
	}
}

func BenchmarkAppendBind(b *testing.B) {
	params := [][]byte{{0, 0, 0, 0, 0, 0, 0, 42}, []byte("alice"), nil}
	stmt := []byte("pgshard_s42")
	formats := []int16{1, 0, 0}
	dst := make([]byte, 0, 1024)
	b.ReportAllocs()
	for b.Loop() {
		dst = AppendBind(dst[:0], "", stmt, formats, params, nil)
	}
}

func BenchmarkAppendParse(b *testing.B) {
	query := []byte("select abalance from pgbench_accounts where aid = $1")
	dst := make([]byte, 0, 1024)
	b.ReportAllocs()
	for b.Loop() {
		dst = AppendParse(dst[:0], "pgshard_s42", query, nil)
	}
}
