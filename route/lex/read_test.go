package lex

import "testing"

func TestIsRead(t *testing.T) {
	for _, tc := range []struct {
		sql  string
		read bool
	}{
		{"SELECT 1", true},
		{"select abalance from pgbench_accounts where aid = $1", true},
		{"  /* c */ SELECT * FROM t -- x\n", true},
		{"SELECT a FROM t; SELECT b FROM u;", true},
		{"VALUES (1), (2)", true},
		{"TABLE t", true},
		{"SHOW search_path", true},
		{"WITH x AS (SELECT 1) SELECT * FROM x", true},
		{"SELECT 'insert into t', \"For\" FROM t", true}, // words in strings and quoted names
		{"SELECT count(*) FILTER (WHERE a > 1) FROM t ORDER BY 1 FOR READ ONLY", true},
		{"SELECT * FROM t FOR UPDATE", false},
		{"select * from t for no key update", false},
		{"SELECT * FROM t FOR SHARE OF t", false},
		{"SELECT * FROM t for key share", false},
		{"SELECT * INTO new_t FROM t", false},
		{"WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d", false},
		{"WITH u AS (UPDATE t SET a = 1 RETURNING *) SELECT 1", false},
		{"SELECT nextval('s')", false},
		{"SELECT NEXTVAL('s')", false},
		{"SELECT pg_advisory_lock(1)", false},
		{"SELECT pg_try_advisory_xact_lock(1)", false},
		{"SELECT set_config('a.b', 'c', false)", false},
		{"SELECT lo_import('/x')", false},
		{"SELECT pg_current_wal_lsn()", false},
		{"SELECT txid_current()", false},
		{"SELECT 1; INSERT INTO t VALUES (1)", false},
		{"SELECT 1; COMMIT", false},
		{"INSERT INTO t VALUES (1)", false},
		{"UPDATE t SET a = 1", false},
		{"BEGIN", false},
		{"EXPLAIN SELECT 1", false},
		{"", false},
		{";", false},
		{"/* only a comment */", false},
		{"SELECT 'unterminated", false},
		{"(SELECT 1) UNION (SELECT 2)", true},
	} {
		if got := IsRead(tc.sql); got != tc.read {
			t.Errorf("IsRead(%q) = %v, want %v", tc.sql, got, tc.read)
		}
	}
}
