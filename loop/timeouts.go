package loop

import (
	"time"

	"github.com/pgshard/pgshard/codec"
)

// The client timeouts (limits.query_timeout, idle_transaction_timeout, client_idle_timeout) are PgBouncer's:
// a statement that runs too long, or a client that sits idle too long inside or outside a transaction, ends
// the client's connection. The one that matters most is idle_transaction_timeout: in transaction mode a
// client idle inside a transaction keeps its server connection, and a few such clients can take the whole
// pool from everybody else.
//
// The hot path only counts: each read of the client's socket and each ReadyForQuery from its servers adds
// one (no clock read per message). The sweep, every sweepInterval, compares the counts with those it saw
// last time; so it knows, to within one sweep, since when the client has been quiet and since when its
// statement has been running.

// clock is what the sweep knows of a client's activity.
type clock struct {
	reads   uint64 // reads of the client's socket (onTraffic)
	readies uint64 // ReadyForQuery messages its servers sent

	seenReads, seenReadies uint64
	quietSince             time.Time // the first sweep after the last read or ReadyForQuery
	runningSince           time.Time // the first sweep that saw the statement now running
	running                bool      // a server owed answers at the last sweep
}

// checkIdle enforces the client timeouts on a logged-in client.
func (cl *client) checkIdle(now time.Time) {
	l := &cl.e.cfg.Limits
	if l.QueryTimeout == 0 && l.IdleTransactionTimeout == 0 && l.ClientIdleTimeout == 0 {
		return
	}
	k := &cl.clock
	moved := k.reads != k.seenReads || k.readies != k.seenReadies
	running := cl.busyMask() != 0
	if running && (!k.running || k.readies != k.seenReadies) {
		k.runningSince = now
	}
	if moved || k.quietSince.IsZero() {
		k.quietSince = now
	}
	k.seenReads, k.seenReadies, k.running = k.reads, k.readies, running

	switch {
	case running:
		if l.QueryTimeout > 0 && now.Sub(k.runningSince) >= l.QueryTimeout {
			cl.queryTimedOut()
		}
	case cl.waiting || cl.outputHeld || cl.park.parked || cl.c.InboundBuffered() > 0:
		// Not idle: waiting for a server connection (checkout_timeout bounds that), or for the client to read.
	case cl.inTransaction():
		if l.IdleTransactionTimeout > 0 && now.Sub(k.quietSince) >= l.IdleTransactionTimeout {
			cl.fatal(codec.NewFatal(codec.SQLStateIdleInTransactionTimeout, "terminating connection due to idle-in-transaction timeout").
				WithHint("pgshard's limits.idle_transaction_timeout is " + l.IdleTransactionTimeout.String() +
					"; the transaction was rolled back. Commit or roll back transactions promptly, or raise the limit"))
		}
	default:
		if l.ClientIdleTimeout > 0 && now.Sub(k.quietSince) >= l.ClientIdleTimeout {
			cl.fatal(codec.NewFatal(codec.SQLStateIdleSessionTimeout, "terminating connection due to idle-session timeout").
				WithHint("pgshard's limits.client_idle_timeout is " + l.ClientIdleTimeout.String() + "; reconnect to go on"))
		}
	}
}

// queryTimedOut ends a client whose statement ran past query_timeout. Its servers are sent a cancel so that
// the backends stop working for nobody, and are closed rather than pooled (their answers are still coming).
func (cl *client) queryTimedOut() {
	for _, s := range cl.srvs {
		if s != nil && !s.gone() && !s.cancelling && (s.expects.len() > 0 || s.remain > 0) {
			s.cancel()
		}
	}
	cl.fatal(codec.NewFatal(codec.SQLStateQueryCanceled, "canceling statement due to pgshard's query timeout; the connection was closed").
		WithHint("pgshard's limits.query_timeout is " + cl.e.cfg.Limits.QueryTimeout.String() +
			"; set statement_timeout on the server below it for long statements to fail without losing the connection"))
}

// inTransaction says whether any of the client's servers is inside a transaction block.
func (cl *client) inTransaction() bool {
	for _, s := range cl.srvs {
		if s != nil && s.status != codec.TxIdle {
			return true
		}
	}
	return cl.rt != nil && cl.sh.txOpen
}
