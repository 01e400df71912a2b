package compat

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/pgshard/pgshard/internal/pgtest"
)

// The proxy helpers of internal/e2e are test-only there, so the little this suite needs is repeated here: build
// the binary, run `pgshard serve` on a config, wait for its port, stop it by its pid.

// pgshardBinary returns $PGSHARD_BIN, or builds cmd/pgshard into dir.
func pgshardBinary(t *testing.T, dir string) string {
	if bin := os.Getenv("PGSHARD_BIN"); bin != "" {
		abs, err := filepath.Abs(bin)
		if err != nil {
			t.Fatal(err)
		}
		return abs
	}
	bin := filepath.Join(dir, "pgshard")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/pgshard")
	cmd.Dir = ".." // go test runs in compat/
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/pgshard: %v\n%s", err, out)
	}
	return bin
}

// proxyConfig serves the database "regression" of the cluster as one unsharded shard, to the superuser only:
// the regression tests never log in as another role (they \c as the same user and switch with SET ROLE / SET
// SESSION AUTHORIZATION). The pool is larger than pg_regress's largest parallel group (20 tests) so that no test
// waits for a connection, and checkout_timeout is generous so that a slow test is not cut.
//
// Mode "session-fresh" is session mode with pool.server_reuse false: each client session gets a backend of its own.
func proxyConfig(port int, mode string, cluster *pgtest.Cluster) string {
	reuse := true
	if mode == modeSessionFresh {
		mode, reuse = "session", false
	}
	return fmt.Sprintf(`listen: "127.0.0.1:%d"
shutdown_timeout: 2s
pool:
  mode: %s
  server_reuse: %v
  size: 40
  checkout_timeout: 60s
users:
  - name: %s
    auth_method: trust
databases:
  - name: regression
    shards:
      - primary: "postgres://%[4]s@%s/regression"
`, port, mode, reuse, pgtest.Superuser, cluster.Addr())
}

// proxy is a running pgshard process.
type proxy struct {
	port int
	cmd  *exec.Cmd
	done chan struct{}
}

// startProxy runs `pgshard serve` in dir (config.yaml and pgshard.log there) and stops it when the test ends.
func startProxy(t *testing.T, bin, dir, mode string, cluster *pgtest.Cluster) *proxy {
	port, err := pgtest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfg, []byte(proxyConfig(port, mode, cluster)), 0o600); err != nil {
		t.Fatal(err)
	}
	logFile, err := os.Create(filepath.Join(dir, "pgshard.log"))
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{port: port, done: make(chan struct{})}
	p.cmd = exec.Command(bin, "serve", "--config", cfg)
	p.cmd.Stdout, p.cmd.Stderr = logFile, logFile
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = p.cmd.Wait(); logFile.Close(); close(p.done) }()
	t.Cleanup(p.stop)

	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	for deadline := time.Now().Add(15 * time.Second); ; {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return p
		}
		select {
		case <-p.done:
			t.Fatalf("pgshard exited at start; see %s", logFile.Name())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("pgshard did not listen on %s: %v; see %s", addr, err, logFile.Name())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop sends SIGTERM and kills the process when it has not exited 10 s later.
func (p *proxy) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}
