package loop

import (
	"math/bits"
	"strconv"

	"github.com/pgshard/pgshard/codec"
	"github.com/pgshard/pgshard/twopc"
)

// txDrive runs the end of a transaction with statements of pgshard's own on the shards (own queries whose
// outcome is kept, keepDrive), in steps: every statement of a step is sent at once, the next step starts when
// all of them are answered. The client's COMMIT (its Query, or the Execute of its portal) stays unread meanwhile and
// the client stalled; whenever a step's answers are in (unstall, forward, route), the message is looked at
// again and the drive goes on (runDrive); when it is over, pgshard answers the message.
//
// Two-phase commit (a database with two_phase_commit whose transaction wrote on several shards):
//
//	PREPARE TRANSACTION 'gid' on the shards it wrote on
//	  any failed: ROLLBACK PREPARED on those prepared, ROLLBACK on the rest; the client gets the error
//	the commit decision appended to the log and fsynced (off the loop)
//	COMMIT PREPARED 'gid' on the writers, COMMIT on the shards it only read; the client gets COMMIT
//
// A client that goes away midway leaves its prepared transactions to the sweeper (twopc.go), which finishes
// them by the log: committed if the decision is in it, rolled back otherwise. So does pgshard at start with
// what a crash left.
type txDrive struct {
	cl       *client
	tc       txCommand
	step     driveStep
	shards   uint64 // the transaction's shards
	writers  uint64 // two-phase commit: the shards it wrote on, which prepare
	prepared uint64 // writers whose PREPARE TRANSACTION succeeded
	gid      string // two-phase commit: the prepared transactions' identifier
	target   uint64 // shards this step sent (or meant to send) a statement to
	failed   uint64 // shards whose statement of this step failed, was not sent or was not answered
	ok       uint64 // shards whose statement of this step succeeded: success is counted, never inferred
	firstErr []byte // the first error of this step, as the server sent it
	errShard int
	waiting  bool   // the decision is being written, or a failpoint stopped the drive
	answer   []byte // the client gets this ErrorResponse, or (nil) CommandComplete tag
	tag      string
	done     bool
	// abandoned: the client went away during the decision; the decision's outcome goes to the sweeper.
	abandoned bool
}

type driveStep uint8

const (
	stepNone           driveStep = iota
	stepEnd                      // COMMIT or ROLLBACK [AND CHAIN] on every shard of the transaction
	stepPrepare                  // PREPARE TRANSACTION on the writers
	stepDecide                   // the commit decision is being written
	stepCommitPrepared           // COMMIT PREPARED on the writers, COMMIT on the others
	stepAbort                    // ROLLBACK PREPARED on the prepared writers, ROLLBACK where a transaction is open
	stepCleanup                  // ROLLBACK where a failed end left a transaction open
	stepHalted                   // a failpoint stopped it
)

// Failpoints (PGSHARD_FAILPOINT, for tests): pgshard stops the two-phase commit there and waits forever,
// so that a test can kill it at that point.
const (
	failpointBeforeDecision = "2pc-before-decision" // every writer prepared, no decision written
	failpointAfterDecision  = "2pc-after-decision"  // the decision fsynced, no COMMIT PREPARED sent
)

// twoPhase says whether the open transaction commits with two-phase commit: its database asks for it and
// it wrote on more than one shard.
func (cl *client) twoPhase() bool {
	return cl.db.db.TwoPhaseCommit && cl.e.tpc != nil && bits.OnesCount64(cl.sh.writes&cl.sh.txShards) > 1
}

// driven says whether pgshard runs the end tc of the open transaction itself.
func (cl *client) driven(tc txCommand) bool {
	return !tc.rollback && cl.twoPhase() && cl.failedShards() == 0
}

// runDrive starts or continues the drive of the end tc of the transaction, for the client's message at
// buf[at:at+n] (a Query, or the Execute of the portal when extended), and answers the message once the
// drive is over. False: the client waits (stalled) with the message unread.
func (cl *client) runDrive(r *run, buf []byte, at, n int, tc txCommand, extended bool) (bool, *codec.Error) {
	d := cl.sh.drive
	if d == nil {
		if cl.busyMask() != 0 {
			return cl.stall(r, buf, at), nil
		}
		cl.startRun(r, buf, at, nil)
		r.s = nil
		d = cl.startDrive(tc)
	}
	for !d.done && !d.waiting && cl.busyMask() == 0 && cl.state != clientClosed {
		d.advance()
	}
	if cl.state == clientClosed {
		// A write closed a server connection, and with it the client (abandonDrive left the rest to the sweeper).
		return false, nil
	}
	if !d.done {
		cl.startRun(r, buf, at, nil)
		r.s = nil
		cl.sh.stalled = true
		return false, nil
	}
	cl.sh.drive = nil
	out := d.answer
	if out == nil {
		out = codec.AppendCommandComplete(nil, d.tag)
	}
	if extended {
		cl.skipToSync = d.answer != nil
		cl.sh.syncLocal = true
	} else {
		out = codec.AppendReadyForQuery(out, cl.txStatus())
	}
	cl.answerNow(rawAnswer(out)) // nothing is in flight
	cl.dropFromRun(r, at, n)
	for _, s := range cl.srvs {
		if s != nil && s.inUse() && s.expects.len() == 0 && !s.unsynced && s.remain == 0 {
			s.idleNow()
		}
	}
	return true, nil
}

// startDrive begins the end tc of the open transaction; nothing may be in flight.
func (cl *client) startDrive(tc txCommand) *txDrive {
	sh := &cl.sh
	d := &txDrive{cl: cl, tc: tc, shards: sh.txShards, tag: endTag(tc)}
	sh.drive = d
	chain := ""
	if tc.chain {
		chain = " AND CHAIN"
	}
	switch {
	case d.shards == 0:
		d.finish() // held back: on no server
	case cl.failedShards() != 0 || tc.rollback:
		d.tag = "ROLLBACK"
		d.begin(stepEnd)
		d.sendTo(d.shards, "ROLLBACK"+chain)
	case cl.twoPhase():
		d.writers = sh.writes & d.shards
		if tc.chain {
			d.answer = codec.AppendErrorResponse(nil, codec.NewError(codec.SQLStateFeatureNotSupported,
				"COMMIT AND CHAIN is not supported for a transaction that wrote on several shards with two_phase_commit; the transaction was rolled back").
				WithHint("COMMIT, then begin the next transaction"))
			d.abort()
			return d
		}
		d.gid = cl.e.tpc.Begin()
		d.begin(stepPrepare)
		d.sendEach(d.writers, "PREPARE TRANSACTION ")
	default:
		d.begin(stepEnd)
		d.sendTo(d.shards, "COMMIT"+chain)
	}
	return d
}

func (d *txDrive) begin(step driveStep) {
	d.step, d.target, d.failed, d.ok, d.firstErr = step, 0, 0, 0, nil
}

// sendTo sends sql to the servers of the shards of mask.
func (d *txDrive) sendTo(mask uint64, sql string) {
	for m := mask; m != 0; m &= m - 1 {
		d.sendOne(bits.TrailingZeros64(m), sql)
	}
}

// sendEach sends each shard of mask verb with that shard's identifier of the transaction (twopc.ShardGID).
func (d *txDrive) sendEach(mask uint64, verb string) {
	for m := mask; m != 0; m &= m - 1 {
		shard := bits.TrailingZeros64(m)
		d.sendOne(shard, verb+twopc.Literal(twopc.ShardGID(d.gid, shard)))
	}
}

// sendOne sends sql to the server of shard. A server that is gone fails the step there: a write can close a
// connection (and, through its loss, the client) before it returns, so nothing is taken as done unless answered.
func (d *txDrive) sendOne(shard int, sql string) {
	d.target |= 1 << shard
	if s := d.cl.srvs[shard]; s != nil && !s.gone() {
		d.cl.hiddenQuery(s, keepDrive, sql)
	}
}

// settle fails the step on the shards that did not answer it: their servers were gone, or went away (with
// the client) before answering.
func (d *txDrive) settle() {
	for m := d.target &^ (d.ok | d.failed); m != 0; m &= m - 1 {
		shard := bits.TrailingZeros64(m)
		d.failedOn(shard, codec.AppendErrorResponse(nil, codec.NewError(codec.SQLStateConnectionFailure,
			"the server connection of shard "+strconv.Itoa(shard)+" was lost")))
	}
}

// failedOn notes the error msg a shard answered to its statement of this step.
func (d *txDrive) failedOn(shard int, msg []byte) {
	d.failed |= 1 << shard
	if d.firstErr == nil {
		d.firstErr, d.errShard = append([]byte(nil), msg...), shard
	}
}

// answered notes that a shard's statement of this step is over (ReadyForQuery): it succeeded unless it failed.
func (d *txDrive) answered(shard int) {
	if bit := uint64(1) << shard; d.failed&bit == 0 {
		d.ok |= bit
	}
}

// inTx is the set of the transaction's shards whose server is still in a transaction.
func (d *txDrive) inTx() uint64 {
	var m uint64
	for s := d.shards; s != 0; s &= s - 1 {
		if srv := d.cl.srvs[bits.TrailingZeros64(s)]; srv != nil && srv.status != codec.TxIdle {
			m |= s & -s
		}
	}
	return m
}

// advance goes on once every statement of the step is answered.
func (d *txDrive) advance() {
	cl, e := d.cl, d.cl.e
	d.settle()
	switch d.step {
	case stepEnd:
		if d.failed != 0 {
			d.answer = d.firstErr
		}
		d.finish()
	case stepCleanup:
		d.finish()
	case stepPrepare:
		d.prepared = d.writers &^ d.failed
		if d.failed != 0 {
			d.answer = d.prepareError()
			d.abort()
			return
		}
		if e.failpoint == failpointBeforeDecision {
			d.halt()
			return
		}
		d.step, d.waiting = stepDecide, true
		ls := cl.ls
		e.tpc.Commit(d.gid, func(err error) {
			_ = ls.execute(func() { d.decided(err) })
		})
	case stepCommitPrepared:
		if d.failed != 0 {
			// Decided: the transaction is committed. The sweeper commits what is left prepared.
			e.log.Error("two-phase commit: COMMIT PREPARED failed; pgshard retries it", "gid", d.gid,
				"shard", d.errShard, "error", errorText(d.firstErr))
			e.tpc.End(d.gid)
			e.sweepSoon()
		} else {
			e.tpc.End(d.gid)
			e.tpc.Done(d.gid)
		}
		d.finish()
	case stepAbort:
		e.tpc.End(d.gid)
		if d.failed != 0 && d.gid != "" {
			e.log.Error("two-phase commit: ROLLBACK PREPARED failed; pgshard retries it", "gid", d.gid,
				"shard", d.errShard, "error", errorText(d.firstErr))
			e.sweepSoon()
		}
		d.finish()
	}
}

// decided runs on the client's loop once the decision is written (err nil) or could not be.
func (d *txDrive) decided(err error) {
	cl, e := d.cl, d.cl.e
	if d.step != stepDecide {
		return
	}
	d.waiting = false
	if err != nil {
		e.log.Error("two-phase commit: the decision could not be written; the transaction is rolled back", "gid", d.gid, "err", err)
	}
	if d.abandoned {
		// The client is gone: the sweeper finishes the prepared transactions as the log says.
		e.tpc.End(d.gid)
		e.sweepSoon()
		return
	}
	switch {
	case err != nil:
		d.answer = codec.AppendErrorResponse(nil, codec.NewError(codec.SQLStateSystemIOError,
			"pgshard could not write its two-phase commit decision: "+err.Error()+"; the transaction was rolled back").
			WithHint("check two_phase_log ("+e.tpc.Path()+") and its disk; pgshard commits no more two-phase transactions until it is restarted"))
		d.abort()
	case e.failpoint == failpointAfterDecision:
		d.halt()
		return
	default:
		d.begin(stepCommitPrepared)
		d.sendEach(d.writers, "COMMIT PREPARED ")
		d.sendTo(d.shards&^d.writers, "COMMIT")
	}
	if cl.busyMask() == 0 {
		cl.unstall()
	}
	cl.flush()
}

// abort rolls back: the prepared writers with ROLLBACK PREPARED, the shards still in the transaction.
func (d *txDrive) abort() {
	d.begin(stepAbort)
	if d.prepared != 0 {
		d.sendEach(d.prepared, "ROLLBACK PREPARED ")
	}
	d.sendTo(d.inTx(), "ROLLBACK")
}

// finish ends the drive, or rolls back first where a failed end left a transaction open.
func (d *txDrive) finish() {
	if d.answer != nil {
		if open := d.inTx(); open != 0 && d.step != stepCleanup {
			d.begin(stepCleanup)
			d.sendTo(open, "ROLLBACK")
			return
		}
		d.cl.endTx()
	} else {
		d.cl.txEnded(d.tc)
	}
	d.done = true
}

// halt stops the drive for good (a failpoint).
func (d *txDrive) halt() {
	d.cl.e.log.Warn("failpoint reached: two-phase commit stops here", "failpoint", d.cl.e.failpoint, "gid", d.gid)
	d.step, d.waiting = stepHalted, true
}

// prepareError is the client's error when a PREPARE TRANSACTION failed: the shard's own, unless the shard
// does not allow prepared transactions at all.
func (d *txDrive) prepareError() []byte {
	if pe, err := codec.ParseError(d.firstErr[codec.HeaderLen:]); err == nil && pe.Code == codec.SQLStateObjectNotInPrerequisite && pe.Message == "prepared transactions are disabled" {
		return codec.AppendErrorResponse(nil, codec.NewError(codec.SQLStateObjectNotInPrerequisite,
			"two-phase commit failed: shard "+strconv.Itoa(d.errShard)+" of database "+d.cl.db.db.Name+
				" does not allow prepared transactions (max_prepared_transactions = 0); the transaction was rolled back").
			WithHint("set max_prepared_transactions above 0 on every shard (it takes a restart of Postgres), or two_phase_commit: false"))
	}
	return d.firstErr
}

// lostNote completes the error of a client whose server was lost during the drive.
func (d *txDrive) lostNote() string {
	if d == nil || d.gid == "" {
		return ""
	}
	switch d.step {
	case stepPrepare:
		return "; two-phase commit had not decided: the transaction is rolled back on every shard"
	case stepDecide:
		return "; two-phase commit was writing its decision: pgshard finishes the transaction on every shard as it decided"
	case stepCommitPrepared:
		return "; two-phase commit had decided to commit: pgshard finishes the commit on every shard"
	case stepAbort:
		return "; the transaction is rolled back on every shard"
	}
	return ""
}

// abandonDrive runs when the client goes away during a drive: a two-phase commit's prepared transactions
// are left to the sweeper (once the decision is written, when it is being written). Its servers are then
// closed or reset as for any client that leaves.
func (cl *client) abandonDrive() {
	d := cl.sh.drive
	if d == nil {
		return
	}
	cl.sh.drive = nil
	if d.gid == "" || d.done {
		return
	}
	switch d.step {
	case stepDecide:
		d.abandoned = true // decided finishes the books
	case stepHalted:
		// A failpoint stopped it: left as it is, for the test that kills pgshard now.
	default:
		cl.e.tpc.End(d.gid)
		cl.e.sweepSoon()
	}
}
