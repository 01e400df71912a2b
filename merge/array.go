package merge

import (
	"encoding/binary"
	"strconv"

	"github.com/pgshard/pgshard/codec"
)

// Arrays: array_agg's partial results concatenate along their first dimension.

// maxDims is MAXDIM.
const maxDims = 6

func errArray(format int16) *codec.Error {
	if format == codec.FormatBinary {
		return codec.NewError(codec.SQLStateInvalidBinaryRepresentation, "pgshard: invalid binary array value from a shard")
	}
	return codec.NewError(codec.SQLStateInvalidTextRepresentation, "pgshard: invalid array value from a shard")
}

func errArrayDims() *codec.Error {
	return codec.NewError(codec.SQLStateArraySubscriptError, "cannot accumulate arrays of different dimensionality")
}

// arrayDims is the dimension decoration of an array in text form ("[0:1][1:2]=").
type arrayDims struct {
	n      int
	lo, hi [maxDims]int64
}

// splitArrayText splits a text array into its decoration (n is 0 without one) and its outer braces' content.
func splitArrayText(v []byte) (dims arrayDims, inner []byte, ok bool) {
	v = trimSpace(v)
	for len(v) > 0 && v[0] == '[' {
		if dims.n == maxDims {
			return dims, nil, false
		}
		s := textScanner{b: v[1:], ok: true}
		neg := s.lit('-')
		lo := s.num(1, 9)
		if neg {
			lo = -lo
		}
		s.want(':')
		neg = s.lit('-')
		hi := s.num(1, 9)
		if neg {
			hi = -hi
		}
		s.want(']')
		if !s.ok || hi < lo-1 {
			return dims, nil, false
		}
		dims.lo[dims.n], dims.hi[dims.n] = lo, hi
		dims.n++
		v = s.b
	}
	if dims.n > 0 {
		if len(v) == 0 || v[0] != '=' {
			return dims, nil, false
		}
		v = v[1:]
	}
	if len(v) < 2 || v[0] != '{' || v[len(v)-1] != '}' {
		return dims, nil, false
	}
	return dims, v[1 : len(v)-1], true
}

// countTopLevel counts the elements of the outer level of an array's content (between its outer braces).
func countTopLevel(inner []byte) (int64, bool) {
	if len(trimSpace(inner)) == 0 {
		return 0, true
	}
	n, depth, quoted := int64(1), 0, false
	for i := 0; i < len(inner); i++ {
		c := inner[i]
		switch {
		case c == '\\':
			i++
		case c == '"':
			quoted = !quoted
		case quoted:
		case c == '{':
			depth++
		case c == '}':
			depth--
			if depth < 0 {
				return 0, false
			}
		case c == ',' && depth == 0:
			n++
		}
	}
	return n, !quoted && depth == 0
}

// textArray is an array_agg result in text form being built.
type textArray struct {
	dims  arrayDims // of the result; n == 0 until a decorated partial came
	count int64     // elements along the first dimension
	inner []byte
	any   bool // a non-empty partial came
}

func (a *textArray) reset() { a.dims, a.count, a.inner, a.any = arrayDims{}, 0, a.inner[:0], false }

func (a *textArray) add(v []byte) error {
	dims, inner, ok := splitArrayText(v)
	if !ok {
		return errArray(codec.FormatText)
	}
	if len(trimSpace(inner)) == 0 {
		return nil
	}
	n, ok := countTopLevel(inner)
	if !ok {
		return errArray(codec.FormatText)
	}
	if dims.n > 0 && dims.hi[0]-dims.lo[0]+1 != n {
		return errArray(codec.FormatText)
	}
	if a.any && (dims.n > 0 || a.dims.n > 0) {
		// Dimensions past the first must agree (a missing decoration means lower bounds 1).
		if dims.n > 0 && a.dims.n > 0 {
			if dims.n != a.dims.n {
				return errArrayDims()
			}
			for i := 1; i < dims.n; i++ {
				if dims.lo[i] != a.dims.lo[i] || dims.hi[i] != a.dims.hi[i] {
					return errArrayDims()
				}
			}
		} else {
			d := dims
			if d.n == 0 {
				d = a.dims
			}
			for i := 1; i < d.n; i++ {
				if d.lo[i] != 1 {
					return errArrayDims()
				}
			}
		}
	}
	if !a.any {
		a.dims = dims
		a.inner = append(a.inner[:0], inner...)
	} else {
		if a.dims.n == 0 && dims.n > 0 {
			a.dims = dims
			a.dims.lo[0] = 1
		}
		a.inner = append(append(a.inner, ','), inner...)
	}
	a.count += n
	a.any = true
	return nil
}

// appendTo appends the result; with no non-empty partial it is '{}'.
func (a *textArray) appendTo(dst []byte) []byte {
	if a.any && a.dims.n > 0 {
		decorate := false
		for i := 0; i < a.dims.n; i++ {
			decorate = decorate || a.dims.lo[i] != 1
		}
		if decorate {
			for i := 0; i < a.dims.n; i++ {
				hi := a.dims.hi[i]
				if i == 0 {
					hi = a.dims.lo[0] + a.count - 1
				}
				dst = append(dst, '[')
				dst = strconv.AppendInt(dst, a.dims.lo[i], 10)
				dst = append(dst, ':')
				dst = strconv.AppendInt(dst, hi, 10)
				dst = append(dst, ']')
			}
			dst = append(dst, '=')
		}
	}
	dst = append(dst, '{')
	dst = append(dst, a.inner...)
	return append(dst, '}')
}

// binArray is the header of an array in binary form (array_send).
type binArray struct {
	ndim     int
	hasNull  bool
	elemType uint32
	dims     [maxDims][2]int32 // length, lower bound
	elems    []byte
}

// parseArrayBinary reads and checks an array in binary form (array_recv's checks, elements walked).
func parseArrayBinary(v []byte, a *binArray) bool {
	if len(v) < 12 {
		return false
	}
	ndim := int32(binary.BigEndian.Uint32(v))
	flags := int32(binary.BigEndian.Uint32(v[4:]))
	a.elemType = binary.BigEndian.Uint32(v[8:])
	if ndim < 0 || ndim > maxDims || (flags != 0 && flags != 1) {
		return false
	}
	a.ndim, a.hasNull = int(ndim), flags == 1
	v = v[12:]
	if len(v) < 8*a.ndim {
		return false
	}
	total := int64(1)
	for i := 0; i < a.ndim; i++ {
		n := int32(binary.BigEndian.Uint32(v[8*i:]))
		lb := int32(binary.BigEndian.Uint32(v[8*i+4:]))
		if n < 0 || int64(lb)+int64(n) > 1<<31 {
			return false
		}
		a.dims[i] = [2]int32{n, lb}
		total *= int64(n)
		if total > int64(len(v)) { // every element takes at least 4 bytes
			return false
		}
	}
	if a.ndim == 0 {
		total = 0
	}
	v = v[8*a.ndim:]
	a.elems = v
	for ; total > 0; total-- {
		if len(v) < 4 {
			return false
		}
		n := int32(binary.BigEndian.Uint32(v))
		v = v[4:]
		if n == -1 {
			continue
		}
		if n < 0 || int(n) > len(v) {
			return false
		}
		v = v[n:]
	}
	return len(v) == 0
}

// mergeArrayBinary appends the concatenation of two binary arrays (a first).
func mergeArrayBinary(dst []byte, a, b []byte) ([]byte, error) {
	var x, y binArray
	if !parseArrayBinary(a, &x) || !parseArrayBinary(b, &y) {
		return dst, errArray(codec.FormatBinary)
	}
	switch {
	case y.ndim == 0:
		return append(dst, a...), nil
	case x.ndim == 0:
		return append(dst, b...), nil
	}
	if x.ndim != y.ndim {
		return dst, errArrayDims()
	}
	if x.elemType != y.elemType {
		return dst, errArray(codec.FormatBinary)
	}
	for i := 1; i < x.ndim; i++ {
		if x.dims[i] != y.dims[i] {
			return dst, errArrayDims()
		}
	}
	n := int64(x.dims[0][0]) + int64(y.dims[0][0])
	if n+int64(x.dims[0][1]) > 1<<31 {
		return dst, codec.NewError(codec.SQLStateProgramLimitExceeded, "array size exceeds the maximum allowed")
	}
	dst = codec.AppendInt32(dst, int32(x.ndim))
	flags := int32(0)
	if x.hasNull || y.hasNull {
		flags = 1
	}
	dst = codec.AppendInt32(dst, flags)
	dst = binary.BigEndian.AppendUint32(dst, x.elemType)
	for i := 0; i < x.ndim; i++ {
		d := x.dims[i]
		if i == 0 {
			d[0] = int32(n)
		}
		dst = codec.AppendInt32(dst, d[0])
		dst = codec.AppendInt32(dst, d[1])
	}
	dst = append(dst, x.elems...)
	return append(dst, y.elems...), nil
}
