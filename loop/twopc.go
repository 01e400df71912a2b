package loop

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/pgshard/pgshard/pool"
	"github.com/pgshard/pgshard/twopc"
)

// Two-phase commit outside the loops: the decision log, the prepared transactions left behind.
//
// At start, before it listens, pgshard opens two_phase_log and goes over every shard of every database
// with two_phase_commit, as every role it uses there: what an earlier run of this pgshard left prepared is
// committed when the log holds its commit decision and rolled back otherwise (twopc.Resolve). A shard it
// cannot reach then is retried in the background. While pgshard runs, the sweeper does the same when a
// client went away in the middle of a two-phase commit, or a COMMIT PREPARED or ROLLBACK PREPARED failed;
// transactions in flight (live) are left to their drive.

// twoPhaseState is the engine's part of two-phase commit; nil fields when no database uses it.
type twoPhaseState struct {
	tpc       *twopc.Log
	failpoint string // PGSHARD_FAILPOINT

	targetsMu sync.Mutex
	targets   []resolveTarget // replaced whole by RELOAD; resolveAll works on the slice it finds
	sweepCh   chan struct{}
}

// resolveTarget is one (shard, role) where pgshard's prepared transactions may be.
type resolveTarget struct {
	db    string
	shard int
	t     pool.Target
	warn  bool // its last failure was logged
}

// startTwoPhase opens the log and finishes what earlier runs left prepared. An error stops pgshard.
func (e *Engine) startTwoPhase() error {
	if e.failpoint != "" {
		e.log.Warn("failpoint set: for tests only", "PGSHARD_FAILPOINT", e.failpoint)
	}
	if !e.anyTwoPhase(e.cat.Load()) {
		return nil
	}
	l, err := twopc.Open(e.cfg.TwoPhaseLog)
	if err != nil {
		return fmt.Errorf("two_phase_log: %w", err)
	}
	if l.Damaged() > 0 {
		e.log.Warn("two-phase commit log: skipped damaged lines (a crash while appending leaves one)", "path", l.Path(), "lines", l.Damaged())
	}
	e.log.Info("two-phase commit log", "path", l.Path(), "instance", l.Instance(), "boot", l.Boot(), "decisions_to_finish", len(l.Undone()))
	e.tpc = l
	e.sweepCh = make(chan struct{}, 1)
	e.targets = e.twoPhaseTargets(e.cat.Load())
	if found, failed := e.resolveAll(true); failed {
		e.sweepSoon()
	} else if found {
		e.log.Info("two-phase commit: finished the transactions an earlier run left prepared")
	}
	go e.sweeper()
	return nil
}

func (e *Engine) anyTwoPhase(cat *catalog) bool {
	for _, d := range cat.dbs {
		if d.db.TwoPhaseCommit {
			return true
		}
	}
	return false
}

// twoPhaseTargets lists every (shard, role) of cat's two-phase databases, once each.
func (e *Engine) twoPhaseTargets(cat *catalog) []resolveTarget {
	var names []string
	for name, d := range cat.dbs {
		if d.db.TwoPhaseCommit {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	var users []string
	for name := range cat.users {
		users = append(users, name)
	}
	sort.Strings(users)
	var out []resolveTarget
	seen := map[string]bool{}
	for _, name := range names {
		d := cat.dbs[name]
		for i := range d.db.Shards {
			for _, un := range users {
				t := e.target(d, cat.users[un], i)
				t.Params = append(t.Params[:0:0], t.Params...)
				for j := range t.Params {
					if t.Params[j].Name == "application_name" {
						t.Params[j].Value = "pgshard-2pc"
					}
				}
				key := t.Network + "|" + t.Address + "|" + t.Database + "|" + t.User
				if seen[key] {
					continue
				}
				seen[key] = true
				out = append(out, resolveTarget{db: name, shard: i, t: t})
			}
		}
	}
	return out
}

// setTwoPhaseTargets replaces the targets after a RELOAD and has them gone over soon. A shard no longer in
// the config is no longer gone over: what an abandoned two-phase commit left prepared there stays until it is
// resolved by hand (or the shard comes back into the config).
func (e *Engine) setTwoPhaseTargets(next []resolveTarget) {
	e.targetsMu.Lock()
	e.targets = next
	e.targetsMu.Unlock()
	e.sweepSoon()
}

// resolveAll runs twopc.Resolve on every target, in parallel. found: it finished some prepared transaction;
// failed: some target could not be gone over. After a pass without failure every decision that no
// transaction in flight owns is done (committed everywhere by now).
func (e *Engine) resolveAll(atStart bool) (found, failed bool) {
	timeout := 2*e.cfg.Limits.ServerConnectTimeout + 30*time.Second
	e.targetsMu.Lock()
	targets := e.targets
	e.targetsMu.Unlock()
	reps := make([]twopc.Report, len(targets))
	errs := make([]error, len(targets))
	inFlight := e.tpc.InFlight() // before any listing: see twopc.Log.InFlight
	var settled []string
	for _, gid := range e.tpc.Undone() {
		if !inFlight(gid) {
			settled = append(settled, gid)
		}
	}
	var wg sync.WaitGroup
	for i := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			reps[i], errs[i] = twopc.Resolve(ctx, e.tpc, targets[i].t, inFlight)
		}()
	}
	wg.Wait()
	for i := range targets {
		rt := &targets[i]
		where := []any{"database", rt.db, "shard", rt.shard, "server", rt.t.Address, "server_database", rt.t.Database, "role", rt.t.User}
		rep := reps[i]
		if len(rep.Committed)+len(rep.RolledBack) > 0 {
			found = true
			e.log.Info("two-phase commit: finished prepared transactions", append(where, "committed", rep.Committed, "rolled_back", rep.RolledBack)...)
		}
		if errs[i] != nil {
			failed = true
			if !rt.warn {
				e.log.Warn("two-phase commit: could not go over the prepared transactions of a shard; retrying in the background",
					append(where, "err", errs[i])...)
			}
			rt.warn = true
			continue
		}
		rt.warn = false
		if atStart {
			if rep.MaxPrepared == 0 {
				e.log.Warn("two_phase_commit needs max_prepared_transactions > 0 on every shard: this shard has 0, so transactions writing on it and another shard will fail to commit",
					where...)
			}
			if len(rep.Foreign) > 0 {
				e.log.Warn("prepared transactions named like pgshard's but not of this two_phase_log (another pgshard, or a lost log): left alone",
					append(where, "gids", rep.Foreign)...)
			}
		}
	}
	if !failed {
		for _, gid := range settled {
			e.tpc.Done(gid)
		}
	}
	return found, failed
}

// sweeper goes over the targets when asked (sweepSoon), again while it finds something or fails, and once
// more a few seconds after a pass found nothing (a PREPARE whose client went away may still be running).
func (e *Engine) sweeper() {
	for range e.sweepCh {
		delay, clean := time.Second, 0
		for clean < 2 {
			time.Sleep(delay)
			if found, failed := e.resolveAll(false); found || failed {
				clean, delay = 0, min(2*delay, 30*time.Second)
			} else {
				clean, delay = clean+1, 4*time.Second
			}
		}
	}
}

func (e *Engine) sweepSoon() {
	select {
	case e.sweepCh <- struct{}{}:
	default:
	}
}
