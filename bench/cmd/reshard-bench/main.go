package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/pgshard/pgshard/bench/internal/benchkit"
)

const usageText = `reshard-bench: the data copy of pgshard reshard (1, 2, 4 streams) against pg_dump | psql, and the write pause
at the cutover, as tables.

usage: go run ./bench/cmd/reshard-bench [flags]     (or: make bench-reshard SIZE=... STREAMS=... REPS=...)

Results: Markdown on stdout, every run as JSON in bench/results/reshard-<UTC time>.json (and .md).

flags:
`

type options struct {
	size        int64
	streams     []int
	reps        int
	loadClients int
	loadRate    int
	chunkMB     int
	pgshardBin  string
	out         string
	profileDir  string
	keep        bool
	quietShare  float64
	quietWait   time.Duration
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	var o options
	var size, streams string
	fs := flag.NewFlagSet("reshard-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usageText); fs.PrintDefaults() }
	fs.StringVar(&size, "size", "2GB", "heap size of the accounts table to copy (pg_relation_size; kB, MB, GB are powers of 1024, as in postgresql.conf)")
	fs.StringVar(&streams, "streams", "1,2,4", "the reshard's --workers (parallel copy streams), one run each per repetition")
	fs.IntVar(&o.reps, "reps", 1, "repetitions of the set of runs (pg_dump | psql and one reshard per -streams value); medians are reported")
	fs.IntVar(&o.loadClients, "load-clients", 2, "clients writing through pgshard during every run")
	fs.IntVar(&o.loadRate, "load-rate", 50, "transactions per second of each load client (UPDATE accounts + INSERT history)")
	fs.IntVar(&o.chunkMB, "chunk-mb", 0, "the reshard's --chunk-mb (0: its default)")
	fs.StringVar(&o.pgshardBin, "pgshard", "", "pgshard binary (default: `make build`, then bin/pgshard of this checkout)")
	fs.StringVar(&o.out, "out", "", "directory for the JSON and Markdown results (default: bench/results in the checkout)")
	fs.StringVar(&o.profileDir, "cpuprofile-dir", "", "write a CPU profile of every reshard run into this directory (the reshard reads $PGSHARD_CPUPROFILE)")
	fs.Float64Var(&o.quietShare, "quiet", 0.15, "before each run, wait until other processes use less than this share of the CPU (0: do not wait)")
	fs.DurationVar(&o.quietWait, "quiet-wait", 2*time.Minute, "wait at most this long for -quiet before each run")
	fs.BoolVar(&o.keep, "keep", false, "keep the temporary directory (Postgres's, pgshard's and the runs' logs)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "reshard-bench: unexpected arguments %q\n", fs.Args())
		return 2
	}
	var err error
	if o.size, err = parseSize(size); err != nil {
		fmt.Fprintln(stderr, "reshard-bench: -size:", err)
		return 2
	}
	if o.streams, err = parseStreams(streams); err != nil {
		fmt.Fprintln(stderr, "reshard-bench: -streams:", err)
		return 2
	}
	if o.reps < 1 || o.loadClients < 0 || o.loadRate < 1 || o.chunkMB < 0 {
		fmt.Fprintln(stderr, "reshard-bench: -reps and -load-rate must be at least 1, -load-clients and -chunk-mb at least 0")
		return 2
	}
	if o.profileDir != "" {
		if o.profileDir, err = filepath.Abs(o.profileDir); err == nil {
			err = os.MkdirAll(o.profileDir, 0o755)
		}
		if err != nil {
			fmt.Fprintln(stderr, "reshard-bench: -cpuprofile-dir:", err)
			return 2
		}
	}
	if o.out == "" {
		root, err := benchkit.RepoRoot()
		if err != nil {
			fmt.Fprintln(stderr, "reshard-bench:", err)
			return 1
		}
		o.out = filepath.Join(root, "bench", "results")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	logf := func(format string, a ...any) {
		fmt.Fprintf(stderr, "%s reshard-bench: "+format+"\n", append([]any{time.Now().Format("15:04:05")}, a...)...)
	}
	rep, err := bench(ctx, o, logf)
	if rep != nil && len(rep.Runs) > 0 {
		md := rep.Markdown()
		fmt.Fprint(stdout, md)
		if werr := rep.save(o.out, md, logf); werr != nil {
			logf("%v", werr)
			if err == nil {
				err = werr
			}
		}
	}
	if err != nil {
		logf("%v", err)
		return 1
	}
	return 0
}

// parseStreams reads "1,2,4": distinct positive counts, in the order given.
func parseStreams(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 || n > 64 {
			return nil, fmt.Errorf("%q is not a number of streams from 1 to 64", f)
		}
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no stream count")
	}
	return out, nil
}

// bench sets everything up, runs the copies and stops what it started. It returns what was measured, also when
// interrupted.
func bench(ctx context.Context, o options, logf func(string, ...any)) (*Report, error) {
	start := time.Now()
	root, err := benchkit.RepoRoot()
	if err != nil {
		return nil, err
	}
	sweepStale(logf)
	if o.pgshardBin, err = benchkit.PgshardBinary(ctx, root, o.pgshardBin, logf); err != nil {
		return nil, err
	}
	env, err := newEnv()
	if err != nil {
		return nil, err
	}
	env.PgshardBin, env.Keep = o.pgshardBin, o.keep
	defer env.stopAll(logf)

	logf("starting Postgres in %s", env.Dir)
	if err := env.startPostgres(); err != nil {
		return nil, err
	}
	rep := &Report{
		Bench:   "reshard",
		Started: start,
		Machine: Machine{Cores: numCPU(), CPUModel: benchkit.CPUModel(), MemTotalKB: benchkit.MemTotalKB(),
			Kernel: benchkit.Kernel(), LoadAvg1: benchkit.LoadAvg1()},
		Versions: versions(ctx, root, env),
		Settings: Settings{SizeBytes: o.size, Streams: o.streams, Reps: o.reps, LoadClients: o.loadClients,
			LoadRate: o.loadRate, ChunkMB: o.chunkMB, DestShards: destShards, SameCluster: true, PgSettings: pgSettings,
			QuietShare: o.quietShare, QuietWaitSeconds: o.quietWait.Seconds()},
	}
	finish := func(err error) (*Report, error) {
		rep.Finished = time.Now()
		rep.ElapsedSeconds = rep.Finished.Sub(start).Seconds()
		rep.summarize()
		if ctx.Err() != nil {
			rep.Interrupted = true
			return rep, errors.New("interrupted: the tables hold what was measured so far")
		}
		return rep, err
	}
	logf("filling the source database with %s of accounts (pgbench_accounts-like)", fmtBytes(o.size))
	if rep.Data, err = env.fillSource(ctx, o.size, logf); err != nil {
		return finish(fmt.Errorf("filling the source: %w", err))
	}
	logf("source ready in %.0fs: %d rows, %s heap, %s primary key", rep.Data.SetupSeconds, rep.Data.Rows,
		fmtBytes(rep.Data.TableBytes), fmtBytes(rep.Data.IndexBytes))
	if l := benchkit.LoadAvg1(); l > 1.5 {
		logf("warning: the machine is busy (1-minute load %.2f): other processes compete for the cores and make the figures noisy", l)
	}
	r := &runner{env: env, o: o, data: rep.Data, logf: logf}
	for i := 1; i <= o.reps && ctx.Err() == nil; i++ {
		// The baseline runs first in odd repetitions and last in even ones, so that drift (the source's dead rows,
		// the page cache) does not always favour the same side.
		dumpFirst := i%2 == 1
		if dumpFirst {
			rep.add(r.dumpRun(ctx, i), logf)
		}
		for _, n := range o.streams {
			if ctx.Err() != nil {
				break
			}
			rep.add(r.reshardRun(ctx, i, n), logf)
		}
		if !dumpFirst && ctx.Err() == nil {
			rep.add(r.dumpRun(ctx, i), logf)
		}
	}
	logf("done in %s", time.Since(start).Round(time.Second))
	return finish(nil)
}

// add records a run and logs it in one line.
func (rep *Report) add(run Run, logf func(string, ...any)) {
	rep.Runs = append(rep.Runs, run)
	logf("rep %d %-15s %d streams: %s", run.Rep, run.Method, run.Streams, run.brief())
}

func (run Run) brief() string {
	s := fmt.Sprintf("%d rows in %.1fs", run.Rows, run.Seconds)
	if run.Seconds > 0 {
		s += fmt.Sprintf(" (%s rows/s, %.1f MB/s)", benchkit.Thousands(float64(run.Rows)/run.Seconds), float64(run.Bytes)/run.Seconds/1e6)
	}
	if run.Method == methodReshard {
		s += fmt.Sprintf("; whole run %.1fs", run.TotalSeconds)
		if run.PauseMS > 0 {
			s += fmt.Sprintf(", write pause %s ms", benchkit.FormatMs(run.PauseMS))
		}
	}
	if run.Load != nil {
		s += fmt.Sprintf("; load %d tx (%d failed), max %s ms", run.Load.Commits, run.Load.Failures, benchkit.FormatMs(run.Load.MaxMs))
	}
	if run.Error != "" {
		s += "; ERROR: " + benchkit.FirstLine(run.Error)
	}
	if run.Wrong != "" {
		s += "; WRONG: " + run.Wrong
	}
	return s
}

// fmtBytes is a size in MiB or GiB, as Postgres's pg_size_pretty writes them.
func fmtBytes(b int64) string {
	if b >= 10<<30 || b >= 1<<30 && b%(1<<30) == 0 {
		return strconv.FormatFloat(float64(b)/(1<<30), 'f', -1, 64) + " GB"
	}
	if b >= 1<<30 {
		return strconv.FormatFloat(float64(b)/(1<<30), 'f', 2, 64) + " GB"
	}
	return strconv.FormatFloat(float64(b)/(1<<20), 'f', 0, 64) + " MB"
}
