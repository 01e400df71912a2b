package reshard

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"golang.org/x/sys/unix"

	"github.com/pgshard/pgshard/config"
	"github.com/pgshard/pgshard/reshard/status"
)

// Run carries out a reshard (or, with Abort, removes what a failed one left behind). It can be killed at
// any point and run again with the same options: it continues where the durable state says.
func Run(ctx context.Context, o Options) error {
	p, err := newPlan(o)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(p.opt.StateDir, 0o755); err != nil {
		return err
	}
	unlock, err := lockDir(p.opt.StateDir)
	if err != nil {
		return err
	}
	defer unlock()
	prog := newProgress(p)
	if o.Abort {
		err := p.abort(ctx, prog)
		if err == nil {
			prog.phase(status.PhaseAborted)
		}
		return err
	}
	if p.switched {
		return p.finishSwitch(ctx, prog)
	}
	pctx, stop := context.WithCancel(ctx)
	defer stop()
	go prog.run(pctx)
	rctx, stopRun := context.WithCancelCause(ctx)
	defer stopRun(nil)
	go p.watchSlots(rctx, prog, stopRun)
	if err := p.run(rctx, prog); err != nil {
		if cause := context.Cause(rctx); cause != nil && ctx.Err() == nil {
			err = cause // the slot watch stopped the run: its reason, not "context canceled"
		}
		prog.fail(err, status.PhaseFailed)
		return err
	}
	return nil
}

// lockDir keeps a second reshard of the same database from running at the same time.
func lockDir(dir string) (func(), error) {
	f, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("another reshard is running with state directory %s", dir)
	}
	return func() { f.Close() }, nil
}

// hashOnly reports whether every sharded table uses the hash mapping.
func (p *plan) hashOnly() bool {
	for _, db := range []*config.Database{p.db, p.newDB} {
		for _, t := range db.ShardedTables {
			if t.Mapping != config.MappingHash {
				return false
			}
		}
	}
	return true
}

func (p *plan) run(ctx context.Context, prog *progress) error {
	c, err := connect(ctx, p.sources[0])
	if err != nil {
		return err
	}
	tables, err := loadTables(ctx, c, p.newDB)
	c.Close(ctx)
	if err != nil {
		return fmt.Errorf("reading the tables of source shard 0: %w", err)
	}
	states, err := p.destStates(ctx)
	if err != nil {
		return err
	}
	fresh := true
	for _, st := range states {
		fresh = fresh && !st.exists
	}
	if err := p.check(ctx, tables, fresh); err != nil {
		return err
	}
	if !fresh {
		prog.logf("continuing the run whose state is on the destination shards")
	}

	prog.phase(status.PhaseSchema)
	for i, e := range p.dests {
		if !states[i].done[doneSchema] {
			if err := p.applySection(ctx, "pre-data", e, stateDDL, markDone(doneSchema)); err != nil {
				return err
			}
		}
	}

	if !allDone(states, doneCopy) {
		prog.phase(status.PhaseCopy)
		if err := p.copyPhase(ctx, tables, prog); err != nil {
			return err
		}
	}

	prog.phase(status.PhaseIndexes)
	for i, e := range p.dests {
		if !states[i].done[doneIndexes] {
			if err := p.applySection(ctx, "post-data", e, "", markDone(doneIndexes)+"ANALYZE;\n"); err != nil {
				return err
			}
		}
	}

	prog.phase(status.PhaseStreaming)
	return p.streamAndCutover(ctx, tables, prog)
}

func (p *plan) destStates(ctx context.Context) ([]destState, error) {
	var states []destState
	for _, e := range p.dests {
		c, err := connect(ctx, e)
		if err != nil {
			return nil, err
		}
		st, err := readDestState(ctx, c)
		c.Close(ctx)
		if err != nil {
			return nil, fmt.Errorf("destination shard %d: reading the run's state: %w", e.idx, err)
		}
		states = append(states, st)
	}
	return states, nil
}

func allDone(states []destState, key string) bool {
	for _, st := range states {
		if !st.done[key] {
			return false
		}
	}
	return true
}

// copyPhase copies every table from fresh slots' snapshots into emptied destination tables, then records on
// every destination, in one transaction each, that the copy is done and where streaming starts.
func (p *plan) copyPhase(ctx context.Context, tables []*table, prog *progress) error {
	var names []string
	for _, t := range tables {
		names = append(names, t.ident())
	}
	for _, e := range p.dests {
		sql := "DELETE FROM pgshard_reshard.state WHERE key = '" + doneCopy + "'; DELETE FROM pgshard_reshard.progress"
		if len(names) > 0 {
			sql = "TRUNCATE " + strings.Join(names, ", ") + "; " + sql
		}
		if err := execOn(ctx, e, sql); err != nil {
			return fmt.Errorf("destination shard %d: emptying the tables for the copy: %w", e.idx, err)
		}
	}
	slots, err := p.createSlots(ctx, tables)
	defer func() {
		for _, s := range slots {
			if s.conn != nil {
				s.conn.Close(context.Background())
			}
		}
	}()
	if err != nil {
		return err
	}
	items, err := p.copyItems(ctx, tables, prog)
	if err != nil {
		return err
	}
	start := time.Now()
	if err := p.copyData(ctx, items, slots); err != nil {
		return err
	}
	var rows int64
	for _, tp := range prog.tables {
		rows += tp.rows.Load()
	}
	el := time.Since(start)
	prog.copied(rows, el)
	prog.logf("copied %d rows of %d tables in %s (%.0f rows/s, %d streams over %d ranges)", rows, len(tables), el.Round(time.Millisecond), float64(rows)/el.Seconds(), min(p.opt.Workers, len(items)), len(items))
	for _, e := range p.dests {
		var b strings.Builder
		b.WriteString("BEGIN; DELETE FROM pgshard_reshard.progress;")
		for _, s := range slots {
			fmt.Fprintf(&b, "INSERT INTO pgshard_reshard.progress VALUES (%d, '%s');", s.source, s.lsn)
		}
		b.WriteString(markDone(doneCopy) + "COMMIT;")
		if err := execOn(ctx, e, b.String()); err != nil {
			return fmt.Errorf("destination shard %d: recording the copy: %w", e.idx, err)
		}
	}
	return nil
}

// streamAndCutover applies the slots' changes until the lag is small, then cuts over.
func (p *plan) streamAndCutover(ctx context.Context, tables []*table, prog *progress) error {
	states, err := p.destStates(ctx)
	if err != nil {
		return err
	}
	sctx, cancel := context.WithCancelCause(ctx)
	var wg sync.WaitGroup
	defer func() { cancel(errStopped); wg.Wait() }()
	var streamers []*streamer
	for _, e := range p.sources {
		published := false
		for _, t := range tables {
			published = published || publishes(e.idx, t)
		}
		if !published {
			continue
		}
		var appliers []*applier
		for i, d := range p.dests {
			lsn, ok := states[i].progress[e.idx]
			if !ok {
				return fmt.Errorf("destination shard %d has no progress for source shard %d: abort (pgshard reshard --abort) and start again", d.idx, e.idx)
			}
			a, err := newApplier(ctx, e.idx, d, lsn, &prog.applied)
			if err != nil {
				return err
			}
			appliers = append(appliers, a)
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := a.run(sctx); err != nil && sctx.Err() == nil {
					cancel(err)
				}
			}()
		}
		s := newStreamer(p, e, p.slotName(e.idx), tables, appliers, prog)
		streamers = append(streamers, s)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.run(sctx); err != nil && sctx.Err() == nil {
				cancel(err)
			}
		}()
	}
	lagConns := map[int]*pgx.Conn{}
	defer func() {
		for _, c := range lagConns {
			c.Close(context.Background())
		}
	}()
	for _, s := range streamers {
		c, err := connect(ctx, s.src)
		if err != nil {
			return err
		}
		lagConns[s.src.idx] = c
	}
	started := time.Now()
	stopProfile := startStreamProfile(prog)
	defer stopProfile()
	var peakBytes int64
	var peakSeconds float64
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-sctx.Done():
			return context.Cause(sctx)
		case <-tick.C:
		}
		// Lag is measured against the flushed WAL (logical decoding reads no further); the cutover waits
		// for the slowest source, as the sources drain in parallel.
		var lb, worst int64
		var ls float64
		for _, s := range streamers {
			var cur string
			if err := lagConns[s.src.idx].QueryRow(sctx, "SELECT pg_current_wal_flush_lsn()::text").Scan(&cur); err != nil {
				if sctx.Err() != nil {
					return context.Cause(sctx)
				}
				return fmt.Errorf("source shard %d: %w", s.src.idx, err)
			}
			lsn, _ := pglogrepl.ParseLSN(cur)
			b, sec := s.lag(lsn)
			lb += b
			worst = max(worst, b)
			ls = max(ls, sec)
		}
		prog.lag.Store(&lagFigures{bytes: lb, seconds: ls})
		peakBytes, peakSeconds = max(peakBytes, lb), max(peakSeconds, ls)
		if time.Since(started) >= p.opt.MinStreaming && worst <= p.opt.MaxLag {
			break
		}
	}
	stopProfile()
	el := time.Since(started)
	applied := prog.applied.Load()
	prog.logf("streamed %s until the lag was under %d bytes: peak lag %d bytes, %.1f s; %d changes applied (%.0f changes/s)",
		el.Round(time.Millisecond), p.opt.MaxLag, peakBytes, peakSeconds, applied, float64(applied)/el.Seconds())
	prog.phase(status.PhaseCutover)
	if err := p.cutover(sctx, streamers, tables, prog, lagConns); err != nil {
		if c := context.Cause(sctx); c != nil && !errors.Is(c, errStopped) {
			return c
		}
		return err
	}
	cancel(errStopped)
	wg.Wait()
	if err := p.cleanup(ctx, prog); err != nil {
		return fmt.Errorf("the switch is done, but cleaning up failed (rerun with --abort to finish it): %w", err)
	}
	prog.phase(status.PhaseDone)
	return nil
}
