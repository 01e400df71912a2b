package route

import (
	"strconv"
	"syscall"
	"testing"
	"time"
)

// cpuClock measures the process's CPU time, so that benchmarks on a busy machine can also report the CPU cost
// per operation ("cpu-ns/op"), which other processes competing for the cores do not inflate as they inflate
// ns/op (wall time).
type cpuClock struct{ start time.Duration }

func cpuNow() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func startCPU() cpuClock { return cpuClock{start: cpuNow()} }

func (c cpuClock) report(b *testing.B) {
	if b.N > 0 {
		b.ReportMetric(float64(cpuNow()-c.start)/float64(b.N), "cpu-ns/op")
	}
}

const (
	benchSelect = "SELECT abalance FROM pgbench_accounts WHERE aid = 48213"
	benchUpdate = "UPDATE pgbench_accounts SET abalance = abalance + -4711 WHERE aid = 48213"
)

func benchRouter(b *testing.B) *Router {
	return NewRouter(mustSchema(b, testDB()), 1000)
}

func benchQueryHit(b *testing.B, q string) {
	r := benchRouter(b)
	if d := r.Query(q, NoSession); d.Err != nil || d.Any {
		b.Fatalf("%s: %s", q, describe(d))
	}
	b.SetBytes(int64(len(q)))
	b.ReportAllocs()
	cpu := startCPU()
	for b.Loop() {
		r.Query(q, NoSession)
	}
	cpu.report(b)
	if st := r.Stats(); st.Misses != int64Len(q) {
		b.Fatalf("stats %+v", st)
	}
}

// BenchmarkQueryHitSelect is the hot path of a simple-protocol query whose shape is cached (target: < 1 µs,
// 0 allocs): normalize, look up, read the literal, hash it.
func BenchmarkQueryHitSelect(b *testing.B) { benchQueryHit(b, benchSelect) }

// BenchmarkQueryHitUpdate is the same for an UPDATE with two literals.
func BenchmarkQueryHitUpdate(b *testing.B) { benchQueryHit(b, benchUpdate) }

// BenchmarkQueryHitPgbenchTx is pgbench's whole tpcb-like transaction sent as one Query string.
func BenchmarkQueryHitPgbenchTx(b *testing.B) {
	benchQueryHit(b, "BEGIN; UPDATE pgbench_accounts SET abalance = abalance + -4711 WHERE aid = 48213; "+
		"SELECT abalance FROM pgbench_accounts WHERE aid = 48213; COMMIT;")
}

// BenchmarkBind routes one execution of a prepared statement with a text parameter.
func BenchmarkBind(b *testing.B) {
	r := benchRouter(b)
	p := r.Prepare("SELECT abalance FROM pgbench_accounts WHERE aid = $1")
	params := Params{Values: [][]byte{[]byte("48213")}}
	b.ReportAllocs()
	cpu := startCPU()
	for b.Loop() {
		r.Bind(p, params, NoSession)
	}
	cpu.report(b)
}

// BenchmarkPrepareHit is a Parse of a statement text already planned.
func BenchmarkPrepareHit(b *testing.B) {
	r := benchRouter(b)
	q := "SELECT abalance FROM pgbench_accounts WHERE aid = $1"
	r.Prepare(q)
	b.ReportAllocs()
	cpu := startCPU()
	for b.Loop() {
		r.Prepare(q)
	}
	cpu.report(b)
}

// BenchmarkQueryMiss is the plan-cache miss: a pg_query parse and a plan build per query (each iteration is a
// new shape).
func BenchmarkQueryMiss(b *testing.B) {
	r := NewRouter(mustSchema(b, testDB()), 1)
	qs := make([]string, 1024)
	for i := range qs {
		qs[i] = "SELECT abalance, c" + strconv.Itoa(i) + " FROM pgbench_accounts WHERE aid = 48213"
	}
	b.ReportAllocs()
	i := 0
	cpu := startCPU()
	for b.Loop() {
		r.Query(qs[i%len(qs)], NoSession)
		i++
	}
	cpu.report(b)
	if st := r.Stats(); st.Hits != 0 {
		b.Fatalf("stats %+v", st)
	}
}

// BenchmarkQueryMissUpdate is the miss of the UPDATE shape.
func BenchmarkQueryMissUpdate(b *testing.B) {
	r := NewRouter(mustSchema(b, testDB()), 1)
	qs := make([]string, 1024)
	for i := range qs {
		qs[i] = "UPDATE pgbench_accounts SET abalance = abalance + -4711, c" + strconv.Itoa(i) + " = 1 WHERE aid = 48213"
	}
	b.ReportAllocs()
	i := 0
	cpu := startCPU()
	for b.Loop() {
		r.Query(qs[i%len(qs)], NoSession)
		i++
	}
	cpu.report(b)
}

// BenchmarkSplitInsert routes a four-row INSERT whose rows go to four shards (the split path allocates).
func BenchmarkSplitInsert(b *testing.B) {
	r := benchRouter(b)
	q := "INSERT INTO accounts (aid, abalance) VALUES (1, 0), (2, 0), (3, 0), (4, 0)"
	b.ReportAllocs()
	cpu := startCPU()
	for b.Loop() {
		r.Query(q, NoSession)
	}
	cpu.report(b)
}

// int64Len is the number of statements of a Query string: its plans are the misses of a hit benchmark.
func int64Len(q string) uint64 {
	n := uint64(1)
	for i := 0; i+1 < len(q); i++ {
		if q[i] == ';' {
			n++
		}
	}
	return n
}
