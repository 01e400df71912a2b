package shard

import (
	"bytes"
	"strconv"
	"testing"

	"github.com/pgshard/pgshard/codec"
	"github.com/pgshard/pgshard/config"
)

// fuzzMappers are one mapper per key type and mapping.
func fuzzMappers(t testing.TB) []*Mapper {
	var ms []*Mapper
	for _, typ := range []string{"smallint", "integer", "bigint", "text", "uuid"} {
		ms = append(ms, mustMapper(t, config.ShardedTable{Table: "t", Column: "k", Type: typ, Mapping: "hash"}, 7))
	}
	lists := map[string][]string{"smallint": {"1", "-32768"}, "integer": {"7", "2147483647"}, "bigint": {"0", "-9223372036854775808"},
		"text": {"", "a", "日本"}, "uuid": {"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"}}
	for typ, vals := range lists {
		ms = append(ms, mustMapper(t, config.ShardedTable{Table: "t", Column: "k", Type: typ, Mapping: "list",
			Values: map[int][]string{0: vals[:1], 2: vals[1:]}}, 3))
	}
	ranges := map[string][]config.Range{
		"smallint": {{Shard: 0, To: "0"}, {Shard: 1, From: "10", To: "100"}},
		"integer":  {{Shard: 0, From: "-5", To: "5"}, {Shard: 1, From: "5"}},
		"bigint":   {{Shard: 1, To: "-1"}, {Shard: 0, From: "1000"}},
		"text":     {{Shard: 0, To: "m"}, {Shard: 1, From: "q"}},
		"uuid":     {{Shard: 1, From: "80000000-0000-0000-0000-000000000000"}},
	}
	for typ, rs := range ranges {
		ms = append(ms, mustMapper(t, config.ShardedTable{Table: "t", Column: "k", Type: typ, Mapping: "range", Ranges: rs}, 2))
	}
	return ms
}

// checkResult fails unless (s, err) is a shard of m or one of the errors a key value may get.
func checkResult(t *testing.T, m *Mapper, what string, v []byte, s int, err *codec.Error, codes ...string) {
	t.Helper()
	if err == nil {
		if s < 0 || s >= m.Shards() {
			t.Fatalf("%s %s %s(%q): shard %d of %d", m.Type(), m.Mapping(), what, v, s, m.Shards())
		}
		return
	}
	if s != -1 {
		t.Fatalf("%s(%q): shard %d with error %v", what, v, s, err)
	}
	for _, c := range codes {
		if err.Code == c {
			return
		}
	}
	t.Fatalf("%s %s %s(%q): unexpected error %s %q", m.Type(), m.Mapping(), what, v, err.Code, err.Message)
}

func FuzzShardText(f *testing.F) {
	for _, s := range append(append([]string{}, oddInputs...), oddUUIDs...) {
		f.Add([]byte(s))
	}
	for _, s := range []string{"日本", "a", "m", "q", "\xff", "-5", "1000", "{}", "0b", "0x_", "1_", " +0x7fff ",
		"80000000-0000-0000-0000-000000000000"} {
		f.Add([]byte(s))
	}
	ms := fuzzMappers(f)
	f.Fuzz(func(t *testing.T, v []byte) {
		orig := bytes.Clone(v)
		for _, m := range ms {
			s, err := m.ShardText(v)
			checkResult(t, m, "ShardText", v, s, err, codec.SQLStateInvalidTextRepresentation,
				codec.SQLStateNumericValueOutOfRange, codec.SQLStateInvalidParameterValue)
			if err != nil && err.Code == codec.SQLStateInvalidParameterValue && m.Mapping() == "hash" {
				t.Fatalf("hash mapping refused %q: %v", v, err)
			}
			// A value read as an integer maps like its canonical form, its binary form and ShardInt.
			if m.Type().IsInt() && err == nil {
				n, perr := parseInt(v, m.Type().bitSize())
				if perr != parseOK {
					t.Fatalf("ShardText accepted %q, parseInt refuses it", v)
				}
				if s2, err2 := m.ShardText([]byte(strconv.FormatInt(n, 10))); err2 != nil || s2 != s {
					t.Fatalf("%q: shard %d, its canonical form %d: %d, %v", v, s, n, s2, err2)
				}
				if s2, err2 := m.ShardInt(n); err2 != nil || s2 != s {
					t.Fatalf("%q: shard %d, ShardInt(%d): %d, %v", v, s, n, s2, err2)
				}
			}
			if m.Type() == UUID && err == nil {
				u, ok := parseUUID(v)
				if !ok {
					t.Fatalf("ShardText accepted uuid %q, parseUUID refuses it", v)
				}
				if s2, err2 := m.ShardBinary(u[:]); err2 != nil || s2 != s {
					t.Fatalf("uuid %q: text shard %d, binary %d %v", v, s, s2, err2)
				}
				if s2, err2 := m.ShardText([]byte(formatUUID(u))); err2 != nil || s2 != s {
					t.Fatalf("uuid %q: shard %d, canonical %d %v", v, s, s2, err2)
				}
			}
			if m.Type() == Text {
				s2, err2 := m.ShardBinary(v)
				if s2 != s || (err == nil) != (err2 == nil) {
					t.Fatalf("text %q: text form %d %v, binary form %d %v", v, s, err, s2, err2)
				}
			}
		}
		if !bytes.Equal(v, orig) {
			t.Fatalf("input changed: %q -> %q", orig, v)
		}
	})
}

func FuzzShardBinary(f *testing.F) {
	for _, s := range [][]byte{nil, {}, {0}, {0x80, 0}, {0x7f, 0xff}, {0, 0, 0x80, 0}, {0x80, 0, 0, 0},
		{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, {0x80, 0, 0, 0, 0, 0, 0, 0}, {1, 2, 3},
		bytes.Repeat([]byte{0xa5}, 16), bytes.Repeat([]byte{0xa5}, 17), []byte("日本")} {
		f.Add(s)
	}
	ms := fuzzMappers(f)
	f.Fuzz(func(t *testing.T, v []byte) {
		for _, m := range ms {
			s, err := m.ShardBinary(v)
			checkResult(t, m, "ShardBinary", v, s, err, codec.SQLStateInvalidBinaryRepresentation,
				codec.SQLStateNumericValueOutOfRange, codec.SQLStateInvalidParameterValue)
			if m.Type().IsInt() && err == nil && len(v) == 8 {
				n := int64(uint64(v[0])<<56 | uint64(v[1])<<48 | uint64(v[2])<<40 | uint64(v[3])<<32 |
					uint64(v[4])<<24 | uint64(v[5])<<16 | uint64(v[6])<<8 | uint64(v[7]))
				if s2, err2 := m.ShardText([]byte(strconv.FormatInt(n, 10))); err2 != nil || s2 != s {
					t.Fatalf("%x: binary shard %d, text form of %d: %d %v", v, s, n, s2, err2)
				}
			}
		}
	})
}
