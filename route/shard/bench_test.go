package shard

import (
	"encoding/binary"
	"testing"

	"github.com/pgshard/pgshard/config"
)

// hotMappers are the mappers of the hot-path benchmarks and the allocation test.
func hotMappers(t testing.TB) (hashInt, hashText, hashUUID, listInt, listText, rangeInt, rangeText, rangeUUID *Mapper) {
	hashInt = mustMapper(t, config.ShardedTable{Table: "accounts", Column: "id", Type: "bigint", Mapping: "hash"}, 8)
	hashText = mustMapper(t, config.ShardedTable{Table: "users", Column: "email", Type: "text", Mapping: "hash"}, 8)
	hashUUID = mustMapper(t, config.ShardedTable{Table: "t", Column: "id", Type: "uuid", Mapping: "hash"}, 8)
	listInt = mustMapper(t, config.ShardedTable{Table: "t", Column: "k", Type: "integer", Mapping: "list",
		Values: map[int][]string{0: {"1", "2"}, 1: {"42", "43"}}}, 2)
	listText = mustMapper(t, config.ShardedTable{Table: "t", Column: "k", Type: "text", Mapping: "list",
		Values: map[int][]string{0: {"eu", "uk"}, 1: {"us", "ca"}}}, 2)
	rangeInt = mustMapper(t, config.ShardedTable{Table: "t", Column: "k", Type: "bigint", Mapping: "range",
		Ranges: []config.Range{{Shard: 0, To: "0"}, {Shard: 1, From: "0", To: "100"}, {Shard: 2, From: "100"}}}, 3)
	rangeText = mustMapper(t, config.ShardedTable{Table: "t", Column: "k", Type: "text", Mapping: "range",
		Ranges: []config.Range{{Shard: 0, To: "m"}, {Shard: 1, From: "m"}}}, 2)
	rangeUUID = mustMapper(t, config.ShardedTable{Table: "t", Column: "k", Type: "uuid", Mapping: "range",
		Ranges: []config.Range{{Shard: 0, To: "80000000-0000-0000-0000-000000000000"}, {Shard: 1, From: "80000000-0000-0000-0000-000000000000"}}}, 2)
	return
}

// TestHotPathAllocatesNothing: mapping integer, short text and uuid keys allocates nothing.
func TestHotPathAllocatesNothing(t *testing.T) {
	hashInt, hashText, hashUUID, listInt, listText, rangeInt, rangeText, rangeUUID := hotMappers(t)
	text42, textNeg := []byte("42"), []byte(" -123456789 ")
	bin42 := binary.BigEndian.AppendUint64(nil, 42)
	email := []byte("someone@example.com")
	uuidText := []byte("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11")
	uuidBin := []byte{0xa0, 0xee, 0xbc, 0x99, 0x9c, 0x0b, 0x4e, 0xf8, 0xbb, 0x6d, 0x6b, 0xb9, 0xbd, 0x38, 0x0a, 0x11}
	us := []byte("us")
	cases := map[string]func(){
		"hash int text":     func() { _, _ = hashInt.ShardText(text42) },
		"hash int text neg": func() { _, _ = hashInt.ShardText(textNeg) },
		"hash int binary":   func() { _, _ = hashInt.ShardBinary(bin42) },
		"hash int":          func() { _, _ = hashInt.ShardInt(42) },
		"hash text":         func() { _, _ = hashText.ShardText(email) },
		"hash text binary":  func() { _, _ = hashText.ShardBinary(email) },
		"hash uuid text":    func() { _, _ = hashUUID.ShardText(uuidText) },
		"hash uuid binary":  func() { _, _ = hashUUID.ShardBinary(uuidBin) },
		"list int":          func() { _, _ = listInt.ShardText(text42) },
		"list text":         func() { _, _ = listText.ShardText(us) },
		"range int":         func() { _, _ = rangeInt.ShardText(text42) },
		"range text":        func() { _, _ = rangeText.ShardText(email) },
		"range uuid":        func() { _, _ = rangeUUID.ShardText(uuidText) },
		"range uuid binary": func() { _, _ = rangeUUID.ShardBinary(uuidBin) },
	}
	for name, f := range cases {
		if n := testing.AllocsPerRun(1000, f); n != 0 {
			t.Errorf("%s: %v allocations per call", name, n)
		}
	}
}

func BenchmarkShardTextInt(b *testing.B) {
	m, _, _, _, _, _, _, _ := hotMappers(b)
	v := []byte("1234567")
	b.ReportAllocs()
	for b.Loop() {
		_, _ = m.ShardText(v)
	}
}

func BenchmarkShardBinaryInt(b *testing.B) {
	m, _, _, _, _, _, _, _ := hotMappers(b)
	v := binary.BigEndian.AppendUint64(nil, 1234567)
	b.ReportAllocs()
	for b.Loop() {
		_, _ = m.ShardBinary(v)
	}
}

func BenchmarkShardInt(b *testing.B) {
	m, _, _, _, _, _, _, _ := hotMappers(b)
	b.ReportAllocs()
	for b.Loop() {
		_, _ = m.ShardInt(1234567)
	}
}

func BenchmarkShardTextShortText(b *testing.B) {
	_, m, _, _, _, _, _, _ := hotMappers(b)
	v := []byte("someone@example.com")
	b.ReportAllocs()
	for b.Loop() {
		_, _ = m.ShardText(v)
	}
}

func BenchmarkShardTextUUID(b *testing.B) {
	_, _, m, _, _, _, _, _ := hotMappers(b)
	v := []byte("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11")
	b.ReportAllocs()
	for b.Loop() {
		_, _ = m.ShardText(v)
	}
}

func BenchmarkShardTextListText(b *testing.B) {
	_, _, _, _, m, _, _, _ := hotMappers(b)
	v := []byte("us")
	b.ReportAllocs()
	for b.Loop() {
		_, _ = m.ShardText(v)
	}
}

func BenchmarkShardTextRangeInt(b *testing.B) {
	_, _, _, _, _, m, _, _ := hotMappers(b)
	v := []byte("42")
	b.ReportAllocs()
	for b.Loop() {
		_, _ = m.ShardText(v)
	}
}

func BenchmarkHashBytes1K(b *testing.B) {
	v := make([]byte, 1024)
	b.SetBytes(int64(len(v)))
	b.ReportAllocs()
	for b.Loop() {
		_ = HashBytes(v)
	}
}
