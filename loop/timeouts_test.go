package loop

import (
	"testing"
	"time"

	"github.com/pgshard/pgshard/codec"
)

// sweep runs the timeout sweep on cl at each of the given seconds after t0.
func sweep(cl *client, t0 time.Time, seconds ...int) {
	for _, s := range seconds {
		cl.checkIdle(t0.Add(time.Duration(s) * time.Second))
	}
}

func TestClientIdleInATransactionPastTheLimitIsClosedAndRolledBack(t *testing.T) {
	cl, s := testPairOf(t, "limits: {idle_transaction_timeout: 10s}\n")
	clientSends(cl, codec.AppendQuery(nil, "BEGIN"))
	answerWith(s, rfq(complete(nil, "BEGIN"), codec.TxActive))
	clientGot(cl)
	serverGot(s)
	t0 := time.Now()
	sweep(cl, t0, 0, 5)
	if cl.state == clientClosed {
		t.Fatal("closed before the limit")
	}
	sweep(cl, t0, 11)
	if pe := errorIn(t, clientGot(cl)); pe == nil || pe.Code != codec.SQLStateIdleInTransactionTimeout || cl.state != clientClosed {
		t.Fatalf("client got %v, state %v; want 25P03, closed", pe, cl.state)
	}
	if got := queries(t, serverGot(s)); len(got) != 1 || got[0] != "ROLLBACK" {
		t.Fatalf("server got %q, want ROLLBACK", got)
	}
}

func TestClientActiveInATransactionIsNotIdle(t *testing.T) {
	cl, s := testPairOf(t, "limits: {idle_transaction_timeout: 10s}\n")
	clientSends(cl, codec.AppendQuery(nil, "BEGIN"))
	answerWith(s, rfq(complete(nil, "BEGIN"), codec.TxActive))
	t0 := time.Now()
	sweep(cl, t0, 0, 8)
	clientSends(cl, codec.AppendQuery(nil, "SELECT 1")) // the client sends again: its quiet time starts afresh
	answerWith(s, rfq(complete(nil, "SELECT 1"), codec.TxActive))
	sweep(cl, t0, 9, 15)
	if cl.state == clientClosed {
		t.Fatal("a client that sent a statement 6 s ago was closed by a 10 s idle limit")
	}
}

func TestClientIdleOutsideATransactionPastTheLimitIsClosed(t *testing.T) {
	cl, _ := testPairOf(t, "limits: {client_idle_timeout: 10s, idle_transaction_timeout: 1h}\n")
	t0 := time.Now()
	sweep(cl, t0, 0, 11)
	if pe := errorIn(t, clientGot(cl)); pe == nil || pe.Code != codec.SQLStateIdleSessionTimeout || cl.state != clientClosed {
		t.Fatalf("client got %v, state %v; want 57P05, closed", pe, cl.state)
	}
}

func TestSessionModeWithoutServerReuseClosesTheServer(t *testing.T) {
	cl, s := testPairOf(t, "pool: {mode: session, server_reuse: false}\n")
	cl.onClose()
	if s.state != serverGone {
		t.Fatalf("server %v, want gone (server_reuse: false)", s.state)
	}
}
