package reshard

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/pgshard/pgshard/config"
	"github.com/pgshard/pgshard/route/shard"
)

// table is one table to move, as the catalog of source shard 0 describes it.
type table struct {
	oid          uint32
	schema, name string
	persistence  byte
	kind         byte // relkind
	columns      []column
	identity     []int // indexes into columns of the replica identity (primary key or identity index)
	identityFull bool  // REPLICA IDENTITY FULL
	estRows      int64
	pages        int64

	key       int           // index into columns of the shard key; -1 for a replicated table
	newMapper *shard.Mapper // the key's mapping over the destination shards
}

type column struct {
	name string
	typ  string // format_type
}

func (t *table) sharded() bool { return t.key >= 0 }

// ident is the table's quoted, qualified name for SQL.
func (t *table) ident() string { return pgx.Identifier{t.schema, t.name}.Sanitize() }

// String is the table's name for people.
func (t *table) String() string {
	if t.schema == "public" {
		return t.name
	}
	return t.schema + "." + t.name
}

// columnList is the quoted column list, in catalog order.
func (t *table) columnList() string {
	var b strings.Builder
	for i, c := range t.columns {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(pgx.Identifier{c.name}.Sanitize())
	}
	return b.String()
}

func (t *table) kindName() string {
	if t.sharded() {
		return "sharded"
	}
	return "replicated"
}

// loadTables reads the user tables of a shard's database and classifies them under the new layout.
func loadTables(ctx context.Context, conn *pgx.Conn, db *config.Database) ([]*table, error) {
	rows, err := conn.Query(ctx, `
SELECT c.oid, n.nspname, c.relname, c.relpersistence, c.relkind, c.relreplident,
       greatest(c.reltuples, 0)::bigint, c.relpages::bigint
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
  AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pgshard_reshard')
  AND n.nspname NOT LIKE 'pg\_toast%' AND n.nspname NOT LIKE 'pg\_temp%'
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
ORDER BY n.nspname, c.relname`)
	if err != nil {
		return nil, err
	}
	var tables []*table
	byOID := map[uint32]*table{}
	for rows.Next() {
		t := &table{key: -1}
		var replident byte
		if err := rows.Scan(&t.oid, &t.schema, &t.name, &t.persistence, &t.kind, &replident, &t.estRows, &t.pages); err != nil {
			return nil, err
		}
		t.identityFull = replident == 'f'
		tables = append(tables, t)
		byOID[t.oid] = t
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows, err = conn.Query(ctx, `
SELECT a.attrelid, a.attname, format_type(a.atttypid, a.atttypmod)
FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
WHERE a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = '' AND c.relkind IN ('r', 'p')
ORDER BY a.attrelid, a.attnum`)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var oid uint32
		var c column
		if err := rows.Scan(&oid, &c.name, &c.typ); err != nil {
			return nil, err
		}
		if t := byOID[oid]; t != nil {
			t.columns = append(t.columns, c)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	// The replica identity: the index marked REPLICA IDENTITY USING INDEX, else the primary key (what
	// pgoutput sends as the old key of an UPDATE or DELETE).
	rows, err = conn.Query(ctx, `
SELECT i.indrelid, a.attname
FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
WHERE CASE c.relreplident WHEN 'i' THEN i.indisreplident WHEN 'd' THEN i.indisprimary ELSE i.indisprimary END
ORDER BY i.indrelid, k.ord`)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var oid uint32
		var name string
		if err := rows.Scan(&oid, &name); err != nil {
			return nil, err
		}
		if t := byOID[oid]; t != nil {
			if i := t.columnIndex(name); i >= 0 {
				t.identity = append(t.identity, i)
			}
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for _, t := range tables {
		if err := classify(t, db); err != nil {
			return nil, err
		}
	}
	sort.SliceStable(tables, func(i, j int) bool { return tables[i].pages > tables[j].pages })
	return tables, nil
}

func (t *table) columnIndex(name string) int {
	for i, c := range t.columns {
		if c.name == name {
			return i
		}
	}
	return -1
}

// classify finds the table's sharded_tables entry under the new layout, as the router does: by name first
// (schema-qualified entries match only their schema), then replicated_tables, then entries by column.
// Everything else is copied whole to every shard, as the router treats unlisted tables as replicated.
func classify(t *table, db *config.Database) error {
	var entry *config.ShardedTable
	for i := range db.ShardedTables {
		e := &db.ShardedTables[i]
		if e.Table == "" {
			continue
		}
		schema, name := shard.SplitName(e.Table)
		if name == t.name && (schema == "" || schema == t.schema) {
			entry = e
			break
		}
	}
	if entry == nil {
		for _, r := range db.ReplicatedTables {
			schema, name := shard.SplitName(r)
			if name == t.name && (schema == "" || schema == t.schema) {
				return nil
			}
		}
		for i := range db.ShardedTables {
			e := &db.ShardedTables[i]
			if e.Table == "" && t.columnIndex(shard.FoldName(e.Column)) >= 0 {
				entry = e
				break
			}
		}
	}
	if entry == nil {
		return nil
	}
	t.key = t.columnIndex(shard.FoldName(entry.Column))
	if t.key < 0 {
		return fmt.Errorf("table %s is sharded by %q in the config but has no such column", t, entry.Column)
	}
	m, err := shard.NewMapper(entry, len(db.Shards))
	if err != nil {
		return err
	}
	t.newMapper = m
	return nil
}

// identityHasKey reports whether pgoutput's old-row key of an UPDATE or DELETE carries the shard key, so
// the applier knows which destination held the row.
func (t *table) identityHasKey() bool {
	if t.identityFull {
		return true
	}
	for _, i := range t.identity {
		if i == t.key {
			return true
		}
	}
	return false
}
