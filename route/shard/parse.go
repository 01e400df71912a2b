package shard

import (
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/pgshard/pgshard/codec"
)

// parseError says why a value was refused: the value does not read as the type (22P02), or it reads but
// does not fit (22003).
type parseError uint8

const (
	parseOK parseError = iota
	badSyntax
	outOfRange
)

// bitSize is the width of an integer type.
func (t Type) bitSize() uint {
	switch t {
	case Int2:
		return 16
	case Int4:
		return 32
	}
	return 64
}

// fits tells whether v is a value of the integer type t.
func (t Type) fits(v int64) bool {
	switch t {
	case Int2:
		return v >= -1<<15 && v < 1<<15
	case Int4:
		return v >= -1<<31 && v < 1<<31
	}
	return true
}

// isSpace is C's isspace in the C locale, which Postgres's integer input uses to trim.
func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'
}

// digitVal is the value of c as a digit of base base, or -1.
func digitVal(c byte, base uint64) int {
	var d int
	switch {
	case '0' <= c && c <= '9':
		d = int(c - '0')
	case 'a' <= c && c <= 'f':
		d = int(c-'a') + 10
	case 'A' <= c && c <= 'F':
		d = int(c-'A') + 10
	default:
		return -1
	}
	if uint64(d) >= base {
		return -1
	}
	return d
}

// parseInt reads an integer of bits bits the way Postgres 16's pg_strtoint16/32/64 do: surrounding
// whitespace, a sign, decimal digits or 0x/0o/0b digits, single underscores between digits. Older
// servers refuse the prefixes and underscores; reading more than they do costs nothing, since the server
// refuses such a value anyway. Like Postgres, it reports a value too large as soon as the digits overflow.
func parseInt(s []byte, bits uint) (int64, parseError) {
	limit := uint64(1) << (bits - 1) // the magnitude of the smallest value
	i := 0
	// Fast path: [-]digits and nothing else.
	neg := false
	if i < len(s) && s[i] == '-' {
		neg = true
		i++
	}
	if i < len(s) && '0' <= s[i] && s[i] <= '9' {
		var n uint64
		for ; i < len(s) && '0' <= s[i] && s[i] <= '9'; i++ {
			if n > limit/10 {
				return 0, outOfRange
			}
			n = n*10 + uint64(s[i]-'0')
		}
		if i == len(s) {
			return signed(n, neg, limit)
		}
	}

	// Slow path.
	i, neg = 0, false
	for i < len(s) && isSpace(s[i]) {
		i++
	}
	if i < len(s) && (s[i] == '-' || s[i] == '+') {
		neg = s[i] == '-'
		i++
	}
	base := uint64(10)
	if i+1 < len(s) && s[i] == '0' {
		switch s[i+1] {
		case 'x', 'X':
			base = 16
		case 'o', 'O':
			base = 8
		case 'b', 'B':
			base = 2
		}
		if base != 10 {
			i += 2
		}
	}
	first := i
	var n uint64
	for i < len(s) {
		if d := digitVal(s[i], base); d >= 0 {
			if n > limit/base {
				return 0, outOfRange
			}
			n = n*base + uint64(d)
			i++
			continue
		}
		if s[i] != '_' {
			break
		}
		// An underscore separates digits: never first in a decimal number, always followed by a digit.
		if base == 10 && i == first {
			return 0, badSyntax
		}
		i++
		if i == len(s) || digitVal(s[i], base) < 0 {
			return 0, badSyntax
		}
	}
	if i == first {
		return 0, badSyntax
	}
	for i < len(s) && isSpace(s[i]) {
		i++
	}
	if i != len(s) {
		return 0, badSyntax
	}
	return signed(n, neg, limit)
}

func signed(n uint64, neg bool, limit uint64) (int64, parseError) {
	if neg {
		if n > limit {
			return 0, outOfRange
		}
		return int64(-n), parseOK // -limit wraps to itself, the smallest value
	}
	if n >= limit {
		return 0, outOfRange
	}
	return int64(n), parseOK
}

// hexVal is the value of a hex digit, 0xff for other bytes.
var hexVal = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xff
		if d := digitVal(byte(i), 16); d >= 0 {
			t[i] = byte(d)
		}
	}
	return t
}()

// parseUUID reads a uuid the way Postgres's uuid_in does: 32 hex digits in either case, a hyphen allowed
// after any group of four but the last, the whole optionally in braces.
func parseUUID(s []byte) (u [16]byte, ok bool) {
	i := 0
	braces := len(s) > 0 && s[0] == '{'
	if braces {
		i++
	}
	for k := 0; k < 16; k++ {
		if i+1 >= len(s) {
			return u, false
		}
		hi, lo := hexVal[s[i]], hexVal[s[i+1]]
		if hi|lo > 15 {
			return u, false
		}
		u[k] = hi<<4 | lo
		i += 2
		if i < len(s) && s[i] == '-' && k%2 == 1 && k < 15 {
			i++
		}
	}
	if braces {
		if i >= len(s) || s[i] != '}' {
			return u, false
		}
		i++
	}
	return u, i == len(s)
}

// formatUUID is the canonical text form of u.
func formatUUID(u [16]byte) string {
	const hex = "0123456789abcdef"
	b := make([]byte, 0, 36)
	for i, c := range u {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			b = append(b, '-')
		}
		b = append(b, hex[c>>4], hex[c&15])
	}
	return string(b)
}

// maxShownValue bounds how much of a refused value an error message quotes.
const maxShownValue = 200

// shown is v as an error message quotes it: cut to maxShownValue bytes, invalid UTF-8 replaced.
func shown(v []byte) string {
	s := string(v)
	if len(s) > maxShownValue {
		cut := maxShownValue
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "..."
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

// syntaxError is Postgres's 22P02 for a value that does not read as type t.
func syntaxError(t Type, v []byte) *codec.Error {
	return codec.NewError(codec.SQLStateInvalidTextRepresentation,
		"invalid input syntax for type "+t.String()+": \""+shown(v)+"\"")
}

// rangeError is Postgres's 22003 for a value too large for type t, as its input function words it.
func rangeError(t Type, v []byte) *codec.Error {
	return codec.NewError(codec.SQLStateNumericValueOutOfRange,
		"value \""+shown(v)+"\" is out of range for type "+t.String())
}

// intRangeError is Postgres's 22003 for an integer that does not fit t, as its casts word it.
func intRangeError(t Type, v int64) *codec.Error {
	return codec.NewError(codec.SQLStateNumericValueOutOfRange, t.String()+" out of range").
		WithHint("the key value " + strconv.FormatInt(v, 10) + " does not fit the shard key's type " + t.String())
}

// binaryError is Postgres's 22P03 for a binary parameter of the wrong size.
func binaryError(t Type, n int, want string) *codec.Error {
	return codec.NewError(codec.SQLStateInvalidBinaryRepresentation,
		"incorrect binary data format for a "+t.String()+" shard key: "+strconv.Itoa(n)+" bytes, want "+want)
}
