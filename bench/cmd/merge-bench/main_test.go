package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/pgshard/pgshard/bench/internal/benchkit"

	"github.com/pgshard/pgshard/config"
	"github.com/pgshard/pgshard/internal/pgtest"
)

func TestCheckLimit(t *testing.T) {
	seq := func(from int32, n int) []int32 {
		out := make([]int32, n)
		for i := range out {
			out[i] = from + int32(i/3) // repeated k values, as in the data
		}
		return out
	}
	good := seq(5, limitRows)
	if w := checkLimit(good, nil); w != "" {
		t.Errorf("sorted 100 rows: %q", w)
	}
	if w := checkLimit(good, good); w != "" {
		t.Errorf("same as the reference: %q", w)
	}
	if w := checkLimit(good[:99], nil); !strings.Contains(w, "99 rows") {
		t.Errorf("99 rows: %q", w)
	}
	if w := checkLimit(good[:99], good); !strings.Contains(w, "the reference returns 100") {
		t.Errorf("99 rows against the reference: %q", w)
	}
	swapped := append([]int32(nil), good...)
	swapped[10], swapped[50] = swapped[50], swapped[10]
	if w := checkLimit(swapped, nil); !strings.Contains(w, "not ordered by k") {
		t.Errorf("unordered: %q", w)
	}
	// Sorted, but not the 100 smallest: the merge dropped a shard's rows.
	if w := checkLimit(seq(6, limitRows), good); !strings.Contains(w, "the reference's has k = 5") {
		t.Errorf("other rows: %q", w)
	}
}

func TestSummarize(t *testing.T) {
	ok := func(target string, rep int, secs float64) Run {
		return Run{Target: target, Rep: rep, Seconds: secs, Rows: 1000, Bytes: 2e6}
	}
	runs := []Run{ok(Direct, 0, 9), ok(Pgshard, 0, 9)}
	for rep, s := range []float64{1, 3, 2} {
		runs = append(runs, ok(Direct, rep+1, s), ok(Pgshard, rep+1, 2*s))
	}
	d, p := summarize(Direct, runs), summarize(Pgshard, runs)
	if d.Status != statusOK || d.MedianOf != 3 || d.Seconds != 2 || d.RowsPerSec != 500 || d.MBPerSec != 1 {
		t.Errorf("direct: %+v", d)
	}
	if p.Status != statusOK || p.Seconds != 4 || p.RowsPerSec != 250 {
		t.Errorf("pgshard: %+v", p)
	}

	unsupported := []Run{ok(Direct, 0, 1), ok(Direct, 1, 1)}
	for rep := range 2 {
		unsupported = append(unsupported, Run{Target: Pgshard, Rep: rep, SQLState: "0A000",
			Error: "ERROR: cross-shard SELECT with ORDER BY is not supported yet (SQLSTATE 0A000)"})
	}
	if s := summarize(Pgshard, unsupported); s.Status != statusUnsupported || !strings.Contains(s.Detail, "ORDER BY") {
		t.Errorf("0A000: %+v", s)
	}

	wrong := append(runs, Run{Target: Pgshard, Rep: 4, Seconds: 1, Rows: 999, Wrong: "999 rows, want 1000"})
	if s := summarize(Pgshard, wrong); s.Status != statusWrong || !strings.Contains(s.Detail, "rep 4: 999 rows") {
		t.Errorf("wrong: %+v", s)
	}

	failing := append(runs, Run{Target: Pgshard, Rep: 4, Error: "unexpected EOF"})
	if s := summarize(Pgshard, failing); s.Status != statusOK || s.FailedRuns != 1 || !strings.Contains(s.Detail, "1 of 4 runs failed") {
		t.Errorf("one failed run: %+v", s)
	}
	broken := []Run{{Target: Pgshard, Rep: 1, Error: "connection refused"}}
	if s := summarize(Pgshard, broken); s.Status != statusError {
		t.Errorf("every run failed: %+v", s)
	}
}

func TestMarkdown(t *testing.T) {
	rep := &Report{
		Started:  time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC),
		Settings: Settings{Reps: 3, TotalRows: 3000, CopyRows: 1000, LimitQueries: 20},
	}
	mk := func(name string, d, p *Summary, m *Memory) CaseResult {
		return CaseResult{Name: name, Title: caseTitle(name), Direct: d, Pgshard: p, Memory: m}
	}
	good := func(target string, rps float64) *Summary {
		return &Summary{Target: target, Status: statusOK, MedianOf: 3, RowsPerSec: rps, MBPerSec: rps / 1e4, LatencyMs: 1e5 / rps}
	}
	rep.Cases = []CaseResult{
		mk(caseLimit, good(Direct, 1e5), &Summary{Target: Pgshard, Status: statusUnsupported, Detail: "ERROR: no (SQLSTATE 0A000)"}, &Memory{}),
		mk(caseScan, good(Direct, 1e6), good(Pgshard, 8e5), &Memory{RSSBeforeKB: 20 << 10, PeakKB: 30 << 10, GrowthKB: 10 << 10, RSSAfterKB: 25 << 10}),
		mk(caseOrdered, good(Direct, 1e6), &Summary{Target: Pgshard, Status: statusWrong, MedianOf: 3, RowsPerSec: 9e5, Detail: "rep 1: not ordered by id"}, &Memory{PeakKB: 1}),
		mk(caseCopy, good(Direct, 1e6), good(Pgshard, 5e5), &Memory{PeakKB: 1}),
	}
	rep.Checks = rep.checks()
	md := rep.Markdown()
	for _, want := range []string{
		"| a. `ORDER BY k LIMIT 100`: latency ms (lower is better) | 1.000 | not supported by this build | — |",
		"| b. full scan, 3,000 rows: rows/s | 1,000,000 | 800,000 | **0.80×** |",
		"| c. full scan `ORDER BY id`, 3,000 rows: rows/s | 1,000,000 | 900,000 **WRONG** | — |",
		"| d. `COPY FROM STDIN` (text), 1,000 rows: rows/s | 1,000,000 | 500,000 | **0.50×** |",
		"| b. full scan | 20.0 | 30.0 | 10.0 | 25.0 |",
		"- **PASS** b. full scan: pgshard's rows/s at least 0.7× direct's: 0.80×",
		"- **PASS** b. full scan: pgshard's RSS growth under 64 MB: 10.0 MB",
		"- **FAIL** d. COPY FROM STDIN (text): pgshard's rows/s at least 0.7× direct's: 0.50×",
		"c. full scan ORDER BY id, pgshard: **WRONG**: rep 1: not ordered by id",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
}

func TestDecodeInt8(t *testing.T) {
	if v, err := decodeInt8([]byte{0, 0, 0, 0, 0, 0, 1, 2}, 1); err != nil || v != 258 {
		t.Errorf("binary: %d, %v", v, err)
	}
	if v, err := decodeInt8([]byte("-42"), 0); err != nil || v != -42 {
		t.Errorf("text: %d, %v", v, err)
	}
	if _, err := decodeInt8(nil, 1); err == nil {
		t.Error("NULL: no error")
	}
}

func TestParseCases(t *testing.T) {
	got, err := parseCases("copy, limit,copy")
	if err != nil || strings.Join(got, ",") != "limit,copy" {
		t.Errorf("got %v, %v", got, err)
	}
	if _, err := parseCases("scan,nope"); err == nil {
		t.Error("unknown case: no error")
	}
}

func TestFmtInt(t *testing.T) {
	for v, want := range map[float64]string{0: "0", 999: "999", 1000: "1,000", 1234567.6: "1,234,568"} {
		if got := benchkit.Thousands(v); got != want {
			t.Errorf("benchkit.Thousands(%v) = %q, want %q", v, got, want)
		}
	}
}

// The config the bench writes is one pgshard accepts: database app over the shard databases, items and
// items_copy hash-sharded by id.
func TestPgshardConfig(t *testing.T) {
	e := &Env{Shards: 3, PoolSize: 4, PG: &pgtest.Cluster{Port: 55999}}
	cfg, err := config.Parse([]byte(e.pgshardConfig(6543)))
	if err != nil {
		t.Fatalf("%v\n%s", err, e.pgshardConfig(6543))
	}
	if len(cfg.Databases) != 1 || cfg.Databases[0].Name != appDB {
		t.Fatalf("databases: %+v", cfg.Databases)
	}
	db := cfg.Databases[0]
	if len(db.Shards) != 3 || len(db.ShardedTables) != 2 {
		t.Fatalf("shards %d, sharded tables %+v", len(db.Shards), db.ShardedTables)
	}
	for _, st := range db.ShardedTables {
		if st.Column != "id" || st.Type != "bigint" {
			t.Errorf("sharded table %+v", st)
		}
	}
}

// copyData makes, byte for byte, the rows rowsSQL makes in Postgres (the COPY case's fresh rows are items' rows).
func TestCopyDataMatchesSQL(t *testing.T) {
	pg := pgtest.Start(t, pgtest.Options{})
	conn := pg.Connect(t, "postgres", pgtest.Superuser, "")
	var buf bytes.Buffer
	const first, last = 99999990, 100000010 // ids of 8 and 9 digits
	if _, err := conn.PgConn().CopyTo(context.Background(), &buf, "COPY ("+rowsSQL(first, last)+") TO STDOUT"); err != nil {
		t.Fatal(err)
	}
	if got := string(copyData(first, last)); got != buf.String() {
		t.Errorf("copyData:\n%s\nPostgres:\n%s", got, buf.String())
	}
	// satisfies_hash_partition against the partition Postgres routes a row to.
	ctx := context.Background()
	for _, sql := range []string{
		hashParentDDL,
		"CREATE TABLE hp (id bigint) PARTITION BY HASH (id)",
		"CREATE TABLE hp_0 PARTITION OF hp FOR VALUES WITH (MODULUS 3, REMAINDER 0)",
		"CREATE TABLE hp_1 PARTITION OF hp FOR VALUES WITH (MODULUS 3, REMAINDER 1)",
		"CREATE TABLE hp_2 PARTITION OF hp FOR VALUES WITH (MODULUS 3, REMAINDER 2)",
		"INSERT INTO hp SELECT generate_series(1, 3000)",
	} {
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	var bad int64
	err := conn.QueryRow(ctx, `SELECT count(*) FROM hp WHERE NOT satisfies_hash_partition('`+hashParent+`'::regclass, 3,
  substr(tableoid::regclass::text, 4)::int, id)`).Scan(&bad)
	if err != nil || bad != 0 {
		t.Errorf("rows outside the partition satisfies_hash_partition names: %d, %v", bad, err)
	}
}

func TestSharedBuffersFor(t *testing.T) {
	for rows, want := range map[int64]string{1000: "256MB", 4000000: "1831MB", 1 << 40: "8192MB"} {
		if got := sharedBuffersFor(rows); got != want {
			t.Errorf("sharedBuffersFor(%d) = %s, want %s", rows, got, want)
		}
	}
}
