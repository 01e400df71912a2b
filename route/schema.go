package route

import (
	"fmt"
	"reflect"
	"strings"

	"github.com/pgshard/pgshard/config"
	"github.com/pgshard/pgshard/route/shard"
)

// Schema is the routing view of one configured database: which tables are sharded (by which key column and
// mapper), which are replicated, and what to do with the others. It is immutable once built and may be shared
// by every Router of the database.
type Schema struct {
	name        string
	shards      int
	sharded     bool
	byName      map[string][]*keyRule // table name (folded) -> its rules, one per schema qualification
	byColumn    []*keyRule            // sharded_tables entries without table:, in config order
	replicated  map[string]bool       // folded names, unqualified or "schema.table"
	unlistedErr bool
	first       *keyRule // the first configured rule: key hints of statements without a sharded table
	mappers     []*shard.Mapper
}

// keyRule is one sharded_tables entry.
type keyRule struct {
	schema string // the schema the entry names ("" for any)
	table  string // "" for a column rule (every table with the column)
	column string
	mapper *shard.Mapper
}

// NewSchema builds the routing view of db. Table and column names from the configuration are folded to lower
// case as Postgres folds unquoted identifiers, unless written in double quotes ("MixedCase"); a name may be
// schema-qualified (sales.orders), in which case it matches only that schema or an unqualified reference.
func NewSchema(db *config.Database) (*Schema, error) {
	n := len(db.Shards)
	if n < 1 || n > MaxShards {
		return nil, fmt.Errorf("database %q: %d shards (want 1 to %d)", db.Name, n, MaxShards)
	}
	s := &Schema{
		name:        db.Name,
		shards:      n,
		sharded:     n > 1 || len(db.ShardedTables) > 0,
		byName:      map[string][]*keyRule{},
		replicated:  map[string]bool{},
		unlistedErr: db.UnlistedTables == config.UnlistedError,
	}
	for i := range db.ShardedTables {
		t := &db.ShardedTables[i]
		m, err := shard.NewMapper(t, n)
		if err != nil {
			return nil, fmt.Errorf("database %q: sharded_tables[%d]: %w", db.Name, i, err)
		}
		// Tables whose keys map alike share one Mapper: their rows of equal keys are on the same shard
		// (co-located), which joins on the key rely on.
		for j := 0; j < i; j++ {
			if sameMapping(&db.ShardedTables[j], t) {
				m = s.mappers[j]
				break
			}
		}
		s.mappers = append(s.mappers, m)
		col := shard.FoldName(t.Column)
		if col == "" {
			return nil, fmt.Errorf("database %q: sharded_tables[%d]: no column", db.Name, i)
		}
		r := &keyRule{column: col, mapper: m}
		if t.Table == "" {
			s.byColumn = append(s.byColumn, r)
		} else {
			r.schema, r.table = shard.SplitName(t.Table)
			s.byName[r.table] = append(s.byName[r.table], r)
		}
		if s.first == nil {
			s.first = r
		}
	}
	for _, name := range db.ReplicatedTables {
		schema, table := shard.SplitName(name)
		if schema != "" {
			table = schema + "." + table
		}
		s.replicated[table] = true
	}
	return s, nil
}

// Shards is the number of shards of the database.
func (s *Schema) Shards() int { return s.shards }

// Sharded is false for a plain pooled database (one shard, no sharded table): the proxy then sends everything
// to shard 0 and never needs the router.
func (s *Schema) Sharded() bool { return s.sharded }

// Name is the configured database name.
func (s *Schema) Name() string { return s.name }

// allShards is the mask of every shard.
func (s *Schema) allShards() uint64 {
	if s.shards >= 64 {
		return ^uint64(0)
	}
	return 1<<uint(s.shards) - 1
}

// relKind is what a relation named in a statement is to the router.
type relKind uint8

const (
	relUnlisted   relKind = iota // in no list
	relSharded                   // sharded_tables by name
	relColumn                    // not listed by name, under a column rule (sharded by that column)
	relReplicated                // replicated_tables
	relCatalog                   // pg_catalog, information_schema, pg_*: the same on every shard
)

// lookup classifies the relation schema.name (names as pg_query gives them: unquoted ones folded).
func (s *Schema) lookup(schema, name string) (relKind, *keyRule) {
	switch schema {
	case "pg_catalog", "information_schema", "pg_toast":
		return relCatalog, nil
	}
	for _, r := range s.byName[name] {
		if r.schema == "" || schema == "" || r.schema == schema {
			return relSharded, r
		}
	}
	if s.replicated[name] || schema != "" && s.replicated[schema+"."+name] {
		return relReplicated, nil
	}
	if schema == "" && strings.HasPrefix(name, "pg_") {
		return relCatalog, nil
	}
	if len(s.byColumn) > 0 {
		return relColumn, nil
	}
	return relUnlisted, nil
}

// columnRule returns the column rule for column col, or nil.
func (s *Schema) columnRule(col string) *keyRule {
	for _, r := range s.byColumn {
		if r.column == col {
			return r
		}
	}
	return nil
}

// sameMapping reports whether two sharded_tables entries map every key value to the same shard.
func sameMapping(a, b *config.ShardedTable) bool {
	ta, errA := shard.ParseType(a.Type)
	tb, errB := shard.ParseType(b.Type)
	return errA == nil && errB == nil && ta == tb && a.Mapping == b.Mapping &&
		reflect.DeepEqual(a.Values, b.Values) && reflect.DeepEqual(a.Ranges, b.Ranges)
}
