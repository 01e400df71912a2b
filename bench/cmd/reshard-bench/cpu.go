package main

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/pgshard/pgshard/bench/internal/benchkit"
)

// CPU is where the machine's CPU time went during a run (from the start of the load to the end of the copy
// command): seconds of CPU, all cores together.
type CPU struct {
	WallSeconds     float64 `json:"wall_seconds"`
	MachineSeconds  float64 `json:"machine_seconds"` // wall × cores
	BusySeconds     float64 `json:"busy_seconds"`    // everything but idle and iowait
	PostgresSeconds float64 `json:"postgres_seconds"`
	ToolSeconds     float64 `json:"tool_seconds"`    // pgshard reshard, or pg_dump and psql
	PgshardSeconds  float64 `json:"pgshard_seconds"` // pgshard serve (the load goes through it)
	BenchSeconds    float64 `json:"bench_seconds"`   // this process: the load's clients
	OthersSeconds   float64 `json:"others_seconds"`  // busy time nobody of this run used: other processes on the machine
	OthersShare     float64 `json:"others_share"`    // OthersSeconds / MachineSeconds
}

// cpuMark is a reading of the counters at one moment.
type cpuMark struct {
	at                         time.Time
	busy, total, pg, self, srv time.Duration
	ok                         bool
}

// postmasterPid reads the postmaster's pid from postmaster.pid (0 when unknown).
func (e *Env) postmasterPid() int {
	b, err := os.ReadFile(filepath.Join(e.PG.DataDir, "postmaster.pid"))
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	pid, _ := strconv.Atoi(strings.TrimSpace(line))
	return pid
}

func (e *Env) cpuMark() cpuMark {
	m := cpuMark{at: time.Now()}
	var err error
	if m.busy, m.total, err = benchkit.MachineCPU(); err != nil {
		return m
	}
	pm := e.postmasterPid()
	if pm == 0 {
		return m
	}
	m.pg = benchkit.TreeCPU(pm)
	m.self, _ = benchkit.ProcCPU(os.Getpid())
	if e.pgshard.Alive() {
		m.srv, _ = benchkit.ProcCPU(e.pgshard.Pid())
	}
	m.ok = true
	return m
}

// cpuBetween is where the CPU went from a to b, tool being the CPU time of the copy command's processes.
func cpuBetween(a, b cpuMark, tool time.Duration) *CPU {
	if !a.ok || !b.ok {
		return nil
	}
	c := &CPU{
		WallSeconds:     b.at.Sub(a.at).Seconds(),
		MachineSeconds:  (b.total - a.total).Seconds(),
		BusySeconds:     (b.busy - a.busy).Seconds(),
		PostgresSeconds: (b.pg - a.pg).Seconds(),
		ToolSeconds:     tool.Seconds(),
		PgshardSeconds:  max(b.srv-a.srv, 0).Seconds(),
		BenchSeconds:    (b.self - a.self).Seconds(),
	}
	c.OthersSeconds = max(c.BusySeconds-c.PostgresSeconds-c.ToolSeconds-c.PgshardSeconds-c.BenchSeconds, 0)
	if c.MachineSeconds > 0 {
		c.OthersShare = c.OthersSeconds / c.MachineSeconds
	}
	return c
}

// waitQuiet waits, up to limit, until other processes use less than share of the machine's CPU over a 2-second
// window (this run's own Postgres, pgshard and the bench not counted), and returns how long it waited and the
// share of the last window.
func (e *Env) waitQuiet(ctx context.Context, share float64, limit time.Duration, logf func(string, ...any)) (time.Duration, float64) {
	start := time.Now()
	logged := false
	for {
		a := e.cpuMark()
		select {
		case <-ctx.Done():
			return time.Since(start), 0
		case <-time.After(2 * time.Second):
		}
		c := cpuBetween(a, e.cpuMark(), 0)
		if c == nil {
			return time.Since(start), 0
		}
		waited := time.Since(start)
		if c.OthersShare < share || waited >= limit {
			if logged || c.OthersShare >= share {
				logf("other processes use %.0f%% of the CPU; going on after %s", 100*c.OthersShare, waited.Round(time.Second))
			}
			return waited, c.OthersShare
		}
		if !logged {
			logf("other processes use %.0f%% of the CPU: waiting up to %s for them to calm down", 100*c.OthersShare, limit)
			logged = true
		}
	}
}
