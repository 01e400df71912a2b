package loop

import (
	"github.com/pgshard/pgshard/codec"
)

// Every byte pgshard sends a server goes through the server's outbox (server.send), and the outboxes of a
// loop are written when the gnet callback that filled them returns (loopState.flushServers): once per server
// per callback, however many places added to it. A client's batch, the settings replayed in front of it, the
// Parse of a statement the server lacks, the Flush that asks for answers held back, a COPY's rows for one
// shard: one write, one system call, where each used to be its own. The client's side has had the same rule
// from the start (client.out, client.flush).
//
// The callbacks that may send are gnet's (OnOpen, OnTraffic, OnClose) and what runs through
// loopState.execute; each flushes on its way out, after a panic too. Bytes queued for a server that is parked
// (park.go) wait in its outbox until it is back; a server that is gone drops them.

// send queues b for the server, to be written when the current callback returns.
func (s *server) send(b []byte) {
	if s.gone() || len(b) == 0 {
		return
	}
	if len(s.out) == 0 {
		s.ls.unflushed = append(s.ls.unflushed, s)
	}
	s.out = append(s.out, b...)
}

// sendOwned is send for a message built for this server alone, which it may keep as its outbox instead of
// copying it (a coordinated statement carries all the rows it gathered).
func (s *server) sendOwned(b []byte) {
	if len(s.out) > 0 || s.gone() || len(b) == 0 {
		s.send(b)
		return
	}
	s.ls.unflushed = append(s.ls.unflushed, s)
	s.out = b
}

// unsent is what pgshard sent the server and the server has not taken yet: queued in its outbox, or
// written and left in gnet's buffer because the socket was full.
func (s *server) unsent() int {
	return len(s.out) + s.c.OutboundBuffered()
}

// backedUp says whether the server has more than limit bytes sent and not taken. An outbox that large is
// written first, so that only what the socket could not take at once counts.
func (s *server) backedUp(limit int) bool {
	if s.unsent() <= limit {
		return false
	}
	s.writeOut()
	return s.unsent() > limit
}

// outboxKept is the capacity of an outbox kept for the next callback; a larger one (a COPY's rows) is let go.
const outboxKept = 64 << 10

// writeOut writes the server's outbox now.
func (s *server) writeOut() {
	switch {
	case s.park.parked && s.state != serverGone:
		return // written once the server is back (reopened)
	case s.state != serverClosing && s.state != serverGone:
		if len(s.out) > 0 {
			_, _ = s.c.Write(s.out)
		}
	}
	// Closing (terminate wrote what there was) or gone: nothing more goes out.
	if cap(s.out) > outboxKept {
		s.out = nil
	} else {
		s.out = s.out[:0]
	}
}

// terminate writes what is queued and a Terminate, and closes the connection.
func (s *server) terminate() {
	s.out = codec.AppendEmpty(s.out, codec.Terminate)
	_, _ = s.c.Write(s.out)
	s.out = nil
	s.ls.closeConn(s.c)
}

// enter and leave bracket a callback on ls's loop. Callbacks nest (closing a connection runs OnClose at once,
// inside whatever closed it): the outboxes are written when the outermost one returns.
func (ls *loopState) enter() { ls.depth++ }

func (ls *loopState) leave() {
	ls.depth--
	if ls.depth == 0 {
		ls.flushServers()
	}
}

// flushServers writes the outboxes filled during the callback now returning. A write that fails closes its
// connection, and that close's callback may queue more (a client told its server is lost, its other servers
// released): those are written in the same pass.
func (ls *loopState) flushServers() {
	if ls.flushing {
		return
	}
	ls.flushing = true
	defer func() { ls.flushing = false }()
	for i := 0; i < len(ls.unflushed); i++ {
		s := ls.unflushed[i]
		ls.unflushed[i] = nil
		s.writeOut()
	}
	ls.unflushed = ls.unflushed[:0]
	if cap(ls.toServer) > outboxKept {
		ls.toServer = nil // a large message rewritten on its way (a coordinated statement, a COPY's rows)
	}
}
