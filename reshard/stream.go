package reshard

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
)

// markerPrefix is the prefix of the logical decoding message the cutover writes into each source's WAL:
// once a streamer has seen it and its appliers have committed everything before it, that source is drained.
const markerPrefix = "pgshard_reshard"

// streamer decodes one source shard's slot and hands each change to the applier of the destination shard
// that holds the row. Changes of one source transaction reach each applier in order, so changes to one row
// never overtake each other (a row lives on one source shard, and on one destination at a time).
type streamer struct {
	p        *plan
	src      endpoint
	slot     string
	tables   map[string]*table // by schema.name
	rels     map[uint32]*relation
	appliers []*applier
	prog     *progress

	txLSN  pglogrepl.LSN // FinalLSN of the transaction being decoded; 0 outside one
	txTime time.Time

	sentEnd atomic.Uint64 // end LSN of the last transaction handed to the appliers
	walEnd  atomic.Uint64 // the server's WAL end from its last keepalive outside a transaction
	pending commitTimes   // commit times of transactions not yet applied everywhere, for the lag in seconds

	markerMu sync.Mutex
	markers  map[string]chan struct{} // marker id -> closed when every applier has passed it
}

// relation is a table as the slot describes it (pgoutput's Relation message), with its statements.
type relation struct {
	t        *table
	cols     []string // quoted column names, in the message's order
	key      int      // index of the shard key in cols, -1 for a replicated table
	where    []int    // columns that identify a row (replica identity)
	nullSafe bool     // REPLICA IDENTITY FULL without a primary key: compare with IS NOT DISTINCT FROM
	insert   string
}

func newStreamer(p *plan, src endpoint, slot string, tables []*table, appliers []*applier, prog *progress) *streamer {
	s := &streamer{p: p, src: src, slot: slot, tables: map[string]*table{}, rels: map[uint32]*relation{},
		appliers: appliers, prog: prog, markers: map[string]chan struct{}{}}
	for _, t := range tables {
		s.tables[t.schema+"."+t.name] = t
	}
	return s
}

// startLSN is where replication resumes: the oldest position some destination has made durable.
func (s *streamer) startLSN() pglogrepl.LSN {
	var lsn pglogrepl.LSN
	for i, a := range s.appliers {
		if i == 0 || a.durable < lsn {
			lsn = a.durable
		}
	}
	return lsn
}

// position is how far this source is applied on every destination: the slot may be confirmed up to here.
func (s *streamer) position() pglogrepl.LSN {
	pos := pglogrepl.LSN(^uint64(0))
	for _, a := range s.appliers {
		pos = min(pos, pglogrepl.LSN(a.applied.Load()))
	}
	if sent := pglogrepl.LSN(s.sentEnd.Load()); pos >= sent {
		pos = max(pos, pglogrepl.LSN(s.walEnd.Load()))
	}
	return pos
}

// run streams until ctx ends or something fails.
func (s *streamer) run(ctx context.Context) error {
	if c, err := connect(ctx, s.src); err == nil {
		err = releaseSlot(ctx, c, s.slot)
		c.Close(ctx)
		if err != nil {
			return err
		}
	}
	conn, err := pgconn.Connect(ctx, s.src.dsn("replication", "database"))
	if err != nil {
		return fmt.Errorf("source shard %d: replication connection: %w", s.src.idx, err)
	}
	defer conn.Close(context.Background())
	start := s.startLSN()
	s.sentEnd.Store(uint64(start))
	err = pglogrepl.StartReplication(ctx, conn, s.slot, start, pglogrepl.StartReplicationOptions{PluginArgs: []string{
		"proto_version '1'", "publication_names '" + s.p.slotBase + "'", "messages 'true'"}})
	if err != nil {
		return fmt.Errorf("source shard %d: starting replication from slot %s: %w", s.src.idx, s.slot, err)
	}
	const feedbackEvery = time.Second
	next := time.Now().Add(feedbackEvery)
	for {
		if time.Now().After(next) {
			if err := s.feedback(ctx, conn); err != nil {
				return err
			}
			next = time.Now().Add(feedbackEvery)
		}
		rctx, cancel := context.WithDeadline(ctx, next)
		raw, err := conn.ReceiveMessage(rctx)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if pgconn.Timeout(err) {
				continue
			}
			return fmt.Errorf("source shard %d: replication: %w", s.src.idx, err)
		}
		switch m := raw.(type) {
		case *pgproto3.ErrorResponse:
			return fmt.Errorf("source shard %d: replication: %w", s.src.idx, pgconn.ErrorResponseToPgError(m))
		case *pgproto3.CopyData:
			if len(m.Data) == 0 {
				continue
			}
			switch m.Data[0] {
			case pglogrepl.PrimaryKeepaliveMessageByteID:
				ka, err := pglogrepl.ParsePrimaryKeepaliveMessage(m.Data[1:])
				if err != nil {
					return err
				}
				if s.txLSN == 0 {
					s.walEnd.Store(uint64(ka.ServerWALEnd))
				}
				if ka.ReplyRequested {
					next = time.Time{} // the server wants an answer now
				}
			case pglogrepl.XLogDataByteID:
				x, err := pglogrepl.ParseXLogData(m.Data[1:])
				if err != nil {
					return err
				}
				if err := s.handle(ctx, x.WALData); err != nil {
					return err
				}
			}
		}
	}
}

func (s *streamer) feedback(ctx context.Context, conn *pgconn.PgConn) error {
	pos := s.position()
	err := pglogrepl.SendStandbyStatusUpdate(ctx, conn, pglogrepl.StandbyStatusUpdate{
		WALWritePosition: pos, WALFlushPosition: pos, WALApplyPosition: pos,
		// The reply (a keepalive) tells how far the server has decoded, which moves an idle source's
		// position past WAL that holds nothing for it.
		ReplyRequested: true})
	if err != nil {
		return fmt.Errorf("source shard %d: confirming LSN %s: %w", s.src.idx, pos, err)
	}
	return nil
}

// handle decodes one pgoutput message and dispatches it.
func (s *streamer) handle(ctx context.Context, data []byte) error {
	msg, err := pglogrepl.Parse(data)
	if err != nil {
		return fmt.Errorf("source shard %d: decoding pgoutput: %w", s.src.idx, err)
	}
	switch m := msg.(type) {
	case *pglogrepl.RelationMessage:
		return s.relation(m)
	case *pglogrepl.BeginMessage:
		s.txLSN, s.txTime = m.FinalLSN, m.CommitTime
	case *pglogrepl.CommitMessage:
		s.pending.push(m.TransactionEndLSN, m.CommitTime)
		for _, a := range s.appliers {
			if err := a.send(ctx, applyOp{kind: opCommit, lsn: m.TransactionEndLSN, at: m.CommitTime}); err != nil {
				return err
			}
		}
		s.sentEnd.Store(uint64(m.TransactionEndLSN))
		s.txLSN = 0
	case *pglogrepl.InsertMessage:
		r, err := s.rel(m.RelationID)
		if err != nil {
			return err
		}
		return s.insert(ctx, r, m.Tuple.Columns)
	case *pglogrepl.UpdateMessage:
		r, err := s.rel(m.RelationID)
		if err != nil {
			return err
		}
		return s.update(ctx, r, m)
	case *pglogrepl.DeleteMessage:
		r, err := s.rel(m.RelationID)
		if err != nil {
			return err
		}
		d, err := r.dest(m.OldTuple.Columns, s.appliers)
		if err != nil {
			return err
		}
		sql, params := r.deleteSQL(m.OldTuple.Columns)
		return s.exec(ctx, d, sql, params)
	case *pglogrepl.TruncateMessage:
		return s.truncate(ctx, m)
	case *pglogrepl.LogicalDecodingMessage:
		if m.Prefix == markerPrefix {
			return s.marker(ctx, string(m.Content))
		}
	}
	return nil
}

func (s *streamer) rel(id uint32) (*relation, error) {
	r := s.rels[id]
	if r == nil {
		return nil, fmt.Errorf("source shard %d: a change to relation %d came before its description", s.src.idx, id)
	}
	return r, nil
}

// relation builds the statements of a table the slot describes.
func (s *streamer) relation(m *pglogrepl.RelationMessage) error {
	t := s.tables[m.Namespace+"."+m.RelationName]
	if t == nil {
		return fmt.Errorf("source shard %d: changes to %s.%s, a table that was not copied (created during the reshard?): abort (pgshard reshard --abort) and start again", s.src.idx, m.Namespace, m.RelationName)
	}
	r := &relation{t: t, key: -1}
	var flagged []int
	for i, c := range m.Columns {
		r.cols = append(r.cols, pgx.Identifier{c.Name}.Sanitize())
		if t.sharded() && c.Name == t.columns[t.key].name {
			r.key = i
		}
		if c.Flags&1 != 0 {
			flagged = append(flagged, i)
		}
	}
	// Identify rows by the primary key when there is one, even under REPLICA IDENTITY FULL (an index scan,
	// and no NULLs to compare).
	for _, ci := range t.identity {
		for i, c := range m.Columns {
			if c.Name == t.columns[ci].name {
				r.where = append(r.where, i)
			}
		}
	}
	if len(r.where) == 0 {
		r.where, r.nullSafe = flagged, true
	}
	if t.sharded() && r.key < 0 {
		return fmt.Errorf("source shard %d: table %s arrives without its shard key column %s", s.src.idx, t, t.columns[t.key].name)
	}
	ph := make([]string, len(r.cols))
	for i := range ph {
		ph[i] = fmt.Sprintf("$%d", i+1)
	}
	r.insert = "INSERT INTO " + t.ident() + " (" + strings.Join(r.cols, ", ") + ") VALUES (" + strings.Join(ph, ", ") + ")"
	s.rels[m.RelationID] = r
	return nil
}

// dest picks the applier of the destination that holds a row with these column values.
func (r *relation) dest(cols []*pglogrepl.TupleDataColumn, appliers []*applier) (*applier, error) {
	if r.key < 0 {
		return nil, nil // replicated: every destination
	}
	if r.key >= len(cols) {
		return nil, fmt.Errorf("table %s: a change without its shard key", r.t)
	}
	c := cols[r.key]
	switch c.DataType {
	case pglogrepl.TupleDataTypeText:
	case pglogrepl.TupleDataTypeNull:
		return nil, fmt.Errorf("table %s: a row with a NULL shard key %s has no shard: fix it on the source and rerun", r.t, r.t.columns[r.t.key].name)
	default:
		return nil, fmt.Errorf("table %s: the shard key %s arrived without its value (a TOASTed key): such keys cannot be resharded", r.t, r.t.columns[r.t.key].name)
	}
	d, cerr := r.t.newMapper.ShardText(c.Data)
	if cerr != nil {
		return nil, fmt.Errorf("table %s: %s", r.t, cerr.Message)
	}
	return appliers[d], nil
}

// value copies a column value out of the message buffer (reused by the next message) as a text parameter.
func value(c *pglogrepl.TupleDataColumn) []byte {
	if c.DataType == pglogrepl.TupleDataTypeNull {
		return nil
	}
	return append(make([]byte, 0, len(c.Data)), c.Data...)
}

func (r *relation) insertParams(cols []*pglogrepl.TupleDataColumn) ([][]byte, error) {
	params := make([][]byte, len(cols))
	for i, c := range cols {
		if c.DataType == pglogrepl.TupleDataTypeToast {
			return nil, fmt.Errorf("table %s: a row moving to another shard has an unchanged TOASTed column %s whose value the slot does not send: ALTER TABLE %s REPLICA IDENTITY FULL and start again", r.t, r.cols[i], r.t.ident())
		}
		params[i] = value(c)
	}
	return params, nil
}

// whereSQL appends "WHERE k = $n AND ..." for the identifying columns of old.
func (r *relation) whereSQL(b *strings.Builder, old []*pglogrepl.TupleDataColumn, params [][]byte) [][]byte {
	b.WriteString(" WHERE ")
	for i, ci := range r.where {
		if i > 0 {
			b.WriteString(" AND ")
		}
		params = append(params, value(old[ci]))
		op := " = "
		if r.nullSafe {
			op = " IS NOT DISTINCT FROM "
		}
		fmt.Fprintf(b, "%s%s$%d", r.cols[ci], op, len(params))
	}
	return params
}

func (r *relation) deleteSQL(old []*pglogrepl.TupleDataColumn) (string, [][]byte) {
	var b strings.Builder
	b.WriteString("DELETE FROM " + r.t.ident())
	params := r.whereSQL(&b, old, nil)
	return b.String(), params
}

func (s *streamer) insert(ctx context.Context, r *relation, cols []*pglogrepl.TupleDataColumn) error {
	d, err := r.dest(cols, s.appliers)
	if err != nil {
		return err
	}
	params, err := r.insertParams(cols)
	if err != nil {
		return err
	}
	return s.exec(ctx, d, r.insert, params)
}

// update applies an UPDATE where the row stays, or moves it (delete, then insert) when its new key maps to
// another destination.
func (s *streamer) update(ctx context.Context, r *relation, m *pglogrepl.UpdateMessage) error {
	newCols := m.NewTuple.Columns
	old := newCols // no old tuple: the identity did not change
	if m.OldTuple != nil {
		old = m.OldTuple.Columns
	}
	to, err := r.dest(newCols, s.appliers)
	if err != nil {
		return err
	}
	from := to
	if m.OldTuple != nil && r.key >= 0 && old[r.key].DataType == pglogrepl.TupleDataTypeText {
		if from, err = r.dest(old, s.appliers); err != nil {
			return err
		}
	}
	if from != to {
		sql, params := r.deleteSQL(old)
		if err := s.exec(ctx, from, sql, params); err != nil {
			return err
		}
		return s.insert(ctx, r, newCols)
	}
	var b strings.Builder
	var params [][]byte
	b.WriteString("UPDATE " + r.t.ident() + " SET ")
	for i, c := range newCols {
		if c.DataType == pglogrepl.TupleDataTypeToast {
			continue // unchanged
		}
		if len(params) > 0 {
			b.WriteString(", ")
		}
		params = append(params, value(c))
		fmt.Fprintf(&b, "%s = $%d", r.cols[i], len(params))
	}
	if len(params) == 0 {
		return nil
	}
	params = r.whereSQL(&b, old, params)
	return s.exec(ctx, to, b.String(), params)
}

// truncate empties the tables on the destinations that hold rows of this source. A replicated table's
// TRUNCATE comes from source 0 and goes everywhere; a sharded table's rows from this source are all the rows
// of the destinations d with d % N == source when the hash mapping goes from N to a multiple of N shards.
func (s *streamer) truncate(ctx context.Context, m *pglogrepl.TruncateMessage) error {
	var names []string
	sharded := false
	for _, id := range m.RelationIDs {
		r, err := s.rel(id)
		if err != nil {
			return err
		}
		names = append(names, r.t.ident())
		sharded = sharded || r.t.sharded()
	}
	n, mm := len(s.p.sources), len(s.appliers)
	if sharded && n > 1 && (mm%n != 0 || !s.p.hashOnly()) {
		return fmt.Errorf("source shard %d: TRUNCATE of a sharded table while resharding %d to %d shards cannot be replayed: abort (pgshard reshard --abort), and run the TRUNCATE before or after resharding", s.src.idx, n, mm)
	}
	sql := "TRUNCATE " + strings.Join(names, ", ")
	if m.Option&pglogrepl.TruncateOptionRestartIdentity != 0 {
		sql += " RESTART IDENTITY"
	}
	for d, a := range s.appliers {
		if !sharded || n == 1 || d%n == s.src.idx {
			if err := a.send(ctx, applyOp{kind: opStmt, lsn: s.txLSN, sql: sql}); err != nil {
				return err
			}
		}
	}
	return nil
}

// exec hands a statement to one applier, or to all (d nil: a replicated table).
func (s *streamer) exec(ctx context.Context, d *applier, sql string, params [][]byte) error {
	op := applyOp{kind: opStmt, lsn: s.txLSN, sql: sql, params: params}
	if d != nil {
		return d.send(ctx, op)
	}
	for _, a := range s.appliers {
		if err := a.send(ctx, op); err != nil {
			return err
		}
	}
	return nil
}

// marker passes the cutover marker to every applier; waitMarker's channel closes when all have reached it.
func (s *streamer) marker(ctx context.Context, id string) error {
	var wg sync.WaitGroup
	wg.Add(len(s.appliers))
	for _, a := range s.appliers {
		if err := a.send(ctx, applyOp{kind: opMarker, done: wg.Done}); err != nil {
			return err
		}
	}
	ch := s.markerChan(id)
	go func() { wg.Wait(); close(ch) }()
	return nil
}

func (s *streamer) markerChan(id string) chan struct{} {
	s.markerMu.Lock()
	defer s.markerMu.Unlock()
	ch := s.markers[id]
	if ch == nil {
		ch = make(chan struct{})
		s.markers[id] = ch
	}
	return ch
}

// lag is this source's lag: bytes of WAL written but not applied everywhere (given the source's current
// WAL position), and the age of the oldest transaction not applied everywhere.
func (s *streamer) lag(current pglogrepl.LSN) (int64, float64) {
	pos := s.position()
	var bytes int64
	if current > pos {
		bytes = int64(current - pos)
	}
	return bytes, s.pending.age(pos)
}

// commitTimes remembers the commit times of transactions handed to the appliers, oldest first, to tell
// the lag in seconds; bounded, as only the oldest matters.
type commitTimes struct {
	mu   sync.Mutex
	ends []pglogrepl.LSN
	at   []time.Time
}

func (c *commitTimes) push(end pglogrepl.LSN, at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.ends) < 100000 {
		c.ends, c.at = append(c.ends, end), append(c.at, at)
	}
}

func (c *commitTimes) age(applied pglogrepl.LSN) float64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	i := 0
	for i < len(c.ends) && c.ends[i] <= applied {
		i++
	}
	c.ends, c.at = c.ends[i:], c.at[i:]
	if len(c.at) == 0 {
		return 0
	}
	return time.Since(c.at[0]).Seconds()
}

// opKind is what an applier is asked to do.
type opKind uint8

const (
	opStmt   opKind = iota // run sql in the transaction of source transaction lsn
	opCommit               // source transaction ended at lsn
	opMarker               // commit what is open, then call done
)

type applyOp struct {
	kind   opKind
	lsn    pglogrepl.LSN // opStmt: the transaction's FinalLSN; opCommit: its end LSN
	sql    string
	params [][]byte
	at     time.Time
	done   func()
}

// applier applies one source shard's changes to one destination shard. It groups consecutive source
// transactions into one destination transaction that also records, in pgshard_reshard.progress, the end
// LSN of the last of them; a restarted run skips the transactions whose commit precedes that LSN.
type applier struct {
	source  int
	dest    endpoint
	conn    *pgconn.PgConn
	ch      chan applyOp
	durable pglogrepl.LSN // progress recorded on the destination
	applied atomic.Uint64 // everything before it is applied here (or has nothing for here)
	changes *atomic.Int64
	err     chan error
	stmts   map[string]string // statement text -> name prepared on conn
}

// prepared returns the name of sql prepared on the destination, preparing it the first time: a change
// then costs a Bind and an Execute, not a parse and plan.
func (a *applier) prepared(ctx context.Context, sql string) (string, error) {
	if name, ok := a.stmts[sql]; ok {
		return name, nil
	}
	name := fmt.Sprintf("reshard_%d", len(a.stmts))
	if _, err := a.conn.Prepare(ctx, name, sql, nil); err != nil {
		return "", err
	}
	a.stmts[sql] = name
	return name, nil
}

// maxGroup bounds the statements sent in one batch, and the statements after which a destination
// transaction is committed at the next source transaction's end.
const maxGroup = 2000

func newApplier(ctx context.Context, source int, dest endpoint, durable pglogrepl.LSN, changes *atomic.Int64) (*applier, error) {
	c, err := pgconn.Connect(ctx, dest.dsn())
	if err != nil {
		return nil, fmt.Errorf("destination shard %d: %w", dest.idx, err)
	}
	a := &applier{source: source, dest: dest, conn: c, ch: make(chan applyOp, 8192), durable: durable, changes: changes, err: make(chan error, 1), stmts: map[string]string{}}
	a.applied.Store(uint64(durable))
	return a, nil
}

// send queues an op, unless the applier has failed or ctx ended.
func (a *applier) send(ctx context.Context, op applyOp) error {
	select {
	case a.ch <- op:
		return nil
	case err := <-a.err:
		a.err <- err
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// run applies ops until ctx ends or a statement fails.
func (a *applier) run(ctx context.Context) error {
	err := a.loop(ctx)
	if err != nil && ctx.Err() == nil {
		err = fmt.Errorf("applying source shard %d's changes on destination shard %d: %w", a.source, a.dest.idx, err)
	}
	a.err <- err
	a.conn.Close(context.Background())
	return err
}

func (a *applier) loop(ctx context.Context) error {
	var (
		batch    pgconn.Batch
		queued   int           // statements in batch
		inTx     int           // statements in the open destination transaction
		open     bool          // a destination transaction is open
		boundary = true        // no source transaction is half-queued
		lastEnd  pglogrepl.LSN // end of the last source transaction inside the open destination transaction
	)
	flush := func() error {
		if queued == 0 {
			return nil
		}
		_, err := a.conn.ExecBatch(ctx, &batch).ReadAll()
		batch, queued = pgconn.Batch{}, 0
		return err
	}
	commit := func() error {
		if !open {
			return nil
		}
		batch.ExecParams("UPDATE pgshard_reshard.progress SET lsn = $1 WHERE source = $2",
			[][]byte{[]byte(lastEnd.String()), []byte(fmt.Sprint(a.source))}, nil, nil, nil)
		batch.ExecParams("COMMIT", nil, nil, nil, nil)
		queued += 2
		if err := flush(); err != nil {
			return err
		}
		a.durable = lastEnd
		a.applied.Store(uint64(lastEnd))
		maybeDie(failStreamAt, a.changes.Add(int64(inTx)), "changes applied")
		open, inTx = false, 0
		return nil
	}
	for {
		var op applyOp
		select {
		case op = <-a.ch:
		default:
			// Nothing waiting: make what is complete durable, then block.
			if boundary {
				if err := commit(); err != nil {
					return err
				}
			} else if err := flush(); err != nil {
				return err
			}
			select {
			case op = <-a.ch:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		switch op.kind {
		case opStmt:
			if op.lsn < a.durable {
				continue // applied before a restart
			}
			boundary = false
			if !open {
				batch.ExecParams("BEGIN", nil, nil, nil, nil)
				queued++
				open = true
			}
			name, err := a.prepared(ctx, op.sql)
			if err != nil {
				return err
			}
			batch.ExecPrepared(name, op.params, nil, nil)
			queued++
			inTx++
			if queued >= maxGroup {
				if err := flush(); err != nil {
					return err
				}
			}
		case opCommit:
			boundary = true
			switch {
			case open:
				lastEnd = op.lsn
				if inTx >= maxGroup {
					if err := commit(); err != nil {
						return err
					}
				}
			case op.lsn > pglogrepl.LSN(a.applied.Load()):
				a.applied.Store(uint64(op.lsn)) // nothing of it was for this destination
			}
		case opMarker:
			if err := commit(); err != nil {
				return err
			}
			op.done()
		}
	}
}

// errStopped ends the streaming when the run moves on to the switch.
var errStopped = errors.New("streaming stopped")
