package e2e

import (
	"context"
	"errors"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgshard/pgshard/internal/pgtest"
)

// transfers is a TPC-B-like load through pgshard: workers move amounts between accounts, one transaction
// each (two updates and an insert into history), reconnecting when pgshard closes their connection. The sum of
// the balances stays 0, and history has a row per committed transfer.
type transfers struct {
	dsn string

	mu       sync.Mutex
	commits  []time.Time // when each transfer committed
	inDoubt  int         // transfers whose COMMIT got an error: committed or not
	failures []failure
	stopping chan struct{}
	stopOnce sync.Once
	finished sync.WaitGroup
	accounts int
}

type failure struct {
	at     time.Time
	worker int
	err    error
}

const transferAccounts = 50

func setUpTransfers(t *testing.T, ctx context.Context, primary *pgtest.Cluster) {
	t.Helper()
	pc, err := pgx.Connect(ctx, primary.DSN("app_0", "app", "secret"))
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close(context.Background())
	if _, err := pc.Exec(ctx, `CREATE TABLE accounts (id int PRIMARY KEY, balance bigint NOT NULL);
		CREATE TABLE history (id bigserial PRIMARY KEY, src int, dst int, amount int);
		INSERT INTO accounts SELECT g, 0 FROM generate_series(1, 50) g`); err != nil {
		t.Fatal(err)
	}
}

func startTransfers(ctx context.Context, dsn string, workers int) *transfers {
	l := &transfers{dsn: dsn, stopping: make(chan struct{}), accounts: transferAccounts}
	for w := range workers {
		l.finished.Add(1)
		go l.work(ctx, w)
	}
	return l
}

func (l *transfers) work(ctx context.Context, w int) {
	defer l.finished.Done()
	var c *pgx.Conn
	defer func() {
		if c != nil {
			c.Close(context.Background())
		}
	}()
	for {
		select {
		case <-l.stopping:
			return
		case <-ctx.Done():
			return
		default:
		}
		if c == nil || c.IsClosed() {
			var err error
			if c, err = pgx.Connect(ctx, l.dsn); err != nil {
				l.fail(w, err)
				time.Sleep(50 * time.Millisecond)
				continue
			}
		}
		atCommit, err := l.transfer(ctx, c)
		l.mu.Lock()
		if err == nil {
			l.commits = append(l.commits, time.Now())
		} else if atCommit {
			l.inDoubt++
		}
		l.mu.Unlock()
		if err != nil {
			l.fail(w, err)
		}
	}
}

func (l *transfers) transfer(ctx context.Context, c *pgx.Conn) (atCommit bool, err error) {
	src, dst, amount := 1+rand.IntN(l.accounts), 1+rand.IntN(l.accounts), 1+rand.IntN(100)
	tx, err := c.Begin(ctx)
	if err != nil {
		return false, err
	}
	type stmt struct {
		sql  string
		args []any
	}
	debit := stmt{"UPDATE accounts SET balance = balance - $1 WHERE id = $2", []any{amount, src}}
	credit := stmt{"UPDATE accounts SET balance = balance + $1 WHERE id = $2", []any{amount, dst}}
	if dst < src {
		debit, credit = credit, debit // lock the accounts in one order: transfers never deadlock
	}
	for _, s := range []stmt{debit, credit, {"INSERT INTO history (src, dst, amount) VALUES ($1, $2, $3)", []any{src, dst, amount}}} {
		if _, err := tx.Exec(ctx, s.sql, s.args...); err != nil {
			_ = tx.Rollback(context.Background())
			return false, err
		}
	}
	return true, tx.Commit(ctx)
}

func (l *transfers) fail(w int, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.failures = append(l.failures, failure{at: time.Now(), worker: w, err: err})
}

func (l *transfers) stop() {
	l.stopOnce.Do(func() { close(l.stopping) })
	l.finished.Wait()
}

// committedAfter is the time of the first commit after t, or zero.
func (l *transfers) committedAfter(t time.Time) time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, c := range l.commits {
		if c.After(t) {
			return c
		}
	}
	return time.Time{}
}

// checkLedger checks on the server at dsn that the balances sum to 0 and that history has a row for each
// transfer that committed: no more than were tried, none fewer than were acknowledged.
func (l *transfers) checkLedger(t *testing.T, ctx context.Context, dsn string) {
	t.Helper()
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	var sum, rows int64
	if err := c.QueryRow(ctx, "SELECT (SELECT sum(balance) FROM accounts), (SELECT count(*) FROM history)").Scan(&sum, &rows); err != nil {
		t.Fatal(err)
	}
	acked := int64(len(l.commits))
	t.Logf("%d transfers acknowledged, %d in doubt; history has %d rows, balances sum to %d", acked, l.inDoubt, rows, sum)
	if sum != 0 {
		t.Errorf("the balances sum to %d, want 0", sum)
	}
	if rows < acked || rows > acked+int64(l.inDoubt) {
		t.Errorf("history has %d rows; %d transfers were acknowledged and %d in doubt: a committed transfer was lost or one was made up",
			rows, acked, l.inDoubt)
	}
}

func failoverEnv(t *testing.T) (*replicaEnv, context.Context) {
	e := startReplicaEnv(t, replicaOpts{pool: ", failover_buffer_timeout: 5s", dbs: map[string]string{"app": "role: auto"}})
	ctx := Ctx(t, 3*time.Minute)
	setUpTransfers(t, ctx, e.primary)
	e.waitForReplay(t, ctx)
	return e, ctx
}

// TestFailoverFollowsThePrimary is a switchover under a write load through pgshard (role auto): the primary
// stops (fast: its replicas have all it committed), a replica is promoted, and writes go on on it without a
// change to pgshard's config. The transactions in flight when the primary stopped get its error; the ones
// that began while the shard had no primary wait in pgshard and run on the new primary; no committed
// transfer is lost.
func TestFailoverFollowsThePrimary(t *testing.T) {
	e, ctx := failoverEnv(t)
	load := startTransfers(ctx, e.proxy.DSN("app", "app", "secret"), 4)
	defer load.stop()
	time.Sleep(time.Second)

	stopped := time.Now()
	if err := e.primary.StopFast(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second) // the shard has no primary: new transactions wait
	promoted := time.Now()
	if err := e.replicas[0].Promote(); err != nil {
		t.Fatal(err)
	}
	var first time.Time
	if !waitFor(20*time.Second, func() bool { first = load.committedAfter(promoted); return !first.IsZero() }) {
		t.Fatalf("no transfer committed within 20s of the promotion; failures: %v", load.failures)
	}
	t.Logf("the first transfer committed %v after pg_ctl promote (called %v after the primary was down)",
		first.Sub(promoted).Round(time.Millisecond), promoted.Sub(stopped).Round(time.Millisecond))
	time.Sleep(time.Second)
	load.stop()

	// Only the transactions in flight when the primary stopped failed, with its error (57P01) or a lost
	// connection; none of those that waited for the new primary. A worker may fail twice: the primary's
	// connections die one by one, and pgshard holds new transactions only once its check (kicked by the first
	// loss) finds the primary down, some milliseconds later; a worker that reconnects within that window can
	// be given another pooled connection whose backend the shutdown has just ended (seen once in fourteen runs, under
	// make test's load). Without the hold every worker fails every 50 ms until the promotion.
	perWorker := map[int]int{}
	for _, f := range load.failures {
		t.Logf("worker %d failed %v after the stop: %v", f.worker, f.at.Sub(stopped).Round(time.Millisecond), f.err)
		if perWorker[f.worker]++; perWorker[f.worker] > 2 || f.at.After(promoted) || !connectionClass(f.err) {
			t.Errorf("worker %d failed again, or not as its primary stopped: a transaction that should have waited failed", f.worker)
		}
	}
	load.checkLedger(t, ctx, e.replicas[0].DSN("app_0", "app", "secret"))

	c := e.connect(t, ctx, "app", "")
	if port, recovery := serverOf(t, ctx, c, pgx.QueryExecModeExec,
		"/* pgshard: role=primary */ SELECT inet_server_port(), pg_is_in_recovery()"); recovery || port != e.replicas[0].Port {
		t.Fatalf("the primary through pgshard is port %d (in recovery: %v), want the promoted replica %d", port, recovery, e.replicas[0].Port)
	}
	if !strings.Contains(e.proxy.Log(), "failover: a new primary") {
		t.Fatal("pgshard did not log the new primary")
	}

	// The new primary stops too, and no host is promoted: a write waits failover_buffer_timeout (5s), then fails.
	if err := e.replicas[0].StopFast(); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	_, err := c.Exec(ctx, "INSERT INTO history (src) VALUES (0)")
	if waited := time.Since(began); pgCode(err) != "08006" || !strings.Contains(err.Error(), "no primary") || waited < 4*time.Second {
		t.Fatalf("a write with no primary failed after %v with %v, want 08006 (no primary) after the 5s buffer", waited, err)
	}
}

// TestFailoverFollowsAPromotion promotes a replica while the primary still runs (a split brain that a
// Patroni would fence): writes follow the promoted replica, on the newer timeline, and the old primary, not
// in recovery, takes no reads.
func TestFailoverFollowsAPromotion(t *testing.T) {
	e, ctx := failoverEnv(t)
	c := e.connect(t, ctx, "app", "")
	promoted := time.Now()
	if err := e.replicas[1].Promote(); err != nil {
		t.Fatal(err)
	}
	const where = "/* pgshard: role=primary */ INSERT INTO history (src) VALUES (0) RETURNING inet_server_port(), pg_is_in_recovery()"
	if !waitFor(10*time.Second, func() bool {
		port, _ := serverOf(t, ctx, c, pgx.QueryExecModeExec, where)
		return port == e.replicas[1].Port
	}) {
		t.Fatal("writes did not follow the promoted replica")
	}
	t.Logf("writes went to the promoted replica %v after pg_ctl promote", time.Since(promoted).Round(time.Millisecond))
	if !waitFor(10*time.Second, func() bool { return e.logged("replica banned", e.primary) }) {
		t.Fatal("the old primary, not in recovery, was not banned from reads")
	}
	for range 10 {
		if port, _ := serverOf(t, ctx, c, pgx.QueryExecModeExec, "SELECT inet_server_port(), pg_is_in_recovery()"); port == e.primary.Port {
			t.Fatal("a read went to the old primary")
		}
	}
}

// connectionClass says whether err is a server's shutdown (57P01) or a connection that failed.
func connectionClass(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code == "57P01" || strings.HasPrefix(pe.Code, "08")
	}
	return true // no answer: the connection broke
}
