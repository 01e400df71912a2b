package e2e

import (
	"context"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/pgshard/pgshard/internal/pgtest"
)

// replicaEnv is a primary with two streaming replicas, and a pgshard whose database app has them as its one
// shard's replicas.
type replicaEnv struct {
	primary  *pgtest.Cluster
	replicas []*pgtest.Cluster
	proxy    *Proxy
}

// replicaOpts say what differs in a replicaEnv's config.
type replicaOpts struct {
	pool string            // more settings of pool:, as "key: value, ..."
	dbs  map[string]string // pgshard's databases over the shard: name -> its settings, as "key: value" lines
}

func startReplicaEnv(t *testing.T, o replicaOpts) *replicaEnv {
	t.Helper()
	if testing.Short() {
		t.Skip("starts Postgres")
	}
	primary := pgtest.Start(t, pgtest.Options{
		Databases:     []string{"app_0"},
		DatabaseOwner: "app",
		Users:         []pgtest.UserSpec{{Name: "app", Password: "secret"}},
	})
	ctx := Ctx(t, time.Minute)
	pc, err := pgx.Connect(ctx, primary.DSN("app_0", "app", "secret"))
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close(context.Background())
	if _, err := pc.Exec(ctx, "CREATE TABLE t (id bigserial PRIMARY KEY, v int); CREATE SEQUENCE s; INSERT INTO t (v) VALUES (0)"); err != nil {
		t.Fatal(err)
	}
	e := &replicaEnv{primary: primary}
	var urls []string
	for range 2 {
		r := pgtest.StartReplica(t, primary)
		e.replicas = append(e.replicas, r)
		urls = append(urls, fmt.Sprintf(`"postgres://127.0.0.1:%d/app_0"`, r.Port))
	}
	e.waitForReplay(t, ctx)
	if o.dbs == nil {
		o.dbs = map[string]string{"app": ""}
	}
	var dbs strings.Builder
	for name, settings := range o.dbs {
		fmt.Fprintf(&dbs, "  - name: %s\n", name)
		for _, l := range strings.Split(settings, "\n") {
			if l != "" {
				fmt.Fprintf(&dbs, "    %s\n", l)
			}
		}
		fmt.Fprintf(&dbs, "    shards:\n      - primary: \"postgres://127.0.0.1:%d/app_0\"\n        replicas: [%s]\n",
			primary.Port, strings.Join(urls, ", "))
	}
	e.proxy = StartProxy(t, fmt.Sprintf(`
listen: "127.0.0.1:%%PORT%%"
event_loops: 2
pool: {mode: transaction, size: 4, checkout_timeout: 5s, ban_time: 2s, replica_check_interval: 200ms%s}
admin: {user: admin, password: adminpw}
users: [{name: app, password: secret}]
databases:
%s`, o.pool, dbs.String()))
	return e
}

// waitForReplay waits until every replica has replayed what the primary has written so far.
func (e *replicaEnv) waitForReplay(t *testing.T, ctx context.Context) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for _, r := range e.replicas {
		if err := r.WaitReplayed(ctx, e.primary); err != nil {
			t.Fatal(err)
		}
	}
}

// connect logs in to database db through pgshard (the admin console for "pgshard") with the DSN parameters
// extra ("&name=value..."), closed when the test ends.
func (e *replicaEnv) connect(t *testing.T, ctx context.Context, db, extra string) *pgx.Conn {
	t.Helper()
	user, password := "app", "secret"
	if db == "pgshard" {
		user, password, extra = "admin", "adminpw", extra+"&default_query_exec_mode=simple_protocol"
	}
	c, err := pgx.Connect(ctx, e.proxy.DSN(db, user, password)+extra)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

// logged says whether pgshard logged a line with msg about replica r.
func (e *replicaEnv) logged(msg string, r *pgtest.Cluster) bool {
	for _, line := range strings.Split(e.proxy.Log(), "\n") {
		if strings.Contains(line, msg) && strings.Contains(line, "replica="+r.Addr()) {
			return true
		}
	}
	return false
}

// serverOf runs sql (which returns the serving backend's port and pg_is_in_recovery()) in mode.
func serverOf(t *testing.T, ctx context.Context, c *pgx.Conn, mode pgx.QueryExecMode, sql string) (port int, recovery bool) {
	t.Helper()
	if err := c.QueryRow(ctx, sql, mode).Scan(&port, &recovery); err != nil {
		t.Fatalf("%s (mode %v): %v", sql, mode, err)
	}
	return port, recovery
}

func TestReadWriteSplit(t *testing.T) {
	e := startReplicaEnv(t, replicaOpts{})
	ctx := Ctx(t, 2*time.Minute)
	c := e.connect(t, ctx, "app", "")
	replicaPorts := map[int]bool{e.replicas[0].Port: true, e.replicas[1].Port: true}
	const where = "SELECT inet_server_port(), pg_is_in_recovery()"

	t.Run("reads go to the replicas in turn", func(t *testing.T) {
		seen := map[int]int{}
		for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeExec,
			pgx.QueryExecModeDescribeExec, pgx.QueryExecModeCacheStatement} {
			for range 4 {
				port, recovery := serverOf(t, ctx, c, mode, where)
				if !recovery || !replicaPorts[port] {
					t.Fatalf("mode %v: a read ran on port %d (in recovery: %v), want a replica", mode, port, recovery)
				}
				seen[port]++
			}
		}
		if len(seen) != 2 {
			t.Fatalf("reads went to %v, want both replicas", seen)
		}
	})

	t.Run("writes and transactions go to the primary", func(t *testing.T) {
		for _, sql := range []string{
			"SELECT inet_server_port(), pg_is_in_recovery() FROM (SELECT nextval('s')) AS x",
			"SELECT inet_server_port(), pg_is_in_recovery() FROM t FOR UPDATE",
			"WITH w AS (INSERT INTO t (v) VALUES (1) RETURNING id) SELECT inet_server_port(), pg_is_in_recovery() FROM w",
		} {
			if port, recovery := serverOf(t, ctx, c, pgx.QueryExecModeExec, sql); recovery || port != e.primary.Port {
				t.Fatalf("%s ran on port %d (in recovery: %v), want the primary", sql, port, recovery)
			}
		}
		tx, err := c.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if port, recovery := serverOf(t, ctx, c, pgx.QueryExecModeExec, where); recovery || port != e.primary.Port {
			t.Fatalf("a read in a transaction block ran on port %d (in recovery: %v), want the primary", port, recovery)
		}
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("a batch with a write goes to the primary whole", func(t *testing.T) {
		b := &pgx.Batch{}
		b.Queue(where)
		b.Queue("INSERT INTO t (v) VALUES (2)")
		b.Queue(where)
		br := c.SendBatch(ctx, b)
		for i := range 3 {
			if i == 1 {
				if _, err := br.Exec(); err != nil {
					t.Fatal(err)
				}
				continue
			}
			var port int
			var recovery bool
			if err := br.QueryRow().Scan(&port, &recovery); err != nil {
				t.Fatal(err)
			}
			if recovery || port != e.primary.Port {
				t.Fatalf("statement %d of the batch ran on port %d, want the primary", i, port)
			}
		}
		if err := br.Close(); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("a write pipelined behind a read waits for the replica, then goes to the primary", func(t *testing.T) {
		got := pipelined(t, ctx, e.proxy.DSN("app", "app", "secret"), "SELECT pg_is_in_recovery()",
			"INSERT INTO t (v) VALUES (3) RETURNING pg_is_in_recovery()", "SELECT pg_is_in_recovery()")
		// The read after the write goes to the primary the client holds then, with the write.
		if strings.Join(got, ",") != "t,f,f" {
			t.Fatalf("in recovery: %v, want t,f,f (a replica, then the primary)", got)
		}
	})

	// readsStayOnAReplica checks that two reads of the open transaction run on one replica (what: the first).
	readsStayOnAReplica := func(t *testing.T, what string) {
		t.Helper()
		port, recovery := serverOf(t, ctx, c, pgx.QueryExecModeExec, where)
		if !recovery || !replicaPorts[port] {
			t.Fatalf("%s ran on port %d (in recovery: %v), want a replica", what, port, recovery)
		}
		if again, _ := serverOf(t, ctx, c, pgx.QueryExecModeExec, where); again != port {
			t.Fatalf("the transaction's second read ran on port %d, its first on %d", again, port)
		}
	}

	t.Run("a read-only transaction runs on a replica", func(t *testing.T) {
		tx, err := c.BeginTx(ctx, pgx.TxOptions{AccessMode: pgx.ReadOnly})
		if err != nil {
			t.Fatal(err)
		}
		readsStayOnAReplica(t, "a read in BEGIN READ ONLY")
		_, err = c.Exec(ctx, "INSERT INTO t (v) VALUES (4)")
		wantCode(t, "a write in a read-only transaction", err, "25006")
		if err := tx.Rollback(ctx); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("a plain BEGIN waits for its next statement: SET TRANSACTION READ ONLY takes it to a replica", func(t *testing.T) {
		exec := func(sql string) error {
			_, err := c.Exec(ctx, sql, pgx.QueryExecModeSimpleProtocol)
			return err
		}
		if err := exec("BEGIN"); err != nil {
			t.Fatal(err)
		}
		if err := exec("SET TRANSACTION READ ONLY"); err != nil {
			t.Fatal(err)
		}
		readsStayOnAReplica(t, "a read after BEGIN; SET TRANSACTION READ ONLY")
		wantCode(t, "a write in a transaction made read only", exec("INSERT INTO t (v) VALUES (6)"), "25006")
		if err := exec("ROLLBACK"); err != nil {
			t.Fatal(err)
		}
		for _, next := range []string{where, "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"} {
			if err := exec("BEGIN"); err != nil {
				t.Fatal(err)
			}
			if next != where {
				if err := exec(next); err != nil {
					t.Fatal(err)
				}
			}
			if port, recovery := serverOf(t, ctx, c, pgx.QueryExecModeSimpleProtocol, where); recovery || port != e.primary.Port {
				t.Fatalf("after BEGIN (then %q) a read ran on port %d, want the primary", next, port)
			}
			if err := exec("COMMIT"); err != nil {
				t.Fatal(err)
			}
		}
		if err := exec("BEGIN"); err != nil {
			t.Fatal(err)
		}
		if err := exec("COMMIT"); err != nil { // an empty transaction
			t.Fatal(err)
		}
		var status string
		if err := c.QueryRow(ctx, "SELECT 'after'").Scan(&status); err != nil || c.PgConn().TxStatus() != 'I' {
			t.Fatalf("after BEGIN; COMMIT: %v, transaction status %c; want idle", err, c.PgConn().TxStatus())
		}
	})

	t.Run("a write pipelined in a read-only transaction fails there", func(t *testing.T) {
		got := pipelined(t, ctx, e.proxy.DSN("app", "app", "secret"), "BEGIN READ ONLY", "SELECT pg_is_in_recovery()",
			"INSERT INTO t (v) VALUES (5)", "ROLLBACK")
		if strings.Join(got, ",") != "t,25006" {
			t.Fatalf("got %v, want t,25006 (the read and the write on the replica)", got)
		}
	})

	t.Run("overrides: a role comment, SET pgshard.role, the startup option", func(t *testing.T) {
		if port, _ := serverOf(t, ctx, c, pgx.QueryExecModeExec, "/* pgshard: role=primary */ "+where); port != e.primary.Port {
			t.Fatalf("a read with role=primary ran on port %d, want the primary", port)
		}
		if _, err := c.Exec(ctx, "SET pgshard.role = 'primary'"); err != nil { // PRIMARY is a reserved word
			t.Fatal(err)
		}
		if port, _ := serverOf(t, ctx, c, pgx.QueryExecModeExec, where); port != e.primary.Port {
			t.Fatalf("a read after SET pgshard.role = 'primary' ran on port %d, want the primary", port)
		}
		if _, err := c.Exec(ctx, "RESET pgshard.role"); err != nil {
			t.Fatal(err)
		}
		if port, _ := serverOf(t, ctx, c, pgx.QueryExecModeExec, where); !replicaPorts[port] {
			t.Fatalf("a read after RESET pgshard.role ran on port %d, want a replica", port)
		}
		oc := e.connect(t, ctx, "app", "&options=-c%20pgshard.role%3Dprimary")
		if port, _ := serverOf(t, ctx, oc, pgx.QueryExecModeSimpleProtocol, where); port != e.primary.Port {
			t.Fatalf("a read of a session started with pgshard.role=primary ran on port %d, want the primary", port)
		}
	})

	t.Run("the admin console shows the replicas' pools", func(t *testing.T) {
		ac := e.connect(t, ctx, "pgshard", "")
		rows, err := ac.Query(ctx, "SHOW POOLS")
		if err != nil {
			t.Fatal(err)
		}
		roles := map[string]bool{}
		for rows.Next() {
			v, err := rows.Values()
			if err != nil {
				t.Fatal(err)
			}
			fd := rows.FieldDescriptions()
			row := map[string]string{}
			for i, f := range fd {
				row[f.Name] = fmt.Sprint(v[i])
			}
			roles[row["role"]+" "+row["host"]] = true
		}
		for _, want := range []string{"primary " + e.primary.Addr(), "replica " + e.replicas[0].Addr(), "replica " + e.replicas[1].Addr()} {
			if !roles[want] {
				t.Errorf("SHOW POOLS has no pool %q: %v", want, roles)
			}
		}
		rows, err = ac.Query(ctx, "SHOW SERVERS")
		if err != nil {
			t.Fatal(err)
		}
		servers := map[string]bool{}
		for rows.Next() {
			v, err := rows.Values()
			if err != nil {
				t.Fatal(err)
			}
			row := map[string]string{}
			for i, f := range rows.FieldDescriptions() {
				row[f.Name] = fmt.Sprint(v[i])
			}
			servers[row["role"]+" "+row["addr"]] = true
		}
		for _, want := range []string{"primary " + e.primary.Addr(), "replica " + e.replicas[0].Addr(), "replica " + e.replicas[1].Addr()} {
			if !servers[want] {
				t.Errorf("SHOW SERVERS has no connection %q: %v", want, servers)
			}
		}
	})
}

func TestReadWriteSplitOff(t *testing.T) {
	e := startReplicaEnv(t, replicaOpts{dbs: map[string]string{"app": "read_write_split: off"}})
	ctx := Ctx(t, time.Minute)
	c := e.connect(t, ctx, "app", "")
	if port, recovery := serverOf(t, ctx, c, pgx.QueryExecModeExec, "SELECT inet_server_port(), pg_is_in_recovery()"); recovery || port != e.primary.Port {
		t.Fatalf("with read_write_split off a read ran on port %d, want the primary", port)
	}
}

// TestReplicaDownIsBanned stops replicas under reads. One that is down before pgshard ever connected to it
// fails no read: the read that finds it down goes to the other replica. One that goes down under open
// connections may fail the read in flight; after its ban none fails. A replica that is back is read from
// again once its ban is over.
func TestReplicaDownIsBanned(t *testing.T) {
	e := startReplicaEnv(t, replicaOpts{})
	ctx := Ctx(t, 2*time.Minute)
	c, err := pgx.Connect(ctx, e.proxy.DSN("app", "app", "secret"))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { c.Close(context.Background()) }()
	read := func() (int, error) {
		var port int
		err := c.QueryRow(ctx, "SELECT inet_server_port()").Scan(&port)
		if err != nil && c.IsClosed() {
			c, _ = pgx.Connect(ctx, e.proxy.DSN("app", "app", "secret"))
		}
		return port, err
	}
	readsOnlyFrom := func(what string, up *pgtest.Cluster) {
		t.Helper()
		for i := range 20 {
			port, err := read()
			if err != nil {
				t.Fatalf("%s: read %d: %v", what, i, err)
			}
			if port != up.Port {
				t.Fatalf("%s: read %d ran on port %d, want the replica that is up (%d)", what, i, port, up.Port)
			}
		}
	}
	first, second := e.replicas[0], e.replicas[1]

	if err := first.Crash(); err != nil {
		t.Fatal(err)
	}
	readsOnlyFrom("a replica down from the start", second)
	if !e.logged("replica banned", first) || e.logged("replica banned", second) {
		t.Fatal("want the replica that is down banned, and only it")
	}
	ac := e.connect(t, ctx, "pgshard", "")
	bans := func() string {
		rows, err := ac.Query(ctx, "SHOW BANS")
		if err != nil {
			t.Fatal(err)
		}
		var hosts []string
		for rows.Next() {
			v, err := rows.Values()
			if err != nil {
				t.Fatal(err)
			}
			hosts = append(hosts, fmt.Sprint(v[2]))
		}
		return strings.Join(hosts, ",")
	}
	// Its ban (ban_time 2s) may have ended a moment ago; the replica check bans it again within 200 ms.
	if !waitFor(5*time.Second, func() bool { return bans() == first.Addr() }) {
		t.Fatalf("SHOW BANS lists %q, want the replica that is down (%s)", bans(), first.Addr())
	}
	if _, err := ac.Exec(ctx, "BAN "+second.Addr()); err != nil {
		t.Fatal(err)
	}
	if port, err := read(); err != nil || port != e.primary.Port {
		t.Fatalf("with every replica banned a read ran on port %d (%v), want the primary", port, err)
	}
	if _, err := ac.Exec(ctx, "UNBAN "+second.Addr()); err != nil {
		t.Fatal(err)
	}
	if _, err := ac.Exec(ctx, "BAN 127.0.0.1:1"); pgCode(err) != "42704" {
		t.Fatalf("BAN of a host that is no replica: %v, want 42704", err)
	}
	readsOnlyFrom("after UNBAN", second)

	if err := first.Restart(); err != nil {
		t.Fatal(err)
	}
	if !waitFor(20*time.Second, func() bool { port, err := read(); return err == nil && port == first.Port }) {
		t.Fatal("the replica was not read from again after its ban ended")
	}

	if err := second.Crash(); err != nil { // its connections are open
		t.Fatal(err)
	}
	if !waitFor(10*time.Second, func() bool { _, _ = read(); return e.logged("replica banned", second) }) {
		t.Fatal("the replica that went down under open connections was not banned")
	}
	readsOnlyFrom("after the second ban", first)
}

// replay pauses (or resumes) the replay of WAL on replica r.
func replay(t *testing.T, ctx context.Context, r *pgtest.Cluster, on bool) {
	t.Helper()
	replayOn(t, ctx, r, "app_0", on)
}

// replayOn pauses (or resumes) the replay of WAL on replica r, connected to its database db.
func replayOn(t *testing.T, ctx context.Context, r *pgtest.Cluster, db string, on bool) {
	t.Helper()
	rc, err := pgx.Connect(ctx, r.SuperDSN(db))
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close(context.Background())
	f := "pg_wal_replay_pause"
	if on {
		f = "pg_wal_replay_resume"
	}
	if _, err := rc.Exec(ctx, "SELECT "+f+"()"); err != nil {
		t.Fatal(err)
	}
}

// TestHungReplicaIsFoundByHealthChecks stops (SIGSTOP) the backends of pgshard's idle connections to a
// replica: they neither answer nor close, as with a host that hung or a flow a firewall dropped. The health
// check of those idle connections gets no answer: they are closed and the replica banned, and no read is sent
// to one of them (it would hang). The replica check's own connection is left running, so that the health
// checks alone find the fault.
func TestHungReplicaIsFoundByHealthChecks(t *testing.T) {
	e := startReplicaEnv(t, replicaOpts{pool: ", health_check_interval: 300ms"})
	ctx := Ctx(t, 2*time.Minute)
	c := e.connect(t, ctx, "app", "")
	hung, up := e.replicas[0], e.replicas[1]
	for range 8 { // both replicas' pools get idle connections
		var port int
		if err := c.QueryRow(ctx, "SELECT inet_server_port()").Scan(&port); err != nil {
			t.Fatal(err)
		}
	}
	rc, err := pgx.Connect(ctx, hung.SuperDSN("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close(context.Background())
	rows, err := rc.Query(ctx, `SELECT pid FROM pg_stat_activity WHERE backend_type = 'client backend' AND datname = 'app_0' AND pid <> pg_backend_pid()
		AND query NOT LIKE '%pg_is_in_recovery%'`)
	if err != nil {
		t.Fatal(err)
	}
	pids, err := pgx.CollectRows(rows, pgx.RowTo[int])
	if err != nil || len(pids) == 0 {
		t.Fatalf("pgshard's connections to the replica: %v (%v)", pids, err)
	}
	for _, pid := range pids {
		if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		defer func() { _ = syscall.Kill(pid, syscall.SIGCONT) }()
	}
	// Checked after 300 ms idle, unanswered for server_connect_timeout (5 s): closed, and the replica banned.
	if !waitFor(15*time.Second, func() bool { return e.logged("replica banned", hung) }) {
		t.Fatalf("the replica whose %d connections hung was not banned", len(pids))
	}
	if !strings.Contains(e.proxy.Log(), "health check: an idle server connection did not answer") {
		t.Fatal("no health check found the hung connections")
	}
	for i := range 10 {
		rctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		var port int
		err := c.QueryRow(rctx, "SELECT inet_server_port()").Scan(&port)
		cancel()
		if err != nil || port != up.Port {
			t.Fatalf("read %d: port %d, %v; want the replica that is up (%d)", i, port, err, up.Port)
		}
	}
}

// TestReplicaLagIsBanned pauses replay on one replica under writes: past max_replica_lag_bytes it takes no
// reads, and after replay resumes it takes them again.
func TestReplicaLagIsBanned(t *testing.T) {
	e := startReplicaEnv(t, replicaOpts{pool: ", max_replica_lag_bytes: 64kB"})
	ctx := Ctx(t, 2*time.Minute)
	c := e.connect(t, ctx, "app", "")
	behind, current := e.replicas[0], e.replicas[1]
	replay(t, ctx, behind, false)
	if _, err := c.Exec(ctx, "INSERT INTO t (v) SELECT g FROM generate_series(1, 20000) AS g"); err != nil {
		t.Fatal(err)
	}
	if !waitFor(10*time.Second, func() bool { return e.logged("replica lagging", behind) }) {
		t.Fatal("the replica whose replay is paused was not taken out of the reads")
	}
	// The other replica may look behind too for a check or two while it replays the insert: reads go to the
	// primary then. Once it has replayed everything, they go to it.
	if err := current.WaitReplayed(ctx, e.primary); err != nil {
		t.Fatal(err)
	}
	if !waitFor(10*time.Second, func() bool {
		var port int
		return c.QueryRow(ctx, "SELECT inet_server_port()").Scan(&port) == nil && port == current.Port
	}) {
		t.Fatal("no read ran on the replica that is not behind")
	}
	for i := range 20 {
		var port int
		if err := c.QueryRow(ctx, "SELECT inet_server_port()").Scan(&port); err != nil {
			t.Fatal(err)
		}
		if port != current.Port {
			t.Fatalf("read %d ran on port %d, want the replica that is not behind (%d)", i, port, current.Port)
		}
	}
	replay(t, ctx, behind, true)
	if !waitFor(10*time.Second, func() bool { return e.logged("replica caught up", behind) }) {
		t.Fatal("the replica did not take reads again after it caught up")
	}
	if !waitFor(10*time.Second, func() bool {
		var port int
		return c.QueryRow(ctx, "SELECT inet_server_port()").Scan(&port) == nil && port == behind.Port
	}) {
		t.Fatal("no read ran on the replica that caught up")
	}
}

// TestReadYourWritesTimeout reads back a write at once with read_your_writes_timeout: the read waits for a
// replica to replay the write and runs there; with replay paused it waits out the timeout and runs on the
// primary, and the client's next reads go to the primary at once until it writes again.
func TestReadYourWritesTimeout(t *testing.T) {
	e := startReplicaEnv(t, replicaOpts{dbs: map[string]string{"app": "read_your_writes: session\nread_your_writes_timeout: 1s"}})
	ctx := Ctx(t, 2*time.Minute)
	c := e.connect(t, ctx, "app", "")
	replicaPorts := map[int]bool{e.replicas[0].Port: true, e.replicas[1].Port: true}
	writeThenRead := func() (port int, seen bool, took time.Duration) {
		t.Helper()
		var id int64
		if err := c.QueryRow(ctx, "INSERT INTO t (v) VALUES (8) RETURNING id").Scan(&id); err != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond) // pgshard has let go of the primary: the read is routed afresh
		began := time.Now()
		var n int
		if err := c.QueryRow(ctx, "SELECT inet_server_port(), count(*) FROM t WHERE id = $1", id).Scan(&port, &n); err != nil {
			t.Fatal(err)
		}
		return port, n == 1, time.Since(began)
	}
	for i := range 5 {
		port, seen, took := writeThenRead()
		t.Logf("read %d after its write: port %d, waited %v", i, port, took.Round(time.Millisecond))
		if !seen || !replicaPorts[port] {
			t.Fatalf("read %d ran on port %d and saw the write: %v; want a replica that replayed it", i, port, seen)
		}
	}
	for _, r := range e.replicas {
		replay(t, ctx, r, false)
	}
	port, seen, took := writeThenRead()
	if !seen || port != e.primary.Port || took < time.Second {
		t.Fatalf("with replay paused the read ran on port %d after %v, saw the write: %v; want the primary after the 1s timeout", port, took, seen)
	}
	began := time.Now()
	var again int
	if err := c.QueryRow(ctx, "SELECT inet_server_port()").Scan(&again); err != nil || again != e.primary.Port || time.Since(began) > 500*time.Millisecond {
		t.Fatalf("the next read ran on port %d after %v (%v); want the primary at once", again, time.Since(began), err)
	}
}

// TestReadYourWrites writes and at once reads back through replicas whose replay is paused: with
// read_your_writes the read goes to the primary and sees the row; without, it goes to a replica and does not.
func TestReadYourWrites(t *testing.T) {
	e := startReplicaEnv(t, replicaOpts{pool: ", max_replica_lag: 5m", dbs: map[string]string{
		"app":      "read_your_writes: session",
		"eventual": "read_your_writes: off",
	}})
	ctx := Ctx(t, 2*time.Minute)
	for _, r := range e.replicas {
		replay(t, ctx, r, false)
	}
	for db, wantSeen := range map[string]bool{"app": true, "eventual": false} {
		c := e.connect(t, ctx, db, "")
		for i := range 5 {
			var id int64
			if err := c.QueryRow(ctx, "INSERT INTO t (v) VALUES (7) RETURNING id").Scan(&id); err != nil {
				t.Fatal(err)
			}
			// Later than at once: pgshard has let go of the primary by then, so the read is routed afresh.
			time.Sleep(100 * time.Millisecond)
			var n int
			var recovery bool
			if err := c.QueryRow(ctx, "SELECT count(*), pg_is_in_recovery() FROM t WHERE id = $1", id).Scan(&n, &recovery); err != nil {
				t.Fatal(err)
			}
			if seen := n == 1; seen != wantSeen {
				t.Fatalf("database %s, write %d: the read right after it saw it: %v (on a replica: %v), want %v", db, i, seen, recovery, wantSeen)
			}
		}
	}
	for _, r := range e.replicas {
		replay(t, ctx, r, true)
	}
}

// pipelined sends queries to pgshard as Query messages in one write, and returns the first value of each row
// and the SQLSTATE of each error they got, in order, once each was answered.
func pipelined(t *testing.T, ctx context.Context, dsn string, queries ...string) []string {
	t.Helper()
	pc, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	hc, err := pc.PgConn().Hijack()
	if err != nil {
		t.Fatal(err)
	}
	defer hc.Conn.Close()
	fe := hc.Frontend
	for _, q := range queries {
		fe.Send(&pgproto3.Query{String: q})
	}
	if err := fe.Flush(); err != nil {
		t.Fatal(err)
	}
	_ = hc.Conn.SetDeadline(time.Now().Add(20 * time.Second))
	var got []string
	for ready := 0; ready < len(queries); {
		m, err := fe.Receive()
		if err != nil {
			t.Fatalf("after %v: %v", got, err)
		}
		switch m := m.(type) {
		case *pgproto3.DataRow:
			got = append(got, string(m.Values[0]))
		case *pgproto3.ErrorResponse:
			got = append(got, m.Code)
		case *pgproto3.ReadyForQuery:
			ready++
		}
	}
	return got
}
