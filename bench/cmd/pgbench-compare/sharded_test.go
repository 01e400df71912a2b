package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgshard/pgshard/bench/internal/benchkit"
	"github.com/pgshard/pgshard/internal/pgtest"
)

func TestSampleKeys(t *testing.T) {
	keys := sampleKeys(400, 1_000_000)
	if len(keys) != 400 || keys[0] != 1 || keys[1] != 1_000_000 {
		t.Fatalf("got %d keys starting %v", len(keys), keys[:2])
	}
	seen := map[int64]bool{}
	for _, k := range keys {
		if k < 1 || k > 1_000_000 || seen[k] {
			t.Fatalf("key %d out of range or repeated", k)
		}
		seen[k] = true
	}
	if again := sampleKeys(400, 1_000_000); again[200] != keys[200] {
		t.Error("the sample differs between runs")
	}
	if small := sampleKeys(400, 10); len(small) != 10 {
		t.Errorf("10 accounts: %d keys", len(small))
	}
}

func TestShardedConfig(t *testing.T) {
	e := &Env{PG: &pgtest.Cluster{Port: 5999}, Shards: &ShardSetup{ConfigType: "bigint"}}
	want := `  - name: app
    shards:
      - primary: "postgres://127.0.0.1:5999/sharded_0"
      - primary: "postgres://127.0.0.1:5999/sharded_1"
    sharded_tables:
      - table: pgbench_accounts
        column: aid
        type: bigint
    replicated_tables: [pgbench_branches, pgbench_tellers, pgbench_history]
`
	if got := e.shardedConfig(); got != want {
		t.Fatalf("got:\n%s\nwant:\n%s", got, want)
	}
	e.PoolSize = 10
	if e.poolSize(true) != 10 || e.poolSize(false) != 10 {
		t.Error("without -shard-pool, pgshard's pool is -pool in every scenario")
	}
	e.ShardPoolSize = 5
	if e.poolSize(true) != 5 || e.poolSize(false) != 10 {
		t.Error("-shard-pool sets pgshard's pool in the sharded scenarios only")
	}
}

// TestShardSetupAndRoutingCheck fills the shards from a pgbench -i -s 1 reference and checks, by asking Postgres
// (a hash-partitioned table of its own on each shard), that every account sits where hash partitioning puts it.
// Then it runs the routing check against stand-ins for pgshard: the reference database (every key answers one
// row: PASS) and shard 0 alone (what a proxy without routing does: about half the keys answer nothing: FAIL).
func TestShardSetupAndRoutingCheck(t *testing.T) {
	pg := pgtest.Start(t, pgtest.Options{
		Databases:     []string{shardDB},
		DatabaseOwner: appUser,
		Users:         []pgtest.UserSpec{{Name: appUser, Password: appPassword}},
	})
	e := &Env{PG: pg, PGBinDir: pg.BinDir, Pgbench: filepath.Join(pg.BinDir, "pgbench"), PoolSize: 10}
	if _, err := os.Stat(e.Pgbench); err != nil {
		p, err := exec.LookPath("pgbench")
		if err != nil {
			t.Skip("no pgbench")
		}
		e.Pgbench = p
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := e.initData(ctx, 1); err != nil {
		t.Fatal(err)
	}
	setup, err := e.setupShards(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	e.Shards = setup
	if setup.AidType != "integer" || setup.ConfigType != "integer" || setup.ReferenceCount != 100000 ||
		len(setup.Accounts) != 2 || setup.Accounts[0]+setup.Accounts[1] != 100000 {
		t.Fatalf("set-up: %+v", setup)
	}
	if d := setup.Describe(); !strings.Contains(d, "shard 1 = database sharded_1 (") || !strings.Contains(d, "(20 in all)") {
		t.Errorf("description: %s", d)
	}

	for i, db := range shardedDBs {
		conn, err := pgx.Connect(ctx, pg.DSN(db, appUser, appPassword))
		if err != nil {
			t.Fatal(err)
		}
		// The oracle: a real hash-partitioned table; Postgres itself puts each aid into partition 0 or 1.
		_, err = conn.Exec(ctx, `CREATE TEMP TABLE oracle (k integer) PARTITION BY HASH (k);
CREATE TEMP TABLE oracle_0 PARTITION OF oracle FOR VALUES WITH (MODULUS 2, REMAINDER 0);
CREATE TEMP TABLE oracle_1 PARTITION OF oracle FOR VALUES WITH (MODULUS 2, REMAINDER 1);
INSERT INTO oracle SELECT g FROM generate_series(1, 100000) g`)
		var misplaced, missing, branches, tellers, pkeys int
		if err == nil {
			err = conn.QueryRow(ctx, `SELECT
  (SELECT count(*) FROM pgbench_accounts a WHERE NOT EXISTS (SELECT FROM oracle_`+strconv.Itoa(i)+` o WHERE o.k = a.aid)),
  (SELECT count(*) FROM oracle_`+strconv.Itoa(i)+` o WHERE NOT EXISTS (SELECT FROM pgbench_accounts a WHERE a.aid = o.k)),
  (SELECT count(*) FROM pgbench_branches), (SELECT count(*) FROM pgbench_tellers),
  (SELECT count(*) FROM pg_constraint WHERE contype = 'p' AND conrelid::regclass::text LIKE 'pgbench_%')`).
				Scan(&misplaced, &missing, &branches, &tellers, &pkeys)
		}
		conn.Close(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if misplaced != 0 || missing != 0 || branches != 1 || tellers != 10 || pkeys != 3 {
			t.Errorf("shard %d: %d accounts not in hash partition %d, %d of its accounts missing, %d branches, "+
				"%d tellers, %d primary keys", i, misplaced, i, missing, branches, tellers, pkeys)
		}
	}

	standIn := func(db string) (*Proc, func()) {
		p, end := benchkit.StandIn("stand-in", pg.Port)
		return &Proc{Proc: p, DB: db}, end
	}
	reference, _ := standIn(shardDB)
	shard0, _ := standIn(shardedDBs[0])
	for _, mode := range []string{"simple", "extended"} {
		if c := e.routingCheck(ctx, reference, mode); !c.Pass || !c.Correctness {
			t.Errorf("-M %s, the unsharded reference as pgshard: %+v", mode, c)
		}
		c := e.routingCheck(ctx, shard0, mode)
		if c.Pass || !strings.Contains(c.Detail, "keys wrong, e.g.") || !strings.Contains(c.Detail, "(on shard 1): count(*) = 0, SELECT returned aids []") {
			t.Errorf("-M %s, shard 0 alone as pgshard (no routing) passes or says the wrong thing: %+v", mode, c)
		}
		t.Logf("-M %s, shard 0 alone: %s: %s", mode, c.What, c.Detail)
		if !strings.Contains(c.What, " on shard 0, ") {
			t.Errorf("the check does not say how the keys split: %s", c.What)
		}
	}
	gone, end := standIn(shardDB)
	end()
	if c := e.routingCheck(ctx, gone, "simple"); c.Pass || !strings.Contains(c.Detail, "not running") {
		t.Errorf("a stopped pgshard: %+v", c)
	}
}
