package loop

import (
	"context"
	"math/bits"
	"time"

	"github.com/pgshard/pgshard/codec"
	"github.com/pgshard/pgshard/pool"
)

// Cancelling the shards whose work is no longer needed.
//
// A fan-out's answer is decided before every shard is through when one shard fails (the client gets that
// error, nothing else of the statement) or when a merged LIMIT is satisfied (merge.Merger.Satisfied: the
// client has all its rows). The other shards would go on running their statement to its end, their rows
// dropped, and the client would wait for them. Instead pgshard sends a CancelRequest to the backends of the
// shards still running it, and reads their answers up to ReadyForQuery as usual, hiding what they say: the
// client sees its rows and one CommandComplete, or the first error, and one ReadyForQuery.
//
// Postgres cancels whatever its backend runs when the cancel arrives, and a cancel that arrives while the
// backend waits for a command is dropped. So:
//   - a shard is cancelled only while its statement has not ended by what pgshard has read (no
//     CommandComplete, EmptyQueryResponse, PortalSuspended or ErrorResponse of it yet), and only when nothing
//     of pgshard's own (settings, the catalog) is still ahead of the statement on that connection;
//   - the connection counts as busy (busyMask) until the cancel was delivered: the postmaster has closed the
//     cancel connection, after it signalled the backend. Until then neither the client's next statement nor
//     another client can get the connection, so a late cancel meets a backend that waits for a command (and
//     drops it), never the next statement. A cancel that could not be delivered closes the connection once
//     it is idle instead of returning it to the pool;
//   - a 57014 (or any error) of a shard cancelled after the LIMIT was satisfied ends that shard's part of the
//     statement, as a CommandComplete would: the client never sees it; after a first error every further
//     error is hidden anyway.
//
// Cancelling is done outside transaction blocks only: it would leave the shard's transaction aborted (the
// client's transaction block on that shard, or the implicit one of an extended-protocol batch that ran
// other statements before this one). In a transaction block, and for a shard that had extended-protocol
// messages without a Sync before the statement, or whose Sync is not sent yet, pgshard drains the shard's
// answers instead, as before. A COPY FROM STDIN is ended with CopyFail instead (copyin.go).
//
// A client's own CancelRequest goes the same way (client.cancelStatements): to each of its servers that runs a
// statement, which stays the client's until the cancel was delivered, so that it cannot reach the statement
// of the client that gets the server next in transaction mode.
//
// Shards get cancelGrace to finish on their own first: most are about to (their last rows and
// CommandComplete are on the way), and a cancel costs the shard a connection (in Postgres before 17, a
// forked process).

// cancelGrace is how long shards may go on after their fan-out's answer is decided before they are cancelled.
const cancelGrace = 5 * time.Millisecond

// cancelCandidates are the shards a decided fan-out may cancel: taking part, running the statement by what
// was read, not cancelled yet, and quiet when it started.
func (g *fanout) cancelCandidates() uint64 {
	if !g.active || g.copyTx || !(g.errSent || g.plan != nil && g.mg != nil && g.mg.Satisfied()) {
		return 0
	}
	return g.members & g.quiet &^ g.ended &^ g.cancelled &^ g.later
}

// quietMask is the shards of mask whose servers may be cancelled during a statement starting now: outside a
// transaction block, idle by their last ReadyForQuery, with no extended-protocol message waiting for a Sync.
func (cl *client) quietMask(mask uint64) uint64 {
	if cl.sh.txOpen || cl.sh.copy != nil {
		return 0
	}
	var q uint64
	for m := mask; m != 0; m &= m - 1 {
		i := bits.TrailingZeros64(m)
		if s := cl.srvs[i]; s != nil && !s.unsynced && s.status == codec.TxIdle {
			q |= 1 << i
		}
	}
	return q
}

// armCancel starts the grace period of a decided fan-out with shards still running, unless one runs already.
func (cl *client) armCancel() {
	if cl.cancelArmed || cl.sh.group.cancelCandidates() == 0 {
		return
	}
	cl.cancelArmed = true
	gen, ls := cl.sh.group.gen, cl.ls
	time.AfterFunc(cancelGrace, func() {
		_ = ls.execute(func() { cl.cancelRest(gen) })
	})
}

// cancelRest runs on the client's loop once the grace period is over: the shards of fan-out gen still running
// get a CancelRequest. Those that cannot get one yet (a query of pgshard's own ahead, no Sync sent) are
// looked at again when they next answer (armCancel from onTraffic).
func (cl *client) cancelRest(gen uint64) {
	cl.cancelArmed = false
	g := &cl.sh.group
	if cl.state == clientClosed || cl.sh.txOpen {
		return
	}
	if g.gen != gen {
		cl.armCancel() // a later fan-out may have been decided meanwhile: its own grace period
		return
	}
	for m := g.cancelCandidates(); m != 0; m &= m - 1 {
		i := bits.TrailingZeros64(m)
		s := cl.srvs[i]
		if s == nil || s.gone() || s.fan != g || s.unsynced || s.status != codec.TxIdle || s.cancelling {
			continue
		}
		if h := s.expects.front(); h == nil || h.hidden() {
			continue
		}
		g.cancelled |= 1 << i
		s.cancel()
	}
}

// cancel sends a CancelRequest for the statement s runs, off the loop; s counts as busy until it is delivered.
func (s *server) cancel() {
	s.cancelling = true
	e, ls, t := s.e, s.ls, s.target
	pid, key := s.backend.PID, s.backend.Key
	e.log.Debug("cancelling a server's statement", "pool", s.pc.Pool().Name, "backend_pid", pid)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), e.cfg.Limits.ServerConnectTimeout)
		defer cancel()
		err := pool.Cancel(ctx, t.Network, t.Address, pid, key)
		_ = ls.execute(func() { s.cancelDone(err) })
	}()
}

// cancelDone runs on s's loop once its cancel was delivered (or failed): s is free again when its answers are
// all in.
func (s *server) cancelDone(err error) {
	s.cancelling = false
	if err != nil {
		s.e.log.Warn("cancel request to a shard failed; its connection is closed once idle", "pool", s.pc.Pool().Name, "err", err)
		s.noReuse = true
	}
	if s.gone() {
		return
	}
	cl := s.client
	if s.inUse() && s.expects.len() == 0 && !s.unsynced && s.remain == 0 {
		s.idleNow()
	}
	if cl != nil && cl.state != clientClosed && cl.rt != nil {
		cl.unstall()
		cl.flush()
	}
}
