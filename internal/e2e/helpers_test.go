package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/pgshard/pgshard/internal/pgbin"
)

// dsn is a URL to database app through the proxy as user (no password when password is ""), with extra
// query parameters ("sslmode=disable" unless params name another sslmode).
func (e *env) dsn(user, password string, params ...string) string {
	u := url.URL{Scheme: "postgres", Host: e.proxy.Addr(), Path: "/app"}
	if password != "" {
		u.User = url.UserPassword(user, password)
	} else {
		u.User = url.User(user)
	}
	q := url.Values{}
	q.Set("sslmode", "disable")
	for _, p := range params {
		k, v, _ := strings.Cut(p, "=")
		q.Set(k, v)
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// connectMode connects as app through the proxy with the given default query exec mode.
func (e *env) connectMode(t *testing.T, ctx context.Context, mode pgx.QueryExecMode) *pgx.Conn {
	t.Helper()
	cfg, err := pgx.ParseConfig(e.dsn("app", "secret"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.DefaultQueryExecMode = mode
	c, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatalf("connect through pgshard: %v", err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

// pgconnConfig is a low-level connection config for app through the proxy whose context cancellation sends a
// CancelRequest (through the proxy) instead of cutting the connection.
func (e *env) pgconnConfig(t *testing.T) *pgconn.Config {
	t.Helper()
	cfg, err := pgconn.ParseConfig(e.dsn("app", "secret"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.BuildContextWatcherHandler = cancelRequestHandler
	return cfg
}

func cancelRequestHandler(pc *pgconn.PgConn) ctxwatch.Handler {
	return &pgconn.CancelRequestContextWatcherHandler{Conn: pc, DeadlineDelay: 5 * time.Second}
}

// pgconnect opens a low-level connection with cfg and closes it when the test ends.
func pgconnect(t *testing.T, ctx context.Context, cfg *pgconn.Config) *pgconn.PgConn {
	t.Helper()
	pc, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatalf("connect through pgshard: %v", err)
	}
	t.Cleanup(func() { _ = pc.Close(context.Background()) })
	return pc
}

// backendStates lists the state of every backend of role app on the cluster (the proxy's server connections),
// as pg_stat_activity shows them from a direct superuser connection.
func (e *env) backendStates(t *testing.T) []string {
	t.Helper()
	rows := e.pg.QueryStrings(t, "postgres",
		"SELECT coalesce(state, '') FROM pg_stat_activity WHERE usename = 'app' AND backend_type = 'client backend' ORDER BY pid")
	out := make([]string, len(rows))
	for i, r := range rows {
		out[i] = r[0]
	}
	return out
}

// waitFor polls cond every 20ms until it holds or d has passed; it reports whether it held.
func waitFor(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// pgError returns err's *pgconn.PgError, or nil.
func pgError(err error) *pgconn.PgError {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe
	}
	return nil
}

// wantCode fails the test unless err carries SQLSTATE one of codes.
func wantCode(t *testing.T, what string, err error, codes ...string) *pgconn.PgError {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: no error, want SQLSTATE %v", what, codes)
	}
	pe := pgError(err)
	if pe == nil || !slices.Contains(codes, pe.Code) {
		t.Fatalf("%s: got error %v (%T), want SQLSTATE %v", what, err, err, codes)
	}
	return pe
}

// rawConn is a plain TCP connection to the proxy speaking the protocol with pgproto3, for what pgx does not do.
type rawConn struct {
	net.Conn
	fe *pgproto3.Frontend
}

func (e *env) dialRaw(t *testing.T) *rawConn {
	t.Helper()
	nc, err := net.DialTimeout("tcp", e.proxy.Addr(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return &rawConn{Conn: nc, fe: pgproto3.NewFrontend(nc, nc)}
}

// send writes msgs in one write.
func (r *rawConn) send(t *testing.T, msgs ...pgproto3.FrontendMessage) {
	t.Helper()
	for _, m := range msgs {
		r.fe.Send(m)
	}
	if err := r.fe.Flush(); err != nil {
		t.Fatalf("write to pgshard: %v", err)
	}
}

// receiveUntil reads backend messages (each copied into a string description) until one of type stop, an
// error or the deadline. It returns the messages' descriptions.
func (r *rawConn) receiveUntil(t *testing.T, d time.Duration, stop func(pgproto3.BackendMessage) bool) ([]string, error) {
	t.Helper()
	_ = r.SetReadDeadline(time.Now().Add(d))
	defer r.SetReadDeadline(time.Time{})
	var got []string
	for {
		m, err := r.fe.Receive()
		if err != nil {
			return got, err
		}
		got = append(got, describe(m))
		if stop(m) {
			return got, nil
		}
	}
}

func isReady(m pgproto3.BackendMessage) bool { _, ok := m.(*pgproto3.ReadyForQuery); return ok }

// describe renders a backend message compactly, e.g. "DataRow[3]" or "CommandComplete(SELECT 1)".
func describe(m pgproto3.BackendMessage) string {
	switch m := m.(type) {
	case *pgproto3.DataRow:
		vals := make([]string, len(m.Values))
		for i, v := range m.Values {
			vals[i] = string(v)
		}
		return "DataRow[" + strings.Join(vals, ",") + "]"
	case *pgproto3.CommandComplete:
		return "CommandComplete(" + string(m.CommandTag) + ")"
	case *pgproto3.ReadyForQuery:
		return "ReadyForQuery(" + string(m.TxStatus) + ")"
	case *pgproto3.ErrorResponse:
		return "ErrorResponse(" + m.Severity + " " + m.Code + " " + m.Message + ")"
	case *pgproto3.AuthenticationOk:
		return "AuthenticationOk"
	default:
		name := fmt.Sprintf("%T", m)
		return strings.TrimPrefix(name, "*pgproto3.")
	}
}

// readAllUntilEOF reads the connection until it is closed or d passes; it returns what was read, how long it
// took, and the error that ended the read (io.EOF when the peer closed it).
func readAllUntilEOF(c net.Conn, d time.Duration) ([]byte, time.Duration, error) {
	start := time.Now()
	_ = c.SetReadDeadline(start.Add(d))
	var out []byte
	buf := make([]byte, 4096)
	for {
		n, err := c.Read(buf)
		out = append(out, buf[:n]...)
		if err != nil {
			return out, time.Since(start), err
		}
	}
}

// decodeBackend decodes the backend messages in b (a stream the proxy sent).
func decodeBackend(b []byte) ([]pgproto3.BackendMessage, error) {
	fe := pgproto3.NewFrontend(strings.NewReader(string(b)), io.Discard)
	var out []pgproto3.BackendMessage
	for {
		m, err := fe.Receive()
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return out, nil
			}
			return out, err
		}
		// Receive reuses message values: keep ErrorResponses (the only ones the tests look into) as copies.
		if er, ok := m.(*pgproto3.ErrorResponse); ok {
			c := *er
			m = &c
		}
		out = append(out, m)
	}
}

// pgTool finds a Postgres client program (psql, pgbench) next to the server programs, or on PATH.
func pgTool(t *testing.T, name string) string {
	t.Helper()
	if dir, err := pgbin.Dir(); err == nil {
		p := filepath.Join(dir, name)
		if _, err := exec.LookPath(p); err == nil {
			return p
		}
	}
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s not found next to the Postgres server programs nor on PATH", name)
	}
	return p
}

// runTool runs a client program against the proxy with PGPASSWORD set and returns its combined output.
func runTool(ctx context.Context, password string, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(cmd.Environ(), "PGPASSWORD="+password, "PGCONNECT_TIMEOUT=10", "PGSSLMODE=disable",
		"PGAPPNAME=pgshard-e2e", "PSQLRC=/dev/null")
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func itoa(n int) string { return strconv.Itoa(n) }

// rawLogin opens a raw connection and logs in as the trust user "trusted"; it returns once the proxy said
// ReadyForQuery.
func (e *env) rawLogin(t *testing.T) *rawConn {
	t.Helper()
	r := e.dialRaw(t)
	r.send(t, &pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersionNumber,
		Parameters: map[string]string{"user": "trusted", "database": "app"}})
	got, err := r.receiveUntil(t, 10*time.Second, isReady)
	if err != nil {
		t.Fatalf("raw login: %v (got %v)", err, got)
	}
	return r
}

// isEOF reports an error that means the peer closed the connection.
func isEOF(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET)
}

// startupApp is the StartupMessage of user app for database app.
var startupApp = pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersionNumber,
	Parameters: map[string]string{"user": "app", "database": "app"}}

// rssKB returns the proxy process's resident set size and its peak (VmRSS, VmHWM), in kB.
func (p *Proxy) rssKB(t *testing.T) (rss, peak int) {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		t.Skipf("cannot read the proxy's memory use: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		switch f[0] {
		case "VmRSS:":
			rss, _ = strconv.Atoi(f[1])
		case "VmHWM:":
			peak, _ = strconv.Atoi(f[1])
		}
	}
	return rss, peak
}
