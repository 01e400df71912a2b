package tlsio

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"math/big"
	"net"
	"testing"
	"time"

	"github.com/panjf2000/gnet/v2"
)

// socketBytes is a gnet connection's buffers: in is what gnet read, out what was written.
type socketBytes struct {
	gnet.Conn
	in, out []byte
}

func (s *socketBytes) Peek(n int) ([]byte, error) {
	if n < 0 || n > len(s.in) {
		n = len(s.in)
	}
	return s.in[:n], nil
}
func (s *socketBytes) Discard(n int) (int, error)  { s.in = s.in[n:]; return n, nil }
func (s *socketBytes) Write(b []byte) (int, error) { s.out = append(s.out, b...); return len(b), nil }

func selfSigned(t *testing.T) tls.Certificate {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: k}
}

// TestConnOverLoopBytes: after a handshake over a real (blocking) connection, Conn serves the session from
// bytes handed over in any pieces, one byte at a time included: plaintext comes out whole and in order, what it
// writes is encrypted for the client, and a record cut short waits for the rest instead of failing.
func TestConnOverLoopBytes(t *testing.T) {
	clientSide, serverSide := net.Pipe()
	defer clientSide.Close()
	defer serverSide.Close()
	srv := Server(serverSide, &tls.Config{Certificates: []tls.Certificate{selfSigned(t)}, MinVersion: tls.VersionTLS12})
	cli := tls.Client(clientSide, &tls.Config{InsecureSkipVerify: true})
	done := make(chan error, 1)
	go func() { done <- cli.Handshake() }()
	if err := srv.Handshake(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	srv.Detach() // from now on the socket's bytes go through the loop: Conn

	// What the client sends, as ciphertext on the socket (several records).
	want := bytes.Repeat([]byte("startup and queries "), 3000)
	wire := make(chan []byte)
	go func() {
		var b []byte
		buf := make([]byte, 64<<10)
		for {
			n, err := serverSide.Read(buf)
			b = append(b, buf[:n]...)
			if err != nil { // the deadline below: everything written was read (net.Pipe is synchronous)
				wire <- b
				return
			}
		}
	}()
	if _, err := cli.Write(want); err != nil {
		t.Fatal(err)
	}
	_ = serverSide.SetReadDeadline(time.Now())
	ciphertext := <-wire
	_ = serverSide.SetReadDeadline(time.Time{})

	sock := &socketBytes{}
	tc := srv.Over(sock)
	for i := range ciphertext {
		sock.in = append(sock.in, ciphertext[i])
		if err := tc.Fill(make([]byte, 4096)); err != nil {
			t.Fatalf("after %d of %d bytes: %v", i+1, len(ciphertext), err)
		}
	}
	if got, _ := tc.Peek(-1); !bytes.Equal(got, want) {
		t.Fatalf("plaintext: %d bytes, want %d", len(got), len(want))
	}
	if _, err := tc.Discard(len(want)); err != nil || tc.InboundBuffered() != 0 {
		t.Fatalf("Discard left %d bytes: %v", tc.InboundBuffered(), err)
	}

	// The answer reaches the client encrypted.
	if _, err := tc.Write([]byte("answer")); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sock.out, []byte("answer")) {
		t.Fatal("the answer went out in plaintext")
	}
	read := make(chan string, 1)
	go func() {
		buf := make([]byte, 100)
		n, _ := cli.Read(buf)
		read <- string(buf[:n])
	}()
	if _, err := serverSide.Write(sock.out); err != nil {
		t.Fatal(err)
	}
	if got := <-read; got != "answer" {
		t.Fatalf("the client read %q", got)
	}
}
