package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/pgshard/pgshard/bench/internal/benchkit"

	"github.com/jackc/pgx/v5"
)

// The sharded scenarios compare pgshard over two shards with PgBouncer and direct connections to the unsharded
// reference database (app_0, filled by `pgbench -i`). The shards are two more databases of the same cluster,
// shardedDBs[i] holding exactly the pgbench_accounts rows that Postgres's own hash partitioning puts in partition
// FOR VALUES WITH (MODULUS 2, REMAINDER i), and the other pgbench tables complete (replicated).
const shardCount = 2

var shardedDBs = []string{"sharded_0", "sharded_1"}

// replicatedTables are pgbench's tables that every shard holds in full.
var replicatedTables = []string{"pgbench_branches", "pgbench_tellers", "pgbench_history"}

// ShardSetup describes the shards the sharded scenarios run on; it goes into the report.
type ShardSetup struct {
	Databases      []string `json:"databases"`
	Accounts       []int64  `json:"accounts"` // pgbench_accounts rows per shard
	AidType        string   `json:"aid_type"` // pgbench_accounts.aid's SQL type (integer; bigint from scale 20000)
	ConfigType     string   `json:"config_type"`
	SetupSeconds   float64  `json:"setup_seconds"`
	SameCluster    bool     `json:"same_cluster"`
	PoolPerShard   int      `json:"pool_size_per_shard"` // pgshard's pool.size in the sharded scenarios
	ReferencePool  int      `json:"reference_pool_size"` // PgBouncer's default_pool_size
	ReferenceCount int64    `json:"reference_accounts"`
}

// Describe is the sentence the report prints under the sharded scenarios' descriptions.
func (s *ShardSetup) Describe() string {
	if s == nil {
		return ""
	}
	var parts []string
	for i, db := range s.Databases {
		parts = append(parts, fmt.Sprintf("shard %d = database %s (%s accounts)", i, db, benchkit.Thousands(float64(s.Accounts[i]))))
	}
	where := "in the same Postgres cluster as the reference"
	if !s.SameCluster {
		where = "in a second Postgres cluster"
	}
	return fmt.Sprintf("Shards: %s, %s; pgbench_branches, pgbench_tellers and pgbench_history complete on both. "+
		"pgshard pools %d server connections per shard (%d in all), PgBouncer %d to the reference.",
		strings.Join(parts, ", "), where, s.PoolPerShard, s.PoolPerShard*len(s.Databases), s.ReferencePool)
}

// setupShards creates the shard databases and fills them from the reference database app_0:
//   - the schema with pgbench's own DDL (`pgbench -i -I dt`), so types and storage options are the reference's;
//   - pgbench_branches, pgbench_tellers and pgbench_history copied in full to every shard;
//   - pgbench_accounts split by Postgres itself: `COPY (SELECT * ... WHERE satisfies_hash_partition(p, 2, i, aid))`
//     on the reference, where p is an empty temporary table PARTITION BY HASH (aid) of aid's type, streamed
//     with binary COPY into shard i;
//   - then `pgbench -i -I vp` (vacuum, primary keys) as pgbench -i does on the reference, and a CHECKPOINT.
//
// It checks that the shards together hold exactly the reference's accounts and that each shard holds some.
func (e *Env) setupShards(ctx context.Context, scale int) (*ShardSetup, error) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	super, err := pgx.Connect(ctx, e.PG.SuperDSN("postgres"))
	if err != nil {
		return nil, err
	}
	defer super.Close(context.Background())
	for _, db := range shardedDBs {
		if _, err := super.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{db}.Sanitize()); err != nil {
			return nil, err
		}
		if _, err := super.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{db}.Sanitize()+" OWNER "+pgx.Identifier{appUser}.Sanitize()); err != nil {
			return nil, fmt.Errorf("creating shard database %s: %w", db, err)
		}
		if err := e.pgbenchInit(ctx, db, scale, "dt"); err != nil {
			return nil, fmt.Errorf("shard %s: %w", db, err)
		}
	}

	src, err := pgx.Connect(ctx, e.PG.DSN(shardDB, appUser, appPassword))
	if err != nil {
		return nil, err
	}
	defer src.Close(context.Background())
	setup := &ShardSetup{Databases: slices.Clone(shardedDBs), SameCluster: true, PoolPerShard: e.poolSize(true),
		ReferencePool: e.PoolSize}
	if err := src.QueryRow(ctx, `SELECT format_type(atttypid, atttypmod) FROM pg_attribute
WHERE attrelid = 'pgbench_accounts'::regclass AND attname = 'aid'`).Scan(&setup.AidType); err != nil {
		return nil, fmt.Errorf("reading pgbench_accounts.aid's type: %w", err)
	}
	switch setup.AidType {
	case "integer", "bigint":
		setup.ConfigType = setup.AidType
	default:
		return nil, fmt.Errorf("pgbench_accounts.aid has type %s: want integer or bigint", setup.AidType)
	}
	if err := src.QueryRow(ctx, "SELECT count(*) FROM pgbench_accounts").Scan(&setup.ReferenceCount); err != nil {
		return nil, err
	}
	if _, err := src.Exec(ctx, "CREATE TEMP TABLE bench_shard_of (aid "+setup.AidType+") PARTITION BY HASH (aid)"); err != nil {
		return nil, fmt.Errorf("temporary hash-partitioned table: %w", err)
	}

	var total int64
	for i, db := range shardedDBs {
		dst, err := pgx.Connect(ctx, e.PG.DSN(db, appUser, appPassword))
		if err != nil {
			return nil, err
		}
		for _, t := range replicatedTables {
			if _, err := copyTable(ctx, src, dst, "COPY "+t+" TO STDOUT (FORMAT binary)", t); err != nil {
				dst.Close(context.Background())
				return nil, fmt.Errorf("copying %s to %s: %w", t, db, err)
			}
		}
		n, err := copyTable(ctx, src, dst, fmt.Sprintf("COPY (SELECT * FROM pgbench_accounts WHERE "+
			"satisfies_hash_partition('pg_temp.bench_shard_of'::regclass, %d, %d, aid)) TO STDOUT (FORMAT binary)",
			shardCount, i), "pgbench_accounts")
		dst.Close(context.Background())
		if err != nil {
			return nil, fmt.Errorf("copying shard %d's pgbench_accounts to %s: %w", i, db, err)
		}
		setup.Accounts = append(setup.Accounts, n)
		total += n
		if err := e.pgbenchInit(ctx, db, scale, "vp"); err != nil {
			return nil, fmt.Errorf("shard %s: %w", db, err)
		}
	}
	if total != setup.ReferenceCount || slices.Contains(setup.Accounts, 0) {
		return nil, fmt.Errorf("the shards hold %v accounts (%d in all), the reference %d", setup.Accounts, total, setup.ReferenceCount)
	}
	// Write the copied pages out now rather than in the middle of the first measured runs.
	if _, err := super.Exec(ctx, "CHECKPOINT"); err != nil {
		return nil, err
	}
	setup.SetupSeconds = time.Since(start).Seconds()
	return setup, nil
}

// pgbenchInit runs `pgbench -i -I steps -s scale` on db as the role app.
func (e *Env) pgbenchInit(ctx context.Context, db string, scale int, steps string) error {
	cmd := exec.CommandContext(ctx, e.Pgbench, "-i", "-q", "-I", steps, "-s", strconv.Itoa(scale),
		"-h", "127.0.0.1", "-p", strconv.Itoa(e.PG.Port), "-U", appUser, db)
	cmd.Env = append(cleanEnv(), "PGPASSWORD="+appPassword, "PGSSLMODE=disable")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("pgbench -i -I %s: %w\n%s", steps, err, out)
	}
	return nil
}

// copyTable streams `copyOut` (a COPY ... TO STDOUT (FORMAT binary)) from src into table on dst and returns the
// rows written.
func copyTable(ctx context.Context, src, dst *pgx.Conn, copyOut, table string) (int64, error) {
	pr, pw := io.Pipe()
	outErr := make(chan error, 1)
	go func() {
		_, err := src.PgConn().CopyTo(ctx, pw, copyOut)
		pw.CloseWithError(err) // nil: the reader sees EOF
		outErr <- err
	}()
	tag, err := dst.PgConn().CopyFrom(ctx, pr, "COPY "+table+" FROM STDIN (FORMAT binary)")
	pr.CloseWithError(errors.New("copy into the shard ended")) // unblocks the writer if CopyFrom stopped early
	if oerr := <-outErr; oerr != nil {
		return 0, oerr
	}
	if err != nil {
		return 0, err
	}
	return tag.RowsAffected(), nil
}

// shardedConfig is pgshard's databases entry for the sharded scenarios: database app over the shard databases.
func (e *Env) shardedConfig() string {
	typ := "integer"
	if e.Shards != nil {
		typ = e.Shards.ConfigType
	}
	var b strings.Builder
	fmt.Fprintf(&b, "  - name: %s\n    shards:\n", appDB)
	for _, db := range shardedDBs {
		fmt.Fprintf(&b, "      - primary: \"postgres://127.0.0.1:%d/%s\"\n", e.PG.Port, db)
	}
	fmt.Fprintf(&b, "    sharded_tables:\n      - table: pgbench_accounts\n        column: aid\n        type: %s\n", typ)
	fmt.Fprintf(&b, "    replicated_tables: [%s]\n", strings.Join(replicatedTables, ", "))
	return b.String()
}

// shardXacts reads xact_commit + xact_rollback of every shard database from pg_stat_database.
func (e *Env) shardXacts(ctx context.Context) ([]int64, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, e.PG.SuperDSN("postgres"))
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.Background())
	out := make([]int64, len(shardedDBs))
	for i, db := range shardedDBs {
		if err := conn.QueryRow(ctx, "SELECT coalesce(sum(xact_commit + xact_rollback), 0)::bigint FROM pg_stat_database WHERE datname = $1",
			db).Scan(&out[i]); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// shardSplit says how the transactions of a sharded scenario's measured pgshard runs spread over the shards, as
// Postgres counted them.
func shardSplit(sr ScenarioResult) string {
	var sum []int64
	for _, c := range sr.Cases {
		for _, t := range c.Targets {
			for _, r := range t.Runs {
				if r.Failed || len(r.ShardXacts) == 0 {
					continue
				}
				if sum == nil {
					sum = make([]int64, len(r.ShardXacts))
				}
				for i, n := range r.ShardXacts {
					if i < len(sum) {
						sum[i] += n
					}
				}
			}
		}
	}
	var total int64
	for _, n := range sum {
		total += n
	}
	if total <= 0 {
		return ""
	}
	var parts []string
	for i, n := range sum {
		parts = append(parts, fmt.Sprintf("shard %d %.1f%%", i, float64(n)*100/float64(total)))
	}
	return "Transactions the shard databases ran during pgshard's measured runs (pg_stat_database): " +
		strings.Join(parts, ", ") + "."
}

// routingSample is how many keys the routing check reads back through pgshard.
const routingSample = 400

// sampleKeys returns n distinct aids in 1..accounts, always with the first and the last, the rest drawn with a
// fixed seed (the same keys in every run).
func sampleKeys(n int, accounts int64) []int64 {
	if int64(n) >= accounts {
		keys := make([]int64, accounts)
		for i := range keys {
			keys[i] = int64(i) + 1
		}
		return keys
	}
	rng := rand.New(rand.NewPCG(0x5eed, uint64(accounts)))
	seen := map[int64]bool{1: true, accounts: true}
	keys := []int64{1, accounts}
	for len(keys) < n {
		k := rng.Int64N(accounts) + 1
		if !seen[k] {
			seen[k] = true
			keys = append(keys, k)
		}
	}
	return keys
}

// keyOwners asks every shard database directly which of keys it holds: owner[k] is k's shard (absent: none).
func (e *Env) keyOwners(ctx context.Context, keys []int64) (map[int64]int, error) {
	owner := map[int64]int{}
	for i, db := range shardedDBs {
		conn, err := pgx.Connect(ctx, e.PG.DSN(db, appUser, appPassword))
		if err != nil {
			return nil, err
		}
		rows, err := conn.Query(ctx, "SELECT aid::bigint FROM pgbench_accounts WHERE aid::bigint = ANY($1)", keys)
		if err != nil {
			conn.Close(context.Background())
			return nil, err
		}
		held, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		conn.Close(context.Background())
		if err != nil {
			return nil, err
		}
		for _, k := range held {
			if prev, dup := owner[k]; dup {
				return nil, fmt.Errorf("aid %d is on shard %d and on shard %d", k, prev, i)
			}
			owner[k] = i
		}
	}
	return owner, nil
}

// routingCheck reads sampled accounts back through pgshard in the scenario's protocol, with pgbench's own select
// and with count(*). pgbench -S does not look at what it gets back, so a proxy that sent every query to shard 0
// would be measured as fast as a correct one while answering half the keys with no row. Every key must give
// count(*) = 1 and exactly one row whose aid is the key.
func (e *Env) routingCheck(ctx context.Context, p *Proc, mode string) Check {
	what := fmt.Sprintf("-M %s: through pgshard, each of %d sampled aids", mode, routingSample)
	fail := func(detail string) Check {
		return Check{What: what + " reads back its one row", Correctness: true, Detail: detail}
	}
	if p == nil || !p.Alive() {
		return fail("could not check: pgshard is not running")
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	accounts := int64(0)
	if e.Shards != nil {
		accounts = e.Shards.ReferenceCount
	}
	if accounts == 0 {
		return fail("could not check: no shard set-up")
	}
	keys := sampleKeys(routingSample, accounts)
	owner, err := e.keyOwners(ctx, keys)
	if err != nil {
		return fail("could not check: reading the shards directly: " + err.Error())
	}
	perShard := make([]int, shardCount)
	for _, i := range owner {
		perShard[i]++
	}
	var split []string
	for i, n := range perShard {
		split = append(split, fmt.Sprintf("%d on shard %d", n, i))
	}
	what += " (" + strings.Join(split, ", ") + ") reads back its one row"

	cfg, err := pgx.ParseConfig(fmt.Sprintf("postgres://%s:%s@127.0.0.1:%d/%s?sslmode=disable&connect_timeout=30",
		appUser, appPassword, p.Port, p.DB))
	if err != nil {
		return Check{What: what, Correctness: true, Detail: "could not check: " + err.Error()}
	}
	cfg.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol // pgbench -M simple: literals in the text
	if mode != "simple" {
		cfg.DefaultQueryExecMode = pgx.QueryExecModeExec // pgbench -M extended: unnamed Parse/Bind/Execute/Sync
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return Check{What: what, Correctness: true, Detail: "could not check: connecting through pgshard: " + err.Error()}
	}
	defer conn.Close(context.Background())
	var wrong []string
	nWrong := 0
	for _, k := range keys {
		var problems []string
		var count int64
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM pgbench_accounts WHERE aid = $1", k).Scan(&count); err != nil {
			problems = append(problems, "count(*): "+benchkit.FirstLine(err.Error()))
		} else if count != 1 {
			problems = append(problems, fmt.Sprintf("count(*) = %d", count))
		}
		rows, err := conn.Query(ctx, "SELECT aid::bigint, abalance FROM pgbench_accounts WHERE aid = $1", k)
		if err == nil {
			var got []int64
			for rows.Next() {
				var aid int64
				var bal int32
				if err = rows.Scan(&aid, &bal); err != nil {
					break
				}
				got = append(got, aid)
			}
			rows.Close()
			if err == nil {
				err = rows.Err()
			}
			if err == nil && (len(got) != 1 || got[0] != k) {
				problems = append(problems, fmt.Sprintf("SELECT returned aids %v", got))
			}
		}
		if err != nil {
			problems = append(problems, "SELECT: "+benchkit.FirstLine(err.Error()))
		}
		if len(problems) > 0 {
			nWrong++
			if len(wrong) < 5 {
				on := "on no shard"
				if i, ok := owner[k]; ok {
					on = "on shard " + strconv.Itoa(i)
				}
				wrong = append(wrong, fmt.Sprintf("aid %d (%s): %s", k, on, strings.Join(problems, ", ")))
			}
		}
		if ctx.Err() != nil {
			break
		}
	}
	if nWrong > 0 {
		return Check{What: what, Correctness: true, Detail: fmt.Sprintf("%d of %d keys wrong, e.g. %s",
			nWrong, len(keys), strings.Join(wrong, "; "))}
	}
	return Check{What: what, Correctness: true, Pass: true, Detail: fmt.Sprintf("%d of %d right", len(keys), len(keys))}
}

// correctnessFailures lists the failed correctness checks of a report, one line each.
func (rep *Report) correctnessFailures() []string {
	var out []string
	for _, sr := range rep.Scenarios {
		for _, c := range sr.Checks {
			if c.Correctness && !c.Pass {
				out = append(out, fmt.Sprintf("%s: %s: %s", sr.Name, c.What, c.Detail))
			}
		}
	}
	return out
}
