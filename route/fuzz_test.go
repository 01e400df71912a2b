package route

import (
	"math/bits"
	"testing"
)

// FuzzRouterQuery routes arbitrary text as a Query and as a prepared statement: the router must never panic,
// and every Decision must be well formed. Its seeds run in every go test.
func FuzzRouterQuery(f *testing.F) {
	for _, s := range []string{
		"SELECT abalance FROM pgbench_accounts WHERE aid = 48213",
		"UPDATE accounts SET abalance = abalance + -4711 WHERE aid = 48213",
		"INSERT INTO accounts (aid, abalance) VALUES (1, 0), (2, 0), (3, 0) ON CONFLICT (aid) DO NOTHING RETURNING *",
		"INSERT INTO accounts (aid) VALUES ($1), ($2)",
		"SELECT * FROM accounts a JOIN history h USING (aid) WHERE a.aid IN (1, $1, - 3, '4'::bigint)",
		"WITH x AS (UPDATE accounts SET abalance = 0 WHERE aid = 1 RETURNING *) SELECT count(*) FROM x",
		"SELECT * FROM users WHERE name = E'\\x41\\n' AND name = U&'\\0041' AND name = $$a$$",
		"/* pgshard: shard=1 */ SELECT 1; /* pgshard: key=5 */ SELECT 2",
		"/* pgshard: key='x */ SELECT 1",
		"BEGIN; SELECT 1; COMMIT",
		"COPY accounts FROM STDIN",
		"SELECT 'unterminated",
		"INSERT INTO accounts (aid) VALUES (1), (2",
		"INSERT INTO accounts (aid) VALUES ((1)), ((2))",
		"INSERT INTO accounts (aid) SELECT 1 UNION ALL VALUES (2)",
		"SELECT * FROM accounts WHERE aid = 9223372036854775808 OR aid = -9223372036854775808",
		"SELECT * FROM accounts WHERE aid = -9223372036854775808",
		"SELECT * FROM devices WHERE id = '{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}'",
		"CREATE FUNCTION f() RETURNS int BEGIN ATOMIC SELECT 1; SELECT 2; END",
		"SELECT ((((((((((1))))))))))",
		"EXPLAIN (ANALYZE) DELETE FROM accounts WHERE aid = $1",
		"MERGE INTO branches USING accounts ON true WHEN MATCHED THEN DELETE",
		"SELECT a.aid, row_number() OVER (ORDER BY a.aid) FROM accounts a JOIN history h ON h.tid = a.bid WHERE a.abalance > 0 AND h.delta IN (1, 2)",
		"EXPLAIN ANALYZE SELECT count(DISTINCT bid) FROM public.accounts WHERE aid IN (SELECT aid FROM \"Quoted\" q WHERE q.\"Key\" > $1)",
		";;;",
		"",
	} {
		f.Add(s)
	}
	s := mustSchema(f, testDB())
	r := NewRouter(s, 16)
	f.Fuzz(func(t *testing.T, sql string) {
		check := func(what string, d Decision) {
			if d.Err != nil {
				if d.Err.Code == "" || d.Err.Message == "" {
					t.Fatalf("%s %q: error without code or message", what, sql)
				}
				return
			}
			if d.NeedKey == nil && d.Any == (d.Shards != 0) { // an INSERT waiting for its key's position has no shard yet
				t.Fatalf("%s %q: Any %v with shards %b", what, sql, d.Any, d.Shards)
			}
			if d.Shards&^s.allShards() != 0 {
				t.Fatalf("%s %q: shards %b beyond the database", what, sql, d.Shards)
			}
			if len(d.Split) > 0 {
				var m uint64
				for _, p := range d.Split {
					if m&(1<<uint(p.Shard)) != 0 || p.SQL == "" {
						t.Fatalf("%s %q: bad pieces %+v", what, sql, d.Split)
					}
					m |= 1 << uint(p.Shard)
				}
				if m != d.Shards || bits.OnesCount64(m) < 2 {
					t.Fatalf("%s %q: pieces %+v for shards %b", what, sql, d.Split, d.Shards)
				}
			}
		}
		d := r.Query(sql, NoSession)
		check("Query", d)
		if d.Gather != nil {
			// The coordinator step's second routing, with rows gathered for each table.
			sess := NoSession
			for range d.Gather.Tables {
				sess.Gathered = append(sess.Gathered, Rows{[]byte(`"(1,2)"`), []byte(`,"(3,$pgshard$)"`)})
			}
			if c := r.Query(sql, sess); c.Err == nil && (c.Coordinated == "" || c.Gather != nil) {
				t.Fatalf("%q, rows gathered: %+v", sql, c)
			}
		}
		check("Query with session", r.Query(sql, Session{Shard: -1, Key: "7", HasKey: true}))
		p := r.Prepare(sql)
		check("Bind", r.Bind(p, Params{Values: [][]byte{[]byte("1"), nil, {0, 0, 0, 0, 0, 0, 0, 2}}, Formats: []int16{0, 0, 1}}, NoSession))
		check("Bind no params", r.Bind(p, Params{}, NoSession))
	})
}
