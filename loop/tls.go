package loop

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/panjf2000/gnet/v2"

	"github.com/pgshard/pgshard/auth"
	"github.com/pgshard/pgshard/codec"
	"github.com/pgshard/pgshard/config"
	"github.com/pgshard/pgshard/tlsio"
)

// TLS to clients.
//
// A client that wants TLS sends an SSLRequest; pgshard answers 'S' and the TLS handshake follows. The handshake
// is the expensive part (a signature, a key exchange, several round trips) and crypto/tls runs it only over a
// blocking connection, so it runs off the loops: the socket leaves its loop (its descriptor duplicated, gnet's
// copy closed, as a parked connection does), a goroutine runs the handshake over it, and the socket is enrolled
// again in the same loop as a new client connection with the finished TLS session (tlsio.Session, detached). From
// then on the loop serves it like any client: gnet reads the ciphertext, and the client's connection is a
// tlsio.Conn, which decrypts it into the plaintext the client's code reads with Peek and Discard and encrypts what
// it writes, with no system call a plaintext client does not make.

// tlsServer is the TLS setting of a catalog: the mode, and the certificate its files held when it was read.
type tlsServer struct {
	mode    string
	conf    *tls.Config // nil when mode is disable
	binding []byte      // the certificate's tls-server-end-point data, for SCRAM-SHA-256-PLUS
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
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		return nil, fmt.Errorf("tls: %s: %w", c.Cert, err)
	}
	t.conf = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	t.binding = auth.TLSServerEndPoint(leaf)
	if c.ClientCA != "" {
		pem, err := os.ReadFile(c.ClientCA)
		if err != nil {
			return nil, fmt.Errorf("tls.client_ca: %w", err)
		}
		t.conf.ClientCAs = x509.NewCertPool()
		if !t.conf.ClientCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls.client_ca: %s holds no PEM certificate", c.ClientCA)
		}
		t.conf.ClientAuth = tls.VerifyClientCertIfGiven // a certificate given must be good; cert users need one
		if t.mode == config.TLSVerifyCA || t.mode == config.TLSVerifyFull {
			t.conf.ClientAuth = tls.RequireAndVerifyClientCert
		}
	}
	return t, nil
}

// plaintextRefused reports whether the mode refuses clients that do not ask for TLS.
func (t *tlsServer) plaintextRefused() bool {
	return t.mode == config.TLSRequire || t.mode == config.TLSVerifyCA || t.mode == config.TLSVerifyFull
}

// certName is the common name of the client's certificate, verified against tls.client_ca; "" when it gave none
// (or speaks plaintext).
func (cl *client) certName() string {
	if cl.tls == nil {
		return ""
	}
	st := cl.tls.Session().ConnectionState()
	if len(st.VerifiedChains) == 0 || len(st.PeerCertificates) == 0 {
		return ""
	}
	return st.PeerCertificates[0].Subject.CommonName
}

// tlsOpen is the context of a socket enrolled after its TLS handshake; OnOpen makes it a client.
type tlsOpen struct {
	s       *tlsio.Session
	binding []byte    // the served certificate's channel binding data
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
	fd, err := socket(c).Dup()
	if err != nil {
		e.endHandshake()
		cl.fatal(nil)
		return
	}
	startBy, addr := cl.startBy, cl.addr
	cl.fatal(nil) // this client is done; the handshake's socket comes back as a new one
	go e.handshake(ls, fd, t, startBy, addr)
}

// handshake runs the TLS handshake on the socket fd, off the loops, and enrolls it in ls once done.
func (e *Engine) handshake(ls *loopState, fd int, t *tlsServer, startBy time.Time, addr string) {
	defer e.endHandshake()
	f := os.NewFile(uintptr(fd), "client")
	nc, err := net.FileConn(f)
	f.Close()
	if err != nil {
		return
	}
	ts := tlsio.Server(nc, t.conf)
	_ = nc.SetDeadline(startBy)
	if err := ts.Handshake(); err != nil {
		e.log.Debug("TLS handshake with a client failed", "client", addr, "err", err)
		nc.Close()
		return
	}
	_ = nc.SetDeadline(time.Time{})
	ts.Detach()
	if err := e.enroll(ls, nc, &tlsOpen{s: ts, binding: t.binding, startBy: startBy, addr: addr}); err != nil {
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
	cl.tls, cl.tlsBinding = o.s.Over(c), o.binding
	cl.c = cl.tls
	cl.onTraffic() // what came with the end of the handshake may be a whole StartupMessage already
}

// tlsScratch is the loop's buffer for decrypting its TLS connections' records: one TLS record's worth.
func (ls *loopState) tlsScratch() []byte {
	if ls.tlsBuf == nil {
		ls.tlsBuf = make([]byte, 16<<10)
	}
	return ls.tlsBuf
}
