package merge

import (
	"bytes"
	"encoding/binary"
	"math"
	"strconv"

	"github.com/pgshard/pgshard/codec"
)

// key is a value read for comparison. It aliases the bytes it was read from (text, bytea, numeric digits) and
// allocates nothing.
type key struct {
	null bool
	bin  bool  // b holds a binary encoding (numeric digits in base 10000, raw bytea)
	cls  int8  // numeric: numeric class (numNegInf .. numNaN)
	lead int8  // numeric, binary: leading decimal zeros of the first base-10000 digit
	i    int64 // integers, bool, oid, date (days), time and timestamps (µs); numeric: decimal exponent
	f    float64
	b    []byte // text (bpchar without trailing spaces), bytea (raw, hex or escape text), numeric digits
	u    [16]byte
}

// Numeric classes, in sort order.
const (
	numNegInf int8 = iota - 2
	numNeg
	numZero
	numPos
	numPosInf
	numNaN
)

// parseKey reads v (nil: NULL) of kind k in format into out.
func parseKey(k kind, format int16, v []byte, out *key) error {
	*out = key{}
	if v == nil {
		out.null = true
		return nil
	}
	var ok bool
	if format == codec.FormatBinary {
		ok = parseKeyBinary(k, v, out)
	} else {
		ok = parseKeyText(k, v, out)
	}
	if !ok {
		if format == codec.FormatText && (k == kDate || k == kTimestamp || k == kTimestamptz || k == kTime) {
			return codec.NewError(codec.SQLStateInvalidDatetimeFormat, "pgshard: cannot read "+kindName(k)+" value "+strconv.Quote(trunc(v))+
				" from a shard").WithHint("pgshard reads dates and times in DateStyle ISO; set DateStyle to ISO")
		}
		return errValue(k, format)
	}
	return nil
}

func trunc(v []byte) string {
	if len(v) > 64 {
		return string(v[:64]) + "..."
	}
	return string(v)
}

func parseKeyBinary(k kind, v []byte, out *key) bool {
	switch k {
	case kBool:
		if len(v) != 1 {
			return false
		}
		if v[0] != 0 {
			out.i = 1
		}
	case kInt2:
		if len(v) != 2 {
			return false
		}
		out.i = int64(int16(binary.BigEndian.Uint16(v)))
	case kInt4, kDate:
		if len(v) != 4 {
			return false
		}
		out.i = int64(int32(binary.BigEndian.Uint32(v)))
	case kOID:
		if len(v) != 4 {
			return false
		}
		out.i = int64(binary.BigEndian.Uint32(v))
	case kInt8, kTime, kTimestamp, kTimestamptz:
		if len(v) != 8 {
			return false
		}
		out.i = int64(binary.BigEndian.Uint64(v))
	case kFloat4:
		if len(v) != 4 {
			return false
		}
		out.f = float64(math.Float32frombits(binary.BigEndian.Uint32(v)))
	case kFloat8:
		if len(v) != 8 {
			return false
		}
		out.f = math.Float64frombits(binary.BigEndian.Uint64(v))
	case kNumeric:
		return parseNumericBinaryKey(v, out)
	case kText, kUnsupported:
		out.b = v
	case kBpchar:
		out.b = trimSpaces(v)
	case kBytea:
		out.b, out.bin = v, true
	case kUUID:
		if len(v) != 16 {
			return false
		}
		copy(out.u[:], v)
	}
	return true
}

func parseKeyText(k kind, v []byte, out *key) bool {
	switch k {
	case kBool:
		b, ok := parseBoolText(v)
		if b {
			out.i = 1
		}
		return ok
	case kInt2, kInt4, kInt8:
		bits := 64
		if k == kInt2 {
			bits = 16
		} else if k == kInt4 {
			bits = 32
		}
		n, ok := parseIntText(v, bits)
		out.i = n
		return ok
	case kOID:
		n, ok := parseIntText(v, 64)
		if !ok || n < math.MinInt32 || n > math.MaxUint32 {
			return false
		}
		out.i = int64(uint32(n)) // oidin reads -1 as 4294967295
	case kFloat4, kFloat8:
		f, ok := parseFloatText(v, k == kFloat4)
		out.f = f
		return ok
	case kNumeric:
		return parseNumericTextKey(v, out)
	case kText, kUnsupported:
		out.b = v
	case kBpchar:
		out.b = trimSpaces(v)
	case kBytea:
		if !validByteaText(v) {
			return false
		}
		out.b = v
	case kUUID:
		return parseUUIDText(v, &out.u)
	case kDate:
		d, ok := parseDateText(v)
		out.i = d
		return ok
	case kTime:
		t, ok := parseTimeText(v)
		out.i = t
		return ok
	case kTimestamp, kTimestamptz:
		t, ok := parseTimestampText(v, k == kTimestamptz)
		out.i = t
		return ok
	}
	return true
}

// cmpKeys compares two non-NULL keys of kind k in Postgres's order for the type (C collation for text).
func cmpKeys(k kind, a, b *key) int {
	switch k {
	case kFloat4, kFloat8:
		return cmpFloat(a.f, b.f)
	case kNumeric:
		return cmpNumericKeys(a, b)
	case kText, kBpchar, kUnsupported:
		return bytes.Compare(a.b, b.b)
	case kBytea:
		return cmpBytea(a, b)
	case kUUID:
		return bytes.Compare(a.u[:], b.u[:])
	}
	switch {
	case a.i < b.i:
		return -1
	case a.i > b.i:
		return 1
	}
	return 0
}

// cmpFloat orders floats as Postgres does: NaN above everything (and equal to itself), -0 equal to 0.
func cmpFloat(a, b float64) int {
	an, bn := a != a, b != b
	switch {
	case an && bn:
		return 0
	case an:
		return 1
	case bn:
		return -1
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func trimSpaces(v []byte) []byte {
	n := len(v)
	for n > 0 && v[n-1] == ' ' {
		n--
	}
	return v[:n]
}

func trimSpace(v []byte) []byte {
	i, n := 0, len(v)
	for i < n && isSpace(v[i]) {
		i++
	}
	for n > i && isSpace(v[n-1]) {
		n--
	}
	return v[i:n]
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// parseIntText reads a decimal integer of the given width (surrounding spaces allowed, as int4in does).
func parseIntText(v []byte, bits int) (int64, bool) {
	v = trimSpace(v)
	if len(v) == 0 {
		return 0, false
	}
	neg := false
	switch v[0] {
	case '-':
		neg = true
		v = v[1:]
	case '+':
		v = v[1:]
	}
	if len(v) == 0 {
		return 0, false
	}
	var n uint64
	limit := uint64(1) << (bits - 1) // magnitude of the most negative value
	for _, c := range v {
		if !isDigit(c) {
			return 0, false
		}
		n = n*10 + uint64(c-'0')
		if n > limit {
			return 0, false
		}
	}
	if neg {
		return -int64(n), true // -limit wraps to the minimum exactly
	}
	if n == limit {
		return 0, false
	}
	return int64(n), true
}

// parseBoolText reads boolin's spellings: t, true, y, yes, on, 1 and f, false, n, no, off, 0 (any case, unique
// prefixes, surrounding spaces).
func parseBoolText(v []byte) (bool, bool) {
	v = trimSpace(v)
	if len(v) == 0 || len(v) > 5 {
		return false, false
	}
	var lower [5]byte
	for i, c := range v {
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		lower[i] = c
	}
	s := string(lower[:len(v)]) // does not escape: compared only
	prefix := func(word string) bool { return len(s) <= len(word) && word[:len(s)] == s }
	switch {
	case s == "1":
		return true, true
	case s == "0":
		return false, true
	case prefix("true"), prefix("yes"):
		return true, true
	case prefix("false"), prefix("no"):
		return false, true
	case len(s) >= 2 && prefix("on"):
		return true, true
	case len(s) >= 2 && prefix("off"):
		return false, true
	}
	return false, false
}

// parseFloatText reads float4in/float8in's forms, including NaN, Infinity and -Infinity.
func parseFloatText(v []byte, single bool) (float64, bool) {
	v = trimSpace(v)
	if len(v) == 0 {
		return 0, false
	}
	for _, c := range v { // Go also reads hex floats and underscores; Postgres does not
		if c == '_' || c == 'x' || c == 'X' || c == 'p' || c == 'P' {
			return 0, false
		}
	}
	bits := 64
	if single {
		bits = 32
	}
	f, err := strconv.ParseFloat(string(v), bits) // an out-of-range value is an error in Postgres too
	return f, err == nil
}

// parseUUIDText reads uuid_in's forms: 32 hex digits, optionally in braces, with hyphens after groups of four.
func parseUUIDText(v []byte, u *[16]byte) bool {
	if len(v) > 0 && v[0] == '{' {
		if v[len(v)-1] != '}' {
			return false
		}
		v = v[1 : len(v)-1]
	}
	n := 0
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c == '-' {
			if n == 0 || n%4 != 0 || i+1 == len(v) || v[i+1] == '-' {
				return false
			}
			continue
		}
		h, ok := unhex(c)
		if !ok || n >= 32 {
			return false
		}
		if n%2 == 0 {
			u[n/2] = h << 4
		} else {
			u[n/2] |= h
		}
		n++
	}
	return n == 32
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// Bytea in text form is either hex (\x0102) or the escape format (\001\\A).

func validByteaText(v []byte) bool {
	if len(v) >= 2 && v[0] == '\\' && v[1] == 'x' {
		n := 0
		for _, c := range v[2:] {
			if isSpace(c) { // byteain skips whitespace between hex pairs
				if n%2 != 0 {
					return false
				}
				continue
			}
			if _, ok := unhex(c); !ok {
				return false
			}
			n++
		}
		return n%2 == 0
	}
	for i := 0; i < len(v); i++ {
		if v[i] != '\\' {
			continue
		}
		switch {
		case i+1 < len(v) && v[i+1] == '\\':
			i++
		case i+3 < len(v) && v[i+1] >= '0' && v[i+1] <= '3' && isOctal(v[i+2]) && isOctal(v[i+3]):
			i += 3
		default:
			return false
		}
	}
	return true
}

func isOctal(c byte) bool { return c >= '0' && c <= '7' }

// byteaIter walks the bytes of a bytea key.
type byteaIter struct {
	b   []byte
	hex bool
}

func newByteaIter(k *key) byteaIter {
	if k.bin {
		return byteaIter{b: k.b}
	}
	if len(k.b) >= 2 && k.b[0] == '\\' && k.b[1] == 'x' {
		return byteaIter{b: k.b[2:], hex: true}
	}
	return byteaIter{b: k.b}
}

// next returns the next byte; ok is false at the end. The input was validated.
func (it *byteaIter) next(bin bool) (byte, bool) {
	if bin {
		if len(it.b) == 0 {
			return 0, false
		}
		c := it.b[0]
		it.b = it.b[1:]
		return c, true
	}
	if it.hex {
		for len(it.b) > 0 && isSpace(it.b[0]) {
			it.b = it.b[1:]
		}
		if len(it.b) < 2 {
			return 0, false
		}
		h, _ := unhex(it.b[0])
		l, _ := unhex(it.b[1])
		it.b = it.b[2:]
		return h<<4 | l, true
	}
	if len(it.b) == 0 {
		return 0, false
	}
	c := it.b[0]
	if c != '\\' {
		it.b = it.b[1:]
		return c, true
	}
	if len(it.b) >= 2 && it.b[1] == '\\' {
		it.b = it.b[2:]
		return '\\', true
	}
	if len(it.b) < 4 {
		it.b = nil
		return 0, false
	}
	c = (it.b[1]-'0')<<6 | (it.b[2]-'0')<<3 | (it.b[3] - '0')
	it.b = it.b[4:]
	return c, true
}

func cmpBytea(a, b *key) int {
	if a.bin && b.bin {
		return bytes.Compare(a.b, b.b)
	}
	ia, ib := newByteaIter(a), newByteaIter(b)
	for {
		ca, oka := ia.next(a.bin)
		cb, okb := ib.next(b.bin)
		switch {
		case !oka && !okb:
			return 0
		case !oka:
			return -1
		case !okb:
			return 1
		case ca != cb:
			if ca < cb {
				return -1
			}
			return 1
		}
	}
}

// appendCanon appends the canonical form of a value for equality (GROUP BY, DISTINCT): two values are equal in
// Postgres's sense (numeric 1.5 = 1.50, float -0 = 0, bpchar without trailing spaces, the same instant) exactly
// when their canonical forms are. Types the merger does not know compare by their bytes.
func appendCanon(dst []byte, k kind, format int16, v []byte, scratch *key) ([]byte, error) {
	if v == nil {
		return append(dst, 0), nil
	}
	dst = append(dst, 1)
	if k == kUnsupported || k == kText || (k == kBytea && format == codec.FormatBinary) {
		dst = binary.AppendUvarint(dst, uint64(len(v)))
		return append(dst, v...), nil
	}
	if err := parseKey(k, format, v, scratch); err != nil {
		return dst, err
	}
	switch k {
	case kFloat4, kFloat8:
		f := scratch.f
		switch {
		case f != f:
			f = math.NaN()
		case f == 0:
			f = 0
		}
		return binary.BigEndian.AppendUint64(dst, math.Float64bits(f)), nil
	case kNumeric:
		dst = append(dst, byte(scratch.cls))
		if scratch.cls != numPos && scratch.cls != numNeg {
			return dst, nil
		}
		dst = binary.BigEndian.AppendUint64(dst, uint64(scratch.i))
		it := newDigitIter(scratch)
		end := len(dst)
		for {
			d, ok := it.next()
			if !ok {
				break
			}
			dst = append(dst, '0'+d)
			if d != 0 {
				end = len(dst)
			}
		}
		dst = dst[:end]
		return append(dst, 0xff), nil // terminator: digits never hold 0xff
	case kBpchar:
		dst = binary.AppendUvarint(dst, uint64(len(scratch.b)))
		return append(dst, scratch.b...), nil
	case kBytea:
		it := newByteaIter(scratch)
		start := len(dst)
		dst = append(dst, 0, 0, 0, 0)
		for {
			c, ok := it.next(false)
			if !ok {
				break
			}
			dst = append(dst, c)
		}
		binary.BigEndian.PutUint32(dst[start:], uint32(len(dst)-start-4))
		return dst, nil
	case kUUID:
		return append(dst, scratch.u[:]...), nil
	}
	return binary.BigEndian.AppendUint64(dst, uint64(scratch.i)), nil
}
