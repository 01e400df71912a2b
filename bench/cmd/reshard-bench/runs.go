package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgshard/pgshard/bench/internal/benchkit"
	"github.com/pgshard/pgshard/reshard/status"
)

// The methods the runs measure.
const (
	methodDump    = "pg_dump | psql"
	methodReshard = "pgshard reshard"
)

// destShards is how many shards the reshard makes of the one source database.
const destShards = 2

// Run is one measured copy.
type Run struct {
	Method  string `json:"method"`
	Streams int    `json:"streams"` // --workers of the reshard; 1 for pg_dump | psql
	Rep     int    `json:"rep"`
	// Rows copied: for the reshard its copy_rows (accounts, and the few history rows the load wrote before the
	// snapshot), for pg_dump | psql the rows in the destination's accounts afterwards.
	Rows         int64      `json:"rows"`
	Bytes        int64      `json:"source_bytes"`  // pg_relation_size of the tables copied, read just before the run
	Seconds      float64    `json:"copy_seconds"`  // reshard: its copy_seconds; pg_dump | psql: the whole pipeline
	TotalSeconds float64    `json:"total_seconds"` // the whole command
	PauseMS      float64    `json:"write_pause_ms,omitempty"`
	Phase        string     `json:"phase,omitempty"` // the reshard's last phase: done once it switched
	CopyLine     string     `json:"copy_line,omitempty"`
	PauseLine    string     `json:"pause_line,omitempty"`
	Error        string     `json:"error,omitempty"`
	Wrong        string     `json:"wrong,omitempty"`
	Checked      string     `json:"checked,omitempty"` // what the bench verified after the run
	Load         *LoadStats `json:"load,omitempty"`
	LogPath      string     `json:"log,omitempty"`
	CPU          *CPU       `json:"cpu,omitempty"`      // from the start of the load to the end of the command
	CopyCPU      *CPU       `json:"copy_cpu,omitempty"` // the copy alone: the reshard's copy phase, pg_dump | psql's pipeline
	CutoverCPU   *CPU       `json:"cutover_cpu,omitempty"`
	// Before the run the bench waited this long for other processes to use less of the CPU (-quiet); their
	// share in the last 2 s before the run.
	QuietWaitSeconds float64 `json:"quiet_wait_seconds"`
	OthersBefore     float64 `json:"others_share_before"`
}

// runner runs the copies.
type runner struct {
	env  *Env
	o    options
	data *DataSetup
	logf func(string, ...any)
}

// waitQuiet waits for the other processes on the machine to calm down before a measurement (-quiet, -quiet-wait).
func (r *runner) waitQuiet(ctx context.Context, run *Run) {
	if r.o.quietShare <= 0 {
		return
	}
	w, share := r.env.waitQuiet(ctx, r.o.quietShare, r.o.quietWait, r.logf)
	run.QuietWaitSeconds, run.OthersBefore = w.Seconds(), share
}

// sourceState is what the source holds when a run starts.
type sourceState struct {
	balance       int64 // sum(abalance)
	accountsBytes int64
	historyBytes  int64
}

// prepareSource empties history (so that after a reshard the destinations' history holds exactly the load's
// rows) and reads the balance sum and the tables' sizes.
func (r *runner) prepareSource(ctx context.Context) (sourceState, error) {
	var s sourceState
	c, err := pgx.Connect(ctx, r.env.dsn(srcDB))
	if err != nil {
		return s, err
	}
	defer c.Close(context.Background())
	if _, err := c.Exec(ctx, "TRUNCATE history"); err != nil {
		return s, err
	}
	err = c.QueryRow(ctx, "SELECT coalesce(sum(abalance), 0)::bigint, pg_relation_size('accounts'), pg_relation_size('history') FROM accounts").
		Scan(&s.balance, &s.accountsBytes, &s.historyBytes)
	return s, err
}

// reshardRun moves database app from the source to two fresh, empty destination databases with `pgshard reshard
// --workers streams` while the write load runs through pgshard, then checks the destinations.
func (r *runner) reshardRun(ctx context.Context, rep, streams int) (run Run) {
	run = Run{Method: methodReshard, Streams: streams, Rep: rep}
	ctx, cancel := context.WithTimeout(ctx, 40*time.Minute)
	defer cancel()
	e := r.env
	var dsts []string
	for i := range destShards {
		dsts = append(dsts, dstDB(i))
	}
	harness := func(err error) Run { run.Error = "harness: " + err.Error(); return run }
	if err := e.recreateDBs(ctx, dsts...); err != nil {
		return harness(err)
	}
	defer func() {
		e.stopPgshard() // before the drop: it holds connections to the new shards
		if err := e.dropDBs(context.Background(), dsts...); err != nil {
			r.logf("%v", err)
		}
	}()
	if err := e.startPgshard(); err != nil {
		return harness(err)
	}
	pre, err := r.prepareSource(ctx)
	if err != nil {
		return harness(err)
	}
	run.Bytes = pre.accountsBytes + pre.historyBytes
	if err := e.checkpoint(ctx); err != nil {
		return harness(err)
	}
	r.waitQuiet(ctx, &run)
	mark := e.cpuMark()
	l, err := startLoad(ctx, e.proxyDSN(), r.o.loadClients, r.o.loadRate, r.data.Rows)
	if err != nil {
		return harness(fmt.Errorf("starting the write load through pgshard: %w", err))
	}
	time.Sleep(time.Second) // writes are going on when the reshard starts

	name := fmt.Sprintf("reshard-%d-%dstreams", rep, streams)
	stateDir := filepath.Join(e.Dir, name+".state")
	run.LogPath = filepath.Join(e.Dir, name+".log")
	args := []string{"reshard", "--config", e.configPath(), "--database", appDB, "--to", e.toPath(),
		"--workers", strconv.Itoa(streams), "--state-dir", stateDir}
	if r.o.chunkMB > 0 {
		args = append(args, "--chunk-mb", strconv.Itoa(r.o.chunkMB))
	}
	var env []string
	if r.o.profileDir != "" {
		env = append(env, "PGSHARD_CPUPROFILE="+filepath.Join(r.o.profileDir, name+".cpu.pprof"))
	}
	t0 := time.Now()
	var watch *phaseWatch
	stopWatch := make(chan struct{})
	out, toolCPU, cmdErr := e.runTool(ctx, run.LogPath, reshardPid, env, func(pid int) {
		watch = e.watchPhases(ctx, stateDir, pid, stopWatch)
	}, e.PgshardBin, args...)
	run.TotalSeconds = time.Since(t0).Seconds()
	close(stopWatch)
	if watch != nil {
		run.CopyCPU, run.CutoverCPU = watch.copyCPU(), watch.cutoverCPU(toolCPU)
	}
	if cmdErr == nil {
		time.Sleep(time.Second) // the load goes on against the new shards
	}
	st := l.finish()
	run.Load, run.CPU = &st, cpuBetween(mark, e.cpuMark(), toolCPU)
	run.CopyLine, run.PauseLine = findLine(out, "reshard app: copied "), findLine(out, "write pause")
	if s, err := status.Read(stateDir); err == nil {
		run.Rows, run.Seconds, run.PauseMS, run.Phase = s.CopyRows, s.CopySeconds, s.PauseMS, s.Phase
	} else if cmdErr == nil {
		run.Error = "harness: reading the run's status.json: " + err.Error()
	}
	if cmdErr != nil {
		run.Error = fmt.Sprintf("pgshard reshard: %v: %s", cmdErr, lastError(out))
		r.abort(ctx, args, name)
		return run
	}
	run.Wrong, run.Checked = r.checkDestinations(ctx, pre, st)
	return run
}

// abort removes what a failed reshard left behind (`pgshard reshard --abort`), and then any replication slot
// and publication still on the source, so that no slot holds WAL back for the next runs.
func (r *runner) abort(ctx context.Context, args []string, name string) {
	e := r.env
	if _, _, err := e.runTool(ctx, filepath.Join(e.Dir, name+".abort.log"), reshardPid, nil, nil, e.PgshardBin, append(args, "--abort")...); err != nil {
		r.logf("pgshard reshard --abort: %v (see %s.abort.log)", err, name)
	}
	err := e.superExec(ctx, srcDB, `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE NOT active;
DO $$ DECLARE p name; BEGIN FOR p IN SELECT pubname FROM pg_publication LOOP EXECUTE format('DROP PUBLICATION %I', p); END LOOP; END $$`)
	if err != nil {
		r.logf("dropping leftover slots and publications: %v", err)
	}
}

// checkDestinations verifies the new shards after a reshard that switched: every account there, each on the
// shard Postgres's hash partitioning (MODULUS 2) puts it, the balances summing to the source's sum plus what the
// load committed, and history holding exactly the load's committed rows (each on its shard). It returns what is
// wrong ("" when nothing) and what was checked.
func (r *runner) checkDestinations(ctx context.Context, pre sourceState, st LoadStats) (wrong, checked string) {
	var accounts, balance, history, misplaced int64
	for i := range destShards {
		c, err := pgx.Connect(ctx, r.env.PG.SuperDSN(dstDB(i)))
		if err != nil {
			return "harness: " + err.Error(), ""
		}
		var n, sum, bad, h, hbad int64
		_, err = c.Exec(ctx, "CREATE TEMP TABLE shard_of (aid bigint) PARTITION BY HASH (aid)")
		if err == nil {
			q := fmt.Sprintf(`SELECT (SELECT count(*) FROM accounts), (SELECT coalesce(sum(abalance), 0)::bigint FROM accounts),
  (SELECT count(*) FROM accounts WHERE NOT satisfies_hash_partition('pg_temp.shard_of'::regclass, %[1]d, %[2]d, aid)),
  (SELECT count(*) FROM history),
  (SELECT count(*) FROM history WHERE NOT satisfies_hash_partition('pg_temp.shard_of'::regclass, %[1]d, %[2]d, aid))`, destShards, i)
			err = c.QueryRow(ctx, q).Scan(&n, &sum, &bad, &h, &hbad)
		}
		c.Close(context.Background())
		if err != nil {
			return fmt.Sprintf("harness: checking %s: %v", dstDB(i), err), ""
		}
		accounts += n
		balance += sum
		history += h
		misplaced += bad + hbad
	}
	var probs []string
	if accounts != r.data.Rows {
		probs = append(probs, fmt.Sprintf("%d accounts on the new shards, want %d", accounts, r.data.Rows))
	}
	if misplaced > 0 {
		probs = append(probs, fmt.Sprintf("%d rows on the wrong new shard", misplaced))
	}
	checked = fmt.Sprintf("%d accounts and %d history rows on %d shards, each on its hash partition's shard", accounts, history, destShards)
	if st.Failures == 0 {
		if want := pre.balance + st.DeltaSum; balance != want {
			probs = append(probs, fmt.Sprintf("sum(abalance) %d on the new shards, want %d (the source's %d plus the load's %d)", balance, want, pre.balance, st.DeltaSum))
		}
		if history != st.Commits {
			probs = append(probs, fmt.Sprintf("%d history rows on the new shards, the load committed %d", history, st.Commits))
		}
		checked += "; balances and history equal what the load committed"
	} else {
		checked += fmt.Sprintf("; balances not compared: %d of the load's transactions failed", st.Failures)
	}
	return strings.Join(probs, "; "), checked
}

// dumpRun is the baseline: `pg_dump --data-only -t accounts src | psql dump_dst`, into accounts created empty
// by the source's pre-data schema (no primary key: what the reshard copies into), with the same write load
// running through pgshard on the source.
func (r *runner) dumpRun(ctx context.Context, rep int) (run Run) {
	run = Run{Method: methodDump, Streams: 1, Rep: rep}
	ctx, cancel := context.WithTimeout(ctx, 40*time.Minute)
	defer cancel()
	e := r.env
	harness := func(err error) Run { run.Error = "harness: " + err.Error(); return run }
	if err := e.recreateDBs(ctx, dumpDB); err != nil {
		return harness(err)
	}
	defer func() {
		e.stopPgshard()
		if err := e.dropDBs(context.Background(), dumpDB); err != nil {
			r.logf("%v", err)
		}
	}()
	// Untimed: the table as the reshard's schema phase makes it.
	if _, _, err := e.pipeline(ctx, filepath.Join(e.Dir, fmt.Sprintf("dump-%d-schema.log", rep)),
		[]string{"--schema-only", "--section=pre-data", "--table=public.accounts"}); err != nil {
		return harness(fmt.Errorf("copying the schema of accounts: %w", err))
	}
	if err := e.startPgshard(); err != nil {
		return harness(err)
	}
	pre, err := r.prepareSource(ctx)
	if err != nil {
		return harness(err)
	}
	run.Bytes = pre.accountsBytes
	if err := e.checkpoint(ctx); err != nil {
		return harness(err)
	}
	r.waitQuiet(ctx, &run)
	mark := e.cpuMark()
	l, err := startLoad(ctx, e.proxyDSN(), r.o.loadClients, r.o.loadRate, r.data.Rows)
	if err != nil {
		return harness(fmt.Errorf("starting the write load through pgshard: %w", err))
	}
	time.Sleep(time.Second)
	run.LogPath = filepath.Join(e.Dir, fmt.Sprintf("dump-%d.log", rep))
	copyMark := e.cpuMark()
	took, toolCPU, err := e.pipeline(ctx, run.LogPath, []string{"--data-only", "--table=public.accounts"})
	run.CopyCPU = cpuBetween(copyMark, e.cpuMark(), toolCPU)
	st := l.finish()
	run.Load, run.CPU = &st, cpuBetween(mark, e.cpuMark(), toolCPU)
	run.Seconds, run.TotalSeconds = took.Seconds(), took.Seconds()
	if err != nil {
		run.Error = err.Error()
		return run
	}
	c, err := pgx.Connect(ctx, e.dsn(dumpDB))
	if err != nil {
		return harness(err)
	}
	defer c.Close(context.Background())
	if err := c.QueryRow(ctx, "SELECT count(*) FROM accounts").Scan(&run.Rows); err != nil {
		return harness(err)
	}
	if run.Rows != r.data.Rows {
		run.Wrong = fmt.Sprintf("%s accounts holds %d rows, want %d", dumpDB, run.Rows, r.data.Rows)
	}
	run.Checked = fmt.Sprintf("%d rows in %s.accounts", run.Rows, dumpDB)
	return run
}

// pipeline runs `pg_dump dumpArgs src | psql -X -q -v ON_ERROR_STOP=1 dump_dst` (the cluster's own programs,
// the password in PGPASSWORD) and returns how long it took from starting pg_dump until both ended, and the CPU
// time both used. Their stderr goes to logPath.
func (e *Env) pipeline(ctx context.Context, logPath string, dumpArgs []string) (time.Duration, time.Duration, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return 0, 0, err
	}
	defer logf.Close()
	noPass := func(db string) string { return e.PG.DSN(db, appUser, "") }
	dump := exec.CommandContext(ctx, filepath.Join(e.PgBin, "pg_dump"), append(dumpArgs, "--dbname="+noPass(srcDB))...)
	restore := exec.CommandContext(ctx, filepath.Join(e.PgBin, "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "--dbname="+noPass(dumpDB))
	pr, pw, err := os.Pipe()
	if err != nil {
		return 0, 0, err
	}
	var dumpErr, restoreErr bytes.Buffer
	for _, c := range []*exec.Cmd{dump, restore} {
		c.Env = append(toolEnv(), "PGPASSWORD="+appPassword)
		c.Dir = e.Dir
	}
	dump.Stdout, dump.Stderr = pw, &dumpErr
	restore.Stdin, restore.Stdout, restore.Stderr = pr, logf, &restoreErr
	start := time.Now()
	if err := restore.Start(); err != nil {
		pr.Close()
		pw.Close()
		return 0, 0, err
	}
	if err := dump.Start(); err != nil {
		pr.Close()
		pw.Close()
		restore.Wait()
		return 0, 0, err
	}
	pr.Close() // the children hold their ends
	pw.Close()
	derr := dump.Wait()
	rerr := restore.Wait()
	took := time.Since(start)
	cpu := processCPU(dump.ProcessState) + processCPU(restore.ProcessState)
	fmt.Fprintf(logf, "pg_dump: %v\n%s\npsql: %v\n%s\n", derr, dumpErr.String(), rerr, restoreErr.String())
	switch {
	case derr != nil:
		return took, cpu, fmt.Errorf("pg_dump: %v: %s", derr, strings.TrimSpace(dumpErr.String()))
	case rerr != nil:
		return took, cpu, fmt.Errorf("psql: %v: %s", rerr, strings.TrimSpace(restoreErr.String()))
	}
	return took, cpu, nil
}

// processCPU is the user and system time of an ended process (and of the children it waited for).
func processCPU(ps *os.ProcessState) time.Duration {
	if ps == nil {
		return 0
	}
	return ps.UserTime() + ps.SystemTime()
}

// runTool runs a program (pgshard reshard) with its output going to logPath, and returns that output and the CPU
// time it used; started, when not nil, is called with its pid once it runs. Its pid
// goes to pidFile in the run's directory, for sweepStale; on ctx's end it gets SIGINT (the reshard stops cleanly)
// and SIGKILL 15 s later.
func (e *Env) runTool(ctx context.Context, logPath, pidFile string, extraEnv []string, started func(pid int), bin string, args ...string) (string, time.Duration, error) {
	var out bytes.Buffer
	logf, err := os.Create(logPath)
	if err != nil {
		return "", 0, err
	}
	defer logf.Close()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(toolEnv(), extraEnv...)
	cmd.Dir = e.Dir
	w := io.MultiWriter(logf, &out)
	cmd.Stdout, cmd.Stderr = w, w
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 15 * time.Second
	if err := cmd.Start(); err != nil {
		return "", 0, err
	}
	pidPath := filepath.Join(e.Dir, pidFile)
	_ = os.WriteFile(pidPath, []byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0o644)
	if started != nil {
		started(cmd.Process.Pid)
	}
	err = cmd.Wait()
	_ = os.Remove(pidPath)
	return out.String(), processCPU(cmd.ProcessState), err
}

// toolEnv is the bench's environment without libpq's PG* variables (a PGPASSWORD or PGHOST of the caller's
// shell would redirect the tools).
func toolEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "PG") && !strings.HasPrefix(kv, "PGSHARD_") {
			continue
		}
		if strings.HasPrefix(kv, "PGSHARD_FAILPOINT=") || strings.HasPrefix(kv, "PGSHARD_CPUPROFILE=") {
			continue
		}
		out = append(out, kv)
	}
	return out
}

// findLine is the first line of out that contains s, without its time stamp ("" when none).
func findLine(out, s string) string {
	for line := range strings.Lines(out) {
		if strings.Contains(line, s) {
			line = strings.TrimSpace(line)
			if len(line) > 9 && line[2] == ':' && line[5] == ':' && line[8] == ' ' {
				line = line[9:]
			}
			return line
		}
	}
	return ""
}

// lastError is the command's error message: its lines from the last "pgshard reshard:" on, else its last lines.
func lastError(out string) string {
	if i := strings.LastIndex(out, "pgshard reshard:"); i >= 0 {
		return strings.TrimSpace(out[i:])
	}
	return benchkit.TailLines(strings.TrimSpace(out), 5)
}
