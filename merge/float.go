package merge

import (
	"math"
	"strconv"
)

// appendFloat8 appends float8out's form with extra_float_digits = 1 (the default since Postgres 12): the
// shortest digits that read back as the same double, in fixed notation when the decimal exponent is in
// [-4, 15) and as d.ddde+XX otherwise; NaN, Infinity, -Infinity, -0.
func appendFloat8(dst []byte, f float64) []byte { return appendFloat(dst, f, 64, 15) }

// appendFloat4 appends float4out's form (fixed notation for a decimal exponent in [-4, 6)).
func appendFloat4(dst []byte, f float32) []byte { return appendFloat(dst, float64(f), 32, 6) }

func appendFloat(dst []byte, f float64, bits, fixedBelow int) []byte {
	switch {
	case f != f:
		return append(dst, "NaN"...)
	case math.IsInf(f, 1):
		return append(dst, "Infinity"...)
	case math.IsInf(f, -1):
		return append(dst, "-Infinity"...)
	case f == 0:
		if math.Signbit(f) {
			return append(dst, "-0"...)
		}
		return append(dst, '0')
	}
	start := len(dst)
	dst = strconv.AppendFloat(dst, f, 'e', -1, bits)
	// The exponent follows the 'e'.
	e := len(dst) - 1
	for dst[e] != 'e' {
		e--
	}
	exp := 0
	for _, c := range dst[e+2:] {
		exp = exp*10 + int(c-'0')
	}
	if dst[e+1] == '-' {
		exp = -exp
	}
	if exp < -4 || exp >= fixedBelow {
		return dst
	}
	return strconv.AppendFloat(dst[:start], f, 'f', -1, bits)
}
