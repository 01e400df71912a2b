package codec

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Text is what encoders accept for names and SQL text: a string, or a []byte view taken from a decoded message,
// so that forwarding a statement name or a query does not convert (and copy) it.
type Text interface{ ~string | ~[]byte }

// Format codes of parameters, result columns, function arguments and COPY data.
const (
	FormatText   = 0
	FormatBinary = 1
)

// Targets of Describe and Close: a prepared statement or a portal.
const (
	TargetStatement byte = 'S'
	TargetPortal    byte = 'P'
)

// ErrBadValue reports a field whose value the protocol does not allow (a Describe target other than 'S' or 'P', a
// ReadyForQuery status other than 'I', 'T' or 'E', a NULL length below -1, a parameter format count that matches
// neither 0, 1 nor the parameter count).
var ErrBadValue = errors.New("invalid field value")

// malformed names the message a decoding error comes from. It runs only on the error path.
func malformed(message string, err error) error { return fmt.Errorf("%s: %w", message, err) }

// FormatCodes is a read-only view of an array of Int16 format codes inside a message body.
type FormatCodes struct{ b []byte }

// Len returns the number of codes.
func (f FormatCodes) Len() int { return len(f.b) / 2 }

// At returns code i; i must be in [0, Len()).
func (f FormatCodes) At(i int) int16 { return int16(binary.BigEndian.Uint16(f.b[2*i:])) }

// For returns the format of value i under the protocol's rule: no code means all text, one code applies to every
// value, otherwise there is one code per value (a missing one reads as text).
func (f FormatCodes) For(i int) int16 {
	switch n := f.Len(); {
	case n == 1:
		return f.At(0)
	case i >= 0 && i < n:
		return f.At(i)
	}
	return FormatText
}

// Append appends the codes to dst.
func (f FormatCodes) Append(dst []int16) []int16 {
	for i := 0; i+1 < len(f.b); i += 2 {
		dst = append(dst, int16(binary.BigEndian.Uint16(f.b[i:])))
	}
	return dst
}

// OIDs is a read-only view of an array of type OIDs inside a message body (Parse, ParameterDescription).
type OIDs struct{ b []byte }

// Len returns the number of OIDs.
func (o OIDs) Len() int { return len(o.b) / 4 }

// At returns OID i; i must be in [0, Len()).
func (o OIDs) At(i int) uint32 { return binary.BigEndian.Uint32(o.b[4*i:]) }

// Append appends the OIDs to dst.
func (o OIDs) Append(dst []uint32) []uint32 {
	for i := 0; i+3 < len(o.b); i += 4 {
		dst = append(dst, binary.BigEndian.Uint32(o.b[i:]))
	}
	return dst
}

// ValueIter walks a run of length-prefixed values (Bind parameters, DataRow columns, FunctionCall arguments): an
// Int32 length, -1 for NULL, then that many bytes. Values alias the message body.
//
//	it := row.Iter()
//	for it.Next() {
//		v := it.Value() // nil is SQL NULL
//	}
//	if err := it.Err(); err != nil { ... }
type ValueIter struct {
	b    []byte
	left int
	v    []byte
	err  error
	msg  string
}

// Next advances to the next value and reports whether there is one. It returns false at the end or on malformed
// input; Err tells which.
func (it *ValueIter) Next() bool {
	if it.err != nil {
		return false
	}
	if it.left <= 0 {
		if len(it.b) != 0 {
			it.err = malformed(it.msg, fmt.Errorf("%w: %d bytes after the last value", ErrBadLength, len(it.b)))
			it.b = nil
		}
		it.v = nil
		return false
	}
	v, rest, err := cutValue(it.b)
	if err != nil {
		it.err = malformed(it.msg, err)
		it.b, it.v, it.left = nil, nil, 0
		return false
	}
	it.v, it.b = v, rest
	it.left--
	return true
}

// Value returns the current value; nil is SQL NULL, an empty non-nil slice an empty value.
func (it *ValueIter) Value() []byte { return it.v }

// Err returns the first malformation met, or nil.
func (it *ValueIter) Err() error { return it.err }

// Remaining returns how many values are left to read.
func (it *ValueIter) Remaining() int { return it.left }

// cutValue splits one length-prefixed value off b.
func cutValue(b []byte) (v, rest []byte, err error) {
	if len(b) < 4 {
		return nil, nil, ErrShortMessage
	}
	n := int32(binary.BigEndian.Uint32(b))
	b = b[4:]
	switch {
	case n == -1:
		return nil, b, nil
	case n < 0:
		return nil, nil, fmt.Errorf("%w: value length %d", ErrBadValue, n)
	case int(n) > len(b):
		return nil, nil, ErrShortMessage
	}
	return b[:n:n], b[n:], nil
}

// appendValues appends the values of a run already validated by reader.values.
func appendValues(dst [][]byte, b []byte, n int) [][]byte {
	for ; n > 0; n-- {
		v, rest, err := cutValue(b)
		if err != nil {
			break
		}
		dst = append(dst, v)
		b = rest
	}
	return dst
}

// valueAt returns value i of a validated run.
func valueAt(b []byte, n, i int) []byte {
	if i < 0 || i >= n {
		return nil
	}
	for ; ; i-- {
		v, rest, err := cutValue(b)
		if err != nil || i == 0 {
			return v
		}
		b = rest
	}
}

// uint16 reads an unsigned 16-bit count (Postgres reads counts as unsigned: up to 65535 parameters).
func (r *reader) uint16() int { return int(uint16(r.int16())) }

func (r *reader) uint32() uint32 { return uint32(r.int32()) }

// formatCodes reads a count and that many Int16 codes, checking the count against the bytes left first.
func (r *reader) formatCodes() FormatCodes {
	n := r.uint16()
	return FormatCodes{b: r.bytes(2 * n)}
}

// oids reads a count and that many Int32 OIDs.
func (r *reader) oids() OIDs {
	n := r.uint16()
	return OIDs{b: r.bytes(4 * n)}
}

// values validates a run of n length-prefixed values and returns the bytes it spans.
func (r *reader) values(n int) []byte {
	if r.err != nil {
		return nil
	}
	if 4*n > len(r.b) {
		r.fail(ErrShortMessage)
		return nil
	}
	b := r.b
	for i := 0; i < n; i++ {
		_, rest, err := cutValue(b)
		if err != nil {
			r.fail(err)
			return nil
		}
		b = rest
	}
	v := r.b[: len(r.b)-len(b) : len(r.b)-len(b)]
	r.b = b
	return v
}

// end fails when bytes are left after the last field (Postgres rejects such messages too).
func (r *reader) end() {
	if r.err == nil && len(r.b) != 0 {
		r.fail(fmt.Errorf("%w: %d bytes after the last field", ErrBadLength, len(r.b)))
	}
}

// appendValueRun appends an Int16 count then each value with its Int32 length (-1 for nil).
func appendValueRun(dst []byte, values [][]byte) []byte {
	dst = AppendInt16(dst, int16(len(values)))
	for _, v := range values {
		if v == nil {
			dst = AppendInt32(dst, -1)
			continue
		}
		dst = AppendInt32(dst, int32(len(v)))
		dst = append(dst, v...)
	}
	return dst
}

func appendInt16s(dst []byte, codes []int16) []byte {
	dst = AppendInt16(dst, int16(len(codes)))
	for _, c := range codes {
		dst = AppendInt16(dst, c)
	}
	return dst
}

func appendOIDs(dst []byte, oids []uint32) []byte {
	dst = AppendInt16(dst, int16(len(oids)))
	for _, o := range oids {
		dst = binary.BigEndian.AppendUint32(dst, o)
	}
	return dst
}

func appendText[T Text](dst []byte, s T) []byte { return append(append(dst, s...), 0) }
