package loop

import (
	"bytes"
	"math/bits"
	"strconv"

	"github.com/pgshard/pgshard/codec"
	"github.com/pgshard/pgshard/merge"
	"github.com/pgshard/pgshard/route"
)

// fanout merges the answers of several servers running the same statement (one Query, or one portal from
// Bind to Execute and its Sync) into what one server would have answered: each kind of one-off answer
// (BindComplete, RowDescription, CopyInResponse, ...) once, rows as they arrive, one CommandComplete with the
// shards' counts summed (or, for a statement that did the same on every shard — a replicated table, DDL —
// the first shard's), the first error only (and nothing of the statement after it), one ReadyForQuery.
type fanout struct {
	active   bool
	members  uint64 // the shards taking part
	k        int
	mirror   bool   // every shard did the same thing: report one shard's count, not the sum
	seen     oneOff // one-off answers already passed on
	errSent  bool
	done     int    // CommandComplete, EmptyQueryResponse or PortalSuspended received
	rows     uint64 // their counts, summed
	tag      []byte // the first CommandComplete's tag
	empty    bool
	suspend  bool
	copyIn   int
	copyDone int
	ready    int
	status   byte
	rowsFrom uint64 // mirror: the shard whose rows are passed on
	later    uint64 // shards a replicated write goes to once the first shard is through
	laterMsg []byte

	// A sharded COPY FROM STDIN outside a transaction block runs in a transaction of pgshard's own on each
	// shard (copyin.go): its CommandComplete is held until every shard committed, or rolled back after an error.
	copyTx    bool
	copyEnded int    // shards whose COMMIT or ROLLBACK was answered
	copyHeld  []byte // the COPY's CommandComplete
	copyErr   []byte // the first error of a COMMIT

	// Cancelling shards once the answer is decided (cancel.go).
	gen       uint64 // counts the fan-outs of the client
	ended     uint64 // shards whose statement ended (CommandComplete, EmptyQueryResponse, PortalSuspended, ErrorResponse)
	cancelled uint64 // shards pgshard sent a CancelRequest
	quiet     uint64 // shards that may be cancelled (quietMask when the fan-out started)
	held      uint64 // shards whose servers are parked while the merger holds many of their rows (wakeHeld)

	// A statement whose rows the proxy merges (ORDER BY, LIMIT, aggregates, ...): how, and the merger once
	// the shards' RowDescriptions are in.
	plan  *route.Merge
	copy  *route.CopyOut // a COPY TO STDOUT: one header (and, binary, one trailer) for all shards
	began uint64         // COPY TO: shards whose first CopyData came
	mg    *merge.Merger
	descs int    // RowDescriptions given to the merger (or shards cancelled before they sent one)
	descd uint64 // the shards counted in descs
	out   []byte // merged rows, reused
}

func (g *fanout) start(mask uint64, mirror bool) {
	*g = fanout{active: true, members: mask, k: bits.OnesCount64(mask), mirror: mirror, tag: g.tag[:0], status: codec.TxIdle,
		laterMsg: g.laterMsg[:0], mg: g.mg, out: g.out[:0], copyHeld: g.copyHeld[:0], gen: g.gen + 1}
}

// index is a member shard's number among the members (the merger's shard numbers).
func (g *fanout) index(shard uint64) int { return bits.OnesCount64(g.members & (shard - 1)) }

// describe gives the merger one shard's RowDescription of the merged rows (a Query's, or the one pgshard asked
// for with a hidden Describe of the portal). It returns an error to send the client instead of rows, if any.
func (g *fanout) describe(msg []byte, shard uint64) []byte {
	if g.plan == nil || g.errSent {
		return nil
	}
	if g.descs == 0 {
		spec := g.plan.Spec(rowDescColumns(msg))
		if g.mg == nil {
			g.mg = merge.New(spec, g.k, g.plan.Args)
		} else {
			g.mg.Reset(spec, g.k, g.plan.Args)
		}
	}
	g.descs++
	g.descd |= shard
	if err := g.mg.Describe(g.index(shard), msg); err != nil {
		return g.fail(err)
	}
	return nil
}

// fail ends the merged statement with err: the client gets it in place of the rest.
func (g *fanout) fail(err error) []byte {
	g.errSent = true
	ce, ok := err.(*codec.Error)
	if !ok {
		ce = codec.NewError(codec.SQLStateInternalError, "merging the shards' rows: "+err.Error())
	}
	return codec.AppendErrorResponse(g.out[:0], ce)
}

// merged passes on a merged statement's messages: the client's RowDescription once all shards described
// theirs, rows as the merger releases them, and the count of rows it sent. pass/out as for merge.
func (g *fanout) merged(msg []byte, shard uint64) (bool, []byte, bool) {
	switch msg[0] {
	case codec.RowDescription:
		if g.descs < g.k {
			if out := g.describe(msg, shard); out != nil {
				return false, out, true
			}
			if g.descs < g.k || g.errSent {
				return false, nil, true
			}
			// Rows that came before the last shard's description go out after the client's.
			return false, g.emit(g.mg.RowDescription(g.out[:0])), true
		}
		// The client's own Describe of the portal, after pgshard's hidden one: the same, once.
		if g.seen&seenRowDescription != 0 || g.errSent {
			return false, nil, true
		}
		g.seen |= seenRowDescription
		return false, g.mg.RowDescription(g.out[:0]), true
	case codec.DataRow:
		if g.errSent || g.mg == nil {
			return false, nil, true
		}
		if err := g.mg.Row(g.index(shard), msg); err != nil {
			return false, g.fail(err), true
		}
		return false, g.emit(g.out[:0]), true
	case codec.CommandComplete:
		if g.errSent || g.mg == nil {
			return false, nil, false // counted as usual
		}
		return false, g.endMerged(shard, g.out[:0]), true
	case codec.ErrorResponse:
		if g.cancelled&shard != 0 && !g.errSent && g.mg != nil {
			// A shard cancelled once the LIMIT was satisfied: its part is over, as with a CommandComplete.
			// Cancelled before it described its rows, it is not waited for: the others' description is the
			// client's.
			out := g.out[:0]
			if g.descd&shard == 0 && g.descs < g.k {
				g.descd |= shard
				if g.descs++; g.descs == g.k {
					out = g.mg.RowDescription(out)
				}
			}
			return false, g.endMerged(shard, out), true
		}
	}
	return false, nil, false
}

// endMerged ends shard's part of a merged statement: appended to out, the rows the merger releases now, and
// once every shard is through, the client's CommandComplete.
func (g *fanout) endMerged(shard uint64, out []byte) []byte {
	g.mg.End(g.index(shard))
	out = g.emit(out)
	if g.done++; g.done < g.k || g.errSent {
		return out
	}
	out = codec.AppendCommandComplete(out, "SELECT "+strconv.FormatUint(g.mg.Rows(), 10))
	g.out = out[:0]
	return out
}

// mergedRow is merged for a DataRow of shard, appending what the client gets to dst (the output being built:
// the released rows are written there at once, not through g.out).
func (g *fanout) mergedRow(dst, msg []byte, shard uint64) []byte {
	if err := g.mg.Row(g.index(shard), msg); err != nil {
		return append(dst, g.fail(err)...)
	}
	if g.descs < g.k {
		return dst
	}
	out, err := g.mg.Emit(dst)
	if err != nil {
		return append(dst, g.fail(err)...)
	}
	return out
}

// emit appends to out the rows the merger releases, once the client has its RowDescription (or the error
// that ends the statement).
func (g *fanout) emit(out []byte) []byte {
	if g.descs < g.k {
		return out
	}
	out, err := g.mg.Emit(out)
	if err != nil {
		return g.fail(err)
	}
	g.out = out[:0]
	return out
}

// binaryTrailer ends a binary COPY file; binarySignature starts one (then flags and a header extension).
var (
	binaryTrailer   = []byte{0xff, 0xff}
	binarySignature = []byte("PGCOPY\n\xff\r\n\x00")
)

// copyData concatenates the shards' COPY TO outputs: the header line (HEADER) or the binary file header of
// the first shard to send, the others' left out; binary trailers are held for one at the end.
func (g *fanout) copyData(msg, scratch []byte, shard uint64) (bool, []byte) {
	first := g.began&shard == 0
	g.began |= shard
	body := msg[codec.HeaderLen:]
	if g.copy.Binary {
		if len(body) == 2 && body[0] == 0xff && body[1] == 0xff {
			return false, nil
		}
		if first && g.began != shard && len(body) >= 19 && bytes.HasPrefix(body, binarySignature) {
			ext := int(body[15])<<24 | int(body[16])<<16 | int(body[17])<<8 | int(body[18])
			if rest := body[min(19+ext, len(body)):]; len(rest) > 0 {
				return false, codec.AppendCopyData(scratch, rest)
			}
			return false, nil
		}
		return true, nil
	}
	if first && g.copy.Header && g.began != shard {
		return false, nil // another shard's header line
	}
	return true, nil
}

// holds reports whether the merger holds so many rows of shard that its server should wait.
func (g *fanout) holds(shard uint64) bool {
	return g.active && g.mg != nil && g.plan != nil && g.mg.Queued(g.index(shard)) > maxQueuedRows
}

// maxQueuedRows is how many rows of one shard the merger may hold before that shard's server is parked (so a
// fast shard cannot fill the proxy's memory while a slow one holds the merge back).
const maxQueuedRows = 1024

// rowDescColumns is the column count of a RowDescription message.
func rowDescColumns(msg []byte) int {
	if len(msg) < codec.HeaderLen+2 {
		return 0
	}
	return int(msg[codec.HeaderLen])<<8 | int(msg[codec.HeaderLen+1])
}

// oneOff is a set of the one-off answers a fan-out passed on already (fanout.seen): each kind once, whichever
// shard sends it first.
type oneOff uint32

const (
	seenParseComplete oneOff = 1 << iota
	seenBindComplete
	seenCloseComplete
	seenParameterDescription
	seenRowDescription
	seenNoData
	seenCopyOutResponse
)

// onceBit gives the one-off answers their bit in seen; 0 for the other messages.
func onceBit(typ byte) oneOff {
	switch typ {
	case codec.ParseComplete:
		return seenParseComplete
	case codec.BindComplete:
		return seenBindComplete
	case codec.CloseComplete:
		return seenCloseComplete
	case codec.ParameterDescription:
		return seenParameterDescription
	case codec.RowDescription:
		return seenRowDescription
	case codec.NoData:
		return seenNoData
	case codec.CopyOutResponse:
		return seenCopyOutResponse
	}
	return 0
}

// merge decides what becomes of one server's message msg: pass it on (true), or drop it and pass out instead
// (out may be empty). scratch is where out is built.
func (g *fanout) merge(msg []byte, scratch []byte, shard uint64) (bool, []byte) {
	typ := msg[0]
	if typ == codec.ErrorResponse && g.cancelled&shard != 0 && g.ended&shard != 0 {
		return false, nil // pgshard's cancel landed after the shard's statement was through: nothing to end
	}
	switch typ {
	case codec.CommandComplete, codec.EmptyQueryResponse, codec.PortalSuspended, codec.ErrorResponse:
		g.ended |= shard
	}
	if g.plan != nil {
		if pass, out, done := g.merged(msg, shard); done {
			return pass, out
		}
	}
	switch typ {
	case codec.CopyData:
		if g.copy != nil && !g.errSent {
			return g.copyData(msg, scratch, shard)
		}
		fallthrough
	case codec.DataRow:
		if g.mirror {
			// Every shard returns the same rows (RETURNING of a replicated write): one shard's are the answer.
			if g.rowsFrom == 0 {
				g.rowsFrom = shard
			}
			return !g.errSent && g.rowsFrom == shard, nil
		}
		return !g.errSent, nil
	case codec.ErrorResponse:
		if g.errSent {
			return false, nil
		}
		g.errSent = true
		return true, nil
	case codec.CommandComplete, codec.EmptyQueryResponse, codec.PortalSuspended:
		g.done++
		return g.statementEnded(msg, scratch)
	case codec.CopyInResponse:
		// Passed on once every shard is ready for the data (pgshard's catalog query is answered by then).
		g.copyIn++
		if g.copyIn < g.k || g.errSent {
			return false, nil
		}
		return true, nil
	case codec.CopyDone:
		g.copyDone++
		if g.copyDone < g.k || g.errSent {
			return false, nil
		}
		if g.copy != nil && g.copy.Binary {
			scratch = codec.AppendCopyData(scratch, binaryTrailer)
		}
		return false, codec.AppendEmpty(scratch, codec.CopyDone)
	case codec.ReadyForQuery:
		return g.readyOn(msg, scratch)
	}
	if b := onceBit(typ); b != 0 {
		if g.seen&b != 0 || g.errSent {
			return false, nil
		}
		g.seen |= b
	}
	return true, nil // notices, parameter status, notifications, ...
}

// statementEnded merges the shards' ends of a statement (CommandComplete, EmptyQueryResponse, PortalSuspended)
// into one, once the last shard's is in: the first tag with the rows of all (of one, mirrored).
func (g *fanout) statementEnded(msg []byte, scratch []byte) (bool, []byte) {
	switch msg[0] {
	case codec.CommandComplete:
		if tag, err := codec.ParseCommandComplete(msg[codec.HeaderLen:]); err == nil {
			if g.done == 1 || len(g.tag) == 0 {
				g.tag = append(g.tag[:0], tag...)
			}
			if i := bytes.LastIndexByte(tag, ' '); i >= 0 {
				if n, err := strconv.ParseUint(string(tag[i+1:]), 10, 64); err == nil {
					if g.mirror {
						g.rows = max(g.rows, n)
					} else {
						g.rows += n
					}
				}
			}
		}
	case codec.EmptyQueryResponse:
		g.empty = true
	case codec.PortalSuspended:
		g.suspend = true
	}
	if g.done < g.k || g.errSent {
		return false, nil
	}
	var out []byte
	switch {
	case g.suspend:
		out = codec.AppendEmpty(scratch, codec.PortalSuspended)
	case len(g.tag) > 0:
		tag := g.tag
		if i := bytes.LastIndexByte(tag, ' '); i >= 0 {
			if _, err := strconv.ParseUint(string(tag[i+1:]), 10, 64); err == nil {
				tag = strconv.AppendUint(tag[:i+1], g.rows, 10)
			}
		}
		out = codec.AppendCommandComplete(scratch, string(tag))
	default:
		out = codec.AppendEmpty(scratch, codec.EmptyQueryResponse)
	}
	if g.copyTx {
		g.copyHeld = append(g.copyHeld[:0], out...) // sent once every shard committed
		return false, nil
	}
	return false, out
}

// readyOn merges the shards' ReadyForQuery into one, once the last is in: failed if one failed, else in a
// transaction if one is.
func (g *fanout) readyOn(msg []byte, scratch []byte) (bool, []byte) {
	g.ready++
	if len(msg) == 6 {
		switch s := msg[5]; {
		case s == codec.TxFailed, s == codec.TxActive && g.status == codec.TxIdle:
			g.status = s
		}
	}
	if g.ready < g.k {
		return false, nil
	}
	g.active = false
	if g.copyTx {
		return false, nil // the end of pgshard's transaction on the shards comes first (copyEnd)
	}
	return false, codec.AppendReadyForQuery(scratch, g.status)
}
