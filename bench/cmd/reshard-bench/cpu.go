package main

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/pgshard/pgshard/bench/internal/benchkit"
	"github.com/pgshard/pgshard/reshard/status"
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
	at                               time.Time
	busy, total, pg, self, srv, tool time.Duration
	ok                               bool
	toolGone                         bool // the copy command had exited: tool is not its CPU time
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

// cpuMark reads the counters; toolPid, when not 0, is a running copy command whose CPU time goes into tool.
func (e *Env) cpuMark(toolPid ...int) cpuMark {
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
	for _, pid := range toolPid {
		// With its children, live and reaped (the reshard's pg_dump and psql), as the rusage at its exit counts them.
		if _, err := benchkit.ProcCPU(pid); err == nil {
			m.tool += benchkit.TreeCPU(pid)
		} else {
			m.toolGone = true
		}
	}
	m.ok = true
	return m
}

// cpuBetween is where the CPU went from a to b, tool being the CPU time of the copy command's processes (0: read
// from the marks).
func cpuBetween(a, b cpuMark, tool time.Duration) *CPU {
	if tool == 0 {
		tool = b.tool - a.tool
	}
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
		c.OthersShare = min(c.OthersSeconds/c.MachineSeconds, 1) // the counters tick every 10 ms: short windows are rough
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

// phaseWatch follows a reshard's status.json and reads the CPU counters when its copy phase starts and ends, and
// when its cutover starts and ends.
type phaseWatch struct {
	done                                 chan struct{}
	copyStart, copyEnd, cutStart, cutEnd cpuMark
}

// watchPhases polls dir's status.json every 50 ms until the run is over (or ctx ends); once stop is closed (the
// command ended) it reads the file a last time.
func (e *Env) watchPhases(ctx context.Context, dir string, pid int, stop <-chan struct{}) *phaseWatch {
	w := &phaseWatch{done: make(chan struct{})}
	// poll reads the phase and takes the marks; true when the run is over.
	poll := func() bool {
		s, err := status.Read(dir)
		if err != nil {
			return false
		}
		switch s.Phase {
		case status.PhaseCheck, status.PhaseSchema:
		case status.PhaseCopy:
			if !w.copyStart.ok {
				w.copyStart = e.cpuMark(pid)
			}
		case status.PhaseIndexes, status.PhaseStreaming:
			if w.copyStart.ok && !w.copyEnd.ok {
				w.copyEnd = e.cpuMark(pid)
			}
		case status.PhaseCutover:
			if !w.cutStart.ok {
				w.cutStart = e.cpuMark(pid)
			}
		default: // done, failed, aborted
			if w.cutStart.ok {
				w.cutEnd = e.cpuMark(pid)
			}
			return true
		}
		return false
	}
	go func() {
		defer close(w.done)
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-stop:
				poll()
				return
			case <-t.C:
				if poll() {
					return
				}
			}
		}
	}()
	return w
}

// copyCPU is where the CPU went during the copy phase (nil when it was not seen whole).
func (w *phaseWatch) copyCPU() *CPU {
	<-w.done
	return cpuBetween(w.copyStart, w.copyEnd, 0)
}

// cutoverCPU is where the CPU went during the cutover (nil when it was not seen whole); toolTotal is the copy
// command's CPU time at its exit, used when the cutover's end was read after the exit.
func (w *phaseWatch) cutoverCPU(toolTotal time.Duration) *CPU {
	<-w.done
	end := w.cutEnd
	if end.toolGone {
		end.tool = toolTotal
	}
	return cpuBetween(w.cutStart, end, 0)
}
