package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgshard/pgshard/internal/pgtest"
)

// The coordinator step through the real binary, beyond the answers the differential test compares: in every
// protocol mode, inside a transaction (its own uncommitted writes seen, its snapshot kept), a shard's refusal
// passed on, the max_intermediate_result bound, and server connections clean afterwards.
func TestCoordinatorStep(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("starts Postgres")
	}
	pg := pgtest.Start(t, pgtest.Options{Databases: []string{"co_0", "co_1"}, DatabaseOwner: "app",
		Users: []pgtest.UserSpec{{Name: "app", Password: "secret"}, {Name: "other", Password: "secret"}}})
	for _, db := range []string{"co_0", "co_1"} {
		pg.Exec(t, db, `CREATE TABLE kv (id int PRIMARY KEY, v int, note text);
			CREATE TABLE secret (id int PRIMARY KEY, v int);
			GRANT ALL ON kv TO app, other; GRANT ALL ON secret TO app`)
	}
	p := StartProxy(t, fmt.Sprintf(`listen: "127.0.0.1:%%PORT%%"
pool: {size: 2}
limits: {max_intermediate_result: 8kB}
users: [{name: app, password: secret}, {name: other, password: secret}]
databases:
  - name: co
    shards: [{primary: "postgres://127.0.0.1:%d/co_0"}, {primary: "postgres://127.0.0.1:%d/co_1"}]
    sharded_tables: [{table: kv, column: id, type: integer}, {table: secret, column: id, type: integer}]
`, pg.Port, pg.Port))
	ctx := Ctx(t, 2*time.Minute)
	load, err := pgx.Connect(ctx, p.DSN("co", "app", "secret"))
	if err != nil {
		t.Fatal(err)
	}
	defer load.Close(ctx)
	// 40 rows over both shards, notes with the characters an array literal and a dollar quote escape.
	for i := 1; i <= 40; i++ {
		if _, err := load.Exec(ctx, "INSERT INTO kv VALUES ($1, $2, $3)", i, i%7, fmt.Sprintf(`n"%d\ $pgshard$ '`, i%3)); err != nil {
			t.Fatal(err)
		}
	}

	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeExec, pgx.QueryExecModeCacheStatement} {
		t.Run(mode.String(), func(t *testing.T) {
			cfg, err := pgx.ParseConfig(p.DSN("co", "app", "secret"))
			if err != nil {
				t.Fatal(err)
			}
			cfg.DefaultQueryExecMode = mode
			c, err := pgx.ConnectConfig(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close(ctx)
			expectRows(t, ctx, c, "expressions over aggregates", []string{"7|120|3"},
				"SELECT count(DISTINCT v), sum(v) * 1, count(DISTINCT note) FROM kv")
			expectOrderedRows(t, ctx, c, "a window with a parameter", []string{"38|1", "39|2", "40|3"},
				"SELECT id, row_number() OVER (ORDER BY id) FROM kv WHERE id > $1 ORDER BY id", 37)

			// In a transaction: its own write is seen, and after a refusal the transaction is failed.
			tx, err := c.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := tx.Exec(ctx, "UPDATE kv SET v = 100 WHERE id = $1", 5); err != nil {
				t.Fatal(err)
			}
			var spread int
			if err := tx.QueryRow(ctx, "SELECT max(v) - min(v) FROM kv").Scan(&spread); err != nil || spread != 100 {
				t.Errorf("in a transaction after an UPDATE: max - min = %d, %v; want 100", spread, err)
			}
			if _, err := tx.Exec(ctx, "SELECT count(DISTINCT v) FROM kv WHERE v / 0 > 1"); pgCode(err) != "22012" {
				t.Errorf("a coordinated statement that fails: %v, want 22012", err)
			}
			if _, err := tx.Exec(ctx, "SELECT 1"); pgCode(err) != "25P02" {
				t.Errorf("the transaction after the failed statement: %v, want 25P02", err)
			}
			if err := tx.Rollback(ctx); err != nil {
				t.Fatal(err)
			}
			expectRows(t, ctx, c, "the rolled back write is gone", []string{"6"}, "SELECT max(v) - min(v) FROM kv")

			// A REPEATABLE READ transaction's gathers read its snapshot on every shard, as one Postgres would.
			rr, err := c.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead})
			if err != nil {
				t.Fatal(err)
			}
			const distinct = "SELECT count(DISTINCT id) FROM kv"
			var before, after int
			if err := rr.QueryRow(ctx, distinct).Scan(&before); err != nil {
				t.Fatal(err)
			}
			for _, id := range []int{1001, 1002, 1003, 1004} { // on both shards
				if _, err := load.Exec(ctx, "INSERT INTO kv VALUES ($1, 0, 'later')", id); err != nil {
					t.Fatal(err)
				}
			}
			if err := rr.QueryRow(ctx, distinct).Scan(&after); err != nil || after != before {
				t.Errorf("REPEATABLE READ: %d rows, then %d (%v) after another client's inserts", before, after, err)
			}
			if err := rr.Commit(ctx); err != nil {
				t.Fatal(err)
			}
			if _, err := load.Exec(ctx, "DELETE FROM kv WHERE id > 1000"); err != nil {
				t.Fatal(err)
			}
		})
	}

	// EXPLAIN shows the coordinating shard's plan, over no rows; with ANALYZE, over the rows gathered.
	for sql, want := range map[string]string{
		"EXPLAIN (COSTS OFF) SELECT count(DISTINCT v) FROM kv WHERE id > 3":                      "Function Scan on unnest kv",
		"EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) SELECT count(DISTINCT v) FROM kv WHERE id > 3": "(actual rows=37 loops=1)",
	} {
		plan, err := queryStrings(ctx, load, sql)
		if err != nil || !strings.Contains(fmt.Sprint(plan), want) {
			t.Errorf("%s: %v %v, want %q in the plan", sql, plan, err, want)
		}
	}

	// A shard's refusal of the gather (here a privilege) is the client's error; a gather past the bound gets
	// 54000 naming the setting. Either way the connection, and its server connections, go on.
	other, err := pgx.Connect(ctx, p.DSN("co", "other", "secret"))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close(ctx)
	expectCode(t, ctx, other, "a gather the shards refuse", "42501", "SELECT count(DISTINCT v) FROM secret")
	for i := 41; i <= 400; i++ {
		if _, err := load.Exec(ctx, "INSERT INTO kv VALUES ($1, $2, 'a longer note to pass the bound sooner')", i, i); err != nil {
			t.Fatal(err)
		}
	}
	expectCode(t, ctx, load, "a gather past max_intermediate_result", "54000", "SELECT count(DISTINCT v) FROM kv")
	expectRows(t, ctx, load, "a key still decides one shard", []string{"40|1"}, "SELECT id, count(DISTINCT v) FROM kv WHERE id = 40 GROUP BY id")
	expectRows(t, ctx, other, "the other user goes on", []string{"400"}, "SELECT count(*) FROM kv")
	for _, db := range []string{"co_0", "co_1"} {
		if n := pg.QueryString(t, db, "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND state LIKE 'idle in%'"); n != "0" {
			t.Errorf("%s: %s server connections left in a transaction", db, n)
		}
	}
}
