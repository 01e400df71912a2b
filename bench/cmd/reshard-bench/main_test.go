package main

import (
	"strings"
	"testing"
	"time"

	"github.com/pgshard/pgshard/config"
)

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"2GB": 2 << 30, "200MB": 200 << 20, "512 kB": 512 << 10, "1gib": 1 << 30, "4096": 4096} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "GB", "2 XB", "-1GB", "0"} {
		if _, err := parseSize(in); err == nil {
			t.Errorf("parseSize(%q): no error", in)
		}
	}
}

func TestParseStreams(t *testing.T) {
	got, err := parseStreams(" 1,2, 4,2")
	if err != nil || len(got) != 3 || got[0] != 1 || got[1] != 2 || got[2] != 4 {
		t.Errorf("got %v, %v", got, err)
	}
	for _, in := range []string{"", "0", "1,x", "65"} {
		if _, err := parseStreams(in); err == nil {
			t.Errorf("parseStreams(%q): no error", in)
		}
	}
}

func TestRanges(t *testing.T) {
	for _, c := range []struct {
		bytes   int64
		chunkMB int
		want    int64
	}{{200 << 20, 0, 1}, {256 << 20, 0, 1}, {257 << 20, 0, 2}, {2 << 30, 0, 8}, {200 << 20, 25, 8}, {0, 0, 1}} {
		if got := ranges(c.bytes, c.chunkMB); got != c.want {
			t.Errorf("ranges(%d, %d) = %d, want %d", c.bytes, c.chunkMB, got, c.want)
		}
	}
}

// The config and the --to file the bench writes make, together, the two-shard config pgshard reshard switches to.
func TestPgshardConfig(t *testing.T) {
	cfg, err := config.Parse([]byte(pgshardConfig(6543, 55999)))
	if err != nil {
		t.Fatalf("%v\n%s", err, pgshardConfig(6543, 55999))
	}
	db := cfg.Database(appDB)
	if db == nil || len(db.Shards) != 1 || db.Shards[0].Primary.Database != srcDB || db.Shards[0].Primary.Port != 55999 {
		t.Fatalf("database app: %+v", db)
	}
	if len(db.ShardedTables) != 1 || db.ShardedTables[0].Column != "aid" || db.ShardedTables[0].Type != "bigint" {
		t.Errorf("sharded tables %+v", db.ShardedTables)
	}
	if cfg.Admin.User != adminUser || cfg.Admin.Password != adminPassword {
		t.Errorf("admin %+v", cfg.Admin)
	}
	to := toFile(55999)
	for i := range destShards {
		if !strings.Contains(to, "  - primary: \"postgres://127.0.0.1:55999/"+dstDB(i)+"\"\n") {
			t.Errorf("--to file lacks shard %d:\n%s", i, to)
		}
	}
}

func TestSummaryAndMarkdown(t *testing.T) {
	load := &LoadStats{Commits: 100, P99Ms: 3, MaxMs: 900}
	rep := &Report{
		Started:  time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC),
		Machine:  Machine{Cores: 2},
		Settings: Settings{SizeBytes: 2 << 30, Streams: []int{1, 2, 4}, Reps: 1, LoadClients: 2, LoadRate: 50, DestShards: 2},
		Data:     &DataSetup{Rows: 16000000, TableBytes: 2 << 30, IndexBytes: 340 << 20},
		Runs: []Run{
			{Method: methodDump, Streams: 1, Rep: 1, Rows: 16000000, Bytes: 2e9, Seconds: 40, TotalSeconds: 40, Load: load, Checked: "16000000 rows"},
			{Method: methodReshard, Streams: 1, Rep: 1, Rows: 16000000, Bytes: 2e9, Seconds: 50, TotalSeconds: 90, PauseMS: 300, Load: load,
				CopyCPU: &CPU{PostgresSeconds: 80, ToolSeconds: 20, OthersSeconds: 1, OthersShare: 0.01, MachineSeconds: 100}},
			{Method: methodReshard, Streams: 2, Rep: 1, Rows: 16000000, Bytes: 2e9, Seconds: 32, TotalSeconds: 70, PauseMS: 2500, Load: load,
				CutoverCPU: &CPU{OthersShare: 0.4}},
			// Failed at the cutover: its copy figures count, it has no pause.
			{Method: methodReshard, Streams: 4, Rep: 1, Rows: 16000000, Bytes: 2e9, Seconds: 20, TotalSeconds: 60, Load: load,
				Error: "pgshard reshard: exit status 1: pgshard PAUSE app: ERROR: unknown admin command"},
		},
	}
	rep.summarize()
	md := rep.Markdown()
	for _, want := range []string{
		"| pg_dump \\| psql | 1 | 16,000,000 | 40.0 | 400,000 | 50.0 | **1.00×** | — |",
		"| pgshard reshard | 1 | 16,000,000 | 50.0 | 320,000 | 40.0 | **0.80×** | 300 |",
		"| pgshard reshard | 2 | 16,000,000 | 32.0 | 500,000 | 62.5 | **1.25×** | 2500 |",
		"| pgshard reshard | 4 | 16,000,000 | 20.0 | 800,000 | 100.0 | **2.00×** | no cutover |",
		"into 8 range(s) of its default --chunk-mb 256 of heap",
		"| 1 | pgshard reshard | 1 | 50.0 | 90.0 | 300 | 100 (0) | 3.000 / 900 | 80.0 / 20.0 / 1.0 |",
		"- **PASS** the copy with 4 streams beats a single pg_dump | psql (rows/s): 2.00× (800,000 vs 400,000 rows/s)",
		"- **FAIL** write pause at the cutover under 2000 ms in every run: at most 2500 ms (300, 2500 ms); 1 of 3 runs did not switch",
		"- **PASS** every run's data checked",
		"- rep 1, pgshard reshard 2 streams: processes outside the bench used 40% of the CPU during the cutover: its write pause is noisy.",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
	rep.Runs[3].Wrong = "1 accounts on the new shards, want 16000000"
	rep.summarize()
	if md := rep.Markdown(); !strings.Contains(md, "**FAIL** every run's data checked: WRONG: rep 1 pgshard reshard 4 streams") ||
		!strings.Contains(md, "| pgshard reshard | 4 | — | — | failed |") {
		t.Errorf("a wrong run:\n%s", md)
	}
}

func TestFindLine(t *testing.T) {
	out := "19:54:48 reshard app: phase: copy\n19:54:51 reshard app: copied 1561134 rows of 2 tables in 2.108s (740705 rows/s, 4 streams)\n"
	if got := findLine(out, "reshard app: copied "); got != "reshard app: copied 1561134 rows of 2 tables in 2.108s (740705 rows/s, 4 streams)" {
		t.Errorf("got %q", got)
	}
	if got := findLine(out, "write pause"); got != "" {
		t.Errorf("got %q", got)
	}
}
