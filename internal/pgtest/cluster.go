package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pgshard/pgshard/internal/pgbin"
)

// Superuser is the name of every cluster's superuser; it has no password and logs in by trust over the unix socket
// and over 127.0.0.1.
const Superuser = "postgres"

// startTimeout bounds pg_ctl's wait for the server to accept connections.
const startTimeout = 60 * time.Second

// Options say what a cluster holds besides the defaults.
type Options struct {
	// Databases are created after the start, owned by DatabaseOwner (the superuser when empty).
	Databases []string
	// DatabaseOwner, when set, owns Databases; name one of Users (or another existing role).
	DatabaseOwner string
	// Users are login roles created after the start (before the databases).
	Users []UserSpec
	// Settings are extra postgresql.conf settings; they override the defaults. Values are quoted as needed
	// ("on", "64", "5s", already-quoted "'x'" all work).
	Settings map[string]string
	// HBA lines go into pg_hba.conf before the default lines (first match wins), e.g.
	// "host all app 127.0.0.1/32 password".
	HBA []string
}

// UserSpec is a login role. Its password is stored as a SCRAM-SHA-256 verifier, or as an md5 hash when MD5 is set
// (pg_hba then asks that user for md5 over TCP). An empty Password means no password (the role cannot log in over
// TCP).
type UserSpec struct {
	Name      string
	Password  string
	Superuser bool
	MD5       bool
}

// Cluster is one running Postgres server listening on 127.0.0.1:Port and on a unix socket in SocketDir.
type Cluster struct {
	Dir       string // holds data/, the server log and (usually) the unix socket
	DataDir   string // PGDATA
	SocketDir string // unix_socket_directories; Dir unless its path is too long for a socket
	LogFile   string // the server's log
	Port      int
	BinDir    string

	opts       Options
	persistent bool
	stopMode   string // pg_ctl stop -m
	mu         sync.Mutex
}

// Start starts a fresh cluster for a test on a free loopback port and registers a cleanup that stops it
// (`pg_ctl stop -m immediate`) and removes its directory (kept when PGTEST_KEEP is set). It fails the test when
// Postgres cannot be found or started. Safe to call from parallel tests. In -short mode it skips the test.
func Start(t testing.TB, opts Options) *Cluster {
	t.Helper()
	return startForTest(t, func() (*Cluster, error) { return startTemp(opts) })
}

// startForTest runs start for t (skipped in -short mode), and stops the cluster it started and removes its
// directory when t ends (keeps it when PGTEST_KEEP is set), with the server's last log lines when t failed.
func startForTest(t testing.TB, start func() (*Cluster, error)) *Cluster {
	t.Helper()
	if testing.Short() {
		t.Skip("pgtest: skipped in -short mode: starts a real Postgres")
	}
	c, err := start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("pgtest: server log of the cluster on port %d (%s), last lines:\n%s", c.Port, c.LogFile, tail(c.LogFile, 30))
		}
		if err := c.Stop(); err != nil {
			t.Errorf("pgtest: %v", err)
		}
		if os.Getenv("PGTEST_KEEP") != "" {
			t.Logf("pgtest: PGTEST_KEEP is set: kept %s", c.Dir)
			return
		}
		if err := os.RemoveAll(c.Dir); err != nil {
			t.Errorf("pgtest: %v", err)
		}
	})
	return c
}

func startTemp(opts Options) (c *Cluster, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*startTimeout)
	defer cancel()
	binDir, err := pgbin.Dir()
	if err != nil {
		return nil, err
	}
	sweepOnce.Do(func() { sweepStale(ctx, binDir) })
	dir, err := newTempDir()
	if err != nil {
		return nil, err
	}
	c = newCluster(dir, binDir, opts)
	c.stopMode = "immediate"
	defer func() {
		if err != nil {
			_ = c.Stop()
			_ = os.RemoveAll(dir)
		}
	}()

	fromTemplate := c.copyTemplate(ctx)
	if !fromTemplate {
		if err := c.initdb(ctx, true); err != nil {
			return nil, err
		}
	}
	err = c.startOnFreePort(ctx)
	if err != nil && fromTemplate {
		// Should not happen; distrust the template and make this cluster the slow way once.
		_ = c.Stop()
		if err := os.RemoveAll(c.DataDir); err != nil {
			return nil, err
		}
		if err := c.initdb(ctx, true); err != nil {
			return nil, err
		}
		err = c.startOnFreePort(ctx)
	}
	if err != nil {
		return nil, err
	}
	if err := c.setup(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// startOnFreePort configures the cluster for a free loopback port and starts it, on another port when another
// process took that one between FreePort and the server's bind (up to 8 tries).
func (c *Cluster) startOnFreePort(ctx context.Context) error {
	for attempt := 1; ; attempt++ {
		port, err := FreePort()
		if err != nil {
			return err
		}
		c.Port = port
		if err := c.writeConfig(); err != nil {
			return err
		}
		err = c.pgctlStart(ctx)
		if err == nil || !errors.Is(err, errBind) || attempt == 8 {
			return err
		}
	}
}

// StartDir is Start for tools: the cluster lives in dir (created, and initdb'ed on first use, kept afterwards) and
// listens on port (a free one when 0). When the cluster in dir is running already it is left running (an error if
// on another port); otherwise it is configured and started. Users and databases of opts are created when missing
// (existing users get their password and superuser flag set again). The server keeps running after the process
// exits; Stop stops it (`pg_ctl stop -m fast`).
func StartDir(dir string, port int, opts Options) (*Cluster, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*startTimeout)
	defer cancel()
	binDir, err := pgbin.Dir()
	if err != nil {
		return nil, err
	}
	if dir, err = filepath.Abs(dir); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if err := chownToPostgres(dir); err != nil {
		return nil, err
	}
	if err := postgresCanWrite(ctx, dir); err != nil {
		return nil, err
	}
	if port == 0 {
		if port, err = FreePort(); err != nil {
			return nil, err
		}
	}
	c := newCluster(dir, binDir, opts)
	c.Port = port
	c.persistent = true
	c.stopMode = "fast"

	if _, err := os.Stat(filepath.Join(c.DataDir, "PG_VERSION")); errors.Is(err, os.ErrNotExist) {
		if err := c.initdb(ctx, false); err != nil {
			return nil, err
		}
	} else if err != nil {
		return nil, err
	}
	if running, runningPort := c.status(ctx); running {
		if runningPort != port {
			return nil, fmt.Errorf("pgtest: the cluster in %s is running on port %d, not %d; stop it first", c.DataDir, runningPort, port)
		}
	} else {
		if err := c.writeConfig(); err != nil {
			return nil, err
		}
		if err := c.pgctlStart(ctx); err != nil {
			return nil, err
		}
	}
	if err := c.setup(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

func newCluster(dir, binDir string, opts Options) *Cluster {
	c := &Cluster{
		Dir:       dir,
		DataDir:   filepath.Join(dir, "data"),
		SocketDir: dir,
		LogFile:   filepath.Join(dir, "postgres.log"),
		BinDir:    binDir,
		opts:      opts,
	}
	// A unix socket path must fit in sockaddr_un (107 bytes); fall back to the temp dir (the port keeps the
	// name unique there).
	if len(filepath.Join(dir, ".s.PGSQL.65535.lock")) > 100 {
		c.SocketDir = tempBase()
	}
	return c
}

// Stop stops the server (immediately for Start's clusters, "fast" for StartDir's). Stopping a stopped cluster is
// not an error.
func (c *Cluster) Stop() error { return c.stop(c.stopMode) }

// StopFast stops the server as an operator does before a switchover (`pg_ctl stop -m fast`): its sessions are
// ended with 57P01, and its replicas have all its WAL, committed transactions included, before it is down.
func (c *Cluster) StopFast() error { return c.stop("fast") }

// Crash stops the server the way a power cut would (`pg_ctl stop -m immediate`): no checkpoint, connections cut
// without a goodbye. With the default synchronous_commit=off the last few hundred milliseconds of commits are
// lost; set Settings["synchronous_commit"] = "on" in tests that count on committed data surviving a crash.
func (c *Cluster) Crash() error { return c.stop("immediate") }

func (c *Cluster) stop(mode string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout+10*time.Second)
	defer cancel()
	if _, err := os.Stat(filepath.Join(c.DataDir, "postmaster.pid")); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	_, err := runPG(ctx, c.bin("pg_ctl"), "stop", "-D", c.DataDir, "-m", mode, "-w", "-t", "60", "-s")
	if err != nil {
		if running, _ := c.status(ctx); !running {
			return nil
		}
		return fmt.Errorf("pgtest: stopping the cluster on port %d: %w", c.Port, err)
	}
	return nil
}

// Restart starts the cluster again on the same port, after a clean ("fast") shutdown if it runs. After Crash it
// brings the shard back through crash recovery.
func (c *Cluster) Restart() error {
	if err := c.stop("fast"); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout+10*time.Second)
	defer cancel()
	return c.pgctlStart(ctx)
}

// Addr is the server's TCP address, "127.0.0.1:port".
func (c *Cluster) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(c.Port)) }

// DSN is a URL connection string for db as user over TCP on 127.0.0.1:
// "postgres://user:password@127.0.0.1:port/db?sslmode=disable" (user and password escaped as needed).
func (c *Cluster) DSN(db, user, password string) string {
	u := url.URL{Scheme: "postgres", Host: c.Addr(), Path: "/" + db, RawQuery: "sslmode=disable"}
	if password != "" {
		u.User = url.UserPassword(user, password)
	} else {
		u.User = url.User(user)
	}
	return u.String()
}

// SuperDSN is DSN for db as the superuser "postgres" (trust, no password).
func (c *Cluster) SuperDSN(db string) string { return c.DSN(db, Superuser, "") }

// SocketDSN is a connection string for db as user over the unix socket.
func (c *Cluster) SocketDSN(db, user string) string {
	q := func(v string) string { return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(v) + "'" }
	return fmt.Sprintf("host=%s port=%d dbname=%s user=%s sslmode=disable", q(c.SocketDir), c.Port, q(db), q(user))
}

func (c *Cluster) bin(name string) string { return filepath.Join(c.BinDir, name) }

// initdb makes DataDir. noSync skips initdb's fsync of the new files (fine for throw-away clusters).
func (c *Cluster) initdb(ctx context.Context, noSync bool) error {
	args := []string{"-D", c.DataDir, "-A", "trust", "-U", Superuser, "-E", "UTF8", "--locale=C"}
	if noSync {
		args = append(args, "--no-sync")
	}
	if _, err := runPG(ctx, c.bin("initdb"), args...); err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	return nil
}

// copyTemplate fills DataDir from the machine's initdb template; false when that is not possible.
func (c *Cluster) copyTemplate(ctx context.Context) bool {
	tmpl, err := templateDir(ctx, c.BinDir)
	if err != nil {
		return false
	}
	// cp -a keeps modes and, as root, the postgres ownership.
	if err := exec.CommandContext(ctx, "cp", "-a", filepath.Join(tmpl, "data"), c.DataDir).Run(); err != nil {
		_ = os.RemoveAll(c.DataDir)
		return false
	}
	return true
}

// writeConfig writes pgtest.conf (included from postgresql.conf) and pg_hba.conf.
func (c *Cluster) writeConfig() error {
	settings := [][2]string{
		{"listen_addresses", "127.0.0.1"},
		{"port", strconv.Itoa(c.Port)},
		{"unix_socket_directories", c.SocketDir},
		{"wal_level", "logical"},
		{"max_prepared_transactions", "64"},
		{"max_connections", "200"},
		{"fsync", "off"},
		{"synchronous_commit", "off"},
		{"full_page_writes", "off"},
		{"shared_buffers", "128MB"},
		{"max_wal_senders", "10"},
		{"max_replication_slots", "10"},
		{"password_encryption", "scram-sha-256"},
		{"log_line_prefix", "%m [%p] %q%u@%d "},
	}
	keys := make([]string, 0, len(c.opts.Settings))
	for k := range c.opts.Settings {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		settings = append(settings, [2]string{k, c.opts.Settings[k]})
	}
	var conf strings.Builder
	conf.WriteString("# Written by pgtest (internal/pgtest) on every start; later lines win.\n")
	for _, kv := range settings {
		fmt.Fprintf(&conf, "%s = %s\n", kv[0], confValue(kv[1]))
	}
	pgtestConf := filepath.Join(c.DataDir, "pgtest.conf")
	if err := os.WriteFile(pgtestConf, []byte(conf.String()), 0o644); err != nil {
		return err
	}
	if err := chownToPostgres(pgtestConf); err != nil {
		return err
	}

	main := filepath.Join(c.DataDir, "postgresql.conf")
	b, err := os.ReadFile(main)
	if err != nil {
		return err
	}
	const include = "include 'pgtest.conf'"
	if !strings.Contains(string(b), "\n"+include+"\n") {
		f, err := os.OpenFile(main, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			return err
		}
		_, err = f.WriteString("\n" + include + "\n")
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}

	var hba strings.Builder
	hba.WriteString("# Written by pgtest (internal/pgtest); first match wins.\n")
	for _, line := range c.opts.HBA {
		hba.WriteString(line + "\n")
	}
	hba.WriteString("local all         postgres              trust\n")
	hba.WriteString("local replication postgres              trust\n")
	hba.WriteString("host  all         postgres 127.0.0.1/32 trust\n")
	hba.WriteString("host  replication postgres 127.0.0.1/32 trust\n")
	for _, u := range c.opts.Users {
		if u.MD5 {
			fmt.Fprintf(&hba, "local all %s md5\n", hbaName(u.Name))
			fmt.Fprintf(&hba, "host  all %s 127.0.0.1/32 md5\n", hbaName(u.Name))
		}
	}
	hba.WriteString("local all         all                   scram-sha-256\n")
	hba.WriteString("host  all         all      127.0.0.1/32 scram-sha-256\n")
	hba.WriteString("host  replication all      127.0.0.1/32 scram-sha-256\n")
	hbaFile := filepath.Join(c.DataDir, "pg_hba.conf")
	if err := os.WriteFile(hbaFile, []byte(hba.String()), 0o600); err != nil {
		return err
	}
	return chownToPostgres(hbaFile)
}

func confValue(v string) string {
	if len(v) >= 2 && v[0] == '\'' && v[len(v)-1] == '\'' {
		return v
	}
	return "'" + strings.ReplaceAll(v, "'", "''") + "'"
}

func hbaName(name string) string { return `"` + strings.ReplaceAll(name, `"`, `""`) + `"` }

// errBind marks a start that failed because the port was taken.
var errBind = errors.New("port in use")

// pgctlStart starts the server and waits until it accepts connections; on failure the error holds the end of the
// server log.
func (c *Cluster) pgctlStart(ctx context.Context) error {
	var logStart int64
	if st, err := os.Stat(c.LogFile); err == nil {
		logStart = st.Size()
	}
	_, err := runPG(ctx, c.bin("pg_ctl"), "start", "-D", c.DataDir, "-l", c.LogFile, "-w", "-t",
		strconv.Itoa(int(startTimeout/time.Second)), "-s")
	if err == nil {
		return nil
	}
	log := readFrom(c.LogFile, logStart)
	if strings.Contains(log, "could not bind") || strings.Contains(log, "Address already in use") {
		err = fmt.Errorf("%w: %w", errBind, err)
	}
	return fmt.Errorf("pgtest: starting Postgres (port %d, data %s): %w\nserver log (%s), last lines:\n%s",
		c.Port, c.DataDir, err, c.LogFile, tail(c.LogFile, 25))
}

func readFrom(path string, offset int64) string {
	b, err := os.ReadFile(path)
	if err != nil || offset > int64(len(b)) {
		return ""
	}
	return string(b[offset:])
}

// status reports whether the server of DataDir runs, and on which port (from postmaster.pid).
func (c *Cluster) status(ctx context.Context) (running bool, port int) {
	if _, err := runPG(ctx, c.bin("pg_ctl"), "status", "-D", c.DataDir); err != nil {
		return false, 0
	}
	b, err := os.ReadFile(filepath.Join(c.DataDir, "postmaster.pid"))
	if err != nil {
		return true, 0
	}
	lines := strings.Split(string(b), "\n")
	if len(lines) >= 4 {
		port, _ = strconv.Atoi(strings.TrimSpace(lines[3]))
	}
	return true, port
}

var (
	portMu     sync.Mutex
	portsGiven = map[int]bool{}
)

// FreePort returns a loopback TCP port that was free a moment ago and that this process has not handed out
// before. Another process may still take it; Start retries with another port when the bind fails.
func FreePort() (int, error) {
	portMu.Lock()
	defer portMu.Unlock()
	for range 100 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, fmt.Errorf("pgtest: finding a free port: %w", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		_ = l.Close()
		if !portsGiven[port] {
			portsGiven[port] = true
			return port, nil
		}
	}
	return 0, errors.New("pgtest: no free loopback port found")
}
