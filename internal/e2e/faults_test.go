package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgshard/pgshard/internal/faultproxy"
	"github.com/pgshard/pgshard/internal/pgtest"
)

// Faults between pgshard and its shards, and crashes, under a money-transfer workload whose total must not
// change: each transfer moves an amount from an account on one shard to an account on the other in one
// transaction. The faults are made by a TCP proxy in front of each shard (internal/faultproxy): latency, a
// bandwidth cap, connections reset, a black hole, half-open connections; the crashes are kill -9 of pgshard
// (restarted on the same two-phase log) and an immediate shutdown of a shard (restarted). Clients see errors
// during a fault and go on once it is over. After each fault: no prepared transaction is left once the sweep has
// run, the shards' total is exact (with two_phase_commit), or off by no more than the transfers whose COMMIT had
// no clear answer (without it: the documented half-commit window), and a new client is served.

const faultsConfig = `two_phase_log: %LOG%
listen: "127.0.0.1:%PORT%"
pool:
  mode: %MODE%
  size: 6
  checkout_timeout: 3s
users:
  - name: app
    password: secret
databases:
  - name: bank
    two_phase_commit: %TWOPC%
    shards:
      - primary: "postgres://127.0.0.1:%P0%/app_0"
      - primary: "postgres://127.0.0.1:%P1%/app_0"
    sharded_tables:
      - table: accounts
        column: id
        type: bigint
`

type faultEnv struct {
	t        *testing.T
	shards   [2]*pgtest.Cluster
	fps      [2]*faultproxy.Proxy
	cfg      string
	proxy    atomic.Pointer[Proxy]
	twoPhase bool
	ids      [2][]int64 // account ids on each shard
	total    int64

	committed, uncertain atomic.Int64 // transfers committed; amounts whose COMMIT had no clear answer
}

func startFaultEnv(t *testing.T, mode string, twoPhase bool) *faultEnv {
	e := &faultEnv{t: t, twoPhase: twoPhase}
	for i := range e.shards {
		// A backend whose client vanished (half-open) would hold its locks for hours; idle_in_transaction_session_timeout
		// is what an operator sets against that. A commit must survive the shard's crash once acknowledged
		// (pgtest turns synchronous_commit off for speed).
		e.shards[i] = pgtest.Start(t, pgtest.Options{Databases: []string{"app_0"}, DatabaseOwner: "app",
			Users:    []pgtest.UserSpec{{Name: "app", Password: "secret"}},
			Settings: map[string]string{"idle_in_transaction_session_timeout": "5s", "synchronous_commit": "on"}})
		e.shards[i].Exec(t, "app_0", "CREATE TABLE accounts (id bigint PRIMARY KEY, balance bigint NOT NULL); ALTER TABLE accounts OWNER TO app")
		fp, err := faultproxy.Start(e.shards[i].Addr())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(fp.Close)
		e.fps[i] = fp
	}
	e.cfg = strings.NewReplacer("%LOG%", filepath.Join(t.TempDir(), "2pc.log"), "%MODE%", mode, "%TWOPC%", strconv.FormatBool(twoPhase),
		"%P0%", strconv.Itoa(e.fps[0].Port()), "%P1%", strconv.Itoa(e.fps[1].Port())).Replace(faultsConfig)
	e.proxy.Store(StartProxy(t, e.cfg))

	ctx := Ctx(t, time.Minute)
	c := e.connect(ctx)
	if c == nil {
		t.Fatal("cannot connect to pgshard")
	}
	defer c.Close(ctx)
	for id := int64(1); id <= 200; id++ {
		if _, err := c.Exec(ctx, "INSERT INTO accounts (id, balance) VALUES ($1, 1000)", id); err != nil {
			t.Fatal(err)
		}
	}
	for i, s := range e.shards {
		for _, row := range s.QueryStrings(t, "app_0", "SELECT id FROM accounts ORDER BY id") {
			id, _ := strconv.ParseInt(row[0], 10, 64)
			e.ids[i] = append(e.ids[i], id)
		}
	}
	if len(e.ids[0]) < 20 || len(e.ids[1]) < 20 {
		t.Fatalf("accounts per shard: %d and %d", len(e.ids[0]), len(e.ids[1]))
	}
	e.total = e.sum()
	return e
}

func (e *faultEnv) connect(ctx context.Context) *pgx.Conn {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, e.proxy.Load().DSN("bank", "app", "secret"))
	if err != nil {
		return nil
	}
	return c
}

// sum is the shards' total, read from each directly.
func (e *faultEnv) sum() int64 {
	var total int64
	for _, s := range e.shards {
		v, _ := strconv.ParseInt(s.QueryString(e.t, "app_0", "SELECT coalesce(sum(balance), 0) FROM accounts"), 10, 64)
		total += v
	}
	return total
}

func (e *faultEnv) prepared() []string {
	var out []string
	for _, s := range e.shards {
		for _, row := range s.QueryStrings(e.t, "postgres", "SELECT gid FROM pg_prepared_xacts") {
			out = append(out, row[0])
		}
	}
	return out
}

// transfer moves a random amount between two random accounts on different shards. It returns what the client
// knows of the outcome.
func (e *faultEnv) transfer(ctx context.Context, c *pgx.Conn, r *rand.Rand) error {
	from := r.IntN(2)
	to := 1 - from
	a, b := e.ids[from][r.IntN(len(e.ids[from]))], e.ids[to][r.IntN(len(e.ids[to]))]
	amount := int64(1 + r.IntN(100))
	ctx, cancel := context.WithTimeout(ctx, 4*time.Second)
	defer cancel()
	tx, err := c.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(context.Background())
	if _, err := tx.Exec(ctx, "UPDATE accounts SET balance = balance - $1 WHERE id = $2", amount, a); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, "UPDATE accounts SET balance = balance + $1 WHERE id = $2", amount, b); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		e.uncertain.Add(amount) // committed on no shard, some or all: the client cannot tell
		return err
	}
	e.committed.Add(1)
	return nil
}

// workload runs transfers on workers clients until stop is closed.
func (e *faultEnv) workload(stop <-chan struct{}, workers int) *sync.WaitGroup {
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), uint64(time.Now().UnixNano())))
			ctx := context.Background()
			var c *pgx.Conn
			for {
				select {
				case <-stop:
					if c != nil {
						c.Close(ctx)
					}
					return
				default:
				}
				if c == nil {
					if c = e.connect(ctx); c == nil {
						time.Sleep(100 * time.Millisecond)
						continue
					}
				}
				if err := e.transfer(ctx, c, r); err != nil {
					c.Close(ctx)
					c = nil
					time.Sleep(20 * time.Millisecond)
				}
			}
		}()
	}
	return &wg
}

// phase runs the workload, applies the fault for a few seconds, ends it, lets the workload go on, and checks.
func (e *faultEnv) phase(name string, fault, end func()) {
	t := e.t
	before := e.committed.Load()
	stop := make(chan struct{})
	wg := e.workload(stop, 6)
	time.Sleep(time.Second)
	fault()
	time.Sleep(3 * time.Second)
	end()
	// The workload must get going again once the fault is over.
	during := e.committed.Load()
	if !waitFor(20*time.Second, func() bool { return e.committed.Load() >= during+20 }) {
		t.Errorf("%s: the workload did not recover after the fault (%d transfers since)", name, e.committed.Load()-during)
	}
	close(stop)
	wg.Wait()

	var left []string
	if !waitFor(40*time.Second, func() bool { left = e.prepared(); return len(left) == 0 }) {
		t.Errorf("%s: prepared transactions left: %v", name, left)
	}
	total := e.sum()
	uncertain := e.uncertain.Load()
	t.Logf("%s: %d transfers committed, total %d (start %d); amounts whose COMMIT had no clear answer so far: %d", name, e.committed.Load()-before, total, e.total, uncertain)
	switch {
	case e.twoPhase && total != e.total:
		t.Errorf("%s: the shards' total is %d, was %d: a transfer was half applied", name, total, e.total)
	case !e.twoPhase && (total-e.total > uncertain || e.total-total > uncertain):
		t.Errorf("%s: the shards' total is %d, was %d, more than the %d of transfers whose COMMIT had no clear answer", name, total, e.total, uncertain)
	}
}

func TestFaults(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("starts Postgres")
	}
	type fault struct {
		name       string
		start, end func(e *faultEnv)
	}
	faults := []fault{
		{"latency 30ms", func(e *faultEnv) { e.fps[0].Set(faultproxy.Fault{Latency: 30 * time.Millisecond}) },
			func(e *faultEnv) { e.fps[0].Set(faultproxy.Fault{}) }},
		{"bandwidth 20 kB/s", func(e *faultEnv) { e.fps[1].Set(faultproxy.Fault{Rate: 20 << 10}) },
			func(e *faultEnv) { e.fps[1].Set(faultproxy.Fault{}) }},
		{"connections reset", func(e *faultEnv) {
			e.fps[0].Reset()
			time.Sleep(time.Second)
			e.fps[1].Reset()
		}, func(e *faultEnv) {}},
		{"black hole", func(e *faultEnv) { e.fps[1].Set(faultproxy.Fault{Hold: true}) },
			func(e *faultEnv) { e.fps[1].Set(faultproxy.Fault{}) }},
		{"half-open", func(e *faultEnv) { e.fps[0].HalfOpen() }, func(e *faultEnv) {}},
		{"kill -9 pgshard", func(e *faultEnv) {
			e.proxy.Load().Kill()
			e.proxy.Store(StartProxy(e.t, e.cfg)) // the same two-phase log: it finishes what the dead one left
		}, func(e *faultEnv) {}},
		{"shard crash", func(e *faultEnv) {
			if err := e.shards[1].Crash(); err != nil {
				e.t.Fatal(err)
			}
			time.Sleep(time.Second)
			if err := e.shards[1].Restart(); err != nil {
				e.t.Fatal(err)
			}
		}, func(e *faultEnv) {}},
	}
	for _, run := range []struct {
		mode     string
		twoPhase bool
		faults   []string // nil: all
	}{
		{"transaction", true, nil},
		{"session", true, []string{"connections reset", "half-open", "kill -9 pgshard", "shard crash"}},
		{"transaction", false, []string{"connections reset", "kill -9 pgshard", "shard crash"}},
		{"session", false, []string{"connections reset", "kill -9 pgshard", "shard crash"}},
	} {
		t.Run(fmt.Sprintf("%s two_phase_commit=%v", run.mode, run.twoPhase), func(t *testing.T) {
			e := startFaultEnv(t, run.mode, run.twoPhase)
			for _, f := range faults {
				if run.faults != nil && !containsString(run.faults, f.name) {
					continue
				}
				e.phase(f.name, func() { f.start(e) }, func() { f.end(e) })
			}
		})
	}
}

func containsString(xs []string, s string) bool {
	for _, x := range xs {
		if x == s {
			return true
		}
	}
	return false
}
