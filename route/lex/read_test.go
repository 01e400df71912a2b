package lex

import "testing"

func TestReadAccess(t *testing.T) {
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
		{"SELECT 1; COMMIT", true},
		{"INSERT INTO t VALUES (1)", false},
		{"UPDATE t SET a = 1", false},
		{"BEGIN", false},
		{"EXPLAIN SELECT 1", false},
		{"", false},
		{";", false},
		{"/* only a comment */", false},
		{"SELECT 'unterminated", false},
		{"(SELECT 1) UNION (SELECT 2)", true},
		{"(INSERT INTO t VALUES (1))", false},
		{"BEGIN READ ONLY", true},
		{"begin transaction isolation level repeatable read, read only", true},
		{"START TRANSACTION READ ONLY; SELECT 1; COMMIT", true},
		{"BEGIN READ WRITE", false},
		{"BEGIN; SELECT 1", false},
		{"COMMIT", true},
		{"ROLLBACK", true},
		{"COMMIT PREPARED 'x'", false},
		{"PREPARE TRANSACTION 'x'", false},
	} {
		if got := ReadAccess(tc.sql); got.Read != tc.read || got.Role != "" {
			t.Errorf("ReadAccess(%q) = %+v, want Read %v", tc.sql, got, tc.read)
		}
	}
}

func TestReadAccessRoleComments(t *testing.T) {
	for _, tc := range []struct {
		sql  string
		want Access
	}{
		{"/* pgshard: role=primary */ SELECT 1", Access{Read: true, Role: "primary"}},
		{"SELECT my_func() -- pgshard: role=PRIMARY", Access{Read: true, Role: "primary"}},
		{"/* pgshard: role=replica */ SELECT nextval('s')", Access{Role: "replica"}},
		{"/* pgshard: role=elsewhere */ SELECT 1", Access{}},
		{"/* pgshard: role=replica, role=primary */ SELECT 1", Access{}},
		{"/* other comment */ SELECT 1", Access{Read: true}},
	} {
		if got := ReadAccess(tc.sql); got != tc.want {
			t.Errorf("ReadAccess(%q) = %+v, want %+v", tc.sql, got, tc.want)
		}
	}
}

func TestPlainBeginAndSetsReadOnly(t *testing.T) {
	for sql, want := range map[string]bool{
		"BEGIN": true, "begin;": true, "BEGIN WORK": true, " start  transaction ": true, "BEGIN TRANSACTION;": true,
		"BEGIN READ ONLY": false, "BEGIN ISOLATION LEVEL SERIALIZABLE": false, "BEGIN; SELECT 1": false,
		"/* pgshard: role=primary */ BEGIN": false, "COMMIT": false, "": false, "BEGIN; BEGIN": false,
	} {
		if got := PlainBegin(sql); got != want {
			t.Errorf("PlainBegin(%q) = %v, want %v", sql, got, want)
		}
	}
	for sql, want := range map[string]bool{
		"SET TRANSACTION READ ONLY": true, "set transaction isolation level repeatable read, read only;": true,
		"SET TRANSACTION READ ONLY, DEFERRABLE": true, "SET TRANSACTION READ WRITE": false,
		"SET TRANSACTION ISOLATION LEVEL SERIALIZABLE": false, "SET TRANSACTION SNAPSHOT '00000003-1'": false,
		"SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY": false, "SET TRANSACTION READ ONLY; INSERT INTO t VALUES (1)": false,
		"SET transaction_read_only = on": false,
	} {
		if got := SetsReadOnly(sql); got != want {
			t.Errorf("SetsReadOnly(%q) = %v, want %v", sql, got, want)
		}
	}
}
