package e2e

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/pgshard/pgshard/internal/pgtest"
)

// A message type a logged-in client may not send (not a frontend message at all, or a password message after
// the login) is answered by pgshard as Postgres answers it, FATAL 08P01, and the connection is closed; it never
// reaches a server, whose session it would end, and the pool stays usable.
func TestInvalidMessageTypeIsRefused(t *testing.T) {
	t.Parallel()
	e := startEnv(t, envOpts{size: 1})
	ctx := Ctx(t, time.Minute)
	for _, typ := range []byte{'Z', 'p', 0} {
		r := e.rawLogin(t)
		msg := []byte{typ, 0, 0, 0, 0}
		binary.BigEndian.PutUint32(msg[1:], 4)
		if _, err := r.Write(msg); err != nil {
			t.Fatal(err)
		}
		got, err := r.receiveUntil(t, 5*time.Second, isReady)
		if len(got) != 1 || !strings.HasPrefix(got[0], "ErrorResponse(FATAL 08P01 invalid frontend message type") {
			t.Fatalf("message type %q: got %v, %v; want one FATAL 08P01", typ, got, err)
		}
		if err == nil || !isEOF(err) && !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("message type %q: the connection was not closed after the FATAL: %v", typ, err)
		}
	}
	c := e.connect(t, ctx)
	var n int
	if err := c.QueryRow(ctx, "SELECT 7").Scan(&n); err != nil || n != 7 {
		t.Fatalf("a client after the refused messages: %d %v", n, err)
	}
	if n := e.pg.QueryString(t, "postgres", "SELECT count(*) FROM pg_stat_activity WHERE usename = 'app' AND backend_type = 'client backend'"); n != "2" {
		t.Fatalf("server backends: %s, want the one of each pool (users trusted and app): none was ended", n)
	}
}

// A client that pipelines statements and never reads their answers holds at most about
// limits.client_outbound_buffer of answers in pgshard: its statements wait while that much is unread, and when
// it goes on sending that much more it is disconnected with 53400. In both pool modes; other clients are served
// meanwhile and afterwards.
func TestClientThatDoesNotReadIsBounded(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"transaction", "session"} {
		t.Run(mode, func(t *testing.T) {
			e := startEnv(t, envOpts{mode: mode, size: 2})
			ctx := Ctx(t, 2*time.Minute)
			other := e.connect(t, ctx)
			before, _ := e.proxy.rssKB(t)
			r := e.rawLogin(t)
			one := codecQuery("select 1")
			chunk := bytes.Repeat(one, 64<<10/len(one))
			sent, start := 0, time.Now()
			var werr error
			for sent < 64<<20 && werr == nil {
				_ = r.SetWriteDeadline(time.Now().Add(2 * time.Second))
				var n int
				n, werr = r.Write(chunk) // fails once pgshard closed the connection, or stopped reading it
				sent += n
			}
			t.Logf("writing ended after %v: %v", time.Since(start).Round(time.Millisecond), werr)
			_, peak := e.proxy.rssKB(t)
			t.Logf("sent %d MB of queries without reading; pgshard's peak RSS %d -> %d MB", sent>>20, before>>10, peak>>10)
			if grew := (peak - before) >> 10; grew > 64 {
				t.Fatalf("pgshard's memory grew by %d MB for one client that does not read", grew)
			}
			var n int
			if err := other.QueryRow(ctx, "SELECT 8").Scan(&n); err != nil || n != 8 {
				t.Fatalf("another client: %d %v", n, err)
			}
			// Once it is gone, pgshard's memory comes back down.
			r.Close()
			if rss := e.proxy.rssFallsTo(t, before+16<<10, 20*time.Second); rss > before+16<<10 {
				t.Errorf("RSS %d MB 20 s after the client left, %d MB before it came", rss>>10, before>>10)
			}
		})
	}
}

// codecQuery is a Query message.
func codecQuery(sql string) []byte {
	b := []byte{'Q', 0, 0, 0, 0}
	b = append(b, sql...)
	b = append(b, 0)
	binary.BigEndian.PutUint32(b[1:], uint32(len(b)-1))
	return b
}

// A client holds at most limits.client_prepared_statements named statements (10,000 by default): the next
// Parse is 53400 with a hint, and closing one makes room again.
func TestClientPreparedStatementsAreBounded(t *testing.T) {
	t.Parallel()
	e := startEnv(t, envOpts{size: 1})
	r := e.rawLogin(t)
	var msgs []pgproto3.FrontendMessage
	for i := 0; i <= 10000; i++ {
		msgs = append(msgs, &pgproto3.Parse{Name: fmt.Sprintf("s%d", i), Query: fmt.Sprintf("SELECT %d", i)})
	}
	r.send(t, append(msgs, &pgproto3.Sync{})...)
	got, err := r.receiveUntil(t, 30*time.Second, isReady)
	if err != nil || len(got) != 10002 || got[9999] != "ParseComplete" ||
		!strings.HasPrefix(got[10000], "ErrorResponse(ERROR 53400 too many prepared statements") {
		t.Fatalf("10,001 Parses: %d answers, %v; last ones %q", len(got), err, got[max(0, len(got)-3):])
	}
	r.send(t, &pgproto3.Close{ObjectType: 'S', Name: "s0"}, &pgproto3.Parse{Name: "again", Query: "SELECT 'again'"}, &pgproto3.Sync{})
	got, err = r.receiveUntil(t, 10*time.Second, isReady)
	if err != nil || strings.Join(got, " ") != "CloseComplete ParseComplete ReadyForQuery(I)" {
		t.Fatalf("Close, then Parse: %v %v", got, err)
	}
}

// What a client sends in the same write as its startup packet is read at once, as Postgres reads it: a
// password message where a SCRAM exchange is due is refused (08P01) right away, not at the startup timeout,
// and a query after a trust login is answered.
func TestPipelinedAfterStartup(t *testing.T) {
	t.Parallel()
	e := startEnv(t, envOpts{size: 1})
	startup := func(user string) []byte {
		b, err := (&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersionNumber,
			Parameters: map[string]string{"user": user, "database": "app"}}).Encode(nil)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	r := e.dialRaw(t)
	pw, _ := (&pgproto3.PasswordMessage{Password: "secret"}).Encode(nil)
	start := time.Now()
	if _, err := r.Write(append(startup("app"), pw...)); err != nil {
		t.Fatal(err)
	}
	got, _ := r.receiveUntil(t, 5*time.Second, func(m pgproto3.BackendMessage) bool { _, ok := m.(*pgproto3.ErrorResponse); return ok })
	if len(got) == 0 || !strings.HasPrefix(got[len(got)-1], "ErrorResponse(FATAL 08P01") || time.Since(start) > time.Second {
		t.Fatalf("a password pipelined with the startup packet of a SCRAM login: %v after %v", got, time.Since(start))
	}

	r = e.dialRaw(t)
	if _, err := r.Write(append(startup("trusted"), codecQuery("SELECT 41 + 1")...)); err != nil {
		t.Fatal(err)
	}
	got, err := r.receiveUntil(t, 5*time.Second, func(m pgproto3.BackendMessage) bool { _, ok := m.(*pgproto3.CommandComplete); return ok })
	if err != nil || !strings.Contains(strings.Join(got, " "), "DataRow[42]") {
		t.Fatalf("a query pipelined with a trust login: %v %v", got, err)
	}
}

// A client asking for a newer minor protocol version or for protocol options (_pq_.*) is told, as by Postgres
// 15, that pgshard speaks 3.0 and which options it does not know, and logs in; a replication connection is
// refused with a clear error instead of being served as a normal session.
func TestStartupNegotiation(t *testing.T) {
	t.Parallel()
	e := startEnv(t, envOpts{size: 1})
	r := e.dialRaw(t)
	r.send(t, &pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersion32,
		Parameters: map[string]string{"user": "trusted", "database": "app", "_pq_.compression": "on"}})
	got, err := r.receiveUntil(t, 5*time.Second, isReady)
	if err != nil || len(got) < 2 || got[0] != "NegotiateProtocolVersion" || got[1] != "AuthenticationOk" {
		t.Fatalf("startup with protocol 3.2 and _pq_.compression: %v %v", got, err)
	}
	r = e.dialRaw(t)
	r.send(t, &pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersion30,
		Parameters: map[string]string{"user": "trusted", "database": "app", "replication": "database"}})
	got, _ = r.receiveUntil(t, 5*time.Second, isReady)
	if len(got) != 1 || !strings.HasPrefix(got[0], "ErrorResponse(FATAL 0A000 pgshard does not proxy replication") {
		t.Fatalf("replication=database: %v", got)
	}
}

// PgBouncer's client timeouts, in both pool modes: a client idle inside a transaction past
// idle_transaction_timeout is closed with 25P03 and its transaction rolled back, which gives its server
// connection back to the pool; a client idle outside one past client_idle_timeout is closed with 57P05; a
// statement running past query_timeout is cancelled on the server and its client closed with 57014. A
// statement that runs (inside a transaction or not) is not idle, and a client that keeps talking is not closed.
func TestClientTimeouts(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"transaction", "session"} {
		t.Run(mode, func(t *testing.T) {
			e := startEnv(t, envOpts{mode: mode, size: 2, checkout: "10s", limits: []string{
				"idle_transaction_timeout: 1s", "client_idle_timeout: 3s", "query_timeout: 2s"}})
			ctx := Ctx(t, 2*time.Minute)
			if _, err := e.connect(t, ctx).Exec(ctx, "CREATE TABLE timeouts (v int)"); err != nil {
				t.Fatal(err)
			}

			// Idle in a transaction: closed, rolled back, its server connection free for others.
			idle := e.rawLogin(t)
			idle.send(t, &pgproto3.Query{String: "BEGIN; INSERT INTO timeouts VALUES (1)"})
			if got, err := idle.receiveUntil(t, 5*time.Second, isReady); err != nil || got[len(got)-1] != "ReadyForQuery(T)" {
				t.Fatalf("BEGIN; INSERT: %v %v", got, err)
			}
			start := time.Now()
			got, err := idle.receiveUntil(t, 10*time.Second, isReady)
			if len(got) != 1 || !strings.HasPrefix(got[0], "ErrorResponse(FATAL 25P03 terminating connection due to idle-in-transaction timeout") || !isEOF(err) {
				t.Fatalf("a client idle in a transaction got %v, %v; want FATAL 25P03 and the connection closed", got, err)
			}
			if d := time.Since(start); d < 900*time.Millisecond || d > 3*time.Second {
				t.Fatalf("closed after %v idle in a transaction; idle_transaction_timeout is 1s", d)
			}

			// A slow statement inside a transaction is not idle; a client that keeps talking is not idle either.
			busy := e.connect(t, ctx)
			tx, err := busy.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := tx.Exec(ctx, "SELECT pg_sleep(1.5)"); err != nil {
				t.Fatalf("a 1.5 s statement in a transaction (idle_transaction_timeout 1s, query_timeout 2s): %v", err)
			}
			for i := 0; i < 8; i++ {
				time.Sleep(500 * time.Millisecond)
				if _, err := tx.Exec(ctx, "INSERT INTO timeouts VALUES (2)"); err != nil {
					t.Fatalf("a transaction that keeps talking, statement %d: %v", i, err)
				}
			}
			if err := tx.Commit(ctx); err != nil {
				t.Fatal(err)
			}
			if n := e.pg.QueryString(t, "app_0", "SELECT string_agg(DISTINCT v::text, ',') FROM timeouts"); n != "2" {
				t.Fatalf("rows: %s; want only the committed transaction's (the idle one rolled back)", n)
			}

			// A statement past query_timeout: 57014, closed, the backend's statement cancelled.
			slow := e.connect(t, ctx)
			start = time.Now()
			_, err = slow.Exec(ctx, "SELECT pg_sleep(30)")
			if pgCode(err) != "57014" || time.Since(start) > 5*time.Second {
				t.Fatalf("a 30 s statement with query_timeout 2s: %v after %v; want 57014 after about 2s", err, time.Since(start))
			}
			if !slow.IsClosed() {
				if _, err := slow.Exec(ctx, "SELECT 1"); err == nil {
					t.Fatal("the client whose statement timed out can still run statements")
				}
			}
			if !waitFor(5*time.Second, func() bool {
				return e.pg.QueryString(t, "postgres", "SELECT count(*) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(30)' AND state = 'active'") == "0"
			}) {
				t.Fatal("the statement that timed out still runs on the server")
			}

			// Idle outside a transaction: closed with 57P05 after client_idle_timeout.
			quiet := e.rawLogin(t)
			start = time.Now()
			got, err = quiet.receiveUntil(t, 10*time.Second, isReady)
			if len(got) != 1 || !strings.HasPrefix(got[0], "ErrorResponse(FATAL 57P05 terminating connection due to idle-session timeout") || !isEOF(err) {
				t.Fatalf("an idle client got %v, %v; want FATAL 57P05 and the connection closed", got, err)
			}
			if d := time.Since(start); d < 2900*time.Millisecond || d > 5*time.Second {
				t.Fatalf("closed after %v idle; client_idle_timeout is 3s", d)
			}

			// The pool (size 2) is whole: two clients can hold a transaction each at once.
			a, b := e.connect(t, ctx), e.connect(t, ctx)
			ta, err := a.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			tb, err := b.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, tx := range []pgx.Tx{ta, tb} {
				if _, err := tx.Exec(ctx, "SELECT 1"); err != nil {
					t.Fatalf("after the timeouts, two transactions at once on a pool of 2: %v", err)
				}
				_ = tx.Rollback(ctx)
			}
		})
	}
}

// poolOfOne is pgshard in front of the fuzzer's two shards with one server connection per shard, the table fuzz
// holding keys 0 to 19, and keys[i] a key that shard i holds.
type poolOfOne struct {
	pg   *pgtest.Cluster
	p    *Proxy
	dsn  string
	keys [2]int
}

// startPoolOfOne starts it with checkout_timeout checkout; prefix goes before the config (event_loops: 1).
func startPoolOfOne(t *testing.T, ctx context.Context, checkout, prefix string) *poolOfOne {
	t.Helper()
	pg := startFuzzShards(t)
	cfg := strings.Replace(strings.Replace(fuzzConfig("transaction", pg), "size: 3", "size: 1", 1), "checkout_timeout: 5s", "checkout_timeout: "+checkout, 1)
	e := &poolOfOne{pg: pg, p: StartProxy(t, prefix+cfg)}
	e.dsn = e.p.DSN("sharded", "trusted", "")
	c, err := pgx.Connect(ctx, e.dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	for k := 0; k < 20; k++ {
		if _, err := c.Exec(ctx, "INSERT INTO fuzz (k, v) VALUES ($1, 'x')", k); err != nil {
			t.Fatal(err)
		}
	}
	for i := range e.keys {
		e.keys[i], _ = strconv.Atoi(pg.QueryString(t, "app_"+strconv.Itoa(i), "SELECT min(k) FROM fuzz"))
	}
	return e
}

// A client outside a transaction block that needs both shards does not hold one shard's server while it waits
// for the other's. It used to: a cross-shard read that took shard 0's last connection and waited for shard 1's,
// next to a transaction that held shard 1's and then needed shard 0's, each waited for what the other held until
// checkout_timeout (the soak found it under TPC-B with sharded COPY and cross-shard reads).
func TestNoCrossShardHoldAndWait(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("starts Postgres")
	}
	ctx := Ctx(t, time.Minute)
	e := startPoolOfOne(t, ctx, "20s", "")
	dsn, k0, k1 := e.dsn, e.keys[0], e.keys[1]
	tx, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Close(ctx)

	// The transaction holds shard 1's only connection.
	if _, err := tx.Exec(ctx, "BEGIN"); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "UPDATE fuzz SET v = 'y' WHERE k = $1", k1); err != nil {
		t.Fatal(err)
	}
	// A cross-shard read (one Query for both shards) takes shard 0's only connection and waits for shard 1's.
	read, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer read.Close(ctx)
	done := make(chan error, 1)
	go func() {
		var n int
		done <- read.QueryRow(ctx, "SELECT count(*) FROM fuzz", pgx.QueryExecModeSimpleProtocol).Scan(&n)
	}()
	time.Sleep(300 * time.Millisecond)
	// The transaction now needs shard 0: it must get it, not wait for the reader that waits for it.
	start := time.Now()
	uctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := tx.Exec(uctx, "UPDATE fuzz SET v = 'y' WHERE k = $1", k0); err != nil {
		t.Fatalf("the transaction's statement on the other shard, after %v: %v (a cross-shard hold-and-wait)", time.Since(start).Round(time.Millisecond), err)
	}
	if _, err := tx.Exec(uctx, "COMMIT"); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("the cross-shard read: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the cross-shard read did not finish once the transaction had")
	}
}

// TestCrossShardDeadlock: two transactions each hold the only connection of one shard's pool and wait for the
// other's. Postgres cannot see it; pgshard finds it after about a second, ends the transaction that began to
// wait last with 40P01, and the other goes on (long before checkout_timeout).
func TestCrossShardDeadlock(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("starts Postgres")
	}
	ctx := Ctx(t, time.Minute)
	e := startPoolOfOne(t, ctx, "60s", "")
	pg, dsn, keys := e.pg, e.dsn, e.keys
	var conns [2]*pgx.Conn
	for i := range conns {
		c, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close(ctx)
		conns[i] = c
	}
	// Client i holds shard i's only connection, then wants shard 1-i's.
	for i, c := range conns {
		if _, err := c.Exec(ctx, "BEGIN"); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Exec(ctx, "UPDATE fuzz SET v = $1 WHERE k = $2", "c"+strconv.Itoa(i), keys[i]); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	errs := make(chan error, 2)
	for i, c := range conns {
		go func() {
			_, err := c.Exec(ctx, "UPDATE fuzz SET v = $1 WHERE k = $2", "c"+strconv.Itoa(i), keys[1-i])
			if err == nil {
				_, err = c.Exec(ctx, "COMMIT")
			}
			errs <- err
		}()
		time.Sleep(100 * time.Millisecond) // client 1 waits last
	}
	var got []error
	for range conns {
		got = append(got, <-errs)
	}
	took := time.Since(start)
	var pe *pgconn.PgError
	failed := 0
	for _, err := range got {
		if err == nil {
			continue
		}
		failed++
		if !errors.As(err, &pe) || pe.Code != "40P01" {
			t.Errorf("the deadlock's victim got %v, want 40P01", err)
		}
	}
	if failed != 1 || took > 10*time.Second {
		t.Fatalf("after %v: %d of the two transactions failed (%v); want one, ended as a deadlock within seconds", took.Round(time.Millisecond), failed, got)
	}
	t.Logf("deadlock broken after %v: %s", took.Round(time.Millisecond), pe.Message)
	// The survivor committed both of its updates, the victim's first update was rolled back.
	for i := range keys {
		db := "app_" + strconv.Itoa(i)
		if v := pg.QueryString(t, db, "SELECT v FROM fuzz WHERE k = "+strconv.Itoa(keys[i])); v != "c0" {
			t.Errorf("shard %d: v = %q, want c0 (the survivor's)", i, v)
		}
	}
}

// TestWriteOnEveryShardGoesOnWhenItsFirstServerIsTaken: a write on every shard (TRUNCATE of a sharded table)
// runs on the first shard, then on the others. When the first shard's connection went back to the pool, a client
// waiting for it on the same event loop took it and sent its own query at once; the writer then never went on to
// the other shards (seen in the soak: a COPY and TRUNCATE round stuck until the client gave up).
func TestWriteOnEveryShardGoesOnWhenItsFirstServerIsTaken(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("starts Postgres")
	}
	ctx := Ctx(t, time.Minute)
	// The waiter and the writer on one loop: the connection goes to the waiter at once.
	e := startPoolOfOne(t, ctx, "5s", "event_loops: 1\n")
	pg, dsn, k0 := e.pg, e.dsn, e.keys[0]
	writer, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer writer.Close(ctx)
	waiter, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer waiter.Close(ctx)

	// A reader on shard 0, outside pgshard, holds the TRUNCATE there until it ends.
	blocker, err := pgx.Connect(ctx, pg.SuperDSN("app_0"))
	if err != nil {
		t.Fatal(err)
	}
	defer blocker.Close(ctx)
	if _, err := blocker.Exec(ctx, "BEGIN; SELECT count(*) FROM fuzz"); err != nil {
		t.Fatal(err)
	}
	truncated := make(chan error, 1)
	go func() {
		_, err := writer.Exec(ctx, "TRUNCATE fuzz", pgx.QueryExecModeSimpleProtocol)
		truncated <- err
	}()
	time.Sleep(300 * time.Millisecond) // the TRUNCATE holds shard 0's only connection, waiting for the lock
	read := make(chan error, 1)
	go func() {
		var n int
		read <- waiter.QueryRow(ctx, "SELECT count(*) FROM fuzz WHERE k = $1", k0).Scan(&n) // waits for that connection
	}()
	time.Sleep(300 * time.Millisecond)
	if _, err := blocker.Exec(ctx, "COMMIT"); err != nil {
		t.Fatal(err)
	}
	for what, ch := range map[string]chan error{"the TRUNCATE on both shards": truncated, "the read waiting for shard 0": read} {
		select {
		case err := <-ch:
			if err != nil {
				t.Errorf("%s: %v", what, err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("%s did not finish within 10 s of the lock's release", what)
		}
	}
	if n := pg.QueryString(t, "app_1", "SELECT count(*) FROM fuzz"); n != "0" {
		t.Errorf("shard 1 has %s rows after the TRUNCATE", n)
	}
}
