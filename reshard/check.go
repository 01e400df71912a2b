package reshard

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

// minServerVersion: pgoutput's messages option (the cutover marker) and TID range scans (copying a table
// in ctid ranges) came in Postgres 14.
const minServerVersion = 140000

func connect(ctx context.Context, e endpoint, extra ...string) (*pgx.Conn, error) {
	c, err := pgx.Connect(ctx, e.dsn(extra...))
	if err != nil {
		return nil, fmt.Errorf("shard %s: %w", e.srv, err)
	}
	return c, nil
}

// execOn runs sql (one or more statements) on the shard, over a connection of its own.
func execOn(ctx context.Context, e endpoint, sql string) error {
	c, err := connect(ctx, e)
	if err != nil {
		return err
	}
	defer c.Close(ctx)
	_, err = c.Exec(ctx, sql)
	return err
}

// problems collects what the checks find, so that the user sees every fix at once.
type problems []string

func (p *problems) add(format string, args ...any) { *p = append(*p, fmt.Sprintf(format, args...)) }

func (p problems) err() error {
	if len(p) == 0 {
		return nil
	}
	return errors.New("reshard cannot start:\n  - " + strings.Join(p, "\n  - "))
}

// check verifies everything the run needs before it changes anything. fresh says no destination holds
// state of an earlier run, so every destination must be empty.
func (p *plan) check(ctx context.Context, tables []*table, fresh bool) error {
	var probs problems
	var srcVersion int
	for _, e := range p.sources {
		c, err := connect(ctx, e)
		if err != nil {
			probs.add("%v", err)
			continue
		}
		var walLevel string
		var version int
		var repl bool
		var slotsFree, sendersFree int
		err = c.QueryRow(ctx, `SELECT current_setting('wal_level'), current_setting('server_version_num')::int,
  (SELECT rolsuper OR rolreplication FROM pg_roles WHERE rolname = current_user),
  current_setting('max_replication_slots')::int - (SELECT count(*) FROM pg_replication_slots WHERE slot_name NOT LIKE $1),
  current_setting('max_wal_senders')::int - (SELECT count(*) FROM pg_stat_replication)`, p.slotBase+"%").
			Scan(&walLevel, &version, &repl, &slotsFree, &sendersFree)
		c.Close(ctx)
		if err != nil {
			probs.add("source shard %d (%s): %v", e.idx, e.srv, err)
			continue
		}
		srcVersion = max(srcVersion, version)
		if walLevel != "logical" {
			probs.add("source shard %d (%s) has wal_level=%s: set wal_level = logical in its postgresql.conf and restart it", e.idx, e.srv, walLevel)
		}
		if version < minServerVersion {
			probs.add("source shard %d (%s) runs Postgres %d: resharding needs 14 or later", e.idx, e.srv, version/10000)
		}
		if !repl {
			probs.add("role %s may not use replication on source shard %d (%s): ALTER ROLE %s REPLICATION", e.user, e.idx, e.srv, pgx.Identifier{e.user}.Sanitize())
		}
		if slotsFree < 1 {
			probs.add("source shard %d (%s) has no free replication slot: raise max_replication_slots", e.idx, e.srv)
		}
		if sendersFree < 2 {
			probs.add("source shard %d (%s) has fewer than 2 free WAL senders: raise max_wal_senders", e.idx, e.srv)
		}
	}
	for _, t := range tables {
		switch {
		case t.kind == 'p':
			probs.add("table %s is partitioned: resharding partitioned tables is not supported; reshard its partitions' data another way", t)
		case t.persistence != 'p':
			probs.add("table %s is unlogged: logical replication cannot follow it; ALTER TABLE %s SET LOGGED", t, t.ident())
		case len(t.identity) == 0 && !t.identityFull:
			probs.add("table %s has no primary key, so its updates and deletes cannot be replayed: add one (ALTER TABLE %s ADD PRIMARY KEY (...)) or ALTER TABLE %s REPLICA IDENTITY FULL", t, t.ident(), t.ident())
		case t.sharded() && !t.identityHasKey():
			probs.add("the shard key %s of table %s is not in its primary key, so a delete would not say which shard holds the row: ALTER TABLE %s REPLICA IDENTITY FULL", t.columns[t.key].name, t, t.ident())
		}
	}
	for _, e := range p.dests {
		c, err := connect(ctx, e)
		if err != nil {
			probs.add("destination %v", err)
			continue
		}
		var version int
		var userTables []string
		err = c.QueryRow(ctx, `SELECT current_setting('server_version_num')::int,
  coalesce((SELECT array_agg(n.nspname || '.' || c.relname ORDER BY 1) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pgshard_reshard') AND n.nspname NOT LIKE 'pg\_%'), '{}')`).
			Scan(&version, &userTables)
		c.Close(ctx)
		if err != nil {
			probs.add("destination shard %d (%s): %v", e.idx, e.srv, err)
			continue
		}
		if version/10000 < srcVersion/10000 {
			probs.add("destination shard %d (%s) runs Postgres %d, older than the sources' %d: use %d or later", e.idx, e.srv, version/10000, srcVersion/10000, srcVersion/10000)
		}
		if fresh && len(userTables) > 0 {
			if len(userTables) > 5 {
				userTables = append(userTables[:5], "...")
			}
			probs.add("destination shard %d (%s) is not empty (it has %s): reshard into empty databases", e.idx, e.srv, strings.Join(userTables, ", "))
		}
	}
	for _, tool := range []string{"pg_dump", "psql"} {
		if _, err := p.pgTool(tool); err != nil {
			probs.add("%v", err)
		}
	}
	if err := p.pingAdmin(ctx); err != nil {
		probs.add("%v", err)
	}
	return probs.err()
}
