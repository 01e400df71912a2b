package e2e

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgshard/pgshard/internal/pgtest"
)

// The pass-through path's cost, counted rather than timed (a timed test on a shared machine only measures the
// machine): one client runs a fixed number of one-round-trip transactions through pgshard in transaction mode,
// and the test reads, from the outside, how many heap allocations (go_memstats_mallocs_total on /metrics) and
// read and write system calls (/proc/<pid>/io) pgshard made for them. Steady state allocates nothing per
// transaction, and a round trip writes once to the server and once to the client: in a database of one shard,
// and for a statement of a sharded database that its key routes to one shard (whose unnamed Parse pgshard
// answers itself, holding that reply for the server's answers). A change that adds an allocation or a write
// per transaction fails here, whatever the machine's speed.
func TestHotPathCounts(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("starts Postgres")
	}
	pg := pgtest.Start(t, pgtest.Options{Databases: []string{"app_0", "app_1"}, DatabaseOwner: "app",
		Users: []pgtest.UserSpec{{Name: "app", Password: "secret"}}})
	for _, db := range []string{"app_0", "app_1"} {
		pg.Exec(t, db, "CREATE TABLE kv (id int PRIMARY KEY, v int); GRANT ALL ON kv TO app")
	}
	metricsPort, err := pgtest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	p := StartProxy(t, fmt.Sprintf(`listen: "127.0.0.1:%%PORT%%"
metrics_listen: "127.0.0.1:%d"
pool: {size: 1}
users: [{name: app, password: secret}]
databases:
  - {name: app, shards: [{primary: "postgres://127.0.0.1:%d/app_0"}]}
  - name: sharded
    shards: [{primary: "postgres://127.0.0.1:%d/app_0"}, {primary: "postgres://127.0.0.1:%d/app_1"}]
    sharded_tables: [{table: kv, column: id, type: integer}]
`, metricsPort, pg.Port, pg.Port, pg.Port))
	ctx := Ctx(t, 2*time.Minute)
	const n = 2000
	for _, db := range []struct{ name, sql string }{
		{"app", "SELECT $1::int"},
		{"sharded", "SELECT count(*)::int + $1 FROM kv WHERE id = $1"},
	} {
		for _, mode := range []struct {
			name string
			exec pgx.QueryExecMode
		}{
			{"simple", pgx.QueryExecModeSimpleProtocol},
			{"extended", pgx.QueryExecModeExec},
			{"prepared", pgx.QueryExecModeCacheStatement},
		} {
			t.Run(db.name+"/"+mode.name, func(t *testing.T) {
				cfg, err := pgx.ParseConfig(p.DSN(db.name, "app", "secret"))
				if err != nil {
					t.Fatal(err)
				}
				cfg.DefaultQueryExecMode = mode.exec
				c, err := pgx.ConnectConfig(ctx, cfg)
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close(ctx)
				run := func(k int) {
					for i := 0; i < k; i++ {
						var v int
						if err := c.QueryRow(ctx, db.sql, i).Scan(&v); err != nil || v != i {
							t.Fatalf("transaction %d: %d %v", i, v, err)
						}
					}
				}
				run(500) // warm up: buffers grown, the statement prepared and described
				a0 := metric(t, metricsPort, "go_memstats_mallocs_total")
				r0, w0 := procIO(t, p.cmd.Process.Pid)
				run(n)
				r1, w1 := procIO(t, p.cmd.Process.Pid)
				a1 := metric(t, metricsPort, "go_memstats_mallocs_total")
				allocs := float64(a1-a0) / n
				reads, writes := float64(r1-r0)/n, float64(w1-w0)/n
				t.Logf("%s: per transaction %.3f allocations, %.2f read and %.2f write system calls (%d transactions)", mode.name, allocs, reads, writes, n)
				// The background (timers, the /metrics request itself) allocates a little whatever the traffic. A
				// sharded database's simple Query carries its key in its text, new each time: routing it looks the
				// text up in the plan cache by its shape, which costs an allocation.
				ceiling := 0.5
				if db.name == "sharded" && mode.name == "simple" {
					ceiling = 2
				}
				if allocs >= ceiling {
					t.Errorf("%.2f allocations per transaction on the pass-through path; steady state allocates under %.1f", allocs, ceiling)
				}
				if writes > 2.05 {
					t.Errorf("%.2f write system calls per transaction; a round trip needs one to the server and one to the client", writes)
				}
				if reads > 4.05 {
					t.Errorf("%.2f read system calls per transaction; a round trip needs one from the client and one from the server (and, at most, one more of each that finds nothing)", reads)
				}
			})
		}
	}
}

// procIO returns the read and write system calls process pid made so far (/proc/<pid>/io syscr, syscw).
func procIO(t *testing.T, pid int) (reads, writes int64) {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid))
	if err != nil {
		t.Skipf("cannot read /proc/%d/io: %v", pid, err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ": ")
		if !ok {
			continue
		}
		n, _ := strconv.ParseInt(v, 10, 64)
		switch k {
		case "syscr":
			reads = n
		case "syscw":
			writes = n
		}
	}
	return reads, writes
}
