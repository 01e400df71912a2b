package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/pgshard/pgshard/bench/internal/benchkit"
)

// pgbenchRun is one pgbench invocation.
type pgbenchRun struct {
	Bin      string
	Port     int
	DB       string
	User     string
	Password string
	Select   bool   // -S (select-only) instead of the default TPC-B-like script
	Mode     string // -M: simple | extended | prepared
	Connect  bool   // -C: a new connection per transaction
	Clients  int
	Jobs     int
	Duration time.Duration
	LogDir   string // pgbench --log files go here (removed after parsing unless keep)
	Keep     bool
	TLS      bool // sslmode=require
}

// jobsFor is pgbench's -j: 2 threads (one per core of the reference machine), never more than the clients.
func jobsFor(clients, maxJobs int) int { return max(1, min(clients, maxJobs)) }

func (r pgbenchRun) args() []string {
	a := []string{"-n", "-M", r.Mode, "-c", strconv.Itoa(r.Clients), "-j", strconv.Itoa(r.Jobs),
		"-T", strconv.Itoa(int(math.Ceil(r.Duration.Seconds()))),
		"--log", "--log-prefix", filepath.Join(r.LogDir, "pgbench_log"),
		"-h", "127.0.0.1", "-p", strconv.Itoa(r.Port), "-U", r.User}
	if r.Select {
		a = append(a, "-S")
	}
	if r.Connect {
		a = append(a, "-C")
	}
	return append(a, r.DB)
}

// Result is what one run measured. Latencies are in milliseconds; CPU and RSS are the proxy's (zero for direct).
type Result struct {
	Target       string    `json:"target"`
	Rep          int       `json:"rep"` // 0 for the warm-up
	Started      time.Time `json:"started"`
	WallSeconds  float64   `json:"wall_seconds"`
	Command      string    `json:"command"`
	ExitCode     int       `json:"exit_code"`
	Failed       bool      `json:"failed"`
	Error        string    `json:"error,omitempty"`
	TPS          float64   `json:"tps"`
	Transactions int64     `json:"transactions"`
	FailedTx     int64     `json:"failed_transactions"`
	LoggedTx     int64     `json:"logged_transactions"`
	LatencyAvgMs float64   `json:"latency_avg_ms"`
	LatencyP50Ms float64   `json:"latency_p50_ms"`
	LatencyP99Ms float64   `json:"latency_p99_ms"`
	ConnTimeMs   float64   `json:"initial_connection_ms"`
	// PgbenchCPUSeconds is pgbench's own user+system time; LoadAvg1 the machine's 1-minute load just before the run
	// (other processes on the machine make figures noisy).
	PgbenchCPUSeconds float64 `json:"pgbench_cpu_seconds"`
	LoadAvg1          float64 `json:"load_avg_1m_before"`
	// PostgresCPUSeconds is all of Postgres's CPU time during the run (postmaster, backends, reaped backends).
	// MachineBusySeconds is what all cores spent running processes (or had stolen) meanwhile, MachineSeconds what
	// they had (wall × cores); OtherCPUSeconds = busy − pgbench − Postgres − proxy: work that had nothing to do
	// with the run.
	PostgresCPUSeconds float64 `json:"postgres_cpu_seconds"`
	MachineBusySeconds float64 `json:"machine_busy_cpu_seconds"`
	MachineSeconds     float64 `json:"machine_cpu_seconds"`
	OtherCPUSeconds    float64 `json:"other_cpu_seconds"`
	// ProxyCPUSeconds is the proxy's utime+stime during the run (connection set-up included); CPUPer1kTx divides
	// it by Transactions/1000.
	ProxyCPUSeconds float64 `json:"proxy_cpu_seconds,omitempty"`
	CPUPer1kTx      float64 `json:"proxy_cpu_seconds_per_1000_tx,omitempty"`
	// PeakRSSKB is the proxy's VmHWM at the end of the run; RSSLifetimePeak says it could not be reset before the
	// run, so it is the process's lifetime peak.
	PeakRSSKB int64 `json:"proxy_peak_rss_kb,omitempty"`
	// ShardXacts are the transactions each shard database committed or rolled back during a sharded scenario's
	// pgshard run (pg_stat_database deltas; a backend may flush its last second of counts only later).
	ShardXacts      []int64 `json:"shard_xacts,omitempty"`
	RSSLifetimePeak bool    `json:"proxy_rss_lifetime_peak,omitempty"`
	Stdout          string  `json:"-"`
	Stderr          string  `json:"stderr_tail,omitempty"`
}

// execute runs pgbench and fills the pgbench part of a Result. It never returns an error for a failing pgbench:
// that is a result (Failed, ExitCode, Error); only a harness problem (cannot create the log directory) is.
func (r pgbenchRun) execute(ctx context.Context) (Result, error) {
	var res Result
	if err := os.MkdirAll(r.LogDir, 0o755); err != nil {
		return res, err
	}
	if !r.Keep {
		defer os.RemoveAll(r.LogDir)
	}
	parent := ctx
	// Generous: 1000 clients connecting through SCRAM take a while before the -T clock starts.
	ctx, cancel := context.WithTimeout(ctx, r.Duration+2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, r.Bin, r.args()...)
	sslmode := "disable"
	if r.TLS {
		sslmode = "require"
	}
	cmd.Env = append(cleanEnv(), "PGPASSWORD="+r.Password, "PGSSLMODE="+sslmode, "PGCONNECT_TIMEOUT=30")
	cmd.Dir = r.LogDir
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	res.Command = "pgbench " + strings.Join(r.args(), " ")
	res.LoadAvg1 = benchkit.LoadAvg1()
	res.Started = time.Now()
	err := cmd.Run()
	res.WallSeconds = time.Since(res.Started).Seconds()
	if cmd.ProcessState != nil {
		res.PgbenchCPUSeconds = (cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()).Seconds()
	}
	res.Stdout, res.Stderr = stdout.String(), benchkit.TailLines(stderr.String(), 20)
	_ = os.WriteFile(filepath.Join(r.LogDir, "stdout.txt"), stdout.Bytes(), 0o644)
	_ = os.WriteFile(filepath.Join(r.LogDir, "stderr.txt"), stderr.Bytes(), 0o644)
	if err != nil {
		var ee *exec.ExitError
		switch {
		case parent.Err() != nil:
			res.ExitCode, res.Failed = -1, true
			res.Error = "interrupted"
		case ctx.Err() == context.DeadlineExceeded:
			res.ExitCode, res.Failed = -1, true
			res.Error = fmt.Sprintf("pgbench did not finish within %v: killed", r.Duration+2*time.Minute)
		case errors.As(err, &ee):
			res.ExitCode, res.Failed = ee.ExitCode(), true
		default:
			res.ExitCode, res.Failed = -1, true
			res.Error = err.Error()
		}
	}
	parseSummary(res.Stdout, &res)
	if res.Failed && res.Error == "" {
		res.Error = firstError(stderr.String())
		if res.Error == "" {
			res.Error = fmt.Sprintf("pgbench exited with status %d", res.ExitCode)
		}
	}
	lat, err := readLatencies(r.LogDir)
	if err != nil {
		return res, err
	}
	res.LoggedTx = int64(len(lat))
	res.LatencyAvgMs, res.LatencyP50Ms, res.LatencyP99Ms = latencyStats(lat)
	if res.Transactions == 0 && !res.Failed {
		res.Failed = true
		res.Error = "no transaction completed"
	}
	return res, nil
}

var (
	reTPS       = regexp.MustCompile(`(?m)^tps = ([0-9.]+)`)
	reProcessed = regexp.MustCompile(`(?m)^number of transactions actually processed: (\d+)`)
	reFailedTx  = regexp.MustCompile(`(?m)^number of failed transactions: (\d+)`)
	reConnTime  = regexp.MustCompile(`(?m)^initial connection time = ([0-9.]+) ms`)
)

// parseSummary reads pgbench's closing report (PostgreSQL 15 wording; older ones match too).
func parseSummary(out string, res *Result) {
	if m := reTPS.FindStringSubmatch(out); m != nil {
		res.TPS, _ = strconv.ParseFloat(m[1], 64)
	}
	if m := reProcessed.FindStringSubmatch(out); m != nil {
		res.Transactions, _ = strconv.ParseInt(m[1], 10, 64)
	}
	if m := reFailedTx.FindStringSubmatch(out); m != nil {
		res.FailedTx, _ = strconv.ParseInt(m[1], 10, 64)
	}
	if m := reConnTime.FindStringSubmatch(out); m != nil {
		res.ConnTimeMs, _ = strconv.ParseFloat(m[1], 64)
	}
}

var reClient = regexp.MustCompile(`\bclient \d+\b`)

// firstError picks pgbench's first error line, with the client number taken out so that runs compare.
func firstError(stderr string) string {
	for line := range strings.Lines(stderr) {
		line = strings.TrimSpace(line)
		if strings.Contains(line, "error:") || strings.Contains(line, "ERROR:") || strings.Contains(line, "FATAL:") {
			line = strings.TrimPrefix(line, "pgbench: ")
			line = strings.TrimPrefix(line, "error: ")
			line = reClient.ReplaceAllString(line, "client N")
			return strings.Join(strings.Fields(line), " ")
		}
	}
	return ""
}

// readLatencies reads every per-transaction log file pgbench wrote (one per thread) and returns the latencies in
// microseconds. A line is "client_id transaction_no time script_no time_epoch time_us [schedule_lag [retries]]",
// where time is the latency in µs, or "failed" / "skipped".
func readLatencies(dir string) ([]int64, error) {
	files, err := filepath.Glob(filepath.Join(dir, "pgbench_log.*"))
	if err != nil {
		return nil, err
	}
	var lat []int64
	for _, name := range files {
		f, err := os.Open(name)
		if err != nil {
			return nil, err
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if v, ok := logLatency(sc.Bytes()); ok {
				lat = append(lat, v)
			}
		}
		err = sc.Err()
		f.Close()
		if err != nil {
			return nil, err
		}
	}
	return lat, nil
}

func logLatency(line []byte) (int64, bool) {
	f := bytes.Fields(line)
	if len(f) < 6 {
		return 0, false
	}
	v, err := strconv.ParseInt(string(f[2]), 10, 64)
	return v, err == nil
}

// latencyStats returns the mean, median and 99th percentile (nearest rank) of latencies given in µs, in ms.
func latencyStats(us []int64) (avg, p50, p99 float64) {
	if len(us) == 0 {
		return 0, 0, 0
	}
	slices.Sort(us)
	var sum float64
	for _, v := range us {
		sum += float64(v)
	}
	return sum / float64(len(us)) / 1000, float64(percentile(us, 0.50)) / 1000, float64(percentile(us, 0.99)) / 1000
}

// percentile is the nearest-rank percentile of sorted values.
func percentile(sorted []int64, p float64) int64 {
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// cleanEnv is the harness's environment without PG* variables, so that a developer's PGHOST or PGPORT cannot steer
// a run.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PG") {
			env = append(env, kv)
		}
	}
	return env
}
