package main

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/pgshard/pgshard/bench/internal/benchkit"
	"github.com/pgshard/pgshard/internal/pgbin"
)

// Statuses of a target in a case.
const (
	statusOK          = "ok"
	statusWrong       = "WRONG"
	statusUnsupported = "not supported by this build"
	statusError       = "error"
)

// Targets the bench checks (and prints PASS or FAIL for, never failing the run).
const (
	targetRatio    = 0.7
	targetGrowthMB = 64
)

// Report is everything one run measured; it is written as JSON to bench/results/merge-<UTC time>.json.
type Report struct {
	Bench          string            `json:"bench"`
	Started        time.Time         `json:"started"`
	Finished       time.Time         `json:"finished"`
	ElapsedSeconds float64           `json:"elapsed_seconds"`
	Interrupted    bool              `json:"interrupted,omitempty"`
	Machine        Machine           `json:"machine"`
	Versions       map[string]string `json:"versions"`
	Settings       Settings          `json:"settings"`
	Setup          *DataSetup        `json:"setup"`
	Cases          []CaseResult      `json:"cases"`
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
	RowsPerShard int64    `json:"rows_per_shard"`
	Shards       int      `json:"shards"`
	TotalRows    int64    `json:"total_rows"`
	Reps         int      `json:"reps"`
	CopyRows     int64    `json:"copy_rows"`
	LimitQueries int      `json:"limit_queries_per_run"`
	PoolSize     int      `json:"pgshard_pool_size_per_shard"`
	PoolMode     string   `json:"pgshard_pool_mode"`
	Cases        []string `json:"cases"`
}

// CaseResult is one case: every run (warm-ups are rep 0) and each target's medians.
type CaseResult struct {
	Name    string   `json:"name"`
	Title   string   `json:"title"`
	SQL     string   `json:"sql"`
	Runs    []Run    `json:"runs"`
	Direct  *Summary `json:"direct"`
	Pgshard *Summary `json:"pgshard"`
	Memory  *Memory  `json:"pgshard_memory"`
}

// Summary is one target's medians over its measured runs that did not fail, and what went wrong if anything did.
type Summary struct {
	Target     string  `json:"target"`
	Status     string  `json:"status"` // ok | WRONG | not supported by this build | error
	Detail     string  `json:"detail,omitempty"`
	MedianOf   int     `json:"median_of"`
	FailedRuns int     `json:"failed_runs"`
	Seconds    float64 `json:"seconds"`
	LatencyMs  float64 `json:"latency_ms,omitempty"` // case a: per query
	RowsPerSec float64 `json:"rows_per_sec"`
	MBPerSec   float64 `json:"mb_per_sec"` // 10^6 bytes per second
}

// Memory is pgshard's memory around one case, from /proc/<pid>/status.
type Memory struct {
	RSSBeforeKB  int64 `json:"rss_before_kb"` // VmRSS before the warm-up
	PeakKB       int64 `json:"peak_rss_kb"`   // VmHWM at the end: the peak since the case started
	RSSAfterKB   int64 `json:"rss_after_kb"`
	GrowthKB     int64 `json:"growth_kb"`               // PeakKB - RSSBeforeKB
	LifetimePeak bool  `json:"lifetime_peak,omitempty"` // VmHWM could not be reset: PeakKB is the process's lifetime peak
	Restarted    bool  `json:"restarted,omitempty"`     // pgshard died during the case and was started again
}

// Check is a target of the bench: PASS or FAIL, reported, never fatal.
type Check struct {
	What   string `json:"what"`
	Pass   bool   `json:"pass"`
	Detail string `json:"detail"`
}

func caseTitle(name string) string {
	switch name {
	case caseLimit:
		return "a. ORDER BY k LIMIT 100"
	case caseScan:
		return "b. full scan"
	case caseOrdered:
		return "c. full scan ORDER BY id"
	case caseCopy:
		return "d. COPY FROM STDIN (text)"
	case caseCoordinated:
		return "e. coordinator step over every row (count(DISTINCT), expressions over aggregates, stddev)"
	case caseCoordFilter:
		return "f. coordinator step, a filter on k pushed to the shards (~3% of the rows)"
	}
	return name
}

func caseSQL(name string) string {
	switch name {
	case caseLimit:
		return limitSQL
	case caseScan:
		return scanSQL
	case caseOrdered:
		return orderedSQL
	case caseCopy:
		return copySQL
	case caseCoordinated:
		return coordinatedSQL
	case caseCoordFilter:
		return coordFilterSQL
	}
	return ""
}

// summarize computes both targets' summaries from the runs.
func (cr *CaseResult) summarize() {
	cr.Direct = summarize(Direct, cr.Runs)
	cr.Pgshard = summarize(Pgshard, cr.Runs)
}

func summarize(target string, runs []Run) *Summary {
	s := &Summary{Target: target, Status: statusOK}
	var secs, lat, rps, mbps []float64
	firstErr, firstWrong, unsupported := "", "", ""
	measured := 0
	for _, r := range runs {
		if r.Target != target {
			continue
		}
		label := "warm-up"
		if r.Rep > 0 {
			label = fmt.Sprintf("rep %d", r.Rep)
			measured++
		}
		if r.Wrong != "" && firstWrong == "" {
			firstWrong = label + ": " + r.Wrong
		}
		if r.Error != "" {
			if r.SQLState == "0A000" && unsupported == "" {
				unsupported = benchkit.FirstLine(r.Error)
			}
			if firstErr == "" {
				firstErr = label + ": " + benchkit.FirstLine(r.Error)
			}
			if r.Rep > 0 {
				s.FailedRuns++
			}
			continue
		}
		if r.Rep == 0 || r.Seconds <= 0 {
			continue
		}
		secs = append(secs, r.Seconds)
		if r.Queries > 0 {
			lat = append(lat, r.Seconds/float64(r.Queries)*1000)
		}
		rps = append(rps, float64(r.Rows)/r.Seconds)
		mbps = append(mbps, float64(r.Bytes)/r.Seconds/1e6)
	}
	s.MedianOf = len(secs)
	s.Seconds, s.LatencyMs, s.RowsPerSec, s.MBPerSec = benchkit.Median(secs), benchkit.Median(lat), benchkit.Median(rps), benchkit.Median(mbps)
	switch {
	case firstWrong != "":
		s.Status, s.Detail = statusWrong, firstWrong
	case s.MedianOf == 0 && unsupported != "":
		s.Status, s.Detail = statusUnsupported, unsupported
	case s.MedianOf == 0 && firstErr != "":
		s.Status, s.Detail = statusError, firstErr
	case s.MedianOf == 0 && measured == 0:
		s.Status, s.Detail = statusError, "no run"
	case s.FailedRuns > 0:
		s.Detail = fmt.Sprintf("%d of %d runs failed, first: %s", s.FailedRuns, measured, firstErr)
	}
	return s
}

// usable reports whether the target's figures can be compared.
func (s *Summary) usable() bool { return s != nil && s.Status == statusOK && s.MedianOf > 0 }

// checks are the targets: the full scan and COPY at least 0.7× direct's rows/s, the full scan's RSS growth under
// 64 MB. A case not run has no check.
func (rep *Report) checks() []Check {
	var out []Check
	for _, c := range rep.Cases {
		switch c.Name {
		case caseScan, caseCopy:
			ck := Check{What: fmt.Sprintf("%s: pgshard's rows/s at least %.1f× direct's", c.Title, targetRatio)}
			if !c.Direct.usable() || !c.Pgshard.usable() {
				ck.Detail = fmt.Sprintf("no figure: direct %s, pgshard %s", statusText(c.Direct), statusText(c.Pgshard))
			} else {
				r := c.Pgshard.RowsPerSec / c.Direct.RowsPerSec
				ck.Pass = r >= targetRatio
				ck.Detail = fmt.Sprintf("%.2f× (%s vs %s rows/s)", r, benchkit.Thousands(c.Pgshard.RowsPerSec), benchkit.Thousands(c.Direct.RowsPerSec))
			}
			out = append(out, ck)
		}
		if c.Name == caseScan {
			ck := Check{What: fmt.Sprintf("%s: pgshard's RSS growth under %d MB", c.Title, targetGrowthMB)}
			m := c.Memory
			switch {
			case m == nil || m.PeakKB == 0:
				ck.Detail = "not measured (pgshard not running)"
			case m.Restarted:
				ck.Detail = "pgshard died during the case"
			default:
				ck.Pass = m.GrowthKB < targetGrowthMB*1024 && c.Pgshard.Status != statusWrong
				ck.Detail = fmt.Sprintf("%.1f MB (RSS %.1f MB before, peak %.1f MB)", mb(m.GrowthKB), mb(m.RSSBeforeKB), mb(m.PeakKB))
				if m.LifetimePeak {
					ck.Detail += "; VmHWM could not be reset, the peak is pgshard's lifetime peak"
				}
				if c.Pgshard.Status == statusWrong {
					ck.Detail += "; pgshard's results were WRONG"
				}
			}
			out = append(out, ck)
		}
	}
	return out
}

func statusText(s *Summary) string {
	if s == nil {
		return "not run"
	}
	if s.Status == statusOK && s.MedianOf == 0 {
		return "no successful run"
	}
	return s.Status
}

func mb(kb int64) float64 { return float64(kb) / 1024 }

// Markdown renders the report as the tables printed at the end of a run.
func (rep *Report) Markdown() string {
	var b strings.Builder
	st := rep.Settings
	fmt.Fprintf(&b, "## merge-bench, %s UTC\n\n", rep.Started.UTC().Format("2006-01-02 15:04"))
	m := rep.Machine
	fmt.Fprintf(&b, "- Machine: %d cores (%s), %.0f GiB, Linux %s; 1-minute load %.2f at start.\n", m.Cores, m.CPUModel,
		float64(m.MemTotalKB)/(1<<20), m.Kernel, m.LoadAvg1)
	var vs []string
	for _, k := range []string{"postgres", "pgshard", "go", "pgx"} {
		if v := rep.Versions[k]; v != "" {
			vs = append(vs, v)
		}
	}
	fmt.Fprintf(&b, "- Versions: %s.\n", strings.Join(vs, ", "))
	if s := rep.Setup; s != nil {
		var per []string
		for _, n := range s.ShardRows {
			per = append(per, benchkit.Thousands(float64(n)))
		}
		warm := "prewarmed with pg_prewarm"
		if !s.Prewarmed {
			warm = "not prewarmed"
		}
		fmt.Fprintf(&b, "- Data: `items (id bigint primary key, k integer, v text)`, index on k; %s rows in the reference "+
			"database, %d shard databases with %s rows (Postgres's hash partitioning of id, MODULUS %d), all in one "+
			"Postgres cluster (shared_buffers %s, %s). pgshard: transaction pooling, pool.size %d per shard.\n",
			benchkit.Thousands(float64(s.ReferenceRows)), len(s.ShardRows), strings.Join(per, " / "), len(s.ShardRows),
			s.SharedBuffers, warm, st.PoolSize)
	}
	fmt.Fprintf(&b, "- Method: one pgx connection per target, pgx defaults; per case one discarded warm-up per target, "+
		"then %d runs alternating direct and pgshard; medians. Case a runs %d queries per run (latency: their mean). "+
		"MB/s: bytes the client received on the wire (COPY: the COPY data sent), 10^6 bytes.\n", st.Reps, st.LimitQueries)
	fmt.Fprintf(&b, "- Took %s.", time.Duration(rep.ElapsedSeconds*float64(time.Second)).Round(time.Second))
	if rep.Interrupted {
		b.WriteString(" **Interrupted**: the tables hold what was measured until then.")
	}
	b.WriteString("\n\n")

	b.WriteString("| case | direct | pgshard | pgshard / direct |\n|---|--:|--:|--:|\n")
	for _, c := range rep.Cases {
		rows := benchkit.Thousands(float64(st.TotalRows))
		switch c.Name {
		case caseLimit:
			rep.row(&b, c, "a. `ORDER BY k LIMIT 100`: latency ms (lower is better)", func(s *Summary) float64 { return s.LatencyMs }, benchkit.FormatMs)
			rep.row(&b, c, "a. `ORDER BY k LIMIT 100`: rows/s", func(s *Summary) float64 { return s.RowsPerSec }, benchkit.Thousands)
		case caseScan:
			rep.row(&b, c, "b. full scan, "+rows+" rows: rows/s", func(s *Summary) float64 { return s.RowsPerSec }, benchkit.Thousands)
			rep.row(&b, c, "b. full scan: MB/s", func(s *Summary) float64 { return s.MBPerSec }, fmtMB)
		case caseOrdered:
			rep.row(&b, c, "c. full scan `ORDER BY id`, "+rows+" rows: rows/s", func(s *Summary) float64 { return s.RowsPerSec }, benchkit.Thousands)
			rep.row(&b, c, "c. full scan `ORDER BY id`: MB/s", func(s *Summary) float64 { return s.MBPerSec }, fmtMB)
		case caseCopy:
			rep.row(&b, c, "d. `COPY FROM STDIN` (text), "+benchkit.Thousands(float64(st.CopyRows))+" rows: rows/s", func(s *Summary) float64 { return s.RowsPerSec }, benchkit.Thousands)
			rep.row(&b, c, "d. `COPY FROM STDIN`: MB/s", func(s *Summary) float64 { return s.MBPerSec }, fmtMB)
		case caseCoordinated:
			rep.row(&b, c, "e. coordinator step over "+rows+" rows: seconds (lower is better)", func(s *Summary) float64 { return s.Seconds }, fmtSeconds)
		case caseCoordFilter:
			rep.row(&b, c, "f. coordinator step, a filter pushed to the shards: seconds (lower is better)", func(s *Summary) float64 { return s.Seconds }, fmtSeconds)
		}
	}
	var notes []string
	for _, c := range rep.Cases {
		for _, s := range []*Summary{c.Direct, c.Pgshard} {
			if s != nil && s.Detail != "" {
				notes = append(notes, fmt.Sprintf("- %s, %s: **%s**: %s", c.Title, s.Target, s.Status, s.Detail))
			}
		}
	}
	if len(notes) > 0 {
		b.WriteString("\n" + strings.Join(notes, "\n") + "\n")
	}

	b.WriteString("\npgshard's memory during each case (VmRSS before the warm-up; VmHWM, reset before the warm-up, at the end):\n\n")
	b.WriteString("| case | RSS before MB | peak MB | growth MB | RSS after MB |\n|---|--:|--:|--:|--:|\n")
	for _, c := range rep.Cases {
		m := c.Memory
		if m == nil || m.PeakKB == 0 {
			fmt.Fprintf(&b, "| %s | — | — | — | — |\n", c.Title)
			continue
		}
		note := ""
		if m.Restarted {
			note = " (pgshard restarted)"
		}
		if m.LifetimePeak {
			note += " (lifetime peak)"
		}
		fmt.Fprintf(&b, "| %s%s | %.1f | %.1f | %.1f | %.1f |\n", c.Title, note, mb(m.RSSBeforeKB), mb(m.PeakKB), mb(m.GrowthKB), mb(m.RSSAfterKB))
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

// row writes one table row: the figure of each target (or why there is none) and their ratio.
func (rep *Report) row(b *strings.Builder, c CaseResult, label string, val func(*Summary) float64, format func(float64) string) {
	cell := func(s *Summary) string {
		switch {
		case s == nil:
			return "—"
		case s.Status == statusUnsupported:
			return "not supported by this build"
		case s.Status == statusError:
			return "error"
		case s.MedianOf == 0:
			return "—"
		case s.Status == statusWrong:
			return format(val(s)) + " **WRONG**"
		}
		return format(val(s))
	}
	ratio := "—"
	if c.Direct.usable() && c.Pgshard.usable() && val(c.Direct) > 0 {
		ratio = fmt.Sprintf("**%.2f×**", val(c.Pgshard)/val(c.Direct))
	}
	fmt.Fprintf(b, "| %s | %s | %s | %s |\n", label, cell(c.Direct), cell(c.Pgshard), ratio)
}

func fmtMB(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) }

// save writes the report as JSON and its tables as Markdown to dir/merge-<UTC time>.{json,md}.
func (rep *Report) save(dir string, md string, logf func(string, ...any)) error {
	base, err := benchkit.SaveReport(dir, "merge", rep.Started, rep, md)
	if err != nil {
		return err
	}
	logf("wrote %s.json and %s.md", base, base)
	return nil
}

func numCPU() int { return runtime.NumCPU() }

// versions names Postgres, pgshard (with its commit), Go and pgx.
func versions(ctx context.Context, root string, e *Env) map[string]string {
	v := map[string]string{"go": runtime.Version(), "pgshard": benchkit.PgshardVersion(ctx, root, e.PgshardBin)}
	if dir, err := pgbin.Dir(); err == nil {
		v["postgres"] = benchkit.PostgresVersion(ctx, dir)
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == "github.com/jackc/pgx/v5" {
				v["pgx"] = "pgx " + d.Version
			}
		}
	}
	return v
}

func fmtSeconds(v float64) string { return fmt.Sprintf("%.3f", v) }
