package loop

import (
	"errors"
	"math/bits"
	"strings"
	"time"

	"github.com/pgshard/pgshard/codec"
	"github.com/pgshard/pgshard/pool"
	"github.com/pgshard/pgshard/tlsio"
)

// streamThreshold is the message size past which server bytes are passed to the client as they arrive,
// instead of waiting for the whole message (a 100 MB value must not sit in the proxy).
const streamThreshold = 32 << 10

// server is one server connection. Only the goroutine of the loop it is registered in touches it.
type server struct {
	e       *Engine
	ls      *loopState
	c       conn        // a *tlsio.Conn when the connection is encrypted
	out     []byte      // what to write when the current callback returns (outbox.go)
	tls     *tlsio.Conn // nil in plaintext
	pc      *pool.Conn
	target  pool.Target
	backend *pool.Backend

	client *client // attached client, nil when idle in the pool
	shard  int     // the shard it serves
	fan    *fanout // the fan-out its answers are merged into, if any
	fresh  bool    // just attached to a client of a sharded database: give it the client's settings first

	expects   expectQueue       // answers still to come for what was sent, in order
	settings  map[string]string // what pgshard set on this connection (absent: the server's default)
	syncedTo  *client           // the client whose settings it has, at version syncedVer
	syncedVer uint64
	stmts     serverStmts // pgshard's prepared statements on this connection
	sqlNames  sqlNames    // the client's SQL PREPAREd statements on this connection, under their names
	unsynced  bool        // extended-protocol messages were sent with no Sync after them yet
	// copyMsgs counts the CopyData, CopyDone and CopyFail messages sent; copyFrom is its value when the COPY
	// the server is taking data for now started (copyIn), to tell the Syncs the server ignores (see copyStarted).
	copyMsgs, copyFrom uint64
	copyIn             bool

	unnamedOwner *client     // whose unnamed statement the server holds (nil: nobody's, or not known)
	unnamedGen   uint64      // which of its unnamed statements
	status       byte        // transaction status of the last ReadyForQuery
	remain       int         // bytes of a large message still to pass through
	state        serverState // where it is in its life (serverstate.go): changed only by setState

	park       parking // reading paused while the client cannot take more
	cancelling bool    // pgshard's CancelRequest for its statement is on its way: busy until delivered (cancel.go)
	noReuse    bool    // such a cancel failed, or pgshard's own query failed: close the connection when idle rather than reuse it

	fatalSent           bool         // the client was passed the server's FATAL error: the server is closing
	rolledBack          bool         // since the last ReadyForQuery the client's statements failed or rolled back (not yet committed)
	replayErr           *codec.Error // the error of a replay of the client's settings (replaySettings)
	replayCleanupFailed bool         // it was the cleanup of an earlier client's settings that failed
	replayAnswered      bool         // such a replay has been answered: the client goes on (replayDone)
}

// dialFailed runs on the client's loop: the client learns why, and the slot goes to the next waiter.
func (e *Engine) dialFailed(p *pool.Pool, cl *client, err error) {
	if w := p.DialFailed(time.Now()); w != nil {
		e.slotFor(p, w.Handle.(*client))
	}
	if p.Replica > 0 {
		e.banReplica(p.Host.(*replica), err.Error(), "pool", p.Name)
		if cl.readElsewhere(p) {
			return
		}
	} else if d, ok := p.Host.(*database); ok && d.followsPrimary && serverDown(err) {
		e.primaryDown(d, p.Shard, err.Error())
		if cl.holdForFailover(p) {
			return
		}
	}
	var pgErr *codec.Error
	if !errors.As(err, &pgErr) {
		pgErr = codec.NewFatal(codec.SQLStateConnectionFailure, "pgshard could not connect to the server of pool "+p.Name+": "+err.Error()).
			WithHint("check that the server in databases: is up and reachable")
	} else {
		pgErr = &codec.Error{Severity: "FATAL", Code: pgErr.Code, Message: pgErr.Message, Detail: pgErr.Detail, Hint: pgErr.Hint}
	}
	if cl.state != clientClosed && cl.waiting {
		cl.serverFailed(pgErr)
	}
}

// slotFreed gives back the slot of a server connection that is gone; a client waiting for one dials now.
func (e *Engine) slotFreed(p *pool.Pool) {
	if w := p.Remove(time.Now()); w != nil {
		e.slotFor(p, w.Handle.(*client))
	}
}

// slotFor starts a dial for a waiter that a freed slot went to; it may live on another loop.
func (e *Engine) slotFor(p *pool.Pool, cl *client) {
	ls := cl.ls
	_ = ls.execute(func() {
		if cl.state == clientClosed {
			e.slotFreed(p) // nobody wants the slot any more: give it back (possibly to the next waiter)
			return
		}
		e.dial(p, ls, cl)
	})
}

// onTraffic passes the server's messages to its client, matching each answer to what was sent (expects) to
// know when the server is free again and where pgshard hides or adds messages.
func (s *server) onTraffic() {
	if cl := s.client; cl != nil && cl.park.parked {
		return // the parked client comes back when it sees our bytes waiting (parkUntilDrained)
	}
	if s.tls != nil {
		if err := s.tls.Fill(s.ls.tlsScratch()); err != nil {
			s.e.log.Warn("TLS connection to a server failed", "pool", s.pc.Pool().Name, "err", err)
			s.ls.closeConn(s.c)
			return
		}
	}
	buf := s.park.input(s.c)
	sp := splice{in: buf, scratch: &s.ls.toClient}
	// Replies pgshard made itself before these answers and held for them (client.answersComing) go out first,
	// in the same write; any it makes while reading them wait for the next flush, as they always did.
	held, heldBy, flushes := 0, s.client, 0
	if heldBy != nil {
		held, flushes = len(heldBy.out), heldBy.flushes
	}
	pos, ok := s.answers(&sp, buf)
	if !ok || pos == 0 {
		return
	}
	if cl := s.client; cl != nil {
		if cl != heldBy || cl.flushes != flushes {
			held = 0
		}
		cl.writeAfterHeld(held, sp.result(pos))
		if s.gone() { // writing to the client failed, and its close closed us
			return
		}
	}
	s.park.consume(s.c, pos)
	cl := s.client
	if s.replayAnswered && !s.expects.front().keeps(keepReplay) {
		s.replayAnswered = false
		if cl != nil {
			s.replayDone(cl)
			return
		}
	}
	if cl != nil && cl.sh.copy != nil && cl.sh.copy.waiting {
		cl.sh.copy.resume()
		if s.gone() || s.client != cl {
			return
		}
	}
	if cl != nil && s.fan != nil {
		if s.fan.held != 0 {
			cl.wakeHeld()
		}
		if !cl.cancelArmed && s.fan.cancelCandidates() != 0 {
			cl.armCancel()
		}
	}
	// Looked at before idleNow: a server it gives back may go at once to a client waiting on this loop, which
	// sends on it before idleNow returns. The client that had it must still go on (unstall), whatever its
	// server does now.
	answered := s.expects.len() == 0
	if s.inUse() && answered && !s.unsynced && s.remain == 0 && !s.cancelling {
		s.idleNow()
	} else if cl != nil && cl.c.OutboundBuffered() > s.e.cfg.Limits.ClientOutboundBuffer {
		s.parkUntilDrained(cl)
		return
	} else if s.fan != nil && s.fan.holds(1<<s.shard) {
		s.parkWhileHeld()
		return
	}
	if cl != nil && cl.rt != nil && answered {
		cl.unstall()
	} else if cl != nil && cl.rt != nil && s.copyIn && cl.sh.stalled && cl.state == clientReady {
		// A COPY this server takes data for began: what the client sent after it (stalled while the server
		// was busy) is its data, or is for this server to refuse (route, copyingMask).
		cl.sh.stalled = false
		cl.forward()
		cl.flush()
	}
}

// answers accounts for the complete messages at the start of buf (answer), and lets a large message the
// client does not need pgshard to see pass through as it arrives. It returns the bytes it took; false when the
// server said something impossible and was failed.
func (s *server) answers(sp *splice, buf []byte) (int, bool) {
	pos := 0
	for pos < len(buf) {
		if s.remain > 0 {
			n := min(s.remain, len(buf)-pos)
			s.remain -= n
			pos += n
			continue
		}
		n := codec.MessageLen(buf[pos:])
		if n == 0 {
			break
		}
		if n < codec.HeaderLen {
			s.fail("server sent an invalid message length")
			return pos, false
		}
		if pos+n > len(buf) {
			if n > streamThreshold && !s.mustSeeWhole(buf[pos]) {
				s.remain = n - (len(buf) - pos)
				pos = len(buf)
			}
			break
		}
		if !s.answer(sp, buf[pos:pos+n], pos) {
			s.fail("server answer does not match what was sent (message type " + string(rune(buf[pos])) + ")")
			return pos, false
		}
		pos += n
	}
	return pos, true
}

// commandDone applies what the client's statement that the server completed with tag did to the session it
// tracks: a SET or RESET, an SQL PREPARE or DEALLOCATE, the end of a transaction.
func (s *server) commandDone(cl *client, head *expectation, tag string) {
	if head.handling != forward || head.answers != reqExecute && head.answers != reqQuery {
		return
	}
	if len(head.sets) > 0 && settingTag(tag) {
		cl.confirm(s, head.sets[0])
		head.sets = head.sets[1:]
	}
	if len(head.sqlOps) > 0 && tag == head.sqlOps[0].tag {
		op := head.sqlOps[0]
		head.sqlOps = head.sqlOps[1:]
		cl.applySQLOp(s, op)
	}
	if cl.tx.active {
		// What a transaction set counts from its COMMIT on, and is undone by a ROLLBACK (the tag of a COMMIT
		// of a failed transaction too) once the server says it is idle.
		switch tag {
		case "COMMIT":
			s.rolledBack = false
			cl.transactionEnded(s, false)
		case "ROLLBACK":
			s.rolledBack = true
		}
	}
}

// settingTag says whether a CommandComplete tag is that of a SET, RESET or DISCARD ALL.
func settingTag(tag string) bool {
	return tag == "SET" || tag == "RESET" || tag == "DISCARD ALL"
}

// mustSeeWhole says which messages are inspected, so never streamed in pieces.
func (s *server) mustSeeWhole(typ byte) bool {
	switch typ {
	case codec.DataRow, codec.CopyData, codec.NoticeResponse, codec.NotificationResponse, codec.FunctionCallResponse:
		return s.expects.front().hidden()
	}
	return true
}

// emitSynth adds, at offset at, the answers pgshard gives itself that are now due.
func (s *server) emitSynth(sp *splice, at int) {
	for h := s.expects.front(); h != nil; h = s.expects.front() {
		if h.handling != synthesized {
			return
		}
		b := appendSynth(s.ls.synth[:0], *h)
		s.expects.pop()
		if s.client != nil {
			sp.insert(at, b)
		}
	}
}

// synth queues an answer pgshard gives itself; when nothing is pending before it, it goes out now.
func (s *server) synth(cl *client, e expectation) {
	if s.expects.len() > 0 {
		s.expects.push(e)
		return
	}
	cl.out = appendSynth(cl.out, e)
}

// prepare inserts at offset at the Parse of st (and the Close of statements it evicts) and expects its
// answer handled as h (forward for the client's own Parse, added for one pgshard adds).
func (s *server) prepare(sp *splice, at int, st *stmt, h handling) {
	s.ls.evicted = s.stmts.add(st, s.ls.evicted[:0])
	for _, old := range s.ls.evicted {
		sp.insert(at, codec.AppendClose(s.ls.synth[:0], codec.TargetStatement, old.name))
		s.expects.push(expectAdded(reqClose))
	}
	sp.setTail(append(sp.tail(at), st.parse...))
	s.expects.push(expectation{answers: reqParse, handling: h, st: st})
}

// staleResultType reports the server's refusal to run a prepared statement whose result columns a schema
// change altered.
func staleResultType(msg []byte) bool {
	e, err := codec.ParseError(msg[codec.HeaderLen:])
	return err == nil && e.Code == codec.SQLStateFeatureNotSupported && e.Message == "cached plan must not change result type"
}

// isFatal reports an ErrorResponse of severity FATAL or PANIC: the server ends the connection after it.
func isFatal(msg []byte) bool {
	e, err := codec.ParseError(msg[codec.HeaderLen:])
	return err == nil && (e.Severity == "FATAL" || e.Severity == "PANIC")
}

func errorText(msg []byte) string {
	if e, err := codec.ParseError(msg[codec.HeaderLen:]); err == nil {
		return e.Error()
	}
	return "malformed error"
}

// parkUntilDrained stops reading from the server until its slow client has taken what it was sent, so a
// client reading a large result slowly holds at most limits.client_outbound_buffer in the proxy.
func (s *server) parkUntilDrained(cl *client) {
	if s.c.OutboundBuffered() > 0 {
		return // parking would drop what gnet has yet to write; try again on the next read
	}
	limit := s.e.cfg.Limits.ClientOutboundBuffer
	s.park.park(s.e, s.ls, s.c, &reopen{s: s}, func() bool {
		return s.client != cl || cl.state == clientClosed || cl.c.OutboundBuffered() <= limit/2
	})
}

// parkWhileHeld stops reading from a server whose rows the merger holds many of (its shard is ahead of the
// others in an ORDER BY merge) until the merger has used most of them.
func (s *server) parkWhileHeld() {
	if s.c.OutboundBuffered() > 0 {
		return
	}
	g, bit := s.fan, uint64(1)<<s.shard
	if s.park.park(s.e, s.ls, s.c, &reopen{s: s}, func() bool {
		return s.fan != g || !g.active || g.mg == nil || g.mg.Queued(g.index(bit)) <= maxQueuedRows/2
	}) {
		g.held |= bit
	}
}

// wakeHeld brings back the servers of cl's fan-out parked by parkWhileHeld whose rows the merger has used
// enough of, as soon as it has (the other shards' rows let it go on), rather than at their next poll: a
// parked shard's rows must be back before the merger runs out of them, or the whole merge waits.
func (cl *client) wakeHeld() {
	g := &cl.sh.group
	for m := g.held; m != 0; m &= m - 1 {
		i := bits.TrailingZeros64(m)
		s := cl.srvs[i]
		if s == nil || !s.park.parked || s.park.wake == nil || s.park.wake() {
			g.held &^= 1 << i
		}
	}
}

// idleNow runs when the server has answered everything it was sent.
func (s *server) idleNow() {
	cl := s.client
	if cl == nil {
		s.checkAnswered() // a health check's answer, or a reset's
		if s.status == codec.TxIdle {
			s.release()
		} else {
			s.closeExpected() // a reset did not leave it idle: never reuse it dirty
		}
		return
	}
	if s.status == codec.TxIdle && s.e.cfg.Pool.Mode != "session" && cl.state == clientReady && !cl.pins.any() && cl.sh.drive == nil {
		if cl.lsnWanted&(1<<s.shard) != 0 {
			s.askWriteLSN(cl)
			return
		}
		cl.detachServer(s)
		s.release()
	}
	cl.heldStatementGoes()
}

// quiet reports a server that has answered everything and is outside a transaction block: pgshard's own
// statements can go first without changing what the client's pipelined messages see.
func (s *server) quiet() bool {
	return s.expects.len() == 0 && !s.unsynced && s.remain == 0 && s.status == codec.TxIdle
}

// idleInSession reports a session-mode server between transactions.
func (s *server) idleInSession() bool {
	return s.expects.len() == 0 && !s.unsynced && s.status == codec.TxIdle
}

// release returns an idle, clean, unattached server to its pool, or hands it to a waiting client.
func (s *server) release() {
	if s.gone() {
		return
	}
	if s.noReuse {
		s.closeExpected()
		return
	}
	if lt := s.pc.Pool().Settings().Lifetime; (lt > 0 && time.Since(s.pc.Created) >= lt) || s.pc.Pool().Retired() {
		s.closeExpected() // old, or of a pool a RELOAD replaced: never handed out again
		return
	}
	s.setState(serverIdle)
	w := s.pc.Pool().Checkin(s.pc, time.Now())
	if w == nil {
		return
	}
	cl := w.Handle.(*client)
	if cl.ls == s.ls {
		cl.gotServer(s)
		return
	}
	s.moveTo(cl.ls, cl, true)
}

// clientLeft runs when the attached client cl disconnected. The server goes back to the pool only when it is
// clean; a transaction left open is rolled back first, session state (session mode, or a pinned client) is
// discarded, and a query in flight makes us close the connection.
func (s *server) clientLeft(cl *client) {
	discard := s.e.cfg.Pool.Mode == "session" || cl.pins.any()
	switch {
	case s.expects.len() > 0 || s.unsynced || s.remain > 0 || s.cancelling || s.noReuse || !s.e.cfg.Pool.ServerReuse:
		s.closeExpected()
	case s.status != codec.TxIdle || discard:
		s.reset(discard)
	default:
		s.release()
	}
}

// reset sends the proxy's own cleanup queries (ROLLBACK of a transaction left open, and DISCARD ALL when
// discard); onTraffic releases the server when they are answered.
func (s *server) reset(discard bool) {
	var b []byte
	if s.status != codec.TxIdle {
		b = codec.AppendQuery(b, "ROLLBACK")
		s.expects.push(expectOwn(keepNothing))
	}
	if discard {
		b = codec.AppendQuery(b, "DISCARD ALL")
		s.expects.push(expectOwn(keepNothing))
		s.stmts.clear()
		s.sqlNames.clear()
		s.settings, s.syncedTo = nil, nil
	}
	if len(b) == 0 {
		s.release()
		return
	}
	s.unnamedOwner = nil
	s.send(b)
}

// retryCheckout makes cl check out again after the server meant for it was lost on the way.
func (e *Engine) retryCheckout(cl *client) {
	_ = cl.ls.execute(func() {
		if cl.state != clientClosed && cl.waiting {
			cl.waiting = false
			if cl.acquire() {
				cl.resume()
			}
		}
	})
}

// closeExpected closes the connection on purpose; onClose then does the pool's bookkeeping.
func (s *server) closeExpected() {
	if s.gone() || s.state == serverClosing {
		return // closed, or being closed by a caller further up
	}
	s.setState(serverClosing)
	if s.park.parked {
		s.park.closeParked()
		s.lost(nil)
		return
	}
	s.terminate()
}

// fail closes a server that broke the protocol.
func (s *server) fail(reason string) {
	s.e.log.Error("server protocol error", "pool", s.pc.Pool().Name, "reason", reason)
	s.ls.closeConn(s.c)
}

// onClose runs when the connection is gone in this loop. A connection moving loops or parked is not lost.
func (s *server) onClose(c conn, err error) {
	if s.state == serverMoving || s.park.parked || c != conn(socket(s.c)) {
		return
	}
	s.lost(err)
}

// lost does the bookkeeping of a server connection that is gone: its client learns of it, its slot is freed.
func (s *server) lost(err error) {
	if s.gone() {
		return
	}
	expected := s.state == serverClosing
	s.setState(serverGone)
	delete(s.ls.servers, s)
	p := s.pc.Pool()
	if cl := s.client; cl != nil {
		cl.detachServer(s)
		msg := "server connection of pool " + p.Name + " was lost"
		if err != nil {
			msg += ": " + err.Error()
		}
		msg += cl.sh.drive.lostNote()
		if s.fatalSent {
			// The client has the server's FATAL error (pg_terminate_backend, a shutdown): its connection ends
			// as Postgres ends one, after that one error.
			cl.fatal(nil)
		} else {
			cl.fatal(codec.NewFatal(codec.SQLStateConnectionFailure, msg).WithHint("the server closed the connection or crashed; reconnect and retry"))
		}
	} else if !expected {
		p.TakeIdle(s.pc)
	}
	if !expected && err != nil {
		s.e.log.Warn("server connection closed", "pool", p.Name, "err", err)
	}
	s.checkAnswered()
	if !expected {
		s.e.serverFailed(p)
	}
	s.e.slotFreed(p)
}

// clientNamed returns the server's ErrorResponse msg with the statement name pgshard gave a client's statement st
// ("pgshard_7") replaced by the client's own name for it, or nil when the error does not name it (Postgres names
// it in Bind errors: "bind message supplies 1 parameters, but prepared statement "x" requires 2"). The client's
// name is looked up only now, in its names, so that a Bind carries no copy of it: should the client have given the
// same statement two names, the error shows the first in byte order.
func clientNamed(msg []byte, st *stmt, names map[string]*stmt) []byte {
	e, err := codec.ParseError(msg[codec.HeaderLen:])
	if err != nil {
		return nil
	}
	from := `"` + st.name + `"`
	if !strings.Contains(e.Message, from) && !strings.Contains(e.Detail, from) {
		return nil
	}
	theirs, found := "", false
	for name, s := range names {
		if s == st && (!found || name < theirs) {
			theirs, found = name, true
		}
	}
	if !found {
		return nil
	}
	to := `"` + theirs + `"`
	e.Message, e.Detail = strings.ReplaceAll(e.Message, from, to), strings.ReplaceAll(e.Detail, from, to)
	return codec.AppendErrorResponse(nil, e)
}

// copyStarted runs when the server starts taking COPY data for the statement at the head of the queue, sent
// after copyMsgs copy messages. Until it has the COPY's end (CopyDone or CopyFail) the server ignores Sync and
// Flush, as the protocol allows a client that did not know its statement was a COPY: libpq sends Execute and
// Sync, then the data, then CopyDone and another Sync. So the Syncs sent after that statement and before any
// of the COPY's data get no answer: their entries leave the queue, and Syncs sent from now until the data
// begins get none (Sync in message). A Sync sent in the middle of the data is answered only if the data failed
// first, which pgshard cannot tell apart: no client does that.
func (s *server) copyStarted(copyMsgs uint64) {
	s.copyIn, s.copyFrom = true, copyMsgs
	q := &s.expects
	kept := q.items[:q.head+1]
	for _, e := range q.items[q.head+1:] {
		if e.answers != reqSync || e.copyMsgs != copyMsgs {
			kept = append(kept, e)
		}
	}
	clear(q.items[len(kept):])
	q.items = kept
}

// protocolNameHint returns the server's ErrorResponse msg to a SQL EXECUTE or DEALLOCATE of a name the client
// gave a statement with the protocol's Parse, with a hint that says why, or nil for any other error. Postgres
// has one namespace for both; with names mapped (transaction mode) pgshard keeps them apart: the server knows
// the client's protocol-level statements under names of pgshard's own.
func protocolNameHint(msg []byte, names map[string]*stmt) []byte {
	e, err := codec.ParseError(msg[codec.HeaderLen:])
	if err != nil || e.Code != codec.SQLStateUndefinedPreparedStmt || e.Hint != "" {
		return nil
	}
	name, ok := strings.CutPrefix(e.Message, `prepared statement "`)
	if name, ok = strings.CutSuffix(name, `" does not exist`); !ok || names[name] == nil {
		return nil
	}
	e.Hint = `"` + name + `" was prepared with the extended protocol's Parse: through pgshard in transaction mode, SQL's ` +
		`EXECUTE and DEALLOCATE see only statements made by SQL PREPARE (Postgres shares one namespace). Run it with ` +
		`Bind, or prepare it with PREPARE`
	return codec.AppendErrorResponse(nil, e)
}
