package e2e

import (
	"encoding/binary"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgproto3"
)

// TestAuth logs in through the proxy with each configured method, with right and wrong credentials, and checks
// the SQLSTATE a client sees on each refusal.
func TestAuth(t *testing.T) {
	t.Parallel()
	e := startEnv(t, envOpts{})
	ctx := Ctx(t, 60*time.Second)

	ok := func(t *testing.T, dsn string) {
		t.Helper()
		c, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Fatalf("connect %s: %v", dsn, err)
		}
		defer c.Close(ctx)
		var user string
		var n int
		if err := c.QueryRow(ctx, "SELECT current_user, 40 + 2", pgx.QueryExecModeExec).Scan(&user, &n); err != nil {
			t.Fatalf("query after login: %v", err)
		}
		// Every login is served by the server role app (server_user).
		if user != "app" || n != 42 {
			t.Fatalf("got current_user=%q n=%d, want app 42", user, n)
		}
	}
	refused := func(t *testing.T, dsn, code, msgPart string) {
		t.Helper()
		c, err := pgx.Connect(ctx, dsn)
		if err == nil {
			c.Close(ctx)
			t.Fatalf("connect %s: succeeded, want SQLSTATE %s", dsn, code)
		}
		pe := wantCode(t, "connect "+dsn, err, code)
		if pe.Severity != "FATAL" {
			t.Errorf("severity %q, want FATAL", pe.Severity)
		}
		if !strings.Contains(pe.Message, msgPart) {
			t.Errorf("message %q does not contain %q", pe.Message, msgPart)
		}
	}

	t.Run("scram ok", func(t *testing.T) { ok(t, e.dsn("app", "secret")) })
	t.Run("scram wrong password", func(t *testing.T) {
		refused(t, e.dsn("app", "wrong"), "28P01", `password authentication failed for user "app"`)
	})
	t.Run("unknown user", func(t *testing.T) {
		// Asked for a password like any role and refused as a wrong one: role names cannot be probed.
		refused(t, e.dsn("nobody", "secret"), "28P01", `password authentication failed for user "nobody"`)
		if !waitFor(3*time.Second, func() bool { return strings.Contains(e.proxy.Log(), `msg="login refused" user=nobody`) }) {
			t.Error("pgshard's log does not say why the unknown user was refused")
		}
	})
	t.Run("unknown user of the console", func(t *testing.T) {
		refused(t, e.proxy.DSN("pgshard", "app", "secret"), "28P01", `password authentication failed for user "app"`)
	})
	t.Run("unknown database", func(t *testing.T) {
		dsn := strings.Replace(e.dsn("app", "secret"), "/app?", "/nodb?", 1)
		refused(t, dsn, "3D000", `database "nodb" does not exist`)
	})
	t.Run("unknown database wrong password", func(t *testing.T) {
		// The password is checked first: a stranger learns nothing about database names.
		dsn := strings.Replace(e.dsn("app", "wrong"), "/app?", "/nodb?", 1)
		refused(t, dsn, "28P01", "password authentication failed")
	})
	t.Run("md5 ok", func(t *testing.T) { ok(t, e.dsn("md5user", "secret5")) })
	t.Run("md5 wrong password", func(t *testing.T) {
		refused(t, e.dsn("md5user", "secret"), "28P01", `password authentication failed for user "md5user"`)
	})
	t.Run("trust", func(t *testing.T) { ok(t, e.dsn("trusted", "")) })
	t.Run("trust ignores password", func(t *testing.T) { ok(t, e.dsn("trusted", "whatever")) })
	t.Run("sslmode prefer", func(t *testing.T) { ok(t, e.dsn("app", "secret", "sslmode=prefer")) })
	t.Run("sslmode require", func(t *testing.T) {
		c, err := pgx.Connect(ctx, e.dsn("app", "secret", "sslmode=require"))
		if err == nil {
			c.Close(ctx)
			t.Fatal("sslmode=require connected, but pgshard has no TLS")
		}
		if !strings.Contains(err.Error(), "refused TLS") {
			t.Fatalf("sslmode=require: error %q does not say that the server refused TLS", err)
		}
	})
}

// TestSSLRequestAnsweredN speaks the startup protocol by hand: a GSSENCRequest and an SSLRequest are each
// answered with the single byte 'N', and the same connection then logs in and runs a query in plaintext.
func TestSSLRequestAnsweredN(t *testing.T) {
	t.Parallel()
	e := startEnv(t, envOpts{})
	r := e.dialRaw(t)
	for _, code := range []uint32{80877104, 80877103} { // GSSENCRequest, SSLRequest
		var pkt [8]byte
		binary.BigEndian.PutUint32(pkt[0:4], 8)
		binary.BigEndian.PutUint32(pkt[4:8], code)
		if _, err := r.Write(pkt[:]); err != nil {
			t.Fatal(err)
		}
		_ = r.SetReadDeadline(time.Now().Add(5 * time.Second))
		var b [1]byte
		if _, err := r.Read(b[:]); err != nil {
			t.Fatalf("request %d: no answer: %v", code, err)
		}
		if b[0] != 'N' {
			t.Fatalf("request %d: answer %q, want 'N'", code, b[0])
		}
	}
	r.send(t, &pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersionNumber,
		Parameters: map[string]string{"user": "trusted", "database": "app"}})
	got, err := r.receiveUntil(t, 10*time.Second, isReady)
	if err != nil {
		t.Fatalf("startup after 'N': %v (got %v)", err, got)
	}
	if got[0] != "AuthenticationOk" || !slices.Contains(got, "BackendKeyData") || got[len(got)-1] != "ReadyForQuery(I)" {
		t.Fatalf("startup answered %v", got)
	}
	r.send(t, &pgproto3.Query{String: "SELECT 'plain'"})
	got, err = r.receiveUntil(t, 10*time.Second, isReady)
	if err != nil || !slices.Contains(got, "DataRow[plain]") {
		t.Fatalf("query after 'N': %v %v", got, err)
	}
}
