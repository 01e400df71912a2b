package main

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/pgshard/pgshard/bench/internal/benchkit"
	"github.com/pgshard/pgshard/internal/pgbin"
)

// Targets of issue 7, checked and printed as PASS or FAIL (never the exit status: a benchmark reports).
const (
	targetStreams = 4    // this many streams must copy faster than pg_dump | psql
	targetPauseMS = 2000 // the write pause at the cutover
)

// Report is everything one bench run measured; it is written as JSON to bench/results/reshard-<UTC time>.json.
type Report struct {
	Bench          string            `json:"bench"`
	Started        time.Time         `json:"started"`
	Finished       time.Time         `json:"finished"`
	ElapsedSeconds float64           `json:"elapsed_seconds"`
	Interrupted    bool              `json:"interrupted,omitempty"`
	Machine        Machine           `json:"machine"`
	Versions       map[string]string `json:"versions"`
	Settings       Settings          `json:"settings"`
	Data           *DataSetup        `json:"data"`
	Runs           []Run             `json:"runs"`
	Summary        []Row             `json:"summary"`
	Checks         []Check           `json:"checks"`
}

// Machine describes where the figures come from.
type Machine struct {
	Cores      int     `json:"cores"`
	CPUModel   string  `json:"cpu_model"`
	MemTotalKB int64   `json:"mem_total_kb"`
	Kernel     string  `json:"kernel"`
	LoadAvg1   float64 `json:"load_avg_1m_at_start"`
}

// Settings are the knobs the run used.
type Settings struct {
	SizeBytes   int64             `json:"size_bytes"`
	Streams     []int             `json:"streams"`
	Reps        int               `json:"reps"`
	LoadClients int               `json:"load_clients"`
	LoadRate    int               `json:"load_tx_per_sec_per_client"`
	ChunkMB     int               `json:"reshard_chunk_mb"` // 0: the reshard's default
	DestShards  int               `json:"destination_shards"`
	SameCluster bool              `json:"same_cluster"` // source and destinations in one Postgres cluster
	PgSettings  map[string]string `json:"postgres_settings"`
	// Before each run wait, up to QuietWaitSeconds, until other processes use less than QuietShare of the CPU.
	QuietShare       float64 `json:"quiet_share"`
	QuietWaitSeconds float64 `json:"quiet_wait_seconds"`
}

// Row is one line of the main table: a method and stream count, medians over its runs whose copy figures are
// valid.
type Row struct {
	Method       string  `json:"method"`
	Streams      int     `json:"streams"`
	MedianOf     int     `json:"median_of"`
	Runs         int     `json:"runs"`
	Rows         float64 `json:"rows"`
	Seconds      float64 `json:"seconds"`
	RowsPerSec   float64 `json:"rows_per_sec"`
	MBPerSec     float64 `json:"mb_per_sec"`
	Ratio        float64 `json:"rows_per_sec_vs_pg_dump"` // 0: no figure
	PauseMS      float64 `json:"write_pause_ms"`          // median over the runs that switched
	PauseMaxMS   float64 `json:"write_pause_max_ms"`
	Switched     int     `json:"switched"` // reshard runs that reached the cutover's end
	TotalSeconds float64 `json:"total_seconds"`
}

// Check is a target of the issue: PASS or FAIL, reported, never fatal.
type Check struct {
	What   string `json:"what"`
	Pass   bool   `json:"pass"`
	Detail string `json:"detail"`
}

// copyValid reports whether the run's copy figures count: rows copied in a measured time, nothing wrong. A
// reshard that failed after its copy (at the cutover) still has valid copy figures.
func (run Run) copyValid() bool {
	if run.Rows <= 0 || run.Seconds <= 0 || run.Wrong != "" {
		return false
	}
	return run.Method == methodReshard || run.Error == ""
}

// summarize computes the main table's rows and the checks from the runs.
func (rep *Report) summarize() {
	rep.Summary = nil
	keys := []Row{{Method: methodDump, Streams: 1}}
	for _, n := range rep.Settings.Streams {
		keys = append(keys, Row{Method: methodReshard, Streams: n})
	}
	for _, k := range keys {
		var rows, secs, rps, mbps, pause, total []float64
		for _, run := range rep.Runs {
			if run.Method != k.Method || run.Streams != k.Streams {
				continue
			}
			k.Runs++
			if run.PauseMS > 0 {
				pause = append(pause, run.PauseMS)
				k.Switched++
				k.PauseMaxMS = max(k.PauseMaxMS, run.PauseMS)
			}
			if !run.copyValid() {
				continue
			}
			rows = append(rows, float64(run.Rows))
			secs = append(secs, run.Seconds)
			rps = append(rps, float64(run.Rows)/run.Seconds)
			mbps = append(mbps, float64(run.Bytes)/run.Seconds/1e6)
			total = append(total, run.TotalSeconds)
		}
		k.MedianOf = len(secs)
		k.Rows, k.Seconds, k.RowsPerSec, k.MBPerSec = benchkit.Median(rows), benchkit.Median(secs), benchkit.Median(rps), benchkit.Median(mbps)
		k.PauseMS, k.TotalSeconds = benchkit.Median(pause), benchkit.Median(total)
		rep.Summary = append(rep.Summary, k)
	}
	if base := rep.Summary[0]; base.MedianOf > 0 {
		for i := range rep.Summary {
			if rep.Summary[i].MedianOf > 0 {
				rep.Summary[i].Ratio = rep.Summary[i].RowsPerSec / base.RowsPerSec
			}
		}
	}
	rep.Checks = rep.checks()
}

// checks: the copy with 4 streams (or the most streams run) faster than pg_dump | psql; every cutover's write
// pause under 2 s; no wrong result.
func (rep *Report) checks() []Check {
	var out []Check
	base := rep.Summary[0]
	var best *Row
	for i := range rep.Summary[1:] {
		r := &rep.Summary[1+i]
		if r.Streams == targetStreams || best == nil || best.Streams != targetStreams && r.Streams > best.Streams {
			best = r
		}
	}
	if best != nil {
		ck := Check{What: fmt.Sprintf("the copy with %d streams beats a single pg_dump | psql (rows/s)", best.Streams)}
		switch {
		case best.MedianOf == 0 || base.MedianOf == 0:
			ck.Detail = fmt.Sprintf("no figure (%d valid reshard runs, %d valid pg_dump | psql runs)", best.MedianOf, base.MedianOf)
		default:
			ck.Pass = best.RowsPerSec > base.RowsPerSec
			ck.Detail = fmt.Sprintf("%.2f× (%s vs %s rows/s)", best.Ratio, benchkit.Thousands(best.RowsPerSec), benchkit.Thousands(base.RowsPerSec))
		}
		out = append(out, ck)
	}
	ck := Check{What: fmt.Sprintf("write pause at the cutover under %d ms in every run", targetPauseMS)}
	var pauses []string
	worst, switched, reshards := 0.0, 0, 0
	for _, run := range rep.Runs {
		if run.Method != methodReshard {
			continue
		}
		reshards++
		if run.PauseMS > 0 {
			switched++
			worst = max(worst, run.PauseMS)
			pauses = append(pauses, benchkit.FormatMs(run.PauseMS))
		}
	}
	switch {
	case switched == 0:
		ck.Detail = fmt.Sprintf("no figure: none of the %d reshard runs reached the end of its cutover", reshards)
	default:
		ck.Pass = worst < targetPauseMS && switched == reshards
		ck.Detail = fmt.Sprintf("at most %s ms (%s ms)", benchkit.FormatMs(worst), strings.Join(pauses, ", "))
		if switched < reshards {
			ck.Detail += fmt.Sprintf("; %d of %d runs did not switch", reshards-switched, reshards)
		}
	}
	out = append(out, ck)
	var wrong []string
	for _, run := range rep.Runs {
		if run.Wrong != "" {
			wrong = append(wrong, fmt.Sprintf("rep %d %s %d streams: %s", run.Rep, run.Method, run.Streams, run.Wrong))
		}
	}
	ck = Check{What: "every run's data checked", Pass: len(wrong) == 0, Detail: "no wrong result"}
	if len(wrong) > 0 {
		ck.Detail = "WRONG: " + strings.Join(wrong, "; ")
	}
	return append(out, ck)
}

// noisyShare: a run during whose copy other processes used more of the CPU than this is flagged as noisy.
const noisyShare = 0.15

// reshardDefaultChunkMB is pgshard reshard's default --chunk-mb: tables larger than this are copied in ranges of
// about this size (cmd/pgshard/reshard.go).
const reshardDefaultChunkMB = 256

// ranges is how many ranges the reshard cuts a heap of bytes into at chunkMB (0: its default).
func ranges(bytes int64, chunkMB int) int64 {
	if chunkMB <= 0 {
		chunkMB = reshardDefaultChunkMB
	}
	per := int64(chunkMB) << 20
	return max((bytes+per-1)/per, 1)
}

func methodCell(m string) string { return strings.ReplaceAll(m, "|", `\|`) }

// Markdown renders the report as the tables printed at the end of a run.
func (rep *Report) Markdown() string {
	var b strings.Builder
	st := rep.Settings
	fmt.Fprintf(&b, "## reshard-bench, %s UTC\n\n", rep.Started.UTC().Format("2006-01-02 15:04"))
	m := rep.Machine
	fmt.Fprintf(&b, "- Machine: %d cores (%s), %.0f GiB, Linux %s; 1-minute load %.2f at start.\n", m.Cores, m.CPUModel,
		float64(m.MemTotalKB)/(1<<20), m.Kernel, m.LoadAvg1)
	var vs []string
	for _, k := range []string{"postgres", "pgshard", "go"} {
		if v := rep.Versions[k]; v != "" {
			vs = append(vs, v)
		}
	}
	fmt.Fprintf(&b, "- Versions: %s.\n", strings.Join(vs, ", "))
	if d := rep.Data; d != nil {
		fmt.Fprintf(&b, "- Data: `accounts (aid bigint primary key, bid integer, abalance integer, filler char(84))`, %s rows, "+
			"%s of heap (pg_relation_size; asked for %s) and %s of primary key, in database %s; filled once in %.0f s.\n",
			benchkit.Thousands(float64(d.Rows)), fmtBytes(d.TableBytes), fmtBytes(st.SizeBytes), fmtBytes(d.IndexBytes), srcDB, d.SetupSeconds)
	}
	fmt.Fprintf(&b, "- Setup: **one Postgres cluster** on 127.0.0.1 holds the source and the destinations (this machine has "+
		"%d cores): the reshard goes 1 → %d shards (%s → %s, %s; Postgres's hash of aid), pg_dump | psql copies into %s; every run "+
		"gets fresh, empty destination databases. So the copy's readers and writers, pgshard reshard, pgshard and the load "+
		"share the cores, and the source's logical slot decodes the whole cluster's WAL, the destinations' copy included.\n",
		m.Cores, st.DestShards, srcDB, dstDB(0), dstDB(1), dumpDB)
	fmt.Fprintf(&b, "- Write load during every run: %d clients × %d tx/s through pgshard (transaction pooling), each "+
		"`UPDATE accounts SET abalance = abalance + $1 WHERE aid = $2; INSERT INTO history ...` in a transaction, from "+
		"1 s before the copy until after the cutover (pg_dump | psql: until its end).\n", st.LoadClients, st.LoadRate)
	chunk := fmt.Sprintf("its default --chunk-mb %d", reshardDefaultChunkMB)
	if st.ChunkMB > 0 {
		chunk = fmt.Sprintf("--chunk-mb %d", st.ChunkMB)
	}
	fmt.Fprintf(&b, "- Figures: **pgshard reshard** (`--workers` = streams, %s): copy_rows and copy_seconds of its "+
		"status.json, the data copy out of the slot's snapshot (schema, indexes, streaming and cutover not included); "+
		"**pg_dump | psql**: `pg_dump --data-only -t accounts src | psql dump_dst` from pg_dump's start to psql's exit, "+
		"into accounts created empty by `pg_dump --section=pre-data` (no primary key, as the reshard copies before its "+
		"indexes). MB/s: the source tables' heap (pg_relation_size) ÷ seconds, 10^6 bytes. Ratio: rows/s ÷ pg_dump | "+
		"psql's. Write pause: write_pause_ms of status.json (PAUSE until RESUME). %d repetition(s); medians.\n", chunk, st.Reps)
	if d := rep.Data; d != nil {
		n := ranges(d.TableBytes, st.ChunkMB)
		fmt.Fprintf(&b, "- The reshard cuts accounts into %d range(s) of %s of heap; a stream copies one range at a time", n, chunk)
		if most := slices.Max(st.Streams); n < int64(most) {
			fmt.Fprintf(&b, ", so with %d streams %d have nothing to do", most, int64(most)-n)
		}
		b.WriteString(".\n")
	}
	var others []float64
	waited := 0.0
	for _, run := range rep.Runs {
		if run.CopyCPU != nil {
			others = append(others, run.CopyCPU.OthersShare)
		}
		waited += run.QuietWaitSeconds
	}
	if len(others) > 0 {
		fmt.Fprintf(&b, "- Other processes' share of the CPU during the copies: %.0f%% median, %.0f%% at most", 100*benchkit.Median(others), 100*slices.Max(others))
		if st.QuietShare > 0 {
			fmt.Fprintf(&b, " (before each run the bench waited, up to %s, for them to use less than %.0f%%: %.0f s in all)",
				time.Duration(st.QuietWaitSeconds*float64(time.Second)), 100*st.QuietShare, waited)
		}
		b.WriteString(".\n")
	}
	fmt.Fprintf(&b, "- Took %s.", time.Duration(rep.ElapsedSeconds*float64(time.Second)).Round(time.Second))
	if rep.Interrupted {
		b.WriteString(" **Interrupted**: the tables hold what was measured until then.")
	}
	b.WriteString("\n\n")

	b.WriteString("| method | streams | rows | seconds | rows/s | MB/s | vs pg_dump \\| psql | write pause ms |\n")
	b.WriteString("|---|--:|--:|--:|--:|--:|--:|--:|\n")
	for _, r := range rep.Summary {
		if r.Runs == 0 {
			continue
		}
		pause := "—"
		if r.Method == methodReshard {
			switch {
			case r.Switched > 0 && r.Switched == r.Runs:
				pause = benchkit.FormatMs(r.PauseMS)
			case r.Switched > 0:
				pause = fmt.Sprintf("%s (%d of %d runs switched)", benchkit.FormatMs(r.PauseMS), r.Switched, r.Runs)
			default:
				pause = "no cutover"
			}
		}
		if r.MedianOf == 0 {
			fmt.Fprintf(&b, "| %s | %d | — | — | failed | — | — | %s |\n", methodCell(r.Method), r.Streams, pause)
			continue
		}
		ratio := "—"
		if r.Ratio > 0 {
			ratio = fmt.Sprintf("**%.2f×**", r.Ratio)
		}
		fmt.Fprintf(&b, "| %s | %d | %s | %.1f | %s | %.1f | %s | %s |\n", methodCell(r.Method), r.Streams,
			benchkit.Thousands(r.Rows), r.Seconds, benchkit.Thousands(r.RowsPerSec), r.MBPerSec, ratio, pause)
	}

	b.WriteString("\nEvery run (the load's latencies are of its committed transactions: its longest one is the write pause as a client " +
		"sees it; the copy's CPU: seconds of CPU during the reshard's copy phase or the pg_dump | psql pipeline, of the " +
		"Postgres cluster, of the copy command's processes, and of processes outside this bench):\n\n")
	b.WriteString("| rep | method | streams | copy s | whole run s | write pause ms | load tx (failed) | load p99 / max ms | copy's CPU s: Postgres / tool / others | checked |\n")
	b.WriteString("|--:|---|--:|--:|--:|--:|--:|--:|--:|---|\n")
	for _, run := range rep.Runs {
		pause := "—"
		if run.PauseMS > 0 {
			pause = benchkit.FormatMs(run.PauseMS)
		}
		load, lat := "—", "—"
		if l := run.Load; l != nil {
			load = fmt.Sprintf("%s (%d)", benchkit.Thousands(float64(l.Commits)), l.Failures)
			lat = benchkit.FormatMs(l.P99Ms) + " / " + benchkit.FormatMs(l.MaxMs)
		}
		cpu := "—"
		if c := run.CopyCPU; c != nil {
			cpu = fmt.Sprintf("%.1f / %.1f / %.1f", c.PostgresSeconds, c.ToolSeconds, c.OthersSeconds)
		}
		checked := run.Checked
		switch {
		case run.Wrong != "":
			checked = "**WRONG**: " + run.Wrong
		case run.Error != "":
			checked = "error: " + benchkit.FirstLine(run.Error)
		}
		fmt.Fprintf(&b, "| %d | %s | %d | %.1f | %.1f | %s | %s | %s | %s | %s |\n", run.Rep, methodCell(run.Method), run.Streams,
			run.Seconds, run.TotalSeconds, pause, load, lat, cpu, strings.ReplaceAll(checked, "|", `\|`))
	}
	var notes []string
	for _, run := range rep.Runs {
		if c := run.CopyCPU; c != nil && c.OthersShare > noisyShare {
			notes = append(notes, fmt.Sprintf("- rep %d, %s %d streams: processes outside the bench used %.0f%% of the CPU during the copy: its figures are noisy.",
				run.Rep, run.Method, run.Streams, 100*c.OthersShare))
		}
		if c := run.CutoverCPU; c != nil && c.OthersShare > noisyShare {
			notes = append(notes, fmt.Sprintf("- rep %d, %s %d streams: processes outside the bench used %.0f%% of the CPU during the cutover: its write pause is noisy.",
				run.Rep, run.Method, run.Streams, 100*c.OthersShare))
		}
	}
	for _, run := range rep.Runs {
		if run.PauseLine != "" {
			notes = append(notes, fmt.Sprintf("- rep %d, %d streams: %s", run.Rep, run.Streams, run.PauseLine))
		}
		if run.Load != nil && run.Load.FirstError != "" {
			notes = append(notes, fmt.Sprintf("- rep %d, %s %d streams: the load's first error: %s", run.Rep, run.Method, run.Streams, benchkit.FirstLine(run.Load.FirstError)))
		}
	}
	if len(notes) > 0 {
		b.WriteString("\n" + strings.Join(notes, "\n") + "\n")
	}
	if len(rep.Checks) > 0 {
		b.WriteString("\n")
		for _, ck := range rep.Checks {
			v := "FAIL"
			if ck.Pass {
				v = "PASS"
			}
			fmt.Fprintf(&b, "- **%s** %s: %s\n", v, ck.What, ck.Detail)
		}
	}
	return b.String()
}

// save writes the report as JSON and its tables as Markdown to dir/reshard-<UTC time>.{json,md}.
func (rep *Report) save(dir string, md string, logf func(string, ...any)) error {
	base, err := benchkit.SaveReport(dir, "reshard", rep.Started, rep, md)
	if err != nil {
		return err
	}
	logf("wrote %s.json and %s.md", base, base)
	return nil
}

func numCPU() int { return runtime.NumCPU() }

// versions names Postgres, pgshard (with its commit) and Go.
func versions(ctx context.Context, root string, e *Env) map[string]string {
	v := map[string]string{"go": runtime.Version(), "pgshard": benchkit.PgshardVersion(ctx, root, e.PgshardBin)}
	if dir, err := pgbin.Dir(); err == nil {
		v["postgres"] = benchkit.PostgresVersion(ctx, dir)
	}
	return v
}
