package merge

import (
	"bytes"
	"encoding/binary"
	"math"
	"math/big"
	"strconv"

	"github.com/pgshard/pgshard/codec"
)

// Numeric values: keys for comparison (no allocation) and decimals for arithmetic (sum, avg) that produce what
// Postgres's numeric.c produces (display scale rules, select_div_scale, rounding half away from zero, output and
// send formats).

// Binary numeric sign words (numeric_send).
const (
	numericPos  = 0x0000
	numericNeg  = 0x4000
	numericNaN  = 0xC000
	numericPInf = 0xD000
	numericNInf = 0xF000
)

// maxNumericExponent bounds exponents read from text (Postgres's numeric cannot go past 10^131072 anyway).
const maxNumericExponent = 1 << 20

// parseNumericTextKey reads numeric_in's forms: [sign] digits [. digits] [e [sign] digits], NaN, Infinity,
// -Infinity, inf.
func parseNumericTextKey(v []byte, out *key) bool {
	v = trimSpace(v)
	if special, ok := numericSpecial(v); ok {
		out.cls = special
		return true
	}
	mant, exp, _, neg, ok := splitNumericText(v)
	if !ok {
		return false
	}
	// The first significant digit and its power of ten.
	intLen := len(mant)
	for i, c := range mant {
		if c == '.' {
			intLen = i
			break
		}
	}
	digitIdx := 0
	for i, c := range mant {
		if c == '.' {
			continue
		}
		if c != '0' {
			var power int
			if i < intLen {
				power = intLen - 1 - i
			} else {
				power = -1 - (digitIdx - intLen)
			}
			out.i = int64(power) + exp
			out.b = mant[i:]
			out.cls = numPos
			if neg {
				out.cls = numNeg
			}
			return true
		}
		digitIdx++
	}
	out.cls = numZero
	return true
}

// numericSpecial reads NaN and the infinities (any case).
func numericSpecial(v []byte) (int8, bool) {
	if len(v) < 3 || len(v) > 9 {
		return 0, false
	}
	var lower [9]byte
	for i, c := range v {
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		lower[i] = c
	}
	switch string(lower[:len(v)]) {
	case "nan":
		return numNaN, true
	case "infinity", "+infinity", "inf", "+inf":
		return numPosInf, true
	case "-infinity", "-inf":
		return numNegInf, true
	}
	return 0, false
}

// splitNumericText splits a finite numeric literal into its mantissa (digits and at most one point), exponent,
// display scale and sign.
func splitNumericText(v []byte) (mant []byte, exp int64, dscale int, neg, ok bool) {
	i := 0
	if i < len(v) && (v[i] == '+' || v[i] == '-') {
		neg = v[i] == '-'
		i++
	}
	start, digits, point := i, 0, -1
	for ; i < len(v); i++ {
		c := v[i]
		if isDigit(c) {
			digits++
			if point >= 0 {
				dscale++
			}
			continue
		}
		if c == '.' && point < 0 {
			point = i
			continue
		}
		break
	}
	if digits == 0 {
		return nil, 0, 0, false, false
	}
	mant = v[start:i]
	if i < len(v) {
		if v[i] != 'e' && v[i] != 'E' {
			return nil, 0, 0, false, false
		}
		i++
		eneg := false
		if i < len(v) && (v[i] == '+' || v[i] == '-') {
			eneg = v[i] == '-'
			i++
		}
		if i == len(v) {
			return nil, 0, 0, false, false
		}
		for ; i < len(v); i++ {
			if !isDigit(v[i]) {
				return nil, 0, 0, false, false
			}
			exp = exp*10 + int64(v[i]-'0')
			if exp > maxNumericExponent {
				return nil, 0, 0, false, false
			}
		}
		if eneg {
			exp = -exp
		}
		dscale -= int(exp)
		if dscale < 0 {
			dscale = 0
		}
	}
	return mant, exp, dscale, neg, true
}

// parseNumericBinaryKey reads numeric_send's form: ndigits, weight, sign, dscale (int16 each), base-10000 digits.
func parseNumericBinaryKey(v []byte, out *key) bool {
	digits, weight, sign, _, ok := splitNumericBinary(v)
	if !ok {
		return false
	}
	switch sign {
	case numericNaN:
		out.cls = numNaN
		return true
	case numericPInf:
		out.cls = numPosInf
		return true
	case numericNInf:
		out.cls = numNegInf
		return true
	}
	for len(digits) >= 2 && digits[0] == 0 && digits[1] == 0 {
		digits = digits[2:]
		weight--
	}
	for len(digits) >= 2 && digits[len(digits)-2] == 0 && digits[len(digits)-1] == 0 {
		digits = digits[:len(digits)-2]
	}
	if len(digits) == 0 {
		out.cls = numZero
		return true
	}
	d := binary.BigEndian.Uint16(digits)
	lead := int8(0)
	switch {
	case d < 10:
		lead = 3
	case d < 100:
		lead = 2
	case d < 1000:
		lead = 1
	}
	out.bin, out.b, out.lead = true, digits, lead
	out.i = 4*int64(weight) + 3 - int64(lead)
	out.cls = numPos
	if sign == numericNeg {
		out.cls = numNeg
	}
	return true
}

// splitNumericBinary validates a binary numeric as numeric_recv does.
func splitNumericBinary(v []byte) (digits []byte, weight int, sign uint16, dscale int, ok bool) {
	if len(v) < 8 {
		return nil, 0, 0, 0, false
	}
	n := int(int16(binary.BigEndian.Uint16(v)))
	weight = int(int16(binary.BigEndian.Uint16(v[2:])))
	sign = binary.BigEndian.Uint16(v[4:])
	ds := binary.BigEndian.Uint16(v[6:])
	if n < 0 || len(v) != 8+2*n {
		return nil, 0, 0, 0, false
	}
	switch sign {
	case numericPos, numericNeg, numericNaN, numericPInf, numericNInf:
	default:
		return nil, 0, 0, 0, false
	}
	if ds&0xC000 != 0 {
		return nil, 0, 0, 0, false
	}
	digits = v[8:]
	for i := 0; i < len(digits); i += 2 {
		if binary.BigEndian.Uint16(digits[i:]) >= 10000 {
			return nil, 0, 0, 0, false
		}
	}
	return digits, weight, sign, int(ds), true
}

// digitIter walks the decimal digits of a finite non-zero numeric key from its first significant digit.
type digitIter struct {
	b   []byte
	bin bool
	pos int // binary: decimal position within the current base-10000 digit
}

func newDigitIter(k *key) digitIter { return digitIter{b: k.b, bin: k.bin, pos: int(k.lead)} }

var pow10 = [...]uint64{1, 10, 100, 1000, 10000, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19}

func (it *digitIter) next() (byte, bool) {
	if it.bin {
		if len(it.b) < 2 {
			return 0, false
		}
		g := binary.BigEndian.Uint16(it.b)
		d := byte(uint64(g) / pow10[3-it.pos] % 10)
		if it.pos++; it.pos == 4 {
			it.pos = 0
			it.b = it.b[2:]
		}
		return d, true
	}
	for len(it.b) > 0 {
		c := it.b[0]
		it.b = it.b[1:]
		if c != '.' {
			return c - '0', true
		}
	}
	return 0, false
}

// cmpNumericKeys orders numerics: -Infinity, negatives, zero, positives, Infinity, NaN.
func cmpNumericKeys(a, b *key) int {
	if a.cls != b.cls {
		if a.cls < b.cls {
			return -1
		}
		return 1
	}
	if a.cls != numPos && a.cls != numNeg {
		return 0
	}
	c := cmpMagnitude(a, b)
	if a.cls == numNeg {
		return -c
	}
	return c
}

func cmpMagnitude(a, b *key) int {
	if a.i != b.i {
		if a.i < b.i {
			return -1
		}
		return 1
	}
	if a.bin && b.bin {
		// Same exponent: same weight and leading zeros. Big-endian base-10000 digits compare as bytes, and a
		// digit string that is a prefix of the other is smaller (trailing zero digits were dropped).
		return bytes.Compare(a.b, b.b)
	}
	ia, ib := newDigitIter(a), newDigitIter(b)
	for {
		da, oka := ia.next()
		db, okb := ib.next()
		switch {
		case !oka && !okb:
			return 0
		case !oka:
			if db != 0 || ib.anyNonZero() {
				return -1
			}
			return 0
		case !okb:
			if da != 0 || ia.anyNonZero() {
				return 1
			}
			return 0
		case da != db:
			if da < db {
				return -1
			}
			return 1
		}
	}
}

func (it *digitIter) anyNonZero() bool {
	for {
		d, ok := it.next()
		if !ok {
			return false
		}
		if d != 0 {
			return true
		}
	}
}

// decimal is a numeric for arithmetic: coef × 10^-scale, scale being the display scale, or a special value.
type decimal struct {
	special int8 // 0: finite; numNaN, numPosInf, numNegInf
	scale   int32
	coef    big.Int
}

// maxDisplayScale is NUMERIC_MAX_DISPLAY_SCALE; maxDscale is NUMERIC_DSCALE_MAX, the most a value can have.
const (
	maxDisplayScale = 1000
	maxDscale       = 0x3FFF
)

// setKey sets d from a numeric key and its display scale. Digits past the display scale are dropped (numeric_out
// does not show them either).
func (d *decimal) setKey(k *key, dscale int) {
	d.scale = int32(dscale)
	d.coef.SetInt64(0)
	switch k.cls {
	case numNaN, numPosInf, numNegInf:
		d.special = k.cls
		return
	case numZero:
		d.special = 0
		return
	}
	d.special = 0
	var chunk uint64
	n := 0
	var tmp big.Int
	flush := func() {
		if n == 0 {
			return
		}
		if d.coef.Sign() == 0 {
			d.coef.SetUint64(chunk)
		} else {
			d.coef.Mul(&d.coef, tmp.SetUint64(pow10[n]))
			d.coef.Add(&d.coef, tmp.SetUint64(chunk))
		}
		chunk, n = 0, 0
	}
	it := newDigitIter(k)
	power := k.i
	for power >= -int64(dscale) {
		dg, ok := it.next()
		if !ok {
			break
		}
		chunk = chunk*10 + uint64(dg)
		if n++; n == 18 {
			flush()
		}
		power--
	}
	flush()
	// power is now the power of the digit after the last one taken; scale the coefficient up to 10^-dscale.
	if shift := power + int64(dscale) + 1; shift > 0 {
		d.coef.Mul(&d.coef, pow10Big(int(shift)))
	}
	if k.cls == numNeg {
		d.coef.Neg(&d.coef)
	}
}

// parseDecimal reads a numeric value (nil is an error: callers handle NULL).
func (d *decimal) parse(format int16, v []byte) bool {
	var k key
	if format == codec.FormatBinary {
		if !parseNumericBinaryKey(v, &k) {
			return false
		}
		_, _, _, dscale, _ := splitNumericBinary(v)
		d.setKey(&k, dscale)
		return true
	}
	if !parseNumericTextKey(v, &k) {
		return false
	}
	dscale := 0
	if k.cls != numNaN && k.cls != numPosInf && k.cls != numNegInf {
		_, exp, ds, _, _ := splitNumericText(trimSpace(v))
		dscale = ds
		if ds > maxDscale || exp > 131072 || exp < -maxDscale-131072 {
			return false
		}
	}
	d.setKey(&k, dscale)
	return true
}

func (d *decimal) setInt64(v int64) {
	d.special, d.scale = 0, 0
	d.coef.SetInt64(v)
}

var pow10Cache [64]*big.Int

func pow10Big(n int) *big.Int {
	if n < len(pow10Cache) {
		if p := pow10Cache[n]; p != nil {
			return p
		}
	}
	p := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(n)), nil)
	if n < len(pow10Cache) {
		pow10Cache[n] = p
	}
	return p
}

func init() {
	for i := range pow10Cache {
		pow10Big(i)
	}
}

// add sets d to d + e (numeric_add: display scale is the larger one; NaN absorbs; opposite infinities give NaN).
func (d *decimal) add(e *decimal) {
	if d.special != 0 || e.special != 0 {
		switch {
		case d.special == numNaN || e.special == numNaN:
			d.special = numNaN
		case d.special != 0 && e.special != 0 && d.special != e.special:
			d.special = numNaN
		case d.special == 0:
			d.special = e.special
		}
		d.coef.SetInt64(0)
		d.scale = 0
		return
	}
	switch {
	case e.scale > d.scale:
		d.coef.Mul(&d.coef, pow10Big(int(e.scale-d.scale)))
		d.scale = e.scale
		d.coef.Add(&d.coef, &e.coef)
	case e.scale < d.scale:
		var t big.Int
		t.Mul(&e.coef, pow10Big(int(d.scale-e.scale)))
		d.coef.Add(&d.coef, &t)
	default:
		d.coef.Add(&d.coef, &e.coef)
	}
}

// cmp compares in numeric order (NaN above Infinity above every finite value).
func (d *decimal) cmp(e *decimal) int {
	rank := func(x *decimal) int {
		switch x.special {
		case numNaN:
			return 3
		case numPosInf:
			return 2
		case numNegInf:
			return -2
		}
		return 0
	}
	ra, rb := rank(d), rank(e)
	if ra != rb || ra != 0 {
		switch {
		case ra < rb:
			return -1
		case ra > rb:
			return 1
		}
		return 0
	}
	switch {
	case d.scale == e.scale:
		return d.coef.Cmp(&e.coef)
	case d.scale < e.scale:
		var t big.Int
		t.Mul(&d.coef, pow10Big(int(e.scale-d.scale)))
		return t.Cmp(&e.coef)
	default:
		var t big.Int
		t.Mul(&e.coef, pow10Big(int(d.scale-e.scale)))
		return d.coef.Cmp(&t)
	}
}

// float64 returns the nearest double (for comparisons with floats).
func (d *decimal) float64() float64 {
	switch d.special {
	case numNaN:
		return math.NaN()
	case numPosInf:
		return math.Inf(1)
	case numNegInf:
		return math.Inf(-1)
	}
	f, _ := strconv.ParseFloat(string(d.appendText(nil)), 64)
	return f
}

// nbase returns the base-10000 digits (without leading or trailing zero digits) and the weight of the first,
// as Postgres stores the value; zero has no digits and weight 0.
func (d *decimal) nbase(dst []int16) ([]int16, int) {
	dst = dst[:0]
	if d.special != 0 || d.coef.Sign() == 0 {
		return dst, 0
	}
	var buf [64]byte
	s := new(big.Int).Abs(&d.coef).Append(buf[:0], 10)
	scale := int(d.scale)
	// Integer digits: len(s)-scale (may be <= 0). Align so that the point falls on a base-10000 boundary.
	intDigits := len(s) - scale
	// Number of base-10000 digits before the point.
	intGroups := 0
	if intDigits > 0 {
		intGroups = (intDigits + 3) / 4
	}
	lead := intGroups*4 - intDigits // zero digits to put before s (may be more than 3 when the value is < 1)
	weight := intGroups - 1
	total := lead + len(s)
	ngroups := (total + 3) / 4
	for g := 0; g < ngroups; g++ {
		v := 0
		for j := 0; j < 4; j++ {
			p := g*4 + j - lead
			v *= 10
			if p >= 0 && p < len(s) {
				v += int(s[p] - '0')
			}
		}
		dst = append(dst, int16(v))
	}
	for len(dst) > 0 && dst[0] == 0 {
		dst = dst[1:]
		weight--
	}
	for len(dst) > 0 && dst[len(dst)-1] == 0 {
		dst = dst[:len(dst)-1]
	}
	return dst, weight
}

// appendText appends numeric_out's form: exactly scale digits after the point, NaN, Infinity, -Infinity.
func (d *decimal) appendText(dst []byte) []byte {
	switch d.special {
	case numNaN:
		return append(dst, "NaN"...)
	case numPosInf:
		return append(dst, "Infinity"...)
	case numNegInf:
		return append(dst, "-Infinity"...)
	}
	if d.coef.Sign() < 0 {
		dst = append(dst, '-')
	}
	start := len(dst)
	if d.coef.IsInt64() {
		v := d.coef.Int64()
		if v < 0 {
			dst = strconv.AppendUint(dst, uint64(-v), 10) // -MinInt64 wraps to its magnitude
		} else {
			dst = strconv.AppendUint(dst, uint64(v), 10)
		}
	} else {
		var t big.Int
		dst = t.Abs(&d.coef).Append(dst, 10)
	}
	scale := int(d.scale)
	if scale == 0 {
		return dst
	}
	n := len(dst) - start
	if n <= scale { // pad to one integer digit and scale fraction digits
		pad := scale + 1 - n
		for i := 0; i < pad; i++ {
			dst = append(dst, 0)
		}
		copy(dst[start+pad:], dst[start:start+n])
		for i := 0; i < pad; i++ {
			dst[start+i] = '0'
		}
		n += pad
	}
	dst = append(dst, 0)
	point := start + n - scale
	copy(dst[point+1:], dst[point:start+n])
	dst[point] = '.'
	return dst
}

// appendBinary appends numeric_send's form.
func (d *decimal) appendBinary(dst []byte) []byte {
	switch d.special {
	case numNaN:
		return append(dst, 0, 0, 0, 0, 0xC0, 0, 0, 0)
	case numPosInf:
		return append(dst, 0, 0, 0, 0, 0xD0, 0, 0, 0x20)
	case numNegInf:
		return append(dst, 0, 0, 0, 0, 0xF0, 0, 0, 0x20)
	}
	var buf [32]int16
	digits, weight := d.nbase(buf[:0])
	sign := uint16(numericPos)
	if d.coef.Sign() < 0 {
		sign = numericNeg
	}
	dst = codec.AppendInt16(dst, int16(len(digits)))
	dst = codec.AppendInt16(dst, int16(weight))
	dst = binary.BigEndian.AppendUint16(dst, sign)
	dst = codec.AppendInt16(dst, int16(d.scale))
	for _, g := range digits {
		dst = codec.AppendInt16(dst, g)
	}
	return dst
}

// divScale is select_div_scale: at least 16 significant digits, no less than either input's display scale.
func divScale(n, m *decimal) int {
	var b1, b2 [32]int16
	d1, w1 := n.nbase(b1[:0])
	d2, w2 := m.nbase(b2[:0])
	weight1, first1, weight2, first2 := 0, int16(0), 0, int16(0)
	if len(d1) > 0 {
		weight1, first1 = w1, d1[0]
	}
	if len(d2) > 0 {
		weight2, first2 = w2, d2[0]
	}
	qweight := weight1 - weight2
	if first1 <= first2 {
		qweight--
	}
	rscale := 16 - qweight*4
	rscale = max(rscale, int(n.scale), int(m.scale), 0)
	return min(rscale, maxDisplayScale)
}

// div sets d to n / m rounded half away from zero at select_div_scale's scale (numeric_div). m must be finite
// and non-zero.
func (d *decimal) div(n, m *decimal) {
	switch n.special {
	case numNaN:
		d.special = numNaN
		return
	case numPosInf, numNegInf:
		d.special = n.special
		if m.coef.Sign() < 0 {
			d.special = -n.special // numNegInf is -numPosInf
		}
		return
	}
	rscale := divScale(n, m)
	// q = n.coef * 10^(rscale - n.scale + m.scale) / m.coef
	var num, den big.Int
	num.Set(&n.coef)
	den.Set(&m.coef)
	if e := rscale - int(n.scale) + int(m.scale); e > 0 {
		num.Mul(&num, pow10Big(e))
	} else if e < 0 {
		den.Mul(&den, pow10Big(-e))
	}
	var r big.Int
	d.coef.QuoRem(&num, &den, &r)
	// Round half away from zero: |2r| >= |den|.
	r.Abs(&r)
	r.Lsh(&r, 1)
	if r.CmpAbs(&den) >= 0 {
		if num.Sign()*den.Sign() < 0 {
			d.coef.Sub(&d.coef, big.NewInt(1))
		} else {
			d.coef.Add(&d.coef, big.NewInt(1))
		}
	}
	d.special = 0
	d.scale = int32(rscale)
}
