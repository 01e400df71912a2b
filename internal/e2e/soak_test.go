package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgshard/pgshard/internal/pgtest"
)

// TestSoak (`make soak`, PGSHARD_SOAK=30m; skipped otherwise) runs mixed traffic through pgshard over two shards
// for a long time: pgbench's TPC-B (with two-phase commit: every transaction writes the replicated tellers and
// branches on both shards), cross-shard reads, sharded COPY, reconnect storms and cancelled statements. It samples
// pgshard's RSS, goroutines and open descriptors, and fails on a growth trend (the last third of the run against
// the second) or on any client error that is not the expected one (57014 for the cancels).
func TestSoak(t *testing.T) {
	s := os.Getenv("PGSHARD_SOAK")
	if s == "" {
		t.Skip("PGSHARD_SOAK not set (make soak)")
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		t.Fatalf("PGSHARD_SOAK: %v", err)
	}
	pg := pgtest.Start(t, pgtest.Options{Databases: []string{"bench_0", "bench_1"}, DatabaseOwner: "app",
		Users: []pgtest.UserSpec{{Name: "app", Password: "secret"}}, Settings: map[string]string{"max_prepared_transactions": "100"}})
	metricsPort, err := pgtest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	p := StartProxy(t, fmt.Sprintf(`listen: "127.0.0.1:%%PORT%%"
metrics_listen: "127.0.0.1:%d"
two_phase_log: %s
pool: {size: %d, checkout_timeout: 30s}
admin: {user: admin, password: adminpw}
users: [{name: app, password: secret}]
databases:
  - name: bench
    two_phase_commit: true
    shards:
      - primary: "postgres://127.0.0.1:%d/bench_0"
      - primary: "postgres://127.0.0.1:%d/bench_1"
    sharded_tables:
      - {table: pgbench_accounts, column: aid, type: integer}
      - {table: soak_copy, column: k, type: bigint}
    replicated_tables: [pgbench_branches, pgbench_tellers, pgbench_history]
`, metricsPort, t.TempDir()+"/2pc.log", soakPool(), pg.Port, pg.Port))
	ctx := Ctx(t, d+10*time.Minute)
	pgbench := pgTool(t, "pgbench")
	conn := []string{"-h", "127.0.0.1", "-p", strconv.Itoa(p.Port), "-U", "app"}
	if out, err := runTool(ctx, "secret", pgbench, append(append([]string{"-i", "-s", "2"}, conn...), "bench")...); err != nil {
		t.Fatalf("pgbench -i: %v\n%s", err, out)
	}
	dsn := p.DSN("bench", "app", "secret")
	setup, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := setup.Exec(ctx, "CREATE TABLE soak_copy (k bigint, v text)"); err != nil {
		t.Fatal(err)
	}
	setup.Close(ctx)

	var (
		stop     = make(chan struct{})
		wg       sync.WaitGroup
		mu       sync.Mutex
		problems []string
		counts   [4]atomic.Int64 // reads, copies, storms, cancels
	)
	// state is what the shards and pgshard are doing now: taken when a statement has been running for long, it
	// shows where it is stuck.
	state := func() string {
		activity := pg.QueryStrings(t, "postgres", `SELECT coalesce(string_agg(format('%s %s %s/%s: %s', datname, state,
			wait_event_type, wait_event, left(query, 60)), '; '), '') FROM pg_stat_activity WHERE usename = 'app' AND state <> 'idle'`)
		prepared := pg.QueryStrings(t, "postgres", "SELECT count(*) FROM pg_prepared_xacts")
		var clients, servers, pools []string
		if con, cerr := pgconn.Connect(ctx, p.DSN("pgshard", "admin", "adminpw")); cerr == nil {
			for _, show := range []struct {
				sql string
				out *[]string
			}{{"SHOW CLIENTS", &clients}, {"SHOW SERVERS", &servers}, {"SHOW POOLS", &pools}} {
				if res, err := con.Exec(ctx, show.sql).ReadAll(); err == nil && len(res) > 0 {
					for _, row := range res[0].Rows {
						var cells []string
						for _, v := range row {
							cells = append(cells, string(v))
						}
						*show.out = append(*show.out, strings.Join(cells, "|"))
					}
				}
			}
			con.Close(ctx)
		}
		return fmt.Sprintf("shards: %v; prepared: %v; pgshard's clients: %v; servers: %v; pools: %v", activity, prepared, clients, servers, pools)
	}
	// problem records a client error with the state seen while the statement was stuck (stuck), or now.
	problem := func(what string, err error, stuck string) {
		mu.Lock()
		defer mu.Unlock()
		if len(problems) < 20 {
			if stuck == "" {
				stuck = "now: " + state()
			}
			problems = append(problems, fmt.Sprintf("%s: %v (%s)", what, err, stuck))
		}
	}
	loop := func(what string, every time.Duration, f func(ctx context.Context, c *pgx.Conn) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var c *pgx.Conn
			defer func() {
				if c != nil {
					c.Close(context.Background())
				}
			}()
			for {
				select {
				case <-stop:
					return
				case <-time.After(every):
				}
				if c == nil {
					// pgx sends a CancelRequest when a context ends (its default closes the connection instead).
					cfg, err := pgx.ParseConfig(dsn)
					if err != nil {
						t.Error(err)
						return
					}
					cfg.BuildContextWatcherHandler = cancelRequestHandler
					if c, err = pgx.ConnectConfig(ctx, cfg); err != nil {
						problem(what+" connect", err, "")
						c = nil
						continue
					}
				}
				fctx, cancel := context.WithTimeout(ctx, 30*time.Second) // a soak turns a hang into an error
				stuck, seen := "", make(chan struct{})
				watch := time.AfterFunc(20*time.Second, func() { stuck = "after 20 s: " + state(); close(seen) })
				err := f(fctx, c)
				cancel()
				if !watch.Stop() {
					<-seen
				}
				if err != nil {
					problem(what, err, stuck)
					c.Close(context.Background())
					c = nil
				}
			}
		}()
	}
	loop("cross-shard read", 200*time.Millisecond, func(ctx context.Context, c *pgx.Conn) error {
		var n, sum int64
		err := c.QueryRow(ctx, "SELECT count(*), sum(abalance) FROM pgbench_accounts").Scan(&n, &sum)
		if err == nil && n != 200000 {
			err = fmt.Errorf("%d accounts, want 200000", n)
		}
		counts[0].Add(1)
		return err
	})
	loop("copy", time.Second, func(ctx context.Context, c *pgx.Conn) error {
		var b strings.Builder
		for i := 0; i < 2000; i++ {
			fmt.Fprintf(&b, "%d\trow %d\n", i, i)
		}
		if _, err := c.PgConn().CopyFrom(ctx, strings.NewReader(b.String()), "COPY soak_copy FROM STDIN"); err != nil {
			return err
		}
		_, err := c.Exec(ctx, "TRUNCATE soak_copy")
		counts[1].Add(1)
		return err
	})
	loop("cancel", 300*time.Millisecond, func(ctx context.Context, c *pgx.Conn) error {
		cctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		defer cancel()
		_, err := c.Exec(cctx, "SELECT pg_sleep(2) FROM pgbench_branches")
		var pe *pgconn.PgError
		if errors.As(err, &pe) && pe.Code == "57014" {
			counts[3].Add(1)
			return nil // cancelled on the server; the connection goes on
		}
		if err == nil {
			return errors.New("a 2 s statement was not cancelled after 100 ms")
		}
		return err
	})
	wg.Add(1)
	go func() { // reconnect storms: 200 clients log in, run one statement and leave, every 20 s
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Second):
			}
			var swg sync.WaitGroup
			for i := 0; i < 200; i++ {
				swg.Add(1)
				go func() {
					defer swg.Done()
					c, err := pgx.Connect(ctx, dsn)
					if err != nil {
						problem("storm connect", err, "")
						return
					}
					defer c.Close(ctx)
					if _, err := c.Exec(ctx, "SELECT 1"); err != nil {
						problem("storm", err, "")
					}
				}()
			}
			swg.Wait()
			counts[2].Add(1)
		}
	}()

	// pgbench runs the whole time; the samples are taken meanwhile.
	type sample struct{ rss, goroutines, fds int }
	var samples []sample
	pgbenchDone := make(chan string, 1)
	go func() {
		out, err := runTool(ctx, "secret", pgbench, append(append([]string{"-c", "8", "-j", "2", "-T", strconv.Itoa(int(d.Seconds())), "-P", "60"}, conn...), "bench")...)
		if err != nil {
			out = fmt.Sprintf("pgbench failed: %v\n%s", err, out)
		}
		pgbenchDone <- out
	}()
	var out string
	tick := time.NewTicker(10 * time.Second)
sampling:
	for {
		select {
		case out = <-pgbenchDone:
			break sampling
		case <-tick.C:
			rss, _ := p.rssKB(t)
			samples = append(samples, sample{rss: rss, goroutines: metric(t, metricsPort, "go_goroutines"), fds: metric(t, metricsPort, "process_open_fds")})
		}
	}
	tick.Stop()
	close(stop)
	wg.Wait()
	t.Logf("%s", out)
	t.Logf("cross-shard reads %d, copies %d, reconnect storms %d, cancels %d", counts[0].Load(), counts[1].Load(), counts[2].Load(), counts[3].Load())
	if strings.HasPrefix(out, "pgbench failed") {
		t.Error("pgbench failed")
	}
	if m := regexp.MustCompile(`number of failed transactions: (\d+)`).FindStringSubmatch(out); m != nil && m[1] != "0" {
		t.Errorf("pgbench reports %s failed transactions", m[1])
	}
	for _, pr := range problems {
		t.Errorf("client error: %s", pr)
	}

	// A trend: the last third's averages against the second third's (the first is warm-up).
	if len(samples) < 9 {
		t.Fatalf("only %d samples", len(samples))
	}
	third := len(samples) / 3
	avg := func(ss []sample) (rss, g, fds float64) {
		for _, s := range ss {
			rss += float64(s.rss)
			g += float64(s.goroutines)
			fds += float64(s.fds)
		}
		n := float64(len(ss))
		return rss / n, g / n, fds / n
	}
	r2, g2, f2 := avg(samples[third : 2*third])
	r3, g3, f3 := avg(samples[2*third:])
	t.Logf("RSS %.0f -> %.0f MB, goroutines %.0f -> %.0f, descriptors %.0f -> %.0f (second third -> last third of %d samples)",
		r2/1024, r3/1024, g2, g3, f2, f3, len(samples))
	if r3 > r2*1.15+8<<10 {
		t.Errorf("RSS grows: %.0f MB -> %.0f MB", r2/1024, r3/1024)
	}
	if g3 > g2*1.2+20 {
		t.Errorf("goroutines grow: %.0f -> %.0f", g2, g3)
	}
	if f3 > f2*1.2+20 {
		t.Errorf("descriptors grow: %.0f -> %.0f", f2, f3)
	}
}

// metric reads one unlabelled figure from pgshard's /metrics.
func metric(t *testing.T, port int, name string) int {
	t.Helper()
	resp, err := http.Get("http://127.0.0.1:" + strconv.Itoa(port) + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	m := regexp.MustCompile(`(?m)^` + name + ` (\d+)$`).FindSubmatch(b)
	if m == nil {
		t.Fatalf("/metrics has no %s", name)
	}
	n, _ := strconv.Atoi(string(m[1]))
	return n
}

// soakPool is pool.size per shard: PGSHARD_SOAK_POOL, 10 by default (fewer makes the clients contend more).
func soakPool() int {
	if n, err := strconv.Atoi(os.Getenv("PGSHARD_SOAK_POOL")); err == nil && n > 0 {
		return n
	}
	return 10
}
