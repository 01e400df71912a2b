package pool

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"github.com/pgshard/pgshard/auth"
	"github.com/pgshard/pgshard/codec"
	"github.com/pgshard/pgshard/tlsio"
)

// Target says where and as whom to connect.
type Target struct {
	Network, Address string // "tcp", "127.0.0.1:5432" or "unix", "/run/postgresql/.s.PGSQL.5432"
	Database         string
	User, Password   string
	Params           []codec.Param // extra startup parameters (application_name, ...)
	TLS              TLS
	// Keys log in with SCRAM instead of Password: those a client's own login proved (auth_query users).
	Keys *auth.Keys
}

// TLS says whether and how to encrypt a connection, as libpq's sslmode (see ServerTLS).
type TLS struct {
	Mode   string      // disable, allow, prefer, require, verify-ca, verify-full
	Config *tls.Config // the handshake's; nil when Mode never asks for TLS (disable, allow)
}

// ServerTLS makes the TLS setting of sslmode mode for a server called host, trusting the CAs of the PEM file
// rootCert (empty: the system's). require checks the CA too when rootCert is given, as libpq does.
func ServerTLS(mode, rootCert, host string) (TLS, error) {
	t := TLS{Mode: mode}
	if mode == "" || mode == "disable" || mode == "allow" {
		return t, nil
	}
	t.Config = &tls.Config{MinVersion: tls.VersionTLS12, ServerName: host}
	checkCA := mode == "verify-ca" || mode == "verify-full" || mode == "require" && rootCert != ""
	if !checkCA {
		t.Config.InsecureSkipVerify = true // prefer, require: encrypted, the certificate not checked
		return t, nil
	}
	var roots *x509.CertPool
	if rootCert != "" {
		pem, err := os.ReadFile(rootCert)
		if err != nil {
			return t, fmt.Errorf("sslrootcert: %w", err)
		}
		roots = x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			return t, fmt.Errorf("sslrootcert %s holds no PEM certificate", rootCert)
		}
	}
	t.Config.RootCAs = roots
	if mode != "verify-full" {
		// The chain must lead to a trusted CA; the name in the certificate is not checked.
		t.Config.InsecureSkipVerify = true
		t.Config.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("the server sent no certificate")
			}
			opts := x509.VerifyOptions{Roots: roots, Intermediates: x509.NewCertPool()}
			for _, c := range cs.PeerCertificates[1:] {
				opts.Intermediates.AddCert(c)
			}
			_, err := cs.PeerCertificates[0].Verify(opts)
			return err
		}
	}
	return t, nil
}

// Backend is what a server told us during its startup.
type Backend struct {
	PID    uint32
	Key    []byte
	Params map[string]string
}

// Dial connects and authenticates to a Postgres server, blocking until ReadyForQuery: run it off the event
// loops. An error the server sent (wrong password, unknown database, too many clients) comes back as
// *codec.Error, so the proxy can pass the server's own words to its client.
func Dial(ctx context.Context, t Target) (net.Conn, *Backend, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, t.Network, t.Address)
	if err != nil {
		return nil, nil, err
	}
	if deadline, ok := ctx.Deadline(); ok {
		_ = nc.SetDeadline(deadline)
	}
	if t.TLS.Config != nil && t.Network == "tcp" { // as libpq, never over a unix socket
		if nc, err = startTLS(nc, t); err != nil {
			nc.Close()
			return nil, nil, err
		}
	}
	b, err := handshake(nc, t)
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	_ = nc.SetDeadline(time.Time{})
	return nc, b, nil
}

// startTLS asks the server for TLS and returns the encrypted connection (a *tlsio.Session), or nc when the
// server has none and the mode allows plaintext (prefer).
func startTLS(nc net.Conn, t Target) (net.Conn, error) {
	if _, err := nc.Write(codec.AppendRequestCode(nil, codec.SSLRequestCode)); err != nil {
		return nc, err
	}
	var answer [1]byte
	if _, err := io.ReadFull(nc, answer[:]); err != nil {
		return nc, err
	}
	switch answer[0] {
	case 'S':
		s := tlsio.Client(nc, t.TLS.Config)
		if err := s.Handshake(); err != nil {
			return nc, fmt.Errorf("TLS handshake with the server (sslmode=%s): %w", t.TLS.Mode, err)
		}
		return s, nil
	case 'N':
		if t.TLS.Mode == "prefer" {
			return nc, nil
		}
		return nc, fmt.Errorf("the server does not support TLS, but sslmode=%s requires it", t.TLS.Mode)
	}
	return nc, fmt.Errorf("the server answered the SSLRequest with %q", answer[0])
}

func handshake(nc net.Conn, t Target) (*Backend, error) {
	pairs := []string{"user", t.User, "database", t.Database}
	for _, p := range t.Params {
		pairs = append(pairs, p.Name, p.Value)
	}
	if _, err := nc.Write(codec.AppendStartupMessage(nil, codec.ProtocolVersion30, pairs...)); err != nil {
		return nil, err
	}
	// Reading through bufio is safe: the server sends nothing after ReadyForQuery until we speak.
	r := bufio.NewReaderSize(nc, 4096)
	b := &Backend{Params: map[string]string{}}
	var scram *auth.ScramClient
	var buf []byte
	for {
		m, err := ReadMessage(r, &buf)
		if err != nil {
			return nil, err
		}
		var out []byte
		switch m.Type {
		case codec.ErrorResponse:
			e, perr := codec.ParseError(m.Body)
			if perr != nil {
				return nil, perr
			}
			return nil, e
		case codec.NoticeResponse, codec.NegotiateProtocolVersion:
			continue
		case codec.ParameterStatus:
			name, value, err := codec.ParseParameterStatus(m.Body)
			if err != nil {
				return nil, err
			}
			b.Params[name] = value
		case codec.BackendKeyData:
			pid, key, err := codec.ParseBackendKeyData(m.Body)
			if err != nil {
				return nil, err
			}
			b.PID, b.Key = pid, append([]byte(nil), key...)
		case codec.ReadyForQuery:
			return b, nil
		case codec.Authentication:
			code, data, err := codec.ParseAuthentication(m.Body)
			if err != nil {
				return nil, err
			}
			switch code {
			case codec.AuthOK:
			case codec.AuthCleartextPassword:
				out = codec.AppendPassword(nil, t.Password)
			case codec.AuthMD5Password:
				if len(data) != 4 {
					return nil, errors.New("server sent a malformed md5 salt")
				}
				out = codec.AppendPassword(nil, auth.MD5Response(t.User, t.Password, [4]byte(data)))
			case codec.AuthSASL:
				mechs, err := codec.ParseSASLMechanisms(data)
				if err != nil {
					return nil, err
				}
				scram = auth.NewScramClient(t.Password)
				if t.Keys != nil {
					scram = auth.NewScramClientKeys(*t.Keys)
				}
				mech := auth.MechSCRAM
				if cb := endPoint(nc); cb != nil && contains(mechs, auth.MechSCRAMPlus) {
					mech = auth.MechSCRAMPlus // bound to this TLS session, as libpq does when the server offers it
					scram.BindTo(cb)
				} else if !contains(mechs, auth.MechSCRAM) {
					return nil, fmt.Errorf("server offers SASL mechanisms %v; pgshard speaks SCRAM-SHA-256 only", mechs)
				}
				out = codec.AppendSASLInitialResponse(nil, mech, scram.ClientFirst())
			case codec.AuthSASLContinue:
				if scram == nil {
					return nil, errors.New("server sent SASLContinue before SASL")
				}
				final, err := scram.ServerFirst(data)
				if err != nil {
					return nil, err
				}
				out = codec.AppendSASLResponse(nil, final)
			case codec.AuthSASLFinal:
				if scram == nil {
					return nil, errors.New("server sent SASLFinal before SASL")
				}
				if err := scram.ServerFinal(data); err != nil {
					return nil, err
				}
			default:
				return nil, fmt.Errorf("server asks for authentication method %d, which pgshard does not support (use scram-sha-256, md5, password or trust in pg_hba.conf)", code)
			}
		default:
			return nil, fmt.Errorf("unexpected message %q during server startup", m.Type)
		}
		if out != nil {
			if _, err := nc.Write(out); err != nil {
				return nil, err
			}
		}
	}
}

// ReadMessage reads one server message from r into *buf (grown as needed), for the blocking exchanges done off
// the loops (login, pgshard's own queries).
func ReadMessage(r *bufio.Reader, buf *[]byte) (codec.Message, error) {
	hdr, err := r.Peek(codec.HeaderLen)
	if err != nil {
		return codec.Message{}, err
	}
	n := codec.MessageLen(hdr)
	if n < codec.HeaderLen || n > 1<<20 {
		return codec.Message{}, fmt.Errorf("server sent a startup message of %d bytes", n)
	}
	if cap(*buf) < n {
		*buf = make([]byte, n)
	}
	b := (*buf)[:n]
	if _, err := io.ReadFull(r, b); err != nil {
		return codec.Message{}, err
	}
	m, _, err := codec.ReadMessage(b, 0)
	return m, err
}

// endPoint is the tls-server-end-point data of an encrypted connection's server certificate, nil in plaintext.
func endPoint(nc net.Conn) []byte {
	s, ok := nc.(*tlsio.Session)
	if !ok {
		return nil
	}
	if certs := s.ConnectionState().PeerCertificates; len(certs) > 0 {
		return auth.TLSServerEndPoint(certs[0])
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Cancel sends a CancelRequest for the backend (pid, key) at t's address. It is fire-and-forget, as in
// Postgres: the server closes the connection without an answer.
func Cancel(ctx context.Context, network, address string, pid uint32, key []byte) error {
	var d net.Dialer
	nc, err := d.DialContext(ctx, network, address)
	if err != nil {
		return err
	}
	defer nc.Close()
	if deadline, ok := ctx.Deadline(); ok {
		_ = nc.SetDeadline(deadline)
	}
	_, err = nc.Write(codec.AppendCancelRequest(nil, pid, key))
	if err == nil {
		var one [1]byte
		_, _ = nc.Read(one[:]) // wait for the server to close: the cancel has then been delivered
	}
	return err
}
