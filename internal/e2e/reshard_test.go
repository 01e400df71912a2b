package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgshard/pgshard/config"
	"github.com/pgshard/pgshard/internal/pgtest"
	"github.com/pgshard/pgshard/reshard/status"
	"github.com/pgshard/pgshard/route/shard"
)

// Resharding a live database through the real binary: `pgshard reshard` moves database app from its shards
// to new ones while a pgbench-like load writes through the proxy; afterwards every row is where the new
// shard function puts it and the data equals what the load committed.

const reshardSchema = `
CREATE TABLE branches (bid int PRIMARY KEY, name text NOT NULL);
CREATE TABLE accounts (aid bigint PRIMARY KEY, bid int NOT NULL, abalance bigint NOT NULL DEFAULT 0, filler text);
CREATE TABLE history (hid bigserial, aid bigint NOT NULL, delta int NOT NULL, note text, mtime timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (hid, aid));
CREATE INDEX history_aid ON history (aid);
`

const reshardConfig = `
listen: "127.0.0.1:%PORT%"
pool:
  size: 20
  checkout_timeout: 20s
admin:
  user: admin
  password: adminpw
users:
  - name: app
    password: secret
databases:
  - name: app
    shards:
%SHARDS%
    sharded_tables:
      - column: aid
        type: bigint
    replicated_tables: [branches]
`

func shardList(c *pgtest.Cluster, dbs ...string) string {
	var b strings.Builder
	for _, db := range dbs {
		fmt.Fprintf(&b, "      - primary: postgres://127.0.0.1:%d/%s\n", c.Port, db)
	}
	return b.String()
}

// reshardEnv is a cluster holding the old and the new shard databases, and the proxy serving the old ones.
type reshardEnv struct {
	cluster *pgtest.Cluster
	proxy   *Proxy
	from    []string
	to      []string
	toPath  string
}

func startReshard(t *testing.T, from, to []string, accounts int) *reshardEnv {
	t.Helper()
	if testing.Short() {
		t.Skip("starts Postgres")
	}
	ctx := Ctx(t, time.Minute)
	c := pgtest.Start(t, pgtest.Options{
		Databases: append(append([]string{}, from...), to...), DatabaseOwner: "app",
		Users: []pgtest.UserSpec{{Name: "app", Password: "secret", Superuser: true}},
	})
	for i, db := range from {
		conn, err := pgx.Connect(ctx, c.DSN(db, "app", "secret"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Exec(ctx, reshardSchema+"INSERT INTO branches SELECT g, 'branch ' || g FROM generate_series(1, 10) g"); err != nil {
			t.Fatal(err)
		}
		// Accounts are loaded straight into the shard that owns them.
		m, err := shard.NewMapper(&config.ShardedTable{Column: "aid", Type: "bigint", Mapping: config.MappingHash}, len(from))
		if err != nil {
			t.Fatal(err)
		}
		var rows [][]any
		for aid := int64(1); aid <= int64(accounts); aid++ {
			if s, _ := m.ShardInt(aid); s == i {
				rows = append(rows, []any{aid, int32(aid%10 + 1), int64(0), strings.Repeat("x", 80)})
			}
		}
		if _, err := conn.CopyFrom(ctx, pgx.Identifier{"accounts"}, []string{"aid", "bid", "abalance", "filler"}, pgx.CopyFromRows(rows)); err != nil {
			t.Fatal(err)
		}
		conn.Exec(ctx, "ANALYZE")
		conn.Close(ctx)
	}
	e := &reshardEnv{cluster: c, from: from, to: to}
	e.proxy = StartProxy(t, strings.Replace(reshardConfig, "%SHARDS%\n", shardList(c, from...), 1))
	e.toPath = filepath.Join(t.TempDir(), "new-shards.yaml")
	if err := os.WriteFile(e.toPath, []byte("shards:\n"+strings.ReplaceAll(shardList(c, to...), "      - ", "  - ")), 0o600); err != nil {
		t.Fatal(err)
	}
	return e
}

// reshard runs `pgshard reshard` to its end with the environment variables env (NAME=value) added, and
// returns its output.
func (e *reshardEnv) reshard(t *testing.T, ctx context.Context, env []string, args ...string) (string, error) {
	t.Helper()
	args = append([]string{"reshard", "--config", e.proxy.ConfigPath, "--database", "app", "--to", e.toPath, "--workers", "2"}, args...)
	cmd := exec.CommandContext(ctx, Binary(t), args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// watchShowReshard polls the admin console's SHOW RESHARD until done is closed, and sends the phases it
// saw.
func (e *reshardEnv) watchShowReshard(ctx context.Context, done chan struct{}) chan map[string]bool {
	out := make(chan map[string]bool, 1)
	go func() {
		seen := map[string]bool{}
		defer func() { out <- seen }()
		conn, err := pgx.Connect(ctx, e.proxy.DSN("pgshard", "admin", "adminpw")+"&default_query_exec_mode=simple_protocol")
		if err != nil {
			seen["connect: "+err.Error()] = true
			return
		}
		defer conn.Close(context.Background())
		for {
			rows, err := conn.Query(ctx, "SHOW RESHARD")
			if err == nil {
				for rows.Next() {
					m, _ := pgx.RowToMap(rows)
					seen[fmt.Sprint(m["phase"])] = true
				}
				rows.Close()
			}
			select {
			case <-done:
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	return out
}

// ledger is what the load committed: the expected balance of every account and the history rows.
type ledger struct {
	mu       sync.Mutex
	balance  map[int64]int64
	history  int64
	commits  atomic.Int64
	failures []string
}

// runLoad writes pgbench-like transactions through the proxy until stop is closed.
func (e *reshardEnv) runLoad(t *testing.T, ctx context.Context, clients, accounts int, stop chan struct{}) (*ledger, *sync.WaitGroup) {
	l := &ledger{balance: map[int64]int64{}}
	var wg sync.WaitGroup
	for w := 0; w < clients; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn, err := pgx.Connect(ctx, e.proxy.DSN("app", "app", "secret"))
			if err != nil {
				l.mu.Lock()
				l.failures = append(l.failures, err.Error())
				l.mu.Unlock()
				return
			}
			defer conn.Close(context.Background())
			r := rand.New(rand.NewPCG(uint64(w), 7))
			for {
				select {
				case <-stop:
					return
				default:
				}
				aid := r.Int64N(int64(accounts)) + 1
				delta := int32(r.IntN(1000) - 500)
				err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
					if _, err := tx.Exec(ctx, "UPDATE accounts SET abalance = abalance + $1 WHERE aid = $2", delta, aid); err != nil {
						return err
					}
					_, err := tx.Exec(ctx, "INSERT INTO history (aid, delta, note) VALUES ($1, $2, $3)", aid, delta, strings.Repeat("n", r.IntN(50)))
					return err
				})
				l.mu.Lock()
				if err != nil {
					l.failures = append(l.failures, err.Error())
				} else {
					l.balance[aid] += int64(delta)
					l.history++
					l.commits.Add(1)
				}
				l.mu.Unlock()
				if err != nil && ctx.Err() != nil {
					return
				}
			}
		}()
	}
	return l, &wg
}

// verify checks the new shards: every row where the new shard function puts it, the accounts' balances
// and the history rows what the load committed, the replicated table whole on every shard.
func (e *reshardEnv) verify(t *testing.T, ctx context.Context, l *ledger, accounts int) {
	t.Helper()
	m, err := shard.NewMapper(&config.ShardedTable{Column: "aid", Type: "bigint", Mapping: config.MappingHash}, len(e.to))
	if err != nil {
		t.Fatal(err)
	}
	var total, hist int64
	for i, db := range e.to {
		conn, err := pgx.Connect(ctx, e.cluster.DSN(db, "app", "secret"))
		if err != nil {
			t.Fatal(err)
		}
		for _, table := range []string{"accounts", "history"} {
			rows, err := conn.Query(ctx, "SELECT aid FROM "+table)
			if err != nil {
				t.Fatal(err)
			}
			for rows.Next() {
				var aid int64
				rows.Scan(&aid)
				if s, _ := m.ShardInt(aid); s != i {
					t.Errorf("%s: aid %d on new shard %d, belongs on %d", table, aid, i, s)
				}
			}
			rows.Close()
		}
		rows, err := conn.Query(ctx, "SELECT aid, abalance FROM accounts")
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var aid, bal int64
			rows.Scan(&aid, &bal)
			total++
			l.mu.Lock()
			want := l.balance[aid]
			l.mu.Unlock()
			if bal != want {
				t.Errorf("account %d: balance %d, the load committed %d", aid, bal, want)
			}
		}
		rows.Close()
		var n, branches int64
		var leftovers int
		conn.QueryRow(ctx, "SELECT count(*) FROM history").Scan(&n)
		conn.QueryRow(ctx, "SELECT count(*) FROM branches").Scan(&branches)
		conn.QueryRow(ctx, "SELECT count(*) FROM pg_namespace WHERE nspname = 'pgshard_reshard'").Scan(&leftovers)
		hist += n
		if branches != 10 {
			t.Errorf("new shard %d: %d branches, want 10", i, branches)
		}
		if leftovers != 0 {
			t.Errorf("new shard %d: the pgshard_reshard schema is left behind", i)
		}
		conn.Close(ctx)
	}
	if total != int64(accounts) {
		t.Errorf("%d accounts on the new shards, want %d", total, accounts)
	}
	if hist != l.history {
		t.Errorf("%d history rows on the new shards, the load committed %d", hist, l.history)
	}
	for _, db := range e.from {
		var slots, pubs int
		conn, err := pgx.Connect(ctx, e.cluster.DSN(db, "app", "secret"))
		if err != nil {
			t.Fatal(err)
		}
		conn.QueryRow(ctx, "SELECT count(*) FROM pg_replication_slots WHERE slot_name LIKE 'pgshard_reshard%'").Scan(&slots)
		conn.QueryRow(ctx, "SELECT count(*) FROM pg_publication").Scan(&pubs)
		conn.Close(ctx)
		if slots != 0 || pubs != 0 {
			t.Errorf("old shard %s: %d slots and %d publications left behind", db, slots, pubs)
		}
	}
}

// reshardUnderLoad runs the load, the given reshard runs (each an environment for the process: all but
// the last are expected to die at a failpoint), and checks the result.
func reshardUnderLoad(t *testing.T, from, to []string, runs ...[]string) {
	const accounts = 20000
	e := startReshard(t, from, to, accounts)
	ctx := Ctx(t, 4*time.Minute)
	stop := make(chan struct{})
	l, wg := e.runLoad(t, ctx, 4, accounts, stop)
	time.Sleep(300 * time.Millisecond)
	watchDone := make(chan struct{})
	seen := e.watchShowReshard(ctx, watchDone)
	var err error
	for i, env := range runs {
		var out string
		out, err = e.reshard(t, ctx, env, "--min-streaming", "2s")
		t.Logf("pgshard reshard %v:\n%s", env, out)
		if i < len(runs)-1 {
			if err == nil || !strings.Contains(out, "failpoint: killed") {
				close(stop)
				wg.Wait()
				t.Fatalf("run %d with %v was to be killed at its failpoint; exit: %v", i+1, env, err)
			}
		}
	}
	time.Sleep(300 * time.Millisecond) // the load goes on against the new shards
	close(stop)
	wg.Wait()
	close(watchDone)
	if err != nil {
		t.Fatalf("reshard: %v", err)
	}
	phases := <-seen
	if !phases["streaming"] || !phases["done"] {
		t.Errorf("SHOW RESHARD during the run showed the phases %v, want streaming and done among them", phases)
	}
	if len(l.failures) > 0 {
		t.Errorf("%d transactions of the load failed, first: %s", len(l.failures), l.failures[0])
	}
	t.Logf("the load committed %d transactions", l.commits.Load())
	cfg, err := config.Load(e.proxy.ConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	if got := len(cfg.Database("app").Shards); got != len(to) {
		t.Fatalf("the config has %d shards after the reshard, want %d", got, len(to))
	}
	e.verify(t, ctx, l, accounts)
	// history.hid's sequence is interleaved over the new shards (reshard/sequences.go).
	if out, err := exec.Command(Binary(t), "sequences", "--config", e.proxy.ConfigPath, "--database", "app", "--check").CombinedOutput(); err != nil ||
		!strings.Contains(string(out), fmt.Sprintf("history_hid_seq (history.hid): interleaved over %d shards", len(to))) {
		t.Errorf("pgshard sequences --check after the reshard: %v\n%s", err, out)
	}
}

func TestReshardOneToTwoUnderLoad(t *testing.T) {
	reshardUnderLoad(t, []string{"app_0"}, []string{"new_0", "new_1"}, nil)
}

func TestReshardTwoToFourUnderLoad(t *testing.T) {
	reshardUnderLoad(t, []string{"app_0", "app_1"}, []string{"new_0", "new_1", "new_2", "new_3"}, nil)
}

// TestReshardKilledAndRerun kills `pgshard reshard` (SIGKILL at a failpoint) during the copy, then its
// rerun during the streaming; the third run finishes, exactly.
func TestReshardKilledAndRerun(t *testing.T) {
	reshardUnderLoad(t, []string{"app_0"}, []string{"new_0", "new_1"},
		[]string{"PGSHARD_FAILPOINT=reshard-copy:8000"},
		[]string{"PGSHARD_FAILPOINT=reshard-stream:3000"},
		nil)
}

// TestReshardRefusesTableWithoutKey: a table without a primary key is refused before anything changes,
// with the fix named.
func TestReshardRefusesTableWithoutKey(t *testing.T) {
	e := startReshard(t, []string{"app_0"}, []string{"new_0", "new_1"}, 100)
	ctx := Ctx(t, time.Minute)
	conn, err := pgx.Connect(ctx, e.cluster.DSN("app_0", "app", "secret"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE TABLE audit (aid bigint, what text)"); err != nil {
		t.Fatal(err)
	}
	out, err := e.reshard(t, ctx, nil)
	if err == nil || !strings.Contains(out, "table audit has no primary key") || !strings.Contains(out, "REPLICA IDENTITY FULL") {
		t.Fatalf("want a refusal naming audit and the fix; exit %v, output:\n%s", err, out)
	}
	var slots int
	conn.QueryRow(ctx, "SELECT count(*) FROM pg_replication_slots").Scan(&slots)
	dest, err := pgx.Connect(ctx, e.cluster.DSN("new_0", "app", "secret"))
	if err != nil {
		t.Fatal(err)
	}
	defer dest.Close(ctx)
	var tables int
	dest.QueryRow(ctx, "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')").Scan(&tables)
	if slots != 0 || tables != 0 {
		t.Errorf("the refused run left %d slots on the source and %d relations on a destination", slots, tables)
	}
}

// TestReshardAbort: --abort after a run killed in its copy leaves the sources without slots or publications
// and the destinations empty, so that a new run starts from scratch and succeeds.
func TestReshardAbort(t *testing.T) {
	e := startReshard(t, []string{"app_0"}, []string{"new_0", "new_1"}, 20000)
	ctx := Ctx(t, 2*time.Minute)
	if out, err := e.reshard(t, ctx, []string{"PGSHARD_FAILPOINT=reshard-copy:8000"}); err == nil {
		t.Fatalf("the run was to die at its failpoint:\n%s", out)
	}
	out, err := e.reshard(t, ctx, nil, "--abort")
	if err != nil {
		t.Fatalf("--abort: %v\n%s", err, out)
	}
	src, err := pgx.Connect(ctx, e.cluster.DSN("app_0", "app", "secret"))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close(ctx)
	var slots, pubs int
	src.QueryRow(ctx, "SELECT count(*) FROM pg_replication_slots").Scan(&slots)
	src.QueryRow(ctx, "SELECT count(*) FROM pg_publication").Scan(&pubs)
	if slots != 0 || pubs != 0 {
		t.Errorf("after --abort the source has %d slots and %d publications", slots, pubs)
	}
	for _, db := range e.to {
		c, err := pgx.Connect(ctx, e.cluster.DSN(db, "app", "secret"))
		if err != nil {
			t.Fatal(err)
		}
		var rels int
		c.QueryRow(ctx, "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')").Scan(&rels)
		c.Close(ctx)
		if rels != 0 {
			t.Errorf("after --abort destination %s holds %d relations", db, rels)
		}
	}
	if out, err := e.reshard(t, ctx, nil); err != nil {
		t.Fatalf("a new run after --abort: %v\n%s", err, out)
	}
	e.verify(t, ctx, &ledger{balance: map[int64]int64{}}, 20000)
}

// TestReshardStopsBeforeItsSlotFillsTheDisk: a run whose slot retains more WAL than --max-slot-wal stops with
// an error that names the slot and the bound (here the copy and the index builds into destinations of the same
// cluster make the source keep that WAL before the streaming reads any), SHOW RESHARD's status says so, and
// --abort then leaves no slot behind.
func TestReshardStopsBeforeItsSlotFillsTheDisk(t *testing.T) {
	e := startReshard(t, []string{"app_0"}, []string{"new_0", "new_1"}, 20000)
	ctx := Ctx(t, 2*time.Minute)
	out, err := e.reshard(t, ctx, nil, "--max-slot-wal-mb", "1")
	if err == nil || !strings.Contains(out, "replication slot pgshard_reshard_app_0 on source shard 0 retains") ||
		!strings.Contains(out, "more than --max-slot-wal 1024 kB") {
		t.Fatalf("a run past --max-slot-wal: %v\n%s", err, out)
	}
	st, err := status.Read(filepath.Join(filepath.Dir(e.proxy.ConfigPath), status.DirPrefix+"app"))
	if err != nil || st.Phase != status.PhaseFailed || !strings.Contains(st.Error, "--max-slot-wal") || st.RetainedWAL <= 0 {
		t.Errorf("the run's status after the stop: %+v %v", st, err)
	}
	if out, err := e.reshard(t, ctx, nil, "--abort"); err != nil {
		t.Fatalf("--abort: %v\n%s", err, out)
	}
	src, err := pgx.Connect(ctx, e.cluster.DSN("app_0", "app", "secret"))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close(ctx)
	var slots int
	if err := src.QueryRow(ctx, "SELECT count(*) FROM pg_replication_slots").Scan(&slots); err != nil || slots != 0 {
		t.Errorf("after --abort the source has %d slots (%v)", slots, err)
	}
}
