package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/pgshard/pgshard/bench/internal/benchkit"

	"github.com/jackc/pgx/v5"

	"github.com/pgshard/pgshard/internal/pgbin"
	"github.com/pgshard/pgshard/internal/pgtest"
)

// Target names, in the order each repetition runs them.
const (
	Direct    = "direct"
	PgBouncer = "pgbouncer"
	Pgshard   = "pgshard"
	// PgshardPrimary is pgshard with read_write_split off, in the replica scenarios.
	PgshardPrimary = "pgshard-primary"
)

const (
	appUser     = "app"
	appPassword = "secret"
	appDB       = "app"   // the database name clients use through a proxy
	shardDB     = "app_0" // its name on the Postgres cluster
	ownerFile   = "bench.owner"
)

// Env is what a bench run started: one Postgres cluster, the binaries, and the proxies of the current scenario.
type Env struct {
	Dir        string
	PG         *pgtest.Cluster
	PGBinDir   string
	Pgbench    string
	PgshardBin string
	BouncerBin string
	PoolSize   int
	// ShardPoolSize is pgshard's pool.size in the sharded scenarios (per shard); 0 means PoolSize.
	ShardPoolSize int
	Keep          bool
	PprofAddr     string            // pgshard --pprof, when set
	Shards        *ShardSetup       // the sharded scenarios' shard databases, once set up
	Replicas      []*pgtest.Cluster // the replica scenarios' streaming replicas of PG, once set up

	pgUID, pgGID int
	mu           sync.Mutex
	procs        []*Proc // every proxy started, for the final stop
}

// newEnv makes the run's directory under /tmp (reachable by the user postgres), with an owner file naming this
// process so that a later run can clean up after a killed one.
func newEnv() (*Env, error) {
	dir, err := benchkit.WorkDir("pgshard-bench-", ownerFile)
	if err != nil {
		return nil, err
	}
	e := &Env{Dir: dir, pgUID: -1, pgGID: -1}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("running as root needs the user postgres to run Postgres and PgBouncer as: %w", err)
		}
		e.pgUID, _ = strconv.Atoi(u.Uid)
		e.pgGID, _ = strconv.Atoi(u.Gid)
	}
	return e, nil
}

// startPostgres starts the cluster with a database app_0 owned by the role app (SCRAM password), sized for
// maxClients direct connections.
func (e *Env) startPostgres(maxClients int) error {
	binDir, err := pgbin.Dir()
	if err != nil {
		return err
	}
	e.PGBinDir = binDir
	e.Pgbench = filepath.Join(binDir, "pgbench")
	if _, err := os.Stat(e.Pgbench); err != nil {
		if p, lerr := exec.LookPath("pgbench"); lerr == nil {
			e.Pgbench = p
		} else {
			return fmt.Errorf("pgbench not found next to initdb (%s) nor on PATH", binDir)
		}
	}
	pg, err := pgtest.StartDir(filepath.Join(e.Dir, "pg"), 0, pgtest.Options{
		Databases:     []string{shardDB},
		DatabaseOwner: appUser,
		Users:         []pgtest.UserSpec{{Name: appUser, Password: appPassword}},
		Settings: map[string]string{
			"max_connections":    strconv.Itoa(max(300, maxClients+50)),
			"shared_buffers":     "512MB", // scale 10 (~160 MB) stays in memory
			"max_wal_size":       "4GB",   // no checkpoint storm in the middle of a TPC-B run
			"checkpoint_timeout": "30min",
			"log_min_messages":   "warning",
		},
	})
	if err != nil {
		return err
	}
	e.PG = pg
	return nil
}

// postmasterPid is the pid in the first line of the cluster's postmaster.pid (0 when unknown).
func (e *Env) postmasterPid() int { return postmasterPidOf(e.PG) }

// postgresCPU is the CPU time the cluster's processes and its replicas' have used.
func (e *Env) postgresCPU() time.Duration {
	d := benchkit.TreeCPU(e.postmasterPid())
	for _, r := range e.Replicas {
		d += benchkit.TreeCPU(postmasterPidOf(r))
	}
	return d
}

func postmasterPidOf(c *pgtest.Cluster) int {
	b, err := os.ReadFile(filepath.Join(c.DataDir, "postmaster.pid"))
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	pid, _ := strconv.Atoi(strings.TrimSpace(line))
	return pid
}

// initData runs `pgbench -i -s scale` directly on Postgres, once for the whole run.
func (e *Env) initData(ctx context.Context, scale int) error {
	cmd := exec.CommandContext(ctx, e.Pgbench, "-i", "-q", "-s", strconv.Itoa(scale),
		"-h", "127.0.0.1", "-p", strconv.Itoa(e.PG.Port), "-U", appUser, shardDB)
	cmd.Env = append(cleanEnv(), "PGPASSWORD="+appPassword, "PGSSLMODE=disable")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("pgbench -i: %w\n%s", err, out)
	}
	return nil
}

// resetWrites undoes what the TPC-B-like script leaves behind (history rows, dead tuples) before each of its cases.
func (e *Env) resetWrites(ctx context.Context) error {
	if err := e.PG.ExecContext(ctx, shardDB, "TRUNCATE pgbench_history"); err != nil {
		return err
	}
	return e.PG.ExecContext(ctx, shardDB, "VACUUM ANALYZE pgbench_branches, pgbench_tellers, pgbench_accounts")
}

// Proc is a running proxy and the database its clients open.
type Proc struct {
	*benchkit.Proc
	DB string
}

// start runs a proxy and waits until its port accepts connections.
func (e *Env) start(name string, port int, db string, asPostgres bool, bin string, args ...string) (*Proc, error) {
	cmd := exec.Command(bin, args...)
	cmd.Env = cleanEnv()
	cmd.Dir = e.Dir
	if asPostgres && e.pgUID >= 0 {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(e.pgUID), Gid: uint32(e.pgGID)}}
		cmd.Env = append(cmd.Env, "HOME="+e.Dir)
	}
	bp, err := benchkit.Start(cmd, name, port, filepath.Join(e.Dir, name+".log"), filepath.Join(e.Dir, name+".pid"))
	if err != nil {
		return nil, err
	}
	p := &Proc{Proc: bp, DB: db}
	e.mu.Lock()
	e.procs = append(e.procs, p)
	e.mu.Unlock()
	return p, nil
}

// startPgshard runs `pgshard serve` on a config equivalent to the PgBouncer one: transaction pooling, PoolSize
// server connections, SCRAM to clients and to the server. For a sharded scenario, database app is the two shard
// databases (pgbench_accounts sharded by aid, the other pgbench tables replicated) instead of the reference
// database; for a TLS one, pgshard requires TLS of its clients.
func (e *Env) startPgshard(s Scenario, target string) (*Proc, error) {
	sharded := s.Sharded
	port, err := pgtest.FreePort()
	if err != nil {
		return nil, err
	}
	cfg := fmt.Sprintf(`# written by bench/cmd/pgbench-compare
listen: "127.0.0.1:%d"
pool:
  mode: transaction
  size: %d
  checkout_timeout: 30s
  max_client_connections: 5000
users:
  - name: %s
    password: %s
databases:
`, port, e.poolSize(sharded), appUser, appPassword)
	name := "pgshard.yaml"
	if s.TLS {
		cert, key, err := e.tlsFiles()
		if err != nil {
			return nil, err
		}
		cfg = strings.Replace(cfg, "users:\n", fmt.Sprintf("tls: {mode: require, cert: %s, key: %s}\nusers:\n", cert, key), 1)
		name = "pgshard-tls.yaml"
	}
	switch {
	case sharded:
		cfg += e.shardedConfig()
		name = "pgshard-sharded.yaml"
	case s.Replicas:
		split := "replicas"
		if target == PgshardPrimary {
			split = "off"
		}
		var urls []string
		for _, r := range e.Replicas {
			urls = append(urls, fmt.Sprintf("\"postgres://127.0.0.1:%d/%s\"", r.Port, shardDB))
		}
		cfg += fmt.Sprintf("  - name: %s\n    read_write_split: %s\n    shards:\n      - primary: \"postgres://127.0.0.1:%d/%s\"\n        replicas: [%s]\n",
			appDB, split, e.PG.Port, shardDB, strings.Join(urls, ", "))
		name = "pgshard-replicas-" + split + ".yaml"
	default:
		cfg += fmt.Sprintf("  - name: %s\n    shards:\n      - primary: \"postgres://127.0.0.1:%d/%s\"\n", appDB, e.PG.Port, shardDB)
	}
	path := filepath.Join(e.Dir, name)
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	// warn: no log line per connection, like PgBouncer with log_connections = 0 below.
	args := []string{"serve", "--config", path, "--log-level", "warn"}
	if e.PprofAddr != "" {
		args = append(args, "--pprof", e.PprofAddr)
	}
	return e.start(target, port, appDB, false, e.PgshardBin, args...)
}

// poolSize is pgshard's pool.size: PoolSize, or ShardPoolSize (when set) for the sharded scenarios.
func (e *Env) poolSize(sharded bool) int {
	if sharded && e.ShardPoolSize > 0 {
		return e.ShardPoolSize
	}
	return e.PoolSize
}

// roleVerifier reads the role's SCRAM-SHA-256 verifier from pg_authid.
func (e *Env) roleVerifier(ctx context.Context, role string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, e.PG.SuperDSN("postgres"))
	if err != nil {
		return "", err
	}
	defer conn.Close(context.Background())
	var v string
	if err := conn.QueryRow(ctx, "SELECT rolpassword FROM pg_authid WHERE rolname = $1", role).Scan(&v); err != nil {
		return "", err
	}
	if !strings.HasPrefix(v, "SCRAM-SHA-256$") {
		return "", fmt.Errorf("role %s has no SCRAM-SHA-256 verifier", role)
	}
	return v, nil
}

// startPgBouncer runs PgBouncer (as the user postgres when we are root: it refuses to run as root) with the pool
// pgshard gets: transaction pooling, PoolSize server connections, SCRAM to clients and to the server.
//
// Its auth_file holds the role's SCRAM verifier copied from pg_authid, as PgBouncer's documentation recommends:
// PgBouncer then checks clients against it and logs into Postgres with the client's SCRAM keys. With a cleartext
// password there instead, PgBouncer 1.18 derives the salted password (PBKDF2, 4096 rounds) on every client login,
// which costs it ~3 ms of CPU per connection (measured here in the connect scenario): a set-up nobody should run.
// pgshard keeps its verifier in memory, so both pay the same SCRAM exchange per connection.
func (e *Env) startPgBouncer(ctx context.Context, tls bool) (*Proc, error) {
	port, err := pgtest.FreePort()
	if err != nil {
		return nil, err
	}
	secret, err := e.roleVerifier(ctx, appUser)
	if err != nil {
		return nil, fmt.Errorf("reading the SCRAM verifier of %s for PgBouncer's auth_file: %w", appUser, err)
	}
	dir := filepath.Join(e.Dir, "pgbouncer")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	ini := fmt.Sprintf(`; written by bench/cmd/pgbench-compare
[databases]
%s = host=127.0.0.1 port=%d dbname=%s

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = %d
unix_socket_dir =
listen_backlog = 4096
auth_type = scram-sha-256
auth_file = %s
pool_mode = transaction
default_pool_size = %d
min_pool_size = 0
reserve_pool_size = 0
max_client_conn = 5000
query_wait_timeout = 30
ignore_startup_parameters = extra_float_digits
log_connections = 0
log_disconnections = 0
stats_period = 3600
`, appDB, e.PG.Port, shardDB, port, filepath.Join(dir, "userlist.txt"), e.PoolSize)
	if tls {
		cert, key, err := e.tlsFiles()
		if err != nil {
			return nil, err
		}
		ini += fmt.Sprintf("client_tls_sslmode = require\nclient_tls_cert_file = %s\nclient_tls_key_file = %s\n", cert, key)
	}
	files := map[string]string{
		"pgbouncer.ini": ini,
		"userlist.txt":  fmt.Sprintf("%q %q\n", appUser, secret),
	}
	for name, content := range files {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			return nil, err
		}
	}
	if e.pgUID >= 0 {
		for _, p := range []string{dir, filepath.Join(dir, "pgbouncer.ini"), filepath.Join(dir, "userlist.txt")} {
			if err := os.Chown(p, e.pgUID, e.pgGID); err != nil {
				return nil, err
			}
		}
	}
	return e.start(PgBouncer, port, appDB, true, e.BouncerBin, filepath.Join(dir, "pgbouncer.ini"))
}

// stopAll stops every proxy still running, then Postgres, and removes the run's directory (unless Keep).
func (e *Env) stopAll() {
	e.mu.Lock()
	procs := e.procs
	e.procs = nil
	e.mu.Unlock()
	for _, p := range procs {
		p.Stop()
	}
	for _, r := range e.Replicas {
		if err := r.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "bench: stopping a replica: %v\n", err)
		}
		if !e.Keep {
			_ = os.RemoveAll(r.Dir)
		}
	}
	if e.PG != nil {
		if err := e.PG.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "bench: stopping Postgres: %v\n", err)
		}
	}
	if e.Keep {
		fmt.Fprintf(os.Stderr, "bench: kept %s\n", e.Dir)
		return
	}
	if err := os.RemoveAll(e.Dir); err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
	}
}

// sweepStale cleans up after bench runs that were killed before their own clean-up (benchkit.SweepStale): the
// proxies and Postgres of every /tmp/pgshard-bench-* directory whose owner is gone.
func sweepStale(pgBinDir string) {
	benchkit.SweepStale("pgshard-bench-", ownerFile, []string{Pgshard + ".pid", PgBouncer + ".pid"}, pgBinDir,
		func(format string, a ...any) { fmt.Fprintf(os.Stderr, "bench: "+format+"\n", a...) })
}

// tlsFiles returns the certificate and key the TLS scenarios' proxies serve, made once per run (self-signed,
// ECDSA P-256: what a TLS 1.3 client negotiates by default), readable by PgBouncer's user.
func (e *Env) tlsFiles() (cert, key string, err error) {
	cert, key = filepath.Join(e.Dir, "tls.crt"), filepath.Join(e.Dir, "tls.key")
	if _, err := os.Stat(cert); err == nil {
		return cert, key, nil
	}
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		return "", "", err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return "", "", err
	}
	for path, b := range map[string][]byte{cert: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		key: pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})} {
		if err := os.WriteFile(path, b, 0o600); err != nil {
			return "", "", err
		}
		if e.pgUID >= 0 {
			if err := os.Chown(path, e.pgUID, e.pgGID); err != nil {
				return "", "", err
			}
		}
	}
	return cert, key, nil
}

// setupReplicas makes two streaming replicas of the cluster (pg_basebackup -R), once its data is in, and waits
// until they have replayed all of it.
func (e *Env) setupReplicas(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	for range 2 {
		r, err := pgtest.NewReplica(e.PG)
		if err != nil {
			return err
		}
		e.Replicas = append(e.Replicas, r)
	}
	for _, r := range e.Replicas {
		if err := r.WaitReplayed(ctx, e.PG); err != nil {
			return err
		}
	}
	return nil
}
