package lex

import (
	"strings"
	"testing"
)

func TestClassify(t *testing.T) {
	tests := []struct {
		sql  string
		want Stmt
	}{
		{"BEGIN", Stmt{Kind: StmtBegin}},
		{"begin isolation level serializable", Stmt{Kind: StmtBegin}},
		{"/* c */ Start Transaction read only;", Stmt{Kind: StmtBegin}},
		{"START", Stmt{}},
		{"COMMIT", Stmt{Kind: StmtCommit}},
		{"commit work", Stmt{Kind: StmtCommit}},
		{"END", Stmt{Kind: StmtCommit}},
		{"COMMIT AND CHAIN", Stmt{Kind: StmtCommit, Chain: true}},
		{"COMMIT AND NO CHAIN", Stmt{Kind: StmtCommit}},
		{"COMMIT PREPARED 'gid'", Stmt{}},
		{"ROLLBACK", Stmt{Kind: StmtRollback}},
		{"abort transaction", Stmt{Kind: StmtRollback}},
		{"ROLLBACK AND CHAIN", Stmt{Kind: StmtRollback, Chain: true}},
		{"ROLLBACK TO SAVEPOINT s", Stmt{Kind: StmtRollbackTo, Name: "s"}},
		{"rollback to s", Stmt{Kind: StmtRollbackTo, Name: "s"}},
		{"ROLLBACK WORK TO SAVEPOINT s", Stmt{Kind: StmtRollbackTo, Name: "s"}},
		{"ROLLBACK PREPARED 'gid'", Stmt{}},
		{"SAVEPOINT s", Stmt{Kind: StmtSavepoint, Name: "s"}},

		{"SET search_path = \"$user\", public", Stmt{Kind: StmtSet, Name: "search_path", Value: `"$user", public`}},
		{"SET TIME ZONE 'UTC'", Stmt{Kind: StmtSet, Name: "timezone", Value: "'UTC'"}},
		{"set time zone local", Stmt{Kind: StmtSet, Name: "timezone", Value: "DEFAULT"}},
		{"SET SESSION TIME ZONE -7 ; ", Stmt{Kind: StmtSet, Name: "timezone", Value: "-7"}},
		{"set local statement_timeout=5", Stmt{Kind: StmtSet, Name: "statement_timeout", Value: "5", Local: true}},
		{"SET Statement_Timeout TO DEFAULT -- trailing\n", Stmt{Kind: StmtSet, Name: "statement_timeout", Value: "DEFAULT"}},
		{"SET SESSION work_mem TO '64MB'", Stmt{Kind: StmtSet, Name: "work_mem", Value: "'64MB'"}},
		{"SET myapp.User_Id = 42", Stmt{Kind: StmtSet, Name: "myapp.user_id", Value: "42"}},
		{`SET "MyApp".x = 'a'`, Stmt{Kind: StmtSet, Name: "MyApp.x", Value: "'a'"}},
		{"SET SCHEMA 'app'", Stmt{Kind: StmtSet, Name: "search_path", Value: "'app'"}},
		{"SET NAMES 'UTF8'", Stmt{Kind: StmtSet, Name: "client_encoding", Value: "'UTF8'"}},
		{"SET NAMES", Stmt{Kind: StmtSet, Name: "client_encoding", Value: "DEFAULT"}},
		{"SET ROLE admin", Stmt{Kind: StmtSet, Name: "role", Value: "admin"}},
		{"SET LOCAL ROLE admin", Stmt{Kind: StmtSet, Name: "role", Value: "admin", Local: true}},
		{"SET SESSION AUTHORIZATION 'bob'", Stmt{Kind: StmtSet, Name: "session_authorization", Value: "'bob'"}},
		{"SET XML OPTION DOCUMENT", Stmt{Kind: StmtSet, Name: "xmloption", Value: "DOCUMENT"}},
		{"SET search_path FROM CURRENT", Stmt{Kind: StmtSet, Name: "search_path"}},
		{"SET TRANSACTION ISOLATION LEVEL SERIALIZABLE", Stmt{}},
		{"SET LOCAL TRANSACTION READ ONLY", Stmt{}},
		{"SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY", Stmt{}},
		{"SET CONSTRAINTS ALL DEFERRED", Stmt{}},
		{"SET x", Stmt{}},
		{"SET x =", Stmt{}},

		{"RESET ALL", Stmt{Kind: StmtReset, Name: "all"}},
		{"reset Search_Path", Stmt{Kind: StmtReset, Name: "search_path"}},
		{"RESET TIME ZONE", Stmt{Kind: StmtReset, Name: "timezone"}},
		{"RESET SESSION AUTHORIZATION", Stmt{Kind: StmtReset, Name: "session_authorization"}},
		{"RESET ROLE", Stmt{Kind: StmtReset, Name: "role"}},
		{"SHOW search_path", Stmt{Kind: StmtShow, Name: "search_path"}},
		{"SHOW TRANSACTION ISOLATION LEVEL", Stmt{Kind: StmtShow, Name: "transaction_isolation"}},
		{"show all", Stmt{Kind: StmtShow, Name: "all"}},
		{"SAVEPOINT a", Stmt{Kind: StmtSavepoint, Name: "a"}},
		{`savepoint "My SP";`, Stmt{Kind: StmtSavepoint, Name: "My SP"}},
		{"RELEASE SAVEPOINT A", Stmt{Kind: StmtRelease, Name: "a"}},
		{"release b", Stmt{Kind: StmtRelease, Name: "b"}},
		{"ROLLBACK TO SAVEPOINT a", Stmt{Kind: StmtRollbackTo, Name: "a"}},
		{"rollback work to b", Stmt{Kind: StmtRollbackTo, Name: "b"}},
		{"ABORT TRANSACTION TO SAVEPOINT c", Stmt{Kind: StmtRollbackTo, Name: "c"}},
		{"SAVEPOINT", Stmt{}},

		{`PREPARE "MyStmt" AS SELECT 1`, Stmt{Kind: StmtPrepare, Name: "MyStmt", NameRange: [2]int{8, 16}, Body: [2]int{20, 28}}},
		{"prepare P1 (int, numeric(10, 2)) as select $1 + $2;", Stmt{Kind: StmtPrepare, Name: "p1", NameRange: [2]int{8, 10}, TypesRange: [2]int{11, 32}, Body: [2]int{36, 50}}},
		{"PREPARE p AS /* pgshard: shard=1 */ SELECT 1 -- c", Stmt{Kind: StmtPrepare, Name: "p", NameRange: [2]int{8, 9}, Body: [2]int{13, 49}}},
		{"PREPARE TRANSACTION 'gid'", Stmt{}},
		{"PREPARE p", Stmt{}},
		{"EXECUTE p1(1, 'a')", Stmt{Kind: StmtExecute, Name: "p1", NameRange: [2]int{8, 10}}},
		{`execute "P"`, Stmt{Kind: StmtExecute, Name: "P", NameRange: [2]int{8, 11}}},
		{"DEALLOCATE p1", Stmt{Kind: StmtDeallocate, Name: "p1", NameRange: [2]int{11, 13}}},
		{"DEALLOCATE PREPARE p1", Stmt{Kind: StmtDeallocate, Name: "p1", NameRange: [2]int{19, 21}}},
		{"deallocate all", Stmt{Kind: StmtDeallocate, Name: "all", NameRange: [2]int{11, 14}}},
		{"DEALLOCATE PREPARE ALL", Stmt{Kind: StmtDeallocate, Name: "all", NameRange: [2]int{19, 22}}},
		{"DISCARD ALL", Stmt{Kind: StmtDiscard, Name: "all"}},
		{"discard plans", Stmt{Kind: StmtDiscard, Name: "plans"}},
		{"DISCARD SEQUENCES", Stmt{Kind: StmtDiscard, Name: "sequences"}},
		{"DISCARD TEMP", Stmt{Kind: StmtDiscard, Name: "temp"}},
		{"DISCARD TEMPORARY", Stmt{Kind: StmtDiscard, Name: "temp"}},
		{"DISCARD", Stmt{}},
		{"LISTEN Chan", Stmt{Kind: StmtListen, Name: "chan"}},
		{`LISTEN "Chan"`, Stmt{Kind: StmtListen, Name: "Chan"}},
		{"UNLISTEN *", Stmt{Kind: StmtUnlisten, Name: "*"}},
		{"UNLISTEN c", Stmt{Kind: StmtUnlisten, Name: "c"}},
		{"DECLARE c CURSOR FOR SELECT 1", Stmt{Kind: StmtDeclare, Name: "c"}},
		{"DECLARE c NO SCROLL CURSOR WITH HOLD FOR SELECT 1", Stmt{Kind: StmtDeclare, Name: "c", Hold: true}},
		{"DECLARE c CURSOR WITHOUT HOLD FOR SELECT 1", Stmt{Kind: StmtDeclare, Name: "c"}},
		{"DECLARE c CURSOR FOR WITH hold AS (SELECT 1) SELECT * FROM hold", Stmt{Kind: StmtDeclare, Name: "c"}},
		{"CREATE TEMP TABLE t (a int)", Stmt{Kind: StmtCreateTemp}},
		{"create global temporary table t (a int)", Stmt{Kind: StmtCreateTemp}},
		{"CREATE LOCAL TEMP SEQUENCE s", Stmt{Kind: StmtCreateTemp}},
		{"CREATE OR REPLACE TEMP RECURSIVE VIEW v AS SELECT 1", Stmt{Kind: StmtCreateTemp}},
		{"CREATE TEMPORARY VIEW v AS SELECT 1", Stmt{Kind: StmtCreateTemp}},
		{"CREATE TABLE temp (a int)", Stmt{}},
		{"CREATE TABLE pg_temp.t (a int)", Stmt{Kind: StmtCreateTemp}},
		{"CREATE FUNCTION PG_TEMP.f() RETURNS int AS 'select 1' LANGUAGE sql", Stmt{Kind: StmtCreateTemp}},
		{"CREATE TABLE t AS SELECT * FROM pg_temp.u", Stmt{}},
		{"CREATE TABLE t (a int REFERENCES pg_temp.u)", Stmt{}},
		{"CREATE UNLOGGED TABLE t (a int)", Stmt{}},
		{"SELECT * INTO TEMP TABLE t FROM u", Stmt{Kind: StmtCreateTemp}},
		{"SELECT * INTO TEMPORARY t FROM u", Stmt{Kind: StmtCreateTemp}},
		{"SELECT * INTO t FROM u", Stmt{}},
		{"SELECT 1 INTO temp FROM u", Stmt{}},
		{"INSERT INTO temp VALUES (1)", Stmt{}},

		// advisory locks
		{"SELECT pg_advisory_lock($1)", Stmt{SessionLock: true}},
		{"select  PG_ADVISORY_LOCK(1), 2", Stmt{SessionLock: true}},
		{"SELECT pg_try_advisory_lock_shared (1, 2)", Stmt{SessionLock: true}},
		{"SELECT pg_catalog.pg_advisory_lock_shared(1)", Stmt{SessionLock: true}},
		{`SELECT "pg_advisory_lock"(1)`, Stmt{SessionLock: true}},
		{`SELECT "PG_ADVISORY_LOCK"(1)`, Stmt{}},
		{"SELECT pg_advisory_xact_lock(1)", Stmt{}},
		{"SELECT pg_try_advisory_xact_lock(1)", Stmt{}},
		{"SELECT 'pg_advisory_lock(1)' /* pg_advisory_lock(1) */ -- pg_advisory_lock(1)", Stmt{}},
		{"SELECT pg_advisory_lock FROM t", Stmt{}},
		{"SELECT pg_advisory_unlock(1)", Stmt{SessionUnlock: true}},
		{"SELECT pg_advisory_unlock_shared(1)", Stmt{SessionUnlock: true}},
		{"SELECT pg_advisory_unlock_all()", Stmt{SessionUnlock: true, UnlockAll: true}},
		{"SELECT pg_advisory_lock(1), pg_advisory_unlock(2)", Stmt{SessionLock: true, SessionUnlock: true}},
		{"SET x = 1; SELECT pg_advisory_lock(1)", Stmt{Kind: StmtSet, Name: "x", Value: "1", SessionLock: true}},
		{"", Stmt{}},
		{"  -- nothing\n", Stmt{}},
	}
	for _, tc := range tests {
		got := Classify(tc.sql)
		if got != tc.want {
			t.Errorf("Classify(%q):\n got %+v\nwant %+v", tc.sql, got, tc.want)
		}
		if full := classify(tc.sql, mayContain{advisory: true, temp: true}); full != tc.want {
			t.Errorf("classify(%q) without shortcut:\n got %+v\nwant %+v", tc.sql, full, tc.want)
		}
	}
}

func TestClassifyRanges(t *testing.T) {
	sql := "PREPARE q (int) AS SELECT * FROM t WHERE id = $1; "
	st := Classify(sql)
	if got := sql[st.TypesRange[0]:st.TypesRange[1]]; got != "(int)" {
		t.Errorf("types %q", got)
	}
	if got := sql[st.Body[0]:st.Body[1]]; got != "SELECT * FROM t WHERE id = $1" {
		t.Errorf("body %q", got)
	}
	sql = "EXECUTE  my_stmt (1)"
	st = Classify(sql)
	if got := sql[st.NameRange[0]:st.NameRange[1]]; got != "my_stmt" {
		t.Errorf("name range %q", got)
	}
}

func TestClassifyNoAlloc(t *testing.T) {
	for _, q := range []string{"SET search_path = app, public", "SELECT pg_advisory_lock(42)", benchQuery} {
		if a := testing.AllocsPerRun(100, func() { _ = Classify(q) }); a != 0 {
			t.Errorf("Classify(%q) allocates %v times", q, a)
		}
	}
}

func TestScanWords(t *testing.T) {
	for _, tc := range []struct {
		s              string
		advisory, temp bool
	}{
		{"", false, false},
		{"advisory", true, false},
		{"xxADVISORYxx", true, false},
		{"SELECT pg_Advisory_lock(1)", true, false},
		{"select * into temp t", false, true},
		{"TeMp", false, true},
		{"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxtemp", false, true},
		{"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxadvisor", false, false},
		{"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxadvisorY", true, false},
		{"vvvvmmmm tem advisorx emp", false, false},
		{"\x56\x76\x4d\x6d\xd6\xf6\xcd\xed", false, false},
	} {
		w := scanWords(tc.s)
		a, tm := w.advisory, w.temp
		if a != tc.advisory || tm != tc.temp {
			t.Errorf("scanWords(%q) = %v, %v", tc.s, a, tm)
		}
		// Against the obvious implementation, at every offset.
		for k := 0; k <= len(tc.s); k++ {
			sub := tc.s[k:]
			w := scanWords(sub)
			a, tm := w.advisory, w.temp
			low := strings.ToLower(sub)
			if a != strings.Contains(low, "advisory") || tm != strings.Contains(low, "temp") {
				t.Errorf("scanWords(%q) = %v, %v", sub, a, tm)
			}
		}
	}
}
