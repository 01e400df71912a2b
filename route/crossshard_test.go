package route

import (
	"testing"

	"github.com/pgshard/pgshard/codec"
)

// pgshard.cross_shard guards scatters only: a statement on several shards for want of a key is refused
// (deny) or warned about (warn); what its keys or its nature send to one or to every shard runs as it would.
func TestCrossShardGuardsScattersOnly(t *testing.T) {
	s := mustSchema(t, testDB())
	e := newExpander(t, s)
	r := NewRouter(s, 100)
	cases := []struct {
		sql     string
		scatter bool
	}{
		{"SELECT * FROM accounts WHERE abalance > 0", true},
		{"SELECT count(*) FROM accounts", true},
		{"UPDATE accounts SET abalance = 0 WHERE bid = 1", true},
		{"DELETE FROM accounts", true},
		{"SELECT * FROM accounts WHERE aid = {k1}", false},
		{"SELECT * FROM accounts WHERE aid IN ({k1}, {k2})", false}, // keys decide: still several shards
		{"INSERT INTO accounts (aid, abalance) VALUES ({k1}, 0), ({k2}, 0)", false},
		{"SELECT * FROM branches", false},
		{"UPDATE branches SET bbalance = 0", false},
		{"CREATE INDEX ON accounts (bid)", false},
		{"SELECT 1", false},
		{"/* pgshard: shard=2 */ SELECT * FROM accounts", false},
	}
	for _, c := range cases {
		sql := e.sql(c.sql)
		allowed := r.Query(sql, NoSession)
		if allowed.Err != nil || allowed.Warning != nil {
			t.Fatalf("%s with cross_shard allow: %v, warning %v", sql, allowed.Err, allowed.Warning)
		}
		denied := r.Query(sql, Session{Shard: -1, CrossShard: CrossShardDeny})
		warned := r.Query(sql, Session{Shard: -1, CrossShard: CrossShardWarn})
		if !c.scatter {
			if denied.Err != nil || warned.Warning != nil || denied.Shards != allowed.Shards || denied.Any != allowed.Any {
				t.Errorf("%s is not a scatter: deny gave %v, warn %v", sql, denied.Err, warned.Warning)
			}
			continue
		}
		if denied.Err == nil || denied.Err.Code != codec.SQLStateFeatureNotSupported || denied.Write != allowed.Write {
			t.Errorf("%s with cross_shard deny: %v, want 0A000", sql, denied.Err)
		}
		if warned.Err != nil || warned.Warning == nil || warned.Warning.Severity != "WARNING" || warned.Shards != allowed.Shards {
			t.Errorf("%s with cross_shard warn: err %v, warning %v, shards %b (want %b)", sql, warned.Err, warned.Warning, warned.Shards, allowed.Shards)
		}
	}
	// Prepared statements: the guard applies at Bind, where the key's value is known.
	p := r.Prepare("SELECT * FROM accounts WHERE aid = $1 OR $1 IS NULL")
	if d := r.Bind(p, Params{Values: [][]byte{[]byte("1")}}, Session{Shard: -1, CrossShard: CrossShardDeny}); d.Err == nil {
		t.Errorf("a prepared scatter passed deny: %+v", d)
	}
	if v, ok := ParseCrossShard("DENY"); !ok || v != CrossShardDeny {
		t.Error("ParseCrossShard(DENY)")
	}
	if _, ok := ParseCrossShard("sometimes"); ok {
		t.Error("ParseCrossShard accepted sometimes")
	}
}
