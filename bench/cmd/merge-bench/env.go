package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/pgshard/pgshard/bench/internal/benchkit"

	"github.com/pgshard/pgshard/internal/pgbin"
	"github.com/pgshard/pgshard/internal/pgtest"
)

const (
	appUser     = "app"
	appPassword = "secret"
	appDB       = "app"       // the database clients open through pgshard
	refDB       = "reference" // the unsharded database the direct runs read
	dirPrefix   = "pgshard-merge-bench-"
	ownerFile   = "bench.owner"
	pgshardPid  = "pgshard.pid"
)

// shardDB is the name of shard i's database in the cluster.
func shardDB(i int) string { return fmt.Sprintf("shard_%d", i) }

// Env is what a run started: its directory, one Postgres cluster and pgshard.
type Env struct {
	Dir        string
	PG         *pgtest.Cluster
	PgshardBin string
	Shards     int
	PoolSize   int
	Keep       bool
	PprofAddr  string // pgshard --pprof, when set
	pgshard    *benchkit.Proc
}

// newEnv makes the run's directory, for sweepStale to find should this run be killed.
func newEnv() (*Env, error) {
	dir, err := benchkit.WorkDir(dirPrefix, ownerFile)
	if err != nil {
		return nil, err
	}
	return &Env{Dir: dir}, nil
}

// startPostgres starts the cluster with the reference and shard databases, owned by the role app (SCRAM).
// sharedBuffers is sized by the caller so that every table fits (see sharedBuffersFor).
func (e *Env) startPostgres(sharedBuffers string) error {
	dbs := []string{refDB}
	for i := range e.Shards {
		dbs = append(dbs, shardDB(i))
	}
	pg, err := pgtest.StartDir(filepath.Join(e.Dir, "pg"), 0, pgtest.Options{
		Databases:     dbs,
		DatabaseOwner: appUser,
		Users:         []pgtest.UserSpec{{Name: appUser, Password: appPassword}},
		Settings: map[string]string{
			"shared_buffers":       sharedBuffers,
			"max_wal_size":         "8GB", // no checkpoint in the middle of a measured COPY
			"checkpoint_timeout":   "30min",
			"maintenance_work_mem": "256MB",
			"log_min_messages":     "warning",
		},
	})
	if err != nil {
		// StartDir may have started the server before failing (creating a role or a database): stop it.
		stopCluster(filepath.Join(e.Dir, "pg", "data"))
		return err
	}
	e.PG = pg
	return nil
}

// sharedBuffersFor sizes shared_buffers so that both copies of the data (reference and shards) and their indexes
// stay in it, and that the reference table stays under a quarter of it: a sequential scan of a larger table goes
// through a small ring of buffers instead, which would make the direct full scan read from the OS page cache
// while the shards' smaller tables sit in shared buffers. ~100 bytes a row in the heap, ~60 in the indexes.
func sharedBuffersFor(totalRows int64) string {
	mb := totalRows * 480 / (1 << 20)
	return strconv.FormatInt(min(max(mb, 256), 8192), 10) + "MB"
}

// pgshardConfig is the YAML pgshard serves: database app over the shard databases, items and items_copy hash-
// sharded by id (bigint), transaction pooling.
func (e *Env) pgshardConfig(listenPort int) string {
	var b strings.Builder
	fmt.Fprintf(&b, `# written by bench/cmd/merge-bench
listen: "127.0.0.1:%d"
pool:
  mode: transaction
  size: %d
  checkout_timeout: 30s
users:
  - name: %s
    password: %s
databases:
  - name: %s
    shards:
`, listenPort, e.PoolSize, appUser, appPassword, appDB)
	for i := range e.Shards {
		fmt.Fprintf(&b, "      - primary: \"postgres://127.0.0.1:%d/%s\"\n", e.PG.Port, shardDB(i))
	}
	b.WriteString(`    sharded_tables:
      - table: items
        column: id
        type: bigint
        mapping: hash
      - table: items_copy
        column: id
        type: bigint
        mapping: hash
    unlisted_tables: error
`)
	return b.String()
}

// startPgshard writes the config and runs `pgshard serve` until its port accepts connections.
func (e *Env) startPgshard() (*benchkit.Proc, error) {
	port, err := pgtest.FreePort()
	if err != nil {
		return nil, err
	}
	cfgPath := filepath.Join(e.Dir, "pgshard.yaml")
	if err := os.WriteFile(cfgPath, []byte(e.pgshardConfig(port)), 0o600); err != nil {
		return nil, err
	}
	args := []string{"serve", "--config", cfgPath, "--log-level", "warn"}
	if e.PprofAddr != "" {
		args = append(args, "--pprof", e.PprofAddr)
	}
	cmd := exec.Command(e.PgshardBin, args...)
	cmd.Dir = e.Dir
	p, err := benchkit.Start(cmd, "pgshard", port, filepath.Join(e.Dir, "pgshard.log"), filepath.Join(e.Dir, pgshardPid))
	if err != nil {
		return nil, err
	}
	e.pgshard = p
	return p, nil
}

// stopAll stops pgshard, then Postgres, and removes the directory (unless Keep).
func (e *Env) stopAll(log func(string, ...any)) {
	if e.pgshard != nil {
		e.pgshard.Stop()
	}
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

// sweepStale cleans up after runs killed before their own clean-up (benchkit.SweepStale): their pgshard and
// Postgres.
func sweepStale(log func(string, ...any)) {
	binDir, _ := pgbin.Dir()
	benchkit.SweepStale(dirPrefix, ownerFile, []string{pgshardPid}, binDir, log)
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
