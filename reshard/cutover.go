package reshard

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgshard/pgshard/reshard/status"
)

// cutover pauses the database in the proxy, drains every slot up to a marker written after the pause,
// checks row counts, advances sequences, switches the config and resumes. Until the RELOAD succeeds a
// failure resumes the old shards, untouched.
func (p *plan) cutover(ctx context.Context, streamers []*streamer, tables []*table, prog *progress, srcConns map[int]*pgx.Conn) (err error) {
	admin, err := p.adminConnect(ctx)
	if err != nil {
		return err
	}
	defer admin.Close(context.Background())
	db := p.opt.Database
	start := time.Now()
	pctx, cancel := context.WithTimeout(ctx, p.opt.PauseTimeout)
	err = adminExec(pctx, admin, "PAUSE "+db)
	cancel()
	if err != nil {
		return fmt.Errorf("%w (transactions still running after --pause-timeout %s?); the old shards keep serving", err, p.opt.PauseTimeout)
	}
	paused := time.Now()
	switched := false
	defer func() {
		if switched {
			return
		}
		// Resume on a fresh connection too, in case the failure was the console's.
		rctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if rerr := adminExec(rctx, admin, "RESUME "+db); rerr != nil {
			if c, cerr := p.adminConnect(rctx); cerr == nil {
				adminExec(rctx, c, "RESUME "+db)
				c.Close(rctx)
			}
		}
		prog.logf("cutover failed after %s of write pause; resumed on the old shards", time.Since(start).Round(time.Millisecond))
	}()
	prog.logf("writes paused after %s; draining the slots", paused.Sub(start).Round(time.Millisecond))

	id := fmt.Sprintf("cutover-%d", time.Now().UnixNano())
	for _, s := range streamers {
		s.markerChan(id)
		if err := emitMarker(ctx, srcConns[s.src.idx], id); err != nil {
			return fmt.Errorf("source shard %d: writing the cutover marker: %w", s.src.idx, err)
		}
	}
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for _, s := range streamers {
		select {
		case <-s.markerChan(id):
		case <-wctx.Done():
			return fmt.Errorf("source shard %d was not drained within a minute: %w", s.src.idx, context.Cause(wctx))
		}
	}
	drained := time.Now()
	if err := p.compareCounts(ctx, tables); err != nil {
		return err
	}
	counted := time.Now()
	if err := p.advanceSequences(ctx); err != nil {
		return err
	}
	if err := p.writeConfig(); err != nil {
		return fmt.Errorf("writing %s: %w", p.opt.ConfigPath, err)
	}
	if err := adminExec(ctx, admin, "RELOAD"); err != nil {
		if rerr := os.Rename(p.opt.ConfigPath+".before-reshard", p.opt.ConfigPath); rerr != nil {
			return fmt.Errorf("%w; and restoring %s failed: %v", err, p.opt.ConfigPath, rerr)
		}
		return err
	}
	switched = true
	if err := adminExec(ctx, admin, "RESUME "+db); err != nil {
		return fmt.Errorf("switched to the new shards, but %w: run RESUME %s in the admin console", err, db)
	}
	pause := time.Since(start)
	prog.setPause(pause)
	prog.logf("switched %s to %d shards; write pause %s (pause %s, drain %s, row counts %s, sequences and switch %s)",
		db, len(p.dests), pause.Round(time.Millisecond), paused.Sub(start).Round(time.Millisecond), drained.Sub(paused).Round(time.Millisecond),
		counted.Sub(drained).Round(time.Millisecond), time.Since(counted).Round(time.Millisecond))
	prog.tick(true)
	return nil
}

// finishSwitch ends a run that was stopped after it wrote the new config: the data was drained before the
// write, so RELOAD and RESUME (both harmless when already done) finish the switch, then the cleanup.
func (p *plan) finishSwitch(ctx context.Context, prog *progress) error {
	prog.logf("%s already names the new shards: finishing the switch", p.opt.ConfigPath)
	admin, err := p.adminConnect(ctx)
	if err != nil {
		return err
	}
	defer admin.Close(context.Background())
	for _, cmd := range []string{"RELOAD", "RESUME " + p.opt.Database} {
		if err := adminExec(ctx, admin, cmd); err != nil {
			return err
		}
	}
	if err := p.cleanup(ctx, prog); err != nil {
		return err
	}
	prog.phase(status.PhaseDone)
	return nil
}

// emitMarker writes the cutover marker into the source's WAL and flushes it: logical decoding reads only
// flushed WAL, and with synchronous_commit off a lone message would wait for the WAL writer (up to
// wal_writer_delay and more). A transaction with an xid, committed with synchronous_commit on, flushes
// everything before its commit record.
func emitMarker(ctx context.Context, c *pgx.Conn, id string) error {
	return pgx.BeginFunc(ctx, c, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SET LOCAL synchronous_commit = on"); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "SELECT pg_logical_emit_message(false, $1, $2)", markerPrefix, id); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, "SELECT pg_current_xact_id()")
		return err
	})
}

// compareCounts checks, per table, that the destinations hold as many rows as the sources: a sharded
// table's rows summed over the shards, a replicated table's on every destination.
func (p *plan) compareCounts(ctx context.Context, tables []*table) error {
	count := func(eps []endpoint) ([][]int64, error) {
		out := make([][]int64, len(eps))
		errs := make([]error, len(eps))
		var wg sync.WaitGroup
		for i, e := range eps {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c, err := connect(ctx, e)
				if err != nil {
					errs[i] = err
					return
				}
				defer c.Close(ctx)
				for _, t := range tables {
					var n int64
					if err := c.QueryRow(ctx, "SELECT count(*) FROM ONLY "+t.ident()).Scan(&n); err != nil {
						errs[i] = fmt.Errorf("shard %s: counting %s: %w", e.srv, t, err)
						return
					}
					out[i] = append(out[i], n)
				}
			}()
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	src, err := count(p.sources)
	if err != nil {
		return err
	}
	dst, err := count(p.dests)
	if err != nil {
		return err
	}
	var bad []string
	for ti, t := range tables {
		if t.sharded() {
			var s, d int64
			for i := range src {
				s += src[i][ti]
			}
			for i := range dst {
				d += dst[i][ti]
			}
			if s != d {
				bad = append(bad, fmt.Sprintf("%s: %d rows on the sources, %d on the destinations", t, s, d))
			}
			continue
		}
		for i := range dst {
			if dst[i][ti] != src[0][ti] {
				bad = append(bad, fmt.Sprintf("%s (replicated): %d rows on source shard 0, %d on destination shard %d", t, src[0][ti], dst[i][ti], i))
			}
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("row counts differ, so the cutover stops and the old shards keep serving:\n  %s", strings.Join(bad, "\n  "))
	}
	return nil
}

// advanceSequences sets every sequence on the destinations to the furthest value any source shard has
// handed out, so that nextval on a destination never repeats a source's value; those of sharded tables are
// then interleaved over the destinations (sequences.go), so that two new shards never repeat each other's.
func (p *plan) advanceSequences(ctx context.Context) error {
	furthest, err := p.advanceToSources(ctx)
	if err != nil {
		return err
	}
	sharded, err := shardedSequences(ctx, p.dests[0], p.newDB)
	if err != nil {
		return err
	}
	var seqs []shardedSequence
	var top []int64
	for _, s := range sharded {
		if f := furthest[s.name]; f.inc >= 0 { // one that counts down keeps the sources' value
			seqs = append(seqs, s)
			top = append(top, f.value) // 0 when no source handed out any
		}
	}
	if len(seqs) == 0 {
		return nil
	}
	return interleave(ctx, p.dests, seqs, top)
}

// sourceSeq is the furthest value the source shards' copies of a sequence handed out, and its increment.
type sourceSeq struct{ value, inc int64 }

// advanceToSources sets every sequence on the destinations to the furthest value any source handed out, and
// returns those values by sequence name.
func (p *plan) advanceToSources(ctx context.Context) (map[string]sourceSeq, error) {
	seqs := map[string]sourceSeq{}
	var order []string
	for _, e := range p.sources {
		c, err := connect(ctx, e)
		if err != nil {
			return nil, err
		}
		rows, err := c.Query(ctx, `SELECT quote_ident(schemaname) || '.' || quote_ident(sequencename), last_value, increment_by
FROM pg_sequences WHERE last_value IS NOT NULL AND schemaname <> 'pgshard_reshard'`)
		if err != nil {
			c.Close(ctx)
			return nil, fmt.Errorf("source shard %d: reading sequences: %w", e.idx, err)
		}
		for rows.Next() {
			var name string
			var v, inc int64
			if err := rows.Scan(&name, &v, &inc); err != nil {
				rows.Close()
				c.Close(ctx)
				return nil, err
			}
			s, seen := seqs[name]
			if !seen {
				order = append(order, name)
			}
			if !seen || inc > 0 && v > s.value || inc < 0 && v < s.value {
				seqs[name] = sourceSeq{value: v, inc: inc}
			}
		}
		err = rows.Err()
		c.Close(ctx)
		if err != nil {
			return nil, err
		}
	}
	if len(order) == 0 {
		return seqs, nil
	}
	for _, e := range p.dests {
		c, err := connect(ctx, e)
		if err != nil {
			return nil, err
		}
		for _, name := range order {
			if _, err := c.Exec(ctx, "SELECT setval($1::regclass, $2, true)", name, seqs[name].value); err != nil {
				c.Close(ctx)
				return nil, fmt.Errorf("destination shard %d: advancing sequence %s: %w", e.idx, name, err)
			}
		}
		c.Close(ctx)
	}
	return seqs, nil
}

// cleanup drops what the run made on the shards: the slots and publications on the sources, the
// pgshard_reshard schema on the destinations.
func (p *plan) cleanup(ctx context.Context, prog *progress) error {
	for _, e := range p.sources {
		if err := p.dropSlot(ctx, e, p.slotName(e.idx)); err != nil {
			return err
		}
		if err := execOn(ctx, e, "DROP PUBLICATION IF EXISTS "+p.publication()); err != nil {
			return fmt.Errorf("source shard %d: dropping the publication: %w", e.idx, err)
		}
	}
	for _, e := range p.dests {
		if err := execOn(ctx, e, "DROP SCHEMA IF EXISTS "+stateSchema+" CASCADE"); err != nil {
			return fmt.Errorf("destination shard %d: dropping schema %s: %w", e.idx, stateSchema, err)
		}
	}
	prog.logf("dropped the slots, publications and the %s schema", stateSchema)
	return nil
}

// abort removes what a run that did not switch left behind: slots and publications on the sources; on the
// destinations (only those holding the run's state, which were empty when it began) every table, sequence,
// view, function and type it created, by dropping and recreating their schemas.
func (p *plan) abort(ctx context.Context, prog *progress) error {
	if p.switched {
		// The destinations serve the database now: only the slots, publications and state go.
		return p.cleanup(ctx, prog)
	}
	for _, e := range p.dests {
		c, err := connect(ctx, e)
		if err != nil {
			return err
		}
		st, err := readDestState(ctx, c)
		if err == nil && st.exists {
			_, err = c.Exec(ctx, `DO $$
DECLARE s name;
BEGIN
  FOR s IN SELECT nspname FROM pg_namespace WHERE nspname NOT IN ('pg_catalog', 'information_schema', 'public')
      AND nspname NOT LIKE 'pg\_%' LOOP
    EXECUTE format('DROP SCHEMA %I CASCADE', s);
  END LOOP;
  DROP SCHEMA public CASCADE;
  CREATE SCHEMA public AUTHORIZATION pg_database_owner;
  GRANT USAGE ON SCHEMA public TO PUBLIC;
END $$`)
			if err == nil {
				prog.logf("emptied destination shard %d (%s)", e.idx, e.srv)
			}
		}
		c.Close(ctx)
		if err != nil {
			return fmt.Errorf("destination shard %d: %w", e.idx, err)
		}
	}
	return p.cleanup(ctx, prog)
}
