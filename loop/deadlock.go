package loop

import (
	"strings"
	"time"

	"github.com/pgshard/pgshard/codec"
	"github.com/pgshard/pgshard/pool"
)

// Deadlocks between pools (the graph is pool.Deadlocked's).
//
// Clients whose transactions span shards can each hold the last connection of one shard's pool while they wait
// for another's: A holds shard 0's and waits for shard 1's, B the other way round. Postgres cannot see it (both
// sessions are idle in a transaction), and without pgshard looking, checkout_timeout would end every client
// involved, after minutes. So, as Postgres does with its lock waits after deadlock_timeout, pgshard looks once a
// second while a client has waited that long: the loops report their queued clients and the connections each
// holds that wait on it, pool.Deadlocked finds the clients none of which can be served, and the one that began
// to wait last is ended with 40P01 (its transaction rolls back and its connections go to the others). One look
// can see a set of clients as stuck while one of them is in fact being handed a connection on its loop, so the
// victim is ended only when two looks in a row choose it, waiting since the same moment.
//
// A client outside a transaction block never takes part: while it waits it holds nothing (yieldIdleServers).

// deadlockTimeout is how long a client waits before pgshard looks for a deadlock, and how often it looks.
const deadlockTimeout = time.Second

// deadlockEvery is deadlockTimeout in sweeps.
const deadlockEvery = int(deadlockTimeout / sweepInterval)

// deadlockWatch is the state of the look for deadlocks, kept by the ticker goroutine between looks.
type deadlockWatch struct {
	suspect *client   // the victim the last look chose, if any
	since   time.Time // when it began to wait then
}

// queuedClient is one client queued for a connection, as a look found it.
type queuedClient struct {
	cl   *client
	wait pool.Wait
}

// look looks for a deadlock between the pools of e and ends its victim once two looks agree.
func (w *deadlockWatch) look(e *Engine) {
	if !e.longWait(time.Now().Add(-deadlockTimeout)) {
		w.suspect = nil
		return
	}
	var queued []queuedClient
	e.collect(func(ls *loopState, add func(any)) {
		for cl := range ls.clients {
			if cl.waiting && cl.held == notHeld && cl.pool != nil && cl.pool.Queued(&cl.waiter) {
				add(queuedClient{cl: cl, wait: pool.Wait{Waits: cl.pool, Since: cl.waiter.Since, Holds: cl.heldWaiting()}})
			}
		}
	}, func(x any) { queued = append(queued, x.(queuedClient)) })
	waits := make([]pool.Wait, len(queued))
	for i, q := range queued {
		waits[i] = q.wait
	}
	var victim *queuedClient
	for _, i := range pool.Deadlocked(waits) {
		// Ending a client that holds nothing frees nothing.
		if q := &queued[i]; len(q.wait.Holds) > 0 && (victim == nil || q.wait.Since.After(victim.wait.Since)) {
			victim = q
		}
	}
	switch {
	case victim == nil:
		w.suspect = nil
	case victim.cl != w.suspect || !victim.wait.Since.Equal(w.since):
		w.suspect, w.since = victim.cl, victim.wait.Since
	default:
		w.suspect = nil
		cl, since, held := victim.cl, victim.wait.Since, victim.wait.Holds
		_ = cl.ls.execute(func() { cl.endDeadlock(since, held) })
	}
}

// longWait reports whether a client of any pool has been queued since before t.
func (e *Engine) longWait(t time.Time) bool {
	for _, d := range e.cat.Load().dbs {
		long := false
		d.mu.Lock()
		d.eachPool("", func(_ string, p *pool.Pool) {
			o := p.OldestWait()
			long = long || !o.IsZero() && o.Before(t)
		})
		d.mu.Unlock()
		if long {
			return true
		}
	}
	return false
}

// heldWaiting returns the pools of the connections the client holds whose servers wait on it: they have answered
// everything they were sent, so they come back only when the client goes on.
func (cl *client) heldWaiting() []*pool.Pool {
	var out []*pool.Pool
	for _, s := range cl.srvs {
		if s != nil && s.expects.len() == 0 && !s.unsynced && s.remain == 0 && !s.cancelling {
			out = append(out, s.pc.Pool())
		}
	}
	return out
}

// endDeadlock ends the client chosen to break a deadlock, if it still waits as it did when it was chosen.
func (cl *client) endDeadlock(since time.Time, held []*pool.Pool) {
	if cl.state == clientClosed || !cl.waiting || !cl.waiter.Since.Equal(since) || !cl.pool.Cancel(&cl.waiter, false) {
		return
	}
	cl.waiting = false
	names := make([]string, len(held))
	for i, p := range held {
		names[i] = p.Name
	}
	cl.e.log.Warn("deadlock between pools: ending the client that began to wait last", "client", cl.addr,
		"waits_for", cl.pool.Name, "holds", strings.Join(names, ", "))
	cl.fatal(codec.NewFatal(codec.SQLStateDeadlockDetected, "deadlock detected").
		WithDetail("This client's transaction holds server connections (pool " + strings.Join(names, ", pool ") + ") and waits for one of pool " +
			cl.pool.Name + "; every connection of that pool is held by a client that waits for one this client holds, directly or through others.").
		WithHint("The transaction was rolled back; retry it. Each transaction that spans shards holds a server connection of each shard it used: raise pool.size, or run fewer such transactions at once."))
}
