package main

import (
	"context"
	"fmt"
	"runtime"
	"strconv"
	"sync"
	"time"

	"github.com/pgshard/pgshard/bench/internal/benchkit"

	"github.com/jackc/pgx/v5"
)

// DataSetup describes the databases the cases read; it goes into the report.
type DataSetup struct {
	ReferenceDB   string            `json:"reference_database"`
	ShardDBs      []string          `json:"shard_databases"`
	ReferenceRows int64             `json:"reference_rows"`
	ShardRows     []int64           `json:"shard_rows"`
	SharedBuffers string            `json:"shared_buffers"`
	Prewarmed     bool              `json:"prewarmed"` // pg_prewarm loaded every table and index into shared_buffers
	SetupSeconds  float64           `json:"setup_seconds"`
	DirectPlans   map[string]string `json:"direct_plans"` // EXPLAIN (COSTS OFF) of each case's query on the reference
	SameCluster   bool              `json:"same_cluster"`
}

// rowsSQL selects rows first..last of items: id, k = (id * 7919) % 1000003 (scattered, ~3 ids per k value at 3
// million rows) and a 40-byte v (an md5 in hex and the id in 8 digits). copyLine makes the same rows in Go.
func rowsSQL(first, last int64) string {
	return fmt.Sprintf(`SELECT g, ((g * 7919) %% 1000003)::integer, md5(g::text) || lpad(g::text, 8, '0')
FROM generate_series(%d::bigint, %d::bigint) g`, first, last)
}

// hashParent is the temporary table satisfies_hash_partition is asked about: its partition key is items' id, so
// satisfies_hash_partition(hashParent, shards, i, id) is true exactly for the rows of the hash partition
// (MODULUS shards, REMAINDER i), where pgshard puts a row of a hash-sharded bigint key.
const (
	hashParent    = "pg_temp.shard_of"
	hashParentDDL = "CREATE TEMP TABLE IF NOT EXISTS shard_of (id bigint) PARTITION BY HASH (id)"
)

// fillDatabases creates items and items_copy in the reference and every shard database and fills items: all
// total rows on the reference, and on shard i the rows of hash partition i, filtered in the shard itself with
// satisfies_hash_partition. Then the primary key, an index on k, VACUUM ANALYZE, and pg_prewarm of the tables and
// indexes when the extension is there. The databases are filled concurrently, as many at a time as there are
// cores.
func (e *Env) fillDatabases(ctx context.Context, total int64, logf func(string, ...any)) (*DataSetup, error) {
	start := time.Now()
	setup := &DataSetup{ReferenceDB: refDB, ShardRows: make([]int64, e.Shards), SameCluster: true}
	type job struct {
		db    string
		shard int // -1: the reference
	}
	jobs := []job{{refDB, -1}}
	for i := range e.Shards {
		setup.ShardDBs = append(setup.ShardDBs, shardDB(i))
		jobs = append(jobs, job{shardDB(i), i})
	}
	sem := make(chan struct{}, max(1, runtime.NumCPU()))
	var wg sync.WaitGroup
	errs := make([]error, len(jobs))
	counts := make([]int64, len(jobs))
	for j, jb := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			t0 := time.Now()
			counts[j], errs[j] = e.fillOne(ctx, jb.db, jb.shard, total)
			if errs[j] == nil {
				logf("%s: %d rows in %.1fs", jb.db, counts[j], time.Since(t0).Seconds())
			}
		}()
	}
	wg.Wait()
	for j, err := range errs {
		if err != nil {
			return nil, fmt.Errorf("filling %s: %w", jobs[j].db, err)
		}
	}
	setup.ReferenceRows = counts[0]
	var sum int64
	for i := range e.Shards {
		setup.ShardRows[i] = counts[i+1]
		sum += counts[i+1]
		if counts[i+1] == 0 {
			return nil, fmt.Errorf("shard %d holds no rows", i)
		}
	}
	if setup.ReferenceRows != total || sum != total {
		return nil, fmt.Errorf("the reference holds %d rows and the shards %v (%d in all), want %d", setup.ReferenceRows,
			setup.ShardRows, sum, total)
	}

	super, err := pgx.Connect(ctx, e.PG.SuperDSN("postgres"))
	if err != nil {
		return nil, err
	}
	defer super.Close(context.Background())
	setup.Prewarmed = true
	for _, jb := range jobs {
		if err := e.prewarm(ctx, jb.db); err != nil {
			logf("pg_prewarm in %s: %v (the warm-up runs load the tables instead)", jb.db, err)
			setup.Prewarmed = false
		}
	}
	if _, err := super.Exec(ctx, "CHECKPOINT"); err != nil {
		return nil, err
	}
	if err := super.QueryRow(ctx, "SHOW shared_buffers").Scan(&setup.SharedBuffers); err != nil {
		return nil, err
	}
	setup.SetupSeconds = time.Since(start).Seconds()
	return setup, nil
}

// fillOne makes the tables of one database and returns the rows items holds. shard < 0 is the reference.
func (e *Env) fillOne(ctx context.Context, db string, shard int, total int64) (int64, error) {
	conn, err := pgx.Connect(ctx, e.PG.DSN(db, appUser, appPassword))
	if err != nil {
		return 0, err
	}
	defer conn.Close(context.Background())
	fill := "INSERT INTO items " + rowsSQL(1, total)
	if shard >= 0 {
		if _, err := conn.Exec(ctx, hashParentDDL); err != nil {
			return 0, err
		}
		fill += fmt.Sprintf("\nWHERE satisfies_hash_partition('%s'::regclass, %d, %d, g)", hashParent, e.Shards, shard)
	}
	steps := []string{
		"DROP TABLE IF EXISTS items, items_copy",
		"CREATE TABLE items (id bigint NOT NULL, k integer, v text)",
		fill,
		"ALTER TABLE items ADD PRIMARY KEY (id)",
		"CREATE INDEX items_k_idx ON items (k)",
		"CREATE TABLE items_copy (id bigint PRIMARY KEY, k integer, v text)",
		"VACUUM (FREEZE, ANALYZE) items",
		"VACUUM ANALYZE items_copy",
	}
	for _, sql := range steps {
		if _, err := conn.Exec(ctx, sql); err != nil {
			return 0, fmt.Errorf("%s: %w", benchkit.FirstLine(sql), err)
		}
	}
	var n int64
	err = conn.QueryRow(ctx, "SELECT count(*) FROM items").Scan(&n)
	return n, err
}

// prewarm loads items and its indexes into shared_buffers (pg_prewarm, as the superuser).
func (e *Env) prewarm(ctx context.Context, db string) error {
	conn, err := pgx.Connect(ctx, e.PG.SuperDSN(db))
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "CREATE EXTENSION IF NOT EXISTS pg_prewarm"); err != nil {
		return err
	}
	for _, rel := range []string{"items", "items_pkey", "items_k_idx"} {
		if _, err := conn.Exec(ctx, "SELECT pg_prewarm($1::regclass)", rel); err != nil {
			return err
		}
	}
	return nil
}

// explain returns EXPLAIN (COSTS OFF) of sql on the reference, one line per plan node joined by " / ".
func (e *Env) explain(ctx context.Context, sql string) string {
	conn, err := pgx.Connect(ctx, e.PG.DSN(refDB, appUser, appPassword))
	if err != nil {
		return "error: " + err.Error()
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(ctx, "EXPLAIN (COSTS OFF) "+sql)
	if err != nil {
		return "error: " + err.Error()
	}
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return "error: " + err.Error()
	}
	out := ""
	for i, l := range lines {
		if i > 0 {
			out += " / "
		}
		out += trimSpaceArrow(l)
	}
	return out
}

func trimSpaceArrow(s string) string {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '-' || s[0] == '>') {
		s = s[1:]
	}
	return s
}

// copyData is the text-format COPY input of rows first..last of items, the same rows rowsSQL makes.
func copyData(first, last int64) []byte {
	buf := make([]byte, 0, (last-first+1)*64)
	for id := first; id <= last; id++ {
		buf = appendCopyLine(buf, id)
	}
	return buf
}

func appendCopyLine(buf []byte, id int64) []byte {
	buf = strconv.AppendInt(buf, id, 10)
	buf = append(buf, '\t')
	buf = strconv.AppendInt(buf, (id*7919)%1000003, 10)
	buf = append(buf, '\t')
	buf = append(buf, md5Hex(strconv.FormatInt(id, 10))...)
	s := strconv.FormatInt(id, 10)
	for i := len(s); i < 8; i++ {
		buf = append(buf, '0')
	}
	if len(s) > 8 { // lpad truncates on the right
		s = s[:8]
	}
	buf = append(buf, s...)
	return append(buf, '\n')
}
