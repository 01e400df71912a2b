package codec

import (
	"bytes"
	"encoding/binary"
	"errors"
)

// ErrShortMessage reports a body that ends before a field it must hold.
var ErrShortMessage = errors.New("message body too short")

// ErrMissingNUL reports a string field without its terminator.
var ErrMissingNUL = errors.New("string field without NUL terminator")

// reader walks a message body; the first failure sticks in err so callers check once at the end.
type reader struct {
	b   []byte
	err error
}

func (r *reader) fail(err error) {
	if r.err == nil {
		r.err = err
	}
	r.b = nil
}

func (r *reader) byte() byte {
	if len(r.b) < 1 {
		r.fail(ErrShortMessage)
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v
}

func (r *reader) int16() int16 {
	if len(r.b) < 2 {
		r.fail(ErrShortMessage)
		return 0
	}
	v := int16(binary.BigEndian.Uint16(r.b))
	r.b = r.b[2:]
	return v
}

func (r *reader) int32() int32 {
	if len(r.b) < 4 {
		r.fail(ErrShortMessage)
		return 0
	}
	v := int32(binary.BigEndian.Uint32(r.b))
	r.b = r.b[4:]
	return v
}

func (r *reader) bytes(n int) []byte {
	if n < 0 || len(r.b) < n {
		r.fail(ErrShortMessage)
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

// cstringBytes returns the field without its NUL, aliasing the body.
func (r *reader) cstringBytes() []byte {
	i := bytes.IndexByte(r.b, 0)
	if i < 0 {
		r.fail(ErrMissingNUL)
		return nil
	}
	v := r.b[:i:i]
	r.b = r.b[i+1:]
	return v
}

func (r *reader) cstring() string { return string(r.cstringBytes()) }

func (r *reader) rest() []byte {
	v := r.b
	r.b = nil
	return v
}
