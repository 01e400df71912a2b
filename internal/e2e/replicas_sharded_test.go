package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgshard/pgshard/internal/pgtest"
)

// shardedReplicaEnv is two shards, each a primary with two streaming replicas, and a pgshard whose database
// app shards table items by id over them.
type shardedReplicaEnv struct {
	primaries []*pgtest.Cluster
	replicas  [][]*pgtest.Cluster // by shard
	proxy     *Proxy
}

func startShardedReplicaEnv(t *testing.T) *shardedReplicaEnv {
	t.Helper()
	if testing.Short() {
		t.Skip("starts Postgres")
	}
	ctx := Ctx(t, 2*time.Minute)
	e := &shardedReplicaEnv{}
	var shards strings.Builder
	for i := range 2 {
		db := fmt.Sprintf("app_%d", i)
		p := pgtest.Start(t, pgtest.Options{Databases: []string{db}, DatabaseOwner: "app",
			Users: []pgtest.UserSpec{{Name: "app", Password: "secret"}}})
		pc, err := pgx.Connect(ctx, p.DSN(db, "app", "secret"))
		if err != nil {
			t.Fatal(err)
		}
		_, err = pc.Exec(ctx, "CREATE TABLE items (id bigint PRIMARY KEY, v int)")
		pc.Close(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		var urls []string
		var reps []*pgtest.Cluster
		for range 2 {
			r := pgtest.StartReplica(t, p)
			reps = append(reps, r)
			urls = append(urls, fmt.Sprintf(`"postgres://127.0.0.1:%d/%s"`, r.Port, db))
		}
		e.primaries, e.replicas = append(e.primaries, p), append(e.replicas, reps)
		fmt.Fprintf(&shards, "      - primary: \"postgres://127.0.0.1:%d/%s\"\n        replicas: [%s]\n", p.Port, db, strings.Join(urls, ", "))
	}
	e.proxy = StartProxy(t, fmt.Sprintf(`
listen: "127.0.0.1:%%PORT%%"
event_loops: 2
pool: {mode: transaction, size: 4, checkout_timeout: 5s, replica_check_interval: 200ms}
users: [{name: app, password: secret}]
databases:
  - name: app
    shards:
%[1]s    sharded_tables:
      - {table: items, column: id, type: bigint}
  - name: ryw
    read_your_writes: session
    read_your_writes_timeout: 2s
    shards:
%[1]s    sharded_tables:
      - {table: items, column: id, type: bigint}
`, shards.String()))
	return e
}

// waitForReplay waits until every replica has replayed what its primary has written so far.
func (e *shardedReplicaEnv) waitForReplay(t *testing.T, ctx context.Context) {
	t.Helper()
	for i, reps := range e.replicas {
		for _, r := range reps {
			if err := r.WaitReplayed(ctx, e.primaries[i]); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// replay pauses (or resumes) the replay of WAL on every replica of shard.
func (e *shardedReplicaEnv) replay(t *testing.T, ctx context.Context, shard int, on bool) {
	for _, r := range e.replicas[shard] {
		replayOn(t, ctx, r, fmt.Sprintf("app_%d", shard), on)
	}
}

// shardOf says which shard's cluster has port: its index, and whether port is a replica's.
func (e *shardedReplicaEnv) shardOf(port int) (shard int, replica bool) {
	for i, p := range e.primaries {
		if p.Port == port {
			return i, false
		}
		for _, r := range e.replicas[i] {
			if r.Port == port {
				return i, true
			}
		}
	}
	return -1, false
}

func TestShardedReadWriteSplit(t *testing.T) {
	e := startShardedReplicaEnv(t)
	ctx := Ctx(t, 2*time.Minute)
	c, err := pgx.Connect(ctx, e.proxy.DSN("app", "app", "secret"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())

	// Writes go to the primary of the row's shard.
	shardOfID := map[int64]int{}
	for id := int64(1); id <= 20; id++ {
		var port int
		var recovery bool
		if err := c.QueryRow(ctx, "INSERT INTO items VALUES ($1, 0) RETURNING inet_server_port(), pg_is_in_recovery()", id).Scan(&port, &recovery); err != nil {
			t.Fatal(err)
		}
		shard, replica := e.shardOf(port)
		if shard < 0 || replica || recovery {
			t.Fatalf("INSERT of id %d ran on port %d (in recovery: %v), want a shard's primary", id, port, recovery)
		}
		shardOfID[id] = shard
	}
	e.waitForReplay(t, ctx)
	// The replicas have every row (a read through pgshard that misses one is then pgshard's fault).
	for i, reps := range e.replicas {
		for _, r := range reps {
			rc, err := pgx.Connect(ctx, r.SuperDSN(fmt.Sprintf("app_%d", i)))
			if err != nil {
				t.Fatal(err)
			}
			var n int
			var lsn string
			err = rc.QueryRow(ctx, "SELECT count(*), pg_last_wal_replay_lsn()::text FROM items").Scan(&n, &lsn)
			rc.Close(context.Background())
			want := 0
			for _, s := range shardOfID {
				if s == i {
					want++
				}
			}
			if err != nil || n != want {
				t.Fatalf("the replica on port %d of shard %d has %d rows, replayed up to %s (%v); want %d", r.Port, i, n, lsn, err, want)
			}
		}
	}
	const where = "SELECT inet_server_port(), pg_is_in_recovery() FROM items WHERE id = $1"

	t.Run("a read of one shard goes to that shard's replicas", func(t *testing.T) {
		for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeExec, pgx.QueryExecModeCacheStatement} {
			seen := map[int]bool{}
			for id := int64(1); id <= 20; id++ {
				var port int
				var recovery bool
				if err := c.QueryRow(ctx, where, mode, id).Scan(&port, &recovery); err != nil {
					t.Fatalf("mode %v id %d: %v", mode, id, err)
				}
				shard, replica := e.shardOf(port)
				if !replica || !recovery || shard != shardOfID[id] {
					t.Fatalf("mode %v: the read of id %d (shard %d) ran on port %d, want a replica of its shard", mode, id, shardOfID[id], port)
				}
				seen[port] = true
			}
			if len(seen) != 4 {
				t.Fatalf("mode %v: reads ran on %d servers, want all four replicas", mode, len(seen))
			}
		}
	})

	t.Run("a read of every shard goes to a replica of each", func(t *testing.T) {
		rows, err := c.Query(ctx, "SELECT inet_server_port(), pg_is_in_recovery() FROM items")
		if err != nil {
			t.Fatal(err)
		}
		shards := map[int]bool{}
		n := 0
		for rows.Next() {
			var port int
			var recovery bool
			if err := rows.Scan(&port, &recovery); err != nil {
				t.Fatal(err)
			}
			shard, replica := e.shardOf(port)
			if !replica || !recovery {
				t.Fatalf("a row of the scatter came from port %d, want replicas only", port)
			}
			shards[shard] = true
			n++
		}
		if rows.Err() != nil || n != 20 || len(shards) != 2 {
			t.Fatalf("%d rows from shards %v (%v); want 20 from both", n, shards, rows.Err())
		}
	})

	t.Run("transactions, and a read that locks, go to the primaries", func(t *testing.T) {
		tx, err := c.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var port int
		var recovery bool
		if err := tx.QueryRow(ctx, where, int64(3)).Scan(&port, &recovery); err != nil {
			t.Fatal(err)
		}
		if _, replica := e.shardOf(port); replica || recovery {
			t.Fatalf("a read in a transaction block ran on port %d, want the primary", port)
		}
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		if err := c.QueryRow(ctx, where+" FOR UPDATE", int64(3)).Scan(&port, &recovery); err != nil {
			t.Fatal(err)
		}
		if _, replica := e.shardOf(port); replica {
			t.Fatalf("SELECT ... FOR UPDATE ran on port %d, want the primary", port)
		}
		if err := c.QueryRow(ctx, "/* pgshard: role=primary */ "+where, int64(3)).Scan(&port, &recovery); err != nil {
			t.Fatal(err)
		}
		if _, replica := e.shardOf(port); replica {
			t.Fatalf("a read with role=primary ran on port %d, want the primary", port)
		}
	})

	t.Run("a read-only transaction runs on replicas, a write in it fails", func(t *testing.T) {
		for _, how := range []string{"BEGIN READ ONLY", "BEGIN; SET TRANSACTION READ ONLY"} {
			opts := pgx.TxOptions{AccessMode: pgx.ReadOnly}
			if how != "BEGIN READ ONLY" {
				opts = pgx.TxOptions{}
			}
			tx, err := c.BeginTx(ctx, opts)
			if err != nil {
				t.Fatal(err)
			}
			if how != "BEGIN READ ONLY" {
				if _, err := tx.Exec(ctx, "SET TRANSACTION READ ONLY"); err != nil {
					t.Fatal(err)
				}
			}
			for _, id := range []int64{1, 2, 3, 4} {
				var port int
				var recovery bool
				if err := tx.QueryRow(ctx, where, id).Scan(&port, &recovery); err != nil {
					t.Fatal(err)
				}
				if _, replica := e.shardOf(port); !replica || !recovery {
					t.Fatalf("a read after %s ran on port %d, want a replica", how, port)
				}
			}
			_, err = tx.Exec(ctx, "UPDATE items SET v = 1 WHERE id = 1")
			wantCode(t, "a write after "+how, err, "25006")
			if err := tx.Rollback(ctx); err != nil {
				t.Fatal(err)
			}
		}
	})

	t.Run("read-your-writes: a read after a write goes where the write is replayed", func(t *testing.T) {
		rc, err := pgx.Connect(ctx, e.proxy.DSN("ryw", "app", "secret"))
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close(context.Background())
		const id = 1000
		var shard int
		if err := rc.QueryRow(ctx, "INSERT INTO items VALUES ($1, 0) RETURNING inet_server_port()", id).Scan(&shard); err != nil {
			t.Fatal(err)
		}
		shard, _ = e.shardOf(shard)
		e.replay(t, ctx, shard, false)
		defer e.replay(t, ctx, shard, true)
		if _, err := rc.Exec(ctx, "UPDATE items SET v = 7 WHERE id = $1", id); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond) // pgshard has let go of the primary: the read is routed afresh
		var port, v int
		if err := rc.QueryRow(ctx, "SELECT inet_server_port(), v FROM items WHERE id = $1", id).Scan(&port, &v); err != nil {
			t.Fatal(err)
		}
		if v != 7 {
			t.Fatalf("the read after the write saw v = %d on port %d, want 7", v, port)
		}
		// With replay resumed, a read right after a write waits for a replica of its shard to replay it.
		e.replay(t, ctx, shard, true)
		if _, err := rc.Exec(ctx, "UPDATE items SET v = 8 WHERE id = $1", id); err != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
		if err := rc.QueryRow(ctx, "SELECT inet_server_port(), v FROM items WHERE id = $1", id).Scan(&port, &v); err != nil {
			t.Fatal(err)
		}
		if s, replica := e.shardOf(port); v != 8 || s != shard || !replica {
			t.Fatalf("the read after the write saw v = %d on port %d; want 8 on a replica of shard %d that replayed it", v, port, shard)
		}
		// The other shard's replicas replayed everything of this client there: its reads go to them.
		other := int64(1)
		for shardOfID[other] == shard {
			other++
		}
		if err := rc.QueryRow(ctx, "SELECT inet_server_port(), v FROM items WHERE id = $1", other).Scan(&port, &v); err != nil {
			t.Fatal(err)
		}
		if s, replica := e.shardOf(port); s != shardOfID[other] || !replica {
			t.Fatalf("a read of the other shard ran on port %d, want one of its replicas", port)
		}
	})

	t.Run("a write pipelined behind a read of the same shard waits for the replica, then goes to the primary", func(t *testing.T) {
		got := pipelined(t, ctx, e.proxy.DSN("app", "app", "secret"), "SELECT pg_is_in_recovery() FROM items WHERE id = 5",
			"UPDATE items SET v = v + 1 WHERE id = 5 RETURNING pg_is_in_recovery()", "SELECT pg_is_in_recovery() FROM items WHERE id = 5")
		if strings.Join(got, ",") != "t,f,f" {
			t.Fatalf("in recovery: %v, want t,f,f (a replica, then the primary)", got)
		}
	})
}
