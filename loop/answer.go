package loop

import (
	"github.com/pgshard/pgshard/codec"
	"github.com/pgshard/pgshard/merge"
)

// A server's answers, one message at a time. Every message a server sends answers the expectation at the
// front of its queue (expects), which says what pgshard sent and for whom: answer pops the expectation when
// the message completes it, decides whether the client sees the message (hidden: the answers to pgshard's
// own queries), and lets the fan-out merge it when the statement ran on several shards. The per-message work
// is in one method per kind of message; deliver then puts the message, changed or not, into the client's
// output, followed by the answers pgshard gives itself that are due next (emitSynth).

// reply is one server message on its way through answer.
type reply struct {
	msg     []byte
	at      int          // its offset in the bytes read
	head    *expectation // what it answers (nil: nothing is expected); pop zeroes it
	hide    bool         // the client did not ask for it
	copyEnd bool         // it answers pgshard's end of the transaction around a sharded COPY (keepCopyEnd)
	renamed []byte       // an error that named the statement by pgshard's name, with the client's name instead
}

// is reports whether the message answers a request of one of reqs that pgshard sent, handled as h.
func (r *reply) is(h handling, reqs ...request) bool {
	if r.head == nil || r.head.handling != h {
		return false
	}
	for _, q := range reqs {
		if r.head.answers == q {
			return true
		}
	}
	return false
}

// hidden says whether every answer to e is pgshard's own business, never the client's (nil: none expected).
func (e *expectation) hidden() bool {
	return e != nil && e.handling == own
}

// keeps says whether e is one of pgshard's own queries whose answer is kept for p.
func (e *expectation) keeps(p purpose) bool {
	return e != nil && e.handling == own && e.keep == p
}

// untilReady says whether e takes every answer up to a ReadyForQuery (a simple Query, pgshard's own
// queries) rather than one message of an extended-protocol batch.
func (e *expectation) untilReady() bool {
	return e != nil && e.answers == reqQuery
}

// answer accounts for one complete server message msg at offset at: it pops what it answers, hides it when
// the client did not ask for it, and adds the answers pgshard gives itself that are due next. False means
// the server said something that fits nothing we sent.
func (s *server) answer(sp *splice, msg []byte, at int) bool {
	r := reply{msg: msg, at: at, head: s.expects.front()}
	r.hide, r.copyEnd = r.head.hidden(), r.head.keeps(keepCopyEnd)
	switch msg[0] {
	case codec.DataRow:
		if r.head.keeps(keepCatalog) && s.client != nil {
			s.client.catalogAnswer(catalogInt(msg))
		}
		if r.head.keeps(keepWriteLSN) && s.client != nil {
			s.client.wroteUpTo(s.shard, msg)
		}
		if r.head.keeps(keepGather) && s.client != nil && s.client.sh.gathered != nil {
			s.client.sh.gathered.row(msg)
		}
	case codec.ParseComplete, codec.BindComplete, codec.CloseComplete:
		if !s.completed(&r) {
			return false
		}
	case codec.CopyInResponse:
		if r.is(forward, reqQuery, reqExecute) {
			s.copyStarted(r.head.copyMsgs)
		}
	case codec.ParameterDescription:
		if r.is(forward, reqDescribe) && r.head.st != nil {
			s.ls.described = append(s.ls.described[:0], msg...)
		}
	case codec.RowDescription, codec.NoData:
		if s.described(sp, &r) {
			return true
		}
	case codec.CommandComplete, codec.EmptyQueryResponse, codec.PortalSuspended:
		s.commandEnded(&r)
	case codec.ErrorResponse:
		s.failed(&r)
	case codec.ReadyForQuery:
		if !s.ready(&r) {
			return false
		}
	case codec.ParameterStatus:
		s.parameterStatus(&r)
	}
	s.deliver(sp, &r)
	return true
}

// completed accounts for a ParseComplete, BindComplete or CloseComplete, each the whole answer to one
// message of a batch: a Parse or Close pgshard added is hidden.
func (s *server) completed(r *reply) bool {
	req := reqClose
	switch r.msg[0] {
	case codec.ParseComplete:
		req = reqParse
	case codec.BindComplete:
		req = reqBind
	}
	if !r.is(forward, req) && !r.is(added, req) {
		return false
	}
	r.hide = r.head.handling == added
	if req == reqParse && r.head.st != nil {
		r.head.st.valid.Store(true)
	}
	s.expects.pop()
	return true
}

// described accounts for a RowDescription or NoData. True: it was delivered whole already (a portal's
// description pgshard asked for the merger, or a statement's description turned into the client's columns).
func (s *server) described(sp *splice, r *reply) bool {
	end := r.at + len(r.msg)
	if r.is(added, reqDescribe) {
		s.expects.pop()
		sp.drop(r.at, end)
		if s.fan != nil && s.fan.active && r.msg[0] == codec.RowDescription {
			if out := s.fan.describe(r.msg, 1<<s.shard); out != nil {
				sp.insert(end, out)
			}
		}
		s.emitSynth(sp, end)
		return true
	}
	if !r.is(forward, reqDescribe) {
		return false
	}
	rd := s.clientRowDescription(r)
	s.keepDescription(r.head.st, r.msg)
	s.expects.pop()
	if rd == nil {
		return false
	}
	sp.drop(r.at, end)
	sp.insert(end, rd)
	s.emitSynth(sp, end)
	return true
}

// clientRowDescription is the RowDescription the client sees of a statement the shards know rewritten (its
// own columns), nil when the client sees the server's.
func (s *server) clientRowDescription(r *reply) []byte {
	if r.head.plan == nil || r.msg[0] != codec.RowDescription || s.client == nil {
		return nil
	}
	spec := r.head.plan.ShardSpec(rowDescColumns(r.msg))
	if spec == nil {
		return nil
	}
	rd, err := merge.ClientRowDescription(spec, s.ls.synth[:0], r.msg)
	if err != nil {
		return nil
	}
	return rd
}

// keepDescription caches a statement's description (the ParameterDescription before it, and desc) so that
// pgshard answers the next Describe of it itself.
func (s *server) keepDescription(st *stmt, desc []byte) {
	if st != nil && st.describe.Load() == nil && len(s.ls.described) > 0 {
		d := append(append([]byte(nil), s.ls.described...), desc...)
		st.describe.Store(&d)
	}
	s.ls.described = s.ls.described[:0]
}

// commandEnded accounts for the end of a statement's execution (CommandComplete, EmptyQueryResponse,
// PortalSuspended): what it did to the session, and an Execute's end.
func (s *server) commandEnded(r *reply) {
	s.copyIn = false // a COPY taking data ends with its CommandComplete (its data may have come from pgshard: copyIn.go)
	head := r.head
	if cl := s.client; cl != nil && r.msg[0] == codec.CommandComplete && head != nil &&
		(len(head.sets) > 0 || len(head.sqlOps) > 0 || cl.tx.active) {
		if tag, err := codec.ParseCommandComplete(r.msg[codec.HeaderLen:]); err == nil {
			s.commandDone(cl, head, string(tag))
		}
	}
	if r.is(forward, reqExecute) {
		s.expects.pop()
	}
}

// failed accounts for an ErrorResponse: the batch it cuts short, the session state it undoes, and whose
// error it is (the client's, or one of pgshard's own queries').
func (s *server) failed(r *reply) {
	s.copyIn = false // a COPY taking data ends with its error; the server reads Syncs again
	cl := s.client
	if r.is(forward, reqBind, reqDescribe) && r.head.st != nil && cl != nil {
		r.renamed = clientNamed(r.msg, r.head.st, cl.stmts)
	} else if r.is(forward, reqQuery) && cl != nil && cl.mapped && len(cl.stmts) > 0 {
		r.renamed = protocolNameHint(r.msg, cl.stmts)
	}
	if r.is(forward, reqBind) && r.head.st != nil && staleResultType(r.msg) {
		s.e.registry.forget() // the text means other columns now: the next Parse of it prepares it afresh
	}
	if r.is(forward, reqQuery) {
		r.head.sqlOps = nil // the query's PREPAREs and DEALLOCATEs from the failed one on did not run
	}
	if r.head != nil && !r.head.untilReady() {
		s.skipBatch()
	}
	if !r.hide && cl != nil {
		s.rolledBack = true // outside a transaction block the statement's implicit transaction is undone
		s.fatalSent = s.fatalSent || isFatal(r.msg)
		if cl.sh.copy != nil && s.fan != nil && s.fan.active {
			cl.sh.copy.shardFailed(s.shard)
		}
	}
	if r.hide {
		s.ownQueryFailed(r)
	}
}

// skipBatch follows an error in an extended-protocol batch: the server ignores everything up to the next
// Sync, and so does pgshard (a statement whose Parse never ran is not on the server after all).
func (s *server) skipBatch() {
	cl := s.client
	for h := s.expects.front(); h != nil && h.answers != reqSync; h = s.expects.front() {
		if h.st != nil && h.answers == reqParse && h.handling != synthesized {
			s.stmts.remove(h.st)
		}
		if cl != nil && h.answers == reqParse && h.handling != added && h.name != "" && cl.stmts[h.name] == h.st {
			cl.dropStmt(h.name) // a Parse the server refused or skipped makes no statement
		}
		s.expects.pop()
	}
	if s.expects.front() == nil && cl != nil {
		// No Sync sent yet: what the client sends up to its Sync is ignored too (by pgshard now, as the server
		// would), so that no other shard runs what follows the error.
		cl.skipToSync = true
	}
}

// ownQueryFailed keeps the error of one of pgshard's own queries where its outcome is wanted, and otherwise
// marks the connection as one pgshard cannot vouch for.
func (s *server) ownQueryFailed(r *reply) {
	switch {
	case r.head.keeps(keepDrive):
		if cl := s.client; cl != nil && cl.sh.drive != nil {
			cl.sh.drive.failedOn(s.shard, r.msg)
		}
		return
	case r.head.keeps(keepGather):
		// The client's SELECT failed on this shard (a missing table, a privilege, its transaction already
		// failed): the client gets the error, the connection is as it would be after the client's own query.
		if cl := s.client; cl != nil && cl.sh.gathered != nil {
			cl.sh.gathered.failedOn(r.msg)
		}
		return
	case r.copyEnd:
		if g := s.fan; g != nil && g.copyErr == nil {
			g.copyErr = append([]byte(nil), r.msg...)
		}
		return
	case r.head.keeps(keepReplay) && s.replayErr == nil:
		if e, err := codec.ParseError(r.msg[codec.HeaderLen:]); err == nil {
			s.replayErr = e
		} else {
			s.replayErr = codec.NewError(codec.SQLStateProtocolViolation, "malformed error from the server")
		}
		s.replayCleanupFailed = r.head.cleanup
		s.noReuse = true
		return
	}
	// pgshard cannot vouch for the state of a connection on which its own bookkeeping failed (unless only
	// because the client's transaction had failed already): it is closed once idle, never pooled.
	s.e.log.Warn("pgshard's own query failed on a server", "pool", s.pc.Pool().Name, "error", errorText(r.msg))
	if e, err := codec.ParseError(r.msg[codec.HeaderLen:]); err != nil || e.Code != codec.SQLStateInFailedSQLTransaction {
		s.noReuse = true
	}
}

// ready accounts for a ReadyForQuery: the end of a Query or a batch, and the transaction status after it.
func (s *server) ready(r *reply) bool {
	head := r.head
	if head == nil || head.answers != reqSync && !head.untilReady() {
		return false
	}
	if len(r.msg) == 6 {
		s.status = r.msg[5]
	}
	if head.keeps(keepReplay) {
		s.replayAnswered = true
	}
	if cl := s.client; head.keeps(keepDrive) && cl != nil && cl.sh.drive != nil {
		cl.sh.drive.answered(s.shard)
	}
	if cl := s.client; cl != nil {
		cl.clock.readies++
		if !r.hide && s.status == codec.TxIdle {
			cl.transactionEnded(s, s.rolledBack)
		}
	}
	if !r.hide {
		s.rolledBack = false
	}
	if head.keeps(keepCatalog) && s.client != nil && s.client.sh.copy != nil {
		s.client.sh.copy.catalogDue = false // the client, if it waits, goes on once these bytes are through
	}
	s.expects.pop()
	return true
}

// parameterStatus keeps what the server reports of its settings, and tells the client of a change it made.
func (s *server) parameterStatus(r *reply) {
	name, value, err := codec.ParseParameterStatus(r.msg[codec.HeaderLen:])
	if err != nil {
		return
	}
	s.backend.Params[name] = value
	if cl := s.client; cl != nil && !r.hide && cl.rt == nil {
		cl.reportedChange(s, name, value)
	}
}

// deliver puts the message into the client's output as answer decided: dropped when hidden, through the
// fan-out when several shards answer, renamed, or as it came; then the answers pgshard gives itself that are
// due.
func (s *server) deliver(sp *splice, r *reply) {
	typ, msg, end := r.msg[0], r.msg, r.at+len(r.msg)
	switch g := s.fan; {
	case r.hide || s.client == nil:
		sp.drop(r.at, end)
		if r.copyEnd && typ == codec.ReadyForQuery && s.client != nil {
			if out := s.client.copyEnded(g); len(out) > 0 {
				sp.insert(end, out)
			}
		}
	case g != nil && g.active && typ == codec.DataRow && g.plan != nil && g.mg != nil && !g.errSent:
		// A merged row: the rows the merger releases go straight into the client's output.
		sp.drop(r.at, end)
		sp.setTail(g.mergedRow(sp.tail(end), msg, 1<<s.shard))
	case g != nil && g.active:
		if r.renamed != nil {
			msg = r.renamed
		}
		if pass, out := g.merge(msg, s.ls.synth[:0], 1<<s.shard); !pass {
			sp.drop(r.at, end)
			if len(out) > 0 {
				sp.insert(end, out)
			}
		} else if r.renamed != nil {
			sp.drop(r.at, end)
			sp.insert(end, r.renamed)
		}
		if typ == codec.ReadyForQuery && g.copyTx && !g.active && s.client != nil {
			s.client.endCopyTx(g)
		}
	case r.renamed != nil:
		sp.drop(r.at, end)
		sp.insert(end, r.renamed)
	}
	if typ == codec.ReadyForQuery && s.client != nil && s.client.rt != nil && !r.hide && (s.fan == nil || !s.fan.copyTx) {
		s.client.noteStatus(s)
	}
	s.emitSynth(sp, end)
}
