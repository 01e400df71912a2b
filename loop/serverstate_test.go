package loop

import (
	"strings"
	"testing"

	"github.com/pgshard/pgshard/codec"
)

// queries returns the SQL of the Query messages in b.
func queries(t *testing.T, b []byte) []string {
	t.Helper()
	var out []string
	for pos := 0; pos < len(b); {
		m, n, err := codec.ReadMessage(b[pos:], 0)
		if err != nil || n == 0 {
			t.Fatalf("bad bytes at %d: %v", pos, err)
		}
		if m.Type == codec.Query {
			q, _ := codec.ParseQuery(m.Body)
			out = append(out, string(q))
		}
		pos += n
	}
	return out
}

// answerWith gives s the server's bytes b and runs its read callback.
func answerWith(s *server, b []byte) {
	s.c.(*fakeConn).feed(b)
	s.onTraffic()
}

func idleCount(s *server) int { return s.pc.Pool().Stats().Idle }

func TestServerOfAClientLeavingBetweenTransactionsGoesBackIdle(t *testing.T) {
	cl, s := testPair(t)
	cl.onClose()
	if s.state != serverIdle || idleCount(s) != 1 {
		t.Fatalf("state %v, %d idle in the pool; want idle, 1", s.state, idleCount(s))
	}
	if out := s.c.(*fakeConn).take(); len(out) > 0 {
		t.Fatalf("a clean server was sent %q", types(out))
	}
}

func TestServerOfAClientLeavingInATransactionIsRolledBackFirst(t *testing.T) {
	cl, s := testPair(t)
	s.status = codec.TxActive
	cl.onClose()
	if got := queries(t, s.c.(*fakeConn).take()); len(got) != 1 || got[0] != "ROLLBACK" {
		t.Fatalf("server was sent %q, want ROLLBACK", got)
	}
	if s.state != serverDetached || idleCount(s) != 0 {
		t.Fatalf("state %v, %d idle before the ROLLBACK is answered; want detached, 0", s.state, idleCount(s))
	}
	answerWith(s, codec.AppendReadyForQuery(codec.AppendCommandComplete(nil, "ROLLBACK"), codec.TxIdle))
	if s.state != serverIdle || idleCount(s) != 1 {
		t.Fatalf("state %v, %d idle after the ROLLBACK; want idle, 1", s.state, idleCount(s))
	}
}

func TestServerInSessionModeIsDiscardedForTheNextClient(t *testing.T) {
	cl, s := testPairOf(t, "pool: {mode: session}")
	s.settings = map[string]string{"search_path": "x"}
	cl.onClose()
	if got := queries(t, s.c.(*fakeConn).take()); len(got) != 1 || got[0] != "DISCARD ALL" {
		t.Fatalf("server was sent %q, want DISCARD ALL", got)
	}
	if s.settings != nil {
		t.Fatal("the server's settings are still recorded after DISCARD ALL")
	}
	answerWith(s, codec.AppendReadyForQuery(codec.AppendCommandComplete(nil, "DISCARD ALL"), codec.TxIdle))
	if s.state != serverIdle {
		t.Fatalf("state %v after DISCARD ALL, want idle", s.state)
	}
}

func TestServerOfAClientLeavingMidStatementIsClosed(t *testing.T) {
	cl, s := testPair(t)
	send(t, cl, codec.AppendQuery(nil, "SELECT pg_sleep(10)"))
	total := s.pc.Pool().Stats().Total
	cl.onClose()
	sc := s.c.(*fakeConn)
	if s.state != serverGone || !sc.closed || idleCount(s) != 0 {
		t.Fatalf("state %v, closed %v, %d idle; want gone, closed, 0", s.state, sc.closed, idleCount(s))
	}
	if out := sc.take(); len(out) == 0 || out[len(out)-5] != codec.Terminate {
		t.Fatalf("server was sent %q, want a Terminate last", types(out))
	}
	if s.pc.Pool().Stats().Total != total-1 {
		t.Fatal("the closed server still counts in its pool")
	}
}

func TestServerLeftInATransactionByItsResetIsClosed(t *testing.T) {
	cl, s := testPair(t)
	s.status = codec.TxActive
	cl.onClose()
	s.c.(*fakeConn).take()
	// The ROLLBACK is answered, but the server says it is still in a transaction: never reuse it dirty.
	answerWith(s, codec.AppendReadyForQuery(codec.AppendCommandComplete(nil, "ROLLBACK"), codec.TxActive))
	if s.state != serverGone {
		t.Fatalf("state %v, want gone", s.state)
	}
}

func TestServerThatCannotBeReusedIsClosedWhenReleased(t *testing.T) {
	cl, s := testPair(t)
	send(t, cl, codec.AppendQuery(nil, "SELECT 1"))
	s.noReuse = true // say, pgshard's cancel of its statement failed
	answerWith(s, codec.AppendReadyForQuery(codec.AppendCommandComplete(nil, "SELECT 1"), codec.TxIdle))
	if s.state != serverGone || idleCount(s) != 0 || cl.srv != nil {
		t.Fatalf("state %v, %d idle; want gone, 0", s.state, idleCount(s))
	}
	if got := types(cl.c.(*fakeConn).take()); got != "CZ" {
		t.Fatalf("client got %q, want its answer", got)
	}
}

func TestServerLostUnderItsClientEndsTheClientWith08006(t *testing.T) {
	cl, s := testPair(t)
	send(t, cl, codec.AppendQuery(nil, "SELECT 1"))
	s.ls.closeConn(s.c) // the server went away
	if s.state != serverGone || cl.state != clientClosed || cl.srv != nil {
		t.Fatalf("server %v, client %v (server %p); want gone, closed, none", s.state, cl.state, cl.srv)
	}
	out := cl.c.(*fakeConn).take()
	e, err := codec.ParseError(out[codec.HeaderLen:])
	if err != nil || e.Code != codec.SQLStateConnectionFailure || e.Severity != "FATAL" {
		t.Fatalf("client got %v %v, want FATAL 08006", e, err)
	}
}

func TestServerLostWhileIdleLeavesThePool(t *testing.T) {
	cl, s := testPair(t)
	cl.onClose()
	if idleCount(s) != 1 {
		t.Fatal("not idle")
	}
	total := s.pc.Pool().Stats().Total
	s.ls.closeConn(s.c)
	if s.state != serverGone || idleCount(s) != 0 || s.pc.Pool().Stats().Total != total-1 {
		t.Fatalf("state %v, %d idle, %d total; want gone, 0, %d", s.state, idleCount(s), s.pc.Pool().Stats().Total, total-1)
	}
}

func TestTransactionModeReleasesTheServerAtReadyForQueryIdle(t *testing.T) {
	cl, s := testPair(t)
	send(t, cl, codec.AppendQuery(nil, "BEGIN"))
	answerWith(s, codec.AppendReadyForQuery(codec.AppendCommandComplete(nil, "BEGIN"), codec.TxActive))
	if s.state != serverActive || cl.srv != s {
		t.Fatalf("in a transaction: state %v, attached %v; want active, attached", s.state, cl.srv == s)
	}
	send(t, cl, codec.AppendQuery(nil, "COMMIT"))
	answerWith(s, codec.AppendReadyForQuery(codec.AppendCommandComplete(nil, "COMMIT"), codec.TxIdle))
	if s.state != serverIdle || cl.srv != nil {
		t.Fatalf("after COMMIT: state %v, attached %v; want idle, not attached", s.state, cl.srv == s)
	}
	if got := types(cl.c.(*fakeConn).take()); got != "CZCZ" {
		t.Fatalf("client got %q", got)
	}
}

func TestSessionModeKeepsTheServerBetweenTransactions(t *testing.T) {
	cl, s := testPairOf(t, "pool: {mode: session}")
	send(t, cl, codec.AppendQuery(nil, "SELECT 1"))
	answerWith(s, codec.AppendReadyForQuery(codec.AppendCommandComplete(nil, "SELECT 1"), codec.TxIdle))
	if s.state != serverActive || cl.srv != s {
		t.Fatalf("state %v, attached %v; want active, attached", s.state, cl.srv == s)
	}
}

func TestPinnedClientKeepsItsServer(t *testing.T) {
	cl, s := testPair(t)
	send(t, cl, codec.AppendQuery(nil, "LISTEN jobs"))
	answerWith(s, codec.AppendReadyForQuery(codec.AppendCommandComplete(nil, "LISTEN"), codec.TxIdle))
	if s.state != serverActive || cl.srv != s {
		t.Fatalf("after LISTEN: state %v, attached %v; want active, attached", s.state, cl.srv == s)
	}
	send(t, cl, codec.AppendQuery(nil, "UNLISTEN *"))
	answerWith(s, codec.AppendReadyForQuery(codec.AppendCommandComplete(nil, "UNLISTEN"), codec.TxIdle))
	if s.state != serverIdle {
		t.Fatalf("after UNLISTEN *: state %v, want idle", s.state)
	}
}

func TestServerStillAnsweringIsNotReleased(t *testing.T) {
	cl, s := testPair(t)
	send(t, cl, codec.AppendQuery(codec.AppendQuery(nil, "SELECT 1"), "SELECT 2"))
	answerWith(s, codec.AppendReadyForQuery(codec.AppendCommandComplete(nil, "SELECT 1"), codec.TxIdle))
	if s.state != serverActive || cl.srv != s {
		t.Fatalf("with a query still to answer: state %v, attached %v; want active, attached", s.state, cl.srv == s)
	}
	answerWith(s, codec.AppendReadyForQuery(codec.AppendCommandComplete(nil, "SELECT 1"), codec.TxIdle))
	if s.state != serverIdle {
		t.Fatalf("state %v, want idle", s.state)
	}
}

func TestServerSendingAnImpossibleAnswerIsFailed(t *testing.T) {
	cl, s := testPair(t)
	answerWith(s, codec.AppendEmpty(nil, codec.BindComplete)) // nothing was sent
	if s.state != serverGone || cl.state != clientClosed {
		t.Fatalf("server %v, client %v; want gone, closed", s.state, cl.state)
	}
}

func TestServerSendingAnInvalidLengthIsFailed(t *testing.T) {
	cl, s := testPair(t)
	send(t, cl, codec.AppendQuery(nil, "SELECT 1"))
	answerWith(s, []byte{codec.DataRow, 0, 0, 0, 0}) // a length that does not count itself
	if s.state != serverGone {
		t.Fatalf("state %v, want gone", s.state)
	}
}

func TestLargeRowPassesThroughAsItArrives(t *testing.T) {
	cl, s := testPair(t)
	send(t, cl, codec.AppendQuery(nil, "SELECT big"))
	row := codec.AppendDataRowText(nil, []string{strings.Repeat("x", 3*streamThreshold)}, nil)
	answerWith(s, row[:streamThreshold])
	if got := len(cl.c.(*fakeConn).out); got != streamThreshold {
		t.Fatalf("client got %d bytes of the row's first part, want %d (passed on before the rest came)", got, streamThreshold)
	}
	answerWith(s, row[streamThreshold:])
	answerWith(s, codec.AppendReadyForQuery(codec.AppendCommandComplete(nil, "SELECT 1"), codec.TxIdle))
	if out := cl.c.(*fakeConn).take(); len(out) != len(row)+len(codec.AppendReadyForQuery(codec.AppendCommandComplete(nil, "SELECT 1"), 'I')) {
		t.Fatalf("client got %d bytes", len(out))
	}
	if s.state != serverIdle {
		t.Fatalf("state %v, want idle", s.state)
	}
}

func TestImpossibleServerTransitionsPanicInTests(t *testing.T) {
	for _, tc := range []struct{ from, to serverState }{
		{serverGone, serverActive}, {serverGone, serverIdle}, {serverClosing, serverIdle},
		{serverActive, serverIdle}, {serverActive, serverMoving}, {serverDetached, serverActive},
		{serverMoving, serverDetached}, {serverIdle, serverNew}, {serverActive, serverClosing}, {serverNew, serverGone},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%v -> %v did not panic", tc.from, tc.to)
				}
			}()
			s := &server{state: tc.from}
			s.setState(tc.to)
		}()
	}
}
