package merge

import (
	"bytes"
	"math"
	"math/rand/v2"
	"strconv"
	"testing"

	"github.com/pgshard/pgshard/codec"
)

func dec(t testing.TB, s string) *decimal {
	t.Helper()
	d := &decimal{}
	if !d.parse(codec.FormatText, []byte(s)) {
		t.Fatalf("decimal %q: not read", s)
	}
	return d
}

func TestNumericTextRoundTrip(t *testing.T) {
	for _, c := range []struct{ in, out string }{
		{"0", "0"}, {"0.000", "0.000"}, {"-0.00", "0.00"}, {"1", "1"}, {"-1", "-1"}, {"12.50", "12.50"}, {"  12.50 ", "12.50"},
		{".5", "0.5"}, {"-.5", "-0.5"}, {"5.", "5"}, {"0.00012", "0.00012"}, {"1e3", "1000"}, {"1.5e-3", "0.0015"}, {"15e-1", "1.5"},
		{"1.50E+2", "150"}, {"123456789012345678901234567890.123456789", "123456789012345678901234567890.123456789"},
		{"-9223372036854775808", "-9223372036854775808"}, {"NaN", "NaN"}, {"nan", "NaN"}, {"Infinity", "Infinity"},
		{"-inf", "-Infinity"}, {"+Infinity", "Infinity"}, {"000123.4500", "123.4500"},
	} {
		if got := string(dec(t, c.in).appendText(nil)); got != c.out {
			t.Errorf("%q: got %q, want %q", c.in, got, c.out)
		}
	}
}

func TestNumericBinary(t *testing.T) {
	// What Postgres 15 sends (numeric_send), checked against a server.
	for _, c := range []struct {
		text string
		bin  []byte
	}{
		{"NaN", []byte{0, 0, 0, 0, 0xc0, 0, 0, 0}},
		{"Infinity", []byte{0, 0, 0, 0, 0xd0, 0, 0, 0x20}},
		{"-Infinity", []byte{0, 0, 0, 0, 0xf0, 0, 0, 0x20}},
		{"0", []byte{0, 0, 0, 0, 0, 0, 0, 0}},
		{"0.000", []byte{0, 0, 0, 0, 0, 0, 0, 3}},
		{"12345.678", []byte{0, 3, 0, 1, 0, 0, 0, 3, 0, 1, 0x09, 0x29, 0x1a, 0x7c}},
		{"0.00012", []byte{0, 2, 0xff, 0xff, 0, 0, 0, 5, 0, 1, 0x07, 0xd0}},
		{"-10000", []byte{0, 1, 0, 1, 0x40, 0, 0, 0, 0, 1}},
	} {
		got := dec(t, c.text).appendBinary(nil)
		if !bytes.Equal(got, c.bin) {
			t.Errorf("%s: send % x, want % x", c.text, got, c.bin)
		}
		var d decimal
		if !d.parse(codec.FormatBinary, c.bin) {
			t.Fatalf("%s: binary not read", c.text)
		}
		if s := string(d.appendText(nil)); s != c.text {
			t.Errorf("% x: text %q, want %q", c.bin, s, c.text)
		}
	}
	// Random round trips text → binary → text.
	r := rand.New(rand.NewPCG(1, 1))
	for i := 0; i < 2000; i++ {
		s := randomNumeric(r)
		d := dec(t, s)
		b := d.appendBinary(nil)
		var e decimal
		if !e.parse(codec.FormatBinary, b) {
			t.Fatalf("%s: % x not read", s, b)
		}
		if x, y := string(d.appendText(nil)), string(e.appendText(nil)); x != y {
			t.Fatalf("%s: round trip %q -> %q", s, x, y)
		}
	}
}

func randomNumeric(r *rand.Rand) string {
	var b []byte
	if r.IntN(3) == 0 {
		b = append(b, '-')
	}
	n := r.IntN(25)
	for i := 0; i <= n; i++ {
		if r.IntN(4) == 0 {
			b = append(b, '0')
		} else {
			b = append(b, byte('0'+r.IntN(10)))
		}
	}
	if r.IntN(2) == 0 {
		b = append(b, '.')
		n := r.IntN(20)
		for i := 0; i <= n; i++ {
			b = append(b, byte('0'+r.IntN(10)))
		}
	}
	return string(b)
}

func TestNumericAdd(t *testing.T) {
	for _, c := range []struct{ a, b, sum string }{
		{"1", "2", "3"}, {"1.5", "2.25", "3.75"}, {"1.50", "1", "2.50"}, {"0.000", "0", "0.000"}, {"-1.5", "1.5", "0.0"},
		{"9999999999999999999999", "1", "10000000000000000000000"}, {"NaN", "1", "NaN"}, {"Infinity", "1", "Infinity"},
		{"Infinity", "-Infinity", "NaN"}, {"-Infinity", "-Infinity", "-Infinity"}, {"1", "NaN", "NaN"}, {"2", "-Infinity", "-Infinity"},
	} {
		d := dec(t, c.a)
		d.add(dec(t, c.b))
		if got := string(d.appendText(nil)); got != c.sum {
			t.Errorf("%s + %s = %s, want %s", c.a, c.b, got, c.sum)
		}
	}
}

func TestNumericDiv(t *testing.T) {
	// Results of Postgres 15's numeric division.
	for _, c := range []struct{ n, m, q string }{
		{"3", "2", "1.5000000000000000"},
		{"5", "3", "1.6666666666666667"},
		{"0", "2", "0.00000000000000000000"},
		{"1", "3", "0.33333333333333333333"},
		{"100000000000000000000", "7", "14285714285714285714"},
		{"0.000001", "3", "0.000000333333333333333333"},
		{"3.751", "2", "1.8755000000000000"},
		{"123456789013", "2", "61728394506.50000000"},
		{"-5", "3", "-1.6666666666666667"},
		{"-1", "2", "-0.50000000000000000000"},
		{"NaN", "2", "NaN"},
		{"Infinity", "2", "Infinity"},
		{"-Infinity", "2", "-Infinity"},
	} {
		var q decimal
		q.div(dec(t, c.n), dec(t, c.m))
		if got := string(q.appendText(nil)); got != c.q {
			t.Errorf("%s / %s = %s, want %s", c.n, c.m, got, c.q)
		}
	}
}

func TestNumericCmp(t *testing.T) {
	order := []string{"-Infinity", "-10", "-1.5", "0", "0.0001", "1.5", "1.50001", "10", "Infinity", "NaN"}
	for i, a := range order {
		for j, b := range order {
			want := 0
			if i < j {
				want = -1
			} else if i > j {
				want = 1
			}
			if got := dec(t, a).cmp(dec(t, b)); got != want {
				t.Errorf("cmp(%s, %s) = %d, want %d", a, b, got, want)
			}
		}
	}
	if dec(t, "1.5").cmp(dec(t, "1.500")) != 0 {
		t.Error("1.5 != 1.500")
	}
	if f := dec(t, "1.25").float64(); f != 1.25 {
		t.Errorf("float64 = %v", f)
	}
}

func TestFloatFormat(t *testing.T) {
	for _, c := range []struct {
		f    float64
		want string
	}{
		{0, "0"}, {math.Copysign(0, -1), "-0"}, {1, "1"}, {-1.5, "-1.5"}, {0.1, "0.1"}, {1e15, "1e+15"}, {1e14, "100000000000000"},
		{123456789012345, "123456789012345"}, {1e-5, "1e-05"}, {0.0001, "0.0001"}, {1.5e300, "1.5e+300"}, {math.MaxFloat64, "1.7976931348623157e+308"},
		{5e-324, "5e-324"}, {math.NaN(), "NaN"}, {math.Inf(1), "Infinity"}, {math.Inf(-1), "-Infinity"}, {1.0 / 3, "0.3333333333333333"},
		{100, "100"}, {2.5e-5, "2.5e-05"},
		// The shortest digits "6.97371735317545e+16" lie exactly halfway to the next double: Postgres prints more.
		{6.9737173531754496e+16, "6.9737173531754496e+16"}, {2.3395505052581888e+16, "2.3395505052581888e+16"},
	} {
		if got := string(appendFloat8(nil, c.f)); got != c.want {
			t.Errorf("float8 %v: %q, want %q", c.f, got, c.want)
		}
	}
	for _, c := range []struct {
		f    float32
		want string
	}{
		{1e6, "1e+06"}, {123456, "123456"}, {100000, "100000"}, {1e-40, "1e-40"}, {3.4e38, "3.4e+38"}, {0.1, "0.1"},
		{1.0 / 3, "0.33333334"}, {float32(math.Inf(-1)), "-Infinity"}, {1e-4, "0.0001"}, {1e-5, "1e-05"},
		{9.5149184e+07, "9.5149184e+07"}, {2.44956992e+08, "2.4495699e+08"}, {-7.0545915904e+10, "-7.0545916e+10"},
	} {
		if got := string(appendFloat4(nil, c.f)); got != c.want {
			t.Errorf("float4 %v: %q, want %q", c.f, got, c.want)
		}
	}
	// Every output reads back as the same value.
	r := rand.New(rand.NewPCG(2, 2))
	for i := 0; i < 10000; i++ {
		f := math.Float64frombits(r.Uint64())
		if f != f {
			continue
		}
		s := appendFloat8(nil, f)
		g, err := strconv.ParseFloat(string(s), 64)
		if err != nil && !math.IsInf(f, 0) {
			t.Fatalf("%v -> %s: %v", f, s, err)
		}
		if g != f && !math.IsInf(f, 0) {
			t.Fatalf("%v -> %s -> %v", f, s, g)
		}
	}
}
