package e2e

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgshard/pgshard/internal/pgtest"
)

// Cancelling the shards whose answer is no longer needed (loop/cancel.go): once a merged LIMIT is satisfied,
// or one shard failed, the shards still running get a CancelRequest, so the client has its answer at once
// instead of when the slowest shard is through, and the pool is left clean.
//
// Each shard's rows say how long producing them takes (pause, in seconds, through paced()): shard 0 is fast,
// shards 1 and 2 hold rows that take cancelSlow seconds each. Without the cancel the statements below take at
// least that long; with it, well under cancelFast.

const (
	cancelSlow = 20.0            // seconds a slow row takes
	cancelFast = 5 * time.Second // an answer must come sooner than this
)

const cancelConfig = `
listen: "127.0.0.1:%PORT%"
shutdown_timeout: 5s
pool:
  mode: transaction
  size: 2
  checkout_timeout: 10s
users:
  - name: app
    password: secret
databases:
  - name: lim
    shards:
      - primary: "postgres://127.0.0.1:%P%/lim_0"
      - primary: "postgres://127.0.0.1:%P%/lim_1"
      - primary: "postgres://127.0.0.1:%P%/lim_2"
    sharded_tables:
      - column: k
        type: bigint
`

// cancelSchema is on every shard. paced returns k after sleeping pause seconds; boom fails (division by zero)
// when pause is 0 and otherwise sleeps like paced.
//
// big: shard i holds keys i*100000+1 .. i*100000+3000 with a 100-byte pad. On shard 0 every row is fast; on
// shards 1 and 2 the first 300 rows in key order are fast (more than Postgres's 8 kB output buffer, so they
// reach pgshard at once) and the rest slow. one: one row per shard, fast on shard 0, slow on the others.
const cancelSchema = `
CREATE TABLE big (k bigint PRIMARY KEY, pad text NOT NULL, pause float8 NOT NULL);
CREATE TABLE one (k bigint PRIMARY KEY, pause float8 NOT NULL);
CREATE FUNCTION paced(k bigint, pause float8) RETURNS bigint LANGUAGE plpgsql AS
  $$ BEGIN IF pause > 0 THEN PERFORM pg_sleep(pause); END IF; RETURN k; END $$;
CREATE FUNCTION boom(k bigint, pause float8) RETURNS bigint LANGUAGE plpgsql AS
  $$ BEGIN IF pause = 0 THEN RETURN k / 0; END IF; PERFORM pg_sleep(pause); RETURN k; END $$;
`

type cancelEnv struct {
	cluster *pgtest.Cluster
	proxy   *Proxy
	dbs     []string
}

func startCancelEnv(t *testing.T) *cancelEnv {
	t.Helper()
	ctx := Ctx(t, time.Minute)
	e := &cancelEnv{dbs: []string{"lim_0", "lim_1", "lim_2"}}
	e.cluster = pgtest.Start(t, pgtest.Options{Databases: e.dbs, DatabaseOwner: "app",
		Users: []pgtest.UserSpec{{Name: "app", Password: "secret"}}})
	for i, db := range e.dbs {
		// A statement left running by a failed cancel ends anyway, after the test would have failed.
		e.cluster.Exec(t, "postgres", fmt.Sprintf("ALTER DATABASE %s SET statement_timeout = '60s'", db))
		slow := 0.0
		if i > 0 {
			slow = cancelSlow
		}
		sql := cancelSchema + fmt.Sprintf(`
INSERT INTO big SELECT %[1]d*100000 + g, repeat('x', 100), CASE WHEN g > 300 THEN %[2]g ELSE 0 END FROM generate_series(1, 3000) g;
INSERT INTO one VALUES (%[1]d, %[2]g);
ANALYZE;`, i, slow)
		conn, err := pgx.Connect(ctx, e.cluster.DSN(db, "app", "secret"))
		if err != nil {
			t.Fatalf("shard %d: %v", i, err)
		}
		_, err = conn.Exec(ctx, sql)
		_ = conn.Close(ctx)
		if err != nil {
			t.Fatalf("schema on shard %d: %v", i, err)
		}
	}
	e.proxy = StartProxy(t, strings.ReplaceAll(cancelConfig, "%P%", strconv.Itoa(e.cluster.Port)))
	return e
}

func (e *cancelEnv) connect(t *testing.T, ctx context.Context, mode pgx.QueryExecMode) *pgx.Conn {
	t.Helper()
	cfg, err := pgx.ParseConfig(e.proxy.DSN("lim", "app", "secret"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.DefaultQueryExecMode = mode
	c, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatalf("connect through pgshard: %v", err)
	}
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	return c
}

// busyBackends lists the shards' backends of role app that are not idle (what pgshard's server connections
// run, as pg_stat_activity shows it).
func (e *cancelEnv) busyBackends(t *testing.T) []string {
	t.Helper()
	rows := e.cluster.QueryStrings(t, "postgres", `SELECT datname || ' ' || state || ': ' || query FROM pg_stat_activity
WHERE usename = 'app' AND backend_type = 'client backend' AND state <> 'idle' AND datname LIKE 'lim%'`)
	out := make([]string, len(rows))
	for i, r := range rows {
		out[i] = r[0]
	}
	return out
}

// clean checks the pool is left clean: no shard backend runs anything or sits in a transaction, and the
// connection answers statements on every shard at once (a cancel arriving late would fail one of them).
func (e *cancelEnv) clean(t *testing.T, ctx context.Context, c *pgx.Conn, what string) {
	t.Helper()
	if busy := e.busyBackends(t); len(busy) > 0 {
		t.Errorf("%s: shard backends still busy: %q", what, busy)
	}
	for i := range 20 {
		var n int64
		if err := c.QueryRow(ctx, "SELECT count(*) FROM big").Scan(&n); err != nil || n != 9000 {
			t.Fatalf("%s: statement %d after it: count %d, %v", what, i+1, n, err)
		}
	}
}

var cancelModes = []struct {
	name string
	mode pgx.QueryExecMode
}{
	{"simple", pgx.QueryExecModeSimpleProtocol},
	{"extended", pgx.QueryExecModeExec},
	{"prepared", pgx.QueryExecModeCacheStatement},
}

func TestCancelOtherShards(t *testing.T) {
	t.Parallel()
	e := startCancelEnv(t)
	t.Run("HeldShards", func(t *testing.T) { testHeldShards(t, e) })
	for _, m := range cancelModes {
		t.Run(m.name, func(t *testing.T) {
			ctx := Ctx(t, 2*time.Minute)
			c := e.connect(t, ctx, m.mode)
			timed := func(what string, f func(ctx context.Context) error) error {
				t.Helper()
				ctx, cancel := context.WithTimeout(ctx, 2*cancelFast)
				defer cancel()
				start := time.Now()
				err := f(ctx)
				if d := time.Since(start); d > cancelFast {
					t.Errorf("%s took %v: the slow shards were not cancelled", what, d.Round(time.Millisecond))
				} else {
					t.Logf("%s: %v", what, d.Round(time.Millisecond))
				}
				return err
			}

			for rep := range 3 {
				// ORDER BY with a LIMIT the fast shard fills: shards 1 and 2 sent their first rows and are
				// busy with the slow ones when the LIMIT is satisfied.
				var keys []int64
				err := timed("ORDER BY k LIMIT 1000", func(ctx context.Context) error {
					rows, err := c.Query(ctx, "SELECT k, pad, paced(k, pause) AS p FROM big ORDER BY k LIMIT 1000")
					if err != nil {
						return err
					}
					keys, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (int64, error) {
						var k, p int64
						var pad string
						err := r.Scan(&k, &pad, &p)
						if err == nil && (k != p || len(pad) != 100) {
							err = fmt.Errorf("row %d: p %d, pad of %d bytes", k, p, len(pad))
						}
						return k, err
					})
					return err
				})
				if err != nil {
					t.Fatalf("ORDER BY k LIMIT 1000: %v", err)
				}
				if len(keys) != 1000 || keys[0] != 1 || keys[999] != 1000 {
					t.Fatalf("ORDER BY k LIMIT 1000: %d rows, from %v", len(keys), keys[:min(len(keys), 3)])
				}
				for i, k := range keys {
					if k != int64(i+1) {
						t.Fatalf("ORDER BY k LIMIT 1000: row %d is key %d", i, k)
					}
				}
				e.clean(t, ctx, c, fmt.Sprintf("ORDER BY k LIMIT 1000 (%d)", rep+1))

				// A LIMIT without ORDER BY: the fast shard's row is the answer; the others have sent nothing.
				var n int
				err = timed("LIMIT 1", func(ctx context.Context) error {
					rows, err := c.Query(ctx, "SELECT paced(k, pause) FROM one LIMIT 1")
					if err != nil {
						return err
					}
					got, err := pgx.CollectRows(rows, pgx.RowTo[int64])
					if err == nil && (len(got) != 1 || got[0] != 0) {
						err = fmt.Errorf("rows %v, want the fast shard's key 0", got)
					}
					n = len(got)
					return err
				})
				if err != nil || n != 1 {
					t.Fatalf("LIMIT 1: %v", err)
				}
				e.clean(t, ctx, c, fmt.Sprintf("LIMIT 1 (%d)", rep+1))

				// An error on shard 0 while shards 1 and 2 run a long statement: the client gets it at once.
				err = timed("error on one shard", func(ctx context.Context) error {
					rows, err := c.Query(ctx, "SELECT boom(k, pause) FROM one")
					if err == nil {
						_, err = pgx.CollectRows(rows, pgx.RowTo[int64])
					}
					return err
				})
				wantCode(t, "a statement failing on one shard", err, "22012")
				e.clean(t, ctx, c, fmt.Sprintf("error on one shard (%d)", rep+1))
			}

			// Slow shards that finish about when the grace period ends: cancels land just before, during and
			// after the end of their statement. None may reach the client, nor the statement after.
			cancels := strings.Count(e.proxy.Log(), "cancelling a shard")
			for i := range 150 {
				pause := float64(i%30) / 2500 // 0 to 11.6 ms, around cancelGrace
				var got []int64
				rows, err := c.Query(ctx, "SELECT paced(k, pause * $1) FROM one LIMIT 1", pause/cancelSlow)
				if err == nil {
					got, err = pgx.CollectRows(rows, pgx.RowTo[int64])
				}
				if err != nil || len(got) != 1 {
					t.Fatalf("LIMIT 1 with shards taking %.1f ms: %v, %v", pause*1000, got, err)
				}
				var n int64
				if err := c.QueryRow(ctx, "SELECT count(*) FROM big").Scan(&n); err != nil || n != 9000 {
					t.Fatalf("the statement after LIMIT 1 with shards taking %.1f ms: %d, %v", pause*1000, n, err)
				}
			}
			t.Logf("LIMIT 1 racing the shards' end: %d cancels in 150 statements", strings.Count(e.proxy.Log(), "cancelling a shard")-cancels)
			e.clean(t, ctx, c, "LIMIT 1 racing the shards' end")

			// In a transaction block nothing is cancelled (it would abort the transaction on those shards):
			// the shards are waited for, and the transaction goes on.
			tx, err := c.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			var k int64
			if err := tx.QueryRow(ctx, "SELECT k FROM one WHERE paced(k, pause / 40) >= 0 LIMIT 1").Scan(&k); err != nil {
				t.Fatalf("LIMIT 1 in a transaction: %v", err)
			}
			if d := time.Since(start); d < time.Duration(cancelSlow/40*float64(time.Second)) {
				t.Errorf("LIMIT 1 in a transaction took %v: the slow shards were not waited for", d)
			}
			var n int64
			if err := tx.QueryRow(ctx, "SELECT count(*) FROM big").Scan(&n); err != nil || n != 9000 {
				t.Fatalf("the transaction after LIMIT 1: %d, %v", n, err)
			}
			if err := tx.Commit(ctx); err != nil {
				t.Fatalf("COMMIT: %v", err)
			}
			e.clean(t, ctx, c, "the transaction")
		})
	}
}

// testHeldShards: an ORDER BY over every row where shard 2's first row takes 0.3 s. Shards 0 and 1 send their
// 3,000 rows meanwhile; the merge holds them and stops reading those shards past 1,024 queued rows, and reads
// them again as it uses their rows once shard 2's come. Every row comes out, in order.
func testHeldShards(t *testing.T, e *cancelEnv) {
	ctx := Ctx(t, time.Minute)
	for _, m := range cancelModes {
		c := e.connect(t, ctx, m.mode)
		for _, order := range []string{"k", "k DESC"} {
			start := time.Now()
			rows, err := c.Query(ctx, `SELECT k, pad, paced(k, CASE WHEN k IN (200001, 203000) THEN 0.3 ELSE 0 END) AS p
FROM big ORDER BY `+order)
			if err != nil {
				t.Fatalf("%s: ORDER BY %s: %v", m.name, order, err)
			}
			keys, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (int64, error) {
				var k, p int64
				var pad string
				err := r.Scan(&k, &pad, &p)
				return k, err
			})
			if err != nil {
				t.Fatalf("%s: ORDER BY %s: %v", m.name, order, err)
			}
			want := make([]int64, 0, 9000)
			for sh := range int64(3) {
				for g := range int64(3000) {
					want = append(want, sh*100000+g+1)
				}
			}
			if order != "k" {
				slices.Reverse(want)
			}
			if !slices.Equal(keys, want) {
				t.Fatalf("%s: ORDER BY %s: %d rows, not the 9000 keys in order", m.name, order, len(keys))
			}
			t.Logf("%s: ORDER BY %s: 9000 rows in order, %v", m.name, order, time.Since(start).Round(time.Millisecond))
		}
		e.clean(t, ctx, c, m.name+": ORDER BY with shards held")
	}
}
