package loop

import (
	"errors"
	"testing"
	"time"

	"github.com/pgshard/pgshard/auth"
	"github.com/pgshard/pgshard/codec"
	"github.com/pgshard/pgshard/pool"
)

// The lifecycle transitions the other tests do not make on their way: each through the path that makes it in
// pgshard (a login, the shell opening or moving a server connection, a sweep, a bug survived).

// clientOn is a client of e on loop ls, as OnOpen makes one.
func clientOn(t *testing.T, e *Engine, ls *loopState) *client {
	if !e.admitPending() {
		t.Fatal("not admitted")
	}
	return e.newClient(&fakeConn{ls: ls, el: ls.el.(*fakeLoop)}, time.Now())
}

// openServer plays a dial of pool p that succeeded: the slot is counted (as Checkout's MustDial does) and the
// shell opens the new connection on ls, for cl (nil: for nobody, as when its client has left).
func openServer(t *testing.T, ls *loopState, p *pool.Pool, cl *client) *server {
	t.Helper()
	if _, outcome := p.Checkout(&pool.Waiter{Loop: ls.idx}); outcome != pool.MustDial {
		t.Fatalf("checkout %v, want a slot to dial", outcome)
	}
	c := &fakeConn{ls: ls, el: ls.el.(*fakeLoop), ctx: &serverOpen{cl: cl, nc: &newServerConn{p: p,
		backend: &pool.Backend{PID: 7, Params: map[string]string{"server_version": "17.2", "client_encoding": "UTF8"}}}}}
	ls.el.(*fakeLoop).e.OnOpen(c)
	s, ok := c.ctx.(*server)
	if !ok {
		t.Fatalf("the opened connection's context is %T, want its server", c.ctx)
	}
	return s
}

// appPool is the pool of the trust user's connections to database app.
func appPool(e *Engine) *pool.Pool {
	cat := e.cat.Load()
	return e.poolsFor(cat.dbs["app"], cat.users["trusted"])[0]
}

// firstLoginEngine is loginEngine without the server parameters known: a client's login needs a server
// connection to learn them.
func firstLoginEngine(t *testing.T, top string) *Engine {
	return testEngine(t, top+`
users: [{name: trusted, auth_method: trust}]
databases: [{name: app, shards: [{primary: "postgres://127.0.0.1:5432/app_0"}]}]
`)
}

func TestFirstLoginOfAPoolTakesItsParametersFromAServer(t *testing.T) {
	e := firstLoginEngine(t, "")
	ls := newTestLoop(e)
	s := openServer(t, ls, appPool(e), nil)
	if s.state != serverIdle || idleCount(s) != 1 {
		t.Fatalf("a new server for nobody: state %v, %d idle; want idle, 1", s.state, idleCount(s))
	}
	cl := clientOn(t, e, ls)
	out := clientSends(cl, startupBytes("trusted", "app"))
	if cl.state != clientReady || s.state != serverIdle || cl.srv != nil {
		t.Fatalf("client %v, server %v, attached %v; want ready, idle (transaction mode), none", cl.state, s.state, cl.srv != nil)
	}
	if p := paramIn(out, "server_version"); p != "17.2" {
		t.Fatalf("client was told server_version %q, want the server's 17.2", p)
	}
}

// paramIn returns the value of the ParameterStatus name in b.
func paramIn(b []byte, name string) string {
	for pos := 0; pos < len(b); pos += codec.MessageLen(b[pos:]) {
		if b[pos] == codec.ParameterStatus {
			body := b[pos+codec.HeaderLen : pos+codec.MessageLen(b[pos:])]
			if k, v, ok := cutNul(body); ok && k == name {
				v, _, _ = cutNul([]byte(v))
				return v
			}
		}
	}
	return ""
}

func cutNul(b []byte) (string, string, bool) {
	for i, c := range b {
		if c == 0 {
			return string(b[:i]), string(b[i+1:]), true
		}
	}
	return "", "", false
}

func TestClientLeavingWhileItWaitsForItsFirstServerLeavesTheQueue(t *testing.T) {
	e := firstLoginEngine(t, "pool: {size: 1}\n")
	ls := newTestLoop(e)
	p := appPool(e)
	if _, outcome := p.Checkout(&pool.Waiter{Loop: ls.idx}); outcome != pool.MustDial { // the pool's one slot, taken
		t.Fatalf("checkout %v", outcome)
	}
	cl := clientOn(t, e, ls)
	clientSends(cl, startupBytes("trusted", "app"))
	if cl.state != clientConnecting || p.Stats().Waiting != 1 {
		t.Fatalf("state %v, %d waiting; want connecting, 1", cl.state, p.Stats().Waiting)
	}
	ls.closeConn(cl.c)
	if cl.state != clientClosed || p.Stats().Waiting != 0 {
		t.Fatalf("state %v, %d waiting; want closed, 0", cl.state, p.Stats().Waiting)
	}
}

func TestServerDialledForARetiredPoolIsClosedNotPooled(t *testing.T) {
	e := firstLoginEngine(t, "")
	ls := newTestLoop(e)
	p := appPool(e)
	p.Retire() // a RELOAD replaced the pool while the dial was on its way
	s := openServer(t, ls, p, nil)
	if s.state != serverGone || idleCount(s) != 0 || p.Stats().Total != 0 {
		t.Fatalf("state %v, %d idle, %d total; want gone, 0, 0", s.state, idleCount(s), p.Stats().Total)
	}
}

func TestIdleServerPastIdleTimeoutIsClosedByTheSweep(t *testing.T) {
	e := firstLoginEngine(t, "pool: {idle_timeout: 1ms}\n")
	ls := newTestLoop(e)
	s := openServer(t, ls, appPool(e), nil)
	time.Sleep(5 * time.Millisecond)
	e.sweep(ls)
	if s.state != serverGone || !s.c.(*fakeConn).closed || appPool(e).Stats().Total != 0 {
		t.Fatalf("state %v, closed %v; want gone, closed, its slot free", s.state, s.c.(*fakeConn).closed)
	}
}

// movingPair is a server idle on one loop and a client ready on another, of the same pool.
func movingPair(t *testing.T) (*server, *client, *loopState) {
	e := firstLoginEngine(t, "event_loops: 2\npool: {size: 1}\n")
	from, to := newTestLoop(e), newTestLoop(e)
	s := openServer(t, from, appPool(e), nil)
	cat := e.cat.Load()
	e.rememberParams(e.paramsKey(cat.dbs["app"], cat.users["trusted"]), map[string]string{"server_version": "17.2"})
	cl := clientOn(t, e, to)
	clientSends(cl, startupBytes("trusted", "app"))
	if cl.state != clientReady {
		t.Fatalf("client %v, want ready", cl.state)
	}
	return s, cl, from
}

func inLoop(ls *loopState, s *server) bool { _, ok := ls.servers[s]; return ok }

func TestServerIdleOnAnotherLoopMovesToTheClient(t *testing.T) {
	s, cl, from := movingPair(t)
	out := clientSends(cl, codec.AppendQuery(nil, "SELECT 1"))
	if len(out) != 0 || !cl.waiting {
		t.Fatalf("client got %q, waiting %v; want nothing yet, waiting", types(out), cl.waiting)
	}
	from.el.(*fakeLoop).runQueued() // the move starts on the server's loop
	old := s.c.(*fakeConn)
	if s.state != serverMoving || !old.closed || inLoop(from, s) {
		t.Fatalf("state %v, old connection closed %v; want moving, closed, out of its loop", s.state, old.closed)
	}
	c := cl.ls.el.(*fakeLoop).openEnrolled(t, cl.ls)
	if s.state != serverActive || s.ls != cl.ls || cl.srv != s || !inLoop(cl.ls, s) || s.c != conn(c) {
		t.Fatalf("state %v, on the client's loop %v, attached %v; want active, yes, yes", s.state, s.ls == cl.ls, cl.srv == s)
	}
	got := queries(t, c.take())
	if len(got) == 1 && got[0] != "SELECT 1" { // the client's settings first, then its query
		answerWith(s, codec.AppendReadyForQuery(codec.AppendCommandComplete(codec.AppendDataRowText(nil, []string{""}, nil), "SELECT 1"), codec.TxIdle))
		got = append(got, queries(t, c.take())...)
	}
	if got[len(got)-1] != "SELECT 1" {
		t.Fatalf("the moved server was sent %q, want the client's query last", got)
	}
}

func TestServerMovingToAClientThatLeftMeanwhileIsIdleThere(t *testing.T) {
	s, cl, from := movingPair(t)
	clientSends(cl, codec.AppendQuery(nil, "SELECT 1"))
	from.el.(*fakeLoop).runQueued()
	cl.ls.closeConn(cl.c)
	cl.ls.el.(*fakeLoop).openEnrolled(t, cl.ls)
	if s.state != serverIdle || s.ls != cl.ls || idleCount(s) != 1 {
		t.Fatalf("state %v, on the new loop %v, %d idle; want idle, yes, 1", s.state, s.ls == cl.ls, idleCount(s))
	}
}

func TestServerWhoseMoveFailsFreesItsSlotAndTheClientChecksOutAgain(t *testing.T) {
	s, cl, from := movingPair(t)
	cl.ls.el.(*fakeLoop).refuse = errors.New("too many open files")
	clientSends(cl, codec.AppendQuery(nil, "SELECT 1"))
	from.el.(*fakeLoop).runQueued()
	cl.ls.el.(*fakeLoop).nextQueued(t) // the client checks out again, after the failed move freed the slot
	if s.state != serverGone || s.pc.Pool().Stats().Total != 1 || !cl.waiting {
		t.Fatalf("state %v, %d total, waiting %v; want gone, 1 (the client's new dial), waiting", s.state, s.pc.Pool().Stats().Total, cl.waiting)
	}
}

func TestBugWhileReadingAServerClosesItAndItsClientWithXX000(t *testing.T) {
	cl, s := testPair(t)
	send(t, cl, codec.AppendQuery(nil, "SELECT 1"))
	sc := s.c.(*fakeConn)
	sc.broken, sc.el = true, &fakeLoop{e: s.e}
	s.e.OnTraffic(sc)
	if s.state != serverGone || cl.state != clientClosed {
		t.Fatalf("server %v, client %v; want gone, closed", s.state, cl.state)
	}
	if pe := errorIn(t, clientGot(cl)); pe == nil || pe.Code != codec.SQLStateInternalError {
		t.Fatalf("client got %v, want XX000", pe)
	}
}

func TestServerLostDuringItsResetFreesItsSlot(t *testing.T) {
	cl, s := testPair(t)
	s.status = codec.TxActive
	cl.onClose()
	if s.state != serverDetached {
		t.Fatalf("state %v, want detached (its ROLLBACK in flight)", s.state)
	}
	total := s.pc.Pool().Stats().Total
	s.ls.closeConn(s.c)
	if s.state != serverGone || s.pc.Pool().Stats().Total != total-1 || idleCount(s) != 0 {
		t.Fatalf("state %v, %d total; want gone, %d", s.state, s.pc.Pool().Stats().Total, total-1)
	}
}

// authQueryEngine is an engine whose logins of roles not in users are looked up with auth_query.
func authQueryEngine(t *testing.T) *Engine {
	return testEngine(t, `
auth_user: lookup
users: [{name: lookup, password: secret}]
databases: [{name: app, shards: [{primary: "postgres://127.0.0.1:5432/app_0"}]}]
`)
}

func TestRoleFoundAbsentByARecentLookupIsAskedForAPasswordAllTheSame(t *testing.T) {
	e := authQueryEngine(t)
	e.authLookups.found = map[string]authEntry{"app\x00stranger": {u: nil, expires: time.Now().Add(time.Minute)}}
	cl := newTestClient(t, e)
	out := clientSends(cl, startupBytes("stranger", "app"))
	if cl.state != clientAuth || len(out) < 9 || out[0] != codec.Authentication || out[8] != byte(codec.AuthSASL) {
		t.Fatalf("state %v, client got %q; want auth, a SCRAM request (roles cannot be probed)", cl.state, types(out))
	}
}

func TestClientLeavingDuringItsLookupIsGone(t *testing.T) {
	e := authQueryEngine(t)
	// Another login of the role is being looked up: this one waits for its answer.
	e.authLookups.found = map[string]authEntry{}
	e.authLookups.waiting = map[string][]func(*user){"app\x00stranger": {func(*user) {}}}
	cl := newTestClient(t, e)
	clientSends(cl, startupBytes("stranger", "app"))
	if cl.state != clientLookup {
		t.Fatalf("state %v, want lookup", cl.state)
	}
	cl.ls.closeConn(cl.c)
	if cl.state != clientClosed || e.clients.Load() != 0 {
		t.Fatalf("state %v, %d clients; want closed, 0", cl.state, e.clients.Load())
	}
}

func TestAdminConsoleSessionAfterSCRAM(t *testing.T) {
	e := loginEngine(t, "")
	cl := newTestClient(t, e)
	out := clientSends(cl, startupBytes("admin", adminDatabase))
	sc := auth.NewScramClient("adminpw")
	out = clientSends(cl, codec.AppendSASLInitialResponse(nil, "SCRAM-SHA-256", sc.ClientFirst()))
	if len(out) < 9 || out[0] != codec.Authentication || out[8] != byte(codec.AuthSASLContinue) {
		t.Fatalf("client got %q, want SASLContinue", types(out))
	}
	final, err := sc.ServerFirst(out[9:codec.MessageLen(out)])
	if err != nil {
		t.Fatal(err)
	}
	out = clientSends(cl, codec.AppendSASLResponse(nil, final))
	if cl.state != clientAdmin || types(out)[len(types(out))-1] != 'Z' {
		t.Fatalf("state %v, client got %q; want admin, ready", cl.state, types(out))
	}
	out = clientSends(cl, codec.AppendEmpty(nil, codec.Terminate))
	if cl.state != clientClosed || e.clients.Load() != 0 {
		t.Fatalf("state %v, %d clients after Terminate; want closed, 0", cl.state, e.clients.Load())
	}
}
