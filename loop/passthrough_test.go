package loop

import (
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/pgshard/pgshard/codec"
	"github.com/pgshard/pgshard/config"
	"github.com/pgshard/pgshard/pool"
)

// testPair makes a client attached to a server without sockets: message and answer, the per-message work of
// the pass-through path, only touch these structs.
func testPair(t testing.TB) (*client, *server) {
	return testPairOf(t, "")
}

// testPairOf is testPair with more top-level config lines (pool: {mode: session}, say). Their connections
// are fakeConns in a fakeLoop.
func testPairOf(t testing.TB, top string) (*client, *server) {
	e := testEngine(t, top+`
users: [{name: app, password: secret}]
databases: [{name: app, shards: [{primary: "postgres://127.0.0.1:5432/app_0"}]}]
`)
	ls := &loopState{el: &fakeLoop{e: e}, clients: map[*client]struct{}{}, servers: map[*server]struct{}{}}
	p := pool.New("test", pool.Settings{Size: 1}, 1)
	sc := &fakeConn{ls: ls}
	s := &server{e: e, ls: ls, c: sc, backend: &pool.Backend{Params: map[string]string{}}, status: codec.TxIdle}
	sc.SetContext(s)
	s.pc = p.NewConn(0, s, timeZero)
	s.stmts.max = 10
	ls.servers[s] = struct{}{}
	cc := &fakeConn{ls: ls}
	cl := &client{e: e, ls: ls, c: cc, state: clientReady, mapped: e.mapNames, srvs: make([]*server, 1),
		dbName: "app", user: e.cat.Load().users["app"], db: e.cat.Load().dbs["app"], pool: p, pools: []*pool.Pool{p}}
	cc.SetContext(cl)
	ls.clients[cl] = struct{}{}
	cl.attach(s)
	cl.needSync = false
	return cl, s
}

// testEngine is an engine of the config yamlText, not running (no loops, no sockets).
func testEngine(t testing.TB, yamlText string) *Engine {
	t.Helper()
	cfg, err := config.Parse([]byte(yamlText))
	if err != nil {
		t.Fatal(err)
	}
	e, err := New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// send runs the client side over msgs and returns what would go to the server.
func send(t testing.TB, cl *client, msgs []byte) []byte {
	sp := splice{in: msgs, scratch: &cl.ls.toServer}
	pos := 0
	for pos < len(msgs) {
		m, n, err := codec.ReadMessage(msgs[pos:], 0)
		if err != nil || n == 0 {
			t.Fatalf("bad test input at %d: %v", pos, err)
		}
		if perr := cl.message(&sp, m, pos, n); perr != nil {
			t.Fatal(perr)
		}
		pos += n
	}
	return sp.result(pos)
}

// receive runs the server side over msgs and returns what would go to the client.
func receive(t testing.TB, s *server, msgs []byte) []byte {
	sp := splice{in: msgs, scratch: &s.ls.toClient}
	pos := 0
	for pos < len(msgs) {
		n := codec.MessageLen(msgs[pos:])
		if !s.answer(&sp, msgs[pos:pos+n], pos) {
			t.Fatalf("answer refused message %q", msgs[pos])
		}
		pos += n
	}
	return sp.result(pos)
}

var timeZero = time.Time{}

func appendSync(dst []byte) []byte { return codec.AppendEmpty(dst, codec.Sync) }

func types(b []byte) string {
	var s string
	for pos := 0; pos < len(b); pos += codec.MessageLen(b[pos:]) {
		s += string(b[pos])
	}
	return s
}

func TestNamedStatementsAreRenamedAndAnsweredInOrder(t *testing.T) {
	cl, s := testPair(t)
	// First Parse of s1: sent renamed; the client sees the server's ParseComplete.
	out := send(t, cl, appendSync(codec.AppendParse(nil, "s1", "SELECT 1", nil)))
	m, _, _ := codec.ReadMessage(out, 0)
	pm, _ := codec.ParseParse(m.Body)
	if string(pm.Name) != "pgshard_1" {
		t.Fatalf("Parse sent as %q, want pgshard_1", pm.Name)
	}
	if got := types(receive(t, s, codec.AppendReadyForQuery(codec.AppendEmpty(nil, codec.ParseComplete), 'I'))); got != "1Z" {
		t.Fatalf("client got %q", got)
	}
	// Another client's Parse of the same text on this server: not sent; pgshard answers ParseComplete.
	cl2 := &client{e: cl.e, ls: cl.ls, state: clientReady, srv: s, mapped: cl.mapped, srvs: make([]*server, 1), dbName: cl.dbName, user: cl.user}
	s.client = cl2
	out = send(t, cl2, appendSync(codec.AppendParse(nil, "other", "SELECT 1", nil)))
	if got := types(out); got != "S" {
		t.Fatalf("server got %q, want only the Sync", got)
	}
	if got := types(cl2.out); got != "1" {
		t.Fatalf("client got %q from pgshard, want ParseComplete", got)
	}
	// Bind by the client's name goes out under the shared name.
	out = send(t, cl2, appendSync(codec.AppendExecute(codec.AppendBind(nil, "", "other", nil, nil, nil), "", 0)))
	m, _, _ = codec.ReadMessage(out, 0)
	bm, _ := codec.ParseBind(m.Body)
	if string(bm.Statement) != "pgshard_1" {
		t.Fatalf("Bind sent for %q", bm.Statement)
	}
	// An unknown name: 26000 from pgshard, the rest skipped up to Sync.
	cl2.out = cl2.out[:0]
	receive(t, s, codec.AppendReadyForQuery(nil, 'I'))                                                                                 // the first Sync
	receive(t, s, codec.AppendReadyForQuery(codec.AppendCommandComplete(codec.AppendEmpty(nil, codec.BindComplete), "SELECT 1"), 'I')) // the Bind batch
	out = send(t, cl2, appendSync(codec.AppendExecute(codec.AppendBind(nil, "", "nope", nil, nil, nil), "", 0)))
	if got := types(out); got != "S" {
		t.Fatalf("server got %q, want only the Sync", got)
	}
	e, err := codec.ParseError(cl2.out[codec.HeaderLen:])
	if err != nil || e.Code != codec.SQLStateUndefinedPreparedStmt {
		t.Fatalf("client got %v %v, want 26000", e, err)
	}
}

// The pass-through path allocates nothing per message: a simple query and its answer, and a Bind/Execute of
// a named statement the server has.
func BenchmarkPassThroughSimpleQuery(b *testing.B) {
	cl, s := testPair(b)
	q := codec.AppendQuery(nil, "SELECT abalance FROM pgbench_accounts WHERE aid = 12345;")
	resp := codec.AppendRowDescriptionText(nil, "abalance")
	resp = codec.AppendDataRowText(resp, []string{"0"}, nil)
	resp = codec.AppendCommandComplete(resp, "SELECT 1")
	resp = codec.AppendReadyForQuery(resp, 'I')
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		send(b, cl, q)
		receive(b, s, resp)
	}
}

func BenchmarkPassThroughNamedStatement(b *testing.B) {
	cl, s := testPair(b)
	send(b, cl, appendSync(codec.AppendParse(nil, "P_1", "SELECT abalance FROM pgbench_accounts WHERE aid = $1", nil)))
	receive(b, s, codec.AppendReadyForQuery(codec.AppendEmpty(nil, codec.ParseComplete), 'I'))
	req := codec.AppendBind(nil, "", "P_1", nil, [][]byte{[]byte("12345")}, nil)
	req = appendSync(codec.AppendExecute(req, "", 0))
	resp := codec.AppendEmpty(nil, codec.BindComplete)
	resp = codec.AppendDataRowText(resp, []string{"0"}, nil)
	resp = codec.AppendCommandComplete(resp, "SELECT 1")
	resp = codec.AppendReadyForQuery(resp, 'I')
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		send(b, cl, req)
		receive(b, s, resp)
	}
}

func BenchmarkPassThroughExtendedUnnamed(b *testing.B) {
	cl, s := testPair(b)
	req := codec.AppendParse(nil, "", "SELECT abalance FROM pgbench_accounts WHERE aid = $1;", []uint32{23})
	req = codec.AppendBind(req, "", "", nil, [][]byte{[]byte("12345")}, nil)
	req = codec.AppendDescribe(req, codec.TargetPortal, "")
	req = appendSync(codec.AppendExecute(req, "", 0))
	resp := codec.AppendEmpty(nil, codec.ParseComplete)
	resp = codec.AppendEmpty(resp, codec.BindComplete)
	resp = codec.AppendRowDescriptionText(resp, "abalance")
	resp = codec.AppendDataRowText(resp, []string{"0"}, nil)
	resp = codec.AppendCommandComplete(resp, "SELECT 1")
	resp = codec.AppendReadyForQuery(resp, 'I')
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		cl.answerLocally(req)
		send(b, cl, req)
		receive(b, s, resp)
	}
}
