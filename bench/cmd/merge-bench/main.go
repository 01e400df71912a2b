package main

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/pgshard/pgshard/bench/internal/benchkit"

	"github.com/jackc/pgx/v5"
)

const usageText = `merge-bench: cross-shard reads and sharded COPY through pgshard vs one unsharded Postgres, as tables.

usage: go run ./bench/cmd/merge-bench [flags]     (or: make bench-merge ROWS=... SHARDS=... REPS=...)

Cases: limit (a. ORDER BY k LIMIT 100), scan (b. full scan), ordered (c. full scan ORDER BY id), copy (d. COPY FROM
STDIN). Results: Markdown on stdout, every run as JSON in bench/results/merge-<UTC time>.json.

flags:
`

type options struct {
	rows         int64
	shards       int
	reps         int
	copyRows     int64
	limitQueries int
	pool         int
	cases        []string
	pgshardBin   string
	out          string
	keep         bool
	pprof        string
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	var o options
	var cases string
	fs := flag.NewFlagSet("merge-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usageText); fs.PrintDefaults() }
	fs.Int64Var(&o.rows, "rows", 1000000, "rows per shard: the reference holds rows × shards (ids 1..rows×shards)")
	fs.IntVar(&o.shards, "shards", 3, "shard databases (hash partitioning of id, MODULUS shards)")
	fs.IntVar(&o.reps, "reps", 5, "measured runs per case and target, after one discarded warm-up each (medians are reported)")
	fs.Int64Var(&o.copyRows, "copy-rows", 0, "rows per COPY in case d (0: -rows, so 1,000,000 by default)")
	fs.IntVar(&o.limitQueries, "limit-queries", 20, "queries per run in case a (its latency is their mean)")
	fs.IntVar(&o.pool, "pool", 10, "pgshard's pool.size (server connections per shard)")
	fs.StringVar(&cases, "cases", strings.Join(allCases, ","), "cases to run, comma-separated: "+strings.Join(allCases, ", "))
	fs.StringVar(&o.pgshardBin, "pgshard", "", "pgshard binary (default: `make build`, then bin/pgshard of this checkout)")
	fs.StringVar(&o.out, "out", "", "directory for the JSON and Markdown results (default: bench/results in the checkout)")
	fs.BoolVar(&o.keep, "keep", false, "keep the temporary directory (Postgres's and pgshard's logs, pgshard's config)")
	fs.StringVar(&o.pprof, "pprof", "", "serve pgshard's /debug/pprof on this address (pgshard --pprof), to profile it during the runs")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "merge-bench: unexpected arguments %q\n", fs.Args())
		return 2
	}
	if o.rows < 1 || o.shards < 1 || o.reps < 1 || o.copyRows < 0 || o.limitQueries < 1 || o.pool < 1 {
		fmt.Fprintln(stderr, "merge-bench: -rows, -shards, -reps, -limit-queries and -pool must be at least 1, -copy-rows at least 0")
		return 2
	}
	if o.copyRows == 0 {
		o.copyRows = o.rows
	}
	var err error
	if o.cases, err = parseCases(cases); err != nil {
		fmt.Fprintln(stderr, "merge-bench:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	logf := func(format string, a ...any) { fmt.Fprintf(stderr, "merge-bench: "+format+"\n", a...) }
	rep, err := bench(ctx, o, logf)
	if rep != nil && len(rep.Cases) > 0 {
		md := rep.Markdown()
		fmt.Fprint(stdout, md)
		if werr := rep.save(o.out, md, logf); werr != nil {
			logf("%v", werr)
			if err == nil {
				err = werr
			}
		}
		for _, c := range rep.Cases {
			for _, s := range []*Summary{c.Direct, c.Pgshard} {
				if s != nil && s.Status == statusWrong {
					logf("WRONG results: %s, %s: %s (its figures are not valid)", c.Title, s.Target, s.Detail)
				}
			}
		}
	}
	if err != nil {
		logf("%v", err)
		return 1
	}
	return 0
}

func parseCases(s string) ([]string, error) {
	var out []string
	for _, c := range strings.Split(s, ",") {
		c = strings.TrimSpace(c)
		if c == "" {
			continue
		}
		if c == "all" {
			return slices.Clone(allCases), nil
		}
		if !slices.Contains(allCases, c) {
			return nil, fmt.Errorf("unknown case %q (cases: %s)", c, strings.Join(allCases, ", "))
		}
		if !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no case to run")
	}
	slices.SortFunc(out, func(a, b string) int { return slices.Index(allCases, a) - slices.Index(allCases, b) })
	return out, nil
}

// bench sets everything up, runs the cases and stops what it started. It returns what was measured, also when
// interrupted or when a case could not run.
func bench(ctx context.Context, o options, logf func(string, ...any)) (*Report, error) {
	start := time.Now()
	root, err := benchkit.RepoRoot()
	if err != nil {
		return nil, err
	}
	if o.out == "" {
		o.out = filepath.Join(root, "bench", "results")
	}
	sweepStale(logf)
	if o.pgshardBin, err = benchkit.PgshardBinary(ctx, root, o.pgshardBin, logf); err != nil {
		return nil, err
	}

	env, err := newEnv()
	if err != nil {
		return nil, err
	}
	env.PgshardBin, env.Shards, env.PoolSize, env.Keep, env.PprofAddr = o.pgshardBin, o.shards, o.pool, o.keep, o.pprof
	defer env.stopAll(logf)

	total := o.rows * int64(o.shards)
	sb := sharedBuffersFor(total + o.copyRows)
	logf("starting Postgres (shared_buffers %s) in %s", sb, env.Dir)
	if err := env.startPostgres(sb); err != nil {
		return nil, err
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	logf("filling %s with %d rows and %d shard databases with their rows of them (hash partitioning of id)", refDB, total, o.shards)
	setup, err := env.fillDatabases(ctx, total, logf)
	if err != nil {
		return nil, err
	}
	setup.DirectPlans = map[string]string{}
	for _, sql := range []string{limitSQL, scanSQL, orderedSQL} {
		setup.DirectPlans[sql] = env.explain(ctx, sql)
	}
	logf("data ready in %.1fs: shards hold %v rows", setup.SetupSeconds, setup.ShardRows)
	if _, err := env.startPgshard(); err != nil {
		return nil, err
	}
	if l := benchkit.LoadAvg1(); l > 1.5 {
		logf("warning: the machine is busy (1-minute load %.2f): other processes compete for the cores and make the figures noisy", l)
	}
	rep := &Report{
		Bench:    "merge",
		Started:  start,
		Machine:  Machine{Cores: numCPU(), CPUModel: benchkit.CPUModel(), MemTotalKB: benchkit.MemTotalKB(), Kernel: benchkit.Kernel(), LoadAvg1: benchkit.LoadAvg1()},
		Versions: versions(ctx, root, env),
		Settings: Settings{RowsPerShard: o.rows, Shards: o.shards, TotalRows: total, Reps: o.reps, CopyRows: o.copyRows,
			LimitQueries: o.limitQueries, PoolSize: o.pool, PoolMode: "transaction", Cases: o.cases},
		Setup: setup,
	}
	r, err := newRunner(ctx, env, o, total, logf)
	if err != nil {
		return nil, err
	}
	defer r.close()
	for _, name := range o.cases {
		if ctx.Err() != nil {
			break
		}
		rep.Cases = append(rep.Cases, r.runCase(ctx, name))
	}
	rep.Checks = rep.checks()
	rep.Finished = time.Now()
	rep.ElapsedSeconds = rep.Finished.Sub(start).Seconds()
	if ctx.Err() != nil {
		rep.Interrupted = true
		return rep, errors.New("interrupted: the tables hold what was measured so far")
	}
	logf("done in %s", time.Since(start).Round(time.Second))
	return rep, nil
}

// runner runs the cases against the two targets.
type runner struct {
	env      *Env
	o        options
	total    int64
	logf     func(string, ...any)
	direct   *target
	pgshard  *target
	super    *pgx.Conn   // the superuser, for CHECKPOINT
	ref      *pgx.Conn   // the reference database, as app
	shards   []*pgx.Conn // each shard database, as app, with the temporary table hashParent
	copyData []byte
}

func newRunner(ctx context.Context, env *Env, o options, total int64, logf func(string, ...any)) (*runner, error) {
	r := &runner{env: env, o: o, total: total, logf: logf}
	r.direct = &target{name: Direct, dsn: func() string { return env.PG.DSN(refDB, appUser, appPassword) }}
	r.pgshard = &target{name: Pgshard, dsn: func() string {
		return fmt.Sprintf("postgres://%s:%s@127.0.0.1:%d/%s?sslmode=disable", appUser, appPassword, env.pgshard.Port, appDB)
	}}
	var err error
	if r.super, err = pgx.Connect(ctx, env.PG.SuperDSN("postgres")); err != nil {
		return nil, err
	}
	if r.ref, err = pgx.Connect(ctx, env.PG.DSN(refDB, appUser, appPassword)); err != nil {
		r.close()
		return nil, err
	}
	for i := range env.Shards {
		c, err := pgx.Connect(ctx, env.PG.DSN(shardDB(i), appUser, appPassword))
		if err == nil {
			_, err = c.Exec(ctx, hashParentDDL)
		}
		if c != nil {
			r.shards = append(r.shards, c)
		}
		if err != nil {
			r.close()
			return nil, err
		}
	}
	if slices.Contains(o.cases, caseCopy) {
		r.copyData = copyData(total+1, total+o.copyRows)
	}
	return r, nil
}

func (r *runner) close() {
	r.direct.close()
	r.pgshard.close()
	for _, c := range append([]*pgx.Conn{r.super, r.ref}, r.shards...) {
		if c != nil {
			_ = c.Close(context.Background())
		}
	}
}

// runCase runs one case: a warm-up per target, then the repetitions, alternating direct and pgshard; pgshard's
// memory is read at the start and end of the case and after each of its runs.
func (r *runner) runCase(ctx context.Context, name string) CaseResult {
	cr := CaseResult{Name: name, Title: caseTitle(name), SQL: caseSQL(name)}
	cr.Memory = r.memStart()
	var wantK []int32
	var wantAnswer []string
	for rep := 0; rep <= r.o.reps; rep++ {
		for _, t := range []*target{r.direct, r.pgshard} {
			if ctx.Err() != nil {
				break
			}
			run := r.runOne(ctx, name, t, &wantK, &wantAnswer, cr.Memory)
			run.Target, run.Rep = t.name, rep
			if t == r.pgshard && r.env.pgshard.Alive() {
				run.PeakRSSKB, _ = benchkit.ProcStatusKB(r.env.pgshard.Pid(), "VmHWM")
			}
			what := fmt.Sprintf("rep %d/%d", rep, r.o.reps)
			if rep == 0 {
				what = "warm-up"
			}
			r.logf("%-7s %-7s %-9s %s", name, t.name, what, run.brief())
			cr.Runs = append(cr.Runs, run)
		}
	}
	r.memEnd(cr.Memory)
	if name == caseCopy {
		if err := r.truncateCopies(ctx); err != nil {
			r.logf("copy: cleaning up items_copy: %v", err)
		}
	}
	cr.summarize()
	return cr
}

// runOne runs the case once against t.
func (r *runner) runOne(ctx context.Context, name string, t *target, wantK *[]int32, wantAnswer *[]string, mem *Memory) Run {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Minute)
	defer cancel()
	var run Run
	if t == r.pgshard && !r.env.pgshard.Alive() {
		msg := r.env.pgshard.ExitErr()
		t.close()
		r.logf("pgshard is not running, starting it again: %s", msg)
		if _, err := r.env.startPgshard(); err != nil {
			run.Error = "pgshard could not be started again: " + err.Error()
			return run
		}
		mem.Restarted = true
	}
	if name == caseCopy {
		// Untimed: empty items_copy everywhere and write out what the previous COPY left dirty.
		if err := r.truncateCopies(ctx); err != nil {
			run.Error = "harness: emptying items_copy: " + err.Error()
			return run
		}
	}
	conn, err := t.connection(ctx)
	if err != nil {
		run.fail(err)
		return r.pgshardGone(t, run)
	}
	switch name {
	case caseLimit:
		var first []int32
		run, first = runLimit(ctx, t, conn, r.o.limitQueries, *wantK)
		if t == r.direct && *wantK == nil && run.Error == "" && run.Wrong == "" {
			*wantK = first
		}
	case caseScan:
		run = runScan(ctx, t, conn, scanSQL, r.total, false)
	case caseOrdered:
		run = runScan(ctx, t, conn, orderedSQL, r.total, true)
	case caseCoordinated, caseCoordFilter:
		run = runAnswer(ctx, t, conn, caseSQL(name), wantAnswer)
	case caseCopy:
		run = runCopy(ctx, conn, r.copyData, r.o.copyRows)
		if run.Error == "" && run.Wrong == "" {
			run.Wrong = r.checkCopied(ctx, t)
		}
	}
	return r.pgshardGone(t, run)
}

// pgshardGone adds pgshard's exit to the error of a run it did not survive.
func (r *runner) pgshardGone(t *target, run Run) Run {
	if t == r.pgshard && run.Error != "" && !r.env.pgshard.Alive() {
		time.Sleep(100 * time.Millisecond) // let Wait record the exit status
		run.Error += "; " + r.env.pgshard.ExitErr()
	}
	return run
}

// truncateCopies empties items_copy on the reference and every shard, then checkpoints.
func (r *runner) truncateCopies(ctx context.Context) error {
	for _, c := range append([]*pgx.Conn{r.ref}, r.shards...) {
		if _, err := c.Exec(ctx, "TRUNCATE items_copy"); err != nil {
			return err
		}
	}
	_, err := r.super.Exec(ctx, "CHECKPOINT")
	return err
}

// checkCopied reads what a COPY left in the databases: on the reference all copied rows; through pgshard all of
// them over the shards, each on the shard of its hash partition.
func (r *runner) checkCopied(ctx context.Context, t *target) string {
	if t == r.direct {
		var n int64
		if err := r.ref.QueryRow(ctx, "SELECT count(*) FROM items_copy").Scan(&n); err != nil {
			return "harness: counting items_copy: " + err.Error()
		}
		if n != r.o.copyRows {
			return fmt.Sprintf("items_copy holds %d rows after the COPY, want %d", n, r.o.copyRows)
		}
		return ""
	}
	var sum int64
	var per []string
	var misplaced []string
	for i, c := range r.shards {
		var n, wrong int64
		err := c.QueryRow(ctx, fmt.Sprintf(`SELECT count(*), count(*) FILTER (WHERE NOT satisfies_hash_partition('%s'::regclass, %d, %d, id))
FROM items_copy`, hashParent, r.env.Shards, i)).Scan(&n, &wrong)
		if err != nil {
			return "harness: counting items_copy on " + shardDB(i) + ": " + err.Error()
		}
		sum += n
		per = append(per, fmt.Sprint(n))
		if wrong > 0 {
			misplaced = append(misplaced, fmt.Sprintf("%d of shard %d's rows belong to another shard", wrong, i))
		}
	}
	switch {
	case sum != r.o.copyRows:
		return fmt.Sprintf("the shards' items_copy hold %s rows (%d in all), want %d", strings.Join(per, " + "), sum, r.o.copyRows)
	case len(misplaced) > 0:
		return strings.Join(misplaced, "; ")
	}
	return ""
}

// memStart resets pgshard's VmHWM and reads its RSS before a case.
func (r *runner) memStart() *Memory {
	m := &Memory{}
	p := r.env.pgshard
	if !p.Alive() {
		return m
	}
	m.LifetimePeak = benchkit.ResetHWM(p.Pid()) != nil
	m.RSSBeforeKB, _ = benchkit.ProcStatusKB(p.Pid(), "VmRSS")
	return m
}

// memEnd reads pgshard's peak RSS during the case and its RSS after it.
func (r *runner) memEnd(m *Memory) {
	p := r.env.pgshard
	if !p.Alive() {
		return
	}
	m.PeakKB, _ = benchkit.ProcStatusKB(p.Pid(), "VmHWM")
	m.RSSAfterKB, _ = benchkit.ProcStatusKB(p.Pid(), "VmRSS")
	m.GrowthKB = max(0, m.PeakKB-m.RSSBeforeKB)
}

func (run Run) brief() string {
	s := fmt.Sprintf("%8.3fs  %10d rows", run.Seconds, run.Rows)
	if run.Seconds > 0 && run.Rows > 0 {
		s += fmt.Sprintf("  %12.0f rows/s", float64(run.Rows)/run.Seconds)
	}
	if run.Bytes > 0 && run.Seconds > 0 {
		s += fmt.Sprintf("  %7.1f MB/s", float64(run.Bytes)/run.Seconds/1e6)
	}
	if run.PeakRSSKB > 0 {
		s += fmt.Sprintf("  peak rss %.1f MB", float64(run.PeakRSSKB)/1024)
	}
	if run.Error != "" {
		s += "  ERROR: " + benchkit.FirstLine(run.Error)
	}
	if run.Wrong != "" {
		s += "  WRONG: " + run.Wrong
	}
	return s
}

func md5Hex(s string) string {
	sum := md5.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}
