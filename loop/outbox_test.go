package loop

import (
	"bytes"
	"testing"

	"github.com/pgshard/pgshard/codec"
)

// What a callback queues for a server goes out in one write when it returns, in the order it was queued.
func TestServerOutboxIsOneWritePerCallback(t *testing.T) {
	_, s := testPair(t)
	fc := s.c.(*fakeConn)
	q1, q2 := codec.AppendQuery(nil, "SET x = 1"), codec.AppendQuery(nil, "SELECT 1")
	s.send(q1)
	s.send(q2)
	if fc.writes != 0 {
		t.Fatalf("%d writes before the callback returned", fc.writes)
	}
	s.ls.flushServers()
	if fc.writes != 1 || !bytes.Equal(fc.out, append(q1, q2...)) {
		t.Fatalf("%d writes of %q, want one of both queries in order", fc.writes, fc.out)
	}
	s.ls.flushServers()
	if fc.writes != 1 {
		t.Fatal("an empty outbox was written again")
	}
}

// A parked server keeps what was queued for it until it is back; a closed one is sent nothing more.
func TestServerOutboxWaitsForAParkedServerAndDropsForAGoneOne(t *testing.T) {
	_, s := testPair(t)
	fc := s.c.(*fakeConn)
	q := codec.AppendQuery(nil, "SELECT 1")
	s.park.parked = true
	s.send(q)
	s.ls.flushServers()
	if fc.writes != 0 || !bytes.Equal(s.out, q) {
		t.Fatalf("%d writes, outbox %q: a parked server's bytes must wait in its outbox", fc.writes, s.out)
	}
	s.park.parked = false
	s.ls.unflushed = append(s.ls.unflushed, s) // as reopened does
	s.ls.flushServers()
	if fc.writes != 1 || !bytes.Equal(fc.out, q) {
		t.Fatalf("%d writes of %q once back, want the query", fc.writes, fc.out)
	}
	s.state = serverGone
	s.send(q)
	s.ls.flushServers()
	if fc.writes != 1 || len(s.out) != 0 {
		t.Fatalf("a gone server was written to (%d writes) or kept %d bytes", fc.writes, len(s.out))
	}
}

// backedUp counts what the socket has not taken: a large outbox is written first, and only what gnet still
// holds after that counts.
func TestServerBackedUpCountsWhatTheSocketDidNotTake(t *testing.T) {
	_, s := testPair(t)
	fc := s.c.(*fakeConn)
	s.send(make([]byte, 1000))
	if s.backedUp(2000) || fc.writes != 0 {
		t.Fatalf("1000 bytes queued: backed up past 2000, or written early (%d writes)", fc.writes)
	}
	s.send(make([]byte, 2000))
	if s.backedUp(2000) {
		t.Fatal("3000 bytes the socket took at once count as backed up")
	}
	if fc.writes != 1 || len(s.out) != 0 {
		t.Fatalf("%d writes, %d bytes left queued: want the large outbox written", fc.writes, len(s.out))
	}
	fc.unread = 2500
	if !s.backedUp(2000) {
		t.Fatal("2500 bytes gnet could not write are not backed up past 2000")
	}
}

// Callbacks nest: a write that fails closes its connection, and the close's callback runs inside the flush,
// queuing for other servers (as a client told its server is lost releases its other ones). Those go out in
// the same flush, once, and the outer callback's end finds nothing left to write.
func TestServerOutboxesFlushedFromANestedCallback(t *testing.T) {
	_, s1 := testPair(t)
	s2 := &server{e: s1.e, ls: s1.ls, c: &fakeConn{}, state: serverActive}
	ls := s1.ls
	q := codec.AppendQuery(nil, "ROLLBACK")
	s1.c.(*fakeConn).onWrite = func() { // the nested OnClose
		ls.enter()
		defer ls.leave()
		s2.send(q)
	}
	ls.enter()
	s1.send(q)
	ls.enter() // a nested callback returning does not flush the outer one's outboxes
	ls.leave()
	if s1.c.(*fakeConn).writes != 0 {
		t.Fatal("a nested callback's end flushed the outer callback's outbox")
	}
	ls.leave()
	if w1, w2 := s1.c.(*fakeConn).writes, s2.c.(*fakeConn).writes; w1 != 1 || w2 != 1 || len(ls.unflushed) != 0 {
		t.Fatalf("writes %d and %d, %d outboxes left: want one each, none left", w1, w2, len(ls.unflushed))
	}
}
