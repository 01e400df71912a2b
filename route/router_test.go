package route

import (
	"testing"

	"github.com/pgshard/pgshard/codec"
	"github.com/pgshard/pgshard/config"
)

const (
	notSupported = codec.SQLStateFeatureNotSupported
	badValue     = codec.SQLStateInvalidParameterValue
)

type queryCase struct {
	name string
	sql  string
	want want
}

// runQueries routes each case twice, on a fresh router (a plan-cache miss) and again (a hit), and checks both.
func runQueries(t *testing.T, s *Schema, cases []queryCase) {
	t.Helper()
	e := newExpander(t, s)
	shared := NewRouter(s, 1000)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sql := e.sql(c.sql)
			c.want.check(t, sql+" (miss)", NewRouter(s, 10).Query(sql, NoSession))
			shared.Query(sql, NoSession)
			c.want.check(t, sql+" (hit)", shared.Query(sql, NoSession))
		})
	}
}

func TestRouteSelect(t *testing.T) {
	s := mustSchema(t, testDB())
	u := shardOfText(t, s, "users", "o'brien")
	_ = u
	runQueries(t, s, []queryCase{
		{"key equals literal", "SELECT abalance FROM accounts WHERE aid = {k1}", on(1)},
		{"other shard", "SELECT abalance FROM accounts WHERE aid = {k2}", on(2)},
		{"literal on the left", "SELECT * FROM accounts WHERE {k3} = aid", on(3)},
		{"upper case names", "select * from ACCOUNTS where AID = {k2}", on(2)},
		{"quoted names", `SELECT * FROM "accounts" WHERE "aid" = {k1}`, on(1)},
		{"quoted upper case is another table", `SELECT * FROM "Accounts" WHERE aid = {k1}`, anyShard()},
		{"schema qualified", "SELECT * FROM public.accounts WHERE aid = {k2}", on(2)},
		{"other schema", "SELECT * FROM s.accounts WHERE aid = {k3}", on(3)},
		{"alias", "SELECT a.abalance FROM accounts a WHERE a.aid = {k3}", on(3)},
		{"alias with AS", "SELECT x.abalance FROM accounts AS x WHERE x.aid = {k0}", on(0)},
		{"table name qualifier", "SELECT * FROM accounts WHERE accounts.aid = {k1}", on(1)},
		{"schema.table.column", "SELECT * FROM public.accounts WHERE public.accounts.aid = {k1}", on(1)},
		{"qualifier of a non-key column", "SELECT * FROM accounts a WHERE a.bid = {k1}", allShards()},
		{"with other conditions", "SELECT * FROM accounts WHERE aid = {k1} AND abalance > 0 AND bid = 3", on(1)},
		{"nested AND", "SELECT * FROM accounts WHERE (abalance > 0 AND (aid = {k2} AND bid = 1))", on(2)},
		{"OR", "SELECT * FROM accounts WHERE aid = {k1} OR aid = {k2}", allShards()},
		{"key under OR", "SELECT * FROM accounts WHERE aid = {k1} OR abalance > 5", allShards()},
		{"AND inside OR", "SELECT * FROM accounts WHERE (aid = {k1} AND bid = 1) OR bid = 2", allShards()},
		{"NOT", "SELECT * FROM accounts WHERE NOT (aid = {k1})", allShards()},
		{"inequality", "SELECT * FROM accounts WHERE aid > {k1}", allShards()},
		{"not equal", "SELECT * FROM accounts WHERE aid <> {k1}", allShards()},
		{"BETWEEN", "SELECT * FROM accounts WHERE aid BETWEEN {k1} AND {k2}", allShards()},
		{"IN list", "SELECT * FROM accounts WHERE aid IN ({k1}, {k2})", on(1, 2)},
		{"IN list one shard", "SELECT * FROM accounts WHERE aid IN ({k1}, {K1})", on(1)},
		{"IN list with param in Query", "SELECT * FROM accounts WHERE aid IN ({k1}, $1)", allShards()},
		{"NOT IN", "SELECT * FROM accounts WHERE aid NOT IN ({k1})", allShards()},
		{"IN with an expression", "SELECT * FROM accounts WHERE aid IN ({k1}, {k2} + 1)", allShards()},
		{"contradiction", "SELECT * FROM accounts WHERE aid = {k1} AND aid = {k2}", anyShard()},
		{"intersection", "SELECT * FROM accounts WHERE aid IN ({k1}, {k2}) AND aid IN ({k2}, {k3})", on(2)},
		{"equal to itself", "SELECT * FROM accounts WHERE aid = {k1} AND aid = {k1}", on(1)},
		{"NULL", "SELECT * FROM accounts WHERE aid = NULL", anyShard()},
		{"NULL in IN", "SELECT * FROM accounts WHERE aid IN (NULL, {k3})", on(3)},
		{"IS NULL", "SELECT * FROM accounts WHERE aid IS NULL", allShards()},
		{"= ANY", "SELECT * FROM accounts WHERE aid = ANY('{1,2}')", allShards()},
		{"function of the key", "SELECT * FROM accounts WHERE abs(aid) = {k1}", allShards()},
		{"cast of the key", "SELECT * FROM accounts WHERE aid::text = '{k1}'", allShards()},
		{"function of the value", "SELECT * FROM accounts WHERE aid = abs({k1})", allShards()},
		{"arithmetic", "SELECT * FROM accounts WHERE aid = {k1} + 0", allShards()},
		{"no WHERE", "SELECT * FROM accounts", allShards()},
		{"key to another column", "SELECT * FROM accounts WHERE aid = bid", allShards()},
		{"string literal", "SELECT * FROM accounts WHERE aid = '{k2}'", on(2)},
		{"cast literal", "SELECT * FROM accounts WHERE aid = '{k2}'::bigint", on(2)},
		{"cast number", "SELECT * FROM accounts WHERE aid = {k3}::int8", on(3)},
		{"CAST()", "SELECT * FROM accounts WHERE aid = CAST({k0} AS bigint)", on(0)},
		{"typed literal", "SELECT * FROM accounts WHERE aid = bigint '{k1}'", on(1)},
		{"double cast", "SELECT * FROM accounts WHERE aid = '{k1}'::text::bigint", on(1)},
		{"negative", "SELECT * FROM accounts WHERE aid = {n2}", on(2)},
		{"negative with a space", "SELECT * FROM accounts WHERE aid = - {m3}", on(3)},
		{"negative with a comment", "SELECT * FROM accounts WHERE aid = - /* c */ {m1}", on(1)},
		{"negative cast binds tighter", "SELECT * FROM accounts WHERE aid = -{m1}::bigint", allShards()},
		{"fraction", "SELECT * FROM accounts WHERE aid = 5.0", allShards()},
		{"too large", "SELECT * FROM accounts WHERE aid = 99999999999999999999", allShards()},
		{"bit string", "SELECT * FROM accounts WHERE aid = B'101'", allShards()},
		{"boolean", "SELECT * FROM accounts WHERE aid = true", allShards()},
		{"comments", "/* hello */ SELECT * -- x\n FROM accounts WHERE /* y */ aid = {k1} -- z", on(1)},
		{"trailing semicolon", "SELECT * FROM accounts WHERE aid = {k1};", on(1)},
		{"FOR UPDATE", "SELECT * FROM accounts WHERE aid = {k1} FOR UPDATE", writeOn(1)},
		{"FOR SHARE of replicated", "SELECT * FROM branches FOR SHARE", want{any: true, write: true}},
		{"mixed case config name", "SELECT * FROM mixed WHERE key = 7", want{shards: shardOfText(t, s, "mixed", "7")}},
		{"quoted config name", `SELECT * FROM "Quoted" WHERE "Key" = 7`, want{shards: shardOfText(t, s, "Quoted", "7")}},
		{"quoted config name unquoted", `SELECT * FROM quoted WHERE key = 7`, anyShard()},
		{"schema-qualified config name", "SELECT * FROM sales.orders WHERE oid = 7", want{shards: shardOfText(t, s, "orders", "7")}},
		{"schema-qualified config name, unqualified", "SELECT * FROM orders WHERE oid = 7", want{shards: shardOfText(t, s, "orders", "7")}},
		{"schema-qualified config name, other schema", "SELECT * FROM other.orders WHERE oid = 7", anyShard()},
	})
}

func TestRouteJoinsAndSubqueries(t *testing.T) {
	s := mustSchema(t, testDB())
	runQueries(t, s, []queryCase{
		{"join on the key", "SELECT * FROM accounts a JOIN history h ON h.aid = a.aid WHERE a.aid = {k2}", on(2)},
		{"join, condition on the other side", "SELECT * FROM accounts a JOIN history h ON h.aid = a.aid WHERE h.aid = {k1}", on(1)},
		{"join condition in ON", "SELECT * FROM accounts a JOIN history h ON h.aid = a.aid AND a.aid = {k3}", on(3)},
		{"comma join", "SELECT * FROM accounts a, history h WHERE h.aid = a.aid AND h.aid = {k2}", on(2)},
		{"USING", "SELECT * FROM accounts JOIN history USING (aid) WHERE accounts.aid = {k3}", on(3)},
		{"three tables", "SELECT * FROM accounts a JOIN history h ON h.aid = a.aid JOIN history g ON g.aid = h.aid WHERE g.aid = {k0}", on(0)},
		{"join not on the key", "SELECT * FROM accounts a JOIN history h ON h.tid = a.bid WHERE a.aid = {k1}", refused(notSupported,
			"cross-shard SELECT combining rows of accounts and history not joined on their shard keys is not supported yet: join them on the shard key, or add the shard key (aid = ...) to the WHERE clause or a /* pgshard: shard=N */ comment")},
		{"both keyed, two shards", "SELECT * FROM accounts a JOIN history h ON h.tid = a.bid WHERE a.aid = {k1} AND h.aid = {k2}", refused(notSupported, "not joined on their shard keys")},
		{"both keyed, one shard", "SELECT * FROM accounts a JOIN history h ON h.tid = a.bid WHERE a.aid = {k1} AND h.aid = {K1}", on(1)},
		{"join on keys mapped differently", "SELECT * FROM accounts a JOIN pgbench_accounts p ON p.aid = a.aid", refused(notSupported, "combining rows of accounts and pgbench_accounts")},
		{"self join on the key", "SELECT * FROM accounts a JOIN accounts b ON b.aid = a.aid", allShards()},
		{"left join, key on the preserved side", "SELECT * FROM accounts a LEFT JOIN history h ON h.aid = a.aid WHERE a.aid = {k2}", on(2)},
		{"left join, condition in ON only", "SELECT * FROM accounts a LEFT JOIN history h ON h.aid = a.aid AND h.aid = {k1}", allShards()},
		{"left join, ON value ignored", "SELECT * FROM accounts a LEFT JOIN history h ON h.aid = a.aid AND h.aid = {k1} WHERE a.aid = {k2}", on(2)},
		{"join with replicated", "SELECT * FROM accounts a JOIN branches b ON b.bid = a.bid WHERE a.aid = {k1}", on(1)},
		{"unqualified key with replicated", "SELECT * FROM accounts JOIN branches USING (bid) WHERE aid = {k1}", on(1)},
		{"ambiguous unqualified key", "SELECT * FROM accounts a JOIN history h ON true WHERE aid = {k1}", refused(notSupported, "not joined on their shard keys")},
		{"IN subquery keyed", "SELECT * FROM branches WHERE bid IN (SELECT bid FROM accounts WHERE aid = {k1})", on(1)},
		{"IN subquery without key", "SELECT * FROM branches WHERE bid IN (SELECT bid FROM accounts)", refused(notSupported,
			"cross-shard SELECT whose rows do not come from a sharded table (it reads accounts only in a subquery) is not supported yet")},
		{"scalar subquery without key", "SELECT (SELECT max(aid) FROM accounts WHERE aid IN ({k1}, {k2}))", refused(notSupported, "do not come from a sharded table")},
		{"scalar subquery over two shards", "SELECT (SELECT aid FROM accounts WHERE aid IN ({k1}, {k2}) AND abalance = 7)", refused(notSupported, "do not come from a sharded table")},
		{"keyed with unkeyed subquery", "SELECT * FROM accounts WHERE aid = {k1} AND bid IN (SELECT tid FROM history)", refused(notSupported, "not joined on their shard keys")},
		{"keyed with keyed subquery elsewhere", "SELECT * FROM accounts WHERE abalance > (SELECT abalance FROM accounts WHERE aid = {k2})", refused(notSupported, "combining rows of accounts and accounts")},
		{"keyed with keyed subquery", "SELECT * FROM accounts WHERE aid = {k1} AND bid IN (SELECT tid FROM history WHERE aid = {K1})", on(1)},
		{"correlated EXISTS", "SELECT * FROM accounts a WHERE a.aid = {k1} AND EXISTS (SELECT 1 FROM history h WHERE h.aid = a.aid)", on(1)},
		{"unqualified name in subquery is not the outer key", "SELECT * FROM accounts a WHERE EXISTS (SELECT 1 FROM branches b WHERE aid = {k1})", allShards()},
		{"scalar subquery in target list", "SELECT (SELECT abalance FROM accounts WHERE aid = {k2}) AS x", on(2)},
		{"derived table", "SELECT * FROM (SELECT * FROM accounts WHERE aid = {k2}) s", on(2)},
		{"derived table without key", "SELECT * FROM (SELECT * FROM accounts) s WHERE s.aid = {k2}", allShards()},
		{"lateral", "SELECT * FROM branches b, LATERAL (SELECT * FROM accounts a WHERE a.aid = {k3}) x", on(3)},
		{"CTE", "WITH x AS (SELECT * FROM accounts WHERE aid = {k1}) SELECT * FROM x", on(1)},
		{"CTE without key", "WITH x AS (SELECT * FROM accounts) SELECT * FROM x WHERE aid = {k1}", allShards()},
		{"CTE shadows a table", "WITH accounts AS (SELECT 1 AS aid) SELECT * FROM accounts", anyShard()},
		{"recursive CTE", "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 5) SELECT * FROM r", anyShard()},
		{"UNION ALL", "SELECT aid FROM accounts WHERE aid = {k1} UNION ALL SELECT aid FROM accounts WHERE aid = {k2}", on(1, 2)},
		{"UNION ALL with an unsharded branch", "SELECT aid FROM accounts UNION ALL SELECT bid FROM branches", refused(notSupported, "do not come from a sharded table")},
		{"UNION ALL with an unsharded branch on one shard", "SELECT aid FROM accounts WHERE aid = {k3} UNION ALL SELECT 1", on(3)},
		{"UNION ALL of CTEs", "WITH x AS (SELECT aid FROM accounts) SELECT * FROM x UNION ALL SELECT * FROM x", allShards()},
		{"UNION on one shard", "SELECT aid FROM accounts WHERE aid = {k1} UNION SELECT aid FROM accounts WHERE aid = {K1}", on(1)},
		{"UNION across shards", "SELECT aid FROM accounts WHERE aid = {k1} UNION SELECT aid FROM accounts WHERE aid = {k2}", refused(notSupported, "cross-shard SELECT with UNION is not supported yet")},
		{"INTERSECT", "SELECT aid FROM accounts INTERSECT SELECT aid FROM history", refused(notSupported, "INTERSECT")},
		{"EXCEPT", "SELECT aid FROM accounts EXCEPT SELECT aid FROM history", refused(notSupported, "EXCEPT")},
		{"UNION of replicated", "SELECT bid FROM branches UNION SELECT tid FROM pgbench_tellers", anyShard()},
		{"text key", "SELECT * FROM users WHERE name = 'alice'", want{shards: shardOfText(t, s, "users", "alice")}},
		{"text key with quote", "SELECT * FROM users WHERE name = 'o''brien'", want{shards: shardOfText(t, s, "users", "o'brien")}},
		{"text key with E escapes", `SELECT * FROM users WHERE name = E'a\nb\\c'`, want{shards: shardOfText(t, s, "users", "a\nb\\c")}},
		{"text key, backslash in standard string", `SELECT * FROM users WHERE name = 'a\nb'`, want{shards: shardOfText(t, s, "users", `a\nb`)}},
		{"text key dollar quoted", "SELECT * FROM users WHERE name = $tag$it's$tag$", want{shards: shardOfText(t, s, "users", "it's")}},
		{"text key unicode escapes", `SELECT * FROM users WHERE name = U&'d\0061t\+000061'`, want{shards: shardOfText(t, s, "users", "data")}},
		{"text key continued", "SELECT * FROM users WHERE name = 'ab'\n'cd'", want{shards: shardOfText(t, s, "users", "abcd")}},
		{"text key number", "SELECT * FROM users WHERE name = '42'", want{shards: shardOfText(t, s, "users", "42")}},
		{"text key IN", "SELECT * FROM users WHERE name IN ('a', 'b', 'c', 'd', 'e', 'f', 'g', 'h')", want{shards: shardOfText(t, s, "users", "a") | shardOfText(t, s, "users", "b") | shardOfText(t, s, "users", "c") | shardOfText(t, s, "users", "d") | shardOfText(t, s, "users", "e") | shardOfText(t, s, "users", "f") | shardOfText(t, s, "users", "g") | shardOfText(t, s, "users", "h")}},
		{"uuid key", "SELECT * FROM devices WHERE id = 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'", want{shards: shardOfText(t, s, "devices", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11")}},
		{"uuid key cast", "SELECT * FROM devices WHERE id = 'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11'::uuid", want{shards: shardOfText(t, s, "devices", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11")}},
		{"bad uuid", "SELECT * FROM devices WHERE id = 'nope'", refused(codec.SQLStateInvalidTextRepresentation, "")},
		{"bad integer", "SELECT * FROM accounts WHERE aid = 'abc'", refused(codec.SQLStateInvalidTextRepresentation, "")},
		{"list mapping", "SELECT * FROM events WHERE region = 'uk'", on(0)},
		{"list mapping IN", "SELECT * FROM events WHERE region IN ('us', 'au')", on(1, 3)},
		{"hex literal", "SELECT * FROM accounts WHERE aid = 0x1F", want{shards: shardOfText(t, s, "accounts", "31")}},
		{"underscores", "SELECT * FROM accounts WHERE aid = 1_000", want{shards: shardOfText(t, s, "accounts", "1000")}},
		{"leading zero is decimal", "SELECT * FROM accounts WHERE aid = 010", want{shards: shardOfText(t, s, "accounts", "10")}},
	})
}

func TestRouteShapes(t *testing.T) {
	s := mustSchema(t, testDB())
	const hint = "add the shard key (aid = ...) to the WHERE clause or a /* pgshard: shard=N */ comment"
	runQueries(t, s, []queryCase{
		{"ORDER BY merged", "SELECT * FROM accounts ORDER BY aid", allShards()},
		{"ORDER BY message", "SELECT * FROM accounts ORDER BY aid USING ~<~", refused(notSupported,
			"cross-shard SELECT with ORDER BY ... USING ~<~ is not supported: "+hint)},
		{"ORDER BY on one shard", "SELECT * FROM accounts WHERE aid = {k1} ORDER BY abalance LIMIT 5", on(1)},
		{"ORDER BY on two shards", "SELECT * FROM accounts WHERE aid IN ({k1}, {k2}) ORDER BY abalance", on(1, 2)},
		{"ORDER BY on a contradiction", "SELECT * FROM accounts WHERE aid = {k1} AND aid = {k2} ORDER BY 1", anyShard()},
		{"LIMIT", "SELECT * FROM accounts LIMIT 10", allShards()},
		{"OFFSET", "SELECT * FROM accounts OFFSET 10", allShards()},
		{"FETCH FIRST", "SELECT * FROM accounts FETCH FIRST 3 ROWS ONLY", allShards()},
		{"LIMIT expression", "SELECT * FROM accounts LIMIT 2 * 5", refused(notSupported, "LIMIT or OFFSET given by an expression")},
		{"count", "SELECT count(*) FROM accounts", allShards()},
		{"count(DISTINCT)", "SELECT count(DISTINCT bid) FROM accounts", refused(notSupported, "cross-shard SELECT with count(DISTINCT ...) is not supported: "+hint)},
		{"sum over IN", "SELECT sum(abalance) FROM accounts WHERE aid IN ({k1}, {k2})", on(1, 2)},
		{"sum on one shard", "SELECT sum(abalance) FROM accounts WHERE aid = {k1}", on(1)},
		{"qualified aggregate", "SELECT pg_catalog.max(abalance) FROM accounts", allShards()},
		{"other aggregate", "SELECT stddev(abalance) FROM accounts", refused(notSupported, "the aggregate stddev()")},
		{"aggregate syntax", "SELECT my_agg(DISTINCT abalance) FROM accounts", refused(notSupported, "my_agg(DISTINCT ...)")},
		{"GROUP BY", "SELECT bid FROM accounts GROUP BY bid", allShards()},
		{"several shapes", "SELECT bid, count(*) FROM accounts GROUP BY bid HAVING count(*) > 1 ORDER BY 2 LIMIT 3", allShards()},
		{"GROUPING SETS", "SELECT bid, count(*) FROM accounts GROUP BY ROLLUP (bid)", refused(notSupported, "GROUPING SETS, ROLLUP or CUBE")},
		{"DISTINCT", "SELECT DISTINCT bid FROM accounts", allShards()},
		{"DISTINCT ON", "SELECT DISTINCT ON (bid) * FROM accounts", allShards()},
		{"window", "SELECT row_number() OVER (ORDER BY aid) FROM accounts", refused(notSupported, "window functions")},
		{"aggregate as window", "SELECT sum(abalance) OVER () FROM accounts", refused(notSupported, "window functions")},
		{"plain function", "SELECT lower(name) FROM users", allShards()},
		{"aggregate over replicated", "SELECT max(bbalance) FROM branches ORDER BY 1", anyShard()},
		{"aggregate in subquery over replicated", "SELECT * FROM accounts WHERE abalance > (SELECT avg(bbalance) FROM branches)", allShards()},
		{"aggregate in subquery over sharded", "SELECT * FROM branches WHERE bbalance > (SELECT avg(abalance) FROM accounts)", refused(notSupported, "do not come from a sharded table")},
		{"aggregate in a co-located subquery", "SELECT * FROM accounts a WHERE abalance > (SELECT avg(delta) FROM history h WHERE h.aid = a.aid)", allShards()},
		{"LIMIT in a co-located subquery", "SELECT * FROM accounts a WHERE EXISTS (SELECT 1 FROM history h WHERE h.aid = a.aid ORDER BY h.delta LIMIT 1)", allShards()},
		{"aggregate in a subquery on other rows", "SELECT * FROM accounts a WHERE abalance > (SELECT avg(delta) FROM history h)", refused(notSupported, "not joined on their shard keys")},
		{"LIMIT in a derived table", "SELECT * FROM (SELECT * FROM accounts LIMIT 5) s", refused(notSupported, "LIMIT")},
		{"aggregate over derived table", "SELECT count(*) FROM (SELECT * FROM accounts) s", allShards()},
		{"aggregate over an aggregating derived table", "SELECT count(*) FROM (SELECT bid FROM accounts GROUP BY bid) s", refused(notSupported, "aggregate count() and GROUP BY")},
		{"LIMIT in CTE", "WITH x AS (SELECT * FROM accounts LIMIT 5) SELECT * FROM x", refused(notSupported, "LIMIT")},
		{"catalog ORDER BY", "SELECT relname FROM pg_catalog.pg_class ORDER BY 1 LIMIT 5", anyShard()},
		{"EXPLAIN", "EXPLAIN SELECT count(*) FROM accounts", allShards()},
		{"DECLARE", "DECLARE c CURSOR FOR SELECT * FROM accounts ORDER BY aid", refused(notSupported, "ORDER BY")},
		{"JSON aggregate", "SELECT JSON_ARRAYAGG(aid) FROM accounts", refused(notSupported, "JSON_ARRAYAGG")},
	})
}

func TestRouteWrites(t *testing.T) {
	s := mustSchema(t, testDB())
	const give = "give the shard key column aid a value"
	runQueries(t, s, []queryCase{
		{"insert", "INSERT INTO accounts (aid, bid, abalance) VALUES ({k1}, 1, 0)", writeOn(1)},
		{"insert key last", "INSERT INTO accounts (bid, aid) VALUES (1, {k2})", writeOn(2)},
		{"insert schema qualified", "INSERT INTO public.accounts (aid) VALUES ({k3})", writeOn(3)},
		{"insert quoted column", `INSERT INTO accounts ("aid") VALUES ({k3})`, writeOn(3)},
		{"insert string key", "INSERT INTO accounts (aid) VALUES ('{k3}')", writeOn(3)},
		{"insert cast key", "INSERT INTO accounts (aid) VALUES ({k0}::bigint)", writeOn(0)},
		{"insert negative key", "INSERT INTO accounts (aid) VALUES ({n1})", writeOn(1)},
		{"insert rows of one shard", "INSERT INTO accounts (aid, bid) VALUES ({k1}, 1), ({K1}, 2)", writeOn(1)},
		{"insert NULL key", "INSERT INTO accounts (aid) VALUES (NULL)", want{any: true, write: true}},
		{"insert on conflict", "INSERT INTO accounts (aid, abalance) VALUES ({k2}, 1) ON CONFLICT (aid) DO UPDATE SET abalance = excluded.abalance", writeOn(2)},
		{"insert on conflict do nothing", "INSERT INTO accounts (aid) VALUES ({k2}) ON CONFLICT DO NOTHING RETURNING aid", writeOn(2)},
		{"insert on conflict sets the key", "INSERT INTO accounts (aid) VALUES ({k2}) ON CONFLICT (aid) DO UPDATE SET aid = excluded.aid + 1",
			refused(notSupported, "changing the shard key of a row (aid) is not supported: delete and insert it instead")},
		{"insert without key", "INSERT INTO accounts (bid) VALUES (1)", refused(notSupported, give)},
		{"insert DEFAULT key", "INSERT INTO accounts (aid) VALUES (DEFAULT)", refused(notSupported, give)},
		{"insert expression key", "INSERT INTO accounts (aid) VALUES ({k1} + 1)", refused(notSupported, give)},
		{"insert DEFAULT VALUES", "INSERT INTO accounts DEFAULT VALUES", refused(notSupported, give)},
		{"insert select", "INSERT INTO accounts (aid) SELECT aid FROM history", refused(notSupported, "INSERT ... SELECT into sharded table accounts is not supported yet")},
		{"insert select keyed", "INSERT INTO accounts (aid) SELECT aid FROM history WHERE aid = {k1}", refused(notSupported, "INSERT ... SELECT")},
		{"insert reading a sharded table", "INSERT INTO accounts (aid, bid) VALUES ({k1}, (SELECT max(bid) FROM history))", refused(notSupported, "also reads or writes table history")},
		{"insert reading a replicated table", "INSERT INTO accounts (aid, bid) VALUES ({k1}, (SELECT max(bid) FROM branches))", writeOn(1)},
		{"insert in CTE", "WITH x AS (INSERT INTO accounts (aid) VALUES ({k1}) RETURNING aid) SELECT * FROM x", refused(notSupported, "inside a WITH query")},
		{"insert replicated", "INSERT INTO branches (bid) VALUES (1)", mirrorAll()},
		{"insert replicated select", "INSERT INTO branches SELECT * FROM branches", mirrorAll()},
		{"insert replicated from sharded", "INSERT INTO branches (bid) SELECT bid FROM accounts", refused(notSupported, "writing replicated table branches from sharded table accounts")},
		{"insert unlisted", "INSERT INTO notes (x) VALUES (1)", mirrorAll()},
		{"insert catalog", "INSERT INTO pg_temp_table_x VALUES (1)", want{any: true, write: true}},
		{"update", "UPDATE accounts SET abalance = abalance + 4711 WHERE aid = {k1}", writeOn(1)},
		{"update key", "UPDATE accounts SET aid = {k2} WHERE aid = {k1}", refused(notSupported, "changing the shard key of a row (aid) is not supported: delete and insert it instead")},
		{"update key in a row assignment", "UPDATE accounts SET (bid, aid) = (1, 2)", refused(notSupported, "changing the shard key")},
		{"update without key", "UPDATE accounts SET abalance = 0", writeAll()},
		{"update with IN", "UPDATE accounts SET abalance = 0 WHERE aid IN ({k0}, {k3})", writeOn(0, 3)},
		{"update alias", "UPDATE accounts AS a SET abalance = 0 WHERE a.aid = {k2}", writeOn(2)},
		{"update from replicated", "UPDATE accounts a SET abalance = b.bbalance FROM branches b WHERE b.bid = a.bid AND a.aid = {k1}", writeOn(1)},
		{"update from sharded", "UPDATE accounts a SET abalance = 0 FROM history h WHERE h.aid = a.aid AND h.aid = {k3}", writeOn(3)},
		{"update with ORDER BY subquery on one shard", "UPDATE accounts SET abalance = (SELECT max(delta) FROM history WHERE aid = {k1}) WHERE aid = {k1}", writeOn(1)},
		{"update returning", "UPDATE accounts SET abalance = 1 WHERE aid = {k1} RETURNING *", writeOn(1)},
		{"update in CTE", "WITH u AS (UPDATE accounts SET abalance = 0 WHERE aid = {k1} RETURNING *) SELECT * FROM u", writeOn(1)},
		{"update replicated", "UPDATE branches SET bbalance = 0 WHERE bid = 1", mirrorAll()},
		{"update replicated from sharded", "UPDATE branches SET bbalance = (SELECT sum(abalance) FROM accounts)", refused(notSupported, "writing replicated table branches from sharded table accounts")},
		{"delete", "DELETE FROM accounts WHERE aid = {k2}", writeOn(2)},
		{"delete without key", "DELETE FROM accounts", writeAll()},
		{"delete using", "DELETE FROM accounts a USING history h WHERE h.aid = a.aid AND h.aid = {k3}", writeOn(3)},
		{"delete using not on the key", "DELETE FROM accounts a USING history h WHERE h.tid = a.bid", refused(notSupported, "cross-shard DELETE combining rows of accounts and history")},
		{"update with unkeyed subquery", "UPDATE accounts SET abalance = 0 WHERE bid IN (SELECT tid FROM history)", refused(notSupported, "cross-shard UPDATE combining rows")},
		{"update with co-located subquery", "UPDATE accounts a SET abalance = (SELECT sum(delta) FROM history h WHERE h.aid = a.aid)", writeAll()},
		{"delete replicated", "DELETE FROM branches", mirrorAll()},
		{"delete contradiction", "DELETE FROM accounts WHERE aid = {k1} AND aid = {k2}", want{any: true, write: true}},
		{"merge into sharded", "MERGE INTO accounts a USING branches b ON a.bid = b.bid WHEN MATCHED THEN DELETE", refused(notSupported, "MERGE into sharded table accounts")},
		{"merge into replicated", "MERGE INTO branches b USING pgbench_tellers t ON t.bid = b.bid WHEN MATCHED THEN DELETE", mirrorAll()},
	})
}

func TestRouteOtherStatements(t *testing.T) {
	s := mustSchema(t, testDB())
	session := anyShard()
	runQueries(t, s, []queryCase{
		{"create table", "CREATE TABLE t (id bigint primary key)", mirrorAll()},
		{"alter table", "ALTER TABLE accounts ADD COLUMN x int", mirrorAll()},
		{"drop table", "DROP TABLE IF EXISTS t", mirrorAll()},
		{"truncate", "TRUNCATE accounts", mirrorAll()},
		{"create index", "CREATE INDEX ON accounts (bid)", mirrorAll()},
		{"comment", "COMMENT ON TABLE accounts IS 'x'", mirrorAll()},
		{"grant", "GRANT SELECT ON accounts TO app", mirrorAll()},
		{"vacuum", "VACUUM accounts", mirrorAll()},
		{"analyze", "ANALYZE", mirrorAll()},
		{"create function", "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1'", mirrorAll()},
		{"DO", "DO $$ BEGIN END $$", mirrorAll()},
		{"CALL", "CALL p(1)", mirrorAll()},
		{"create table as", "CREATE TABLE t2 AS SELECT * FROM accounts", writeAll()},
		{"select into", "SELECT * INTO t3 FROM branches", mirrorAll()},
		{"lock", "LOCK TABLE accounts", mirrorAll()},
		{"BEGIN", "BEGIN", session},
		{"START TRANSACTION", "START TRANSACTION ISOLATION LEVEL SERIALIZABLE", session},
		{"COMMIT", "COMMIT", session},
		{"ROLLBACK", "ROLLBACK", session},
		{"SAVEPOINT", "SAVEPOINT a", session},
		{"RELEASE", "RELEASE SAVEPOINT a", session},
		{"ROLLBACK TO", "ROLLBACK TO SAVEPOINT a", session},
		{"PREPARE TRANSACTION", "PREPARE TRANSACTION 'x'", session},
		{"COMMIT PREPARED", "COMMIT PREPARED 'x'", session},
		{"SET", "SET search_path = public", session},
		{"SET LOCAL", "SET LOCAL statement_timeout = 5", session},
		{"SET pgshard.shard", "SET pgshard.shard = 1", session},
		{"SET pgshard.sharding_key", "SET pgshard.sharding_key = '42'", session},
		{"RESET", "RESET pgshard.shard", session},
		{"DISCARD", "DISCARD ALL", session},
		{"SHOW", "SHOW search_path", session},
		{"LISTEN", "LISTEN c", session},
		{"NOTIFY", "NOTIFY c", session},
		{"PREPARE", "PREPARE p AS SELECT * FROM accounts WHERE aid = $1", session},
		{"EXECUTE", "EXECUTE p(1)", session},
		{"DEALLOCATE", "DEALLOCATE ALL", session},
		{"FETCH", "FETCH 10 FROM c", session},
		{"CLOSE", "CLOSE c", session},
		{"SELECT 1", "SELECT 1", anyShard()},
		{"now()", "SELECT now()", anyShard()},
		{"nextval", "SELECT nextval('accounts_aid_seq')", want{any: true, write: true}},
		{"currval", "SELECT currval('accounts_aid_seq')", anyShard()},
		{"generate_series", "SELECT * FROM generate_series(1, 10) ORDER BY 1 LIMIT 3", anyShard()},
		{"catalog", "SELECT * FROM pg_catalog.pg_class", anyShard()},
		{"catalog unqualified", "SELECT * FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace", anyShard()},
		{"information_schema", "SELECT * FROM information_schema.tables", anyShard()},
		{"replicated read", "SELECT * FROM branches WHERE bid = 1", anyShard()},
		{"replicated aggregate", "SELECT count(*) FROM pgbench_branches", anyShard()},
		{"unlisted read", "SELECT * FROM notes", anyShard()},
		{"syntax error", "SELEC 1", anyShard()},
		{"syntax error with sharded table", "SELECT * FROM accounts WHERE", anyShard()},
		{"lexical error", "SELECT 'unterminated", anyShard()},
		{"empty", "", anyShard()},
		{"only a comment", "/* nothing */", anyShard()},
		{"copy into sharded", "COPY accounts FROM STDIN", writeAll()},
		{"copy into replicated", "COPY branches FROM STDIN", mirrorAll()},
		{"copy into unlisted", "COPY notes (a, b) FROM STDIN WITH (FORMAT csv)", mirrorAll()},
		{"copy out of sharded", "COPY accounts TO STDOUT", allShards()},
		{"copy out of replicated", "COPY branches TO STDOUT", anyShard()},
		{"copy query keyed", "COPY (SELECT * FROM accounts WHERE aid = {k1}) TO STDOUT", on(1)},
		{"copy query ordered", "COPY (SELECT * FROM accounts ORDER BY aid) TO STDOUT", refused(notSupported, "ORDER BY")},
		{"explain analyze update", "EXPLAIN ANALYZE UPDATE accounts SET abalance = 0 WHERE aid = {k1}", writeOn(1)},
	})
}

func TestRouteOverrides(t *testing.T) {
	s := mustSchema(t, testDB())
	runQueries(t, s, []queryCase{
		{"shard hint", "/* pgshard: shard=2 */ SELECT * FROM accounts ORDER BY aid", on(2)},
		{"shard hint beats the key", "/* pgshard: shard=2 */ SELECT * FROM accounts WHERE aid = {k1}", on(2)},
		{"line comment hint", "SELECT * FROM accounts -- pgshard: shard=3", on(3)},
		{"hint on SELECT 1", "/* pgshard: shard=1 */ SELECT 1", on(1)},
		{"hint on DDL", "/* pgshard: shard=1 */ CREATE TABLE t (x int)", want{shards: mask(1), write: true, mirror: true}},
		{"hint lifts insert refusals", "/* pgshard: shard=3 */ INSERT INTO accounts VALUES (1)", writeOn(3)},
		{"hint lifts copy refusal", "/* pgshard: shard=0 */ COPY accounts FROM STDIN", writeOn(0)},
		{"hint keeps key change refusal", "/* pgshard: shard=0 */ UPDATE accounts SET aid = 1", refused(notSupported, "changing the shard key")},
		{"hint ignored by BEGIN", "/* pgshard: shard=1 */ BEGIN", anyShard()},
		{"shard out of range", "/* pgshard: shard=4 */ SELECT 1", refused(badValue, "pgshard shard 4 does not exist: database \"app\" has 4 shards (0 to 3)")},
		{"key hint", "/* pgshard: key={k1} */ SELECT count(*) FROM accounts", on(1)},
		{"quoted key hint", "/* pgshard: key='{k2}' */ SELECT * FROM accounts ORDER BY 1", on(2)},
		{"key hint, list table", "/* pgshard: key=us */ SELECT * FROM events", on(1)},
		{"key hint, text table", "/* pgshard: key='o''brien' */ SELECT * FROM users", want{shards: shardOfText(t, s, "users", "o'brien")}},
		{"key hint without a sharded table", "/* pgshard: key={k3} */ SELECT 1", on(3)},
		{"key hint, insert", "/* pgshard: key={k3} */ INSERT INTO accounts SELECT * FROM history", writeOn(3)},
		{"bad key hint", "/* pgshard: key=abc */ SELECT * FROM accounts", refused(codec.SQLStateInvalidTextRepresentation, "")},
		{"malformed hint", "/* pgshard: shard=x */ SELECT 1", refused(badValue, "malformed pgshard comment")},
		{"unknown hint", "/* pgshard: foo=1 */ SELECT 1", refused(badValue, "unknown setting")},
		{"conflicting hints", "/* pgshard: shard=1 */ /* pgshard: shard=2 */ SELECT 1", refused(badValue, "conflicting shard hints")},
		{"other comments are fine", "/* pgsharding is fun */ SELECT * FROM accounts WHERE aid = {k1}", on(1)},
	})
}

func TestRouteSession(t *testing.T) {
	s := mustSchema(t, testDB())
	e := newExpander(t, s)
	r := NewRouter(s, 100)
	cases := []struct {
		sql  string
		sess Session
		want want
	}{
		{"SELECT * FROM accounts ORDER BY aid", Session{Shard: 2}, on(2)},
		{"SELECT * FROM accounts WHERE aid = {k1}", Session{Shard: 2}, on(2)},
		{"/* pgshard: shard=3 */ SELECT * FROM accounts", Session{Shard: 2}, on(3)},
		{"/* pgshard: key={k0} */ SELECT * FROM accounts", Session{Shard: 2}, on(0)},
		{"SELECT count(*) FROM accounts", Session{Shard: -1, Key: e.sql("{k3}"), HasKey: true}, on(3)},
		{"SELECT * FROM events", Session{Shard: -1, Key: "asia", HasKey: true}, on(2)},
		{"SELECT 1", Session{Shard: 7}, refused(badValue, "pgshard shard 7 does not exist")},
		{"BEGIN", Session{Shard: 1}, anyShard()},
		{"SET pgshard.shard = 2", Session{Shard: 1}, anyShard()},
		{"SELECT * FROM accounts", Session{Shard: -1, Key: "x", HasKey: true}, refused(codec.SQLStateInvalidTextRepresentation, "")},
	}
	for _, c := range cases {
		sql := e.sql(c.sql)
		c.want.check(t, sql, r.Query(sql, c.sess))
	}
}

func TestRouteMultiStatement(t *testing.T) {
	s := mustSchema(t, testDB())
	runQueries(t, s, []queryCase{
		{"transaction", "BEGIN; UPDATE accounts SET abalance = 1 WHERE aid = {k1}; COMMIT", writeOn(1)},
		{"pgbench transaction", "BEGIN; UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid = 5; SELECT abalance FROM pgbench_accounts WHERE aid = 5; UPDATE pgbench_tellers SET tbalance = 1 WHERE tid = 1; END;", refused(notSupported, "statements go to different shards")},
		{"all any", "SELECT 1; SELECT 2;", anyShard()},
		{"union", "SELECT * FROM accounts WHERE aid = {k1}; SELECT * FROM accounts WHERE aid = {k2}", refused(notSupported, "statements go to different shards")},
		{"any and set", "SELECT now(); SELECT * FROM accounts WHERE aid = {k3}", on(3)},
		{"error wins", "SELECT * FROM accounts WHERE aid = {k1}; SELECT count(DISTINCT bid) FROM accounts", refused(notSupported, "run only as a query of its own")},
		{"split refused", "INSERT INTO accounts (aid) VALUES ({k1}), ({k2}); SELECT 1", refused(notSupported, "rows of several shards")},
		{"insert of one shard", "INSERT INTO accounts (aid) VALUES ({k1}), ({K1}); SELECT 1", writeOn(1)},
		{"hints per statement", "/* pgshard: shard=1 */ SELECT 1; /* pgshard: shard=2 */ SELECT 2", refused(notSupported, "statements go to different shards")},
		{"conflicting hints in separate statements", "/* pgshard: shard=1 */ SELECT 1; /* pgshard: shard=3 */ SELECT 1", refused(notSupported, "statements go to different shards")},
		{"mirror mixed", "UPDATE branches SET bbalance = 0; UPDATE accounts SET abalance = 0", writeAll()},
		{"only semicolons", ";;", anyShard()},
		{"syntax error in one", "SELECT * FROM accounts WHERE aid = {k1}; SELEC 1", on(1)},
	})
}

func TestRouteUnlistedError(t *testing.T) {
	db := testDB()
	db.UnlistedTables = config.UnlistedError
	s := mustSchema(t, db)
	const msg = `table "notes" is neither sharded nor replicated: list it in sharded_tables or replicated_tables of database "app"`
	runQueries(t, s, []queryCase{
		{"read", "SELECT * FROM notes", refused(notSupported, msg)},
		{"join", "SELECT * FROM accounts a JOIN notes n ON n.aid = a.aid WHERE a.aid = {k1}", refused(notSupported, msg)},
		{"insert", "INSERT INTO notes (x) VALUES (1)", refused(notSupported, msg)},
		{"update", "UPDATE notes SET x = 1", refused(notSupported, msg)},
		{"delete", "DELETE FROM notes", refused(notSupported, msg)},
		{"copy", "COPY notes TO STDOUT", refused(notSupported, msg)},
		{"qualified", "SELECT * FROM s.notes", refused(notSupported, `table "s.notes" is neither`)},
		{"hint does not lift it", "/* pgshard: shard=1 */ SELECT * FROM notes", refused(notSupported, msg)},
		{"ddl is fine", "CREATE TABLE notes (x int)", mirrorAll()},
		{"sharded is fine", "SELECT * FROM accounts WHERE aid = {k1}", on(1)},
		{"replicated is fine", "SELECT * FROM branches", anyShard()},
		{"catalog is fine", "SELECT * FROM pg_class", anyShard()},
		{"temp is fine", "SELECT * FROM pg_temp.scratch", anyShard()},
		{"CTE is fine", "WITH notes AS (SELECT 1) SELECT * FROM notes", anyShard()},
	})
}

func TestRouteColumnRule(t *testing.T) {
	db := &config.Database{
		Name:   "saas",
		Shards: make([]config.Shard, 4),
		ShardedTables: []config.ShardedTable{
			{Table: "accounts", Column: "aid", Type: "bigint", Mapping: config.MappingHash},
			{Column: "tenant_id", Type: "bigint", Mapping: config.MappingHash},
		},
		ReplicatedTables: []string{"plans"},
		UnlistedTables:   config.UnlistedError,
	}
	s := mustSchema(t, db)
	// Column-rule tables map with the same function as accounts (both bigint hash), so {kN} works for both.
	runQueries(t, s, []queryCase{
		{"keyed", "SELECT * FROM orders WHERE tenant_id = {k1}", on(1)},
		{"qualified", "SELECT * FROM orders o WHERE o.tenant_id = {k2}", on(2)},
		{"join on the column", "SELECT * FROM orders o JOIN items i ON i.tenant_id = o.tenant_id WHERE o.tenant_id = {k3}", on(3)},
		{"join not on the column", "SELECT * FROM orders o JOIN items i ON i.oid = o.id WHERE o.tenant_id = {k3}", refused(notSupported, "combining rows of orders and items")},
		{"join on the column and the id", "SELECT * FROM orders o JOIN items i ON i.oid = o.id AND i.tenant_id = o.tenant_id", allShards()},
		{"no key", "SELECT * FROM orders", allShards()},
		{"no key, aggregate", "SELECT count(DISTINCT item) FROM orders", refused(notSupported, "add the shard key (tenant_id = ...)")},
		{"named table keeps its key", "SELECT * FROM accounts WHERE tenant_id = {k1}", allShards()},
		{"replicated", "SELECT * FROM plans", anyShard()},
		{"insert", "INSERT INTO orders (id, tenant_id) VALUES (1, {k2})", writeOn(2)},
		{"insert without the column", "INSERT INTO orders (id) VALUES (1)", refused(notSupported, "give the shard key column tenant_id a value")},
		{"update the column", "UPDATE orders SET tenant_id = 2 WHERE id = 1", refused(notSupported, "changing the shard key of a row (tenant_id)")},
		{"update", "UPDATE orders SET x = 2 WHERE tenant_id = {k0}", writeOn(0)},
		{"catalog", "SELECT * FROM pg_class", anyShard()},
	})
}

func TestSchema(t *testing.T) {
	plain := &config.Database{Name: "p", Shards: make([]config.Shard, 1)}
	s := mustSchema(t, plain)
	if s.Sharded() || s.Shards() != 1 {
		t.Errorf("plain database: Sharded %v Shards %d", s.Sharded(), s.Shards())
	}
	if d := NewRouter(s, 0).Query("/* pgshard: key=1 */ SELECT 1", NoSession); d.Err == nil || d.Err.Code != badValue {
		t.Errorf("key hint without sharded tables: %s", describe(d))
	}
	s = mustSchema(t, testDB())
	if !s.Sharded() || s.Shards() != 4 || s.Name() != "app" {
		t.Errorf("test database: Sharded %v Shards %d", s.Sharded(), s.Shards())
	}
	if _, err := NewSchema(&config.Database{Name: "x"}); err == nil {
		t.Error("no shards: no error")
	}
	if _, err := NewSchema(&config.Database{Name: "x", Shards: make([]config.Shard, 65)}); err == nil {
		t.Error("65 shards: no error")
	}
	bad := testDB()
	bad.ShardedTables[0].Type = "float"
	if _, err := NewSchema(bad); err == nil {
		t.Error("bad key type: no error")
	}
}
