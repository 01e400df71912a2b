package loop

import (
	"math/bits"
	"strconv"

	"github.com/pgshard/pgshard/codec"
	"github.com/pgshard/pgshard/route"
)

// The coordinator step's two messages (route/coordinate.go says what the step is for). A cross-shard SELECT
// that no merge computes is routed to a route.Gather: the client's message waits while every shard runs the
// gather query as pgshard's own (in the client's transaction, when it has one, so that its writes are seen),
// and pgshard keeps each row, a table's row as text, as one element of that table's array literal. Once every
// shard has answered, the message is routed again with those literals (route.Session.Gathered): the router
// returns the coordinated statement, which goes to one shard as the only piece of a split statement (the
// simple protocol's Query, or a Parse of it hidden from the client in front of the client's Bind), and the
// client gets that shard's answer. A gather whose rows pass limits.max_intermediate_result, or that a shard
// refuses, ends the message with that error.

// gathering is the gather step of the message being routed.
type gathering struct {
	tables []route.Rows // per table of the gather query: its rows so far, as array elements ("(1,a)","(2,b)")
	size   int
	limit  int
	err    *codec.Error // the first error: a shard's, or the limit's
}

// gather sends g's query to every shard of mask and holds the message until the rows are in.
func (cl *client) gather(r *run, buf []byte, at int, g *route.Gather, mask uint64) (bool, *codec.Error) {
	if cl.busyMask() != 0 {
		return cl.stall(r, buf, at), nil // first the answers in flight: the gather's must be all that comes
	}
	if !cl.ensureServers(r, buf, at, mask) {
		return false, nil
	}
	cl.sh.gathered = &gathering{tables: make([]route.Rows, g.Tables), limit: cl.e.cfg.Limits.MaxIntermediateResult}
	for m := mask; m != 0; m &= m - 1 {
		s := cl.srvs[bits.TrailingZeros64(m)]
		cl.startRun(r, buf, at, s)
		rel := at - r.start
		cl.prepareServer(s, &r.sp, rel, 0)
		r.sp.insert(rel, codec.AppendQuery(s.ls.synth[:0], g.SQL))
		s.expects.push(expectOwn(keepGather))
	}
	return cl.stall(r, buf, at), nil
}

// coordinated makes d's coordinated statement the one piece of a split statement, for one shard: the one
// pickAny likes (the transaction's, one the client holds).
func (cl *client) coordinated(d *route.Decision, params int) {
	shard := bits.TrailingZeros64(cl.pickAny())
	piece := route.Piece{Shard: shard, SQL: d.Coordinated, Params: make([]int, params)}
	for i := range piece.Params {
		piece.Params[i] = i
	}
	d.Split, d.Shards, d.Coordinated = []route.Piece{piece}, 1<<shard, ""
}

// row keeps one row of the gather query: its table's number, and the table's row as text.
func (g *gathering) row(msg []byte) {
	if g.err != nil {
		return
	}
	row, err := codec.ParseDataRow(msg[codec.HeaderLen:])
	var cols [2][]byte
	vals, cerr := row.Columns(cols[:0])
	if err != nil || cerr != nil || len(vals) != 2 || vals[1] == nil {
		g.fail(codec.NewError(codec.SQLStateInternalError, "pgshard's gather query returned a row it cannot read"))
		return
	}
	k, perr := strconv.Atoi(string(vals[0]))
	if perr != nil || k < 0 || k >= len(g.tables) {
		g.fail(codec.NewError(codec.SQLStateInternalError, "pgshard's gather query returned a row of no table it asked for"))
		return
	}
	g.size += len(vals[1]) + 3
	if g.size > g.limit {
		g.fail(codec.NewError(codec.SQLStateProgramLimitExceeded, "cross-shard SELECT: the rows it needs from the "+
			"shards exceed limits.max_intermediate_result ("+strconv.Itoa(g.limit)+" bytes)").
			WithHint("add the shard key to the WHERE clause, or raise limits.max_intermediate_result"))
		return
	}
	g.tables[k] = appendRow(g.tables[k], vals[1])
}

// rowChunk is the size of the chunks gathered rows are kept in: large enough that a chunk holds many rows,
// small enough that the chunks' slack is a small part of the rows (one growing slice, copied each time it
// grows, allocated several times the rows).
const rowChunk = 1 << 20

// appendRow appends one row as an array element to rows, a row never split between chunks.
func appendRow(rows route.Rows, v []byte) route.Rows {
	need := 2*len(v) + 3 // at most: every byte escaped, the quotes, the comma
	if len(rows) == 0 || cap(rows[len(rows)-1])-len(rows[len(rows)-1]) < need {
		rows = append(rows, make([]byte, 0, max(rowChunk, need)))
	}
	last := &rows[len(rows)-1]
	if len(rows) > 1 || len(*last) > 0 {
		*last = append(*last, ',')
	}
	*last = appendArrayElement(*last, v)
	return rows
}

// fail keeps the first error and lets the rows go.
func (g *gathering) fail(err *codec.Error) {
	if g.err == nil {
		g.err, g.tables = err, make([]route.Rows, len(g.tables))
	}
}

// failedOn keeps a shard's ErrorResponse to the gather query, for the client.
func (g *gathering) failedOn(msg []byte) {
	e, err := codec.ParseError(msg[codec.HeaderLen:])
	if err != nil {
		e = codec.NewError(codec.SQLStateProtocolViolation, "malformed error from the server")
	}
	g.fail(e)
}

// appendArrayElement appends v as a double-quoted element of an array literal.
func appendArrayElement(dst, v []byte) []byte {
	dst = append(dst, '"')
	for _, c := range v {
		if c == '"' || c == '\\' {
			dst = append(dst, '\\')
		}
		dst = append(dst, c)
	}
	return append(dst, '"')
}
