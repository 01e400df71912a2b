package codec

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Startup is a decoded startup-phase packet: a StartupMessage (Code is the protocol version), or an SSLRequest,
// GSSENCRequest or CancelRequest (Code is the request code).
type Startup struct {
	Code   uint32
	Params []Param // StartupMessage only, in the order the client sent them
	// CancelRequest only.
	CancelPID uint32
	CancelKey []byte
}

// Param is a startup parameter.
type Param struct{ Name, Value string }

// Get returns a startup parameter's value and whether it was sent.
func (s *Startup) Get(name string) (string, bool) {
	for _, p := range s.Params {
		if p.Name == name {
			return p.Value, true
		}
	}
	return "", false
}

// ParseStartup decodes the body of an untyped startup-phase packet (what ReadStartupPacket returns).
func ParseStartup(body []byte) (*Startup, error) {
	if len(body) < 4 {
		return nil, ErrShortMessage
	}
	s := &Startup{Code: binary.BigEndian.Uint32(body)}
	rest := body[4:]
	switch s.Code {
	case SSLRequestCode, GSSENCRequestCode:
		if len(rest) != 0 {
			return nil, fmt.Errorf("%w: request code %d with a body", ErrBadLength, s.Code)
		}
		return s, nil
	case CancelRequestCode:
		// 3.0 keys are 4 bytes; 3.2 allows up to 256.
		if len(rest) < 8 || len(rest) > 4+256 {
			return nil, fmt.Errorf("%w: cancel request of %d bytes", ErrBadLength, len(body))
		}
		s.CancelPID = binary.BigEndian.Uint32(rest)
		s.CancelKey = rest[4:]
		return s, nil
	}
	if s.Code>>16 != 3 {
		return nil, fmt.Errorf("unsupported frontend protocol %d.%d: server supports 3.0 to 3.2", s.Code>>16, s.Code&0xffff)
	}
	r := reader{b: rest}
	for {
		name := r.cstring()
		if r.err != nil {
			return nil, r.err
		}
		if name == "" {
			break
		}
		value := r.cstring()
		if r.err != nil {
			return nil, r.err
		}
		s.Params = append(s.Params, Param{Name: name, Value: value})
	}
	if len(r.b) != 0 {
		return nil, errors.New("startup packet has bytes after its terminator")
	}
	return s, nil
}

// ParseAuthentication decodes an Authentication message: the request code and what follows it (salt for md5,
// mechanism list for SASL, SASL data for continue/final).
func ParseAuthentication(body []byte) (code int32, data []byte, err error) {
	r := reader{b: body}
	code = r.int32()
	data = r.rest()
	return code, data, r.err
}

// ParseSASLMechanisms splits the payload of AuthenticationSASL into mechanism names.
func ParseSASLMechanisms(data []byte) ([]string, error) {
	r := reader{b: data}
	var out []string
	for {
		m := r.cstring()
		if r.err != nil {
			return nil, r.err
		}
		if m == "" {
			return out, nil
		}
		out = append(out, m)
	}
}

// ParseSASLInitialResponse decodes a client's SASLInitialResponse.
func ParseSASLInitialResponse(body []byte) (mechanism string, data []byte, err error) {
	r := reader{b: body}
	mechanism = r.cstring()
	n := r.int32()
	if n == -1 {
		return mechanism, nil, r.err
	}
	data = r.bytes(int(n))
	if r.err == nil && len(r.b) != 0 {
		r.fail(ErrBadLength)
	}
	return mechanism, data, r.err
}

// ParsePassword decodes a PasswordMessage holding a NUL-terminated password.
func ParsePassword(body []byte) (string, error) {
	r := reader{b: body}
	s := r.cstring()
	return s, r.err
}

// ParseParameterStatus decodes ParameterStatus.
func ParseParameterStatus(body []byte) (name, value string, err error) {
	r := reader{b: body}
	name = r.cstring()
	value = r.cstring()
	return name, value, r.err
}

// ParseBackendKeyData decodes BackendKeyData; the key is 4 bytes in 3.0 and up to 256 in 3.2.
func ParseBackendKeyData(body []byte) (pid uint32, key []byte, err error) {
	r := reader{b: body}
	pid = uint32(r.int32())
	key = r.rest()
	if r.err == nil && (len(key) < 4 || len(key) > 256) {
		return 0, nil, fmt.Errorf("%w: backend key of %d bytes", ErrBadLength, len(key))
	}
	return pid, key, r.err
}

// ParseQuery returns the SQL text of a Query message, aliasing the body.
func ParseQuery(body []byte) ([]byte, error) {
	r := reader{b: body}
	s := r.cstringBytes()
	return s, r.err
}
