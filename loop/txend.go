package loop

import (
	"math/bits"
	"strings"

	"github.com/pgshard/pgshard/codec"
)

// The end of a transaction of a sharded database, in the simple protocol (a Query) and in the extended one
// (a Bind of COMMIT, END, ROLLBACK or ABORT: its Describe and Execute follow it to the same shards).
//
// COMMIT and ROLLBACK go to every shard of the transaction. A transaction that failed on some shard commits
// nowhere: its COMMIT goes to the failed shards only, whose Postgres answers it as it answers the COMMIT of a
// failed transaction (ROLLBACK), while the other shards roll back unseen. AND CHAIN leaves a new transaction
// open on every shard of the old one.
//
// pgshard runs the end of the transaction itself (txdrive.go), with statements of its own on the shards,
// when the client's statement cannot simply go to them: a COMMIT that needs two-phase commit, and in the
// extended protocol a COMMIT or ROLLBACK of a transaction that is on no server yet (held back). In the
// extended protocol pgshard then answers the Bind (BindComplete) and a Describe of the portal (NoData) at
// once, and the Execute with the outcome once it is known; the Sync gets its ReadyForQuery from pgshard too
// when no server has anything of the batch.
//
// An extended-protocol BEGIN is not held back like a simple one (a server answers it), but it opens the
// transaction in pgshard's books at once, so that what follows it on other shards, in the same pipeline or
// later, joins the transaction.

// endPortal is a COMMIT or ROLLBACK bound as a portal that pgshard runs itself.
type endPortal struct {
	name string
	tc   txCommand
}

// queryTxEnd routes a simple-protocol COMMIT or ROLLBACK of the open transaction.
func (cl *client) queryTxEnd(r *run, buf []byte, at int, m codec.Message, n int, tc txCommand) (bool, *codec.Error) {
	sh := &cl.sh
	if sh.drive != nil || cl.driven(tc) {
		return cl.runDrive(r, buf, at, n, tc, false)
	}
	if sh.txShards == 0 {
		// Held back: nothing ran on a server.
		ok, _ := cl.answerLocal(r, buf, at, n, expectation{answers: reqQuery, handling: synthesized, tag: endTag(tc), status: endStatus(tc)})
		if ok {
			cl.txEnded(tc)
		}
		return ok, nil
	}
	if cl.failedShards() != 0 && !tc.rollback {
		return cl.endFailed(r, buf, at, m, n, tc, false)
	}
	// Not mirrored: a mirrored Query goes to the first shard first and to the others only if it succeeds
	// there (replicated writes), which would leave them in the transaction when a COMMIT fails there.
	ok, perr := cl.send(r, buf, at, m, n, sh.txShards, sendFresh)
	if ok && perr == nil {
		cl.txEnded(tc)
	}
	return ok, perr
}

// bindTxEnd routes the Bind of a COMMIT or ROLLBACK of the open transaction: to the servers (the portal's
// other messages follow it there, target), or to pgshard itself.
func (cl *client) bindTxEnd(r *run, buf []byte, at int, m codec.Message, n int, portal string, tc txCommand, unnamed bool) (bool, *codec.Error) {
	sh := &cl.sh
	if sh.txShards != 0 && !cl.driven(tc) {
		if cl.failedShards() != 0 && !tc.rollback {
			return cl.endFailed(r, buf, at, m, n, tc, unnamed)
		}
		sh.target = sh.txShards
		ok, perr := cl.send(r, buf, at, m, n, sh.txShards, (sendMirror|sendFresh).with(sendUnnamed, unnamed))
		if ok && perr == nil {
			cl.txEnded(tc)
		}
		return ok, perr
	}
	if !cl.answerNow(rawAnswer(codec.AppendEmpty(nil, codec.BindComplete))) {
		return cl.stall(r, buf, at), nil
	}
	cl.dropFromRun(r, at, n)
	sh.endPortal = &endPortal{name: portal, tc: tc}
	return true, nil
}

// endPortalMessage answers a Describe, Execute or Close of the portal of a COMMIT pgshard runs itself; done
// is false for any other message. A Bind of another statement into the portal's name replaces it.
func (cl *client) endPortalMessage(r *run, buf []byte, at int, m codec.Message, n int) (done, ok bool, perr *codec.Error) {
	ep := cl.sh.endPortal
	var answer []byte
	switch m.Type {
	case codec.Bind:
		if bm, err := codec.ParseBind(m.Body); err == nil && string(bm.Portal) == ep.name {
			cl.sh.endPortal = nil
		}
		return false, false, nil
	case codec.Describe:
		dm, err := codec.ParseDescribe(m.Body)
		if err != nil || dm.Target != codec.TargetPortal || string(dm.Name) != ep.name {
			return false, false, nil
		}
		answer = codec.AppendEmpty(nil, codec.NoData)
	case codec.Close:
		cm, err := codec.ParseClose(m.Body)
		if err != nil || cm.Target != codec.TargetPortal || string(cm.Name) != ep.name {
			return false, false, nil
		}
		answer = codec.AppendEmpty(nil, codec.CloseComplete)
		defer func() {
			if ok {
				cl.sh.endPortal = nil
			}
		}()
	case codec.Execute:
		em, err := codec.ParseExecute(m.Body)
		if err != nil || string(em.Portal) != ep.name {
			return false, false, nil
		}
		ok, perr = cl.runDrive(r, buf, at, n, ep.tc, true)
		if ok {
			cl.sh.endPortal = nil
		}
		return true, ok, perr
	default:
		return false, false, nil
	}
	if !cl.answerNow(rawAnswer(answer)) {
		return true, cl.stall(r, buf, at), nil
	}
	cl.dropFromRun(r, at, n)
	return true, true, nil
}

// syncLocally answers a Sync that no server needs after pgshard answered the batch's COMMIT itself.
func (cl *client) syncLocally(r *run, buf []byte, at, n int) (bool, *codec.Error) {
	if !cl.answerNow(rawAnswer(codec.AppendReadyForQuery(nil, cl.txStatus()))) {
		return cl.stall(r, buf, at), nil
	}
	cl.dropFromRun(r, at, n)
	cl.sh.syncLocal, cl.skipToSync = false, false
	return true, nil
}

// endFailed sends the client's COMMIT of a transaction that failed on some shard to the failed shards, which
// answer it (ROLLBACK), and rolls back the others unseen.
func (cl *client) endFailed(r *run, buf []byte, at int, m codec.Message, n int, tc txCommand, unnamed bool) (bool, *codec.Error) {
	sh := &cl.sh
	failed := cl.failedShards()
	if m.Type == codec.Bind {
		sh.target = failed
	}
	ok, perr := cl.send(r, buf, at, m, n, failed, sendFresh.with(sendUnnamed, unnamed))
	if !ok || perr != nil {
		return ok, perr
	}
	q := "ROLLBACK"
	if tc.chain {
		q = "ROLLBACK AND CHAIN"
	}
	for rest := sh.txShards &^ failed; rest != 0; rest &= rest - 1 {
		if s := cl.srvs[bits.TrailingZeros64(rest)]; s != nil {
			cl.hiddenQuery(s, keepNothing, q)
		}
	}
	cl.txEnded(tc)
	return true, nil
}

// hiddenQuery sends pgshard's own simple query to s, its answers expected as kind. The client's messages for s
// that are not written yet must not be meant to go before it.
func (cl *client) hiddenQuery(s *server, keep purpose, sql string) {
	if s.gone() {
		return
	}
	s.send(codec.AppendQuery(cl.ls.synth[:0], sql))
	s.expects.push(expectOwn(keep))
}

// txEnded updates the books once the end of the transaction was sent (or answered).
func (cl *client) txEnded(tc txCommand) {
	if !tc.chain {
		cl.endTx()
		return
	}
	// AND CHAIN: a new transaction, with the same characteristics, is open on the same shards.
	cl.sh.savepoints, cl.sh.local, cl.sh.writes = nil, nil, 0
}

func endTag(tc txCommand) string {
	if tc.rollback {
		return "ROLLBACK"
	}
	return "COMMIT"
}

func endStatus(tc txCommand) byte {
	if tc.chain {
		return codec.TxActive
	}
	return codec.TxIdle
}

// sentInTx updates the books once a statement of kind tk (text sql) was sent to the shards of mask:
// an extended-protocol BEGIN opens the transaction, savepoints are kept for shards that join later, and the
// shards a transaction wrote on are noted (for two-phase commit).
func (cl *client) sentInTx(tk txKind, sql string, mask uint64, write bool) {
	sh := &cl.sh
	switch {
	case tk == txBegin && !sh.txOpen:
		sh.txOpen, sh.txShards, sh.beginSQL = true, sh.txShards|mask, strings.TrimRight(strings.TrimSpace(sql), ";")
	case tk == txSavepoint || tk == txRelease || tk == txRollbackTo:
		if sh.txOpen {
			cl.trackSavepoint(txCommandOf(sql))
		}
	case write && sh.txOpen:
		sh.writes |= mask
	}
}
