package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/pgshard/pgshard/bench/internal/benchkit"
	"github.com/pgshard/pgshard/internal/pgbin"
)

// Report is everything one bench run measured; it is written as JSON under bench/results/.
type Report struct {
	Set            string            `json:"set"`
	Started        time.Time         `json:"started"`
	Finished       time.Time         `json:"finished"`
	ElapsedSeconds float64           `json:"elapsed_seconds"`
	Interrupted    bool              `json:"interrupted,omitempty"`
	Machine        Machine           `json:"machine"`
	Versions       map[string]string `json:"versions"`
	Settings       Settings          `json:"settings"`
	Scenarios      []ScenarioResult  `json:"scenarios"`
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
	Reps          int     `json:"reps"`
	WarmupSeconds float64 `json:"warmup_seconds"`
	Scale         int     `json:"scale"`
	PoolSize      int     `json:"pool_size"`
	PoolMode      string  `json:"pool_mode"`
	MaxJobs       int     `json:"pgbench_jobs"`
	Long          bool    `json:"long"`
}

// ScenarioResult holds one scenario's cases (client counts).
type ScenarioResult struct {
	Name            string       `json:"name"`
	Title           string       `json:"title"`
	About           string       `json:"about"`
	Setup           string       `json:"setup,omitempty"` // the sharded scenarios' shards
	Skipped         string       `json:"skipped,omitempty"`
	DurationSeconds float64      `json:"duration_seconds"`
	Reps            int          `json:"reps"`
	Mode            string       `json:"mode"`
	Select          bool         `json:"select_only"`
	Connect         bool         `json:"connect_per_transaction"`
	Targets         []string     `json:"targets"`
	Check           bool         `json:"-"`
	Cases           []CaseResult `json:"cases,omitempty"`
	Checks          []Check      `json:"checks,omitempty"`
}

// CaseResult is one client count: the discarded warm-up runs and every target's measured runs.
type CaseResult struct {
	Clients int            `json:"clients"`
	Jobs    int            `json:"jobs"`
	Warmup  []Result       `json:"warmup,omitempty"`
	Targets []TargetResult `json:"targets"`
}

// TargetResult is one target at one client count: its runs and their medians.
type TargetResult struct {
	Target      string   `json:"target"`
	Runs        []Result `json:"runs"`
	FailedRuns  int      `json:"failed_runs"`
	Error       string   `json:"error,omitempty"` // the first failed run's error
	Median      *Summary `json:"median,omitempty"`
	MedianCount int      `json:"median_of"`
}

// Summary holds the medians over the successful runs.
type Summary struct {
	TPS          float64 `json:"tps"`
	LatencyAvgMs float64 `json:"latency_avg_ms"`
	LatencyP99Ms float64 `json:"latency_p99_ms"`
	CPUPer1kTx   float64 `json:"proxy_cpu_seconds_per_1000_tx,omitempty"`
	PeakRSSKB    float64 `json:"proxy_peak_rss_kb,omitempty"`
}

// Check is one pass/fail criterion: a foundation issue's performance criterion, or (Correctness) a check that
// pgshard answered right, without which its figures mean nothing.
type Check struct {
	What        string  `json:"what"`
	Ratio       float64 `json:"ratio"`
	Pass        bool    `json:"pass"`
	Detail      string  `json:"detail"`
	Correctness bool    `json:"correctness,omitempty"`
}

func (tr *TargetResult) summarize(s Scenario) {
	var ok []Result
	for _, r := range tr.Runs {
		if r.Failed {
			tr.FailedRuns++
			if tr.Error == "" {
				tr.Error = r.Error
			}
			continue
		}
		ok = append(ok, r)
	}
	tr.MedianCount = len(ok)
	if len(ok) == 0 {
		return
	}
	m := func(f func(Result) float64) float64 {
		v := make([]float64, len(ok))
		for i, r := range ok {
			v[i] = f(r)
		}
		return benchkit.Median(v)
	}
	tr.Median = &Summary{
		TPS:          m(func(r Result) float64 { return r.TPS }),
		LatencyAvgMs: m(func(r Result) float64 { return r.LatencyAvgMs }),
		LatencyP99Ms: m(func(r Result) float64 { return r.LatencyP99Ms }),
	}
	if tr.Target != Direct {
		tr.Median.CPUPer1kTx = m(func(r Result) float64 { return r.CPUPer1kTx })
		tr.Median.PeakRSSKB = m(func(r Result) float64 { return float64(r.PeakRSSKB) })
	}
}

// foundationChecks: pgshard's TPS at least PgBouncer's, its CPU per transaction at most PgBouncer's.
func foundationChecks(sr ScenarioResult) []Check {
	var out []Check
	for _, c := range sr.Cases {
		var shard, bouncer *TargetResult
		for i := range c.Targets {
			switch c.Targets[i].Target {
			case Pgshard:
				shard = &c.Targets[i]
			case PgBouncer:
				bouncer = &c.Targets[i]
			}
		}
		prefix := fmt.Sprintf("-M %s, %d clients: ", sr.Mode, c.Clients)
		if shard == nil || bouncer == nil || shard.Median == nil || bouncer.Median == nil {
			out = append(out, Check{What: prefix + "pgshard vs PgBouncer", Detail: "no successful runs of both to compare"})
			continue
		}
		tps := shard.Median.TPS / bouncer.Median.TPS
		out = append(out, Check{What: prefix + "TPS pgshard >= PgBouncer", Ratio: tps, Pass: tps >= 1,
			Detail: fmt.Sprintf("%s vs %s TPS", benchkit.Thousands(shard.Median.TPS), benchkit.Thousands(bouncer.Median.TPS))})
		if bouncer.Median.CPUPer1kTx > 0 {
			cpu := shard.Median.CPUPer1kTx / bouncer.Median.CPUPer1kTx
			out = append(out, Check{What: prefix + "CPU per transaction pgshard <= PgBouncer", Ratio: cpu, Pass: cpu <= 1,
				Detail: fmt.Sprintf("%.1f vs %.1f µs/tx", shard.Median.CPUPer1kTx*1000, bouncer.Median.CPUPer1kTx*1000)})
		}
	}
	return out
}

// Markdown renders the report: a header with the machine, the versions and the method, then one table per scenario.
func (rep *Report) Markdown() string {
	var b strings.Builder
	m := rep.Machine
	fmt.Fprintf(&b, "## pgbench-compare `%s`, %s\n\n", rep.Set, rep.Started.UTC().Format("2006-01-02 15:04 UTC"))
	medOther, maxOther, _ := rep.otherCPU()
	fmt.Fprintf(&b, "- Machine: %d cores (%s), %.0f GiB, Linux %s; 1-minute load %.2f at start. Processes other "+
		"than pgbench, Postgres and the proxy (or stolen by the hypervisor) took %.0f%% of the machine's "+
		"CPU time during a run (median; %.0f%% at most): above a few percent the figures are noisy, and runs above "+
		"20%% are flagged as disturbed.\n", m.Cores, m.CPUModel, float64(m.MemTotalKB)/(1<<20),
		m.Kernel, m.LoadAvg1, medOther*100, maxOther*100)
	v := rep.Versions
	fmt.Fprintf(&b, "- Versions: %s, %s, %s, %s, %s.\n", v["postgres"], v["pgbench"], v["pgbouncer"], v["pgshard"], v["go"])
	st := rep.Settings
	fmt.Fprintf(&b, "- Method: pgbench scale %d initialised once directly on Postgres; both proxies pool in %s mode with "+
		"%d server connections and SCRAM on both sides; pgbench -j %d (fewer when clients < %d); targets alternate run "+
		"by run; one discarded %gs warm-up per target and scenario; figures are medians of %d runs.\n",
		st.Scale, st.PoolMode, st.PoolSize, st.MaxJobs, st.MaxJobs, st.WarmupSeconds, st.Reps)
	fmt.Fprintf(&b, "- Took %s.", (time.Duration(rep.ElapsedSeconds) * time.Second).String())
	if rep.Interrupted {
		b.WriteString(" **Interrupted: incomplete.**")
	}
	b.WriteString("\n\n")
	b.WriteString("TPS: higher is better. Latencies are per transaction, from `pgbench --log`. CPU: the proxy process's " +
		"user+system seconds per 1000 transactions (µs per transaction in parentheses), from /proc. Peak RSS: the " +
		"proxy's VmHWM during the run. Ratios are pgshard's figure over the other's: above 1 is better for TPS, below 1 " +
		"is better for latency, CPU and memory.\n\n")
	for _, sr := range rep.Scenarios {
		rep.scenarioMarkdown(&b, sr)
	}
	return b.String()
}

// otherCPU is the share of the machine's CPU time that processes outside the benchmark took during the measured
// runs of the given scenarios (all when none): the median and the largest over the runs.
func (rep *Report) otherCPU(only ...ScenarioResult) (med, most float64, ok bool) {
	list := rep.Scenarios
	if len(only) > 0 {
		list = only
	}
	var v []float64
	for _, sr := range list {
		for _, c := range sr.Cases {
			for _, t := range c.Targets {
				for _, r := range t.Runs {
					if r.MachineSeconds > 0 {
						v = append(v, r.OtherCPUSeconds/r.MachineSeconds)
					}
				}
			}
		}
	}
	if len(v) == 0 {
		return 0, 0, false
	}
	return benchkit.Median(v), slices.Max(v), true
}

func (rep *Report) scenarioMarkdown(b *strings.Builder, sr ScenarioResult) {
	if sr.Skipped != "" {
		fmt.Fprintf(b, "### %s: %s (skipped)\n\n%s\n\n**%s.**\n\n", sr.Name, sr.Title, sr.About, sr.Skipped)
		return
	}
	fmt.Fprintf(b, "### %s: %s (%gs runs)\n\n%s", sr.Name, sr.Title, sr.DurationSeconds, sr.About)
	if sr.Setup != "" {
		b.WriteString(" " + sr.Setup)
	}
	if med, most, ok := rep.otherCPU(sr); ok {
		fmt.Fprintf(b, " Other processes' share of the CPU during these runs: %.0f%% median, %.0f%% at most.", med*100, most*100)
	}
	b.WriteString("\n\n")
	b.WriteString("| clients | target | TPS | avg ms | p99 ms | CPU s/1k tx (µs/tx) | peak RSS MB | notes |\n")
	b.WriteString("|--:|---|--:|--:|--:|--:|--:|---|\n")
	for _, c := range sr.Cases {
		by := map[string]*TargetResult{}
		for i := range c.Targets {
			tr := &c.Targets[i]
			by[tr.Target] = tr
			fmt.Fprintf(b, "| %d | %s | %s |\n", c.Clients, tr.Target, rep.targetCells(sr, tr))
		}
		shard := by[Pgshard]
		for _, other := range []string{PgBouncer, PgshardPrimary, Direct} {
			o := by[other]
			if shard == nil || o == nil {
				continue
			}
			var cells []string
			if shard.Median == nil || o.Median == nil {
				cells = []string{"—", "—", "—", "—", "—"}
			} else {
				cells = []string{
					fmt.Sprintf("**%s**", ratio(shard.Median.TPS, o.Median.TPS)),
					ratio(shard.Median.LatencyAvgMs, o.Median.LatencyAvgMs),
					ratio(shard.Median.LatencyP99Ms, o.Median.LatencyP99Ms),
					"—", "—",
				}
				if other != Direct { // a proxy: its CPU and memory are measured
					cells[3] = "**" + ratio(shard.Median.CPUPer1kTx, o.Median.CPUPer1kTx) + "**"
					cells[4] = ratio(shard.Median.PeakRSSKB, o.Median.PeakRSSKB)
				}
			}
			fmt.Fprintf(b, "| %d | *pgshard / %s* | %s | |\n", c.Clients, other, strings.Join(cells, " | "))
		}
	}
	b.WriteString("\n")
	if split := shardSplit(sr); split != "" {
		b.WriteString(split + "\n\n")
	}
	for _, ch := range sr.Checks {
		verdict := "**FAIL**"
		if ch.Pass {
			verdict = "**PASS**"
		}
		ratioText := ""
		if ch.Ratio > 0 {
			ratioText = fmt.Sprintf("%.2f×, ", ch.Ratio)
		}
		fmt.Fprintf(b, "- %s %s: %s%s\n", verdict, ch.What, ratioText, ch.Detail)
	}
	if len(sr.Checks) > 0 {
		b.WriteString("\n")
	}
}

func (rep *Report) targetCells(sr ScenarioResult, tr *TargetResult) string {
	var notes []string
	if tr.Target == Pgshard && wrongResults(sr) {
		notes = append(notes, "**wrong results: the routing check below failed, figures not valid**")
	}
	if tr.FailedRuns > 0 {
		notes = append(notes, fmt.Sprintf("%d/%d %s", tr.FailedRuns, len(tr.Runs), cellText(rep.failureNote(sr, tr))))
	}
	if n, most := disturbed(tr.Runs); n > 0 {
		notes = append(notes, fmt.Sprintf("%d/%d disturbed (other processes took up to %.0f%% of the CPU)", n, len(tr.Runs), most*100))
	}
	note := strings.Join(notes, "; ")
	if len(tr.Runs) == 0 {
		return strings.Join([]string{"not run", "—", "—", "—", "—", ""}, " | ")
	}
	if tr.Median == nil {
		return strings.Join([]string{"fails", "—", "—", "—", "—", note}, " | ")
	}
	m := tr.Median
	cpu, rss := "—", "—"
	if tr.Target != Direct {
		cpu = fmt.Sprintf("%.4f (%.1f)", m.CPUPer1kTx, m.CPUPer1kTx*1000)
		rss = fmt.Sprintf("%.1f", m.PeakRSSKB/1024)
	}
	return strings.Join([]string{benchkit.Thousands(m.TPS), benchkit.FormatMs(m.LatencyAvgMs), benchkit.FormatMs(m.LatencyP99Ms), cpu, rss, note}, " | ")
}

// wrongResults reports whether a correctness check of the scenario failed.
func wrongResults(sr ScenarioResult) bool {
	return slices.ContainsFunc(sr.Checks, func(c Check) bool { return c.Correctness && !c.Pass })
}

// disturbedShare is the share of the machine's CPU time taken by other processes above which a run is flagged.
const disturbedShare = 0.20

// disturbed counts the runs during which other processes took more than disturbedShare of the CPU, and returns the
// largest share.
func disturbed(runs []Result) (n int, most float64) {
	for _, r := range runs {
		if r.MachineSeconds <= 0 {
			continue
		}
		share := r.OtherCPUSeconds / r.MachineSeconds
		if share > disturbedShare {
			n++
			most = max(most, share)
		}
	}
	return n, most
}

// failureNote is the failed runs' error, with the known reason first where there is one.
func (rep *Report) failureNote(sr ScenarioResult, tr *TargetResult) string {
	msg := benchkit.FirstLine(tr.Error)
	if tr.Target == PgBouncer && sr.Mode == "prepared" && rep.Settings.PoolMode == "transaction" {
		ver := strings.TrimPrefix(rep.Versions["pgbouncer"], "PgBouncer ")
		// PgBouncer 1.21 added max_prepared_statements (off by default, and not set here).
		return fmt.Sprintf("fails (PgBouncer %s has no prepared statement support in transaction mode): %s", ver, msg)
	}
	return "fails: " + msg
}

func cellText(s string) string {
	s = strings.ReplaceAll(s, "|", `\|`)
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

func ratio(a, b float64) string {
	if a <= 0 || b <= 0 {
		return "—"
	}
	return fmt.Sprintf("%.2f×", a/b)
}

// save writes <set>-<time>.json and .md under o.out and, with -readme, puts the tables into the README.
func (rep *Report) save(o options, md string, log io.Writer) error {
	base, err := benchkit.SaveReport(o.out, safeName(rep.Set), rep.Started, rep, md)
	if err != nil {
		return err
	}
	fmt.Fprintf(log, "bench: wrote %s.json and %s.md\n", base, base)
	if o.readme != "" {
		if rep.Interrupted {
			fmt.Fprintf(log, "bench: interrupted run: %s left as it was\n", o.readme)
			return nil
		}
		if err := updateReadme(o.readme, rep.Set, md); err != nil {
			return err
		}
		fmt.Fprintf(log, "bench: updated %s (section %q)\n", o.readme, rep.Set)
	}
	return nil
}

var unsafeChars = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

func safeName(s string) string { return strings.Trim(unsafeChars.ReplaceAllString(s, "_"), "_") }

// updateReadme replaces what stands between "<!-- bench:SET:begin -->" and "<!-- bench:SET:end -->".
func updateReadme(path, set, md string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	begin, end := "<!-- bench:"+set+":begin -->", "<!-- bench:"+set+":end -->"
	s := string(b)
	i, j := strings.Index(s, begin), strings.Index(s, end)
	if i < 0 || j < i {
		return fmt.Errorf("%s has no %s ... %s section: tables not written there", path, begin, end)
	}
	// The sections sit under the README's level-3 headings, so the report's headings go two levels down.
	md = strings.ReplaceAll("\n"+md, "\n### ", "\n##### ")
	md = strings.ReplaceAll(md, "\n## ", "\n#### ")
	s = s[:i+len(begin)] + "\n" + strings.TrimLeft(md, "\n") + s[j:]
	return os.WriteFile(path, []byte(s), 0o644)
}

func machineInfo() Machine {
	return Machine{Cores: runtime.NumCPU(), CPUModel: benchkit.CPUModel(), MemTotalKB: benchkit.MemTotalKB(),
		Kernel: benchkit.Kernel(), LoadAvg1: benchkit.LoadAvg1()}
}

func versions(ctx context.Context, root string, e *Env) map[string]string {
	v := map[string]string{"go": runtime.Version(), "postgres": benchkit.PostgresVersion(ctx, e.PGBinDir),
		"pgbench": strings.Replace(benchkit.FirstOutputLine(ctx, root, e.Pgbench, "--version"), "pgbench (PostgreSQL)", "pgbench", 1),
		"pgshard": benchkit.PgshardVersion(ctx, root, e.PgshardBin)}
	if e.BouncerBin != "" {
		v["pgbouncer"] = benchkit.FirstOutputLine(ctx, root, e.BouncerBin, "--version")
	}
	return v
}

func pgBinDirOrEmpty() (string, error) { return pgbin.Dir() }
