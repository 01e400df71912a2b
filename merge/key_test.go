package merge

import (
	"math"
	"testing"

	"github.com/pgshard/pgshard/codec"
)

// orderCase lists values in ascending order; values in one inner slice are equal.
type orderCase struct {
	name   string
	kind   kind
	format int16
	groups [][][]byte
}

func tv(vs ...string) [][]byte {
	out := make([][]byte, len(vs))
	for i, v := range vs {
		out[i] = []byte(v)
	}
	return out
}

func bv(vs ...[]byte) [][]byte { return vs }

func checkOrder(t *testing.T, c orderCase) {
	t.Helper()
	type item struct {
		group int
		v     []byte
	}
	var items []item
	for g, vs := range c.groups {
		for _, v := range vs {
			items = append(items, item{g, v})
		}
	}
	for _, a := range items {
		var ka key
		if err := parseKey(c.kind, c.format, a.v, &ka); err != nil {
			t.Fatalf("%s: parse %q: %v", c.name, a.v, err)
		}
		var ca []byte
		ca, err := appendCanon(nil, c.kind, c.format, a.v, &key{})
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range items {
			var kb key
			if err := parseKey(c.kind, c.format, b.v, &kb); err != nil {
				t.Fatalf("%s: parse %q: %v", c.name, b.v, err)
			}
			want := 0
			switch {
			case a.group < b.group:
				want = -1
			case a.group > b.group:
				want = 1
			}
			if got := cmpKeys(c.kind, &ka, &kb); got != want {
				t.Errorf("%s: cmp(%q, %q) = %d, want %d", c.name, a.v, b.v, got, want)
			}
			cb, _ := appendCanon(nil, c.kind, c.format, b.v, &key{})
			if (string(ca) == string(cb)) != (want == 0) {
				t.Errorf("%s: canonical forms of %q and %q: equal=%v, want %v", c.name, a.v, b.v, string(ca) == string(cb), want == 0)
			}
		}
	}
}

func TestCompareText(t *testing.T) {
	for _, c := range []orderCase{
		{"int2", kInt2, 0, [][][]byte{tv("-32768"), tv("-1"), tv("0", " 0"), tv("7"), tv("32767")}},
		{"int4", kInt4, 0, [][][]byte{tv("-2147483648"), tv("-10"), tv("-9"), tv("0"), tv("9"), tv("10"), tv("2147483647")}},
		{"int8", kInt8, 0, [][][]byte{tv("-9223372036854775808"), tv("-1"), tv("0"), tv("2"), tv("10"), tv("9223372036854775807")}},
		{"oid", kOID, 0, [][][]byte{tv("0"), tv("1"), tv("2147483648"), tv("4294967295", "-1")}},
		{"bool", kBool, 0, [][][]byte{tv("f", "false", "no", "0", "off"), tv("t", "true", "yes", "1", "on")}},
		{"float8", kFloat8, 0, [][][]byte{tv("-Infinity"), tv("-1e+300"), tv("-1.5"), tv("-0", "0", "0.0"),
			tv("1e-05", "0.00001"), tv("1.5"), tv("2"), tv("1e+300"), tv("Infinity"), tv("NaN", "nan")}},
		{"float4", kFloat4, 0, [][][]byte{tv("-Infinity"), tv("-3.4e+38"), tv("-0", "0"), tv("0.1"), tv("1e+06", "1000000"), tv("Infinity"), tv("NaN")}},
		{"numeric", kNumeric, 0, [][][]byte{tv("-Infinity"), tv("-100"), tv("-99.99"), tv("-1.5", "-1.50", "-0001.5"),
			tv("-0.001"), tv("0", "0.000", "-0.00", "0e5"), tv("0.000001"), tv("0.5", ".5", "5e-1"), tv("1", "1.0000"),
			tv("1.00000000000000000001"), tv("1.5", "1.50", "15e-1"), tv("9.9999"), tv("10", "1e1"), tv("123456789012345678901234567890"),
			tv("Infinity", "inf"), tv("NaN", "nan")}},
		{"text", kText, 0, [][][]byte{tv(""), tv(" "), tv("A"), tv("B"), tv("a"), tv("a "), tv("ab"), tv("b"), tv("é")}},
		{"bpchar", kBpchar, 0, [][][]byte{tv("", "  "), tv("a", "a  "), tv("a b"), tv("ab", "ab ")}},
		{"bytea hex", kBytea, 0, [][][]byte{tv(`\x`, ``), tv(`\x00`, `\000`), tv(`\x0001`), tv(`\x01`, `\001`), tv(`\x41`, `A`, `\x 41`),
			tv(`\x5c`, `\\`), tv(`\xff`, `\xFF`, `\377`)}},
		{"uuid", kUUID, 0, [][][]byte{tv("00000000-0000-0000-0000-000000000000"),
			tv("0000000a-0000-0000-0000-000000000000", "{0000000A-0000-0000-0000-000000000000}", "0000000a000000000000000000000000"),
			tv("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"), tv("ffffffff-ffff-ffff-ffff-ffffffffffff")}},
		{"date", kDate, 0, [][][]byte{tv("-infinity"), tv("4714-11-24 BC"), tv("0044-03-15 BC"), tv("0001-12-31 BC"), tv("0001-01-01", "0001-01-01 AD"),
			tv("1999-12-31"), tv("2000-01-01"), tv("2000-02-29"), tv("2000-03-01"), tv("2024-01-02"), tv("10000-01-01"), tv("5874897-12-31"), tv("infinity")}},
		{"time", kTime, 0, [][][]byte{tv("00:00:00", "00:00"), tv("00:00:00.000001"), tv("03:04:05.5", "03:04:05.500000"), tv("23:59:59.999999"), tv("24:00:00")}},
		{"timestamp", kTimestamp, 0, [][][]byte{tv("-infinity"), tv("4714-11-24 00:00:00 BC"), tv("0001-01-01 00:00:00 BC"),
			tv("0001-01-01 00:00:00"), tv("2024-01-02 03:04:05", "2024-01-02T03:04:05", "2024-01-02 03:04:05+05"), tv("2024-01-02 03:04:05.000001"),
			tv("2024-01-03", "2024-01-03 00:00:00"), tv("12345-01-01 01:02:03.5"), tv("294276-12-31 23:59:59.999999"), tv("infinity")}},
		{"timestamptz", kTimestamptz, 0, [][][]byte{tv("-infinity"), tv("0044-03-15 12:00:00+00:19:32 BC"),
			tv("1900-01-01 00:00:00+00:19:32", "1899-12-31 23:40:28+00", "1899-12-31 23:40:28Z"),
			tv("2024-01-01 23:34:05.25-03:30", "2024-01-02 03:04:05.25+00", "2024-01-02 04:04:05.25+01", "2024-01-02 08:34:05.25+0530"),
			tv("2024-01-02 03:04:06+00"), tv("infinity")}},
	} {
		checkOrder(t, c)
	}
}

func TestCompareBinary(t *testing.T) {
	numeric := func(ss ...string) [][]byte {
		var out [][]byte
		for _, s := range ss {
			out = append(out, numBin(t, s))
		}
		return out
	}
	// A numeric with leading and trailing zero base-10000 digits (Postgres never sends one, but it is valid).
	unnormalized := []byte{0, 4, 0, 1, 0, 0, 0, 2, 0, 0, 0, 1, 0x13, 0x88, 0, 0} // digits 0,1,5000,0 weight 1 → 1.5
	for _, c := range []orderCase{
		{"int2", kInt2, 1, [][][]byte{bv(int2Bin(math.MinInt16)), bv(int2Bin(-1)), bv(int2Bin(0)), bv(int2Bin(math.MaxInt16))}},
		{"int4", kInt4, 1, [][][]byte{bv(int4Bin(math.MinInt32)), bv(int4Bin(-1)), bv(int4Bin(0)), bv(int4Bin(math.MaxInt32))}},
		{"int8", kInt8, 1, [][][]byte{bv(int8Bin(math.MinInt64)), bv(int8Bin(-1)), bv(int8Bin(0)), bv(int8Bin(math.MaxInt64))}},
		{"oid", kOID, 1, [][][]byte{bv(int4Bin(0)), bv(int4Bin(math.MaxInt32)), bv(int4Bin(-1))}},
		{"bool", kBool, 1, [][][]byte{bv([]byte{0}), bv([]byte{1})}},
		{"float8", kFloat8, 1, [][][]byte{bv(f8Bin(math.Inf(-1))), bv(f8Bin(-1)), bv(f8Bin(0), f8Bin(math.Copysign(0, -1))),
			bv(f8Bin(math.SmallestNonzeroFloat64)), bv(f8Bin(1)), bv(f8Bin(math.MaxFloat64)), bv(f8Bin(math.Inf(1))),
			bv(f8Bin(math.NaN()), f8Bin(-math.NaN()), f8Bin(math.Float64frombits(0x7ff8000000000001)))}},
		{"float4", kFloat4, 1, [][][]byte{bv(f4Bin(float32(math.Inf(-1)))), bv(f4Bin(-1)), bv(f4Bin(0)), bv(f4Bin(1.5)), bv(f4Bin(float32(math.NaN())))}},
		{"numeric", kNumeric, 1, [][][]byte{numeric("-Infinity"), numeric("-12345.678"), numeric("-1"), numeric("-0.00012"),
			numeric("0", "0.000"), numeric("0.00012", "0.000120"), numeric("1", "1.0"), append(numeric("1.5", "1.50"), unnormalized),
			numeric("9999"), numeric("10000"), numeric("12345.678"), numeric("1e100"), numeric("Infinity"), numeric("NaN")}},
		{"bytea", kBytea, 1, [][][]byte{bv([]byte{}), bv([]byte{0}), bv([]byte{0, 1}), bv([]byte{1}), bv([]byte{0xff})}},
		{"text", kText, 1, [][][]byte{tv(""), tv("a"), tv("b")}},
		{"date", kDate, 1, [][][]byte{bv(int4Bin(math.MinInt32)), bv(int4Bin(-1)), bv(int4Bin(0)), bv(int4Bin(math.MaxInt32))}},
		{"timestamptz", kTimestamptz, 1, [][][]byte{bv(int8Bin(math.MinInt64)), bv(int8Bin(0)), bv(int8Bin(math.MaxInt64))}},
		{"uuid", kUUID, 1, [][][]byte{bv(make([]byte, 16)), bv(append([]byte{1}, make([]byte, 15)...))}},
	} {
		checkOrder(t, c)
	}
}

// TestTextBinaryAgree reads the same values in both forms and expects the same keys.
func TestTextBinaryAgree(t *testing.T) {
	cases := []struct {
		kind kind
		text string
		bin  []byte
	}{
		{kDate, "2000-01-01", int4Bin(0)},
		{kDate, "1999-12-31", int4Bin(-1)},
		{kDate, "infinity", int4Bin(math.MaxInt32)},
		{kDate, "-infinity", int4Bin(math.MinInt32)},
		{kDate, "0001-01-01 BC", int4Bin(-730485)},
		{kTimestamp, "2000-01-01 00:00:01.5", int8Bin(1_500_000)},
		{kTimestamp, "1970-01-01 00:00:00", int8Bin(-946684800 * usPerSecond)},
		{kTimestamp, "infinity", int8Bin(math.MaxInt64)},
		{kTimestamptz, "2000-01-01 01:00:00+01", int8Bin(0)},
		{kTimestamptz, "-infinity", int8Bin(math.MinInt64)},
		{kTime, "24:00:00", int8Bin(usPerDay)},
		{kInt8, "-42", int8Bin(-42)},
		{kOID, "4294967295", int4Bin(-1)},
		{kUUID, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", []byte{0xa0, 0xee, 0xbc, 0x99, 0x9c, 0x0b, 0x4e, 0xf8, 0xbb, 0x6d, 0x6b, 0xb9, 0xbd, 0x38, 0x0a, 0x11}},
		{kBytea, `\x00ff41`, []byte{0, 0xff, 'A'}},
		{kBytea, `\000\377A`, []byte{0, 0xff, 'A'}},
		{kFloat8, "1.5", f8Bin(1.5)},
		{kBool, "t", []byte{1}},
	}
	for _, c := range cases {
		var a, b key
		if err := parseKey(c.kind, codec.FormatText, []byte(c.text), &a); err != nil {
			t.Fatalf("%s %q: %v", kindName(c.kind), c.text, err)
		}
		if err := parseKey(c.kind, codec.FormatBinary, c.bin, &b); err != nil {
			t.Fatalf("%s % x: %v", kindName(c.kind), c.bin, err)
		}
		if cmpKeys(c.kind, &a, &b) != 0 {
			t.Errorf("%s: text %q and binary % x differ (%d vs %d)", kindName(c.kind), c.text, c.bin, a.i, b.i)
		}
		ct, _ := appendCanon(nil, c.kind, codec.FormatText, []byte(c.text), &key{})
		cb, _ := appendCanon(nil, c.kind, codec.FormatBinary, c.bin, &key{})
		if c.kind != kBytea && string(ct) != string(cb) { // binary bytea is kept as is
			t.Errorf("%s: canonical forms differ: % x vs % x", kindName(c.kind), ct, cb)
		}
	}
	// Numeric: text and binary digits compare with each other.
	for _, s := range []string{"0", "1.5", "-0.00012", "12345.678", "1e20", "Infinity", "NaN"} {
		var a, b key
		parseKey(kNumeric, 0, []byte(s), &a)
		parseKey(kNumeric, 1, numBin(t, s), &b)
		if cmpKeys(kNumeric, &a, &b) != 0 {
			t.Errorf("numeric %s: text and binary differ", s)
		}
	}
}

func TestBadValues(t *testing.T) {
	bad := []struct {
		kind   kind
		format int16
		v      string
	}{
		{kInt2, 0, "32768"}, {kInt4, 0, "2147483648"}, {kInt8, 0, "9223372036854775808"}, {kInt8, 0, "1.5"}, {kInt8, 0, ""}, {kInt8, 0, "-"},
		{kInt4, 1, "abc"}, {kInt8, 1, "1234"}, {kFloat8, 0, "abc"}, {kFloat8, 0, "0x1p3"}, {kFloat8, 0, "1e400"}, {kFloat4, 1, "12345"},
		{kNumeric, 0, "1.2.3"}, {kNumeric, 0, "e5"}, {kNumeric, 0, "1e"}, {kNumeric, 0, "--1"}, {kNumeric, 0, "1e99999999"},
		{kNumeric, 1, "\x00\x01\x00\x00\x00\x00\x00\x00"},         // one digit announced, none there
		{kNumeric, 1, "\x00\x01\x00\x00\x00\x00\x00\x00\x27\x10"}, // digit 10000
		{kNumeric, 1, "\x00\x00\x00\x00\x12\x34\x00\x00"},         // bad sign
		{kBool, 0, "maybe"}, {kBool, 1, "\x01\x00"}, {kBool, 0, "o"},
		{kDate, 0, "2023-02-29"}, {kDate, 0, "2024-13-01"}, {kDate, 0, "01/02/2024"}, {kDate, 0, "0000-01-01"},
		{kTime, 0, "25:00:00"}, {kTime, 0, "24:00:01"}, {kTime, 0, "12:60:00"},
		{kTimestamp, 0, "2024-01-02 03:04:05 XY"}, {kTimestamptz, 0, "2024-01-02 03:04:05+16"},
		{kTimestamp, 0, "294277-01-01 00:00:00"}, {kTimestamp, 0, "4714-11-23 00:00:00 BC"},
		{kUUID, 0, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1"}, {kUUID, 0, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11a"}, {kUUID, 0, "g0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"},
		{kUUID, 1, "short"}, {kBytea, 0, `\x0`}, {kBytea, 0, `\xzz`}, {kBytea, 0, `\4`}, {kBytea, 0, `\400`}, {kOID, 0, "4294967296"},
	}
	for _, c := range bad {
		var k key
		if err := parseKey(c.kind, c.format, []byte(c.v), &k); err == nil {
			t.Errorf("%s (format %d) %q: no error", kindName(c.kind), c.format, c.v)
		} else if sqlstate(err) == "" {
			t.Errorf("%s %q: error without SQLSTATE: %v", kindName(c.kind), c.v, err)
		}
	}
}

func TestTimestampTextBC(t *testing.T) {
	// 1 BC is a leap year (astronomical year 0): 0001-02-29 BC exists, 0002-02-29 BC does not.
	if _, ok := parseDateText([]byte("0001-02-29 BC")); !ok {
		t.Error("0001-02-29 BC rejected")
	}
	if _, ok := parseDateText([]byte("0002-02-29 BC")); ok {
		t.Error("0002-02-29 BC accepted")
	}
	a, _ := parseDateText([]byte("0001-12-31 BC"))
	b, _ := parseDateText([]byte("0001-01-01"))
	if b-a != 1 {
		t.Errorf("0001-12-31 BC to 0001-01-01: %d days", b-a)
	}
	// Julian day 0 is 4714-11-24 BC; 2000-01-01 is JD 2451545.
	j0, _ := parseDateText([]byte("4714-11-24 BC"))
	if j0 != -2451545 {
		t.Errorf("4714-11-24 BC = %d, want -2451545", j0)
	}
	// The fraction rounds to microseconds.
	x, _ := parseTimestampText([]byte("2000-01-01 00:00:00.0000005"), false)
	if x != 1 {
		t.Errorf("rounding: %d", x)
	}
}
