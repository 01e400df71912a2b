package loop

import (
	"testing"

	"github.com/pgshard/pgshard/codec"
)

// A client whose statements wait while answers to it are unread cannot be parked (gnet would drop the
// answers); what it goes on sending moves out of gnet's read buffer into its stash past heldReadAhead (where
// it costs its own size, not a doubled ring and a copy per read), and past limits.client_outbound_buffer of it
// the client is closed with 53400.
func TestReadAheadOfAWaitingClientIsBounded(t *testing.T) {
	e := loginEngine(t, "limits: {client_outbound_buffer: 1MB}\n")
	cl := newTestClient(t, e)
	clientSends(cl, startupBytes("trusted", "app"))
	fc := cl.c.(*fakeConn)
	fc.unread = 1
	never := func() bool { return false }

	fc.feed(make([]byte, heldReadAhead))
	if cl.boundReadAhead(never) || len(cl.park.stash) != 0 || fc.InboundBuffered() != heldReadAhead {
		t.Fatalf("at heldReadAhead: stash %d, gnet %d; want all left in gnet", len(cl.park.stash), fc.InboundBuffered())
	}
	fc.feed(make([]byte, 300<<10))
	if cl.boundReadAhead(never) || len(cl.park.stash) != heldReadAhead+300<<10 || fc.InboundBuffered() != 0 {
		t.Fatalf("past heldReadAhead: stash %d, gnet %d; want all in the stash", len(cl.park.stash), fc.InboundBuffered())
	}
	if cl.readAhead() != heldReadAhead+300<<10 {
		t.Fatalf("readAhead %d does not count the stash", cl.readAhead())
	}
	fc.feed(make([]byte, 500<<10))
	if !cl.boundReadAhead(never) || cl.state != clientClosed {
		t.Fatalf("past the limit the client was not closed (state %v)", cl.state)
	}
	if err := errorIn(t, fc.take()); err == nil || err.Code != codec.SQLStateConfigurationLimitExceed {
		t.Fatalf("closed with %v, want 53400", err)
	}
	if cl.park.stash != nil {
		t.Fatal("a closed client keeps its stash")
	}
}
