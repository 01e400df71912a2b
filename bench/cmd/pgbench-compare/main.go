package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/pgshard/pgshard/bench/internal/benchkit"
)

const usageText = `pgbench-compare: pgbench through pgshard, PgBouncer and directly against Postgres, alternating, as tables.

usage: go run ./bench/cmd/pgbench-compare [flags]     (or: make bench SCENARIO=... DURATION=... REPS=...)

Scenario sets: default (select-simple, select-extended, select-prepared, connect, tpcb, sharded-simple),
foundation (foundation-simple, foundation-extended), select, sharded (sharded-simple, sharded-extended), all; or
scenario names, comma-separated.

flags:
`

type options struct {
	scenarios  string
	duration   time.Duration
	warmup     time.Duration
	reps       int
	scale      int
	pool       int
	shardPool  int
	jobs       int
	long       bool
	clients    []int
	targets    []string
	out        string
	readme     string
	pgshardBin string
	pprof      string
	bouncerBin string
	keep       bool
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	var o options
	var clients, targets string
	fs := flag.NewFlagSet("pgbench-compare", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usageText); fs.PrintDefaults() }
	fs.StringVar(&o.scenarios, "scenarios", "default", "scenario sets or names, comma-separated")
	fs.DurationVar(&o.duration, "duration", 0, "length of each measured run (0: the scenario's default, 5s; 10s for foundation)")
	fs.DurationVar(&o.warmup, "warmup", 3*time.Second, "length of the discarded warm-up run per target and scenario (0: none)")
	fs.IntVar(&o.reps, "reps", 3, "measured runs per target and client count (medians are reported)")
	fs.IntVar(&o.scale, "scale", 10, "pgbench scale factor (pgbench -i -s), initialised once directly on Postgres")
	fs.IntVar(&o.pool, "pool", 10, "server connections per pool (pgshard pool.size, PgBouncer default_pool_size)")
	fs.IntVar(&o.shardPool, "shard-pool", 0, "pgshard's pool.size in the sharded scenarios, per shard (0: -pool; -pool/2 gives the shards as many server connections in all as PgBouncer)")
	fs.IntVar(&o.jobs, "jobs", 2, "pgbench threads (-j), never more than the clients")
	fs.BoolVar(&o.long, "long", false, "add 1000 clients to the select-only scenarios")
	fs.StringVar(&clients, "clients", "", "client counts for every scenario, comma-separated (default: each scenario's own)")
	fs.StringVar(&targets, "targets", "", "targets to run, comma-separated: direct, pgbouncer, pgshard (default: each scenario's own)")
	fs.StringVar(&o.out, "out", "", "directory for the JSON and Markdown results (default: bench/results in the repository)")
	fs.StringVar(&o.readme, "readme", "", "also write the tables into this README between its <!-- bench:SET:begin/end --> markers")
	fs.StringVar(&o.pgshardBin, "pgshard", "", "pgshard binary to use (default: build ./cmd/pgshard from this checkout)")
	fs.StringVar(&o.bouncerBin, "pgbouncer", "", "pgbouncer binary (default: from PATH or /usr/sbin; installed with bench/ensure-pgbouncer.sh when missing)")
	fs.StringVar(&o.pprof, "pprof", "", "serve pgshard's /debug/pprof on this address (pgshard --pprof), to profile it during the runs")
	fs.BoolVar(&o.keep, "keep", false, "keep the temporary directory (logs, configs, pgbench logs)")
	render := fs.String("render", "", "print the tables of a saved results JSON (and with -readme write them there) instead of running")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *render != "" {
		return renderSaved(*render, o.readme, stdout, stderr)
	}
	var err error
	if o.clients, err = parseInts(clients); err != nil {
		fmt.Fprintln(stderr, "bench:", err)
		return 2
	}
	if o.targets, err = parseTargets(targets); err != nil {
		fmt.Fprintln(stderr, "bench:", err)
		return 2
	}
	if o.reps < 1 || o.scale < 1 || o.pool < 1 || o.jobs < 1 || o.shardPool < 0 {
		fmt.Fprintln(stderr, "bench: -reps, -scale, -pool and -jobs must be at least 1, -shard-pool at least 0")
		return 2
	}
	if o.shardPool == 0 {
		o.shardPool = o.pool
	}
	list, err := pickScenarios(o.scenarios, o.long, o.clients, o.targets)
	if err != nil {
		fmt.Fprintln(stderr, "bench:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	rep, err := bench(ctx, o, list, stderr)
	if rep != nil && len(rep.Scenarios) > 0 {
		md := rep.Markdown()
		fmt.Fprint(stdout, md)
		if werr := rep.save(o, md, stderr); werr != nil {
			fmt.Fprintln(stderr, "bench:", werr)
			if err == nil {
				err = werr
			}
		}
	}
	if err != nil {
		fmt.Fprintln(stderr, "bench:", err)
		return 1
	}
	if fails := rep.correctnessFailures(); len(fails) > 0 {
		for _, f := range fails {
			fmt.Fprintln(stderr, "bench: FAIL: pgshard returned wrong results, its figures there are not valid:", f)
		}
		return 1
	}
	return 0
}

// renderSaved prints the tables of a results JSON written by an earlier run, and puts them into readme when set.
func renderSaved(path, readme string, stdout, stderr io.Writer) int {
	b, err := os.ReadFile(path)
	if err != nil {
		fmt.Fprintln(stderr, "bench:", err)
		return 1
	}
	var rep Report
	if err := json.Unmarshal(b, &rep); err != nil {
		fmt.Fprintf(stderr, "bench: %s: %v\n", path, err)
		return 1
	}
	md := rep.Markdown()
	fmt.Fprint(stdout, md)
	if readme != "" {
		if err := updateReadme(readme, rep.Set, md); err != nil {
			fmt.Fprintln(stderr, "bench:", err)
			return 1
		}
		fmt.Fprintf(stderr, "bench: updated %s (section %q)\n", readme, rep.Set)
	}
	return 0
}

// bench sets everything up, runs the scenarios and stops everything it started. It returns what was measured,
// also when interrupted.
func bench(ctx context.Context, o options, list []Scenario, log io.Writer) (*Report, error) {
	start := time.Now()
	root, err := benchkit.RepoRoot()
	if err != nil {
		return nil, err
	}
	if o.out == "" {
		o.out = filepath.Join(root, "bench", "results")
	}
	raiseFileLimit(log)
	pgBinDir := ""
	if d, err := pgBinDirOrEmpty(); err == nil {
		pgBinDir = d
	}
	sweepStale(pgBinDir)

	env, err := newEnv()
	if err != nil {
		return nil, err
	}
	env.PoolSize, env.ShardPoolSize, env.Keep, env.PprofAddr = o.pool, o.shardPool, o.keep, o.pprof
	defer env.stopAll()

	needs := map[string]bool{}
	maxClients := 0
	sharded, replicas := false, false
	for _, s := range list {
		if s.Skip != "" {
			continue
		}
		for _, t := range s.Targets {
			needs[t] = true
		}
		maxClients = max(maxClients, slices.Max(s.Clients))
		sharded = sharded || (s.Sharded && slices.Contains(s.Targets, Pgshard))
		replicas = replicas || s.Replicas
	}
	if len(needs) == 0 { // only skipped scenarios: nothing to start
		rep := &Report{Set: o.scenarios, Started: start, Finished: time.Now(), Machine: machineInfo(),
			Versions: map[string]string{"go": runtime.Version()}}
		r := &runner{env: env, o: o, log: log}
		for _, s := range list {
			rep.Scenarios = append(rep.Scenarios, r.scenario(ctx, s))
		}
		return rep, nil
	}
	if needs[PgBouncer] {
		if env.BouncerBin, err = findPgBouncer(ctx, root, o.bouncerBin, log); err != nil {
			return nil, err
		}
	}
	if needs[Pgshard] || needs[PgshardPrimary] {
		if o.pgshardBin != "" {
			env.PgshardBin = o.pgshardBin
		} else {
			fmt.Fprintln(log, "bench: building pgshard from this checkout")
			env.PgshardBin = filepath.Join(env.Dir, "pgshard")
			cmd := exec.CommandContext(ctx, "go", "build", "-o", env.PgshardBin, "./cmd/pgshard")
			cmd.Dir = root
			if out, err := cmd.CombinedOutput(); err != nil {
				return nil, fmt.Errorf("go build ./cmd/pgshard: %w\n%s", err, out)
			}
		}
	}
	fmt.Fprintf(log, "bench: starting Postgres (max_connections for %d clients) in %s\n", maxClients, env.Dir)
	if err := env.startPostgres(maxClients); err != nil {
		return nil, err
	}
	fmt.Fprintf(log, "bench: pgbench -i -s %d directly on Postgres (port %d)\n", o.scale, env.PG.Port)
	if err := env.initData(ctx, o.scale); err != nil {
		return nil, err
	}
	if sharded {
		fmt.Fprintf(log, "bench: filling the shard databases %s from the reference (Postgres's hash partitioning by aid)\n",
			strings.Join(shardedDBs, ", "))
		if env.Shards, err = env.setupShards(ctx, o.scale); err != nil {
			return nil, fmt.Errorf("setting up the shards: %w", err)
		}
		fmt.Fprintf(log, "bench: shards hold %v accounts (aid %s), set up in %.1fs\n", env.Shards.Accounts,
			env.Shards.AidType, env.Shards.SetupSeconds)
	}
	if replicas {
		fmt.Fprintln(log, "bench: making two streaming replicas of the cluster (pg_basebackup -R)")
		if err := env.setupReplicas(ctx); err != nil {
			return nil, fmt.Errorf("setting up the replicas: %w", err)
		}
	}
	if l := benchkit.LoadAvg1(); l > 1.5 {
		fmt.Fprintf(log, "bench: warning: the machine is busy (1-minute load %.2f before any run): other processes "+
			"compete for the cores and make the figures noisy\n", l)
	}
	rep := &Report{
		Set:      o.scenarios,
		Started:  start,
		Machine:  machineInfo(),
		Versions: versions(ctx, root, env),
		Settings: Settings{Reps: o.reps, WarmupSeconds: o.warmup.Seconds(), Scale: o.scale, PoolSize: o.pool,
			MaxJobs: o.jobs, PoolMode: "transaction", Long: o.long},
	}
	r := &runner{env: env, o: o, log: log}
	r.plan(list)
	for _, s := range list {
		if ctx.Err() != nil {
			break
		}
		rep.Scenarios = append(rep.Scenarios, r.scenario(ctx, s))
	}
	rep.Finished = time.Now()
	rep.ElapsedSeconds = rep.Finished.Sub(start).Seconds()
	if ctx.Err() != nil {
		rep.Interrupted = true
		return rep, errors.New("interrupted: the tables hold what was measured so far")
	}
	fmt.Fprintf(log, "bench: done in %s\n", time.Since(start).Round(time.Second))
	return rep, nil
}

// runner runs the scenarios and tells how far it got.
type runner struct {
	env        *Env
	o          options
	log        io.Writer
	total, now int
	started    time.Time
}

func (r *runner) duration(s Scenario) time.Duration {
	if r.o.duration > 0 {
		return r.o.duration
	}
	return s.Duration
}

// plan counts the runs and prints an estimate of the time they take.
func (r *runner) plan(list []Scenario) {
	var est time.Duration
	for _, s := range list {
		if s.Skip != "" {
			continue
		}
		n := len(s.Clients) * len(s.Targets) * r.o.reps
		r.total += n
		// Measured on the 2-core reference machine: ~0.3 s of set-up and log parsing per run.
		est += time.Duration(n)*(r.duration(s)+300*time.Millisecond) + time.Duration(len(s.Targets))*(r.o.warmup+500*time.Millisecond)
	}
	est += 20 * time.Second // Postgres, pgbench -i, proxies
	if slices.ContainsFunc(list, func(s Scenario) bool { return s.Sharded && s.Skip == "" }) {
		est += 20 * time.Second // filling the shards, routing checks
	}
	r.started = time.Now()
	fmt.Fprintf(r.log, "bench: %d measured runs planned, about %s\n", r.total, est.Round(time.Minute/6))
}

func (r *runner) scenario(ctx context.Context, s Scenario) ScenarioResult {
	d := r.duration(s)
	sr := ScenarioResult{Name: s.Name, Title: s.Title, About: s.About, Skipped: s.Skip, DurationSeconds: d.Seconds(),
		Reps: r.o.reps, Mode: s.Mode, Select: s.Select, Connect: s.Connect, Targets: s.Targets, Check: s.Check}
	if s.Skip != "" {
		fmt.Fprintf(r.log, "bench: %s: skipped: %s\n", s.Name, s.Skip)
		return sr
	}
	// Fresh proxies for every scenario; VmHWM is reset before each run, so a run's peak RSS is its own.
	procs := map[string]*Proc{}
	startErr := map[string]string{}
	startProxy := func(t string) {
		var p *Proc
		var err error
		switch t {
		case Pgshard, PgshardPrimary:
			p, err = r.env.startPgshard(s, t)
		case PgBouncer:
			p, err = r.env.startPgBouncer(ctx, s.TLS)
		default:
			return
		}
		if err != nil {
			startErr[t] = "could not start: " + err.Error()
			fmt.Fprintf(r.log, "bench: %s: %s: %v\n", s.Name, t, err)
			delete(procs, t)
			return
		}
		delete(startErr, t)
		procs[t] = p
	}
	for _, t := range s.Targets {
		startProxy(t)
	}
	defer func() {
		for _, p := range procs {
			p.Stop()
		}
	}()

	for ci, clients := range s.Clients {
		cr := CaseResult{Clients: clients, Jobs: jobsFor(clients, r.o.jobs)}
		byTarget := map[string]*TargetResult{}
		for _, t := range s.Targets {
			byTarget[t] = &TargetResult{Target: t}
		}
		if s.Writes {
			if err := r.env.resetWrites(ctx); err != nil {
				fmt.Fprintf(r.log, "bench: %s: resetting the tables: %v\n", s.Name, err)
			}
		}
		if ci == 0 && r.o.warmup > 0 {
			warm := min(64, slices.Max(s.Clients))
			for _, t := range s.Targets {
				if ctx.Err() != nil {
					break
				}
				res := r.measure(ctx, s, t, procs, startErr, warm, r.o.warmup, 0)
				fmt.Fprintf(r.log, "bench: %-19s c=%-4d %-9s warm-up     %s\n", s.Name, warm, t, res.brief())
				cr.Warmup = append(cr.Warmup, res)
			}
		}
		for rep := 1; rep <= r.o.reps; rep++ {
			for _, t := range s.Targets { // A, B, C, A, B, C, ...
				if ctx.Err() != nil {
					break
				}
				if p, ok := procs[t]; (ok && !p.Alive()) || startErr[t] != "" {
					startProxy(t) // it crashed in an earlier run (recorded there) or did not start: try again
				}
				res := r.measure(ctx, s, t, procs, startErr, clients, d, rep)
				r.now++
				fmt.Fprintf(r.log, "bench: [%d/%d] %-19s c=%-4d %-9s rep %d/%d  %s\n", r.now, r.total, s.Name,
					clients, t, rep, r.o.reps, res.brief())
				tr := byTarget[t]
				tr.Runs = append(tr.Runs, res)
			}
		}
		for _, t := range s.Targets {
			tr := byTarget[t]
			tr.summarize(s)
			cr.Targets = append(cr.Targets, *tr)
		}
		sr.Cases = append(sr.Cases, cr)
		if ctx.Err() != nil {
			break
		}
	}
	if s.Check {
		sr.Checks = foundationChecks(sr)
	}
	if s.Sharded {
		sr.Setup = r.env.Shards.Describe()
		if slices.Contains(s.Targets, Pgshard) && ctx.Err() == nil {
			if p, ok := procs[Pgshard]; (ok && !p.Alive()) || startErr[Pgshard] != "" {
				startProxy(Pgshard)
			}
			c := r.env.routingCheck(ctx, procs[Pgshard], s.Mode)
			verdict := "PASS"
			if !c.Pass {
				verdict = "FAIL"
			}
			fmt.Fprintf(r.log, "bench: %s: routing check %s: %s\n", s.Name, verdict, c.Detail)
			sr.Checks = append(sr.Checks, c)
		}
	}
	return sr
}

// measure runs pgbench once against target t and, for a proxy, reads its CPU time and peak RSS around the run.
func (r *runner) measure(ctx context.Context, s Scenario, t string, procs map[string]*Proc, startErr map[string]string,
	clients int, d time.Duration, rep int) Result {
	run := pgbenchRun{Bin: r.env.Pgbench, User: appUser, Password: appPassword, Select: s.Select, Mode: s.Mode,
		Connect: s.Connect, Clients: clients, Jobs: jobsFor(clients, r.o.jobs), Duration: d + connectAllowance(clients),
		Keep: r.o.keep, TLS: s.TLS,
		LogDir: filepath.Join(r.env.Dir, "runs", fmt.Sprintf("%s-c%d-%s-r%d", s.Name, clients, t, rep))}
	var p *Proc
	if t == Direct {
		run.Port, run.DB = r.env.PG.Port, shardDB
	} else {
		if msg := startErr[t]; msg != "" {
			return Result{Target: t, Rep: rep, Started: time.Now(), Failed: true, ExitCode: -1, Error: msg}
		}
		p = procs[t]
		run.Port, run.DB = p.Port, p.DB
	}
	var cpu0 time.Duration
	lifetime := false
	if p != nil {
		lifetime = benchkit.ResetHWM(p.Pid()) != nil
		cpu0, _ = benchkit.ProcCPU(p.Pid())
	}
	var xacts0 []int64
	if s.Sharded && t == Pgshard {
		xacts0, _ = r.env.shardXacts(ctx)
	}
	pmPid := r.env.postmasterPid()
	nChildren := len(benchkit.Children(pmPid))
	pg0 := r.env.postgresCPU()
	busy0, all0, merr := benchkit.MachineCPU()
	res, err := run.execute(ctx)
	res.Target, res.Rep = t, rep
	if t == Direct {
		// The proxies keep their server connections (new backends that stay); a direct run's backends go.
		benchkit.WaitChildren(pmPid, nChildren, 10*time.Second)
	}
	busy1, all1, merr1 := benchkit.MachineCPU()
	res.PostgresCPUSeconds = (r.env.postgresCPU() - pg0).Seconds()
	if merr == nil && merr1 == nil {
		res.MachineBusySeconds, res.MachineSeconds = (busy1 - busy0).Seconds(), (all1 - all0).Seconds()
	}
	if err != nil {
		res.Failed = true
		res.Error = "harness: " + err.Error()
	}
	if p != nil {
		cpu1, cerr := benchkit.ProcCPU(p.Pid())
		hwm, herr := benchkit.ProcStatusKB(p.Pid(), "VmHWM")
		switch {
		case !p.Alive() || cerr != nil || herr != nil:
			time.Sleep(100 * time.Millisecond) // let Wait record the exit status
			res.Failed = true
			res.Error = strings.TrimSpace(res.Error + "; " + p.ExitErr())
			res.Error = strings.TrimPrefix(res.Error, "; ")
		default:
			res.ProxyCPUSeconds = (cpu1 - cpu0).Seconds()
			if res.Transactions > 0 {
				res.CPUPer1kTx = res.ProxyCPUSeconds / float64(res.Transactions) * 1000
			}
			res.PeakRSSKB, res.RSSLifetimePeak = hwm, lifetime
		}
	}
	if xacts0 != nil {
		if xacts1, err := r.env.shardXacts(ctx); err == nil {
			for i := range xacts1 {
				res.ShardXacts = append(res.ShardXacts, xacts1[i]-xacts0[i])
			}
		}
	}
	if res.MachineBusySeconds > 0 {
		res.OtherCPUSeconds = max(0, res.MachineBusySeconds-res.PgbenchCPUSeconds-res.PostgresCPUSeconds-res.ProxyCPUSeconds)
	}
	return res
}

// connectAllowance lengthens pgbench's -T for very many clients: pgbench connects all its clients (a SCRAM login
// each, ~4 s for 1000 on 2 cores) inside the -T time, which would otherwise leave little or nothing of a short run to
// measure. Its TPS leaves the initial connection time out either way.
func connectAllowance(clients int) time.Duration {
	if clients <= 256 {
		return 0
	}
	return time.Duration(clients) * 5 * time.Millisecond
}

func (res Result) brief() string {
	s := fmt.Sprintf("%9.0f tps  avg %7.3f ms  p99 %7.3f ms", res.TPS, res.LatencyAvgMs, res.LatencyP99Ms)
	if res.CPUPer1kTx > 0 {
		s += fmt.Sprintf("  cpu %.4f s/1k tx  rss %.1f MB", res.CPUPer1kTx, float64(res.PeakRSSKB)/1024)
	}
	if res.Failed {
		s += "  FAILED: " + benchkit.FirstLine(res.Error)
	}
	return s
}

// findPgBouncer returns the pgbouncer binary, installing Debian's package through bench/ensure-pgbouncer.sh when
// it is missing.
func findPgBouncer(ctx context.Context, root, flagPath string, log io.Writer) (string, error) {
	if flagPath != "" {
		return flagPath, nil
	}
	if p, err := exec.LookPath("pgbouncer"); err == nil {
		return p, nil
	}
	if st, err := os.Stat("/usr/sbin/pgbouncer"); err == nil && !st.IsDir() {
		return "/usr/sbin/pgbouncer", nil
	}
	fmt.Fprintln(log, "bench: PgBouncer is missing: installing it (bench/ensure-pgbouncer.sh)")
	cmd := exec.CommandContext(ctx, "bash", filepath.Join(root, "bench", "ensure-pgbouncer.sh"))
	cmd.Stderr = log
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("installing PgBouncer: %w", err)
	}
	return strings.TrimSpace(string(out)), nil
}

// raiseFileLimit sets the soft open-files limit to the hard one; the proxies and pgbench inherit it (1000 clients
// need 2000+ descriptors in a proxy).
func raiseFileLimit(log io.Writer) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return
	}
	lim.Cur = lim.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		fmt.Fprintf(log, "bench: cannot raise the open files limit: %v\n", err)
	}
}
