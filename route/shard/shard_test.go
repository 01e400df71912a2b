package shard

import (
	"encoding/binary"
	"strconv"
	"strings"
	"testing"

	"github.com/pgshard/pgshard/codec"
	"github.com/pgshard/pgshard/config"
)

// Known hashes, as Postgres computes them (TestHashMatchesPostgres checks the same functions against a
// server; these keep a -short run honest).
func TestKnownHashes(t *testing.T) {
	ints := []struct {
		v    int64
		want uint64
	}{
		{0, 0xc8440b74fd699b0}, {1, 0x9c7715e2970a8fb8}, {-1, 0x400bc251f3bafa5}, {42, 0xafd30d9a116a5a62},
		{-9223372036854775808, 0xf5aa185b5e7fa17f}, {9223372036854775807, 0x8e2a2eec347a3a76},
	}
	for _, c := range ints {
		for _, typ := range []Type{Int2, Int4, Int8} {
			if !typ.fits(c.v) {
				continue
			}
			if got := HashInt(typ, c.v); got != c.want {
				t.Errorf("HashInt(%s, %d) = %#x, want %#x", typ, c.v, got, c.want)
			}
		}
	}
	texts := []struct {
		v    string
		want uint64
	}{
		{"", 0xfa8431e86a2568a6}, {"a", 0xec9335d598214f5e}, {"abc", 0x7bfcf7ae85298aa5},
		{"hello world!", 0x2f7394b872ac10dc}, {"日本語", 0xd9e8a1b65abbacbe}, {"a0eebc99", 0x2febd114e56429c9},
	}
	for _, c := range texts {
		if got := HashBytes([]byte(c.v)); got != c.want {
			t.Errorf("HashBytes(%q) = %#x, want %#x", c.v, got, c.want)
		}
	}
	u, _ := parseUUID([]byte("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"))
	if got := HashUUID(u); got != 0x4f85215c955b65d0 {
		t.Errorf("HashUUID = %#x", got)
	}
	if HashUUID(u) != HashBytes(u[:]) {
		t.Error("HashUUID differs from HashBytes of the same 16 bytes")
	}
}

func TestParseType(t *testing.T) {
	for s, want := range map[string]Type{"smallint": Int2, "integer": Int4, "bigint": Int8, "text": Text, "varchar": Text, "uuid": UUID} {
		got, err := ParseType(s)
		if err != nil || got != want {
			t.Errorf("ParseType(%q) = %v, %v", s, got, err)
		}
		if want != Text && got.String() != s {
			t.Errorf("%v.String() = %q, want %q", got, got.String(), s)
		}
		if got.IsInt() != (want <= Int8) {
			t.Errorf("%v.IsInt() = %v", got, got.IsInt())
		}
	}
	for _, s := range []string{"", "int", "INTEGER", "numeric", "char"} {
		if _, err := ParseType(s); err == nil {
			t.Errorf("ParseType(%q) accepted", s)
		}
	}
}

func TestParseInt(t *testing.T) {
	cases := []struct {
		in   string
		bits uint
		want int64
		err  parseError
	}{
		{"0", 64, 0, parseOK}, {"-0", 16, 0, parseOK}, {"007", 16, 7, parseOK}, {"+7", 32, 7, parseOK},
		{"  -42\t", 32, -42, parseOK}, {"\n\v\f\r 1", 64, 1, parseOK},
		{"32767", 16, 32767, parseOK}, {"32768", 16, 0, outOfRange}, {"-32768", 16, -32768, parseOK}, {"-32769", 16, 0, outOfRange},
		{"2147483647", 32, 2147483647, parseOK}, {"-2147483648", 32, -2147483648, parseOK}, {"2147483648", 32, 0, outOfRange},
		{"9223372036854775807", 64, 9223372036854775807, parseOK}, {"-9223372036854775808", 64, -9223372036854775808, parseOK},
		{"9223372036854775808", 64, 0, outOfRange}, {"-9223372036854775809", 64, 0, outOfRange},
		{"99999999999999999999999999", 64, 0, outOfRange}, {"999999x", 16, 0, outOfRange}, // Postgres: range first
		{"0000000000000000000000000000000000042", 16, 42, parseOK},
		// Postgres 16 syntax.
		{"0x1F", 64, 31, parseOK}, {"0X1f", 64, 31, parseOK}, {"-0x8000", 16, -32768, parseOK}, {"0x8000", 16, 0, outOfRange},
		{"0o17", 32, 15, parseOK}, {"0b101", 32, 5, parseOK}, {"0b2", 32, 0, badSyntax}, {"0x", 32, 0, badSyntax},
		{"1_000", 32, 1000, parseOK}, {"1_000_000", 32, 1000000, parseOK}, {"1__000", 32, 0, badSyntax},
		{"_1000", 32, 0, badSyntax}, {"1000_", 32, 0, badSyntax}, {"0x_1F", 32, 31, parseOK}, {"0x1F_", 32, 0, badSyntax},
		{"0x7FFFFFFFFFFFFFFF", 64, 9223372036854775807, parseOK}, {"-0x8000000000000000", 64, -9223372036854775808, parseOK},
		{"0x8000000000000000", 64, 0, outOfRange},
		// Not integers.
		{"", 32, 0, badSyntax}, {" ", 32, 0, badSyntax}, {"-", 32, 0, badSyntax}, {"+", 32, 0, badSyntax},
		{"--1", 32, 0, badSyntax}, {"+-1", 32, 0, badSyntax}, {"- 1", 32, 0, badSyntax}, {"4 2", 32, 0, badSyntax},
		{"1e3", 32, 0, badSyntax}, {"1.0", 32, 0, badSyntax}, {"abc", 32, 0, badSyntax}, {"1\x00", 32, 0, badSyntax},
		{"١٢", 32, 0, badSyntax}, {"4\u00a02", 32, 0, badSyntax},
	}
	for _, c := range cases {
		got, err := parseInt([]byte(c.in), c.bits)
		if err != c.err || (err == parseOK && got != c.want) {
			t.Errorf("parseInt(%q, %d) = %d, %d; want %d, %d", c.in, c.bits, got, err, c.want, c.err)
		}
	}
}

func TestParseUUID(t *testing.T) {
	const canon = "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"
	good := []string{canon, strings.ToUpper(canon), "{" + canon + "}", strings.ReplaceAll(canon, "-", ""),
		"a0ee-bc99-9c0b-4ef8-bb6d-6bb9-bd38-0a11", "a0eebc99-9c0b4ef8-bb6d6bb9-bd380a11"}
	for _, s := range good {
		u, ok := parseUUID([]byte(s))
		if !ok || formatUUID(u) != canon {
			t.Errorf("parseUUID(%q) = %s, %v", s, formatUUID(u), ok)
		}
	}
	bad := []string{"", "{}", "{" + canon, canon + "}", " " + canon, canon + " ", canon + "-", "-" + canon,
		canon[:35], canon + "1", "a0eeb-c99-9c0b-4ef8-bb6d-6bb9bd380a11", "a0eebc99--9c0b-4ef8-bb6d-6bb9bd380a11",
		"g" + canon[1:], "{{" + canon + "}}"}
	for _, s := range bad {
		if _, ok := parseUUID([]byte(s)); ok {
			t.Errorf("parseUUID(%q) accepted", s)
		}
	}
}

func mustMapper(t testing.TB, st config.ShardedTable, shards int) *Mapper {
	t.Helper()
	m, err := NewMapper(&st, shards)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// shardOf runs ShardText and fails the test on an error.
func shardOf(t *testing.T, m *Mapper, v string) int {
	t.Helper()
	s, err := m.ShardText([]byte(v))
	if err != nil {
		t.Fatalf("ShardText(%q): %v", v, err)
	}
	return s
}

func wantErr(t *testing.T, what string, err *codec.Error, code string, contains ...string) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: no error, want %s", what, code)
		return
	}
	if err.Code != code {
		t.Errorf("%s: %s %q, want %s", what, err.Code, err.Message, code)
	}
	for _, s := range contains {
		if !strings.Contains(err.Message, s) {
			t.Errorf("%s: message %q does not mention %q", what, err.Message, s)
		}
	}
}

func TestHashMapper(t *testing.T) {
	m := mustMapper(t, config.ShardedTable{Table: "accounts", Column: "id", Type: "bigint", Mapping: "hash"}, 4)
	if m.Type() != Int8 || m.Mapping() != "hash" || m.Shards() != 4 {
		t.Fatalf("mapper %v %s %d", m.Type(), m.Mapping(), m.Shards())
	}
	for _, v := range []int64{0, 1, -1, 42, 1 << 40, -1 << 63} {
		want := int(HashInt(Int8, v) % 4)
		text := []byte(" " + strconv.FormatInt(v, 10) + " ")
		bin := binary.BigEndian.AppendUint64(nil, uint64(v))
		if got := shardOf(t, m, string(text)); got != want {
			t.Errorf("ShardText(%q) = %d, want %d", text, got, want)
		}
		if got, err := m.ShardBinary(bin); err != nil || got != want {
			t.Errorf("ShardBinary(%x) = %d, %v, want %d", bin, got, err, want)
		}
		if got, err := m.ShardInt(v); err != nil || got != want {
			t.Errorf("ShardInt(%d) = %d, %v, want %d", v, got, err, want)
		}
	}
	// Every width for every integer type, as long as the value fits.
	for _, typ := range []string{"smallint", "integer", "bigint"} {
		m := mustMapper(t, config.ShardedTable{Table: "t", Column: "k", Type: typ, Mapping: "hash"}, 5)
		want := int(HashInt(Int8, -7) % 5)
		for _, bin := range [][]byte{{0xff, 0xf9}, {0xff, 0xff, 0xff, 0xf9}, {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xf9}} {
			if got, err := m.ShardBinary(bin); err != nil || got != want {
				t.Errorf("%s ShardBinary(%x) = %d, %v, want %d", typ, bin, got, err, want)
			}
		}
		_, err := m.ShardBinary([]byte{1, 2, 3})
		wantErr(t, typ+" 3-byte binary", err, codec.SQLStateInvalidBinaryRepresentation, typ)
		_, err = m.ShardText([]byte("12abc"))
		wantErr(t, typ+" 12abc", err, codec.SQLStateInvalidTextRepresentation, `"12abc"`, typ)
	}
	i2 := mustMapper(t, config.ShardedTable{Table: "t", Column: "k", Type: "smallint", Mapping: "hash"}, 3)
	_, err := i2.ShardBinary([]byte{0, 0, 0x80, 0})
	wantErr(t, "smallint 32768 binary", err, codec.SQLStateNumericValueOutOfRange, "smallint out of range")
	_, err = i2.ShardInt(-32769)
	wantErr(t, "smallint -32769", err, codec.SQLStateNumericValueOutOfRange)
	_, err = i2.ShardText([]byte("40000"))
	wantErr(t, "smallint 40000", err, codec.SQLStateNumericValueOutOfRange, `value "40000" is out of range for type smallint`)
	i4 := mustMapper(t, config.ShardedTable{Table: "t", Column: "k", Type: "integer", Mapping: "hash"}, 3)
	_, err = i4.ShardInt(1 << 31)
	wantErr(t, "integer 2^31", err, codec.SQLStateNumericValueOutOfRange, "integer out of range")

	txt := mustMapper(t, config.ShardedTable{Table: "users", Column: "email", Type: "varchar", Mapping: "hash"}, 3)
	for _, v := range []string{"", "a@b", "日本語", " padded "} {
		want := int(HashBytes([]byte(v)) % 3)
		if got := shardOf(t, txt, v); got != want {
			t.Errorf("text %q: %d, want %d", v, got, want)
		}
		if got, _ := txt.ShardBinary([]byte(v)); got != want {
			t.Errorf("text binary %q: %d, want %d", v, got, want)
		}
	}
	_, err = txt.ShardInt(1)
	wantErr(t, "ShardInt on text", err, codec.SQLStateInvalidParameterValue, "email", "text")

	um := mustMapper(t, config.ShardedTable{Table: "t", Column: "id", Type: "uuid", Mapping: "hash"}, 3)
	u, _ := parseUUID([]byte("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"))
	want := int(HashUUID(u) % 3)
	for _, v := range []string{"A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11", "{a0eebc999c0b4ef8bb6d6bb9bd380a11}"} {
		if got := shardOf(t, um, v); got != want {
			t.Errorf("uuid %q: %d, want %d", v, got, want)
		}
	}
	if got, err := um.ShardBinary(u[:]); err != nil || got != want {
		t.Errorf("uuid binary: %d, %v", got, err)
	}
	_, err = um.ShardBinary(u[:15])
	wantErr(t, "15-byte uuid", err, codec.SQLStateInvalidBinaryRepresentation, "16")
	_, err = um.ShardText([]byte("not-a-uuid"))
	wantErr(t, "bad uuid", err, codec.SQLStateInvalidTextRepresentation, `invalid input syntax for type uuid: "not-a-uuid"`)
}

func TestListMapper(t *testing.T) {
	ints := mustMapper(t, config.ShardedTable{Table: "orders", Column: "tenant", Type: "integer", Mapping: "list",
		Values: map[int][]string{0: {"1", "007", "-3"}, 1: {"2", "2147483647"}}}, 2)
	for v, want := range map[string]int{"1": 0, "7": 0, " +7 ": 0, "0007": 0, "-3": 0, "2": 1, "2147483647": 1} {
		if got := shardOf(t, ints, v); got != want {
			t.Errorf("list int %q: %d, want %d", v, got, want)
		}
	}
	if got, err := ints.ShardInt(7); err != nil || got != 0 {
		t.Errorf("ShardInt(7) = %d, %v", got, err)
	}
	if got, err := ints.ShardBinary([]byte{0, 2}); err != nil || got != 1 {
		t.Errorf("ShardBinary(2) = %d, %v", got, err)
	}
	_, err := ints.ShardText([]byte("8"))
	wantErr(t, "unlisted int", err, codec.SQLStateInvalidParameterValue, `table "orders"`, "tenant = 8", "sharded_tables values")

	text := mustMapper(t, config.ShardedTable{Table: "events", Column: "region", Type: "text", Mapping: "list",
		Values: map[int][]string{0: {"eu", "uk"}, 2: {"us", "", "日本"}}}, 3)
	for v, want := range map[string]int{"eu": 0, "uk": 0, "us": 2, "": 2, "日本": 2} {
		if got := shardOf(t, text, v); got != want {
			t.Errorf("list text %q: %d, want %d", v, got, want)
		}
	}
	_, err = text.ShardText([]byte("fr"))
	wantErr(t, "unlisted text", err, codec.SQLStateInvalidParameterValue,
		`no shard of table "events" holds region = 'fr': add it to sharded_tables values`)
	_, err = text.ShardText([]byte("EU")) // byte-exact
	wantErr(t, "EU", err, codec.SQLStateInvalidParameterValue, "'EU'")
	_, err = text.ShardText([]byte("it's"))
	wantErr(t, "quote", err, codec.SQLStateInvalidParameterValue, "'it''s'")

	uuids := mustMapper(t, config.ShardedTable{Column: "tenant_id", Type: "uuid", Mapping: "list",
		Values: map[int][]string{1: {"A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11"}}}, 2)
	if got := shardOf(t, uuids, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"); got != 1 {
		t.Errorf("list uuid: %d", got)
	}
	_, err = uuids.ShardText([]byte("{00000000000000000000000000000000}"))
	wantErr(t, "unlisted uuid", err, codec.SQLStateInvalidParameterValue, `"tenant_id"`,
		"tenant_id = '00000000-0000-0000-0000-000000000000'")
}

func TestRangeMapper(t *testing.T) {
	ints := mustMapper(t, config.ShardedTable{Table: "metrics", Column: "ts", Type: "bigint", Mapping: "range",
		Ranges: []config.Range{{Shard: 2, From: "1000", To: "2000"}, {Shard: 0, To: "0"}, {Shard: 1, From: "0", To: "1000"},
			{Shard: 0, From: "3000"}}}, 3)
	for v, want := range map[string]int{"-9223372036854775808": 0, "-1": 0, "0": 1, "999": 1, "1000": 2, "1999": 2,
		"3000": 0, "9223372036854775807": 0} {
		if got := shardOf(t, ints, v); got != want {
			t.Errorf("range int %q: %d, want %d", v, got, want)
		}
	}
	for _, v := range []string{"2000", "2500", "2999"} {
		_, err := ints.ShardText([]byte(v))
		wantErr(t, "gap "+v, err, codec.SQLStateInvalidParameterValue, `table "metrics"`, "ts = "+v, "ranges")
	}

	text := mustMapper(t, config.ShardedTable{Table: "users", Column: "name", Type: "text", Mapping: "range",
		Ranges: []config.Range{{Shard: 0, To: "m"}, {Shard: 1, From: "m", To: "t"}, {Shard: 2, From: "u"}}}, 3)
	for v, want := range map[string]int{"": 0, "A": 0, "lzzz": 0, "m": 1, "mars": 1, "szz": 1, "u": 2, "zed": 2, "é": 2} {
		if got := shardOf(t, text, v); got != want {
			t.Errorf("range text %q: %d, want %d", v, got, want)
		}
	}
	_, err := text.ShardText([]byte("tom"))
	wantErr(t, "text gap", err, codec.SQLStateInvalidParameterValue, "name = 'tom'")

	uuids := mustMapper(t, config.ShardedTable{Table: "t", Column: "id", Type: "uuid", Mapping: "range",
		Ranges: []config.Range{{Shard: 0, To: "80000000-0000-0000-0000-000000000000"},
			{Shard: 1, From: "80000000000000000000000000000000"}}}, 2)
	for v, want := range map[string]int{"00000000-0000-0000-0000-000000000000": 0, "7fffffff-ffff-ffff-ffff-ffffffffffff": 0,
		"80000000-0000-0000-0000-000000000000": 1, "FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF": 1} {
		if got := shardOf(t, uuids, v); got != want {
			t.Errorf("range uuid %q: %d, want %d", v, got, want)
		}
	}
}

func TestNewMapperRefuses(t *testing.T) {
	cases := []struct {
		name   string
		st     config.ShardedTable
		shards int
		want   string
	}{
		{"type", config.ShardedTable{Table: "t", Column: "k", Type: "numeric", Mapping: "hash"}, 2, "numeric"},
		{"mapping", config.ShardedTable{Table: "t", Column: "k", Type: "text", Mapping: "modulo"}, 2, "modulo"},
		{"no shards", config.ShardedTable{Table: "t", Column: "k", Type: "text", Mapping: "hash"}, 0, "at least one shard"},
		{"hash values", config.ShardedTable{Table: "t", Column: "k", Type: "text", Mapping: "hash", Values: map[int][]string{0: {"a"}}}, 2, "neither"},
		{"no values", config.ShardedTable{Table: "t", Column: "k", Type: "text", Mapping: "list"}, 2, "needs values"},
		{"duplicate int", config.ShardedTable{Table: "t", Column: "k", Type: "integer", Mapping: "list",
			Values: map[int][]string{0: {"7"}, 1: {"007"}}}, 2, `"007" is listed twice`},
		{"duplicate uuid", config.ShardedTable{Table: "t", Column: "k", Type: "uuid", Mapping: "list",
			Values: map[int][]string{0: {"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "A0EEBC999C0B4EF8BB6D6BB9BD380A11"}}}, 2, "listed twice"},
		{"bad list value", config.ShardedTable{Table: "t", Column: "k", Type: "smallint", Mapping: "list",
			Values: map[int][]string{0: {"40000"}}}, 2, `"40000" is not a valid smallint`},
		{"list shard", config.ShardedTable{Table: "t", Column: "k", Type: "text", Mapping: "list",
			Values: map[int][]string{2: {"a"}}}, 2, "shard 2 does not exist"},
		{"no ranges", config.ShardedTable{Table: "t", Column: "k", Type: "text", Mapping: "range"}, 2, "needs ranges"},
		{"overlap int", config.ShardedTable{Table: "t", Column: "k", Type: "integer", Mapping: "range",
			Ranges: []config.Range{{Shard: 0, From: "0", To: "10"}, {Shard: 1, From: "9", To: "20"}}}, 2, "overlap"},
		{"overlap unbounded", config.ShardedTable{Table: "t", Column: "k", Type: "integer", Mapping: "range",
			Ranges: []config.Range{{Shard: 0, To: "10"}, {Shard: 1, To: "20"}}}, 2, "overlap"},
		{"overlap open end", config.ShardedTable{Table: "t", Column: "k", Type: "bigint", Mapping: "range",
			Ranges: []config.Range{{Shard: 0, From: "10"}, {Shard: 1, From: "20", To: "30"}}}, 2, "overlap"},
		{"overlap text", config.ShardedTable{Table: "t", Column: "k", Type: "text", Mapping: "range",
			Ranges: []config.Range{{Shard: 0, From: "a", To: "m"}, {Shard: 1, From: "l"}}}, 2, "overlap"},
		{"overlap text unbounded", config.ShardedTable{Table: "t", Column: "k", Type: "text", Mapping: "range",
			Ranges: []config.Range{{Shard: 0, To: "m"}, {Shard: 1, To: "c"}}}, 2, "overlap"},
		{"empty range", config.ShardedTable{Table: "t", Column: "k", Type: "integer", Mapping: "range",
			Ranges: []config.Range{{Shard: 0, From: "10", To: "10"}}}, 2, "empty"},
		{"bad bound", config.ShardedTable{Table: "t", Column: "k", Type: "uuid", Mapping: "range",
			Ranges: []config.Range{{Shard: 0, From: "xyz"}}}, 2, `"xyz" is not a valid uuid`},
		{"range shard", config.ShardedTable{Table: "t", Column: "k", Type: "text", Mapping: "range",
			Ranges: []config.Range{{Shard: -1, From: "a"}}}, 2, "shard -1 does not exist"},
	}
	for _, c := range cases {
		_, err := NewMapper(&c.st, c.shards)
		if err == nil {
			t.Errorf("%s: accepted", c.name)
		} else if !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want it to mention %q", c.name, err, c.want)
		}
	}
	// Adjacent ranges do not overlap.
	mustMapper(t, config.ShardedTable{Table: "t", Column: "k", Type: "integer", Mapping: "range",
		Ranges: []config.Range{{Shard: 1, From: "10"}, {Shard: 0, To: "10"}}}, 2)
}

func TestErrorMessageIsBounded(t *testing.T) {
	m := mustMapper(t, config.ShardedTable{Table: "t", Column: "k", Type: "integer", Mapping: "hash"}, 2)
	long := strings.Repeat("x", 10000) + "\xff"
	_, err := m.ShardText([]byte(long))
	wantErr(t, "long", err, codec.SQLStateInvalidTextRepresentation, "...")
	if len(err.Message) > 400 {
		t.Errorf("message of %d bytes", len(err.Message))
	}
	_, err = m.ShardText([]byte("\xff\xfe"))
	if !strings.Contains(err.Message, "\uFFFD") || strings.Contains(err.Message, "\xff") {
		t.Errorf("invalid UTF-8 in %q", err.Message)
	}
}
