package loop

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/panjf2000/gnet/v2"

	"github.com/pgshard/pgshard/codec"
	"github.com/pgshard/pgshard/config"
)

// TLS to clients.
//
// A client that wants TLS sends an SSLRequest; pgshard answers 'S' and the TLS handshake follows. The handshake
// is the expensive part (a signature, a key exchange, several round trips) and crypto/tls runs it only over a
// blocking connection, so it runs off the loops: the socket leaves its loop (its descriptor duplicated, gnet's
// copy closed, as a parked connection does), a goroutine runs the handshake over it, and the socket is enrolled
// again in the same loop as a new client connection with the finished TLS session. From then on the loop serves
// it like any client: gnet reads the ciphertext, tlsConn decrypts it into the plaintext that the client's code
// reads with Peek and Discard, and encrypts what it writes. crypto/tls does not read or write sockets any more:
// memConn hands it the bytes gnet read and keeps what it writes for gnet to send, so the loop never blocks and
// a TLS client costs no system call a plaintext client does not.

// tlsServer is the TLS setting of a catalog: the mode, and the certificate its files held when it was read.
type tlsServer struct {
	mode string
	conf *tls.Config // nil when mode is disable
}

// newTLSServer reads the certificate of c (RELOAD reads it again).
func newTLSServer(c config.TLS) (*tlsServer, error) {
	t := &tlsServer{mode: c.Mode}
	if c.Mode == config.TLSDisable {
		return t, nil
	}
	cert, err := tls.LoadX509KeyPair(c.Cert, c.Key)
	if err != nil {
		return nil, fmt.Errorf("tls: %w", err)
	}
	t.conf = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	return t, nil
}

// tlsOpen is the context of a socket enrolled after its TLS handshake; OnOpen makes it a client.
type tlsOpen struct {
	tc      *tls.Conn
	mem     *memConn
	startBy time.Time // the client's startup deadline, which the handshake counted against
	addr    string
}

// startTLS answers the client's SSLRequest with 'S' and takes its socket off the loop for the handshake.
func (cl *client) startTLS(t *tlsServer) {
	if cl.c.InboundBuffered() > 0 {
		// Bytes sent after the SSLRequest before the answer would be read as if they came over TLS, though
		// anyone on the path could have written them (CVE-2021-23222): Postgres refuses them too.
		cl.fatal(codec.NewFatal(codec.SQLStateProtocolViolation, "received unencrypted data after SSL request").
			WithHint("this could be either a client-software bug or evidence of an attempted man-in-the-middle attack"))
		return
	}
	if !cl.e.beginHandshake() {
		cl.fatal(codec.NewFatal(codec.SQLStateTooManyConnections, "sorry, too many clients logging in already").
			WithHint("limits.max_pending_logins bounds the clients logging in at once, TLS handshakes included"))
		return
	}
	c, ls, e := cl.c, cl.ls, cl.e
	if _, err := c.Write([]byte{'S'}); err != nil || c.OutboundBuffered() > 0 {
		e.endHandshake()
		cl.fatal(nil)
		return
	}
	fd, err := c.Dup()
	if err != nil {
		e.endHandshake()
		cl.fatal(nil)
		return
	}
	startBy, addr := cl.startBy, cl.addr
	cl.fatal(nil) // this client is done; the handshake's socket comes back as a new one
	go e.handshake(ls, fd, t.conf, startBy, addr)
}

// handshake runs the TLS handshake on the socket fd, off the loops, and enrolls it in ls once done.
func (e *Engine) handshake(ls *loopState, fd int, conf *tls.Config, startBy time.Time, addr string) {
	defer e.endHandshake()
	f := os.NewFile(uintptr(fd), "client")
	nc, err := net.FileConn(f)
	f.Close()
	if err != nil {
		return
	}
	mem := &memConn{Conn: nc}
	tc := tls.Server(mem, conf)
	_ = nc.SetDeadline(startBy)
	if err := tc.Handshake(); err != nil {
		e.log.Debug("TLS handshake with a client failed", "client", addr, "err", err)
		nc.Close()
		return
	}
	_ = nc.SetDeadline(time.Time{})
	mem.detach()
	if err := e.enroll(ls, nc, &tlsOpen{tc: tc, mem: mem, startBy: startBy, addr: addr}); err != nil {
		e.log.Warn("enrolling a TLS client in its loop failed", "client", addr, "err", err)
	}
}

// beginHandshake counts a TLS handshake in flight against limits.max_pending_logins; false: too many.
func (e *Engine) beginHandshake() bool {
	if e.handshakes.Add(1) > int64(e.cfg.Limits.MaxPendingLogins) {
		e.handshakes.Add(-1)
		return false
	}
	return true
}

func (e *Engine) endHandshake() { e.handshakes.Add(-1) }

// tlsOpened makes the client of a socket whose TLS handshake is done (OnOpen, on its loop).
func (e *Engine) tlsOpened(c gnet.Conn, o *tlsOpen) {
	if !e.admitPending() {
		_, _ = c.Write(e.tooManyLoggingIn()) // plaintext: the client reads it as a broken TLS record, then EOF
		_ = e.loopOf(c).el.Close(c)
		return
	}
	cl := e.newClient(c, time.Now())
	cl.startBy, cl.addr = o.startBy, o.addr
	cl.tls = &tlsConn{Conn: c, tc: o.tc, mem: o.mem}
	cl.c = cl.tls
	cl.onTraffic() // what came with the end of the handshake may be a whole StartupMessage already
}

// memConn is the connection crypto/tls sees. During the handshake it is the socket itself (blocking, off the
// loops). After it, reads take what the loop handed over (in) and say "would block" when it is used up; writes
// are kept (out) for the loop to send.
type memConn struct {
	net.Conn
	detached bool // set before the socket is enrolled, which orders it before the loop's first use
	in, out  []byte
}

// errWouldBlock is what a read of a detached memConn returns when it has nothing: temporary, so crypto/tls
// keeps its state and reads again later.
var errWouldBlock = &wouldBlock{}

type wouldBlock struct{}

func (*wouldBlock) Error() string   { return "no TLS data buffered" }
func (*wouldBlock) Timeout() bool   { return true }
func (*wouldBlock) Temporary() bool { return true }

func (m *memConn) detach() { m.detached = true }

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

// tlsConn is a TLS client's connection as the client's code uses it: Peek, Discard and InboundBuffered see the
// plaintext, Write encrypts. Everything else is the socket's (gnet.Conn).
type tlsConn struct {
	gnet.Conn
	tc    *tls.Conn
	mem   *memConn
	plain []byte // decrypted, not consumed yet
	buf   []byte // scratch for crypto/tls's reads
}

// fill decrypts what gnet read from the socket. An error ends the connection (a bad record, or a client that
// closed its TLS session).
func (t *tlsConn) fill() error {
	in, _ := t.Conn.Peek(-1)
	t.mem.in = append(t.mem.in, in...)
	_, _ = t.Conn.Discard(len(in))
	if len(t.buf) == 0 {
		t.buf = make([]byte, 16<<10)
	}
	for {
		n, err := t.tc.Read(t.buf)
		t.plain = append(t.plain, t.buf[:n]...)
		if err != nil {
			t.sendOut() // a TLS alert, or a key update's answer
			if errors.Is(err, errWouldBlock) {
				return nil
			}
			return err
		}
	}
}

// sendOut writes to the socket what crypto/tls wrote.
func (t *tlsConn) sendOut() {
	if len(t.mem.out) == 0 {
		return
	}
	_, _ = t.Conn.Write(t.mem.out)
	t.mem.out = t.mem.out[:0]
}

func (t *tlsConn) Peek(n int) ([]byte, error) {
	if n < 0 || n > len(t.plain) {
		return t.plain, nil
	}
	return t.plain[:n], nil
}

func (t *tlsConn) Discard(n int) (int, error) {
	if n < 0 || n > len(t.plain) {
		n = len(t.plain)
	}
	t.plain = t.plain[:copy(t.plain, t.plain[n:])]
	return n, nil
}

func (t *tlsConn) InboundBuffered() int { return len(t.plain) }

func (t *tlsConn) Write(b []byte) (int, error) {
	n, err := t.tc.Write(b)
	t.sendOut()
	return n, err
}

// socket is the gnet connection under c: the loop's own calls (Close) want gnet's, not a tlsConn.
func socket(c gnet.Conn) gnet.Conn {
	if t, ok := c.(*tlsConn); ok {
		return t.Conn
	}
	return c
}
