package e2e

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
)

// Fidelity of session state: what a client sets (at startup or with SET) is what its statements run with, in
// both pool modes, whatever server connection serves them.

func (e *env) connectParams(t *testing.T, ctx context.Context, params string) *pgx.Conn {
	t.Helper()
	c, err := pgx.Connect(ctx, e.proxy.DSN("app", "app", "secret")+params)
	if err != nil {
		t.Fatalf("connect through pgshard with %s: %v", params, err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

func setting(t *testing.T, ctx context.Context, c *pgx.Conn, name string) string {
	t.Helper()
	var v string
	if err := c.QueryRow(ctx, "SELECT current_setting($1)", name).Scan(&v); err != nil {
		t.Fatalf("current_setting(%s): %v", name, err)
	}
	return v
}

func mustExec(t *testing.T, ctx context.Context, c *pgx.Conn, sql string) {
	t.Helper()
	if _, err := c.Exec(ctx, sql, pgx.QueryExecModeSimpleProtocol); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// Startup parameters (application_name, TimeZone, DateStyle, options=-c ...) reach the server in session mode
// as in transaction mode, and RESET (one or ALL) goes back to them, as with Postgres. A parameter given on its
// own wins over the same one in options.
func TestStartupParametersEveryMode(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"session", "transaction"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			e := startEnv(t, envOpts{mode: mode, size: 2})
			ctx := Ctx(t, time.Minute)
			c := e.connectParams(t, ctx, "&application_name=fidelity&timezone=Asia/Tokyo&datestyle=SQL,%20DMY"+
				"&options=-c%20search_path%3Dpg_catalog%20-c%20statement_timeout%3D7s%20-c%20application_name%3Dfromoptions")
			want := map[string]string{"application_name": "fidelity", "TimeZone": "Asia/Tokyo", "DateStyle": "SQL, DMY",
				"search_path": "pg_catalog", "statement_timeout": "7s"}
			check := func(when string) {
				t.Helper()
				for name, v := range want {
					if got := setting(t, ctx, c, name); got != v {
						t.Fatalf("%s: %s = %q, want %q", when, name, got, v)
					}
				}
			}
			check("after login")
			mustExec(t, ctx, c, "SET TIME ZONE 'UTC'")
			mustExec(t, ctx, c, "SET statement_timeout = '1min'")
			if got := setting(t, ctx, c, "TimeZone"); got != "UTC" {
				t.Fatalf("after SET TIME ZONE: %q", got)
			}
			mustExec(t, ctx, c, "RESET timezone")
			if got := setting(t, ctx, c, "TimeZone"); got != "Asia/Tokyo" {
				t.Fatalf("RESET timezone went to %q, not the startup value", got)
			}
			mustExec(t, ctx, c, "RESET ALL")
			check("after RESET ALL")
			// A driver's connection validation (pgx runs SHOW transaction_read_only) accepts pgshard.
			for _, attrs := range []string{"read-write", "primary"} {
				v := e.connectParams(t, ctx, "&target_session_attrs="+attrs)
				mustExec(t, ctx, v, "SELECT 1")
				v.Close(ctx) // session mode: its server connection goes back for the next one
			}
		})
	}
}

// Every SET form a client may use is given again, with its own syntax, to the next server connection the
// client gets; SET LOCAL and SET ... FROM CURRENT change nothing that lasts. Two clients take turns on one
// server connection, so each of A's statements runs after B had the connection.
func TestSetFormsFollowTheClient(t *testing.T) {
	t.Parallel()
	e := startEnv(t, envOpts{size: 1})
	ctx := Ctx(t, time.Minute)
	e.pg.Exec(t, "app_0", "CREATE ROLE fidelity_role; GRANT fidelity_role TO app")
	a := e.connect(t, ctx)
	b := e.connect(t, ctx)
	steps := []struct {
		sql, name, want string
	}{
		{"SET TIME ZONE 'America/Lima'", "TimeZone", "America/Lima"},
		{"SET SESSION TIME ZONE INTERVAL '+02:00' HOUR TO MINUTE", "TimeZone", "<+02>-02"},
		{"SET ROLE fidelity_role", "role", "fidelity_role"},
		{"SET XML OPTION CONTENT", "xmloption", "content"},
		{"SET SCHEMA 'pg_catalog'", "search_path", "pg_catalog"},
		{"SET search_path FROM CURRENT", "search_path", "pg_catalog"},
		{"SET NAMES 'UTF8'", "client_encoding", "UTF8"},
		{"SET application_name TO 'a'", "application_name", "a"},
		{"BEGIN; SET LOCAL application_name = 'local'; COMMIT", "application_name", "a"},
		{"SET ROLE NONE", "role", "none"},
	}
	for _, st := range steps {
		mustExec(t, ctx, a, st.sql)
		if got := setting(t, ctx, b, "role"); got != "none" {
			t.Fatalf("after A's %q, B runs as role %q", st.sql, got)
		}
		if got := setting(t, ctx, a, st.name); got != st.want {
			t.Fatalf("after %q (and B on the server), A has %s = %q, want %q", st.sql, st.name, got, st.want)
		}
	}
	if !strings.Contains(e.proxy.Log(), "pgshard's own query failed") {
		return
	}
	t.Fatalf("a replay failed on the server:\n%s", e.proxy.Log())
}

// SET SESSION AUTHORIZATION (only a superuser could set it again on another connection) and set_config() of a
// session setting (whose value pgshard cannot know) keep the client on its server connection; RESET SESSION
// AUTHORIZATION resets the role too, as on Postgres.
func TestSessionStatePins(t *testing.T) {
	t.Parallel()
	e := startEnv(t, envOpts{size: 2})
	ctx := Ctx(t, time.Minute)
	for _, pin := range []string{"SET SESSION AUTHORIZATION app", "SELECT set_config('search_path', 'pg_catalog', false)"} {
		a := e.connect(t, ctx)
		mustExec(t, ctx, a, pin)
		var pid1, pid2 int
		if err := a.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pid1); err != nil {
			t.Fatal(err)
		}
		// Another client holds a server connection in a transaction: the idle one it would take is A's,
		// unless A is pinned to it.
		b := e.connect(t, ctx)
		tx, err := b.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got := setting(t, ctx, b, "search_path"); got != `"$user", public` {
			t.Fatalf("after A's %s, B has search_path %q", pin, got)
		}
		if err := a.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pid2); err != nil {
			t.Fatal(err)
		}
		if pid1 != pid2 {
			t.Fatalf("after %s the client moved from backend %d to %d", pin, pid1, pid2)
		}
		_ = tx.Rollback(ctx)
		a.Close(ctx)
		b.Close(ctx)
	}
	a := e.connect(t, ctx)
	mustExec(t, ctx, a, "SET ROLE NONE")
	mustExec(t, ctx, a, "SET SESSION AUTHORIZATION app")
	mustExec(t, ctx, a, "RESET SESSION AUTHORIZATION")
	if got := setting(t, ctx, a, "role"); got != "none" {
		t.Fatalf("role after RESET SESSION AUTHORIZATION: %q", got)
	}
}

// A setting that can no longer be given to a server connection (the role the client SET was dropped) ends the
// client's session with the server's error, before its next statement runs anywhere; the server connection is
// not pooled, and other clients go on.
func TestFailedReplayEndsTheSession(t *testing.T) {
	t.Parallel()
	e := startEnv(t, envOpts{size: 1})
	ctx := Ctx(t, time.Minute)
	e.pg.Exec(t, "app_0", "CREATE ROLE fidelity_gone; GRANT fidelity_gone TO app; CREATE TABLE written (who text)")
	e.pg.Exec(t, "app_0", "GRANT INSERT ON written TO app")
	a := e.connect(t, ctx)
	b := e.connect(t, ctx)
	mustExec(t, ctx, a, "SET ROLE fidelity_gone")
	mustExec(t, ctx, b, "SELECT 1") // the server now has B's settings
	e.pg.Exec(t, "app_0", "DROP ROLE fidelity_gone")
	_, err := a.Exec(ctx, "INSERT INTO written VALUES (current_user)")
	pe := wantCode(t, "A's statement after its role was dropped", err, "22023")
	if pe.Severity != "FATAL" {
		t.Fatalf("severity %s, want FATAL: %v", pe.Severity, pe)
	}
	if n := e.pg.QueryString(t, "app_0", "SELECT count(*) FROM written"); n != "0" {
		t.Fatalf("A's INSERT ran in another role: %s rows", n)
	}
	if !a.IsClosed() {
		if err := a.Ping(ctx); err == nil {
			t.Fatal("A's session goes on after its settings could not be restored")
		}
	}
	if got := setting(t, ctx, b, "role"); got != "none" {
		t.Fatalf("B after A's failed replay: role %q", got)
	}
}

// Statement names behave as on Postgres in transaction mode: a Parse under a name in use is 42P05 (and the
// name keeps its statement), a Parse the server refused leaves no name behind, and a closed name can be
// prepared again. Two clients take turns on one server connection, which shares pgshard's server-side
// statements between them.
func TestPreparedStatementNames(t *testing.T) {
	t.Parallel()
	e := startEnv(t, envOpts{size: 1})
	ctx := Ctx(t, time.Minute)
	a := pgconnect(t, ctx, e.pgconnConfig(t))
	b := pgconnect(t, ctx, e.pgconnConfig(t))
	if _, err := b.Prepare(ctx, "s", "SELECT 2", nil); err != nil { // the server has "SELECT 2" already
		t.Fatal(err)
	}
	if _, err := a.Prepare(ctx, "s", "SELECT 1", nil); err != nil {
		t.Fatal(err)
	}
	for _, sql := range []string{"SELECT 2", "SELECT 1"} {
		_, err := a.Prepare(ctx, "s", sql, nil)
		if pe := wantCode(t, "Parse of a name in use ("+sql+")", err, "42P05"); pe.Message != `prepared statement "s" already exists` {
			t.Fatalf("message %q", pe.Message)
		}
	}
	res := a.ExecPrepared(ctx, "s", nil, nil, nil).Read()
	if res.Err != nil || len(res.Rows) != 1 || string(res.Rows[0][0]) != "1" {
		t.Fatalf("s after the refused Parse: %v %q", res.Err, res.Rows)
	}
	_, err := a.Prepare(ctx, "bad", "SELEC 1", nil)
	wantCode(t, "Parse of bad SQL", err, "42601")
	if _, err := a.Prepare(ctx, "bad", "SELECT 3", nil); err != nil {
		t.Fatalf("a name whose Parse failed is not free: %v", err)
	}
	if err := a.Deallocate(ctx, "s"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Prepare(ctx, "s", "SELECT 2", nil); err != nil {
		t.Fatalf("Parse of a closed name: %v", err)
	}
	res = a.ExecPrepared(ctx, "s", nil, nil, nil).Read()
	if res.Err != nil || len(res.Rows) != 1 || string(res.Rows[0][0]) != "2" {
		t.Fatalf("s prepared again: %v %q", res.Err, res.Rows)
	}
}

// In session mode the client's session is its server's: when the server ends it (pg_terminate_backend, from
// the session itself or from another), the client gets the server's FATAL error once and is disconnected, as
// with Postgres, instead of going on with another server session.
func TestSessionEndsWithItsServer(t *testing.T) {
	t.Parallel()
	e := startEnv(t, envOpts{mode: "session", size: 2})
	ctx := Ctx(t, time.Minute)
	self := e.connect(t, ctx)
	_, err := self.Exec(ctx, "SELECT pg_terminate_backend(pg_backend_pid())")
	if pe := wantCode(t, "terminating its own backend", err, "57P01"); pe.Severity != "FATAL" {
		t.Fatalf("severity %s", pe.Severity)
	}
	if err := self.Ping(ctx); err == nil {
		t.Fatal("the session goes on after its server ended it")
	}

	idle := e.connect(t, ctx)
	var pid int
	if err := idle.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pid); err != nil {
		t.Fatal(err)
	}
	e.pg.Exec(t, "app_0", "SELECT pg_terminate_backend($1)", pid)
	if !waitFor(5*time.Second, func() bool { return idle.Ping(ctx) != nil }) {
		t.Fatal("an idle session whose server was terminated still answers pings")
	}
	if _, err := idle.Exec(ctx, "SELECT 1"); err == nil {
		t.Fatal("a statement ran after the session's server was terminated")
	}
}

// A statement prepared after an ALTER TABLE that changed its result columns sees the new columns, although
// another client prepared the same text on the same server connection before: pgshard prepares it afresh
// rather than lending it the server's stale statement (or a cached description of the old columns).
func TestPrepareAfterAlterTable(t *testing.T) {
	t.Parallel()
	e := startEnv(t, envOpts{size: 1})
	ctx := Ctx(t, time.Minute)
	e.pg.Exec(t, "app_0", "CREATE TABLE altered (a int); INSERT INTO altered VALUES (1); ALTER TABLE altered OWNER TO app")
	before := e.connect(t, ctx)
	var n int
	if err := before.QueryRow(ctx, "SELECT * FROM altered").Scan(&n); err != nil {
		t.Fatal(err)
	}
	mustExec(t, ctx, before, "ALTER TABLE altered ADD COLUMN b text DEFAULT 'x'")
	after := e.connect(t, ctx)
	var b string
	if err := after.QueryRow(ctx, "SELECT * FROM altered").Scan(&n, &b); err != nil {
		t.Fatalf("prepared after the ALTER: %v", err)
	}
	if n != 1 || b != "x" {
		t.Fatalf("got %d %q", n, b)
	}
}

// A SET counts only if its transaction commits, as on Postgres: one in a transaction block that rolls back, or
// in a query string whose later statement fails, is not given to the client's next server connection (a role
// created and SET in a transaction that rolled back does not exist any more). A SET of part of a reported
// parameter (datestyle's order alone) keeps the rest of it.
func TestRolledBackSetIsUndone(t *testing.T) {
	t.Parallel()
	e := startEnv(t, envOpts{size: 1})
	ctx := Ctx(t, time.Minute)
	e.pg.Exec(t, "app_0", "ALTER ROLE app CREATEROLE")
	a := e.connect(t, ctx)
	b := e.connect(t, ctx)
	turn := func() {
		t.Helper()
		mustExec(t, ctx, b, "SELECT 1") // B on the server between A's statements
	}
	mustExec(t, ctx, a, "BEGIN; CREATE ROLE fidelity_tx_role; GRANT fidelity_tx_role TO app; SET ROLE fidelity_tx_role; SET statement_timeout = '3s'")
	mustExec(t, ctx, a, "ROLLBACK")
	turn()
	if got := setting(t, ctx, a, "role"); got != "none" {
		t.Fatalf("role after ROLLBACK: %q", got)
	}
	if got := setting(t, ctx, a, "statement_timeout"); got != "0" {
		t.Fatalf("statement_timeout after ROLLBACK: %q", got)
	}
	if _, err := a.Exec(ctx, "SET statement_timeout = '4s'; SELECT 1/0", pgx.QueryExecModeSimpleProtocol); err == nil {
		t.Fatal("1/0 did not fail")
	}
	turn()
	if got := setting(t, ctx, a, "statement_timeout"); got != "0" {
		t.Fatalf("statement_timeout after a failed query string: %q", got)
	}
	mustExec(t, ctx, a, "BEGIN; SET statement_timeout = '5s'; COMMIT")
	mustExec(t, ctx, a, "SET datestyle TO iso")
	mustExec(t, ctx, a, "SET datestyle TO ymd")
	turn()
	if got := setting(t, ctx, a, "statement_timeout"); got != "5s" {
		t.Fatalf("statement_timeout after COMMIT: %q", got)
	}
	if got := setting(t, ctx, a, "DateStyle"); got != "ISO, YMD" {
		t.Fatalf("DateStyle: %q", got)
	}
}

// SQL PREPARE/EXECUTE/DEALLOCATE in transaction mode answer as Postgres does, though two clients use one name
// for different queries on one server connection: EXPLAIN EXECUTE and CREATE TABLE AS EXECUTE work, a second
// PREPARE of a name is 42P05, a DEALLOCATE of an unknown name 26000, and an error's position points into the
// client's own text.
func TestSQLPrepareFidelity(t *testing.T) {
	t.Parallel()
	e := startEnv(t, envOpts{size: 1})
	ctx := Ctx(t, time.Minute)
	e.pg.Exec(t, "app_0", "CREATE SCHEMA sqlprep AUTHORIZATION app")
	a := e.connect(t, ctx)
	b := e.connect(t, ctx)
	one := func(c *pgx.Conn, sql string) string {
		t.Helper()
		var v string
		if err := c.QueryRow(ctx, sql, pgx.QueryExecModeSimpleProtocol).Scan(&v); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
		return v
	}
	mustExec(t, ctx, a, "PREPARE q(int) AS SELECT ($1 * 10)::text")
	mustExec(t, ctx, b, "PREPARE q AS SELECT 'b'")
	for i := 0; i < 2; i++ {
		if got := one(a, "EXECUTE q(4)"); got != "40" {
			t.Fatalf("A's q: %q", got)
		}
		if got := one(b, "EXECUTE q"); got != "b" {
			t.Fatalf("B's q: %q", got)
		}
	}
	if got := one(a, "SELECT statement FROM pg_prepared_statements WHERE name = 'q'"); got != "PREPARE q(int) AS SELECT ($1 * 10)::text" {
		t.Fatalf("pg_prepared_statements shows A's q (prepared again on the connection B used) as %q", got)
	}
	if got := one(a, "EXPLAIN (COSTS OFF) EXECUTE q(1)"); got != "Result" {
		t.Fatalf("EXPLAIN EXECUTE: %q", got)
	}
	mustExec(t, ctx, b, "SELECT 1")
	mustExec(t, ctx, a, "CREATE TABLE sqlprep.made AS EXECUTE q(7)")
	if got := e.pg.QueryString(t, "app_0", "SELECT * FROM sqlprep.made"); got != "70" {
		t.Fatalf("CREATE TABLE AS EXECUTE made %q", got)
	}
	_, err := a.Exec(ctx, "PREPARE q AS SELECT 2", pgx.QueryExecModeSimpleProtocol)
	if pe := wantCode(t, "PREPARE of a name in use", err, "42P05"); pe.Message != `prepared statement "q" already exists` {
		t.Fatalf("message %q", pe.Message)
	}
	_, err = a.Exec(ctx, "DEALLOCATE nothing", pgx.QueryExecModeSimpleProtocol)
	wantCode(t, "DEALLOCATE of an unknown name", err, "26000")
	_, err = b.Exec(ctx, "PREPARE p1 AS SELECT $1a", pgx.QueryExecModeSimpleProtocol)
	if pe := wantCode(t, "PREPARE with bad SQL", err, "42601"); pe.Position != 22 {
		t.Fatalf("error position %d, want 22 (as in the client's text)", pe.Position)
	}
	mustExec(t, ctx, a, "PREPARE only_a AS SELECT 'a'")
	_, err = b.Exec(ctx, "EXECUTE only_a", pgx.QueryExecModeSimpleProtocol)
	wantCode(t, "EXECUTE of another client's statement", err, "26000")
	if got := one(b, "SELECT string_agg(name, ',' ORDER BY name) FROM pg_prepared_statements"); got != "q" {
		t.Fatalf("B sees prepared statements %q, want its own: q", got)
	}
	if got := one(a, "SELECT string_agg(name, ',' ORDER BY name) FROM pg_prepared_statements"); got != "only_a,q" {
		t.Fatalf("A sees prepared statements %q, want its own: only_a,q", got)
	}
	mustExec(t, ctx, a, "DEALLOCATE q")
	mustExec(t, ctx, b, "SELECT 1")
	_, err = a.Exec(ctx, "EXECUTE q(1)", pgx.QueryExecModeSimpleProtocol)
	wantCode(t, "EXECUTE after DEALLOCATE", err, "26000")
	if got := one(b, "EXECUTE q"); got != "b" {
		t.Fatalf("B's q after A's DEALLOCATE: %q", got)
	}
}

// When pgshard cannot undo what an earlier client left on a server connection (a custom setting that loading
// its extension removed since), that connection is closed and the next client gets another: it is not that
// client's error.
func TestLeftoverThatCannotBeResetIsNotTheNextClientsError(t *testing.T) {
	t.Parallel()
	e := startEnv(t, envOpts{size: 1})
	ctx := Ctx(t, time.Minute)
	a := e.connect(t, ctx)
	b := e.connect(t, ctx)
	mustExec(t, ctx, a, "SET plpgsql.extra_foo_warnings = true") // a placeholder until plpgsql is loaded
	mustExec(t, ctx, a, "DO $$BEGIN END$$")                      // loads plpgsql, which removes it
	if got := setting(t, ctx, b, "application_name"); got != "" {
		t.Fatalf("B's application_name %q", got)
	}
	mustExec(t, ctx, b, "SELECT 1")
}

// The unnamed statement lasts until the client's next Parse of it or simple query, as on Postgres, though
// transaction mode may give the client's next batch another server connection (psql's \gdesc sends Parse and
// Sync, then Describe and Sync).
func TestUnnamedStatementAcrossBatches(t *testing.T) {
	t.Parallel()
	e := startEnv(t, envOpts{size: 1})
	ctx := Ctx(t, time.Minute)
	a := e.rawLogin(t) // as user trusted
	b, err := pgx.Connect(ctx, e.proxy.DSN("app", "trusted", "x"))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close(ctx)
	exchange := func(msgs ...pgproto3.FrontendMessage) []string {
		t.Helper()
		a.send(t, msgs...)
		got, err := a.receiveUntil(t, 10*time.Second, isReady)
		if err != nil {
			t.Fatalf("%v (got %v)", err, got)
		}
		return got
	}
	if got := exchange(&pgproto3.Parse{Query: "SELECT 1 AS x"}, &pgproto3.Sync{}); strings.Join(got, " ") != "ParseComplete ReadyForQuery(I)" {
		t.Fatalf("Parse: %v", got)
	}
	mustExec(t, ctx, b, "SELECT 2") // B's simple query on the one server connection drops its unnamed statement
	got := exchange(&pgproto3.Describe{ObjectType: 'S'}, &pgproto3.Sync{})
	if strings.Join(got, " ") != "ParameterDescription RowDescription ReadyForQuery(I)" {
		t.Fatalf("Describe of the unnamed statement in a later batch: %v", got)
	}
	got = exchange(&pgproto3.Bind{}, &pgproto3.Execute{}, &pgproto3.Sync{})
	if strings.Join(got, " ") != "BindComplete DataRow[1] CommandComplete(SELECT 1) ReadyForQuery(I)" {
		t.Fatalf("Bind of the unnamed statement in a later batch: %v", got)
	}
	got = exchange(&pgproto3.Query{String: "SELECT 3"})
	got = exchange(&pgproto3.Describe{ObjectType: 'S'}, &pgproto3.Sync{})
	if len(got) != 2 || !strings.Contains(got[0], "26000") {
		t.Fatalf("Describe of the unnamed statement after a simple query: %v", got)
	}
}

// In session mode the process id a client gets at login is its backend's, as pg_backend_pid() says, and a
// CancelRequest with it (and pgshard's key) cancels the client's statement.
func TestSessionModeBackendPID(t *testing.T) {
	t.Parallel()
	e := startEnv(t, envOpts{mode: "session", size: 2})
	ctx := Ctx(t, time.Minute)
	cfg, err := pgx.ParseConfig(e.dsn("app", "secret"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.BuildContextWatcherHandler = cancelRequestHandler
	c, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	var pid uint32
	if err := c.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pid); err != nil {
		t.Fatal(err)
	}
	if got := c.PgConn().PID(); got != pid {
		t.Fatalf("BackendKeyData gave process id %d, pg_backend_pid() says %d", got, pid)
	}
	qctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	_, err = c.Exec(qctx, "SELECT pg_sleep(30)")
	wantCode(t, "a cancelled pg_sleep", err, "57014")
}

// psql's \gdesc of "EXECUTE name": the unnamed statement that runs the client's SQL-prepared statement, parsed
// in one batch and described in the next on a server connection where another client has its own statement of
// that name, describes and runs the client's.
func TestUnnamedExecuteAcrossBatches(t *testing.T) {
	t.Parallel()
	e := startEnv(t, envOpts{size: 1})
	ctx := Ctx(t, time.Minute)
	a := e.rawLogin(t) // as user trusted
	b, err := pgx.Connect(ctx, e.proxy.DSN("app", "trusted", "x"))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close(ctx)
	exchange := func(msgs ...pgproto3.FrontendMessage) string {
		t.Helper()
		a.send(t, msgs...)
		got, err := a.receiveUntil(t, 10*time.Second, isReady)
		if err != nil {
			t.Fatalf("%v (got %v)", err, got)
		}
		return strings.Join(got, " ")
	}
	exchange(&pgproto3.Query{String: "PREPARE test AS SELECT 1 AS first, 2 AS second"})
	if got := exchange(&pgproto3.Parse{Query: "EXECUTE test"}, &pgproto3.Sync{}); got != "ParseComplete ReadyForQuery(I)" {
		t.Fatalf("Parse: %v", got)
	}
	mustExec(t, ctx, b, "PREPARE test AS SELECT 'b' AS other")
	if got := exchange(&pgproto3.Describe{ObjectType: 'S'}, &pgproto3.Sync{}); got != "ParameterDescription RowDescription ReadyForQuery(I)" {
		t.Fatalf("Describe of EXECUTE test in a later batch: %v", got)
	}
	if got := exchange(&pgproto3.Bind{}, &pgproto3.Execute{}, &pgproto3.Sync{}); got != "BindComplete DataRow[1,2] CommandComplete(SELECT 1) ReadyForQuery(I)" {
		t.Fatalf("Bind and Execute of EXECUTE test: %v", got)
	}
}

// Statements that share their text but not their parameter types are different statements on the server, as
// Postgres keeps them: a client that declares $1 as text and sends it in binary must not get a server statement
// another client prepared without types (there $1 is inet, and text's bytes are "incorrect binary data format in
// bind parameter 1"), whichever prepared first; and "describe, then execute" clients (pgx) send the forms of the
// types the description names (binary for inet, cidr, json, arrays; an enum as text).
func TestParameterTypesKeepStatementsApart(t *testing.T) {
	t.Parallel()
	e := startEnv(t, envOpts{size: 1})
	ctx := Ctx(t, time.Minute)
	c := e.connect(t, ctx) // pgx's default: Parse, Describe, then Bind with the described types, in binary
	if _, err := c.Exec(ctx, `CREATE TYPE mood AS ENUM ('sad', 'ok')`); err != nil {
		t.Fatal(err)
	}
	c.Close(ctx)
	c = e.connect(t, ctx) // a new connection loads the new types
	r := e.rawLogin(t)
	bindText := func(name string) string {
		t.Helper()
		r.send(t, &pgproto3.Bind{PreparedStatement: name, ParameterFormatCodes: []int16{1}, Parameters: [][]byte{[]byte("10.1.2.3")}},
			&pgproto3.Execute{}, &pgproto3.Sync{})
		got, err := r.receiveUntil(t, 10*time.Second, isReady)
		if err != nil {
			t.Fatal(err)
		}
		return strings.Join(got, " ")
	}
	const q = "SELECT $1::inet::text"
	// Typed first, then untyped (pgx), then typed again on a new name.
	r.send(t, &pgproto3.Parse{Name: "typed", Query: q, ParameterOIDs: []uint32{25}}, &pgproto3.Sync{})
	if _, err := r.receiveUntil(t, 10*time.Second, isReady); err != nil {
		t.Fatal(err)
	}
	if got := bindText("typed"); got != "BindComplete DataRow[10.1.2.3/32] CommandComplete(SELECT 1) ReadyForQuery(I)" &&
		got != "BindComplete DataRow[10.1.2.3] CommandComplete(SELECT 1) ReadyForQuery(I)" {
		t.Fatalf("a text parameter in binary: %s", got)
	}
	var s string
	if err := c.QueryRow(ctx, q, netip.MustParseAddr("10.9.8.7")).Scan(&s); err != nil || s != "10.9.8.7/32" && s != "10.9.8.7" {
		t.Fatalf("the same text from pgx (inet in binary): %q %v", s, err)
	}
	r.send(t, &pgproto3.Parse{Name: "typed2", Query: q, ParameterOIDs: []uint32{25}}, &pgproto3.Sync{})
	if _, err := r.receiveUntil(t, 10*time.Second, isReady); err != nil {
		t.Fatal(err)
	}
	if got := bindText("typed2"); !strings.HasPrefix(got, "BindComplete DataRow[10.1.2.3") {
		t.Fatalf("a text parameter in binary, after pgx prepared the same text untyped: %s", got)
	}
	// The binary forms pgx picks from the description round-trip.
	var inet, cidr, js, arr, mood string
	err := c.QueryRow(ctx, "SELECT $1::inet::text, $2::cidr::text, $3::json::text, $4::int[]::text, $5::mood::text",
		netip.MustParsePrefix("192.168.1.5/24"), netip.MustParsePrefix("10.0.0.0/8"), map[string]any{"k": 1}, []int32{1, 2, 3}, "ok",
	).Scan(&inet, &cidr, &js, &arr, &mood)
	if err != nil || inet != "192.168.1.5/24" || cidr != "10.0.0.0/8" || js != `{"k":1}` || arr != "{1,2,3}" || mood != "ok" {
		t.Fatalf("binary parameters through pgshard: %q %q %q %q %q, %v", inet, cidr, js, arr, mood, err)
	}
}

// In transaction mode SQL's EXECUTE does not see a statement prepared with the protocol's Parse (Postgres shares
// one namespace, pgshard keeps them apart): the server's 26000 then says why and what to do instead.
func TestExecuteOfProtocolStatementSaysWhy(t *testing.T) {
	t.Parallel()
	e := startEnv(t, envOpts{size: 1})
	ctx := Ctx(t, time.Minute)
	c := e.connect(t, ctx)
	if _, err := c.Prepare(ctx, "pq", "SELECT 1"); err != nil {
		t.Fatal(err)
	}
	_, err := c.Exec(ctx, "EXECUTE pq", pgx.QueryExecModeSimpleProtocol)
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "26000" || !strings.Contains(pe.Hint, "extended protocol's Parse") {
		t.Fatalf("EXECUTE of a statement prepared by Parse: %v (hint %q); want 26000 with a hint", err, hintOf(err))
	}
	_, err = c.Exec(ctx, "EXECUTE never_prepared", pgx.QueryExecModeSimpleProtocol)
	if !errors.As(err, &pe) || pe.Code != "26000" || pe.Hint != "" {
		t.Fatalf("EXECUTE of an unknown name: %v; want Postgres's 26000 as it is", err)
	}
}

func hintOf(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Hint
	}
	return ""
}

// An ALTER TABLE that did not go through pgshard (a migration run on the shard directly): the server refuses
// to run the statement it prepared before ("cached plan must not change result type"), as Postgres refuses a
// client the statement it prepared itself. A client that prepares the text again after that error must get it
// prepared afresh, not the server's stale statement again (it did: every later client got the error).
func TestPrepareAfterAlterTableElsewhere(t *testing.T) {
	t.Parallel()
	e := startEnv(t, envOpts{size: 1})
	ctx := Ctx(t, time.Minute)
	e.pg.Exec(t, "app_0", "CREATE TABLE altered_elsewhere (a int); INSERT INTO altered_elsewhere VALUES (1); "+
		"ALTER TABLE altered_elsewhere OWNER TO app")
	before := e.connect(t, ctx)
	var n int
	if err := before.QueryRow(ctx, "SELECT * FROM altered_elsewhere").Scan(&n); err != nil {
		t.Fatal(err)
	}
	e.pg.Exec(t, "app_0", "ALTER TABLE altered_elsewhere ADD COLUMN b text DEFAULT 'x'")
	after := e.connect(t, ctx)
	var b string
	err := after.QueryRow(ctx, "SELECT * FROM altered_elsewhere").Scan(&n, &b)
	if err != nil {
		// What Postgres says of its statement; pgx drops its own cached one on it, and prepares again.
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "0A000" {
			t.Fatalf("first try after the ALTER: %v", err)
		}
		err = after.QueryRow(ctx, "SELECT * FROM altered_elsewhere").Scan(&n, &b)
	}
	if err != nil {
		t.Fatalf("prepared again after the server's error: %v", err)
	}
	if n != 1 || b != "x" {
		t.Fatalf("got %d %q", n, b)
	}
}
