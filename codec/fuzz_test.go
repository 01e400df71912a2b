package codec

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
)

// The seed corpora live in testdata/fuzz/<FuzzName>/ (pgproto3-encoded messages); `go test` runs them as unit tests.

// FuzzReadMessage frames a stream and hands every message to every decoder: framing must hold its invariants and
// nothing may panic.
func FuzzReadMessage(f *testing.F) {
	f.Fuzz(func(t *testing.T, buf []byte) {
		buf = buf[:len(buf):len(buf)]
		rest := buf
		for {
			m, n, err := ReadMessage(rest, 1<<16)
			if err != nil {
				if n != 0 || !(errors.Is(err, ErrBadLength) || errors.Is(err, ErrMessageTooLarge)) {
					t.Fatalf("n=%d err=%v", n, err)
				}
				return
			}
			if n == 0 {
				if len(rest) >= HeaderLen && MessageLen(rest) <= len(rest) {
					t.Fatalf("whole message of %d bytes not framed from %d", MessageLen(rest), len(rest))
				}
				return
			}
			if n > len(rest) || n != HeaderLen+len(m.Body) || m.Type != rest[0] || MessageLen(rest) != n ||
				!bytes.Equal(m.Body, rest[HeaderLen:n]) || cap(m.Body) != len(m.Body) {
				t.Fatalf("bad frame: n=%d len=%d body=%d", n, len(rest), len(m.Body))
			}
			// One byte less is incomplete.
			if _, n2, err := ReadMessage(rest[:n-1], 1<<16); n2 != 0 || err != nil {
				t.Fatalf("prefix framed: n=%d err=%v", n2, err)
			}
			for _, d := range frontendDecoders {
				if d.typ == m.Type {
					checkStable(t, d, m.Body)
				}
			}
			for _, d := range backendDecoders {
				if d.typ == m.Type {
					checkStable(t, d, m.Body)
				}
			}
			rest = rest[n:]
		}
	})
}

// FuzzParseStartup decodes an untyped startup-phase packet body; what decodes must re-encode to the same bytes.
func FuzzParseStartup(f *testing.F) {
	f.Fuzz(func(t *testing.T, body []byte) {
		body = body[:len(body):len(body)]
		s, err := ParseStartup(body)
		if err != nil {
			return
		}
		var out []byte
		switch s.Code {
		case SSLRequestCode, GSSENCRequestCode:
			out = AppendRequestCode(nil, s.Code)
		case CancelRequestCode:
			out = AppendCancelRequest(nil, s.CancelPID, s.CancelKey)
		default:
			var pairs []string
			for _, p := range s.Params {
				pairs = append(pairs, p.Name, p.Value)
			}
			out = AppendStartupMessage(nil, s.Code, pairs...)
		}
		body2, n, err := ReadStartupPacket(out, 0)
		if err != nil || n != len(out) {
			t.Fatalf("re-encoding does not frame: n=%d err=%v", n, err)
		}
		if !bytes.Equal(body2, body) {
			t.Fatalf("decode+encode changed the packet\n in  %q\n out %q", body, body2)
		}
		s2, err := ParseStartup(body2)
		if err != nil || !equalish(s, s2) {
			t.Fatalf("not stable: %+v / %+v (%v)", s, s2, err)
		}
	})
}

// FuzzParseError decodes an ErrorResponse/NoticeResponse body; its re-encoding must be a fixed point.
func FuzzParseError(f *testing.F) {
	f.Fuzz(func(t *testing.T, body []byte) {
		body = body[:len(body):len(body)]
		e, err := ParseError(body)
		if err != nil {
			return
		}
		_ = e.Error()
		out := AppendErrorResponse(nil, e)
		e2, err := ParseError(frameOne(t, out).Body)
		if err != nil {
			t.Fatalf("cannot decode our encoding %q: %v", out, err)
		}
		out2 := AppendErrorResponse(nil, e2)
		if !bytes.Equal(out, out2) {
			t.Fatalf("not stable\n 1st %q\n 2nd %q", out, out2)
		}
		e3, err := ParseError(frameOne(t, out2).Body)
		if err != nil || !equalish(e2, e3) {
			t.Fatalf("not stable: %+v / %+v (%v)", e2, e3, err)
		}
		// A severity the client can classify survives: V, when sent, is never rewritten.
		if v := lastField(body, 'V'); v != "" {
			if got := lastField(frameOne(t, out).Body, 'V'); got != v {
				t.Fatalf("V %q became %q", v, got)
			}
		}
	})
}

// lastField returns the last value of field t in an error body (a reference reader for FuzzParseError).
func lastField(body []byte, t byte) string {
	v := ""
	for len(body) > 0 && body[0] != 0 {
		typ := body[0]
		i := bytes.IndexByte(body[1:], 0)
		if i < 0 {
			return v
		}
		if typ == t {
			v = string(body[1 : 1+i])
		}
		body = body[2+i:]
	}
	return v
}

// FuzzFrontendMessages decodes a client message body by its type byte with every decoder for that type.
func FuzzFrontendMessages(f *testing.F) {
	f.Fuzz(func(t *testing.T, typ byte, body []byte) {
		body = body[:len(body):len(body)]
		for _, d := range frontendDecoders {
			if d.typ == typ {
				checkStable(t, d, body)
			}
		}
		// The views' accessors must not panic whatever was decoded.
		switch typ {
		case Bind:
			if m, err := ParseBind(body); err == nil {
				for i := -1; i <= m.NumParams(); i++ {
					_ = m.Param(i)
					_ = m.ParamFormats.For(i)
				}
			}
		case Parse:
			if m, err := ParseParse(body); err == nil {
				for i := 0; i < m.ParamTypes.Len(); i++ {
					_ = m.ParamTypes.At(i)
				}
			}
		}
	})
}

// FuzzBackendMessages decodes a server message body by its type byte with every decoder for that type.
func FuzzBackendMessages(f *testing.F) {
	f.Fuzz(func(t *testing.T, typ byte, body []byte) {
		body = body[:len(body):len(body)]
		for _, d := range backendDecoders {
			if d.typ == typ {
				checkStable(t, d, body)
			}
		}
		if typ == DataRow {
			// Columns and the iterator must agree on malformed rows too.
			if m, err := ParseDataRow(body); err == nil {
				cols, err := m.Columns(make([][]byte, 2))
				it := m.Iter()
				i := 0
				for ; it.Next(); i++ {
				}
				if (err == nil) != (it.Err() == nil) || (err == nil && i != len(cols)) {
					t.Fatalf("Columns err %v, Iter err %v after %d", err, it.Err(), i)
				}
				if err != nil && len(cols) != 0 {
					t.Fatalf("Columns returned %d columns with an error", len(cols))
				}
			}
		}
		if typ == Authentication && len(body) >= 4 && binary.BigEndian.Uint32(body) == AuthSASL {
			_, _ = ParseSASLMechanisms(body[4:])
		}
	})
}
