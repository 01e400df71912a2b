package loop

import (
	"math/bits"
	"strconv"

	"github.com/pgshard/pgshard/codec"
	"github.com/pgshard/pgshard/route"
)

// copyIn is a COPY ... FROM STDIN into a sharded table in progress. The COPY statement runs on every shard;
// the client's data is cut into rows (codec.CopySplitter) and each row goes to its key's shard, the header and
// end marker to all of them. When the statement names no columns, the key's position comes from the catalog:
// a query pgshard puts before the COPY on one shard, answered before that shard's CopyInResponse (which the
// client sees only once every shard sent one). A client that sends its data without waiting for
// CopyInResponse (pgx does) is stalled until that answer is in.
type copyIn struct {
	cl         *client
	plan       *route.CopyIn
	keyField   int  // the key's position among the columns, -1 until known
	catalog    bool // the catalog query is still to be sent
	catalogDue bool // the catalog query was sent and is not answered yet
	waiting    bool // the client's data waits for that answer (the client is stalled)
	waitsReady bool // and for the client to have its CopyInResponse (a message other than the COPY's data)
	split      *codec.CopySplitter
	sent       bool     // the COPY statement went to the shards: the client's messages are its data now
	failed     bool     // pgshard refused the data: what the client still sends of it is dropped
	out        [][]byte // per shard, the CopyData message being filled
}

// catalogQuery asks for the position of the key column among the columns COPY takes by default.
func (ci *copyIn) catalogQuery() string {
	t := quoteLiteral(ci.plan.Table)
	return "SELECT (SELECT count(*) FROM pg_catalog.pg_attribute a WHERE a.attrelid = " + t + "::regclass AND a.attnum > 0" +
		" AND NOT a.attisdropped AND a.attgenerated = '' AND a.attnum < k.attnum) FROM pg_catalog.pg_attribute k" +
		" WHERE k.attrelid = " + t + "::regclass AND k.attname = " + quoteLiteral(ci.plan.Column) + " AND NOT k.attisdropped"
}

// startCopy routes a COPY FROM STDIN into a sharded table.
func (cl *client) startCopy(r *run, buf []byte, at int, m codec.Message, n int, mask uint64, plan *route.CopyIn) (bool, *codec.Error) {
	ci := &copyIn{cl: cl, plan: plan, keyField: plan.KeyField, catalog: plan.KeyField < 0, out: make([][]byte, len(cl.srvs))}
	cl.sh.copy = ci
	// Outside a transaction block the shards' COPYs commit together or not at all: each runs in a transaction
	// pgshard opens (BEGIN before the COPY) and ends once every shard is through (endCopyTx).
	cl.sh.copyTx = !cl.sh.txOpen && bits.OnesCount64(mask) > 1
	ok, perr := cl.send(r, buf, at, m, n, mask, sendFresh)
	if ok && perr == nil {
		cl.sh.group.copyTx = cl.sh.copyTx
		ci.sent = true
	}
	cl.sh.copyTx = false
	if !ok || perr != nil {
		// Not sent (it waits for answers in flight, or was refused): no COPY is under way. A later attempt starts
		// afresh; left in place, the copy state would put its catalog query in front of whatever the client
		// sends next (the COPY may never be sent: after an error the client's messages up to Sync are dropped).
		cl.sh.copy = nil
		return ok, perr
	}
	return true, nil
}

// endCopyTx runs when every shard answered a COPY run in pgshard's transaction (ReadyForQuery): COMMIT on
// every shard, or ROLLBACK after an error anywhere (the client has that error already). The client gets the
// COPY's CommandComplete and ReadyForQuery once they are all answered (copyEnded).
//
// Each shard commits on its own: should a COMMIT fail on one shard and succeed on another (a deferred
// constraint, a shard lost at that moment), the client gets the error and the other shards keep their rows,
// as with any statement that writes on several shards outside a transaction block without two-phase commit.
func (cl *client) endCopyTx(g *fanout) {
	q := "COMMIT"
	if g.errSent {
		q = "ROLLBACK"
	}
	msg := codec.AppendQuery(nil, q)
	for m := g.members; m != 0; m &= m - 1 {
		s := cl.srvs[bits.TrailingZeros64(m)]
		if s == nil || s.gone() {
			g.copyEnded++ // a lost server has failed the client already
			continue
		}
		s.expects.push(expectOwn(keepCopyEnd))
		s.send(msg)
	}
}

// copyEnded runs when one shard answered the end of pgshard's transaction around a COPY; once all did, it
// returns what the client gets: the COPY's CommandComplete (or the first error of a COMMIT; nothing more
// when the COPY failed) and ReadyForQuery.
func (cl *client) copyEnded(g *fanout) []byte {
	if g == nil || !g.copyTx {
		return nil
	}
	if g.copyEnded++; g.copyEnded < g.k {
		return nil
	}
	g.copyTx = false
	var out []byte
	switch {
	case g.errSent:
	case g.copyErr != nil:
		out = append(out, g.copyErr...)
	default:
		out = append(out, g.copyHeld...)
	}
	return codec.AppendReadyForQuery(out, cl.txStatus())
}

// mustWait says whether the client's next message must wait: for the catalog query's answer (data), and for
// the shards' CopyInResponse to have reached the client (ready: a message that ends the COPY, which the client
// must see begin first).
func (ci *copyIn) mustWait(ready bool) bool {
	g := &ci.cl.sh.group
	return ci.catalogDue || ready && g.copyIn < g.k && !g.errSent
}

// resume lets a client whose data waited for the catalog query's answer go on, once that answer is in.
func (ci *copyIn) resume() {
	if !ci.waiting || ci.mustWait(ci.waitsReady) {
		return
	}
	ci.waiting, ci.waitsReady = false, false
	cl := ci.cl
	cl.sh.stalled = false
	if cl.state == clientReady {
		cl.forward()
		cl.flush()
	}
}

// copyMessage handles a CopyData, CopyDone or CopyFail of a sharded COPY.
func (cl *client) copyMessage(r *run, buf []byte, at int, m codec.Message, n int) (bool, *codec.Error) {
	ci := cl.sh.copy
	if ci.failed {
		cl.dropFromRun(r, at, n)
		if m.Type != codec.CopyData {
			cl.sh.copy = nil
		}
		return true, nil
	}
	cl.startRun(r, buf, at, nil)
	r.s = nil
	if ci.catalogDue {
		// Where the key is comes with the catalog query's answer: look at the data again then (resume).
		ci.waiting = true
		cl.sh.stalled = true
		return false, nil
	}
	switch m.Type {
	case codec.CopyData:
		if ci.split == nil {
			if ci.keyField < 0 {
				ci.fail(codec.NewError(codec.SQLStateUndefinedColumn, "pgshard could not find the shard key column "+ci.plan.Column+
					" of table "+ci.plan.Table+" for COPY").WithHint("name the columns in the COPY statement"))
				return true, nil
			}
			ci.split = codec.NewCopySplitter(ci.plan.Options, ci.keyField)
		}
		if err := ci.split.Write(m.Body, ci); err != nil {
			ci.fail(asPgError(err))
			return true, nil
		}
		ci.flush()
	case codec.CopyDone:
		if ci.split != nil {
			if err := ci.split.Close(ci); err != nil {
				ci.fail(asPgError(err))
				return true, nil
			}
		}
		ci.flush()
		ci.toAll(codec.AppendEmpty(cl.ls.synth[:0], codec.CopyDone))
		cl.sh.copy = nil
	case codec.CopyFail:
		ci.flush()
		ci.toAll(buf[at : at+n])
		cl.sh.copy = nil
	}
	return true, nil
}

// copyInterrupted handles a message other than CopyData, CopyDone and CopyFail while a sharded COPY FROM STDIN
// takes the client's data, as Postgres 15 does: Sync and Flush are ignored (libpq may send them without
// noticing that its statement was a COPY); any other message fails the COPY with 08P01 and ends the session
// (Postgres has read the message's type but not its body, and says "protocol synchronization was lost"). Once
// the COPY has failed (the shards said so), the COPY is over and the message is routed as usual (done false).
func (cl *client) copyInterrupted(r *run, buf []byte, at int, m codec.Message, n int) (done, ok bool, perr *codec.Error) {
	ci := cl.sh.copy
	if ci.failed {
		cl.sh.copy = nil
		return false, false, nil
	}
	cl.startRun(r, buf, at, nil)
	r.s = nil
	if ci.mustWait(true) {
		ci.waiting, ci.waitsReady = true, true // looked at again once the client has its CopyInResponse (resume)
		cl.sh.stalled = true
		return true, false, nil
	}
	if m.Type == codec.Sync || m.Type == codec.Flush {
		return true, true, nil
	}
	ci.fail(codec.NewError(codec.SQLStateProtocolViolation, "unexpected message type 0x"+strconv.FormatUint(uint64(m.Type), 16)+
		" during COPY from stdin").WithHint("send CopyData, then CopyDone or CopyFail, before the next statement"))
	cl.sh.copy = nil
	return true, false, codec.NewFatal(codec.SQLStateProtocolViolation, "terminating connection because protocol synchronization was lost")
}

func asPgError(err error) *codec.Error {
	if pe, ok := err.(*codec.Error); ok {
		return pe
	}
	return codec.NewError(codec.SQLStateBadCopyFileFormat, err.Error())
}

// fail ends the COPY on every shard with the client seeing err (and nothing the shards say about it).
func (ci *copyIn) fail(err *codec.Error) {
	cl := ci.cl
	ci.failed = true
	for i := range ci.out {
		ci.out[i] = ci.out[i][:0]
	}
	cl.sh.group.errSent = true
	cl.out = codec.AppendErrorResponse(cl.out, err)
	ci.toAll(codec.AppendCopyFail(cl.ls.synth[:0], "pgshard: "+err.Message))
}

// shardFailed runs when the COPY failed on one shard (a constraint, a bad value): the other shards are told to
// abandon it too (CopyFail; what they answer is hidden behind the first error, which the client gets) rather
// than take the rest of the data, and what the client still sends of it is dropped. A client ends its COPY
// when it sees the error (pgx with CopyDone), which the other shards then never get. A shard that had all the
// data and its end before the error keeps nothing either: outside a transaction block pgshard's transaction
// around the COPY is rolled back (endCopyTx), inside one the client's transaction has failed.
func (ci *copyIn) shardFailed(shard int) {
	if ci.failed {
		return
	}
	cl := ci.cl
	ci.failed = true
	for i := range ci.out {
		ci.out[i] = ci.out[i][:0]
	}
	msg := codec.AppendCopyFail(cl.ls.synth[:0], "pgshard: the COPY failed on shard "+strconv.Itoa(shard))
	for m := cl.sh.group.members &^ (1 << shard); m != 0; m &= m - 1 {
		if s := cl.srvs[bits.TrailingZeros64(m)]; s != nil && !s.gone() {
			s.send(msg)
		}
	}
}

// toAll writes msg to every shard of the COPY.
func (ci *copyIn) toAll(msg []byte) {
	for m := ci.cl.sh.group.members; m != 0; m &= m - 1 {
		if s := ci.cl.srvs[bits.TrailingZeros64(m)]; s != nil && !s.gone() {
			s.send(msg)
		}
	}
}

// flush writes the rows gathered for each shard, one CopyData message per shard.
func (ci *copyIn) flush() {
	for i, b := range ci.out {
		if len(b) <= codec.HeaderLen {
			continue
		}
		b = codec.FinishMessage(b, 0)
		if s := ci.cl.srvs[i]; s != nil && !s.gone() {
			s.send(b)
		}
		ci.out[i] = b[:0]
	}
}

// add appends data to shard i's CopyData message.
func (ci *copyIn) add(i int, data []byte) {
	if len(ci.out[i]) == 0 {
		ci.out[i] = codec.StartMessage(ci.out[i], codec.CopyData)
	}
	ci.out[i] = append(ci.out[i], data...)
	if len(ci.out[i]) >= 256<<10 {
		b := codec.FinishMessage(ci.out[i], 0)
		if s := ci.cl.srvs[i]; s != nil && !s.gone() {
			s.send(b)
		}
		ci.out[i] = b[:0]
	}
}

// CopyHeader implements codec.CopyHandler: every shard gets the header.
func (ci *copyIn) CopyHeader(header []byte) error {
	for m := ci.cl.sh.group.members; m != 0; m &= m - 1 {
		ci.add(bits.TrailingZeros64(m), header)
	}
	return nil
}

// CopyEnd implements codec.CopyHandler: every shard gets the end marker.
func (ci *copyIn) CopyEnd(marker []byte) error { return ci.CopyHeader(marker) }

// CopyRow implements codec.CopyHandler: the row goes to its key's shard.
func (ci *copyIn) CopyRow(row, key []byte, isNull bool) error {
	if isNull {
		return codec.NewError(codec.SQLStateNotNullViolation, "null value in shard key column "+ci.plan.Column+" of table "+ci.plan.Table+
			" in COPY: no shard owns it")
	}
	var sh int
	var err *codec.Error
	if ci.plan.Options.Format == codec.CopyBinary {
		sh, err = ci.plan.Mapper.ShardBinary(key)
	} else {
		sh, err = ci.plan.Mapper.ShardText(key)
	}
	if err != nil {
		return err
	}
	if sh < 0 || sh >= len(ci.out) || ci.cl.sh.group.members&(1<<sh) == 0 {
		return codec.NewError(codec.SQLStateInternalError, "pgshard: shard out of range in COPY")
	}
	ci.add(sh, row)
	return nil
}

// catalogInt reads the one integer of a DataRow in text format, -1 when there is none.
func catalogInt(msg []byte) int {
	row, err := codec.ParseDataRow(msg[codec.HeaderLen:])
	if err != nil || row.NumColumns() != 1 {
		return -1
	}
	var cols [1][]byte
	vals, err := row.Columns(cols[:0])
	if err != nil || vals[0] == nil {
		return -1
	}
	v := 0
	for _, c := range vals[0] {
		if c < '0' || c > '9' {
			return -1
		}
		v = v*10 + int(c-'0')
	}
	return v
}
