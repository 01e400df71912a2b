package loop

import (
	"github.com/panjf2000/gnet/v2"
)

func init() { strictStates = true } // an impossible state transition panics in the package's tests

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
}

func (c *fakeConn) Peek(n int) ([]byte, error) {
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
	e *Engine
}

func (l *fakeLoop) close(c *fakeConn) error {
	if !c.closed {
		c.closed = true
		l.e.OnClose(c, nil)
	}
	return nil
}
