package route

import (
	"strings"
	"testing"
)

// A SELECT no merge answers is gathered from every shard, then run on one with the rows in its text; the
// mentions keep their aliases, qualified names their text, and a table mentioned twice is gathered once.
func TestCoordinatorStep(t *testing.T) {
	s := mustSchema(t, testDB())
	r := NewRouter(s, 100)
	for _, c := range []struct {
		sql, gather, coordinated string
	}{
		{
			"SELECT aid, row_number() OVER (ORDER BY aid) FROM accounts",
			"SELECT 0, pgshard_row::text FROM accounts AS pgshard_row",
			"SELECT aid, row_number() OVER (ORDER BY aid) FROM unnest($pgshard${R0}$pgshard$::accounts[]) AS accounts",
		},
		{
			"SELECT round(avg(a.abalance), 2) FROM accounts a JOIN sales.orders o ON o.oid = a.bid WHERE a.aid IN (SELECT aid FROM accounts WHERE abalance > 0)",
			"SELECT 0, pgshard_row::text FROM accounts AS pgshard_row UNION ALL SELECT 1, pgshard_row::text FROM sales.orders AS pgshard_row",
			"SELECT round(avg(a.abalance), 2) FROM unnest($pgshard${R0}$pgshard$::accounts[]) a JOIN unnest($pgshard${R1}$pgshard$::sales.orders[]) o ON o.oid = a.bid WHERE a.aid IN (SELECT aid FROM unnest($pgshard${R0}$pgshard$::accounts[]) AS accounts WHERE abalance > 0)",
		},
		{
			`SELECT count(DISTINCT "Key") FROM "Quoted"`,
			`SELECT 0, pgshard_row::text FROM "Quoted" AS pgshard_row`,
			`SELECT count(DISTINCT "Key") FROM unnest($pgshard${R0}$pgshard$::"Quoted"[]) AS "Quoted"`,
		},
	} {
		d := r.Query(c.sql, NoSession)
		if d.Err != nil || d.Gather == nil {
			t.Fatalf("%s: %+v, want a gather", c.sql, d)
		}
		if d.Gather.SQL != c.gather || d.Shards != s.allShards() {
			t.Errorf("%s: gathers %q from %b, want %q from every shard", c.sql, d.Gather.SQL, d.Shards, c.gather)
		}
		if said := d.String(); !strings.Contains(said, "coordinator step: each shard first runs "+c.gather) {
			t.Errorf("%s: SHOW ROUTE says %q", c.sql, said)
		}
		rows := make([]Rows, d.Gather.Tables)
		for i := range rows {
			rows[i] = Rows{[]byte("R"), []byte(string(rune('0' + i)))}
		}
		sess := NoSession
		sess.Gathered = rows
		d = r.Query(c.sql, sess)
		if d.Err != nil || d.Coordinated != c.coordinated {
			t.Errorf("%s: then\n%q (%v), want\n%q", c.sql, d.Coordinated, d.Err, c.coordinated)
		}
	}

	// The same shape with other literals (a cached plan) finds the mentions in its own text.
	for _, q := range []string{"SELECT sum(abalance) * 2 FROM accounts WHERE abalance > 1", "SELECT sum(abalance) * 2 FROM accounts WHERE abalance > 1000"} {
		sess := NoSession
		sess.Gathered = []Rows{{[]byte(`"(1,$pgshard$)"`)}}
		d := r.Query(q, sess)
		want := strings.Replace(q, "accounts", `unnest($pgshard1${"(1,$pgshard$)"}$pgshard1$::accounts[]) AS accounts`, 1)
		if d.Coordinated != want {
			t.Errorf("got %q, want %q", d.Coordinated, want)
		}
	}

	// What it does not take: a key that decides one shard, a write, FOR UPDATE, ONLY, a string of statements,
	// and pgshard.cross_shard = deny.
	for _, q := range []string{
		"SELECT sum(abalance) * 2 FROM accounts WHERE aid = 7",
		"SELECT * FROM accounts WHERE aid = 1 UNION SELECT * FROM accounts WHERE aid = 1",
	} {
		if d := r.Query(q, NoSession); d.Gather != nil || d.Err != nil {
			t.Errorf("%s: %+v, want one shard", q, d)
		}
	}
	for _, q := range []string{
		"SELECT sum(abalance) * 2 FROM ONLY accounts",
		"SELECT row_number() OVER () FROM accounts FOR UPDATE",
		"SELECT 1; SELECT sum(abalance) * 2 FROM accounts",
	} {
		if d := r.Query(q, NoSession); d.Gather != nil || d.Err == nil || d.Err.Code != "0A000" {
			t.Errorf("%s: %+v, want 0A000", q, d)
		}
	}
	if d := r.Query("SELECT sum(abalance) * 2 FROM accounts", Session{Shard: -1, CrossShard: CrossShardDeny}); d.Err == nil || d.Gather != nil {
		t.Errorf("deny: %+v", d)
	}
}

// The gather applies on the shards the conditions of the mention's own level that give the same answer there:
// comparisons of its columns with constants, not calls, parameters, subqueries or another table's columns.
func TestCoordinatorPushDown(t *testing.T) {
	r := NewRouter(mustSchema(t, testDB()), 100)
	for _, c := range []struct{ sql, gather string }{
		{"SELECT count(DISTINCT bid) FROM accounts WHERE abalance > 0 AND filler LIKE 'a%' AND random() < 0.5",
			"SELECT 0, pgshard_row::text FROM accounts AS pgshard_row WHERE abalance > 0 AND filler LIKE 'a%'"},
		{"SELECT count(DISTINCT a.bid) FROM accounts a WHERE a.abalance BETWEEN 1 AND 5 AND (bid IN (1, 2) OR a.filler IS NULL) AND accounts IS NOT NULL",
			"SELECT 0, pgshard_row::text FROM accounts AS pgshard_row WHERE pgshard_row.abalance BETWEEN 1 AND 5 AND (bid IN (1, 2) OR pgshard_row.filler IS NULL)"},
		{"SELECT stddev(abalance) FROM accounts WHERE abalance > $1 AND bid::text = '3'",
			"SELECT 0, pgshard_row::text FROM accounts AS pgshard_row WHERE bid::text = '3'"},
		{"SELECT stddev(a.abalance) FROM accounts a JOIN history h ON h.aid = a.aid WHERE a.abalance > 0",
			"SELECT 0, pgshard_row::text FROM accounts AS pgshard_row UNION ALL SELECT 1, pgshard_row::text FROM history AS pgshard_row"},
		{"SELECT stddev(abalance) FROM accounts a WHERE a.bid = 1 AND aid IN (SELECT aid FROM history WHERE tid = 1 AND history.delta > 2 AND history.delta > bid)",
			"SELECT 0, pgshard_row::text FROM accounts AS pgshard_row WHERE pgshard_row.bid = 1 UNION ALL SELECT 1, pgshard_row::text FROM history AS pgshard_row WHERE pgshard_row.delta > 2"},
		{"SELECT a.bid, (SELECT count(DISTINCT x.bid) FROM accounts x WHERE x.abalance > 1) FROM accounts a WHERE a.abalance > 2",
			"SELECT 0, pgshard_row::text FROM accounts AS pgshard_row WHERE pgshard_row.abalance > 2 UNION ALL SELECT 1, pgshard_row::text FROM accounts AS pgshard_row WHERE pgshard_row.abalance > 1"},
	} {
		d := r.Query(c.sql, NoSession)
		if d.Gather == nil || d.Gather.SQL != c.gather {
			t.Errorf("%s:\n got %+v\nwant %q", c.sql, d.Gather, c.gather)
		}
	}
}

// EXPLAIN of a statement the coordinator step answers shows the coordinating shard's plan: over no rows (nothing
// gathered), or with ANALYZE over the rows gathered; a NOTICE names what each shard runs first. EXPLAIN of what
// it cannot take goes to every shard, as before.
func TestCoordinatorExplain(t *testing.T) {
	s := mustSchema(t, testDB())
	r := NewRouter(s, 100)
	d := r.Query("EXPLAIN SELECT count(DISTINCT bid) FROM accounts WHERE abalance > 0", NoSession)
	if d.Err != nil || d.Gather != nil || d.Coordinated != "EXPLAIN SELECT count(DISTINCT bid) FROM unnest($pgshard${}$pgshard$::accounts[]) AS accounts WHERE abalance > 0" ||
		d.Warning == nil || d.Warning.Severity != "NOTICE" || !strings.Contains(d.Warning.Message, "SELECT 0, pgshard_row::text FROM accounts AS pgshard_row WHERE abalance > 0") {
		t.Errorf("EXPLAIN: %+v (notice %+v)", d, d.Warning)
	}
	for _, q := range []string{"EXPLAIN ANALYZE SELECT stddev(abalance) FROM accounts", "EXPLAIN (ANALYZE true, COSTS off) SELECT stddev(abalance) FROM accounts"} {
		if d := r.Query(q, NoSession); d.Gather == nil || d.Warning == nil {
			t.Errorf("%s: %+v, want a gather", q, d)
		}
	}
	if d := r.Query("EXPLAIN (ANALYZE off) SELECT stddev(abalance) FROM accounts", NoSession); d.Gather != nil || d.Coordinated == "" {
		t.Errorf("EXPLAIN (ANALYZE off): %+v", d)
	}
	for _, q := range []string{"EXPLAIN SELECT stddev(abalance) FROM ONLY accounts", "EXPLAIN SELECT count(*) FROM accounts"} {
		if d := r.Query(q, NoSession); d.Err != nil || d.Gather != nil || d.Coordinated != "" || d.Shards != s.allShards() {
			t.Errorf("%s: %+v, want every shard's own plan", q, d)
		}
	}
	if said := r.Prepare("EXPLAIN SELECT stddev(abalance) FROM accounts").String(); !strings.Contains(said, "answered by the coordinator step: cross-shard SELECT with the aggregate stddev()") {
		t.Errorf("SHOW ROUTE of an EXPLAIN: %q", said)
	}
}
