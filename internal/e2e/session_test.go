package e2e

import (
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Two clients with different search_path, statement_timeout and TimeZone take turns on one server connection
// (pool size 1): each sees only its own settings, and RESET brings back its own startup value.
func TestSettingsFollowTheClient(t *testing.T) {
	t.Parallel()
	e := startEnv(t, envOpts{size: 1})
	ctx := Ctx(t, time.Minute)
	cfgA, err := pgx.ParseConfig(e.dsn("app", "secret") + "&timezone=America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	a, err := pgx.ConnectConfig(ctx, cfgA)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close(ctx)
	b := e.connect(t, ctx)
	exec := func(c *pgx.Conn, sql string) {
		t.Helper()
		if _, err := c.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	show := func(c *pgx.Conn, name string) string {
		t.Helper()
		var v string
		if err := c.QueryRow(ctx, "SELECT current_setting($1)", name).Scan(&v); err != nil {
			t.Fatalf("current_setting(%s): %v", name, err)
		}
		return v
	}
	exec(b, "CREATE SCHEMA s_b")
	exec(a, "SET search_path = pg_catalog, public")
	exec(a, "SET statement_timeout = '7s'")
	exec(b, "SET search_path TO s_b")
	exec(b, "SET TIME ZONE 'Asia/Tokyo'")
	for round := 0; round < 3; round++ {
		if got := show(a, "search_path"); got != "pg_catalog, public" {
			t.Fatalf("round %d: client A search_path %q", round, got)
		}
		if got := show(b, "search_path"); got != "s_b" {
			t.Fatalf("round %d: client B search_path %q", round, got)
		}
		if got := show(a, "statement_timeout"); got != "7s" {
			t.Fatalf("round %d: client A statement_timeout %q", round, got)
		}
		if got := show(b, "statement_timeout"); got != "0" {
			t.Fatalf("round %d: client B statement_timeout %q (A's leaked)", round, got)
		}
		if got := show(a, "TimeZone"); got != "America/New_York" {
			t.Fatalf("round %d: client A TimeZone %q", round, got)
		}
		if got := show(b, "TimeZone"); got != "Asia/Tokyo" {
			t.Fatalf("round %d: client B TimeZone %q", round, got)
		}
	}
	// SHOW answers what the client set too.
	var tz string
	if err := b.QueryRow(ctx, "SHOW timezone", pgx.QueryExecModeSimpleProtocol).Scan(&tz); err != nil || tz != "Asia/Tokyo" {
		t.Fatalf("SHOW timezone on B: %q %v", tz, err)
	}
	// RESET returns to the client's own startup value, not to the other client's nor the server's.
	exec(b, "RESET timezone")
	exec(a, "SET TIME ZONE 'Europe/Paris'")
	exec(a, "RESET TimeZone")
	if got := show(a, "TimeZone"); got != "America/New_York" {
		t.Fatalf("after RESET, client A TimeZone %q, want its startup America/New_York", got)
	}
	if got := show(b, "TimeZone"); got == "Asia/Tokyo" || got == "America/New_York" {
		t.Fatalf("after RESET, client B TimeZone %q, want the server default", got)
	}
	// A SET that fails is not replayed on later transactions.
	if _, err := a.Exec(ctx, "SET statement_timeout = 'soon'"); err == nil {
		t.Fatal("a bad SET succeeded")
	}
	if got := show(a, "statement_timeout"); got != "7s" {
		t.Fatalf("after a failed SET, statement_timeout %q", got)
	}
	// SET LOCAL lasts its transaction only.
	tx, err := a.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "SET LOCAL statement_timeout = '3s'"); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if got := show(a, "statement_timeout"); got != "7s" {
		t.Fatalf("after SET LOCAL, statement_timeout %q", got)
	}
}

// A session advisory lock taken in transaction mode stays held (the client keeps its server connection)
// until it is unlocked, and is released when the client leaves.
func TestSessionAdvisoryLockPins(t *testing.T) {
	t.Parallel()
	e := startEnv(t, envOpts{size: 2})
	ctx := Ctx(t, time.Minute)
	a := e.connect(t, ctx)
	b := e.connect(t, ctx)
	try := func(c *pgx.Conn) bool {
		t.Helper()
		var ok bool
		if err := c.QueryRow(ctx, "SELECT pg_try_advisory_xact_lock(42)").Scan(&ok); err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if _, err := a.Exec(ctx, "SELECT pg_advisory_lock(42)"); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ { // other transactions of A's, and B's, come and go
		if _, err := a.Exec(ctx, "SELECT 1"); err != nil {
			t.Fatal(err)
		}
		if try(b) {
			t.Fatalf("round %d: B got the lock A holds: A's server connection was given back with the lock", i)
		}
	}
	var unlocked bool
	if err := a.QueryRow(ctx, "SELECT pg_advisory_unlock(42)").Scan(&unlocked); err != nil || !unlocked {
		t.Fatalf("unlock: %v %v (the unlock ran on a server connection without the lock)", unlocked, err)
	}
	if !try(b) {
		t.Fatal("B cannot get the lock after A unlocked it")
	}
	// Taken again, then A leaves without unlocking: the lock must go with it.
	if _, err := a.Exec(ctx, "SELECT pg_advisory_lock(42)"); err != nil {
		t.Fatal(err)
	}
	a.Close(ctx)
	if !waitFor(3*time.Second, func() bool { return try(b) }) {
		t.Fatal("the lock of a client that left is still held")
	}
	// The server connection A had is clean and back in the pool (both can serve B).
	if n := e.pg.QueryString(t, "app_0", "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"); n != "0" {
		t.Fatalf("%s advisory locks left", n)
	}
}

// SQL-level PREPARE / EXECUTE / DEALLOCATE in transaction mode: the names are the client's own, and a
// statement prepared on one server connection executes on another.
func TestSQLPrepareExecute(t *testing.T) {
	t.Parallel()
	e := startEnv(t, envOpts{size: 2})
	ctx := Ctx(t, time.Minute)
	a := e.connect(t, ctx)
	b := e.connect(t, ctx)
	// pgconn's Exec is the simple protocol with no client-side placeholder handling ($1 stays in PREPARE).
	simple := func(c *pgx.Conn, sql string) ([][]string, error) {
		t.Helper()
		results, err := c.PgConn().Exec(ctx, sql).ReadAll()
		var out [][]string
		for _, r := range results {
			for _, row := range r.Rows {
				var vals []string
				for _, v := range row {
					vals = append(vals, string(v))
				}
				out = append(out, vals)
			}
		}
		return out, err
	}
	if _, err := simple(a, "PREPARE p(int) AS SELECT $1 * 2"); err != nil {
		t.Fatal(err)
	}
	// The same name means something else for B.
	if _, err := simple(b, "PREPARE p(int) AS SELECT $1 * 3"); err != nil {
		t.Fatal(err)
	}
	// Hold one server connection in a transaction so the EXECUTEs run on the other one at times.
	other := e.connect(t, ctx)
	for i := 1; i <= 6; i++ {
		var tx pgx.Tx
		if i%2 == 0 {
			var err error
			if tx, err = other.Begin(ctx); err != nil {
				t.Fatal(err)
			}
			if _, err := tx.Exec(ctx, "SELECT 1"); err != nil {
				t.Fatal(err)
			}
		}
		ra, err := simple(a, "EXECUTE p("+itoa(i)+")")
		if err != nil || len(ra) != 1 || ra[0][0] != itoa(2*i) {
			t.Fatalf("A: EXECUTE p(%d) = %v %v", i, ra, err)
		}
		rb, err := simple(b, "EXECUTE p("+itoa(i)+")")
		if err != nil || len(rb) != 1 || rb[0][0] != itoa(3*i) {
			t.Fatalf("B: EXECUTE p(%d) = %v %v", i, rb, err)
		}
		if tx != nil {
			_ = tx.Rollback(ctx)
		}
	}
	if _, err := simple(a, "DEALLOCATE p"); err != nil {
		t.Fatal(err)
	}
	if _, err := simple(a, "EXECUTE p(1)"); wantCode(t, "EXECUTE after DEALLOCATE", err, "26000") == nil {
		return
	}
	if rb, err := simple(b, "EXECUTE p(5)"); err != nil || rb[0][0] != "15" {
		t.Fatalf("B after A's DEALLOCATE: %v %v", rb, err)
	}
	// A PREPARE that fails leaves nothing behind: the name can be prepared right after.
	if _, err := simple(a, "PREPARE q AS SELEKT 1"); err == nil {
		t.Fatal("bad PREPARE succeeded")
	}
	if _, err := simple(a, "PREPARE q AS SELECT 7"); err != nil {
		t.Fatal(err)
	}
	if ra, err := simple(a, "EXECUTE q"); err != nil || ra[0][0] != "7" {
		t.Fatalf("EXECUTE q = %v %v", ra, err)
	}
}

// Session mode with pool.server_reuse: false gives each client session a backend of its own, as Postgres does:
// what an earlier client left in its backend that DISCARD ALL cannot undo (a temporary schema, a loaded library,
// the per-backend statistics) is never seen by the next one. With the default (true) the next client gets the
// same backend, reset.
func TestSessionServerReuse(t *testing.T) {
	t.Parallel()
	for _, reuse := range []bool{true, false} {
		t.Run(fmt.Sprintf("server_reuse %v", reuse), func(t *testing.T) {
			e := startEnv(t, envOpts{mode: "session", size: 1, pool: []string{fmt.Sprintf("server_reuse: %v", reuse)}})
			ctx := Ctx(t, time.Minute)
			sessions := func() int {
				n, _ := strconv.Atoi(e.pg.QueryString(t, "postgres", "SELECT sessions FROM pg_stat_database WHERE datname = 'app_0'"))
				return n
			}
			first := e.connect(t, ctx)
			var pid1 int
			if err := first.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pid1); err != nil {
				t.Fatal(err)
			}
			if _, err := first.Exec(ctx, "CREATE TEMP TABLE scratch (a int); DO $$ BEGIN PERFORM 1; END $$"); err != nil {
				t.Fatal(err)
			}
			before := sessions()
			if err := first.Close(ctx); err != nil {
				t.Fatal(err)
			}
			second := e.connect(t, ctx)
			var pid2 int
			var tempSchema, plpgsqlLoaded bool
			if err := second.QueryRow(ctx, `SELECT pg_backend_pid(), pg_my_temp_schema() <> 0,
				EXISTS (SELECT FROM pg_settings WHERE name LIKE 'plpgsql.%')`).Scan(&pid2, &tempSchema, &plpgsqlLoaded); err != nil {
				t.Fatal(err)
			}
			fresh := !tempSchema && !plpgsqlLoaded && pid2 != pid1
			if reuse == fresh {
				t.Errorf("server_reuse %v: the second client's backend: pid %d (first %d), temporary schema %v, plpgsql loaded %v", reuse, pid2, pid1, tempSchema, plpgsqlLoaded)
			}
			if !reuse && !waitFor(5*time.Second, func() bool { return sessions() > before }) {
				t.Errorf("server_reuse false: pg_stat_database.sessions did not count the second client's session")
			}
		})
	}
}
