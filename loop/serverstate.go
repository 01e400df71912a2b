package loop

import "fmt"

// serverState is where a server connection is in its life. It changes only in setState, which knows the
// transitions that can happen; the rest of a server's condition (a statement in flight, a cancel on its way,
// parked) are details of its state, in fields of their own.
//
//	new ──▶ idle ◀──▶ active ──▶ detached ──▶ idle
//	         │ ▲ │                  ▲ │ (ROLLBACK / DISCARD ALL in flight, then idle)
//	         ▼ │ └──────────────────┘   (idle ──▶ detached: a health check in flight, then idle)
//	        moving ──▶ active
//
//	new, idle, detached ──▶ closing ──▶ gone   (closed on purpose; an active server is detached first)
//	idle, active, detached, moving ──▶ gone    (lost)
type serverState uint8

const (
	serverNew      serverState = iota // dialled and logged in, not yet in a loop's books
	serverIdle                        // in its pool, free for any client
	serverActive                      // attached to a client
	serverDetached                    // out of its pool for pgshard's own statements: cleanup after a client, a health check
	serverMoving                      // its socket on the way to another loop (moveTo): its close here is no loss
	serverClosing                     // being closed on purpose (expired, dirty, shutdown)
	serverGone                        // closed; its slot is free
)

var serverStateNames = [...]string{"new", "idle", "active", "detached", "moving", "closing", "gone"}

func (st serverState) String() string {
	if int(st) < len(serverStateNames) {
		return serverStateNames[st]
	}
	return fmt.Sprintf("serverState(%d)", st)
}

// serverTransitions[from] has bit 1<<to set for each state from can go to.
var serverTransitions = [...]uint8{
	serverNew:      1<<serverIdle | 1<<serverActive | 1<<serverClosing,
	serverIdle:     1<<serverActive | 1<<serverMoving | 1<<serverDetached | 1<<serverClosing | 1<<serverGone,
	serverActive:   1<<serverDetached | 1<<serverGone,
	serverDetached: 1<<serverIdle | 1<<serverClosing | 1<<serverGone,
	serverMoving:   1<<serverIdle | 1<<serverActive | 1<<serverGone,
	serverClosing:  1 << serverGone,
	serverGone:     0,
}

// strictStates makes an impossible transition panic (the package's tests set it); in production it is logged
// as the bug it is, and made.
var strictStates = false

// transitionMade, set by the package's tests, is told of each transition made, so that they can check that
// they made every one the tables allow (TestMain).
var transitionMade func(conn string, from, to int)

// setState moves s to state to.
func (s *server) setState(to serverState) {
	if serverTransitions[s.state]&(1<<to) == 0 {
		s.e.impossible("server", s.state, to)
	}
	if transitionMade != nil {
		transitionMade("server", int(s.state), int(to))
	}
	s.state = to
}

// impossible reports an impossible state transition of a connection, which is a bug in pgshard: it panics in
// the package's tests (strictStates); otherwise it is logged (and fails the end-to-end tests), and made.
func (e *Engine) impossible(conn string, from, to fmt.Stringer) {
	if strictStates {
		panic(conn + " connection: impossible transition " + from.String() + " -> " + to.String())
	}
	e.log.Error(conn+" connection: impossible state transition (a bug in pgshard)", "from", from.String(), "to", to.String())
}

// gone reports a connection that is closed.
func (s *server) gone() bool { return s.state == serverGone }

// inUse reports a connection that is not free: attached to a client, or being cleaned up after one. Its
// ReadyForQuery with nothing else expected can make it free.
func (s *server) inUse() bool { return s.state == serverActive || s.state == serverDetached }
