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

// The routing tests run against a database "app" spread over two shards, in one of two layouts, and check
// where every row went by reading each shard directly. Which shard owns a key is always asked of Postgres
// itself: every shard holds hash-partitioned "shadow" tables (shadow_acc, shadow_users, shadow_dev,
// shadow_tenant, and shadow_bench in the bench databases) whose partition i is FOR VALUES WITH (MODULUS 2,
// REMAINDER i); the partition Postgres puts a key in names its shard. The tests never use pgshard's own hash
// code for their expectations.

// shardLayout is how the two shards of database app are laid out.
type shardLayout int

const (
	// layoutTwoClusters: shard i is database app_i on cluster i (and bench_i for database bench).
	layoutTwoClusters shardLayout = iota
	// layoutOneCluster: both shards are databases of one cluster, app_0 and app_1.
	layoutOneCluster
)

func (l shardLayout) String() string {
	if l == layoutOneCluster {
		return "one cluster, two databases"
	}
	return "two clusters"
}

// shardRef is one shard, reached directly (not through pgshard) as user app.
type shardRef struct {
	Index   int
	Cluster *pgtest.Cluster
	DB      string // app_0, app_1, bench_0, bench_1
	DSN     string // direct connection string as user app
	conn    *pgx.Conn
}

// shardedEnv is a pgshard serving database app (and, in layoutTwoClusters, database bench) over two shards.
type shardedEnv struct {
	layout shardLayout
	proxy  *Proxy
	Addr   string      // the proxy's address
	shards []*shardRef // database app's shards, in shard order
	bench  []*shardRef // database bench's shards (layoutTwoClusters only)
	config string      // the proxy's config (%PORT% still to fill), for more proxies on the same shards
}

// shardedOpts change the environment for tests that need more than the routing suite.
type shardedOpts struct {
	appKeys  string               // more keys of database app, indented by 4
	topKeys  string               // more top-level keys
	settings [2]map[string]string // more postgresql.conf settings of each cluster (layoutTwoClusters)
}

// routingTables are the tables of database app the tests write into; reset empties them.
var routingTables = []string{"accounts", "users", "devices", "events", "orders", "branches"}

// shadowTypes are the shadow tables and the SQL type of their key column k.
var shadowTypes = map[string]string{
	"shadow_acc":    "bigint",  // accounts.aid
	"shadow_users":  "text",    // users.name
	"shadow_dev":    "uuid",    // devices.id
	"shadow_tenant": "integer", // tenant_id (the column-only sharded_tables entry)
	"shadow_bench":  "integer", // pgbench_accounts.aid (database bench)
}

// appSchema is created on every shard of database app, identically; then shard_marker gets the shard index.
const appSchema = `
CREATE TABLE accounts (aid bigint PRIMARY KEY, bid int NOT NULL DEFAULT 1, abalance int NOT NULL DEFAULT 0, filler text);
CREATE TABLE users (name text PRIMARY KEY, note text);
CREATE TABLE devices (id uuid PRIMARY KEY, label text);
CREATE TABLE events (id bigint NOT NULL, region text NOT NULL, payload text, PRIMARY KEY (region, id));
CREATE TABLE orders (tenant_id integer NOT NULL, item text NOT NULL, PRIMARY KEY (tenant_id, item));
CREATE TABLE branches (bid int PRIMARY KEY, bname text NOT NULL);
CREATE TABLE shard_marker (n int NOT NULL);
`

// routingConfig is the proxy's config; %P0%/%DB0% and %P1%/%DB1% are the shards of app, %BENCH% the bench
// database entry (empty in layoutOneCluster).
//
// shard_marker is listed as replicated although its one row differs per shard (that is its point): a read of a
// replicated table is served by one shard, preferably the one the client's transaction already uses, which is
// what lets a bare "SELECT n FROM shard_marker" tell which shard a session or transaction is on. Left
// unlisted, what pgshard does with it would be unspecified.
const routingConfig = `
listen: "127.0.0.1:%PORT%"
shutdown_timeout: 5s
pool:
  mode: transaction
  size: 8
  checkout_timeout: 10s
limits:
  client_startup_timeout: 5s
users:
  - name: app
    password: secret
databases:
  - name: app
    shards:
      - primary: "postgres://127.0.0.1:%P0%/%DB0%"
      - primary: "postgres://127.0.0.1:%P1%/%DB1%"
    sharded_tables:
      - table: accounts
        column: aid
        type: bigint
      - table: users
        column: name
        type: text
      - table: devices
        column: id
        type: uuid
      - table: events
        column: region
        type: text
        mapping: list
        values: {0: ["eu", "uk"], 1: ["us"]}
      - column: tenant_id
        type: integer
    replicated_tables: [branches, shard_marker]
%BENCH%`

const benchConfig = `  - name: bench
    shards:
      - primary: "postgres://127.0.0.1:%P0%/bench_0"
      - primary: "postgres://127.0.0.1:%P1%/bench_1"
    sharded_tables:
      - table: pgbench_accounts
        column: aid
        type: integer
    replicated_tables: [pgbench_branches, pgbench_tellers, pgbench_history]
`

// shadowDDL creates the hash-partitioned shadow table name with key column k of type typ and an ordinal i
// (to map a returned row back to the key that made it).
func shadowDDL(name, typ string) string {
	return fmt.Sprintf(`CREATE TABLE %[1]s (k %[2]s, i int) PARTITION BY HASH (k);
CREATE TABLE %[1]s_0 PARTITION OF %[1]s FOR VALUES WITH (MODULUS 2, REMAINDER 0);
CREATE TABLE %[1]s_1 PARTITION OF %[1]s FOR VALUES WITH (MODULUS 2, REMAINDER 1);
`, name, typ)
}

// startSharded starts the clusters of layout, creates the schema, shard markers and shadow tables on every
// shard directly, starts pgshard in front and checks that it answers SELECT 1. Everything is stopped when the
// test ends (t.Cleanup); the shards' direct connections stay open until then.
func startSharded(t *testing.T, layout shardLayout) *shardedEnv {
	t.Helper()
	return startShardedWith(t, layout, shardedOpts{})
}

// startShardedWith is startSharded with opts.
func startShardedWith(t *testing.T, layout shardLayout, opts shardedOpts) *shardedEnv {
	t.Helper()
	if testing.Short() {
		t.Skip("starts Postgres")
	}
	ctx := Ctx(t, 2*time.Minute)
	users := []pgtest.UserSpec{{Name: "app", Password: "secret"}}
	e := &shardedEnv{layout: layout}
	var clusters [2]*pgtest.Cluster
	switch layout {
	case layoutTwoClusters:
		for i := range clusters {
			clusters[i] = pgtest.Start(t, pgtest.Options{
				Databases:     []string{fmt.Sprintf("app_%d", i), fmt.Sprintf("bench_%d", i)},
				DatabaseOwner: "app", Users: users, Settings: opts.settings[i],
			})
		}
	case layoutOneCluster:
		c := pgtest.Start(t, pgtest.Options{Databases: []string{"app_0", "app_1"}, DatabaseOwner: "app", Users: users})
		clusters = [2]*pgtest.Cluster{c, c}
	default:
		t.Fatalf("unknown layout %d", layout)
	}

	open := func(i int, db string) *shardRef {
		s := &shardRef{Index: i, Cluster: clusters[i], DB: db, DSN: clusters[i].DSN(db, "app", "secret")}
		// A statement waiting on a lock (a transaction the proxy left open, a deadlock across shards) fails
		// after 10s instead of hanging the suite: for the proxy's server connections and these alike.
		clusters[i].Exec(t, "postgres", fmt.Sprintf("ALTER DATABASE %s SET lock_timeout = '10s'", db))
		c, err := pgx.Connect(ctx, s.DSN)
		if err != nil {
			t.Fatalf("connecting to shard %d (%s) directly: %v", i, db, err)
		}
		t.Cleanup(func() { _ = c.Close(context.Background()) })
		s.conn = c
		return s
	}
	for i := range clusters {
		s := open(i, fmt.Sprintf("app_%d", i))
		ddl := appSchema + fmt.Sprintf("INSERT INTO shard_marker VALUES (%d);\n", i)
		for _, name := range []string{"shadow_acc", "shadow_users", "shadow_dev", "shadow_tenant"} {
			ddl += shadowDDL(name, shadowTypes[name])
		}
		if _, err := s.conn.Exec(ctx, ddl); err != nil {
			t.Fatalf("schema on shard %d (%s): %v", i, s.DB, err)
		}
		e.shards = append(e.shards, s)
	}
	bench := ""
	if layout == layoutTwoClusters {
		for i := range clusters {
			s := open(i, fmt.Sprintf("bench_%d", i))
			if _, err := s.conn.Exec(ctx, shadowDDL("shadow_bench", shadowTypes["shadow_bench"])); err != nil {
				t.Fatalf("shadow table on bench shard %d: %v", i, err)
			}
			e.bench = append(e.bench, s)
		}
		bench = benchConfig
	}
	cfg := strings.ReplaceAll(routingConfig, "%BENCH%", bench)
	cfg = strings.Replace(cfg, "    replicated_tables: [branches, shard_marker]\n", "    replicated_tables: [branches, shard_marker]\n"+opts.appKeys, 1)
	cfg = opts.topKeys + cfg
	cfg = strings.NewReplacer(
		"%P0%", strconv.Itoa(clusters[0].Port), "%DB0%", e.shards[0].DB,
		"%P1%", strconv.Itoa(clusters[1].Port), "%DB1%", e.shards[1].DB).Replace(cfg)
	e.config = cfg
	e.proxy = StartProxy(t, cfg)
	e.Addr = e.proxy.Addr()

	// The harness itself: the proxy logs in and answers.
	c := e.connect(t, ctx, pgx.QueryExecModeSimpleProtocol)
	var one int
	if err := c.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil || one != 1 {
		t.Fatalf("SELECT 1 through pgshard: %d, %v", one, err)
	}
	_ = c.Close(ctx)
	return e
}

// connect opens a client connection to database app through pgshard with the given default exec mode; it is
// closed when the test ends.
func (e *shardedEnv) connect(t *testing.T, ctx context.Context, mode pgx.QueryExecMode) *pgx.Conn {
	t.Helper()
	return e.connectDB(t, ctx, "app", mode)
}

func (e *shardedEnv) connectDB(t *testing.T, ctx context.Context, db string, mode pgx.QueryExecMode) *pgx.Conn {
	t.Helper()
	cfg, err := pgx.ParseConfig(e.proxy.DSN(db, "app", "secret"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.DefaultQueryExecMode = mode
	c, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatalf("connect to %s through pgshard: %v", db, err)
	}
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	return c
}

// reset empties the test tables on every shard directly, so that each subtest starts from the same state.
func (e *shardedEnv) reset(t *testing.T) {
	t.Helper()
	ctx := Ctx(t, 30*time.Second)
	for _, s := range e.shards {
		if _, err := s.conn.Exec(ctx, "TRUNCATE "+strings.Join(routingTables, ", ")); err != nil {
			t.Fatalf("emptying the tables of shard %d directly: %v", s.Index, err)
		}
	}
}

// owners asks Postgres which shard owns each key: it inserts the keys (in text form, cast to the shadow
// table's key type) into shadow table shadow of shard 0, in a transaction it rolls back, and reads the
// partition each row went to. owners[i] is the shard of keys[i].
func (e *shardedEnv) owners(t *testing.T, shadow string, keys []string) []int {
	t.Helper()
	return shadowOwners(t, e.shards[0].conn, shadow, keys)
}

func shadowOwners(t *testing.T, conn *pgx.Conn, shadow string, keys []string) []int {
	t.Helper()
	typ, ok := shadowTypes[shadow]
	if !ok {
		t.Fatalf("no shadow table %q", shadow)
	}
	ctx := Ctx(t, 30*time.Second)
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(context.Background()) }()
	rows, err := tx.Query(ctx, fmt.Sprintf(`INSERT INTO %s (k, i) SELECT x::%s, o FROM unnest($1::text[]) WITH ORDINALITY AS u(x, o)
RETURNING i, tableoid::regclass::text`, shadow, typ), keys)
	if err != nil {
		t.Fatalf("asking %s for the owners of %d keys: %v", shadow, len(keys), err)
	}
	out := make([]int, len(keys))
	for i := range out {
		out[i] = -1
	}
	for rows.Next() {
		var i int
		var part string
		if err := rows.Scan(&i, &part); err != nil {
			t.Fatal(err)
		}
		n, err := strconv.Atoi(part[strings.LastIndexByte(part, '_')+1:])
		if err != nil {
			t.Fatalf("shadow partition %q: %v", part, err)
		}
		out[i-1] = n
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("asking %s for owners: %v", shadow, err)
	}
	if i := slices.Index(out, -1); i >= 0 {
		t.Fatalf("%s gave no partition for key %q", shadow, keys[i])
	}
	return out
}

// owner is owners for one key.
func (e *shardedEnv) owner(t *testing.T, shadow, key string) int {
	t.Helper()
	return e.owners(t, shadow, []string{key})[0]
}

// accountKeys returns n bigint keys owned by each shard (keys[s] are shard s's), drawn from from, from+1, ...
func (e *shardedEnv) accountKeys(t *testing.T, from int64, n int) [2][]int64 {
	t.Helper()
	cand := make([]string, 0, 40*n+40)
	for k := from; len(cand) < cap(cand); k++ {
		cand = append(cand, strconv.FormatInt(k, 10))
	}
	own := e.owners(t, "shadow_acc", cand)
	var out [2][]int64
	for i, s := range own {
		if len(out[s]) < n {
			k, _ := strconv.ParseInt(cand[i], 10, 64)
			out[s] = append(out[s], k)
		}
	}
	if len(out[0]) < n || len(out[1]) < n {
		t.Fatalf("found only %d and %d keys per shard among %d candidates", len(out[0]), len(out[1]), len(cand))
	}
	return out
}

// rows runs sql on shard s directly (not through pgshard) and returns the rows in text form.
func (s *shardRef) rows(t *testing.T, sql string, args ...any) [][]string {
	t.Helper()
	ctx := Ctx(t, 30*time.Second)
	got, err := queryStrings(ctx, s.conn, sql, append([]any{pgx.QueryExecModeSimpleProtocol}, args...)...)
	if err != nil {
		t.Fatalf("on shard %d (%s) directly: %s: %v", s.Index, s.DB, sql, err)
	}
	return got
}

// value runs sql on shard s directly and returns its single value in text form.
func (s *shardRef) value(t *testing.T, sql string, args ...any) string {
	t.Helper()
	got := s.rows(t, sql, args...)
	if len(got) != 1 || len(got[0]) != 1 {
		t.Fatalf("on shard %d directly: %s: want one value, got %v", s.Index, sql, got)
	}
	return got[0][0]
}

// exec runs sql on shard s directly.
func (s *shardRef) exec(t *testing.T, sql string, args ...any) {
	t.Helper()
	ctx := Ctx(t, 30*time.Second)
	if _, err := s.conn.Exec(ctx, sql, args...); err != nil {
		t.Fatalf("on shard %d (%s) directly: %s: %v", s.Index, s.DB, sql, err)
	}
}

// execAll runs sql directly on every shard.
func (e *shardedEnv) execAll(t *testing.T, sql string) {
	t.Helper()
	for _, s := range e.shards {
		s.exec(t, sql)
	}
}

// tablesOnEveryShard creates tables with ddl directly on every shard, and drops them (names, comma-separated)
// when the test ends.
func (e *shardedEnv) tablesOnEveryShard(t *testing.T, ddl, names string) {
	t.Helper()
	e.execAll(t, ddl)
	t.Cleanup(func() { e.execAll(t, "DROP TABLE IF EXISTS "+names) })
}

// seedAccounts inserts accounts rows directly on the shard Postgres says owns each key (bid 1, abalance 0).
func (e *shardedEnv) seedAccounts(t *testing.T, keys ...int64) {
	t.Helper()
	txt := make([]string, len(keys))
	for i, k := range keys {
		txt[i] = strconv.FormatInt(k, 10)
	}
	for i, s := range e.owners(t, "shadow_acc", txt) {
		e.shards[s].exec(t, "INSERT INTO accounts (aid, bid) VALUES ($1, $2)", keys[i], 1+i%2)
	}
}

// placement reads column expr of table on every shard directly: key (text form) -> the shards holding it
// (more than one entry when a key sits on several shards or twice on one).
func (e *shardedEnv) placement(t *testing.T, table, expr string) map[string][]int {
	t.Helper()
	out := map[string][]int{}
	for _, s := range e.shards {
		for _, r := range s.rows(t, fmt.Sprintf("SELECT %s FROM %s", expr, table)) {
			out[r[0]] = append(out[r[0]], s.Index)
		}
	}
	return out
}

// checkPlacement fails the test unless the rows of table hold exactly the keys of want (key column expr, in
// text form), each once and on the shard want names (Postgres's hash partitioning, or the config's list).
func (e *shardedEnv) checkPlacement(t *testing.T, what, table, expr string, want map[string]int) {
	t.Helper()
	got := e.placement(t, table, expr)
	var bad []string
	perShard := map[int]int{}
	for k, s := range want {
		switch on := got[k]; {
		case len(on) == 0:
			bad = append(bad, fmt.Sprintf("%q is on no shard (want shard %d)", k, s))
		case len(on) > 1:
			bad = append(bad, fmt.Sprintf("%q is on shards %v (want only shard %d)", k, on, s))
		case on[0] != s:
			bad = append(bad, fmt.Sprintf("%q is on shard %d, belongs on shard %d", k, on[0], s))
		default:
			perShard[s]++
		}
	}
	for k, on := range got {
		if _, ok := want[k]; !ok {
			bad = append(bad, fmt.Sprintf("unexpected row %q on shards %v", k, on))
		}
	}
	if len(bad) > 0 {
		slices.Sort(bad)
		n := len(bad)
		if n > 12 {
			bad = append(bad[:12], "...")
		}
		t.Errorf("%s: %d rows misplaced, missing or unexpected (of %d expected rows, %d are where they belong on shard 0, %d on shard 1):\n  %s",
			what, n, len(want), perShard[0], perShard[1], strings.Join(bad, "\n  "))
	}
}

// queryStrings runs sql on c and returns every row with its values formatted as text (NULL as "NULL", a uuid
// in its canonical form), whatever the result format.
func queryStrings(ctx context.Context, c *pgx.Conn, sql string, args ...any) ([][]string, error) {
	rows, err := c.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	return collectStrings(rows)
}

func collectStrings(rows pgx.Rows) ([][]string, error) {
	defer rows.Close()
	var out [][]string
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			return nil, err
		}
		r := make([]string, len(vals))
		for i, v := range vals {
			r[i] = formatValue(v)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

func formatValue(v any) string {
	switch v := v.(type) {
	case nil:
		return "NULL"
	case [16]byte:
		return fmt.Sprintf("%x-%x-%x-%x-%x", v[0:4], v[4:6], v[6:8], v[8:10], v[10:16])
	case string:
		return v
	case time.Time:
		return v.UTC().Format(time.RFC3339Nano)
	}
	return fmt.Sprint(v)
}

// sortedRows returns rows sorted (for comparisons as sets) and rendered as one string per row.
func sortedRows(rows [][]string) []string {
	out := make([]string, len(rows))
	for i, r := range rows {
		out[i] = strings.Join(r, "|")
	}
	slices.Sort(out)
	return out
}
