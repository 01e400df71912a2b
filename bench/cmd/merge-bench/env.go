package main

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/pgshard/pgshard/bench/internal/benchkit"

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
	pgshard    *Proc
}

// newEnv makes the run's directory (under /tmp when root, so that the user postgres can reach it) with an owner
// file naming this process, for sweepStale.
func newEnv() (*Env, error) {
	base := os.TempDir()
	if os.Geteuid() == 0 {
		base = "/tmp"
	}
	dir, err := os.MkdirTemp(base, dirPrefix)
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, ownerFile), []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
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

// Proc is the running pgshard.
type Proc struct {
	Port    int
	LogPath string
	cmd     *exec.Cmd
	done    chan struct{}
	err     error
}

// Pid is pgshard's process id (no wrapper in between: /proc/<pid> is pgshard's).
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Alive reports whether pgshard still runs.
func (p *Proc) Alive() bool {
	if p == nil {
		return false
	}
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// ExitErr says how pgshard ended, with the end of its log.
func (p *Proc) ExitErr() string {
	return fmt.Sprintf("pgshard exited (%v); its log ends with:\n%s", p.err, benchkit.TailFile(p.LogPath, 15))
}

// Stop sends SIGTERM to pgshard (by pid), SIGKILL when it has not exited 10 s later.
func (p *Proc) Stop() {
	if !p.Alive() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
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
func (e *Env) startPgshard() (*Proc, error) {
	port, err := pgtest.FreePort()
	if err != nil {
		return nil, err
	}
	cfgPath := filepath.Join(e.Dir, "pgshard.yaml")
	if err := os.WriteFile(cfgPath, []byte(e.pgshardConfig(port)), 0o600); err != nil {
		return nil, err
	}
	logPath := filepath.Join(e.Dir, "pgshard.log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer logf.Close() // the child has its own descriptor
	args := []string{"serve", "--config", cfgPath, "--log-level", "warn"}
	if e.PprofAddr != "" {
		args = append(args, "--pprof", e.PprofAddr)
	}
	cmd := exec.Command(e.PgshardBin, args...)
	cmd.Dir = e.Dir
	cmd.Stdout, cmd.Stderr = logf, logf
	// Own process group: Ctrl-C reaches only the harness, which stops pgshard itself after cutting the run short.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM, Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting pgshard: %w", err)
	}
	p := &Proc{Port: port, LogPath: logPath, cmd: cmd, done: make(chan struct{})}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	e.pgshard = p
	_ = os.WriteFile(filepath.Join(e.Dir, pgshardPid), []byte(strconv.Itoa(p.Pid())+"\n"), 0o644)

	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return p, nil
		}
		if !p.Alive() {
			time.Sleep(50 * time.Millisecond)
			return nil, errors.New(p.ExitErr())
		}
		if time.Now().After(deadline) {
			p.Stop()
			return nil, fmt.Errorf("pgshard does not listen on %s after 20 s: %v\n%s", addr, err, benchkit.TailFile(logPath, 15))
		}
	}
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

// sweepStale cleans up after runs killed before their own clean-up: for every <tmp>/pgshard-merge-bench-*
// directory whose owner process is gone it kills the pgshard named in its pid file (when that pid still runs with
// the directory on its command line), stops its Postgres and removes the directory.
func sweepStale(log func(string, ...any)) {
	dirs, _ := filepath.Glob(filepath.Join("/tmp", dirPrefix+"*"))
	if d := os.TempDir(); d != "/tmp" {
		more, _ := filepath.Glob(filepath.Join(d, dirPrefix+"*"))
		dirs = append(dirs, more...)
	}
	for _, dir := range dirs {
		b, err := os.ReadFile(filepath.Join(dir, ownerFile))
		if err != nil {
			continue
		}
		owner, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || owner <= 0 || benchkit.ProcessAlive(owner) {
			continue
		}
		if b, err := os.ReadFile(filepath.Join(dir, pgshardPid)); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 0 {
				if cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); err == nil &&
					bytes.Contains(cmdline, []byte(dir)) {
					_ = syscall.Kill(pid, syscall.SIGKILL)
				}
			}
		}
		data := filepath.Join(dir, "pg", "data")
		if _, err := os.Stat(filepath.Join(data, "postmaster.pid")); err == nil {
			stopCluster(data)
		}
		log("removed %s, left behind by a killed run (pid %d)", dir, owner)
		_ = os.RemoveAll(dir)
	}
}

// stopCluster stops the Postgres of data (pg_ctl stop -m immediate), as the user postgres when we are root.
func stopCluster(data string) {
	binDir, err := pgtest.BinDir()
	if err != nil {
		return
	}
	if _, err := os.Stat(filepath.Join(data, "postmaster.pid")); err != nil {
		return
	}
	benchkit.StopCluster(binDir, data)
}
