package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pgshard/pgshard/internal/pgtest"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// Binary builds cmd/pgshard once per test process and returns its path.
func Binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		_, file, _, _ := runtime.Caller(0)
		root := filepath.Join(filepath.Dir(file), "..", "..")
		dir, err := os.MkdirTemp("", "pgshard-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "pgshard")
		cmd := exec.Command("go", "build", "-o", binPath, "./cmd/pgshard")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// Proxy is a running pgshard process.
type Proxy struct {
	Port       int
	ConfigPath string // the config file it serves
	cmd        *exec.Cmd
	log        *syncBuffer
	done       chan struct{}
	err        error
}

// syncBuffer collects the proxy's log for failure messages.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// StartProxy writes configYAML (with %PORT% replaced by a free port) and runs `pgshard serve` on it until the
// test ends. It waits until the port accepts connections.
func StartProxy(t testing.TB, configYAML string) *Proxy {
	t.Helper()
	return StartProxyEnv(t, configYAML)
}

// StartProxyEnv is StartProxy with more environment variables (NAME=value) for the process.
func StartProxyEnv(t testing.TB, configYAML string, env ...string) *Proxy {
	t.Helper()
	port, err := pgtest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	cfg := bytes.ReplaceAll([]byte(configYAML), []byte("%PORT%"), []byte(strconv.Itoa(port)))
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	p := &Proxy{Port: port, ConfigPath: path, log: &syncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(Binary(t), "serve", "--config", path, "--log-level", "debug")
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	if len(env) > 0 {
		p.cmd.Env = append(os.Environ(), env...)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.Stop(t, 10*time.Second)
		if strings.Contains(p.Log(), "impossible state transition") {
			t.Errorf("pgshard logged an impossible state transition of a connection (a bug in pgshard)")
		}
		if t.Failed() {
			t.Logf("pgshard log:\n%s", p.Log())
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", p.Addr(), time.Second)
		if err == nil {
			c.Close()
			return p
		}
		select {
		case <-p.done:
			t.Fatalf("pgshard exited at start: %v\n%s", p.err, p.Log())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("pgshard did not listen on %s: %v\n%s", p.Addr(), err, p.Log())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// WriteConfig replaces the proxy's config file with configYAML (%PORT% replaced by the proxy's port), for a
// RELOAD or SIGHUP to read.
func (p *Proxy) WriteConfig(t testing.TB, configYAML string) {
	t.Helper()
	cfg := bytes.ReplaceAll([]byte(configYAML), []byte("%PORT%"), []byte(strconv.Itoa(p.Port)))
	if err := os.WriteFile(p.ConfigPath, cfg, 0o600); err != nil {
		t.Fatal(err)
	}
}

// Addr is the proxy's listen address.
func (p *Proxy) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(p.Port)) }

// DSN is a connection string to db through the proxy.
func (p *Proxy) DSN(db, user, password string) string {
	return fmt.Sprintf("postgres://%s:%s@127.0.0.1:%d/%s?sslmode=disable", user, password, p.Port, db)
}

// Log returns what the proxy logged so far.
func (p *Proxy) Log() string { return p.log.String() }

// Signal sends sig to the proxy process.
func (p *Proxy) Signal(sig os.Signal) { _ = p.cmd.Process.Signal(sig) }

// Wait waits up to d for the proxy to exit and reports whether it did.
func (p *Proxy) Wait(d time.Duration) bool {
	select {
	case <-p.done:
		return true
	case <-time.After(d):
		return false
	}
}

// Kill kills the process at once (SIGKILL) and waits for it.
func (p *Proxy) Kill() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

// Stop sends SIGTERM and waits; it kills the process if it does not exit within d.
func (p *Proxy) Stop(t testing.TB, d time.Duration) {
	select {
	case <-p.done:
		return
	default:
	}
	p.Signal(syscall.SIGTERM)
	if !p.Wait(d) {
		t.Errorf("pgshard did not exit %v after SIGTERM; killing it", d)
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// Ctx returns a context that ends with the test or after d.
func Ctx(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
