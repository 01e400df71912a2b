package lex

import "testing"

func BenchmarkLexer(b *testing.B) {
	var l Lexer
	b.SetBytes(int64(len(benchQuery)))
	b.ReportAllocs()
	for b.Loop() {
		l.Reset(benchQuery)
		for l.Next().Kind != EOF {
		}
	}
}

// BenchmarkNormalize is the per-query cost on the proxy's hot path: a 100-byte query with 3 literals into a
// reused Normalized (target: 0 allocs, well under 1 µs).
func BenchmarkNormalize(b *testing.B) {
	var n Normalized
	_ = Normalize(benchQuery, &n)
	b.SetBytes(int64(len(benchQuery)))
	b.ReportAllocs()
	for b.Loop() {
		if err := Normalize(benchQuery, &n); err != nil {
			b.Fatal(err)
		}
	}
	if len(n.Literals) != 3 {
		b.Fatalf("%d literals", len(n.Literals))
	}
}

func BenchmarkNormalizeHint(b *testing.B) {
	const q = "/* pgshard: shard=1, key='abc' */ SELECT * FROM events WHERE region = 'eu' AND ts > 1700000000"
	var n Normalized
	b.SetBytes(int64(len(q)))
	b.ReportAllocs()
	for b.Loop() {
		if err := Normalize(q, &n); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkClassifySet(b *testing.B) {
	const q = "SET search_path = \"$user\", public"
	b.ReportAllocs()
	for b.Loop() {
		if Classify(q).Kind != StmtSet {
			b.Fatal("not a SET")
		}
	}
}

func BenchmarkClassifySelect(b *testing.B) {
	b.SetBytes(int64(len(benchQuery)))
	b.ReportAllocs()
	for b.Loop() {
		if Classify(benchQuery).Kind != StmtOther {
			b.Fatal("kind")
		}
	}
}

func BenchmarkSplit(b *testing.B) {
	const q = "BEGIN; UPDATE accounts SET balance = balance - 1 WHERE id = 1; SELECT ';' FROM t; COMMIT"
	dst := make([][2]int, 0, 8)
	b.SetBytes(int64(len(q)))
	b.ReportAllocs()
	for b.Loop() {
		dst = Split(q, dst[:0])
	}
}

// BenchmarkReadAccess is what the read/write split costs a simple Query of pgbench -S (named statements are
// classified once).
func BenchmarkReadAccess(b *testing.B) {
	const q = "SELECT abalance FROM pgbench_accounts WHERE aid = 48213;"
	b.ReportAllocs()
	for b.Loop() {
		if !ReadAccess(q).Read {
			b.Fatal("not a read")
		}
	}
}
