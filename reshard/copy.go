package reshard

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgshard/pgshard/codec"
)

// slot is a source shard's publication and logical slot, and while the copy runs the replication
// connection that keeps the slot's exported snapshot alive.
type slot struct {
	source   int
	name     string
	snapshot string
	lsn      pglogrepl.LSN // the consistent point: the snapshot sees exactly the transactions before it
	conn     *pgconn.PgConn
}

// publishes says which tables source shard s publishes: shard 0 every table; the others their rows of
// sharded tables only (a replicated table's copy on them is the same as shard 0's).
func publishes(s int, t *table) bool { return s == 0 || t.sharded() }

// createSlots makes, on every source shard, the publication and a fresh logical slot with an exported
// snapshot. Leftovers of an earlier attempt are dropped first: a copy that did not finish starts over.
func (p *plan) createSlots(ctx context.Context, tables []*table) ([]*slot, error) {
	var slots []*slot
	for _, e := range p.sources {
		var names []string
		for _, t := range tables {
			if publishes(e.idx, t) {
				names = append(names, t.ident())
			}
		}
		if len(names) == 0 {
			continue
		}
		s := &slot{source: e.idx, name: p.slotName(e.idx)}
		if err := p.dropSlot(ctx, e, s.name); err != nil {
			return slots, err
		}
		pub := p.publication()
		if err := execOn(ctx, e, "DROP PUBLICATION IF EXISTS "+pub+"; CREATE PUBLICATION "+pub+" FOR TABLE "+strings.Join(names, ", ")); err != nil {
			return slots, fmt.Errorf("source shard %d: creating the publication: %w", e.idx, err)
		}
		var err error
		if s.conn, err = pgconn.Connect(ctx, e.dsn("replication", "database")); err != nil {
			return slots, fmt.Errorf("source shard %d: replication connection: %w", e.idx, err)
		}
		slots = append(slots, s)
		res, err := pglogrepl.CreateReplicationSlot(ctx, s.conn, s.name, "pgoutput",
			pglogrepl.CreateReplicationSlotOptions{SnapshotAction: "EXPORT_SNAPSHOT"})
		if err != nil {
			return slots, fmt.Errorf("source shard %d: creating slot %s: %w", e.idx, s.name, err)
		}
		s.snapshot = res.SnapshotName
		if s.lsn, err = pglogrepl.ParseLSN(res.ConsistentPoint); err != nil {
			return slots, err
		}
	}
	return slots, nil
}

// dropSlot removes the slot if it exists, ending the walsender of a killed earlier run that may still hold it.
func (p *plan) dropSlot(ctx context.Context, e endpoint, name string) error {
	c, err := connect(ctx, e)
	if err != nil {
		return err
	}
	defer c.Close(ctx)
	err = releaseSlot(ctx, c, name)
	if err == nil {
		_, err = c.Exec(ctx, `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1`, name)
	}
	if err != nil {
		return fmt.Errorf("source shard %d: dropping slot %s: %w", e.idx, name, err)
	}
	return nil
}

// releaseSlot ends the walsender still holding the slot for a killed earlier run (the state directory's
// lock says no other run is alive) and waits until the slot is free.
func releaseSlot(ctx context.Context, c *pgx.Conn, name string) error {
	for i := 0; ; i++ {
		var active bool
		err := c.QueryRow(ctx, `SELECT coalesce(bool_or(pg_terminate_backend(active_pid)), false) FROM pg_replication_slots WHERE slot_name = $1 AND active_pid IS NOT NULL`, name).Scan(&active)
		if err != nil || !active || i == 50 {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// copyItem is one unit of copy work: a table's rows on one source shard, or a range of its pages.
type copyItem struct {
	t        *table
	prog     *tableProgress
	src      int
	from, to int64 // pages [from, to); to < 0: to the end
}

func (it copyItem) query() string {
	q := "SELECT " + it.t.columnList() + " FROM ONLY " + it.t.ident()
	switch {
	case it.from > 0 && it.to >= 0:
		q += fmt.Sprintf(" WHERE ctid >= '(%d,0)'::tid AND ctid < '(%d,0)'::tid", it.from, it.to)
	case it.from > 0:
		q += fmt.Sprintf(" WHERE ctid >= '(%d,0)'::tid", it.from)
	case it.to >= 0:
		q += fmt.Sprintf(" WHERE ctid < '(%d,0)'::tid", it.to)
	}
	return "COPY (" + q + ") TO STDOUT (FORMAT binary)"
}

// copyItems splits the tables into work: per source shard that holds rows of the table, ranges of about
// ChunkBytes by the table's size there.
func (p *plan) copyItems(ctx context.Context, tables []*table, prog *progress) ([]copyItem, error) {
	var items []copyItem
	for _, e := range p.sources {
		c, err := connect(ctx, e)
		if err != nil {
			return nil, err
		}
		for _, t := range tables {
			if !publishes(e.idx, t) {
				continue
			}
			var pages, est int64
			if err := c.QueryRow(ctx, `SELECT pg_relation_size(oid) / current_setting('block_size')::int, greatest(reltuples, 0)::bigint
FROM pg_class WHERE oid = $1::regclass`, t.ident()).Scan(&pages, &est); err != nil {
				c.Close(ctx)
				return nil, fmt.Errorf("source shard %d: size of %s: %w", e.idx, t, err)
			}
			per := max(p.opt.ChunkBytes/8192, 1)
			tp := prog.table(t)
			tp.total.Add(est)
			for from := int64(0); ; from += per {
				to := from + per
				if to >= pages {
					to = -1 // the last range is open: it also covers pages added since the size was read
				}
				items = append(items, copyItem{t: t, prog: tp, src: e.idx, from: from, to: to})
				tp.items.Add(1)
				if to < 0 {
					break
				}
			}
		}
		c.Close(ctx)
	}
	return items, nil
}

// copyData runs the items on Workers parallel streams, all reading through the slots' snapshots.
func (p *plan) copyData(ctx context.Context, items []copyItem, slots []*slot) error {
	snap := map[int]string{}
	for _, s := range slots {
		snap[s.source] = s.snapshot
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	work := make(chan copyItem)
	var wg sync.WaitGroup
	for range min(p.opt.Workers, len(items)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := &copyWorker{p: p, src: map[int]*pgconn.PgConn{}}
			defer w.close()
			for it := range work {
				if err := w.run(ctx, it, snap[it.src]); err != nil {
					cancel(fmt.Errorf("copying %s from source shard %d: %w", it.t, it.src, err))
					return
				}
			}
		}()
	}
feed:
	for _, it := range items {
		select {
		case work <- it:
		case <-ctx.Done():
			break feed
		}
	}
	close(work)
	wg.Wait()
	return context.Cause(ctx)
}

// copyWorker is one copy stream: its connections to the source shards and to every destination.
type copyWorker struct {
	p     *plan
	src   map[int]*pgconn.PgConn
	dests []*pgconn.PgConn
}

func (w *copyWorker) close() {
	for _, c := range w.src {
		c.Close(context.Background())
	}
	for _, c := range w.dests {
		c.Close(context.Background())
	}
}

func (w *copyWorker) connect(ctx context.Context, srcIdx int) (*pgconn.PgConn, error) {
	if w.dests == nil {
		for _, e := range w.p.dests {
			c, err := pgconn.Connect(ctx, e.dsn())
			if err != nil {
				return nil, fmt.Errorf("destination shard %d: %w", e.idx, err)
			}
			w.dests = append(w.dests, c)
		}
	}
	if c := w.src[srcIdx]; c != nil {
		return c, nil
	}
	c, err := pgconn.Connect(ctx, w.p.sources[srcIdx].dsn())
	if err != nil {
		return nil, fmt.Errorf("source shard %d: %w", srcIdx, err)
	}
	w.src[srcIdx] = c
	return c, nil
}

// run copies one item: a binary COPY out of the source inside the snapshot, cut into rows, each row
// written to the COPY into its destination shard (every destination for a replicated table).
func (w *copyWorker) run(ctx context.Context, it copyItem, snapshot string) error {
	src, err := w.connect(ctx, it.src)
	if err != nil {
		return err
	}
	if _, err := src.Exec(ctx, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET TRANSACTION SNAPSHOT '"+snapshot+"'").ReadAll(); err != nil {
		return err
	}
	into := "COPY " + it.t.ident() + " (" + it.t.columnList() + ") FROM STDIN (FORMAT binary)"
	r := &rowRouter{t: it.t, prog: it.prog}
	results := make(chan error, len(w.dests))
	for _, d := range w.dests {
		pr, pw := io.Pipe()
		r.out = append(r.out, bufio.NewWriterSize(pw, 256<<10))
		r.pipes = append(r.pipes, pw)
		go func() {
			_, err := d.CopyFrom(ctx, pr, into)
			pr.CloseWithError(err) // a failed destination makes the writer side fail at once
			results <- err
		}()
	}
	split := codec.NewCopySplitter(codec.CopyOptions{Format: codec.CopyBinary, Table: it.t.String()}, max(it.t.key, 0))
	_, copyErr := src.CopyTo(ctx, writerFunc(func(b []byte) (int, error) { return len(b), split.Write(b, r) }), it.query())
	if copyErr == nil {
		copyErr = split.Close(r)
	}
	for i, out := range r.out {
		if copyErr == nil {
			copyErr = out.Flush()
		}
		if copyErr != nil {
			r.pipes[i].CloseWithError(copyErr) // the destination's COPY fails and rolls back
		} else {
			r.pipes[i].Close()
		}
	}
	for range w.dests {
		if err := <-results; err != nil && copyErr == nil {
			copyErr = err
		}
	}
	r.flushProgress()
	if copyErr != nil {
		return copyErr
	}
	_, err = src.Exec(ctx, "COMMIT").ReadAll()
	it.prog.itemDone()
	return err
}

// flushProgress adds the rows (and bytes) counted since the last time to the table's progress.
func (r *rowRouter) flushProgress() {
	r.prog.rows.Add(r.pending)
	r.prog.bytes.Add(r.pendingBytes)
	r.pending, r.pendingBytes = 0, 0
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(b []byte) (int, error) { return f(b) }

// rowRouter receives the rows the splitter cuts and writes each to its destination's COPY stream.
type rowRouter struct {
	t            *table
	prog         *tableProgress
	out          []*bufio.Writer
	pipes        []*io.PipeWriter
	pending      int64 // rows not yet added to prog
	pendingBytes int64 // and their bytes
}

func (r *rowRouter) all(b []byte) error {
	for _, w := range r.out {
		if _, err := w.Write(b); err != nil {
			return err
		}
	}
	return nil
}

func (r *rowRouter) CopyHeader(h []byte) error { return r.all(h) }
func (r *rowRouter) CopyEnd(m []byte) error    { return r.all(m) }

func (r *rowRouter) CopyRow(row, key []byte, isNull bool) error {
	r.pendingBytes += int64(len(row))
	if r.pending++; r.pending == 4096 {
		r.flushProgress()
		maybeDie(failCopyAt, copiedRows.Add(4096), "rows copied")
	}
	if !r.t.sharded() {
		return r.all(row)
	}
	if isNull {
		return fmt.Errorf("table %s has a row whose shard key %s is NULL: such a row has no shard; fix it on the source and rerun", r.t, r.t.columns[r.t.key].name)
	}
	d, cerr := r.t.newMapper.ShardBinary(key)
	if cerr != nil {
		return fmt.Errorf("table %s: %s", r.t, cerr.Message)
	}
	_, err := r.out[d].Write(row)
	return err
}

// tableProgress counts a table's copied rows.
type tableProgress struct {
	t     *table
	rows  atomic.Int64
	bytes atomic.Int64 // of the rows copied, in COPY's binary format
	total atomic.Int64 // the planner's estimate, summed over the source shards
	items atomic.Int64 // items not finished
}

func (tp *tableProgress) itemDone() { tp.items.Add(-1) }
