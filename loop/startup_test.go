package loop

import (
	"crypto/md5"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/pgshard/pgshard/codec"
)

// loginEngine is an engine with a trust user, an md5 user and the admin console, whose database's server
// parameters are known already (so that a login needs no server connection).
func loginEngine(t *testing.T, top string) *Engine {
	e := testEngine(t, top+`
admin: {user: admin, password: adminpw}
users:
  - {name: trusted, auth_method: trust}
  - {name: m, password: secret, auth_method: md5}
databases: [{name: app, shards: [{primary: "postgres://127.0.0.1:5432/app_0"}]}]
`)
	cat := e.cat.Load()
	for _, u := range cat.users {
		e.rememberParams(e.paramsKey(cat.dbs["app"], u), map[string]string{"server_version": "15.18", "client_encoding": "UTF8"})
	}
	return e
}

// newTestClient is a client of e on a fake connection, as OnOpen makes one, in a loop of its own.
func newTestClient(t *testing.T, e *Engine) *client {
	ls := &loopState{el: &fakeLoop{e: e}, clients: map[*client]struct{}{}, servers: map[*server]struct{}{}}
	if !e.admitPending() {
		t.Fatal("not admitted")
	}
	c := &fakeConn{}
	cl := &client{e: e, ls: ls, c: c, startBy: time.Now().Add(time.Minute), admitted: admitPending}
	c.SetContext(cl)
	ls.clients[cl] = struct{}{}
	e.clients.Add(1)
	return cl
}

// startupBytes is a StartupMessage for user and database.
func startupBytes(user, database string) []byte {
	b, _ := (&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersionNumber,
		Parameters: map[string]string{"user": user, "database": database}}).Encode(nil)
	return b
}

// clientSends feeds cl the bytes b and runs its read callback; it returns what cl was sent.
func clientSends(cl *client, b []byte) []byte {
	cl.c.(*fakeConn).feed(b)
	cl.onTraffic()
	return cl.c.(*fakeConn).take()
}

// errorIn returns the first ErrorResponse in b, nil when there is none.
func errorIn(t *testing.T, b []byte) *codec.Error {
	t.Helper()
	for pos := 0; pos < len(b); pos += codec.MessageLen(b[pos:]) {
		if b[pos] == codec.ErrorResponse {
			e, err := codec.ParseError(b[pos+codec.HeaderLen : pos+codec.MessageLen(b[pos:])])
			if err != nil {
				t.Fatal(err)
			}
			return e
		}
	}
	return nil
}

func TestTrustLoginIsReadyAtOnce(t *testing.T) {
	e := loginEngine(t, "")
	cl := newTestClient(t, e)
	out := clientSends(cl, startupBytes("trusted", "app"))
	if got := types(out); !strings.HasPrefix(got, "RS") || !strings.HasSuffix(got, "KZ") {
		t.Fatalf("client got %q, want AuthenticationOk, ParameterStatus..., BackendKeyData, ReadyForQuery", got)
	}
	if cl.state != clientReady || e.loggedIn.Load() != 1 || e.pending.Load() != 0 {
		t.Fatalf("state %v, %d logged in, %d pending; want ready, 1, 0", cl.state, e.loggedIn.Load(), e.pending.Load())
	}
}

func TestSSLRequestWithoutTLSIsAnsweredNoAndTheLoginGoesOn(t *testing.T) {
	e := loginEngine(t, "")
	cl := newTestClient(t, e)
	ssl := []byte{0, 0, 0, 8, 4, 210, 22, 47}
	out := clientSends(cl, append(ssl, startupBytes("trusted", "app")...))
	if len(out) == 0 || out[0] != 'N' || cl.state != clientReady {
		t.Fatalf("client got %q, state %v; want 'N' then a login", out, cl.state)
	}
}

func TestGSSENCRequestIsAnsweredNo(t *testing.T) {
	e := loginEngine(t, "")
	cl := newTestClient(t, e)
	out := clientSends(cl, []byte{0, 0, 0, 8, 4, 210, 22, 48})
	if string(out) != "N" || cl.state != clientStartup {
		t.Fatalf("client got %q, state %v; want 'N', still at startup", out, cl.state)
	}
}

func TestOversizedStartupPacketIsRefused(t *testing.T) {
	e := loginEngine(t, "")
	cl := newTestClient(t, e)
	out := clientSends(cl, []byte{0, 1, 0, 0, 0, 3, 0, 0})
	if pe := errorIn(t, out); pe == nil || pe.Code != codec.SQLStateProtocolViolation || cl.state != clientClosed {
		t.Fatalf("client got %v, state %v; want 08P01, closed", pe, cl.state)
	}
	if e.pending.Load() != 0 || e.clients.Load() != 0 {
		t.Fatalf("%d pending, %d clients after the refusal; want 0, 0", e.pending.Load(), e.clients.Load())
	}
}

// md5Answer is the PasswordMessage of an md5 login with password, to the salt in the AuthenticationMD5Password
// at the start of out.
func md5Answer(t *testing.T, out []byte, user, password string) []byte {
	t.Helper()
	if len(out) < 13 || out[0] != codec.Authentication || out[8] != 5 {
		t.Fatalf("client got %q, want AuthenticationMD5Password", types(out))
	}
	inner := md5.Sum([]byte(password + user))
	outer := md5.Sum(append([]byte(hex.EncodeToString(inner[:])), out[9:13]...))
	b, _ := (&pgproto3.PasswordMessage{Password: "md5" + hex.EncodeToString(outer[:])}).Encode(nil)
	return b
}

func TestMD5Login(t *testing.T) {
	for _, tc := range []struct {
		password string
		ok       bool
	}{{"secret", true}, {"wrong", false}} {
		e := loginEngine(t, "")
		cl := newTestClient(t, e)
		out := clientSends(cl, startupBytes("m", "app"))
		out = clientSends(cl, md5Answer(t, out, "m", tc.password))
		pe := errorIn(t, out)
		if tc.ok && (pe != nil || cl.state != clientReady) {
			t.Fatalf("right password: %v, state %v", pe, cl.state)
		}
		if !tc.ok && (pe == nil || pe.Code != codec.SQLStateInvalidPassword || cl.state != clientClosed) {
			t.Fatalf("wrong password: %v, state %v; want 28P01, closed", pe, cl.state)
		}
	}
}

func TestUnknownDatabaseIsRefusedOnlyAfterTheLogin(t *testing.T) {
	e := loginEngine(t, "")
	cl := newTestClient(t, e)
	out := clientSends(cl, startupBytes("trusted", "nope"))
	if got := types(out); got != "RE" {
		t.Fatalf("client got %q, want AuthenticationOk then the error", got)
	}
	if pe := errorIn(t, out); pe.Code != codec.SQLStateInvalidCatalogName || cl.state != clientClosed {
		t.Fatalf("client got %v, state %v; want 3D000, closed", pe, cl.state)
	}
}

func TestAdminConsoleLogin(t *testing.T) {
	e := loginEngine(t, "")
	cl := newTestClient(t, e)
	out := clientSends(cl, startupBytes("admin", adminDatabase))
	if out[0] != codec.Authentication {
		t.Fatalf("client got %q, want an authentication request", types(out))
	}
	if cl.state != clientAuth {
		t.Fatalf("state %v, want auth", cl.state)
	}
}

func TestClientsPastTheLimitAreRefused(t *testing.T) {
	e := loginEngine(t, "pool: {max_client_connections: 1}\n")
	first := newTestClient(t, e)
	clientSends(first, startupBytes("trusted", "app"))
	cl := newTestClient(t, e)
	out := clientSends(cl, startupBytes("m", "app"))
	if pe := errorIn(t, out); pe == nil || pe.Code != codec.SQLStateTooManyConnections || cl.state != clientClosed || out[0] != codec.ErrorResponse {
		t.Fatalf("second client got %q %v, state %v; want 53300 before any password is asked, closed", types(out), pe, cl.state)
	}
	if first.state != clientReady || e.loggedIn.Load() != 1 {
		t.Fatalf("first client %v, %d logged in; want ready, 1", first.state, e.loggedIn.Load())
	}
}

func TestImpossibleClientTransitionsPanicInTests(t *testing.T) {
	for _, tc := range []struct{ from, to clientState }{
		{clientClosed, clientReady}, {clientReady, clientAuth}, {clientStartup, clientReady},
		{clientAdmin, clientReady}, {clientConnecting, clientAuth}, {clientLookup, clientReady},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%v -> %v did not panic", tc.from, tc.to)
				}
			}()
			cl := &client{state: tc.from}
			cl.setState(tc.to)
		}()
	}
}

// Two clients past the first check (the limit not reached when they began): the one whose password is
// right second is refused at admit.
func TestLoginThatCompletesPastTheLimitIsRefused(t *testing.T) {
	e := loginEngine(t, "pool: {max_client_connections: 1}\n")
	a, b := newTestClient(t, e), newTestClient(t, e)
	outA := clientSends(a, startupBytes("m", "app"))
	outB := clientSends(b, startupBytes("m", "app"))
	clientSends(a, md5Answer(t, outA, "m", "secret"))
	out := clientSends(b, md5Answer(t, outB, "m", "secret"))
	if pe := errorIn(t, out); pe == nil || pe.Code != codec.SQLStateTooManyConnections || b.state != clientClosed {
		t.Fatalf("second client got %v, state %v; want 53300, closed", pe, b.state)
	}
	if a.state != clientReady || e.loggedIn.Load() != 1 || e.pending.Load() != 0 {
		t.Fatalf("first %v, %d logged in, %d pending; want ready, 1, 0", a.state, e.loggedIn.Load(), e.pending.Load())
	}
}
