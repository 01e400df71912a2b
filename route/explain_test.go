package route

import (
	"strings"
	"testing"
)

func TestExplain(t *testing.T) {
	r := NewRouter(mustSchema(t, testDB()), 16)
	for _, tc := range []struct {
		sql            string
		decision, plan []string // substrings each must contain
	}{
		{"SELECT * FROM accounts WHERE aid = 42", []string{"shard "}, []string{"accounts.aid = literal 42", "the shards of those values"}},
		{"SELECT * FROM accounts WHERE aid IN (1, 2, 3, 4, 5, 6, 7, 8)", []string{"shards "}, []string{"one of (literal 1, literal 2"}},
		{"SELECT * FROM accounts a JOIN history h ON h.aid = a.aid WHERE a.aid = 5", []string{"shard "}, []string{"= literal 5"}},
		{"SELECT * FROM accounts WHERE aid = $1", []string{"shards 0, 1, 2, 3"}, []string{"accounts.aid = $1"}},
		{"SELECT count(*) FROM accounts", []string{"shards 0, 1, 2, 3", "rows merged"}, []string{"not constrained: every shard", "aggregates finished by pgshard"}},
		{"SELECT aid FROM accounts ORDER BY aid LIMIT 3", []string{"rows merged"}, []string{"sorted on 1 key(s)", "LIMIT"}},
		{"UPDATE branches SET bbalance = 0", []string{"shards 0, 1, 2, 3", "writes", "the same on each shard"}, []string{"every shard (DDL, or a write of replicated tables)"}},
		{"INSERT INTO accounts (aid) VALUES (7)", []string{"shard ", "writes"}, []string{"INSERT rows go to the shards of their accounts.aid (literal 7)"}},
		{"INSERT INTO accounts (aid) VALUES (7), ($1)", nil, []string{"accounts.aid (literal 7, $1)"}},
		{"SELECT 1", []string{"any one shard"}, []string{"no sharded table: any one shard"}},
		{"BEGIN", []string{"any one shard"}, []string{"session or transaction command"}},
		{"SELEC 1", []string{"any one shard"}, []string{"not parsed"}},
	} {
		d, p := r.Explain(tc.sql)
		ds, ps := d.String(), p.String()
		for _, want := range tc.decision {
			if !strings.Contains(ds, want) {
				t.Errorf("%s: decision %q lacks %q", tc.sql, ds, want)
			}
		}
		for _, want := range tc.plan {
			if !strings.Contains(ps, want) {
				t.Errorf("%s: plan %q lacks %q", tc.sql, ps, want)
			}
		}
	}
}
