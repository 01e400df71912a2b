package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgshard/pgshard/internal/pgtest"
	"github.com/pgshard/pgshard/reshard/status"
)

// The admin console's PAUSE, RESUME, RELOAD and SHOW RESHARD, through the real binary: what the resharding
// tool relies on to cut a live database over to new shards.

// adminConfig is one database app on shard app_0 of one cluster (%PG%), with an admin login. %CHECKOUT% is
// pool.checkout_timeout; %MORE% more database entries.
const adminConfig = `
listen: "127.0.0.1:%PORT%"
shutdown_timeout: 5s
pool:
  mode: transaction
  size: 4
  checkout_timeout: %CHECKOUT%
limits:
  client_startup_timeout: 5s
admin:
  user: admin
  password: adminpw
users:
  - name: app
    password: secret
databases:
  - name: app
    shards:
      - primary: "postgres://127.0.0.1:%PG%/app_0"
%MORE%`

// console is a connection to the admin console; the notices it got are kept.
type console struct {
	*pgconn.PgConn
	mu      sync.Mutex
	notices []string
}

// openConsole logs in to the console of p. With cancel, a canceled context sends a CancelRequest (pgx's
// default cuts the connection instead).
func openConsole(t *testing.T, ctx context.Context, p *Proxy, cancel bool) *console {
	t.Helper()
	cfg, err := pgconn.ParseConfig(p.DSN("pgshard", "admin", "adminpw"))
	if err != nil {
		t.Fatal(err)
	}
	if cancel {
		cfg.BuildContextWatcherHandler = cancelRequestHandler
	}
	c := &console{}
	cfg.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) {
		c.mu.Lock()
		c.notices = append(c.notices, n.Message)
		c.mu.Unlock()
	}
	pc, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatalf("console login: %v", err)
	}
	t.Cleanup(func() { _ = pc.Close(context.Background()) })
	c.PgConn = pc
	return c
}

// run sends sql and returns the rows of its last result, each as "a|b|c".
func (c *console) run(ctx context.Context, sql string) ([]string, error) {
	res, err := c.Exec(ctx, sql).ReadAll()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, r := range res {
		if r.Err != nil {
			return nil, r.Err
		}
		out = out[:0]
		for _, row := range r.Rows {
			vals := make([]string, len(row))
			for i, v := range row {
				vals[i] = string(v)
			}
			out = append(out, strings.Join(vals, "|"))
		}
	}
	return out, nil
}

// must is run that fails the test on an error.
func (c *console) must(t *testing.T, ctx context.Context, sql string) []string {
	t.Helper()
	rows, err := c.run(ctx, sql)
	if err != nil {
		t.Fatalf("console: %s: %v", sql, err)
	}
	return rows
}

func (c *console) takeNotices() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.notices
	c.notices = nil
	return n
}

// pauseStates returns SHOW DATABASES' paused and pause_state of each database ("1 paused"), by name.
func (c *console) pauseStates(t *testing.T, ctx context.Context) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, r := range c.must(t, ctx, "SHOW DATABASES") {
		f := strings.Split(r, "|")
		out[f[0]] = f[5] + " " + f[6]
	}
	return out
}

// startAdminEnv starts one cluster with databases app_0 and app_1 (table accounts in each) and a pgshard in
// front serving database app on app_0.
func startAdminEnv(t *testing.T, checkout string) (*pgtest.Cluster, *Proxy, string) {
	t.Helper()
	if testing.Short() {
		t.Skip("starts Postgres")
	}
	pg := pgtest.Start(t, pgtest.Options{
		Databases:     []string{"app_0", "app_1"},
		DatabaseOwner: "app",
		Users:         []pgtest.UserSpec{{Name: "app", Password: "secret"}},
	})
	for _, db := range []string{"app_0", "app_1"} {
		pg.Exec(t, db, "CREATE TABLE accounts (aid bigint PRIMARY KEY, note text); ALTER TABLE accounts OWNER TO app")
		pg.Exec(t, "postgres", fmt.Sprintf("ALTER DATABASE %s SET lock_timeout = '10s'", db))
	}
	cfg := strings.NewReplacer("%CHECKOUT%", checkout, "%PG%", strconv.Itoa(pg.Port)).Replace(adminConfig)
	return pg, StartProxy(t, strings.ReplaceAll(cfg, "%MORE%", "")), cfg
}

// result is what a statement run in the background came to.
type result struct {
	rows [][]string
	err  error
	at   time.Time
}

// inBackground runs sql on c in a goroutine.
func inBackground(ctx context.Context, c *pgx.Conn, sql string, args ...any) <-chan result {
	ch := make(chan result, 1)
	go func() {
		rows, err := queryStrings(ctx, c, sql, args...)
		ch <- result{rows: rows, err: err, at: time.Now()}
	}()
	return ch
}

// consoleInBackground runs sql on the console in a goroutine.
func consoleInBackground(ctx context.Context, c *console, sql string) <-chan result {
	ch := make(chan result, 1)
	go func() {
		_, err := c.run(ctx, sql)
		ch <- result{err: err, at: time.Now()}
	}()
	return ch
}

// still fails the test when ch delivers within d.
func still(t *testing.T, what string, ch <-chan result, d time.Duration) {
	t.Helper()
	select {
	case r := <-ch:
		t.Fatalf("%s finished (err %v) but should still wait", what, r.err)
	case <-time.After(d):
	}
}

// within returns what ch delivers within d, or fails the test.
func within(t *testing.T, what string, ch <-chan result, d time.Duration) result {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(d):
		t.Fatalf("%s did not finish within %v", what, d)
	}
	return result{}
}

// TestPauseWaitsForTransactions: PAUSE returns only once the open transaction committed; a query sent
// meanwhile by another client waits (it is not refused) and runs after RESUME.
func TestPauseWaitsForTransactions(t *testing.T) {
	t.Parallel()
	pg, p, _ := startAdminEnv(t, "20s")
	ctx := Ctx(t, 2*time.Minute)
	adm := openConsole(t, ctx, p, false)
	watch := openConsole(t, ctx, p, false)

	c1, err := pgx.Connect(ctx, p.DSN("app", "app", "secret"))
	if err != nil {
		t.Fatal(err)
	}
	defer c1.Close(context.Background())
	tx, err := c1.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "INSERT INTO accounts VALUES (1, 'in the transaction')"); err != nil {
		t.Fatal(err)
	}

	pause := consoleInBackground(ctx, adm, "PAUSE app")
	still(t, "PAUSE while a transaction is open", pause, 300*time.Millisecond)
	if st := watch.pauseStates(t, ctx)["app"]; st != "1 pausing" {
		t.Errorf("SHOW DATABASES during PAUSE: app is %q, want 1 pausing", st)
	}

	// Another client logs in (no server needed: pgshard knows the server's parameters) and its query waits.
	c2, err := pgx.Connect(ctx, p.DSN("app", "app", "secret"))
	if err != nil {
		t.Fatalf("login during PAUSE: %v", err)
	}
	defer c2.Close(context.Background())
	q := inBackground(ctx, c2, "SELECT count(*) FROM accounts")
	still(t, "a new transaction during PAUSE", q, 300*time.Millisecond)
	if !slices.ContainsFunc(watch.must(t, ctx, "SHOW CLIENTS"), func(r string) bool { return strings.Contains(r, "|paused|") }) {
		t.Error("SHOW CLIENTS shows no paused client")
	}

	// The transaction goes on (it holds its server) and commits: then PAUSE answers.
	if _, err := tx.Exec(ctx, "INSERT INTO accounts VALUES (2, 'still in it')"); err != nil {
		t.Fatalf("the open transaction during PAUSE: %v", err)
	}
	committed := time.Now()
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	r := within(t, "PAUSE after the commit", pause, 5*time.Second)
	if r.err != nil {
		t.Fatalf("PAUSE: %v", r.err)
	}
	if r.at.Before(committed) {
		t.Fatal("PAUSE answered before the transaction committed")
	}
	if st := watch.pauseStates(t, ctx)["app"]; st != "1 paused" {
		t.Errorf("SHOW DATABASES after PAUSE: app is %q, want 1 paused", st)
	}
	still(t, "the waiting query while paused", q, 300*time.Millisecond)
	// Nothing of database app holds a server connection now.
	if got := pg.QueryString(t, "postgres", "SELECT count(*) FROM pg_stat_activity WHERE usename = 'app' AND state <> 'idle'"); got != "0" {
		t.Errorf("%s server connections of app busy while paused", got)
	}

	resumed := time.Now()
	adm.must(t, ctx, "RESUME app")
	r = within(t, "the waiting query after RESUME", q, 5*time.Second)
	if r.err != nil {
		t.Fatalf("the query held back by PAUSE failed: %v", r.err)
	}
	if len(r.rows) != 1 || r.rows[0][0] != "2" || r.at.Before(resumed) {
		t.Errorf("held-back query: %v at %v (RESUME at %v), want 2 after RESUME", r.rows, r.at, resumed)
	}
	if st := watch.pauseStates(t, ctx)["app"]; st != "0 " {
		t.Errorf("SHOW DATABASES after RESUME: app is %q, want 0", st)
	}
}

// TestPauseCheckoutTimeout: a client held back longer than pool.checkout_timeout gets the usual error, saying
// the database is paused; PAUSE (all databases) and its refusals.
func TestPauseCheckoutTimeout(t *testing.T) {
	t.Parallel()
	_, p, _ := startAdminEnv(t, "1s")
	ctx := Ctx(t, time.Minute)
	adm := openConsole(t, ctx, p, false)
	c, err := pgx.Connect(ctx, p.DSN("app", "app", "secret"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())

	// With no transaction open, PAUSE answers at once.
	start := time.Now()
	adm.must(t, ctx, "PAUSE")
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("PAUSE of a quiet pgshard took %v", d)
	}
	for _, tc := range []struct{ sql, code, msg string }{
		{"PAUSE app", "55000", "every database is already paused"},
		{"PAUSE", "55000", "already paused"},
		{"RESUME app", "55000", "PAUSE of every database"},
		{"PAUSE nosuchdb", "3D000", `database "nosuchdb" does not exist`},
		{"PAUSE app app", "42601", "at most one database"},
		{"SHOW PAUSES", "42601", "unknown admin command"},
	} {
		_, err := adm.run(ctx, tc.sql)
		if pe := wantCode(t, tc.sql, err, tc.code); !strings.Contains(pe.Message, tc.msg) || pe.Hint == "" {
			t.Errorf("%s: %q (hint %q), want a message with %q and a hint", tc.sql, pe.Message, pe.Hint, tc.msg)
		}
	}

	start = time.Now()
	_, err = c.Exec(ctx, "SELECT 1")
	pe := wantCode(t, "a query while paused, past checkout_timeout", err, "53300")
	if !strings.Contains(pe.Message, "paused") || time.Since(start) < 900*time.Millisecond {
		t.Errorf("after %v: %q, want the checkout timeout (1s) saying the database is paused", time.Since(start), pe.Message)
	}

	adm.must(t, ctx, "RESUME")
	// RESUME of what is not paused changes nothing and says so: a tool finishing an interrupted cutover may
	// always send it.
	adm.takeNotices()
	adm.must(t, ctx, "RESUME")
	adm.must(t, ctx, "RESUME app")
	if n := adm.takeNotices(); len(n) != 2 || !strings.Contains(n[0], "no database is paused") || !strings.Contains(n[1], `"app" is not paused`) {
		t.Errorf("notices of RESUME with nothing paused: %q", n)
	}
	_, err = adm.run(ctx, "RESUME nosuchdb")
	wantCode(t, "RESUME of an unknown database", err, "3D000")
	c2, err := pgx.Connect(ctx, p.DSN("app", "app", "secret"))
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close(context.Background())
	if _, err := c2.Exec(ctx, "SELECT 1"); err != nil {
		t.Fatalf("after RESUME: %v", err)
	}
}

// TestPauseWithdrawn: a PAUSE whose console connection closes, or is canceled, or is ended by RESUME from
// another console while it waits, is withdrawn: clients go on at once.
func TestPauseWithdrawn(t *testing.T) {
	t.Parallel()
	_, p, _ := startAdminEnv(t, "20s")
	ctx := Ctx(t, 2*time.Minute)
	watch := openConsole(t, ctx, p, false)

	c1, err := pgx.Connect(ctx, p.DSN("app", "app", "secret"))
	if err != nil {
		t.Fatal(err)
	}
	defer c1.Close(context.Background())
	tx, err := c1.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(context.Background())
	if _, err := tx.Exec(ctx, "INSERT INTO accounts VALUES (1, 'held open')"); err != nil {
		t.Fatal(err)
	}
	c2, err := pgx.Connect(ctx, p.DSN("app", "app", "secret"))
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close(context.Background())

	pausing := func() bool { return watch.pauseStates(t, ctx)["app"] == "1 pausing" }
	notPaused := func() bool { return watch.pauseStates(t, ctx)["app"] == "0 " }
	for _, how := range []string{"connection closed", "CancelRequest", "RESUME from another console"} {
		adm := openConsole(t, ctx, p, how == "CancelRequest")
		pctx, cancel := context.WithCancel(ctx)
		pause := consoleInBackground(pctx, adm, "PAUSE app")
		if !waitFor(5*time.Second, pausing) {
			t.Fatalf("%s: PAUSE did not begin", how)
		}
		q := inBackground(ctx, c2, "SELECT 1")
		still(t, how+": a query during PAUSE", q, 200*time.Millisecond)
		switch how {
		case "RESUME from another console":
			watch.must(t, ctx, "RESUME app")
		default:
			cancel()
		}
		r := within(t, how+": the waiting PAUSE", pause, 5*time.Second)
		if how == "connection closed" {
			if r.err == nil {
				t.Fatalf("%s: PAUSE succeeded", how)
			}
		} else if pe := wantCode(t, how+": PAUSE", r.err, "57014"); !strings.Contains(pe.Message, "not paused") {
			t.Errorf("%s: PAUSE error %q, want it to say the database is not paused", how, pe.Message)
		}
		if !waitFor(5*time.Second, notPaused) {
			t.Fatalf("%s: app still paused: %v", how, watch.pauseStates(t, ctx))
		}
		if r := within(t, how+": the query held back", q, 5*time.Second); r.err != nil {
			t.Fatalf("%s: the query held back failed: %v", how, r.err)
		}
		if how != "connection closed" {
			adm.must(t, ctx, "SHOW VERSION") // the console goes on
		}
		cancel()
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatalf("the transaction open through all of it: %v", err)
	}
}

// TestReloadReshards: database app goes from one shard to two by RELOAD while paused, as pgshard reshard
// does it. Statements held back by the pause, prepared statements planned before, simple queries and new
// clients all route by the new shard count (Postgres's MODULUS 2 hash partitioning says where each key
// belongs); a removed database's clients are closed; a bad file changes nothing; SIGHUP reloads too.
func TestReloadReshards(t *testing.T) {
	t.Parallel()
	pg, p, cfg := startAdminEnv(t, "20s")
	ctx := Ctx(t, 2*time.Minute)
	pg.Exec(t, "app_0", shadowDDL("shadow_acc", "bigint")+"ALTER TABLE shadow_acc OWNER TO app")
	shadow, err := pgx.Connect(ctx, pg.DSN("app_0", "app", "secret"))
	if err != nil {
		t.Fatal(err)
	}
	defer shadow.Close(context.Background())
	shard := [2]*pgx.Conn{}
	for i := range shard {
		if shard[i], err = pgx.Connect(ctx, pg.DSN(fmt.Sprintf("app_%d", i), "app", "secret")); err != nil {
			t.Fatal(err)
		}
		defer shard[i].Close(context.Background())
	}

	oneShard := strings.Replace(cfg, "      - primary: \"postgres://127.0.0.1:"+strconv.Itoa(pg.Port)+"/app_0\"\n",
		"      - primary: \"postgres://127.0.0.1:"+strconv.Itoa(pg.Port)+"/app_0\"\n"+
			"    sharded_tables: [{table: accounts, column: aid, type: bigint}]\n", 1)
	gone := "  - name: gone\n    shards: [{primary: \"postgres://127.0.0.1:" + strconv.Itoa(pg.Port) + "/app_0\"}]\n"
	p.WriteConfig(t, strings.ReplaceAll(oneShard, "%MORE%", gone))
	adm := openConsole(t, ctx, p, false)
	adm.must(t, ctx, "RELOAD")
	if n := adm.takeNotices(); !slices.ContainsFunc(n, func(s string) bool { return strings.Contains(s, "database gone added") }) {
		t.Errorf("RELOAD notices %q lack the added database", n)
	}

	// Before: one shard.
	ext, err := pgx.Connect(ctx, p.DSN("app", "app", "secret")) // extended protocol, statements prepared and cached
	if err != nil {
		t.Fatal(err)
	}
	defer ext.Close(context.Background())
	simple := connectSimple(t, ctx, p)
	held := connectSimple(t, ctx, p)
	gc, err := pgx.Connect(ctx, p.DSN("gone", "app", "secret"))
	if err != nil {
		t.Fatal(err)
	}
	defer gc.Close(context.Background())
	if _, err := gc.Exec(ctx, "SELECT 1"); err != nil {
		t.Fatal(err)
	}
	const insert = "INSERT INTO accounts (aid, note) VALUES ($1, $2)"
	for k := int64(1); k <= 10; k++ {
		if _, err := ext.Exec(ctx, insert, k, "before"); err != nil {
			t.Fatal(err)
		}
	}
	if got := countRows(t, ctx, shard[1], "SELECT count(*) FROM accounts"); got != 0 {
		t.Fatalf("%d rows on app_1 before it is a shard", got)
	}

	// PAUSE, a statement held back, RELOAD to two shards, RESUME: the held statement routes by two shards.
	adm.must(t, ctx, "PAUSE app")
	const heldKey = 4242
	h := inBackground(ctx, held, fmt.Sprintf("INSERT INTO accounts (aid, note) VALUES (%d, 'held')", heldKey))
	still(t, "an INSERT during PAUSE", h, 200*time.Millisecond)
	twoShards := strings.Replace(oneShard, "/app_0\"\n", "/app_0\"\n      - primary: \"postgres://127.0.0.1:"+strconv.Itoa(pg.Port)+"/app_1\"\n", 1)
	twoShards = strings.Replace(twoShards, "  size: 4\n", "  size: 5\n", 1)
	p.WriteConfig(t, strings.ReplaceAll(twoShards, "%MORE%", ""))
	adm.must(t, ctx, "PAUSE gone") // a pause of a database RELOAD removes ends with it
	adm.must(t, ctx, "RELOAD")
	notices := adm.takeNotices()
	for _, want := range []string{"pool.size changed", "database app: new routing (1 -> 2 shards)", "database gone removed"} {
		if !slices.ContainsFunc(notices, func(s string) bool { return strings.Contains(s, want) }) {
			t.Errorf("RELOAD notices %q lack %q", notices, want)
		}
	}
	if got := adm.must(t, ctx, "SHOW DATABASES"); len(got) != 2 || !strings.HasPrefix(got[1], "app|1|") || !strings.HasSuffix(got[1], "|1|paused") {
		t.Errorf("SHOW DATABASES after RELOAD while paused: %q", got)
	}
	_, err = adm.run(ctx, "RESUME gone")
	wantCode(t, "RESUME of the removed database", err, "3D000")
	adm.must(t, ctx, "RESUME app")
	if r := within(t, "the INSERT held back by PAUSE", h, 5*time.Second); r.err != nil {
		t.Fatalf("the INSERT held back by PAUSE: %v", r.err)
	}

	// The removed database: its idle client was closed, new connections are refused.
	_, err = gc.Exec(ctx, "SELECT 1")
	if pe := pgError(err); err == nil || (pe != nil && pe.Code != "57P01") {
		t.Errorf("a client of the removed database: %v, want 57P01 or a closed connection", err)
	}
	if _, err := pgx.Connect(ctx, p.DSN("gone", "app", "secret")); err == nil {
		t.Error("a removed database accepts connections")
	} else {
		wantCode(t, "connecting to a removed database", err, "3D000")
	}

	// After: every way of inserting routes by two shards.
	fresh, err := pgx.Connect(ctx, p.DSN("app", "app", "secret"))
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close(context.Background())
	keys := []int64{heldKey}
	for k := int64(100); k < 140; k++ {
		var err error
		switch k % 3 {
		case 0:
			_, err = ext.Exec(ctx, insert, k, "after, prepared before")
		case 1:
			_, err = simple.Exec(ctx, fmt.Sprintf("INSERT INTO accounts (aid, note) VALUES (%d, 'after, simple')", k))
		default:
			_, err = fresh.Exec(ctx, insert, k, "after, new client")
		}
		if err != nil {
			t.Fatalf("insert %d after RELOAD: %v", k, err)
		}
		keys = append(keys, k)
	}
	checkPlaced := func(what string, keys []int64) {
		t.Helper()
		strs := make([]string, len(keys))
		for i, k := range keys {
			strs[i] = strconv.FormatInt(k, 10)
		}
		owners := shadowOwners(t, shadow, "shadow_acc", strs)
		seen := [2]int{}
		for i, k := range keys {
			on := -1
			for s := range shard {
				if countRows(t, ctx, shard[s], "SELECT count(*) FROM accounts WHERE aid = $1", k) == 1 {
					on = s
				}
			}
			if on != owners[i] {
				t.Errorf("%s: key %d is on shard %d, Postgres's MODULUS 2 partitioning puts it on %d", what, k, on, owners[i])
			}
			if on >= 0 {
				seen[on]++
			}
		}
		if seen[0] == 0 || seen[1] == 0 {
			t.Errorf("%s: rows per shard %v: both shards should get some", what, seen)
		}
	}
	checkPlaced("after RELOAD", keys)
	if got := countRows(t, ctx, shard[0], "SELECT count(*) FROM accounts WHERE aid <= 10"); got != 10 {
		t.Errorf("the rows written before stay where they were (moving them is pgshard reshard's job): %d of 10 on app_0", got)
	}
	// Reads by key go to the new owner too (the prepared statement's plan is the new schema's).
	for _, k := range keys[:5] {
		var note string
		if err := ext.QueryRow(ctx, "SELECT note FROM accounts WHERE aid = $1", k).Scan(&note); err != nil {
			t.Errorf("reading key %d through pgshard: %v", k, err)
		}
	}

	// A bad file: an error naming the problem, and nothing changes.
	p.WriteConfig(t, strings.ReplaceAll(twoShards, "%MORE%", "    no_such_key: 1\n"))
	_, err = adm.run(ctx, "RELOAD")
	if pe := wantCode(t, "RELOAD of a bad file", err, "F0000"); !strings.Contains(pe.Message, "no_such_key") || !strings.Contains(pe.Message, "nothing changed") {
		t.Errorf("RELOAD of a bad file: %q (detail %q)", pe.Message, pe.Detail)
	}
	p.WriteConfig(t, strings.ReplaceAll(oneShard, "%MORE%", "  - name: app\n    shards: [{primary: \"postgres://127.0.0.1:1/x\"}]\n"))
	_, err = adm.run(ctx, "RELOAD")
	wantCode(t, "RELOAD of a file naming app twice", err, "F0000")
	if got := adm.must(t, ctx, "SHOW DATABASES"); len(got) != 2 {
		t.Errorf("SHOW DATABASES after failed RELOADs: %q, want app's two shards", got)
	}
	var more []int64
	for k := int64(200); k < 220; k++ {
		if _, err := ext.Exec(ctx, insert, k, "after the failed RELOAD"); err != nil {
			t.Fatal(err)
		}
		more = append(more, k)
	}
	checkPlaced("after a failed RELOAD", more)

	// A multi-shard transaction open when PAUSE comes goes on to another shard (it holds a server already),
	// and PAUSE answers once it committed.
	var onShard [2]int64 // a new key of each shard
	for k := int64(1000); onShard[0] == 0 || onShard[1] == 0; k++ {
		if o := shadowOwners(t, shadow, "shadow_acc", []string{strconv.FormatInt(k, 10)})[0]; onShard[o] == 0 {
			onShard[o] = k
		}
	}
	tx, err := ext.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, insert, onShard[0], "multi-shard, first"); err != nil {
		t.Fatal(err)
	}
	pause := consoleInBackground(ctx, adm, "PAUSE app")
	still(t, "PAUSE during a multi-shard transaction", pause, 200*time.Millisecond)
	if _, err := tx.Exec(ctx, insert, onShard[1], "multi-shard, second"); err != nil {
		t.Fatalf("the transaction's statement for its second shard during PAUSE: %v", err)
	}
	still(t, "PAUSE during a multi-shard transaction", pause, 100*time.Millisecond)
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if r := within(t, "PAUSE after the multi-shard commit", pause, 5*time.Second); r.err != nil {
		t.Fatalf("PAUSE: %v", r.err)
	}
	checkPlaced("a multi-shard transaction during PAUSE", onShard[:])
	adm.must(t, ctx, "RESUME")

	// SIGHUP reloads as RELOAD does.
	p.WriteConfig(t, strings.ReplaceAll(twoShards, "%MORE%", strings.ReplaceAll(gone, "gone", "extra")))
	p.Signal(syscall.SIGHUP)
	if !waitFor(5*time.Second, func() bool { _, ok := adm.pauseStates(t, ctx)["extra"]; return ok }) {
		t.Fatalf("SIGHUP did not reload: %q", adm.must(t, ctx, "SHOW DATABASES"))
	}
}

// TestPauseSessionMode: in session mode a client holds its server for its whole session, so PAUSE waits until
// the clients connected when it came have gone.
func TestPauseSessionMode(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("starts Postgres")
	}
	pg := pgtest.Start(t, pgtest.Options{Databases: []string{"app_0"}, DatabaseOwner: "app",
		Users: []pgtest.UserSpec{{Name: "app", Password: "secret"}}})
	cfg := strings.NewReplacer("%CHECKOUT%", "20s", "%PG%", strconv.Itoa(pg.Port), "%MORE%", "", "mode: transaction", "mode: session").Replace(adminConfig)
	p := StartProxy(t, cfg)
	ctx := Ctx(t, time.Minute)
	adm := openConsole(t, ctx, p, false)
	c1, err := pgx.Connect(ctx, p.DSN("app", "app", "secret"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c1.Exec(ctx, "SELECT 1"); err != nil {
		t.Fatal(err)
	}
	pause := consoleInBackground(ctx, adm, "PAUSE app")
	still(t, "PAUSE while a session-mode client is connected", pause, 300*time.Millisecond)
	if _, err := c1.Exec(ctx, "SELECT 2"); err != nil {
		t.Fatalf("the session-mode client during PAUSE: %v", err)
	}
	still(t, "PAUSE while a session-mode client is connected", pause, 100*time.Millisecond)
	c1.Close(ctx)
	if r := within(t, "PAUSE after the session-mode client left", pause, 5*time.Second); r.err != nil {
		t.Fatalf("PAUSE: %v", r.err)
	}
	adm.must(t, ctx, "RESUME")
}

// connectSimple connects to database app through p in the simple protocol.
func connectSimple(t *testing.T, ctx context.Context, p *Proxy) *pgx.Conn {
	t.Helper()
	cfg, err := pgx.ParseConfig(p.DSN("app", "app", "secret"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
	c, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

func countRows(t *testing.T, ctx context.Context, c *pgx.Conn, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := c.QueryRow(ctx, sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

// TestShowReshard: SHOW RESHARD shows the progress files next to the config file, one row per table. It needs
// no Postgres: nothing connects to the shards.
func TestShowReshard(t *testing.T) {
	t.Parallel()
	p := StartProxy(t, strings.NewReplacer("%CHECKOUT%", "5s", "%PG%", "1", "%MORE%", "").Replace(adminConfig))
	ctx := Ctx(t, 30*time.Second)
	adm := openConsole(t, ctx, p, false)
	if got := adm.must(t, ctx, "SHOW RESHARD"); len(got) != 0 {
		t.Errorf("SHOW RESHARD with no run: %q", got)
	}
	base := filepath.Dir(p.ConfigPath)
	updated := time.Date(2026, 11, 24, 15, 30, 5, 0, time.UTC)
	runs := []*status.Status{
		{Database: "app", From: 1, To: 2, Phase: status.PhaseCopy, Updated: updated, LagBytes: 1024, Applied: 5, RetainedWAL: 2048,
			Tables: []status.Table{{Name: "accounts", Kind: "sharded", RowsCopied: 500, RowsTotal: 1000, RowsPerSec: 250, MBPerSec: 1.5, ETASeconds: 2},
				{Name: "branches", Kind: "replicated", RowsCopied: 10, RowsTotal: 10, Done: true}}},
		{Database: "other", From: 2, To: 4, Phase: status.PhaseCheck, Updated: updated},
	}
	for _, s := range runs {
		dir := filepath.Join(base, status.DirPrefix+s.Database)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := status.Write(dir, s); err != nil {
			t.Fatal(err)
		}
	}
	got := adm.must(t, ctx, "SHOW RESHARD")
	want := []string{
		"app|copy|1|2|accounts|sharded|500|1000|250.0|1.50|2|false|1024|0.000|5|2048|0.0|2026-11-24 15:30:05|",
		"app|copy|1|2|branches|replicated|10|10|0.0|0.00|0|true|1024|0.000|5|2048|0.0|2026-11-24 15:30:05|",
		"other|check|2|4|||0|0|0.0|0.00|0|false|0|0.000|0|0|0.0|2026-11-24 15:30:05|",
	}
	if !slices.Equal(got, want) {
		t.Errorf("SHOW RESHARD:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	res, err := adm.Exec(ctx, "SHOW RESHARD").ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	var cols []string
	for _, f := range res[0].FieldDescriptions {
		cols = append(cols, f.Name)
	}
	if strings.Join(cols, ",") != "database,phase,from_shards,to_shards,table,kind,rows_copied,rows_estimate,rows_per_sec,mb_per_sec,eta_seconds,done,lag_bytes,lag_seconds,changes_applied,retained_wal_bytes,write_pause_ms,updated,error" {
		t.Errorf("SHOW RESHARD columns: %q", cols)
	}
	if help := adm.must(t, ctx, "SHOW HELP"); !slices.Contains(help, "PAUSE [database]") || !slices.Contains(help, "SHOW RESHARD") {
		t.Errorf("SHOW HELP: %q", help)
	}
}

// TestShowRoute: the console says where a statement goes and why, for a sharded database and a plain one,
// and refuses an unknown database and a missing statement with a hint.
func TestShowRoute(t *testing.T) {
	t.Parallel()
	pg, p, cfg := startAdminEnv(t, "5s")
	ctx := Ctx(t, time.Minute)
	sharded := "  - name: sh\n    shards:\n" +
		"      - primary: \"postgres://127.0.0.1:" + strconv.Itoa(pg.Port) + "/app_0\"\n" +
		"      - primary: \"postgres://127.0.0.1:" + strconv.Itoa(pg.Port) + "/app_1\"\n" +
		"    sharded_tables: [{table: accounts, column: aid, type: bigint}]\n"
	p.WriteConfig(t, strings.ReplaceAll(cfg, "%MORE%", sharded))
	adm := openConsole(t, ctx, p, false)
	adm.must(t, ctx, "RELOAD")
	// One shard owns 42 (which one is Postgres's hash's business).
	if rows := adm.must(t, ctx, "SHOW ROUTE sh SELECT * FROM accounts WHERE aid = 42"); len(rows) != 1 ||
		!strings.HasPrefix(rows[0], "sh|shard ") || !strings.HasSuffix(rows[0], "|accounts.aid = literal 42: the shards of those values") {
		t.Errorf("SHOW ROUTE of one key: %q", rows)
	}
	for _, tc := range []struct{ sql, want string }{
		{"SHOW ROUTE sh SELECT count(*) FROM accounts;", "sh|shards 0, 1, no shard key decides (a scatter, which pgshard.cross_shard may refuse), rows merged by pgshard|accounts.aid not constrained: every shard; rows of several shards merged: aggregates finished by pgshard"},
		{"SHOW ROUTE app SELECT 1", "app|shard 0 (the database has one shard and no sharded tables: every statement goes there)|"},
	} {
		rows := adm.must(t, ctx, tc.sql)
		if len(rows) != 1 || rows[0] != tc.want {
			t.Errorf("%s:\n got %q\nwant %q", tc.sql, rows, tc.want)
		}
	}
	for _, tc := range []struct{ sql, msg string }{
		{"SHOW ROUTE nope SELECT 1", `database "nope" does not exist`},
		{"SHOW ROUTE sh", "SHOW ROUTE needs a database and a statement"},
	} {
		if _, err := adm.run(ctx, tc.sql); err == nil || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: %v, want %q", tc.sql, err, tc.msg)
		}
	}
}
