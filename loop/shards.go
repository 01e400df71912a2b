package loop

import (
	"errors"
	"math/bits"
	"strconv"
	"strings"

	"github.com/pgshard/pgshard/codec"
	"github.com/pgshard/pgshard/config"
	"github.com/pgshard/pgshard/route"
	"github.com/pgshard/pgshard/route/lex"
)

// Routing a sharded database's statements (databases with one shard and nothing sharded never come here).
//
// A client holds at most one server connection per shard (srvs). Each message goes to the shards its statement
// needs: a Query is routed on its own; a Bind is routed with its values, and the Describe, Execute and Close of
// its portal follow it; a Sync goes to every shard that got extended-protocol messages since its last Sync.
// Answers must reach the client in the order it asked, so:
//   - consecutive messages for one shard are a run, written in one write and pipelined like an unsharded
//     client's;
//   - before messages go to other shards than the ones still answering, the client stalls (its bytes stay
//     buffered) until those answers are in — a Flush makes a server send what it holds back until Sync;
//   - a statement for several shards is a fan-out: the same messages to each, their answers merged (one
//     RowDescription, rows as they come, summed CommandComplete tags, the first error, one ReadyForQuery).
//
// Transactions: BEGIN is held back (answered by pgshard) until a statement shows where it goes; every shard
// the transaction then touches gets the BEGIN (and the savepoints taken so far) first, and COMMIT, ROLLBACK
// and savepoint commands go to all of them. How a transaction ends is in txend.go.

// sharding is a client's routing state.
type sharding struct {
	target     uint64             // the shards the current portal (Bind .. Execute) runs on
	stalled    bool               // waiting for answers in flight before sending elsewhere
	txOpen     bool               // in a transaction block (held back or on servers)
	txShards   uint64             // the shards taking part in it
	writes     uint64             // the shards it wrote on (route.Decision.Write)
	beginSQL   string             // the BEGIN that opened it, replayed on every shard that joins
	savepoints []string           // savepoints taken in it, in order, replayed on joining shards
	local      *route.Session     // SET LOCAL pgshard.*: until the transaction ends
	warned     bool               // the message being routed had its cross-shard WARNING sent (warnFirst)
	keyAt      *route.KeyPosition // for the message being routed: its key's position, asked of a shard (lookUpKey)
	gathered   *gathering         // for the message being routed: the rows of its coordinator step (gather.go)
	// The client's Query text while the pieces of its statement are sent: what the statement does to the
	// session is read in it, not in a piece (a coordinated statement's text carries the rows it gathered).
	pieceOf    []byte
	unnamed    []byte // the client's unnamed Parse, held until a Bind says where it goes
	unnamedSQL string
	unnamedPl  *route.Plan
	unnamedTx  txKind
	endPortal  *endPortal // a COMMIT bound as a portal that pgshard runs itself (txend.go)
	drive      *txDrive   // the end of the transaction pgshard is running (txdrive.go)
	syncLocal  bool       // pgshard answered the extended-protocol COMMIT: it answers the Sync too if no server needs it
	group      fanout     // the fan-out in flight
	copy       *copyIn    // a COPY FROM STDIN into a sharded table in progress
	copyTx     bool       // the COPY being sent runs in a transaction of pgshard's own on each shard (copyin.go)

	// The read/write split (replicas.go): the unit of work being routed (a Query, or an extended batch up to
	// its Sync) goes to the shards' replicas; inBatch: extended messages were routed since the last Sync.
	reads, inBatch bool

	// The statement being sent is one whose rows pgshard merges: how (taken by the fan-out it starts), and
	// the message the servers get in place of the client's (a rewritten Query or Bind), if any.
	merge        *route.Merge
	mergeMsg     []byte
	copyOut      *route.CopyOut // the Query being sent is a COPY TO STDOUT whose outputs are concatenated
	describePlan *route.Plan    // the Describe being sent is of a statement the servers know rewritten
}

// run is a stretch of consecutive client messages bound for one server, written at once.
type run struct {
	s     *server
	start int
	sp    splice
}

// forwardSharded is forward for a sharded database.
func (cl *client) forwardSharded() {
	if cl.sh.stalled || cl.waiting {
		// It resumes when the answers in flight are in, or the server arrives.
		cl.boundReadAhead(func() bool { return cl.state == clientClosed || !cl.sh.stalled && !cl.waiting })
		return
	}
	for _, s := range cl.srvs {
		if s != nil && s.park.parked {
			cl.boundReadAhead(s.unparkedOrGone)
			return
		}
	}
	buf := cl.park.input(cl.c)
	maxSize := cl.e.cfg.Limits.MaxMessageSize
	var r run
	pos := 0
	for pos < len(buf) {
		m, n, err := codec.ReadMessage(buf[pos:], maxSize)
		if err != nil {
			cl.endRun(&r, buf, pos)
			cl.fatalDrain(codec.NewFatal(codec.SQLStateProtocolViolation, "invalid message from client: "+err.Error()).
				WithHint("limits.max_message_size bounds one message"))
			return
		}
		if n == 0 {
			break
		}
		if perr := invalidMessageType(m.Type); perr != nil {
			cl.endRun(&r, buf, pos)
			cl.fatal(perr)
			return
		}
		if m.Type == codec.Terminate {
			cl.endRun(&r, buf, pos)
			cl.ls.closeConn(cl.c)
			return
		}
		if pos == 0 && cl.attachedMask() == 0 && cl.state == clientReady {
			if used := cl.answerLocally(buf); used > 0 {
				pos += used
				continue
			}
		}
		if cl.sh.copy == nil && cl.sh.group.copyTx {
			// The client ended a COPY that pgshard runs in a transaction of its own on each shard: its answer
			// (CommandComplete, once every shard committed) comes before anything said about what follows.
			cl.stall(&r, buf, pos)
			break
		}
		if cl.skipToSync && m.Type != codec.Sync {
			cl.dropFromRun(&r, pos, n)
			cl.sh.messageDone()
			pos += n
			continue
		}
		if cl.readPools != nil {
			cl.unitStarts(buf[pos:], m)
		}
		ok, perr := cl.route(&r, buf, pos, m, n)
		if perr != nil {
			cl.endRun(&r, buf, pos)
			cl.fatal(perr)
			return
		}
		if !ok {
			break
		}
		if cl.readPools != nil {
			cl.sh.inBatch = m.Type != codec.Query && m.Type != codec.Sync && (m.Type != codec.Flush || cl.sh.inBatch)
		}
		cl.sh.messageDone()
		pos += n
	}
	cl.endRun(&r, buf, pos)
	if !cl.cancelArmed {
		cl.armCancel() // a Sync just sent may make a decided fan-out's shards cancellable
	}
}

// endRun writes the run (if any) and consumes the client's bytes up to end.
func (cl *client) endRun(r *run, buf []byte, end int) {
	if r.s != nil {
		out := r.sp.result(end - r.start)
		if len(out) > 0 && !r.s.gone() {
			r.s.send(out)
		}
		s := r.s
		r.s = nil
		if !s.gone() && s.backedUp(cl.e.cfg.Limits.ClientOutboundBuffer) {
			cl.srv = s
			defer cl.parkUntilDrained()
		}
	}
	if end > 0 {
		cl.consumeInput(end)
	}
	_ = buf
}

// dropFromRun leaves a message the proxy handled itself out of the run being built.
func (cl *client) dropFromRun(r *run, at, n int) {
	if r.s != nil {
		r.sp.drop(at-r.start, at-r.start+n)
	}
}

// startRun makes s the server the following messages go to.
func (cl *client) startRun(r *run, buf []byte, at int, s *server) {
	if r.s == s {
		return
	}
	if r.s != nil {
		out := r.sp.result(at - r.start)
		if len(out) > 0 && !r.s.gone() {
			r.s.send(out)
		}
	}
	r.s, r.start = s, at
	r.sp = splice{in: buf[at:], scratch: &cl.ls.toServer}
}

// attachedMask is the set of shards the client has a server of.
func (cl *client) attachedMask() uint64 {
	var m uint64
	for i, s := range cl.srvs {
		if s != nil {
			m |= 1 << i
		}
	}
	return m
}

// busyMask is the set of shards whose servers still owe answers.
func (cl *client) busyMask() uint64 {
	var m uint64
	for i, s := range cl.srvs {
		if s != nil && (s.expects.len() > 0 || s.remain > 0 || s.cancelling) {
			m |= 1 << i
		}
	}
	return m
}

// dirtyMask is the set of shards sent extended-protocol messages with no Sync after them yet.
func (cl *client) dirtyMask() uint64 {
	var m uint64
	for i, s := range cl.srvs {
		if s != nil && s.unsynced {
			m |= 1 << i
		}
	}
	return m
}

// stall stops forwarding until the answers in flight are in. Servers holding answers back for want of a
// Sync are sent a Flush.
func (cl *client) stall(r *run, buf []byte, at int) bool {
	cl.startRun(r, buf, at, nil)
	r.s = nil
	for _, s := range cl.srvs {
		if s != nil && s.unsynced && s.expects.len() > 0 && !s.gone() {
			s.send(codec.AppendEmpty(cl.ls.synth[:0], codec.Flush))
		}
	}
	cl.sh.stalled = true
	return false
}

// unstall runs when a server of cl has answered everything: a stalled client goes on.
func (cl *client) unstall() {
	cl.sendLater()
	if !cl.sh.stalled || cl.busyMask() != 0 || cl.state != clientReady {
		return
	}
	cl.sh.stalled = false
	cl.forward()
	cl.flush()
}

// messageDone ends what the routing of one client message kept while it could be routed again (after a
// stall or a wait): its WARNING sent, its key's position asked, its rows gathered.
func (sh *sharding) messageDone() { sh.warned, sh.keyAt, sh.gathered = false, nil, nil }

// session is what SET pgshard.* says now.
func (cl *client) session() route.Session {
	rs := cl.rs
	if cl.sh.local != nil {
		rs = *cl.sh.local
	}
	rs.KeyAt = cl.sh.keyAt
	if g := cl.sh.gathered; g != nil {
		rs.Gathered, rs.GatherErr = g.tables, g.err
	}
	return rs
}

// pickAny chooses the shard for a statement any shard can serve: one the transaction uses, else one the
// client holds, else the next in turn.
func (cl *client) pickAny() uint64 {
	if cl.sh.txShards != 0 {
		return lowestBit(cl.sh.txShards)
	}
	if m := cl.attachedMask(); m != 0 {
		return lowestBit(m)
	}
	cl.ls.rr++
	return 1 << (cl.ls.rr % len(cl.srvs))
}

func lowestBit(m uint64) uint64 { return m & -m }

// failedShards is the set of transaction shards whose transaction failed.
func (cl *client) failedShards() uint64 {
	var m uint64
	for i, s := range cl.srvs {
		if s != nil && s.status == codec.TxFailed {
			m |= 1 << i
		}
	}
	return m
}

// txStatus is the transaction status pgshard reports when it answers itself.
func (cl *client) txStatus() byte {
	switch {
	case cl.failedShards() != 0:
		return codec.TxFailed
	case cl.sh.txOpen:
		return codec.TxActive
	}
	return codec.TxIdle
}

// noteStatus follows the transaction status a server reported in ReadyForQuery.
func (cl *client) noteStatus(s *server) {
	bit := uint64(1) << s.shard
	if s.status != codec.TxIdle {
		cl.sh.txShards |= bit
		if !cl.sh.txOpen {
			cl.sh.txOpen = true
			cl.sh.beginSQL = "BEGIN"
		}
		return
	}
	if cl.sh.txShards&bit != 0 {
		cl.sh.txShards &^= bit
		if cl.sh.txShards == 0 {
			cl.endTx()
		}
	}
}

func (cl *client) endTx() {
	cl.sh.txOpen, cl.sh.txShards, cl.sh.beginSQL, cl.sh.savepoints, cl.sh.local, cl.sh.writes = false, 0, "", nil, nil, 0
}

// answerNow queues an answer pgshard gives itself, in order: at once when nothing is in flight, behind the
// answers of the one server in flight otherwise. False: a fan-out is in flight; stall first.
func (cl *client) answerNow(e expectation) bool {
	busy := cl.busyMask()
	if busy == 0 {
		cl.out = appendSynth(cl.out, e)
		return true
	}
	if bits.OnesCount64(busy) > 1 {
		return false
	}
	s := cl.srvs[bits.TrailingZeros64(busy)]
	if s.fan != nil {
		return false
	}
	s.expects.push(e)
	return true
}

// appendSynth appends the answer of a synthesized expectation.
func appendSynth(b []byte, e expectation) []byte {
	switch e.answers {
	case reqParse:
		return codec.AppendEmpty(b, codec.ParseComplete)
	case reqClose:
		return codec.AppendEmpty(b, codec.CloseComplete)
	case reqNone:
		if e.err != nil {
			return codec.AppendErrorResponse(b, e.err)
		}
		return append(b, e.raw...)
	case reqQuery:
		if e.err != nil {
			b = codec.AppendErrorResponse(b, e.err)
		} else {
			b = append(b, e.raw...) // the rows of a SHOW pgshard answers itself
			b = codec.AppendCommandComplete(b, e.tag)
		}
		return codec.AppendReadyForQuery(b, e.status)
	}
	return b
}

// route sends one message where it belongs. False: the client must wait (for a server or for answers), and
// the message is looked at again when it resumes.
func (cl *client) route(r *run, buf []byte, at int, m codec.Message, n int) (bool, *codec.Error) {
	if cl.sh.endPortal != nil {
		if done, ok, perr := cl.endPortalMessage(r, buf, at, m, n); done {
			return ok, perr
		}
	}
	if cl.sh.copy != nil && cl.sh.copy.sent && m.Type != codec.CopyData && m.Type != codec.CopyDone && m.Type != codec.CopyFail {
		if done, ok, perr := cl.copyInterrupted(r, buf, at, m, n); done {
			return ok, perr
		}
	}
	if copying := cl.copyingMask(); copying != 0 && m.Type != codec.CopyData && m.Type != codec.CopyDone && m.Type != codec.CopyFail {
		// A passed-through COPY takes data: its servers ignore Sync and Flush, and end the session on anything
		// else (Postgres's own error), as they would directly.
		if m.Type == codec.Sync || m.Type == codec.Flush {
			cl.dropFromRun(r, at, n)
			return true, nil
		}
		return cl.send(r, buf, at, m, n, copying, 0)
	}
	switch m.Type {
	case codec.Query:
		return cl.routeQuery(r, buf, at, m, n)
	case codec.Parse:
		return cl.routeParse(r, buf, at, m, n)
	case codec.Bind:
		return cl.routeBind(r, buf, at, m, n)
	case codec.Describe:
		dm, err := codec.ParseDescribe(m.Body)
		if err != nil {
			return cl.badTarget(r, buf, at, m, n, "DESCRIBE", err)
		}
		if dm.Target == codec.TargetStatement {
			cl.sh.describePlan = nil
			if p := cl.statementPlan(dm.Name); p != nil && p.ShardSQL() != "" {
				cl.sh.describePlan = p
			}
			mask := cl.anyMask()
			return cl.send(r, buf, at, m, n, mask, sendNoJoin.with(sendFresh, bits.OnesCount64(mask) > 1).with(sendUnnamed, len(dm.Name) == 0))
		}
		return cl.send(r, buf, at, m, n, cl.portalMask(), 0)
	case codec.CopyData, codec.CopyDone, codec.CopyFail:
		if cl.sh.copy != nil {
			return cl.copyMessage(r, buf, at, m, n)
		}
		return cl.send(r, buf, at, m, n, cl.portalMask(), 0)
	case codec.Execute:
		if g := &cl.sh.group; g.active && g.plan != nil {
			if em, err := codec.ParseExecute(m.Body); err == nil && em.MaxRows > 0 {
				return cl.refuse(r, buf, at, n, codec.NewError(codec.SQLStateFeatureNotSupported,
					"fetching a cross-shard query's rows in pages (Execute with a row limit) is not supported: "+
						"fetch all rows, or use LIMIT and OFFSET"))
			}
		}
		return cl.send(r, buf, at, m, n, cl.portalMask(), 0)
	case codec.Close:
		return cl.routeClose(r, buf, at, m, n)
	case codec.Sync:
		mask := cl.dirtyMask()
		if mask == 0 && cl.sh.syncLocal {
			return cl.syncLocally(r, buf, at, n)
		}
		cl.sh.syncLocal = false
		if mask == 0 {
			mask = cl.anyMask()
		}
		cont := cl.sh.group.active && cl.sh.group.members == mask
		return cl.send(r, buf, at, m, n, mask, (sendNoJoin|sendMirror).with(sendFresh, !cont))
	case codec.Flush:
		mask := cl.dirtyMask()
		if mask == 0 {
			cl.dropFromRun(r, at, n)
			return true, nil
		}
		return cl.send(r, buf, at, m, n, mask, 0)
	case codec.FunctionCall:
		return cl.send(r, buf, at, m, n, cl.anyMask(), sendFresh)
	}
	return cl.send(r, buf, at, m, n, cl.anyMask(), 0)
}

// routeParse keeps a Parse for later (pgshard answers ParseComplete itself): a named statement is prepared on a
// shard when a Bind or Describe needs it there, the unnamed one goes in front of the next message that uses it.
func (cl *client) routeParse(r *run, buf []byte, at int, m codec.Message, n int) (bool, *codec.Error) {
	pm, err := codec.ParseParse(m.Body)
	if err != nil {
		return false, codec.NewFatal(codec.SQLStateProtocolViolation, err.Error())
	}
	if len(pm.Name) > 0 {
		if perr := cl.refuseParse(pm.Name); perr != nil {
			return cl.refuse(r, buf, at, n, perr)
		}
	}
	if !cl.answerNow(synthesize(reqParse)) {
		return cl.stall(r, buf, at), nil
	}
	cl.dropFromRun(r, at, n)
	if len(pm.Name) > 0 {
		cl.setStmt(pm.Name, cl.stmtFor(pm.Query, pm.ParamTypes))
		return true, nil
	}
	cl.sh.unnamed = append(cl.sh.unnamed[:0], buf[at:at+n]...)
	if string(pm.Query) != cl.sh.unnamedSQL {
		cl.sh.unnamedSQL = string(pm.Query)
		cl.sh.unnamedPl = nil
		cl.sh.unnamedTx = txCommandOf(cl.sh.unnamedSQL).kind
		cl.unnamedFx = effectsOf(pm.Query)
	}
	return true, nil
}

// routeBind sends a Bind to the shards its statement's plan and parameters name, with what must go first.
func (cl *client) routeBind(r *run, buf []byte, at int, m codec.Message, n int) (bool, *codec.Error) {
	bm, err := codec.ParseBind(m.Body)
	if err != nil {
		return false, codec.NewFatal(codec.SQLStateProtocolViolation, err.Error())
	}
	var plan *route.Plan
	tk, sql := cl.sh.unnamedTx, cl.sh.unnamedSQL
	if len(bm.Statement) == 0 {
		if cl.sh.unnamed == nil {
			return cl.refuse(r, buf, at, n, codec.NewError(codec.SQLStateUndefinedPreparedStmt, "unnamed prepared statement does not exist"))
		}
		if cl.sh.unnamedPl == nil {
			cl.sh.unnamedPl = cl.rt.Prepare(cl.sh.unnamedSQL)
		}
		plan = cl.sh.unnamedPl
	} else {
		st := cl.stmts[string(bm.Statement)]
		if st == nil {
			return cl.refuse(r, buf, at, n, codec.NewError(codec.SQLStateUndefinedPreparedStmt,
				`prepared statement "`+string(bm.Statement)+`" does not exist`))
		}
		tk, sql = st.tx, st.query
		plan = cl.planOf(st)
	}
	cl.ls.params = bm.AppendParams(cl.ls.params[:0])
	cl.ls.formats = bm.ParamFormats.Append(cl.ls.formats[:0])
	d := cl.rt.Bind(plan, route.Params{Values: cl.ls.params, Formats: cl.ls.formats}, cl.session())
	if d.Err != nil {
		return cl.refuse(r, buf, at, n, d.Err)
	}
	if d.NeedKey != nil {
		return cl.lookUpKey(r, buf, at, d.NeedKey)
	}
	if !cl.warnFirst(r, buf, at, d) {
		return false, nil
	}
	if d.Gather != nil {
		return cl.gather(r, buf, at, d.Gather, d.Shards)
	}
	if d.Coordinated != "" {
		cl.coordinated(&d, len(cl.ls.params))
	}
	if d.Copy != nil {
		// pgshard splits the rows of a COPY into a sharded table only when it comes as a Query (the way
		// psql, pgx and most drivers send it); through Bind it would have no shard to send its data to.
		return cl.refuse(r, buf, at, n, codec.NewError(codec.SQLStateFeatureNotSupported,
			"COPY FROM STDIN into sharded table "+d.Copy.Table+" through the extended query protocol is not supported").
			WithHint("send the COPY statement as a simple Query message (psql, pgx CopyFrom and libpq's PQexec do)"))
	}
	if tk == txEnd && cl.sh.txOpen {
		return cl.bindTxEnd(r, buf, at, m, n, string(bm.Portal), txCommandOf(sql), len(bm.Statement) == 0)
	}
	if len(d.Split) > 0 && cl.failedShards() == 0 {
		ok, perr := cl.sendSplitBind(r, buf, at, bm, d.Shards, d.Split)
		if ok && perr == nil {
			cl.sentInTx(tk, sql, d.Shards, d.Write)
		}
		return ok, perr
	}
	mask, mirror := cl.inTxMask(d), d.Mirror
	if d.CopyOut != nil && bits.OnesCount64(mask) > 1 {
		cl.sh.copyOut = d.CopyOut
	}
	if (tk == txSavepoint || tk == txRelease || tk == txRollbackTo) && cl.sh.txShards != 0 {
		// Savepoints go to every shard of the transaction.
		mask, mirror = cl.sh.txShards, true
	}
	cl.sh.target = mask
	if d.Merge != nil {
		cl.sh.merge = d.Merge
		cl.sh.mergeMsg = cl.mergedBind(buf[at:at+n], bm, d.Merge.Hidden())
	}
	ok, perr := cl.send(r, buf, at, m, n, mask, sendFresh.with(sendMirror, mirror).with(sendUnnamed, len(bm.Statement) == 0))
	if ok && perr == nil {
		cl.sentInTx(tk, sql, mask, d.Write)
	}
	return ok, perr
}

// sendSplitBind sends a Bind whose rows belong to several shards (a multi-row INSERT with parameters) as one
// statement per shard of mask: each gets the Parse of its piece (unnamed, hidden from the client) and a Bind
// of the piece's values; the client's Describe, Execute and Sync that follow go to all of them, and their
// answers are merged as a fan-out's (one BindComplete, the rows' counts summed, RETURNING rows from each).
func (cl *client) sendSplitBind(r *run, buf []byte, at int, bm codec.BindMessage, mask uint64, split []route.Piece) (bool, *codec.Error) {
	types, values, formats := cl.paramTypes(bm), cl.ls.params, cl.ls.formats
	results := bm.ResultFormats.Append(nil)
	ok, perr := cl.sendPieces(r, buf, at, mask, split, func(p route.Piece) (parse, bind []byte) {
		ptypes, pvals := make([]uint32, len(p.Params)), make([][]byte, len(p.Params))
		pfmts := formats // none (all text) or one for all
		if len(formats) > 1 {
			pfmts = make([]int16, len(p.Params))
		}
		for i, j := range p.Params {
			if j < len(types) {
				ptypes[i] = types[j]
			}
			if j < len(values) {
				pvals[i] = values[j]
			}
			if len(formats) > 1 && j < len(formats) {
				pfmts[i] = formats[j]
			}
		}
		return codec.AppendParse(nil, "", p.SQL, ptypes), codec.AppendBind(nil, bm.Portal, "", pfmts, pvals, results)
	})
	if ok && perr == nil {
		cl.sh.target = mask
	}
	return ok, perr
}

// sendPieces sends each shard of mask its piece of a statement split by row (route.Piece), as one fan-out
// whose answers merge. msgs gives a piece's message, and a Parse to go before it unseen by the client (a
// Bind's piece) or nil (a Query's).
func (cl *client) sendPieces(r *run, buf []byte, at int, mask uint64, split []route.Piece, msgs func(route.Piece) (parse, msg []byte)) (bool, *codec.Error) {
	if !cl.ensureServers(r, buf, at, mask) {
		return false, nil
	}
	if cl.busyMask() != 0 {
		return cl.stall(r, buf, at), nil
	}
	cl.startRun(r, buf, at, nil)
	r.s = nil
	g := &cl.sh.group
	g.start(mask, false)
	g.quiet = cl.quietMask(mask)
	for _, p := range split {
		parse, msg := msgs(p)
		s := cl.srvs[p.Shard]
		s.fan = g
		sp := splice{in: msg, scratch: &cl.ls.toServer}
		cl.prepareServer(s, &sp, 0, sendFresh)
		if parse != nil {
			sp.insert(0, parse)
			s.expects.push(expectAdded(reqParse))
		}
		cl.srv = s
		mm, _, _ := codec.ReadMessage(msg, 0)
		if perr := cl.message(&sp, mm, 0, len(msg)); perr != nil {
			return false, perr
		}
		if out := sp.result(len(msg)); len(out) == len(msg) && &out[0] == &msg[0] {
			s.sendOwned(msg) // nothing inserted before it: the piece's own message, which no one else holds
		} else {
			s.send(out)
		}
	}
	return true, nil
}

// paramTypes returns the parameter types the statement of bm was prepared with (the unnamed one: its Parse,
// which pgshard holds).
func (cl *client) paramTypes(bm codec.BindMessage) []uint32 {
	if len(bm.Statement) > 0 {
		if st := cl.stmts[string(bm.Statement)]; st != nil {
			return st.paramTypes()
		}
		return nil
	}
	m, _, err := codec.ReadMessage(cl.sh.unnamed, 0)
	if err != nil {
		return nil
	}
	pm, err := codec.ParseParse(m.Body)
	if err != nil {
		return nil
	}
	return pm.ParamTypes.Append(nil)
}

// routeClose answers the Close of a statement itself (the name is the client's, in pgshard's map) and sends
// the Close of a portal to its servers.
func (cl *client) routeClose(r *run, buf []byte, at int, m codec.Message, n int) (bool, *codec.Error) {
	cm, err := codec.ParseClose(m.Body)
	if err != nil {
		return cl.badTarget(r, buf, at, m, n, "CLOSE", err)
	}
	if cm.Target == codec.TargetStatement {
		if !cl.answerNow(synthesize(reqClose)) {
			return cl.stall(r, buf, at), nil
		}
		cl.dropFromRun(r, at, n)
		if len(cm.Name) == 0 {
			cl.sh.unnamed, cl.sh.unnamedPl = nil, nil
		} else {
			cl.dropStmt(string(cm.Name))
		}
		return true, nil
	}
	return cl.send(r, buf, at, m, n, cl.portalMask(), 0)
}

// badTarget answers a Describe or Close that pgshard cannot decode: one naming neither a statement nor a portal
// gets Postgres's ERROR (the session goes on after the next Sync), any other flaw ends the session.
func (cl *client) badTarget(r *run, buf []byte, at int, m codec.Message, n int, what string, err error) (bool, *codec.Error) {
	if len(m.Body) > 0 && errors.Is(err, codec.ErrBadValue) {
		return cl.refuse(r, buf, at, n, codec.NewError(codec.SQLStateProtocolViolation,
			"invalid "+what+" message subtype "+strconv.Itoa(int(m.Body[0]))))
	}
	return false, codec.NewFatal(codec.SQLStateProtocolViolation, err.Error())
}

// anyMask is a shard for a message any shard can take (a failed transaction's shard first, so that it
// reports the failure).
func (cl *client) anyMask() uint64 {
	if f := cl.failedShards(); f != 0 {
		return lowestBit(f)
	}
	return cl.pickAny()
}

// portalMask is where the current portal lives.
func (cl *client) portalMask() uint64 {
	if cl.sh.target != 0 {
		return cl.sh.target
	}
	return cl.anyMask()
}

// inTxMask turns a decision into the shards to use, with a transaction's preferences.
func (cl *client) inTxMask(d route.Decision) uint64 {
	if f := cl.failedShards(); f != 0 {
		return lowestBit(f) // a failed transaction refuses everything: let its server say so
	}
	if d.Any {
		return cl.pickAny()
	}
	return d.Shards
}

// refuse answers a message with an error of pgshard's own; the rest of the batch is skipped up to Sync.
func (cl *client) refuse(r *run, buf []byte, at, n int, err *codec.Error) (bool, *codec.Error) {
	if !cl.answerNow(refusal(err)) {
		return cl.stall(r, buf, at), nil
	}
	cl.dropFromRun(r, at, n)
	cl.skipToSync = true
	return true, nil
}

// sendOpts say how send treats a message, beyond which servers get it.
type sendOpts uint8

const (
	// sendFresh: the message starts a new statement; a fan-out in flight must be over first.
	sendFresh sendOpts = 1 << iota
	// sendMirror: the servers run the same statement on the same rows (replicated tables, savepoints): their
	// answers are one answer to the client, and a Query of it goes to the first shard before the others.
	sendMirror
	// sendUnnamed: the client's held unnamed Parse goes in front of the message.
	sendUnnamed
	// sendNoJoin: the message runs nothing (a statement's Describe, Sync), so a server that gets it does not
	// join the client's transaction for it (a shard joins when a statement runs there).
	sendNoJoin
)

// with is o with flag added when on.
func (o sendOpts) with(flag sendOpts, on bool) sendOpts {
	if on {
		return o | flag
	}
	return o
}

// send forwards the message at buf[at:at+n] to the servers of mask, as opts say.
func (cl *client) send(r *run, buf []byte, at int, m codec.Message, n int, mask uint64, opts sendOpts) (bool, *codec.Error) {
	fresh := opts&sendFresh != 0
	if cl.readPools != nil && !cl.sh.reads {
		if !cl.leaveReplicas(mask) {
			return cl.stall(r, buf, at), nil // the replica answers first, then goes back to its pool
		}
		if m.Type == codec.Query || m.Type == codec.Execute || m.Type == codec.FunctionCall {
			cl.noteWrite(mask) // a statement runs there (a Describe or a Sync changes nothing)
		}
	}
	if ok := cl.ensureServers(r, buf, at, mask); !ok {
		return false, nil
	}
	busy := cl.busyMask()
	mg := cl.sh.merge
	if mg != nil && (busy != 0 || !fresh) {
		return cl.stall(r, buf, at), nil // a merged statement starts with nothing in flight
	}
	g := &cl.sh.group
	merging := mg != nil || g.active && g.plan != nil && g.members == mask && !fresh
	if bits.OnesCount64(mask) == 1 && !merging {
		s := cl.srvs[bits.TrailingZeros64(mask)]
		if busy&^mask != 0 || (s.fan != nil && busy != 0) {
			return cl.stall(r, buf, at), nil
		}
		if s.fan != nil {
			s.fan = nil
			cl.sh.group.active = false
		}
		cl.startRun(r, buf, at, s)
		rel := at - r.start
		cl.prepareServer(s, &r.sp, rel, opts)
		if opts&sendUnnamed != 0 && cl.sh.unnamed != nil {
			r.sp.insert(rel, cl.unnamedParse())
			s.expects.push(expectAdded(reqParse))
		}
		cl.srv = s
		return true, cl.message(&r.sp, m, rel, n)
	}
	if fresh || !g.active || g.members != mask {
		if busy != 0 {
			return cl.stall(r, buf, at), nil
		}
		g.start(mask, opts&sendMirror != 0)
		g.quiet = cl.quietMask(mask)
	}
	cl.startRun(r, buf, at, nil)
	r.s = nil
	msg := buf[at : at+n]
	g.copy, cl.sh.copyOut = cl.sh.copyOut, nil
	if mg != nil {
		g.plan, cl.sh.merge = mg, nil
		if cl.sh.mergeMsg != nil {
			msg, cl.sh.mergeMsg = cl.sh.mergeMsg, nil
			m, _, _ = codec.ReadMessage(msg, 0)
		}
	}
	if opts&sendMirror != 0 && m.Type == codec.Query && fresh {
		// A write of the same rows on every shard takes its locks on the first shard before the others, so
		// that two transactions writing a replicated row never wait for each other on different shards (a
		// deadlock no shard could see): the rest get the statement once the first one is through.
		first := lowestBit(mask)
		g.later = mask &^ first
		g.laterMsg = append(g.laterMsg[:0], msg...)
		mask = first
	}
	for m2 := mask; m2 != 0; m2 &= m2 - 1 {
		s := cl.srvs[bits.TrailingZeros64(m2)]
		if perr := cl.sendOne(s, g, m, msg, opts); perr != nil {
			return false, perr
		}
		if mg != nil && m.Type == codec.Bind && !s.gone() {
			// The merger needs the portal's columns and formats before its rows: ask for them.
			bm, _ := codec.ParseBind(m.Body)
			s.send(codec.AppendDescribe(cl.ls.synth[:0], codec.TargetPortal, string(bm.Portal)))
			s.expects.push(expectAdded(reqDescribe))
		}
	}
	return true, nil
}

// mergedBind returns the Bind to send for a portal whose rows pgshard merges, nil for the client's own: one
// that asks for a result format per column names the hidden columns' too (text).
func (cl *client) mergedBind(msg []byte, bm codec.BindMessage, hidden int) []byte {
	if hidden == 0 || bm.ResultFormats.Len() <= 1 {
		return nil
	}
	formats := bm.ResultFormats.Append(nil)
	for range hidden {
		formats = append(formats, 0)
	}
	return codec.AppendBind(nil, string(bm.Portal), string(bm.Statement), bm.ParamFormats.Append(nil),
		bm.AppendParams(nil), formats)
}

// statementPlan is the plan of the client's statement name ("" the unnamed one), nil when there is none.
func (cl *client) statementPlan(name []byte) *route.Plan {
	if len(name) == 0 {
		if cl.sh.unnamed == nil {
			return nil
		}
		if cl.sh.unnamedPl == nil {
			cl.sh.unnamedPl = cl.rt.Prepare(cl.sh.unnamedSQL)
		}
		return cl.sh.unnamedPl
	}
	st := cl.stmts[string(name)]
	if st == nil {
		return nil
	}
	return cl.planOf(st)
}

// unnamedParse is the client's held unnamed Parse as the servers get it: rewritten when pgshard merges its
// rows.
func (cl *client) unnamedParse() []byte {
	p := cl.statementPlan(nil)
	if p == nil || p.ShardSQL() == "" {
		return cl.sh.unnamed
	}
	m, _, err := codec.ReadMessage(cl.sh.unnamed, 0)
	if err != nil {
		return cl.sh.unnamed
	}
	pm, err := codec.ParseParse(m.Body)
	if err != nil {
		return cl.sh.unnamed
	}
	return codec.AppendParse(nil, "", p.ShardSQL(), pm.ParamTypes.Append(nil))
}

// sendOne writes one message of a fan-out to one of its servers (send's opts).
func (cl *client) sendOne(s *server, g *fanout, m codec.Message, msg []byte, opts sendOpts) *codec.Error {
	s.fan = g
	sp := splice{in: msg, scratch: &cl.ls.toServer}
	cl.prepareServer(s, &sp, 0, opts)
	if opts&sendUnnamed != 0 && cl.sh.unnamed != nil {
		sp.insert(0, cl.unnamedParse())
		s.expects.push(expectAdded(reqParse))
	}
	cl.srv = s
	if perr := cl.message(&sp, m, 0, len(msg)); perr != nil {
		return perr
	}
	if out := sp.result(len(msg)); len(out) > 0 && !s.gone() {
		s.send(out)
	}
	return nil
}

// sendLater sends a replicated write to the shards after the first, once the first is through (or drops it
// there when it failed on the first).
func (cl *client) sendLater() {
	g := &cl.sh.group
	if g.later == 0 || cl.busyMask() != 0 {
		return
	}
	later := g.later
	g.later = 0
	if g.errSent {
		// The first shard's ReadyForQuery was held back for the others: it is the last one now.
		g.active = false
		cl.out = codec.AppendReadyForQuery(cl.out, cl.txStatus())
		cl.flush()
		return
	}
	m, _, _ := codec.ReadMessage(g.laterMsg, 0)
	for m2 := later; m2 != 0; m2 &= m2 - 1 {
		if s := cl.srvs[bits.TrailingZeros64(m2)]; s != nil {
			if perr := cl.sendOne(s, g, m, g.laterMsg, 0); perr != nil {
				cl.fatal(perr)
				return
			}
		}
	}
}

// sendQuery sends a Query to the servers of mask, each its own text when the statement was split.
func (cl *client) sendQuery(r *run, buf []byte, at int, m codec.Message, n int, mask uint64, mirror bool, split []route.Piece) (bool, *codec.Error) {
	if len(split) == 0 {
		return cl.send(r, buf, at, m, n, mask, sendFresh.with(sendMirror, mirror))
	}
	cl.sh.pieceOf, _ = codec.ParseQuery(m.Body)
	defer func() { cl.sh.pieceOf = nil }()
	return cl.sendPieces(r, buf, at, mask, split, func(p route.Piece) (parse, msg []byte) {
		return nil, codec.AppendQuery(nil, p.SQL)
	})
}

// ensureServers checks out a server for every shard of mask the client lacks. False: it waits for one.
func (cl *client) ensureServers(r *run, buf []byte, at int, mask uint64) bool {
	for m := mask; m != 0; m &= m - 1 {
		i := bits.TrailingZeros64(m)
		if cl.srvs[i] != nil {
			continue
		}
		var wait bool
		if cl.pool, wait = cl.shardPool(i); wait {
			cl.waitForReplay()
		}
		if wait || !cl.acquire() {
			cl.startRun(r, buf, at, nil)
			r.s = nil
			cl.yieldIdleServers()
			return false
		}
	}
	return true
}

// yieldIdleServers gives back, while the client waits for another shard's server, the servers it holds but
// does not use. Clients that hold one shard's connections while they wait for another's deadlock when each holds
// what the other waits for (seen in the soak: sharded COPY and cross-shard reads next to TPC-B); outside a
// transaction block nothing ties a client to its idle servers, so it waits holding none. In a transaction (or
// pinned, or in session mode) it keeps them, and checkout_timeout bounds the wait.
func (cl *client) yieldIdleServers() {
	if cl.e.cfg.Pool.Mode == config.ModeSession || cl.sh.txOpen || cl.pins.any() || cl.sh.drive != nil {
		return
	}
	for _, s := range cl.srvs {
		if s != nil && s.quiet() && s.inUse() {
			cl.detachServer(s)
			s.release()
		}
	}
}

// prepareServer puts in front of the first message a server gets from the client what the server must do
// first: take the client's settings, and join its transaction.
func (cl *client) prepareServer(s *server, sp *splice, at int, opts sendOpts) {
	if s.fresh {
		s.fresh = false
		s.syncSettings(cl, sp, at)
	}
	bit := uint64(1) << s.shard
	if cl.sh.txOpen && cl.sh.txShards&bit == 0 && s.status == codec.TxIdle && opts&sendNoJoin == 0 {
		q := cl.sh.beginSQL
		for _, sp := range cl.sh.savepoints {
			q += "; SAVEPOINT " + quoteIdent(sp)
		}
		sp.insert(at, codec.AppendQuery(cl.ls.synth[:0], q))
		s.expects.push(expectOwn(keepNothing))
		cl.sh.txShards |= bit
	}
	if cl.sh.copyTx {
		sp.insert(at, codec.AppendQuery(cl.ls.synth[:0], "BEGIN"))
		s.expects.push(expectOwn(keepNothing))
	}
	if ci := cl.sh.copy; ci != nil && ci.catalog {
		ci.catalog, ci.catalogDue = false, true
		s.askCatalog(sp, at, ci.catalogQuery())
	}
}

// routeQuery routes a simple Query: transaction control and SET pgshard.* first, then the router.
func (cl *client) routeQuery(r *run, buf []byte, at int, m codec.Message, n int) (bool, *codec.Error) {
	q, err := codec.ParseQuery(m.Body)
	if err != nil {
		return false, codec.NewFatal(codec.SQLStateProtocolViolation, err.Error())
	}
	sql := string(q)
	if tc := txCommandOf(sql); tc.kind != txNone {
		return cl.routeTxCommand(r, buf, at, m, n, tc)
	}
	if cl.readPools != nil && cl.sh.txOpen && cl.sh.txShards == 0 && lex.SetsReadOnly(sql) {
		return cl.heldWithBegin(r, buf, at, n, sql)
	}
	d := cl.rt.Query(sql, cl.session())
	if d.Err != nil {
		return cl.answerLocal(r, buf, at, n, expectation{answers: reqQuery, handling: synthesized, err: d.Err})
	}
	if d.NeedKey != nil {
		return cl.lookUpKey(r, buf, at, d.NeedKey)
	}
	if !cl.warnFirst(r, buf, at, d) {
		return false, nil
	}
	if d.Gather != nil {
		return cl.gather(r, buf, at, d.Gather, d.Shards)
	}
	if d.Coordinated != "" {
		cl.coordinated(&d, 0)
	}
	mask := cl.inTxMask(d)
	if d.Copy != nil && cl.failedShards() == 0 {
		ok, perr := cl.startCopy(r, buf, at, m, n, d.Shards, d.Copy)
		if ok && perr == nil {
			cl.sentInTx(txNone, "", d.Shards, true)
		}
		return ok, perr
	}
	cl.sh.copy = nil
	if d.CopyOut != nil && bits.OnesCount64(mask) > 1 {
		cl.sh.copyOut = d.CopyOut
	}
	if d.Merge != nil && cl.failedShards() == 0 && bits.OnesCount64(mask) > 1 {
		cl.sh.merge = d.Merge
		if d.Merge.SQL != "" {
			cl.sh.mergeMsg = codec.AppendQuery(nil, d.Merge.SQL)
		}
	}
	if len(d.Split) > 0 && cl.failedShards() == 0 {
		mask = d.Shards
	} else {
		d.Split = nil
	}
	ok, perr := cl.sendQuery(r, buf, at, m, n, mask, d.Mirror, d.Split)
	if ok && perr == nil {
		cl.sentInTx(txNone, "", mask, d.Write)
		cl.sh.target = mask // a COPY FROM STDIN's data goes where the COPY went (portalMask)
	}
	return ok, perr
}

// copyingMask is the set of shards taking a COPY's data that pgshard passes through (not split: a COPY that one
// shard takes, or a replicated table's).
func (cl *client) copyingMask() uint64 {
	var m uint64
	for i, s := range cl.srvs {
		if s != nil && s.copyIn {
			m |= 1 << i
		}
	}
	return m
}

// answerLocal answers a whole Query itself (a CommandComplete or an error, then ReadyForQuery with the
// client's transaction status, or status when given).
func (cl *client) answerLocal(r *run, buf []byte, at, n int, e expectation) (bool, *codec.Error) {
	if e.status == 0 {
		e.status = cl.txStatus()
	}
	if !cl.answerNow(e) {
		return cl.stall(r, buf, at), nil
	}
	cl.dropFromRun(r, at, n)
	return true, nil
}

// Transaction commands pgshard handles itself.
type txKind uint8

const (
	txNone txKind = iota
	txBegin
	txEnd // COMMIT, END, ROLLBACK, ABORT
	txSavepoint
	txRelease
	txRollbackTo
	txSetShard  // SET [LOCAL] / RESET of pgshard.shard, pgshard.sharding_key or pgshard.cross_shard
	txShowShard // SHOW of one of them
)

// pgshardSetting says whether name is one of the settings pgshard keeps for a session of a sharded database.
func pgshardSetting(name string) bool {
	return name == "pgshard.shard" || name == "pgshard.sharding_key" || name == "pgshard.cross_shard"
}

type txCommand struct {
	kind     txKind
	rollback bool   // txEnd: ROLLBACK or ABORT
	chain    bool   // txEnd: AND CHAIN (a new transaction begins at once)
	name     string // the savepoint (as Postgres reads the name), or the pgshard setting
	value    string
	local    bool
	reset    bool
}

// txCommandOf is what pgshard handles itself in a sharded database's transaction, when sql is one of them:
// BEGIN, COMMIT and ROLLBACK, savepoints, SET and RESET of pgshard's routing settings. A transaction command
// with other statements in the same Query is routed as a whole.
func txCommandOf(sql string) txCommand {
	var tc txCommand
	switch st := lex.Classify(sql); st.Kind {
	case lex.StmtBegin:
		tc = txCommand{kind: txBegin}
	case lex.StmtCommit, lex.StmtRollback:
		tc = txCommand{kind: txEnd, rollback: st.Kind == lex.StmtRollback, chain: st.Chain}
	case lex.StmtSavepoint:
		tc = txCommand{kind: txSavepoint, name: st.Name}
	case lex.StmtRelease:
		tc = txCommand{kind: txRelease, name: st.Name}
	case lex.StmtRollbackTo:
		tc = txCommand{kind: txRollbackTo, name: st.Name}
	case lex.StmtSet, lex.StmtReset:
		if pgshardSetting(st.Name) {
			return txCommand{kind: txSetShard, name: st.Name, value: st.Value, local: st.Local, reset: st.Kind == lex.StmtReset}
		}
		return txCommand{}
	case lex.StmtShow:
		if pgshardSetting(st.Name) {
			return txCommand{kind: txShowShard, name: st.Name}
		}
		return txCommand{}
	default:
		return txCommand{}
	}
	if len(lex.Split(sql, nil)) != 1 {
		return txCommand{} // several statements: routed as a whole
	}
	return tc
}

// routeTxCommand handles BEGIN, COMMIT/ROLLBACK, savepoints and SET pgshard.*.
func (cl *client) routeTxCommand(r *run, buf []byte, at int, m codec.Message, n int, tc txCommand) (bool, *codec.Error) {
	sh := &cl.sh
	switch tc.kind {
	case txBegin:
		if sh.txOpen {
			break // Postgres warns that a transaction is already in progress: let a server say it
		}
		if ok, _ := cl.answerLocal(r, buf, at, n, expectation{answers: reqQuery, handling: synthesized, tag: "BEGIN", status: codec.TxActive}); !ok {
			return false, nil
		}
		q, _ := codec.ParseQuery(m.Body)
		sh.txOpen, sh.beginSQL = true, strings.TrimRight(strings.TrimSpace(string(q)), ";")
		return true, nil
	case txEnd:
		if !sh.txOpen {
			break
		}
		return cl.queryTxEnd(r, buf, at, m, n, tc)
	case txSavepoint, txRelease, txRollbackTo:
		if !sh.txOpen {
			break
		}
		if sh.txShards != 0 {
			if ok, perr := cl.send(r, buf, at, m, n, sh.txShards, sendMirror|sendFresh); !ok || perr != nil {
				return ok, perr
			}
		} else {
			tag := map[txKind]string{txSavepoint: "SAVEPOINT", txRelease: "RELEASE", txRollbackTo: "ROLLBACK"}[tc.kind]
			if ok, _ := cl.answerLocal(r, buf, at, n, expectation{answers: reqQuery, handling: synthesized, tag: tag}); !ok {
				return false, nil
			}
		}
		cl.trackSavepoint(tc)
		return true, nil
	case txSetShard:
		return cl.setShardSetting(r, buf, at, n, tc)
	case txShowShard:
		return cl.answerLocal(r, buf, at, n, expectation{answers: reqQuery, handling: synthesized, tag: "SHOW",
			raw: codec.AppendDataRowText(codec.AppendRowDescriptionText(nil, tc.name), []string{cl.shardSetting(tc.name)}, nil)})
	}
	q, _ := codec.ParseQuery(m.Body)
	d := cl.rt.Query(string(q), cl.session())
	if d.Err != nil {
		return cl.answerLocal(r, buf, at, n, expectation{answers: reqQuery, handling: synthesized, err: d.Err})
	}
	return cl.sendQuery(r, buf, at, m, n, cl.inTxMask(d), d.Mirror, nil)
}

// lookUpKey runs the catalog query of need on one shard (an INSERT without a column list: where is its key
// among the table's columns?) and holds the message until the answer is in (catalogAnswer); the message is
// then routed again, with the position (session). Asked for each such statement: see route/positional.go.
func (cl *client) lookUpKey(r *run, buf []byte, at int, need *route.KeyPosition) (bool, *codec.Error) {
	if cl.busyMask() != 0 {
		return cl.stall(r, buf, at), nil // first the answers in flight: the lookup's must be the only one
	}
	mask := cl.pickAny()
	if !cl.ensureServers(r, buf, at, mask) {
		return false, nil
	}
	s := cl.srvs[bits.TrailingZeros64(mask)]
	cl.startRun(r, buf, at, s)
	rel := at - r.start
	cl.prepareServer(s, &r.sp, rel, sendNoJoin)
	s.askCatalog(&r.sp, rel, need.Query)
	cl.sh.keyAt = &route.KeyPosition{Query: need.Query, At: route.NoTable}
	return cl.stall(r, buf, at), nil
}

// askCatalog inserts at offset at pgshard's own catalog query sql, whose one integer the client takes
// (catalogAnswer).
func (s *server) askCatalog(sp *splice, at int, sql string) {
	sp.insert(at, codec.AppendQuery(s.ls.synth[:0], sql))
	s.expects.push(expectOwn(keepCatalog))
}

// catalogAnswer takes the one integer of a catalog query pgshard ran for the client: the key's position for
// its sharded COPY, or for its INSERT without a column list.
func (cl *client) catalogAnswer(v int) {
	switch {
	case cl.sh.copy != nil:
		cl.sh.copy.keyField = v
	case cl.sh.keyAt != nil:
		cl.sh.keyAt.At = v
	}
}

// warnFirst sends the decision's WARNING (a scatter under pgshard.cross_shard = warn) ahead of the statement's
// answers, once per message however often it is routed again. False when the client must first wait for
// answers in flight on several shards (it stalls; the message is routed again after).
func (cl *client) warnFirst(r *run, buf []byte, at int, d route.Decision) bool {
	if d.Warning == nil || cl.sh.warned {
		return true
	}
	if !cl.answerNow(rawAnswer(codec.AppendNoticeResponse(nil, d.Warning))) {
		return cl.stall(r, buf, at)
	}
	cl.sh.warned = true
	return true
}

// trackSavepoint keeps the transaction's savepoints, for shards that join it later.
func (cl *client) trackSavepoint(tc txCommand) {
	sps := cl.sh.savepoints
	switch tc.kind {
	case txSavepoint:
		cl.sh.savepoints = append(sps, tc.name)
	case txRelease, txRollbackTo:
		for i := len(sps) - 1; i >= 0; i-- {
			if sps[i] == tc.name {
				if tc.kind == txRelease {
					cl.sh.savepoints = sps[:i]
				} else {
					cl.sh.savepoints = sps[:i+1]
				}
				return
			}
		}
	}
}

// shardSetting is the value of one of pgshard's own settings in the session, as SHOW prints it ("" unset).
func (cl *client) shardSetting(name string) string {
	rs := cl.session()
	switch name {
	case "pgshard.shard":
		if rs.Shard < 0 {
			return ""
		}
		return strconv.Itoa(rs.Shard)
	case "pgshard.cross_shard":
		return rs.CrossShard.String()
	}
	return rs.Key
}

// setShardSetting handles SET/RESET pgshard.shard, pgshard.sharding_key and pgshard.cross_shard: the proxy's
// own settings.
func (cl *client) setShardSetting(r *run, buf []byte, at, n int, tc txCommand) (bool, *codec.Error) {
	rs := cl.rs
	if tc.local {
		if !cl.sh.txOpen {
			// Postgres only warns: SET LOCAL outside a transaction block has no effect.
			return cl.answerLocal(r, buf, at, n, expectation{answers: reqQuery, handling: synthesized, tag: "SET"})
		}
		rs = cl.session()
	}
	value := strings.TrimSpace(tc.value)
	if len(value) >= 2 && value[0] == '\'' && value[len(value)-1] == '\'' {
		value = strings.ReplaceAll(value[1:len(value)-1], "''", "'")
	}
	tag := "SET"
	if tc.reset {
		tag, value = "RESET", "default"
	}
	if err := cl.applyShardSetting(&rs, tc.name, value); err != nil {
		return cl.answerLocal(r, buf, at, n, expectation{answers: reqQuery, handling: synthesized, err: err})
	}
	if tc.local {
		cl.sh.local = &rs
	} else {
		cl.rs = rs
	}
	return cl.answerLocal(r, buf, at, n, expectation{answers: reqQuery, handling: synthesized, tag: tag})
}

// applyShardSetting sets pgshard's own setting name to value in rs ("default" is its value at login: the
// database's cross_shard, no shard, no key).
func (cl *client) applyShardSetting(rs *route.Session, name, value string) *codec.Error {
	if strings.EqualFold(value, "default") {
		switch name {
		case "pgshard.shard":
			rs.Shard = -1
		case "pgshard.cross_shard":
			rs.CrossShard = cl.db.crossShard
		default:
			rs.Key, rs.HasKey = "", false
		}
		return nil
	}
	switch name {
	case "pgshard.cross_shard":
		cs, ok := route.ParseCrossShard(value)
		if !ok {
			return codec.NewError(codec.SQLStateInvalidParameterValue, `invalid value for pgshard.cross_shard: "`+value+`"`).
				WithHint("the values are allow, warn and deny")
		}
		rs.CrossShard = cs
	case "pgshard.shard":
		i, err := strconv.Atoi(value)
		if err != nil || i < 0 || i >= len(cl.srvs) {
			return codec.NewError(codec.SQLStateInvalidParameterValue, `invalid value for pgshard.shard: "`+value+`"`).
				WithHint("database " + cl.db.db.Name + " has shards 0 to " + strconv.Itoa(len(cl.srvs)-1))
		}
		rs.Shard = i
	default:
		rs.Key, rs.HasKey = value, true
	}
	return nil
}
