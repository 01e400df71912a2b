package loop

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/panjf2000/gnet/v2"
	"golang.org/x/sys/unix"
)

// TestMain runs the package's tests with impossible state transitions panicking, and, when all of them ran,
// checks that together they made every transition the lifecycle tables allow.
func TestMain(m *testing.M) {
	strictStates = true
	made := map[transition]bool{}
	transitionMade = func(conn string, from, to int) { made[transition{conn, from, to}] = true }
	code := m.Run()
	if code == 0 && flag.Lookup("test.run").Value.String() == "" {
		missing := unmadeTransitions("client", clientTransitions[:], clientStateNames[:], made)
		missing = append(missing, unmadeTransitions("server", serverTransitions[:], serverStateNames[:], made)...)
		if len(missing) > 0 {
			fmt.Println("no test makes these lifecycle transitions:", strings.Join(missing, ", "))
			code = 1
		}
	}
	os.Exit(code)
}

// transition is a lifecycle transition of a client or server connection.
type transition struct {
	conn     string
	from, to int
}

// unmadeTransitions lists the transitions of table that made lacks.
func unmadeTransitions(conn string, table []uint8, names []string, made map[transition]bool) []string {
	var missing []string
	for from, tos := range table {
		for to := range names {
			if tos&(1<<to) != 0 && !made[transition{conn, from, to}] {
				missing = append(missing, conn+" "+names[from]+" -> "+names[to])
			}
		}
	}
	return missing
}

// fakeConn is a gnet.Conn of a test: the bytes it has read are in in, what is written to it goes to out, and
// it closes through its fakeLoop. Any other use panics (the embedded interface is nil).
type fakeConn struct {
	gnet.Conn
	in, out []byte
	unread  int // what OutboundBuffered says: written and not taken by the peer yet
	ctx     any
	closed  bool
	ls      *loopState // the loop of the server connections a test's callback wrote to (outbox.go)
	writes  int        // Write calls: system calls on a socket
	onWrite func()     // runs inside Write (a write that fails closes the connection, and its OnClose runs there)
	el      *fakeLoop  // the loop it is registered in, for the shell (EventLoop); nil where no test needs it
	broken  bool       // Peek panics: a bug in the session reading it (Engine.survive)
}

func (c *fakeConn) Peek(n int) ([]byte, error) {
	if c.broken {
		panic("a bug while reading")
	}
	if n < 0 || n > len(c.in) {
		return c.in, nil
	}
	return c.in[:n], nil
}
func (c *fakeConn) Discard(n int) (int, error) {
	if n < 0 || n > len(c.in) {
		n = len(c.in) // Discard(-1): everything
	}
	c.in = c.in[n:]
	return n, nil
}
func (c *fakeConn) InboundBuffered() int  { return len(c.in) }
func (c *fakeConn) OutboundBuffered() int { return c.unread }
func (c *fakeConn) Write(b []byte) (int, error) {
	c.writes++
	c.out = append(c.out, b...)
	if c.onWrite != nil {
		c.onWrite()
	}
	return len(b), nil
}
func (c *fakeConn) EventLoop() gnet.EventLoop { return c.el }

// Dup gives the shell a descriptor to move the connection to another loop with: one end of a new socket
// pair (the shell makes a net.Conn of it, which needs a socket), the other end closed.
func (c *fakeConn) Dup() (int, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	if err != nil {
		return -1, err
	}
	_ = unix.Close(fds[1])
	return fds[0], nil
}
func (c *fakeConn) Context() any       { return c.ctx }
func (c *fakeConn) SetContext(ctx any) { c.ctx = ctx }
func (c *fakeConn) feed(b []byte)      { c.in = append(c.in, b...) }

// take returns what was written to c since the last take, once the callback the test stands for has
// returned: what it queued for servers is written then.
func (c *fakeConn) take() []byte {
	if c.ls != nil {
		c.ls.flushServers()
	}
	out := c.out
	c.out = nil
	return out
}
func (l *fakeLoop) Close(c gnet.Conn) error { return l.close(c.(*fakeConn)) }

// fakeLoop is the gnet.EventLoop of a test: Close runs the engine's OnClose at once, as gnet's does on the
// connection's own loop.
type fakeLoop struct {
	gnet.EventLoop
	e        *Engine
	queued   chan gnet.Runnable // what Execute was given, run by runQueued as the loop's goroutine would
	enrolled chan enrolled      // connections the shell enrolled, opened by openEnrolled
	refuse   error              // what Enroll fails with, if not nil
}

// enrolled is a connection enrolled into a fakeLoop, with the context OnOpen finds on it, and the channel its
// enroller waits on.
type enrolled struct {
	ctx  any
	done chan gnet.RegisteredResult
}

// Enroll takes the socket the shell enrolls (closed: the test's loop reads no socket) and hands the
// connection to the test, whose openEnrolled plays the loop that opens it, as gnet's loop does on its
// goroutine while the enroller waits.
func (l *fakeLoop) Enroll(ctx context.Context, nc net.Conn) (<-chan gnet.RegisteredResult, error) {
	_ = nc.Close()
	if l.refuse != nil {
		return nil, l.refuse
	}
	done := make(chan gnet.RegisteredResult, 1)
	l.enrolled <- enrolled{ctx: gnet.FromContext(ctx), done: done}
	return done, nil
}

// openEnrolled opens, on l, the next connection enrolled into it: a fakeConn with the enroller's context, for
// which the engine's OnOpen runs. It fails the test when none comes within a few seconds.
func (l *fakeLoop) openEnrolled(t *testing.T, ls *loopState) *fakeConn {
	t.Helper()
	select {
	case en := <-l.enrolled:
		c := &fakeConn{ls: ls, el: l, ctx: en.ctx}
		l.e.OnOpen(c)
		en.done <- gnet.RegisteredResult{Conn: c}
		return c
	case <-time.After(5 * time.Second):
		t.Fatal("nothing was enrolled into the loop")
		return nil
	}
}

// Execute queues r for the test to run (runQueued, nextQueued), as gnet's loop runs it later on its
// goroutine; it may be called from any goroutine.
func (l *fakeLoop) Execute(_ context.Context, r gnet.Runnable) error {
	if l.queued == nil {
		panic("Execute on a fakeLoop not made by newTestLoop")
	}
	l.queued <- r
	return nil
}

// runQueued runs what was given to Execute and is waiting, in order.
func (l *fakeLoop) runQueued() {
	for {
		select {
		case r := <-l.queued:
			_ = r.Run(context.Background())
		default:
			return
		}
	}
}

// nextQueued waits for the next function given to Execute (from another goroutine, say) and runs it.
func (l *fakeLoop) nextQueued(t *testing.T) {
	t.Helper()
	select {
	case r := <-l.queued:
		_ = r.Run(context.Background())
	case <-time.After(5 * time.Second):
		t.Fatal("nothing was run on the loop")
	}
}

// newTestLoop is a fake loop of e, registered as gnet's are when the engine first sees them (loopOf).
func newTestLoop(e *Engine) *loopState {
	fl := &fakeLoop{e: e, queued: make(chan gnet.Runnable, 64), enrolled: make(chan enrolled, 1)}
	e.loopsMu.Lock()
	defer e.loopsMu.Unlock()
	ls := &loopState{idx: len(e.loops), el: fl, clients: map[*client]struct{}{}, servers: map[*server]struct{}{},
		draining: map[gnet.Conn]*draining{}}
	e.loops = append(e.loops, ls)
	e.byLoop[fl] = ls
	return ls
}

func (l *fakeLoop) close(c *fakeConn) error {
	if !c.closed {
		c.closed = true
		l.e.OnClose(c, nil)
	}
	return nil
}
