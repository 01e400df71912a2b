package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/pgshard/pgshard/bench/internal/benchkit"
	"github.com/pgshard/pgshard/internal/pgbin"
	"github.com/pgshard/pgshard/internal/pgtest"
)

const (
	appUser       = "app"
	appPassword   = "secret"
	adminUser     = "admin"
	adminPassword = "adminpw"
	appDB         = "app"      // the database clients open through pgshard
	srcDB         = "src"      // the one source shard
	dumpDB        = "dump_dst" // where the pg_dump | psql baseline writes
	dirPrefix     = "pgshard-reshard-bench-"
	ownerFile     = "bench.owner"
	pgshardPid    = "pgshard.pid"
	reshardPid    = "reshard.pid"
)

// dstDB is the name of destination shard i.
func dstDB(i int) string { return fmt.Sprintf("dst_%d", i) }

// Env is what a bench run started: its directory, one Postgres cluster holding the source and the destination
// databases, and pgshard.
type Env struct {
	Dir        string
	PG         *pgtest.Cluster
	PgshardBin string
	PgBin      string // directory of pg_dump and psql (the cluster's own)
	Keep       bool
	pgshard    *benchkit.Proc
	port       int // pgshard's listen port, the same for every run
}

// newEnv makes the run's directory, for sweepStale to find should this run be killed.
func newEnv() (*Env, error) {
	dir, err := benchkit.WorkDir(dirPrefix, ownerFile)
	if err != nil {
		return nil, err
	}
	return &Env{Dir: dir}, nil
}

// pgSettings are the cluster's settings besides pgtest's (wal_level=logical, fsync off, ...): no checkpoint in
// the middle of a measured copy (one is forced between runs), and the index builds of the reshard's post-data
// phase sort in memory.
var pgSettings = map[string]string{
	"shared_buffers":       "512MB",
	"max_wal_size":         "16GB",
	"checkpoint_timeout":   "30min",
	"maintenance_work_mem": "256MB",
	"log_min_messages":     "warning",
	"synchronous_commit":   "on", // Postgres's default (pgtest turns it off): commits, the load's and the cutover's, as in production
}

// startPostgres starts the cluster with the source database, owned by the role app. app is a superuser: the
// reshard needs replication rights on the source, and the bench's own checks use satisfies_hash_partition.
func (e *Env) startPostgres() error {
	pg, err := pgtest.StartDir(filepath.Join(e.Dir, "pg"), 0, pgtest.Options{
		Databases:     []string{srcDB},
		DatabaseOwner: appUser,
		Users:         []pgtest.UserSpec{{Name: appUser, Password: appPassword, Superuser: true}},
		Settings:      pgSettings,
	})
	if err != nil {
		// StartDir may have started the server before failing (creating a role or a database): stop it.
		stopCluster(filepath.Join(e.Dir, "pg", "data"))
		return err
	}
	e.PG = pg
	e.PgBin = pg.BinDir
	return nil
}

// superExec runs sql in db as the superuser.
func (e *Env) superExec(ctx context.Context, db, sql string) error {
	c, err := pgx.Connect(ctx, e.PG.SuperDSN(db))
	if err != nil {
		return err
	}
	defer c.Close(context.Background())
	_, err = c.Exec(ctx, sql)
	return err
}

// recreateDBs drops the databases (ending their connections) and creates them empty, owned by app.
func (e *Env) recreateDBs(ctx context.Context, dbs ...string) error {
	for _, db := range dbs {
		id := pgx.Identifier{db}.Sanitize()
		if err := e.superExec(ctx, "postgres", "DROP DATABASE IF EXISTS "+id+" WITH (FORCE)"); err != nil {
			return fmt.Errorf("dropping %s: %w", db, err)
		}
		if err := e.superExec(ctx, "postgres", "CREATE DATABASE "+id+" OWNER "+appUser); err != nil {
			return fmt.Errorf("creating %s: %w", db, err)
		}
	}
	return nil
}

// dropDBs drops the databases, ending their connections.
func (e *Env) dropDBs(ctx context.Context, dbs ...string) error {
	for _, db := range dbs {
		if err := e.superExec(ctx, "postgres", "DROP DATABASE IF EXISTS "+pgx.Identifier{db}.Sanitize()+" WITH (FORCE)"); err != nil {
			return fmt.Errorf("dropping %s: %w", db, err)
		}
	}
	return nil
}

// checkpoint writes out what the previous run left dirty, so that the next one does not pay for it.
func (e *Env) checkpoint(ctx context.Context) error {
	return e.superExec(ctx, "postgres", "CHECKPOINT")
}

// dsn is the URL of db in the cluster as app.
func (e *Env) dsn(db string) string { return e.PG.DSN(db, appUser, appPassword) }

// proxyDSN is the URL of database app through pgshard.
func (e *Env) proxyDSN() string {
	return fmt.Sprintf("postgres://%s:%s@127.0.0.1:%d/%s?sslmode=disable", appUser, appPassword, e.port, appDB)
}

func (e *Env) configPath() string { return filepath.Join(e.Dir, "pgshard.yaml") }
func (e *Env) toPath() string     { return filepath.Join(e.Dir, "new-shards.yaml") }

// pgshardConfig is the YAML pgshard serves: database app on the source database alone, every table with a
// column aid sharded by it (bigint, hash), the admin console the reshard's cutover uses.
func pgshardConfig(listenPort, pgPort int) string {
	return fmt.Sprintf(`# written by bench/cmd/reshard-bench; pgshard reshard rewrites it at the cutover
listen: "127.0.0.1:%d"
pool:
  mode: transaction
  size: 20
  checkout_timeout: 30s
admin:
  user: %s
  password: %s
users:
  - name: %s
    password: %s
databases:
  - name: %s
    shards:
      - primary: "postgres://127.0.0.1:%d/%s"
    sharded_tables:
      - column: aid
        type: bigint
`, listenPort, adminUser, adminPassword, appUser, appPassword, appDB, pgPort, srcDB)
}

// toFile is the --to file of the reshard: the two destination databases.
func toFile(pgPort int) string {
	var b strings.Builder
	b.WriteString("shards:\n")
	for i := range destShards {
		fmt.Fprintf(&b, "  - primary: \"postgres://127.0.0.1:%d/%s\"\n", pgPort, dstDB(i))
	}
	return b.String()
}

// startPgshard writes a fresh config (database app on the source: a reshard of the previous run rewrote it) and
// the --to file, and runs `pgshard serve` until its port accepts connections. A running pgshard is stopped first.
func (e *Env) startPgshard() error {
	e.stopPgshard()
	if e.port == 0 {
		var err error
		if e.port, err = pgtest.FreePort(); err != nil {
			return err
		}
	}
	if err := os.WriteFile(e.configPath(), []byte(pgshardConfig(e.port, e.PG.Port)), 0o600); err != nil {
		return err
	}
	_ = os.Remove(e.configPath() + ".before-reshard") // the previous reshard's backup
	if err := os.WriteFile(e.toPath(), []byte(toFile(e.PG.Port)), 0o600); err != nil {
		return err
	}
	cmd := exec.Command(e.PgshardBin, "serve", "--config", e.configPath(), "--log-level", "warn")
	cmd.Dir = e.Dir
	p, err := benchkit.Start(cmd, "pgshard", e.port, filepath.Join(e.Dir, "pgshard.log"), filepath.Join(e.Dir, pgshardPid))
	if err != nil {
		return err
	}
	e.pgshard = p
	return nil
}

func (e *Env) stopPgshard() {
	if e.pgshard != nil {
		e.pgshard.Stop()
		e.pgshard = nil
	}
}

// stopAll stops pgshard, then Postgres, and removes the directory (unless Keep).
func (e *Env) stopAll(log func(string, ...any)) {
	e.stopPgshard()
	if e.PG != nil {
		if err := e.PG.Stop(); err != nil {
			log("stopping Postgres: %v", err)
		}
	}
	if e.Keep {
		log("kept %s", e.Dir)
		return
	}
	if err := os.RemoveAll(e.Dir); err != nil {
		log("%v", err)
	}
}

// sweepStale cleans up after runs killed before their own clean-up (benchkit.SweepStale): their pgshard reshard,
// pgshard and Postgres.
func sweepStale(log func(string, ...any)) {
	binDir, _ := pgbin.Dir()
	benchkit.SweepStale(dirPrefix, ownerFile, []string{reshardPid, pgshardPid}, binDir, log)
}

// stopCluster stops the Postgres of data (pg_ctl stop -m immediate), as the user postgres when we are root.
func stopCluster(data string) {
	binDir, err := pgbin.Dir()
	if err != nil {
		return
	}
	if _, err := os.Stat(filepath.Join(data, "postmaster.pid")); err != nil {
		return
	}
	benchkit.StopCluster(binDir, data)
}
