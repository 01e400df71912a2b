package reshard

import (
	"testing"

	"github.com/pgshard/pgshard/config"
)

func TestFirstAbove(t *testing.T) {
	for _, c := range []struct{ base, i, n, want int64 }{
		{0, 0, 2, 2}, {0, 1, 2, 1}, {5, 0, 2, 6}, {5, 1, 2, 7}, {1005, 3, 4, 1007}, {1007, 3, 4, 1011}, {9, 0, 1, 10},
	} {
		got := firstAbove(c.base, c.i, c.n)
		if got != c.want || got <= c.base || got%c.n != c.i {
			t.Errorf("firstAbove(%d, %d, %d) = %d, want %d", c.base, c.i, c.n, got, c.want)
		}
	}
}

func TestTableSharded(t *testing.T) {
	db := &config.Database{
		ShardedTables:    []config.ShardedTable{{Table: "accounts", Column: "aid"}, {Table: "s.orders", Column: "oid"}, {Column: "tenant_id"}},
		ReplicatedTables: []string{"branches", "plans"},
	}
	for _, c := range []struct {
		schema, table string
		ruleCol       bool
		want          bool
	}{
		{"public", "accounts", false, true},
		{"s", "orders", false, true},
		{"public", "orders", false, false},
		{"public", "events", true, true},     // has the column rule's column
		{"public", "branches", false, false}, // replicated
		{"public", "plans", true, false},     // replicated wins over the column rule
		{"public", "notes", false, false},    // unlisted
	} {
		if got := tableSharded(db, c.schema, c.table, c.ruleCol); got != c.want {
			t.Errorf("tableSharded(%s.%s, rule column %v) = %v, want %v", c.schema, c.table, c.ruleCol, got, c.want)
		}
	}
}
