package main

import (
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pgshard/pgshard/bench/internal/benchkit"
)

func TestParseStatusKB(t *testing.T) {
	status := "Name:\tpgbouncer\nVmPeak:\t  20000 kB\nVmHWM:\t    8604 kB\nVmRSS:\t    8000 kB\n"
	if kb, err := benchkit.StatusKB(status, "VmHWM"); err != nil || kb != 8604 {
		t.Fatalf("got %d, %v", kb, err)
	}
	if _, err := benchkit.StatusKB(status, "VmSwap"); err == nil {
		t.Fatal("no error for a missing key")
	}
}

const pgbenchOutput = `pgbench (15.18 (Debian 15.18-0+deb12u1))
transaction type: <builtin: select only>
scaling factor: 10
query mode: simple
number of clients: 16
number of threads: 2
maximum number of tries: 1
duration: 5 s
number of transactions actually processed: 156037
number of failed transactions: 0 (0.000%)
latency average = 0.512 ms
initial connection time = 21.377 ms
tps = 31263.937455 (without initial connection time)
`

func TestParseSummary(t *testing.T) {
	var r Result
	parseSummary(pgbenchOutput, &r)
	if r.TPS != 31263.937455 || r.Transactions != 156037 || r.FailedTx != 0 || r.ConnTimeMs != 21.377 {
		t.Fatalf("got %+v", r)
	}
	var c Result
	parseSummary("number of transactions actually processed: 900\ntps = 180.5 (including reconnection times)\n", &c)
	if c.TPS != 180.5 || c.Transactions != 900 {
		t.Fatalf("-C output: got %+v", c)
	}
}

func TestFirstError(t *testing.T) {
	stderr := "pgbench: warning: something harmless\n" +
		"pgbench: error: client 13 script 0 aborted in command 1 query 0: ERROR:  prepared statement \"P_0\" already exists\n" +
		"pgbench: error: client 2 script 0 aborted in command 1 query 0: ERROR:  other\n"
	want := `client N script 0 aborted in command 1 query 0: ERROR: prepared statement "P_0" already exists`
	if got := firstError(stderr); got != want {
		t.Fatalf("got %q\nwant %q", got, want)
	}
	if got := firstError("all fine\n"); got != "" {
		t.Fatalf("got %q", got)
	}
}

func TestReadLatencies(t *testing.T) {
	dir := t.TempDir()
	// client_id transaction_no time script_no time_epoch time_us; "failed" lines are not latencies.
	files := map[string]string{
		"pgbench_log.100":   "0 1 100 0 1795527552 272435\n0 2 300 0 1795527552 281183\n0 3 failed 0 1795527552 281190\n",
		"pgbench_log.100.1": "1 1 200 0 1795527552 272494\n1 2 10000 0 1795527552 272519\n",
		"stdout.txt":        "not a log\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	lat, err := readLatencies(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(lat) != 4 {
		t.Fatalf("got %d latencies %v, want 4", len(lat), lat)
	}
	avg, p50, p99 := latencyStats(lat)
	if avg != 2.65 || p50 != 0.2 || p99 != 10 {
		t.Fatalf("avg %v p50 %v p99 %v", avg, p50, p99)
	}
}

func TestPercentileNearestRank(t *testing.T) {
	v := make([]int64, 1000)
	for i := range v {
		v[i] = int64(i + 1)
	}
	if got := percentile(v, 0.99); got != 990 {
		t.Fatalf("p99 of 1..1000 = %d, want 990", got)
	}
	if got := percentile([]int64{7}, 0.99); got != 7 {
		t.Fatalf("p99 of one value = %d", got)
	}
}

func TestMedian(t *testing.T) {
	for _, c := range []struct {
		in   []float64
		want float64
	}{{[]float64{3, 1, 2}, 2}, {[]float64{4, 1, 3, 2}, 2.5}, {nil, 0}} {
		if got := benchkit.Median(c.in); got != c.want {
			t.Errorf("benchkit.Median(%v) = %v, want %v", c.in, got, c.want)
		}
	}
}

func TestConnectAllowance(t *testing.T) {
	if connectAllowance(256) != 0 || connectAllowance(1000) != 5*time.Second {
		t.Fatal("-T is lengthened by 5 ms per client above 256 clients only")
	}
}

func TestJobs(t *testing.T) {
	if jobsFor(1, 2) != 1 || jobsFor(16, 2) != 2 || jobsFor(256, 2) != 2 {
		t.Fatal("pgbench -j is 2, or fewer below 2 clients")
	}
}

func TestPickScenarios(t *testing.T) {
	list, err := pickScenarios("default", false, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range list {
		names = append(names, s.Name)
		if s.Skip != "" {
			t.Errorf("%s is skipped in the default set: %s", s.Name, s.Skip)
		}
		if strings.HasPrefix(s.Name, "select-") && len(s.Clients) != 4 {
			t.Errorf("%s clients %v", s.Name, s.Clients)
		}
	}
	if got := strings.Join(names, ","); got != "select-simple,select-extended,select-prepared,connect,tpcb,sharded-simple" {
		t.Fatalf("default set: %s", got)
	}

	// make bench SCENARIO=sharded: both protocols, all three targets (the unsharded reference through PgBouncer
	// and directly, pgshard over the shards), the client counts.
	sh, err := pickScenarios("sharded", false, nil, nil)
	if err != nil || len(sh) != 2 {
		t.Fatalf("sharded set: %+v, %v", sh, err)
	}
	for i, mode := range []string{"simple", "extended"} {
		s := sh[i]
		if s.Name != "sharded-"+mode || s.Mode != mode || !s.Sharded || !s.Select || s.Skip != "" ||
			!slices.Equal(s.Clients, []int{16, 64, 256}) || !slices.Equal(s.Targets, allTargets) {
			t.Errorf("sharded set, %s: %+v", mode, s)
		}
	}
	// make bench SCENARIO=replicas: pgshard reading from replicas, the same pgshard with the split off, PgBouncer.
	rp, err := pickScenarios("replicas", false, nil, nil)
	if err != nil || len(rp) != 2 || !rp[0].Replicas || !slices.Equal(rp[0].Targets, []string{PgBouncer, PgshardPrimary, Pgshard}) ||
		!slices.Equal(rp[1].Clients, []int{32, 256}) {
		t.Fatalf("replicas set: %+v, %v", rp, err)
	}
	all, _ := pickScenarios("all", false, nil, nil)
	if !slices.ContainsFunc(all, func(s Scenario) bool { return s.Name == "sharded-extended" }) {
		t.Error("set all lacks sharded-extended")
	}

	long, _ := pickScenarios("select-simple,connect", true, nil, nil)
	if c := long[0].Clients; c[len(c)-1] != 1000 {
		t.Errorf("--long: select-simple clients %v", c)
	}
	if c := long[1].Clients; c[len(c)-1] == 1000 {
		t.Errorf("--long must not add 1000 to the connection storm: %v", c)
	}

	f, _ := pickScenarios("foundation", false, nil, []string{Pgshard})
	if len(f) != 2 || f[0].Clients[0] != 32 || len(f[0].Targets) != 1 || !f[0].Check {
		t.Fatalf("foundation with -targets pgshard: %+v", f)
	}
	if _, err := pickScenarios("nope", false, nil, nil); err == nil {
		t.Fatal("no error for an unknown scenario")
	}
	if _, err := parseTargets("direct,bouncer"); err == nil {
		t.Fatal("no error for an unknown target")
	}
	if c, err := parseInts("1, 16,64"); err != nil || len(c) != 3 || c[1] != 16 {
		t.Fatalf("parseInts: %v %v", c, err)
	}
}

func run3(target string, tps, cpu float64, failed bool, errText string) TargetResult {
	tr := TargetResult{Target: target}
	for i := range 3 {
		r := Result{Target: target, Rep: i + 1, TPS: tps + float64(i), LatencyAvgMs: 1, LatencyP99Ms: 2, Failed: failed, Error: errText}
		if target != Direct {
			r.CPUPer1kTx, r.PeakRSSKB = cpu, 10240
		}
		tr.Runs = append(tr.Runs, r)
	}
	tr.summarize(Scenario{})
	return tr
}

func testReport() *Report {
	return &Report{
		Set: "default", Started: time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC),
		Machine:  Machine{Cores: 2, CPUModel: "Test CPU", MemTotalKB: 24 << 20},
		Versions: map[string]string{"pgbouncer": "PgBouncer 1.18.0", "postgres": "PostgreSQL 15.18"},
		Settings: Settings{Reps: 3, Scale: 10, PoolSize: 10, PoolMode: "transaction", MaxJobs: 2, WarmupSeconds: 3},
	}
}

func TestMarkdown(t *testing.T) {
	rep := testReport()
	prepared := ScenarioResult{Name: "select-prepared", Title: "select-only, -M prepared", Mode: "prepared", DurationSeconds: 5,
		Cases: []CaseResult{{Clients: 16, Targets: []TargetResult{
			run3(Direct, 40000, 0, false, ""),
			run3(PgBouncer, 0, 0.02, true, `client N script 0 aborted in command 1 query 0: ERROR: prepared statement "P_0" already exists`),
			run3(Pgshard, 30000, 0.02, false, ""),
		}}}}
	found := ScenarioResult{Name: "foundation-simple", Title: "foundation check", Mode: "simple", DurationSeconds: 10, Check: true,
		Cases: []CaseResult{{Clients: 32, Targets: []TargetResult{
			run3(PgBouncer, 20000, 0.021, false, ""),
			run3(Pgshard, 22000, 0.018, false, ""),
		}}}}
	found.Checks = foundationChecks(found)
	// One pgshard run shared the machine with something else.
	prepared.Cases[0].Targets[2].Runs[1].MachineSeconds = 10
	prepared.Cases[0].Targets[2].Runs[1].OtherCPUSeconds = 5
	sharded := ScenarioResult{Name: "sharded-simple", Title: "sharded", Mode: "simple", DurationSeconds: 5,
		About: "About.", Setup: "Shards: two.",
		Cases: []CaseResult{{Clients: 16, Targets: []TargetResult{
			run3(PgBouncer, 20000, 0.01, false, ""), run3(Pgshard, 40000, 0.01, false, "")}}},
		Checks: []Check{{What: "-M simple: through pgshard, each of 400 sampled aids reads back its one row", Correctness: true,
			Detail: "190 of 400 keys wrong, e.g. aid 3 (on shard 1): count(*) = 0"}}}
	for i := range sharded.Cases[0].Targets[1].Runs {
		sharded.Cases[0].Targets[1].Runs[i].ShardXacts = []int64{100 + int64(i), 300 - int64(i)}
	}
	rep.Scenarios = []ScenarioResult{prepared, found, sharded, {Name: "later", Title: "later", Skipped: "TODO: not yet"}}
	md := rep.Markdown()
	for _, want := range []string{
		"| 16 | pgbouncer | fails | — | — | — | — | 3/3 fails (PgBouncer 1.18.0 has no prepared statement support in transaction mode): client N",
		"| 16 | pgshard | 30,001 | 1.000 | 2.000 | 0.0200 (20.0) | 10.0 | 1/3 disturbed (other processes took up to 50% of the CPU) |",
		"| 16 | *pgshard / direct* | **0.75×** | 1.00× | 1.00× | — | — | |",
		"| 16 | *pgshard / pgbouncer* | — | — | — | — | — | |",
		"- **PASS** -M simple, 32 clients: TPS pgshard >= PgBouncer: 1.10×, 22,001 vs 20,001 TPS",
		"- **PASS** -M simple, 32 clients: CPU per transaction pgshard <= PgBouncer: 0.86×, 18.0 vs 21.0 µs/tx",
		"### sharded-simple: sharded (5s runs)\n\nAbout. Shards: two.\n\n",
		"| 16 | pgshard | 40,001 | 1.000 | 2.000 | 0.0100 (10.0) | 10.0 | **wrong results: the routing check below failed, figures not valid** |",
		"(pg_stat_database): shard 0 25.2%, shard 1 74.8%.\n",
		"- **FAIL** -M simple: through pgshard, each of 400 sampled aids reads back its one row: 190 of 400 keys wrong, e.g. aid 3 (on shard 1): count(*) = 0",
		"### later: later (skipped)",
		"**TODO: not yet.**",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}

	worse := ScenarioResult{Name: "f", Mode: "extended", Cases: []CaseResult{{Clients: 32, Targets: []TargetResult{
		run3(PgBouncer, 20000, 0.021, false, ""), run3(Pgshard, 15000, 0.030, false, "")}}}}
	for _, c := range foundationChecks(worse) {
		if c.Pass {
			t.Errorf("check passed for a slower, costlier pgshard: %+v", c)
		}
	}
}

func TestUpdateReadme(t *testing.T) {
	path := filepath.Join(t.TempDir(), "README.md")
	orig := "# bench\n\n<!-- bench:foundation:begin -->\nold\n<!-- bench:foundation:end -->\n\ntail\n"
	if err := os.WriteFile(path, []byte(orig), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := updateReadme(path, "foundation", "## run\n\n### table\n| a |\n"); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	want := "# bench\n\n<!-- bench:foundation:begin -->\n#### run\n\n##### table\n| a |\n<!-- bench:foundation:end -->\n\ntail\n"
	if string(b) != want {
		t.Fatalf("got:\n%s\nwant:\n%s", b, want)
	}
	if err := updateReadme(path, "default", "x"); err == nil {
		t.Fatal("no error without markers")
	}
}

func TestRenderSaved(t *testing.T) {
	rep := testReport()
	rep.Scenarios = []ScenarioResult{{Name: "select-simple", Title: "select-only", Mode: "simple", DurationSeconds: 5,
		Cases: []CaseResult{{Clients: 16, Targets: []TargetResult{run3(PgBouncer, 20000, 0.01, false, ""), run3(Pgshard, 21000, 0.01, false, "")}}}}}
	dir := t.TempDir()
	if err := rep.save(options{out: dir}, rep.Markdown(), io.Discard); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "default-*.json"))
	if len(files) != 1 {
		t.Fatalf("saved %v", files)
	}
	var out, errOut strings.Builder
	if code := renderSaved(files[0], "", &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	if out.String() != rep.Markdown() {
		t.Fatalf("rendered from JSON:\n%s\nwant:\n%s", out.String(), rep.Markdown())
	}
}
