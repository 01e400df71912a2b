package e2e

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgproto3"
)

// pgx in its default mode names and caches prepared statements; 50 goroutines share a pool of 5 server
// connections and every answer must be right, also after DISCARD ALL and after server connections are killed.
func TestPgxPreparedStatementsAcrossServers(t *testing.T) {
	t.Parallel()
	e := startEnv(t, envOpts{size: 5})
	ctx := Ctx(t, 2*time.Minute)
	setup := e.connect(t, ctx)
	if _, err := setup.Exec(ctx, "CREATE TABLE kv (k int PRIMARY KEY, v text); INSERT INTO kv SELECT i, 'v' || i FROM generate_series(1, 100) i", pgx.QueryExecModeSimpleProtocol); err != nil {
		t.Fatal(err)
	}
	conns := make([]*pgx.Conn, 50)
	for i := range conns {
		conns[i] = e.connect(t, ctx) // pgx default mode: QueryExecModeCacheStatement
	}
	round := func(name string) {
		t.Helper()
		var wg sync.WaitGroup
		errs := make(chan error, len(conns))
		for i, c := range conns {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for j := 0; j < 10; j++ {
					k := 1 + (i*7+j)%100
					var v string
					var sum int
					if err := c.QueryRow(ctx, "SELECT v FROM kv WHERE k = $1", k).Scan(&v); err != nil || v != fmt.Sprintf("v%d", k) {
						errs <- fmt.Errorf("%s: client %d: k=%d got %q %v", name, i, k, v, err)
						return
					}
					if err := c.QueryRow(ctx, "SELECT $1::int + $2::int", i, j).Scan(&sum); err != nil || sum != i+j {
						errs <- fmt.Errorf("%s: client %d: sum got %d %v", name, i, sum, err)
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	}
	round("first round")
	// Another client's DISCARD ALL drops every prepared statement on the server connection it runs on: the
	// clients that use it next must not notice (their statements are prepared again).
	for i := 0; i < 5; i++ {
		if _, err := setup.Exec(ctx, "DISCARD ALL", pgx.QueryExecModeSimpleProtocol); err != nil {
			t.Fatal(err)
		}
	}
	round("after DISCARD ALL")
	// Kill every idle server connection: clients between transactions must not notice.
	e.pg.Exec(t, "app_0", "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'app' AND state = 'idle'")
	time.Sleep(200 * time.Millisecond)
	round("after pg_terminate_backend")
}

// pgbench -M prepared with 64 clients on a pool of 8 in transaction mode: no errors, and the TPC-B-like
// script's invariant holds (the branch balances sum up to the history's deltas).
func TestPgbenchPrepared(t *testing.T) {
	t.Parallel()
	e := startEnv(t, envOpts{size: 8, maxClients: 200})
	pgbench := pgTool(t, "pgbench")
	ctx := Ctx(t, 2*time.Minute)
	host, port := "127.0.0.1", itoa(e.proxy.Port)
	if out, err := runTool(ctx, "secret", pgbench, "-i", "-s", "1", "-q", "-h", host, "-p", port, "-U", "app", "app"); err != nil {
		t.Fatalf("pgbench -i: %v\n%s", err, out)
	}
	out, err := runTool(ctx, "secret", pgbench, "-M", "prepared", "-c", "64", "-j", "2", "-T", "5", "-h", host, "-p", port, "-U", "app", "app")
	if err != nil {
		t.Fatalf("pgbench -M prepared: %v\n%s", err, out)
	}
	if strings.Contains(out, "error") || strings.Contains(out, "aborted") || !strings.Contains(out, "number of failed transactions: 0 ") {
		t.Fatalf("pgbench -M prepared reported errors:\n%s", out)
	}
	branches := e.pg.QueryString(t, "app_0", "SELECT sum(bbalance) FROM pgbench_branches")
	history := e.pg.QueryString(t, "app_0", "SELECT coalesce(sum(delta), 0) FROM pgbench_history")
	if branches != history {
		t.Fatalf("sum(bbalance) = %s but sum(delta) = %s", branches, history)
	}
	if n := e.pg.QueryString(t, "app_0", "SELECT count(*) FROM pgbench_history"); n == "0" {
		t.Fatal("no transaction ran")
	}
}

// The protocol-level details: a statement prepared on one server connection runs on another; Close and an
// unknown name behave as in Postgres, in pipeline order.
func TestPreparedStatementProtocol(t *testing.T) {
	t.Parallel()
	e := startEnv(t, envOpts{size: 2})
	r := e.rawLogin(t)
	until := func() []string {
		t.Helper()
		got, err := r.receiveUntil(t, 10*time.Second, isReady)
		if err != nil {
			t.Fatalf("%v (got %v)", err, got)
		}
		return got
	}
	expect := func(got []string, want ...string) {
		t.Helper()
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Fatalf("got  %v\nwant %v", got, want)
		}
	}
	r.send(t, &pgproto3.Parse{Name: "s1", Query: "SELECT $1::int * 10"}, &pgproto3.Sync{})
	expect(until(), "ParseComplete", "ReadyForQuery(I)")
	// Hold the first server connection in another client's transaction, so the next batch gets the other one.
	other := e.connect(t, Ctx(t, time.Minute))
	tx, err := other.Begin(Ctx(t, time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(Ctx(t, time.Minute))
	if _, err := tx.Exec(Ctx(t, time.Minute), "SELECT 1"); err != nil {
		t.Fatal(err)
	}
	r.send(t, &pgproto3.Bind{PreparedStatement: "s1", Parameters: [][]byte{[]byte("4")}}, &pgproto3.Execute{}, &pgproto3.Sync{})
	expect(until(), "BindComplete", "DataRow[40]", "CommandComplete(SELECT 1)", "ReadyForQuery(I)")
	// Re-preparing the same text under another name, describing it, closing one name.
	r.send(t, &pgproto3.Parse{Name: "s2", Query: "SELECT $1::int * 10"}, &pgproto3.Describe{ObjectType: 'S', Name: "s2"},
		&pgproto3.Close{ObjectType: 'S', Name: "s1"}, &pgproto3.Bind{PreparedStatement: "s2", Parameters: [][]byte{[]byte("5")}},
		&pgproto3.Execute{}, &pgproto3.Sync{})
	expect(until(), "ParseComplete", "ParameterDescription", "RowDescription", "CloseComplete", "BindComplete",
		"DataRow[50]", "CommandComplete(SELECT 1)", "ReadyForQuery(I)")
	// A closed name is gone for this client: 26000, and the rest of the batch is skipped until Sync.
	r.send(t, &pgproto3.Bind{PreparedStatement: "s1"}, &pgproto3.Execute{}, &pgproto3.Sync{},
		&pgproto3.Bind{PreparedStatement: "s2", Parameters: [][]byte{[]byte("6")}}, &pgproto3.Execute{}, &pgproto3.Sync{})
	got := until()
	if len(got) != 2 || !strings.Contains(got[0], "26000") {
		t.Fatalf("bind of a closed statement: got %v, want an ErrorResponse 26000 then ReadyForQuery", got)
	}
	expect(until(), "BindComplete", "DataRow[60]", "CommandComplete(SELECT 1)", "ReadyForQuery(I)")
	// A statement that fails to parse is not left behind: the same name can be prepared right after.
	r.send(t, &pgproto3.Parse{Name: "bad", Query: "SELEKT 1"}, &pgproto3.Sync{})
	if got := until(); len(got) != 2 || !strings.Contains(got[0], "42601") {
		t.Fatalf("bad Parse: got %v", got)
	}
	r.send(t, &pgproto3.Parse{Name: "bad", Query: "SELECT 2"}, &pgproto3.Bind{PreparedStatement: "bad"}, &pgproto3.Execute{}, &pgproto3.Sync{})
	expect(until(), "ParseComplete", "BindComplete", "DataRow[2]", "CommandComplete(SELECT 1)", "ReadyForQuery(I)")
	// The server's errors name the statement by the client's name, not by the one pgshard gave it on the
	// server; and a Bind the server refused leaves the statement in place.
	r.send(t, &pgproto3.Bind{PreparedStatement: "s2"}, &pgproto3.Execute{}, &pgproto3.Sync{})
	want := `ErrorResponse(ERROR 08P01 bind message supplies 0 parameters, but prepared statement "s2" requires 1)`
	expect(until(), want, "ReadyForQuery(I)")
	r.send(t, &pgproto3.Bind{PreparedStatement: "s2", Parameters: [][]byte{[]byte("7")}}, &pgproto3.Execute{}, &pgproto3.Sync{})
	expect(until(), "BindComplete", "DataRow[70]", "CommandComplete(SELECT 1)", "ReadyForQuery(I)")
}

// A batch pgshard answers itself (closing a statement needs no server) followed, in the same write, by
// statements that need one: all are answered. (The rest used to wait for the client's next bytes, which a client
// waiting for its answers never sends.)
func TestLocalAnswersThenServerInOneWrite(t *testing.T) {
	t.Parallel()
	e := startEnv(t, envOpts{size: 1})
	r := e.rawLogin(t)
	r.send(t, &pgproto3.Close{ObjectType: 'S', Name: "never"}, &pgproto3.Sync{}, &pgproto3.Query{String: "SELECT 5"})
	got, err := r.receiveUntil(t, 10*time.Second, func(m pgproto3.BackendMessage) bool {
		_, ok := m.(*pgproto3.CommandComplete)
		return ok
	})
	if want := "CloseComplete ReadyForQuery(I) RowDescription DataRow[5] CommandComplete(SELECT 1)"; strings.Join(got, " ") != want || err != nil {
		t.Fatalf("got %v, %v; want %s", got, err, want)
	}
}

// A statement whose Parse reached the server but whose Describe's answer never reached its client (the client
// gave up and closed, as pgx does when a context ends mid-prepare) is left usable or absent, never half there:
// another client that prepares the same text, describes it and runs it gets the right answers, on whichever
// server connection, many times over.
func TestPrepareInterruptedBetweenParseAndDescribe(t *testing.T) {
	t.Parallel()
	e := startEnv(t, envOpts{size: 2})
	const q = "SELECT $1::int + 1 AS next"
	for i := 0; i < 20; i++ {
		r := e.rawLogin(t)
		r.send(t, &pgproto3.Parse{Name: "s", Query: q}, &pgproto3.Describe{ObjectType: 'S', Name: "s"}, &pgproto3.Sync{})
		if i%2 == 1 {
			_, _ = r.fe.Receive() // sometimes the ParseComplete arrives first
		}
		r.Close()

		r2 := e.rawLogin(t)
		r2.send(t, &pgproto3.Parse{Name: "t", Query: q}, &pgproto3.Describe{ObjectType: 'S', Name: "t"},
			&pgproto3.Bind{PreparedStatement: "t", Parameters: [][]byte{[]byte(strconv.Itoa(i))}}, &pgproto3.Execute{}, &pgproto3.Sync{})
		got, err := r2.receiveUntil(t, 10*time.Second, isReady)
		want := "ParseComplete ParameterDescription RowDescription BindComplete DataRow[" + strconv.Itoa(i+1) + "] CommandComplete(SELECT 1) ReadyForQuery(I)"
		if err != nil || strings.Join(got, " ") != want {
			t.Fatalf("round %d, after a client left between Parse and Describe: %v %v; want %s", i, got, err, want)
		}
		r2.Close()
	}
}
