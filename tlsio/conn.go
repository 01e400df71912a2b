package tlsio

import (
	"crypto/tls"
	"errors"
	"net"

	"github.com/panjf2000/gnet/v2"
)

// Session is a TLS session whose transport is first a blocking socket, then (Detach) an event loop's bytes. Until
// Detach it is a net.Conn like tls.Conn.
type Session struct {
	*tls.Conn
	mem *memConn
}

// Server starts the server side of a session over the socket nc; the handshake runs at the first read or write,
// or Handshake.
func Server(nc net.Conn, conf *tls.Config) *Session {
	m := &memConn{Conn: nc}
	return &Session{Conn: tls.Server(m, conf), mem: m}
}

// Client starts the client side of a session over the socket nc.
func Client(nc net.Conn, conf *tls.Config) *Session {
	m := &memConn{Conn: nc}
	return &Session{Conn: tls.Client(m, conf), mem: m}
}

// Socket is the connection the session runs over.
func (s *Session) Socket() net.Conn { return s.mem.Conn }

// Detach moves the session off its socket: call it before the socket goes to an event loop, which orders it
// before the loop's first use.
func (s *Session) Detach() { s.mem.detached = true }

// Over returns the loop's view of the detached session s on the loop's connection c.
func (s *Session) Over(c gnet.Conn) *Conn { return &Conn{Conn: c, s: s} }

// memConn is the transport crypto/tls sees: the socket, then (detached) the bytes the loop handed over (in) and
// what it wrote, for the loop to send (out).
type memConn struct {
	net.Conn
	detached bool
	in, out  []byte
}

// errWouldBlock is what a read of a detached memConn returns when it has nothing: temporary, so crypto/tls keeps
// its state and reads again later.
var errWouldBlock = &wouldBlock{}

type wouldBlock struct{}

func (*wouldBlock) Error() string   { return "no TLS data buffered" }
func (*wouldBlock) Timeout() bool   { return true }
func (*wouldBlock) Temporary() bool { return true }

func (m *memConn) Read(b []byte) (int, error) {
	if !m.detached {
		return m.Conn.Read(b)
	}
	if len(m.in) == 0 {
		return 0, errWouldBlock
	}
	n := copy(b, m.in)
	m.in = m.in[n:]
	return n, nil
}

func (m *memConn) Write(b []byte) (int, error) {
	if !m.detached {
		return m.Conn.Write(b)
	}
	m.out = append(m.out, b...)
	return len(b), nil
}

// Conn is a detached session's connection as the loop uses it: Peek, Discard and InboundBuffered see the
// plaintext, Write encrypts; everything else is the socket's (the embedded gnet.Conn, which Socket returns for
// the loop's own calls, such as Close, that want gnet's).
type Conn struct {
	gnet.Conn
	s     *Session
	plain []byte // decrypted, not consumed yet
}

// Session returns the connection's TLS session.
func (c *Conn) Session() *Session { return c.s }

// Rebind makes c use the loop's new connection for the same socket (after it left the loop and came back).
func (c *Conn) Rebind(g gnet.Conn) { c.Conn = g }

// Fill decrypts what gnet read from the socket, using scratch (any size; one per loop serves all its
// connections). An error ends the connection (a bad record, or a peer that closed its TLS session).
func (c *Conn) Fill(scratch []byte) error {
	in, _ := c.Conn.Peek(-1)
	c.s.mem.in = append(c.s.mem.in, in...)
	_, _ = c.Conn.Discard(len(in))
	for {
		n, err := c.s.Conn.Read(scratch)
		c.plain = append(c.plain, scratch[:n]...)
		if err != nil {
			c.sendOut() // a TLS alert, or a key update's answer
			if errors.Is(err, errWouldBlock) {
				c.s.mem.in = nil // all of it is in crypto/tls's own buffers now
				return nil
			}
			return err
		}
	}
}

// sendOut writes to the socket what crypto/tls wrote.
func (c *Conn) sendOut() {
	if len(c.s.mem.out) == 0 {
		return
	}
	_, _ = c.Conn.Write(c.s.mem.out) // gnet copies what the socket does not take at once
	c.s.mem.out = c.s.mem.out[:0]
	if cap(c.s.mem.out) > maxKept {
		c.s.mem.out = nil // a large result's buffer is not kept by an idle connection
	}
}

// maxKept is the largest buffer a connection keeps between messages.
const maxKept = 64 << 10

func (c *Conn) Peek(n int) ([]byte, error) {
	if n < 0 || n > len(c.plain) {
		return c.plain, nil
	}
	return c.plain[:n], nil
}

func (c *Conn) Discard(n int) (int, error) {
	if n < 0 || n > len(c.plain) {
		n = len(c.plain)
	}
	c.plain = c.plain[:copy(c.plain, c.plain[n:])]
	if len(c.plain) == 0 && cap(c.plain) > maxKept {
		c.plain = nil // an idle connection does not keep a large message's buffer
	}
	return n, nil
}

func (c *Conn) InboundBuffered() int { return len(c.plain) }

func (c *Conn) Write(b []byte) (int, error) {
	n, err := c.s.Conn.Write(b)
	c.sendOut()
	return n, err
}

// Socket is the gnet connection under c: the loop's own calls (Close) want gnet's, not a Conn.
func Socket(c gnet.Conn) gnet.Conn {
	if t, ok := c.(*Conn); ok {
		return t.Conn
	}
	return c
}
