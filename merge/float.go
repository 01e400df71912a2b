package merge

import (
	"math"
	"math/big"
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
	var buf, dbuf [32]byte
	s := strconv.AppendFloat(buf[:0], math.Abs(f), 'e', -1, bits)
	digits, exp := splitE(dbuf[:0], s)
	// Go's shortest digits may lie exactly on the boundary halfway to the next float (it accepts a boundary
	// when the mantissa is even, as a correctly rounding reader goes there); Postgres's Ryu never does, and then
	// prints more digits. Take the shortest correctly rounded digits strictly inside.
	maxDigits := 17
	if bits == 32 {
		maxDigits = 9
	}
	if len(digits) < maxDigits && evenMantissa(f, bits) && onBoundary(f, bits, s) {
		for p := len(digits) + 1; p <= maxDigits; p++ {
			s = strconv.AppendFloat(buf[:0], math.Abs(f), 'e', p-1, bits)
			if !onBoundary(f, bits, s) {
				break
			}
		}
		digits, exp = splitE(dbuf[:0], s)
		for len(digits) > 1 && digits[len(digits)-1] == '0' {
			digits = digits[:len(digits)-1]
		}
	}
	if f < 0 {
		dst = append(dst, '-')
	}
	if exp < -4 || exp >= fixedBelow {
		dst = append(dst, digits[0])
		if len(digits) > 1 {
			dst = append(dst, '.')
			dst = append(dst, digits[1:]...)
		}
		dst = append(dst, 'e')
		if exp < 0 {
			dst = append(dst, '-')
			exp = -exp
		} else {
			dst = append(dst, '+')
		}
		if exp < 10 {
			dst = append(dst, '0')
		}
		return strconv.AppendInt(dst, int64(exp), 10)
	}
	if exp < 0 {
		dst = append(dst, "0."...)
		for i := -1; i > exp; i-- {
			dst = append(dst, '0')
		}
		return append(dst, digits...)
	}
	for i := 0; i <= exp; i++ {
		if i < len(digits) {
			dst = append(dst, digits[i])
		} else {
			dst = append(dst, '0')
		}
	}
	if len(digits) > exp+1 {
		dst = append(dst, '.')
		dst = append(dst, digits[exp+1:]...)
	}
	return dst
}

// splitE splits "d.ddde±XX" into its digits (appended to dst) and decimal exponent.
func splitE(dst, s []byte) ([]byte, int) {
	e := len(s) - 1
	for s[e] != 'e' {
		e--
	}
	exp := 0
	for _, c := range s[e+2:] {
		exp = exp*10 + int(c-'0')
	}
	if s[e+1] == '-' {
		exp = -exp
	}
	dst = append(dst[:0], s[0])
	if e > 1 {
		dst = append(dst, s[2:e]...)
	}
	return dst, exp
}

// binaryParts returns f = m2 × 2^e2 and whether f is a power of two above the smallest normal exponent (its
// lower neighbor is half as far).
func binaryParts(f float64, bits int) (m2 uint64, e2 int, pow2 bool) {
	if bits == 32 {
		b := math.Float32bits(float32(math.Abs(f)))
		exp, frac := int(b>>23&0xff), uint64(b&(1<<23-1))
		if exp == 0 {
			return frac, 1 - 127 - 23, false
		}
		return frac | 1<<23, exp - 127 - 23, frac == 0 && exp > 1
	}
	b := math.Float64bits(math.Abs(f))
	exp, frac := int(b>>52&0x7ff), b&(1<<52-1)
	if exp == 0 {
		return frac, 1 - 1023 - 52, false
	}
	return frac | 1<<52, exp - 1023 - 52, frac == 0 && exp > 1
}

func evenMantissa(f float64, bits int) bool {
	m2, _, _ := binaryParts(f, bits)
	return m2%2 == 0
}

// onBoundary reports whether the decimal s ("d.ddde±XX", no sign) is exactly halfway between |f| and a
// neighboring float.
func onBoundary(f float64, bits int, s []byte) bool {
	var c big.Rat
	if _, ok := c.SetString(string(s)); !ok {
		return false
	}
	m2, e2, pow2 := binaryParts(f, bits)
	at := func(num uint64, exp2 int) bool {
		var b big.Rat
		b.SetInt(new(big.Int).SetUint64(num))
		p := new(big.Int).Lsh(big.NewInt(1), uint(abs(exp2)))
		if exp2 >= 0 {
			b.Mul(&b, new(big.Rat).SetInt(p))
		} else {
			b.Quo(&b, new(big.Rat).SetInt(p))
		}
		return b.Cmp(&c) == 0
	}
	if at(2*m2+1, e2-1) {
		return true
	}
	if pow2 {
		return at(4*m2-1, e2-2)
	}
	return at(2*m2-1, e2-1)
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}
