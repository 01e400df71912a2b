package route

import (
	"encoding/binary"
	"fmt"
	"math/bits"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/pgshard/pgshard/config"
)

// testDB is the database most tests route for: four shards, tables sharded by integer, text, uuid and list
// keys, two replicated tables.
func testDB() *config.Database {
	return &config.Database{
		Name:   "app",
		Shards: make([]config.Shard, 4),
		ShardedTables: []config.ShardedTable{
			{Table: "accounts", Column: "aid", Type: "bigint", Mapping: config.MappingHash},
			{Table: "history", Column: "aid", Type: "bigint", Mapping: config.MappingHash},
			{Table: "pgbench_accounts", Column: "aid", Type: "integer", Mapping: config.MappingHash},
			{Table: "users", Column: "name", Type: "text", Mapping: config.MappingHash},
			{Table: "devices", Column: "id", Type: "uuid", Mapping: config.MappingHash},
			{Table: "events", Column: "region", Type: "text", Mapping: config.MappingList,
				Values: map[int][]string{0: {"eu", "uk"}, 1: {"us"}, 2: {"asia"}, 3: {"au"}}},
			{Table: "Mixed", Column: "Key", Type: "integer", Mapping: config.MappingHash},
			{Table: `"Quoted"`, Column: `"Key"`, Type: "integer", Mapping: config.MappingHash},
			{Table: "sales.orders", Column: "oid", Type: "bigint", Mapping: config.MappingHash},
		},
		ReplicatedTables: []string{"branches", "pgbench_branches", "pgbench_tellers"},
		UnlistedTables:   config.UnlistedReplicated,
	}
}

func mustSchema(t testing.TB, db *config.Database) *Schema {
	t.Helper()
	s, err := NewSchema(db)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// keys finds integer key values of table on each shard: keys[i][j] is the j-th positive value on shard i.
func keys(t testing.TB, s *Schema, table string, start int64) [][]int64 {
	t.Helper()
	m := s.byName[table][0].mapper
	out := make([][]int64, s.shards)
	for v := start; ; v++ {
		sh, err := m.ShardInt(v)
		if err != nil {
			t.Fatal(err)
		}
		if len(out[sh]) < 2 {
			out[sh] = append(out[sh], v)
		}
		done := true
		for _, k := range out {
			done = done && len(k) == 2
		}
		if done {
			return out
		}
		if v > start+100000 {
			t.Fatalf("no keys on every shard of %s", table)
		}
	}
}

// shardOfText is the shard of a key value (in text form) of table.
func shardOfText(t testing.TB, s *Schema, table, v string) uint64 {
	t.Helper()
	rules := s.byName[table]
	if len(rules) == 0 {
		t.Fatalf("table %s is not sharded", table)
	}
	sh, err := rules[0].mapper.ShardText([]byte(v))
	if err != nil {
		t.Fatalf("shard of %s %q: %v", table, v, err)
	}
	return 1 << uint(sh)
}

// expander replaces {k0} .. {k3} (a key on shard i), {K0} .. {K3} (another one), {n0} .. {n3} (a negative key)
// in test SQL.
type expander struct {
	r    *strings.Replacer
	pos  [][]int64
	negs []int64
}

func newExpander(t testing.TB, s *Schema) *expander {
	e := &expander{pos: keys(t, s, "accounts", 1)}
	m := s.byName["accounts"][0].mapper
	e.negs = make([]int64, s.shards)
	found := 0
	for v := int64(-1); found < s.shards; v-- {
		sh, _ := m.ShardInt(v)
		if e.negs[sh] == 0 {
			e.negs[sh] = v
			found++
		}
	}
	var pairs []string
	for i := 0; i < s.shards; i++ {
		pairs = append(pairs,
			fmt.Sprintf("{k%d}", i), strconv.FormatInt(e.pos[i][0], 10),
			fmt.Sprintf("{K%d}", i), strconv.FormatInt(e.pos[i][1], 10),
			fmt.Sprintf("{n%d}", i), strconv.FormatInt(e.negs[i], 10),
			fmt.Sprintf("{m%d}", i), strconv.FormatInt(-e.negs[i], 10))
	}
	e.r = strings.NewReplacer(pairs...)
	return e
}

func (e *expander) sql(s string) string { return e.r.Replace(s) }

// mask builds a shard set.
func mask(shards ...int) uint64 {
	var m uint64
	for _, s := range shards {
		m |= 1 << uint(s)
	}
	return m
}

const all4 = 0b1111

// describe prints a Decision for failure messages.
func describe(d Decision) string {
	var b strings.Builder
	switch {
	case d.Err != nil:
		fmt.Fprintf(&b, "error %s %q", d.Err.Code, d.Err.Message)
	case d.Any:
		b.WriteString("any")
	default:
		var ss []string
		for m := d.Shards; m != 0; m &= m - 1 {
			ss = append(ss, strconv.Itoa(bits.TrailingZeros64(m)))
		}
		b.WriteString("shards {" + strings.Join(ss, ",") + "}")
	}
	if d.Write {
		b.WriteString(" write")
	}
	if d.Mirror {
		b.WriteString(" mirror")
	}
	for _, p := range d.Split {
		fmt.Fprintf(&b, "\n  piece %d: %s", p.Shard, p.SQL)
	}
	return b.String()
}

// want is an expected Decision: any, a shard set, or an error code with a message fragment.
type want struct {
	any    bool
	shards uint64
	write  bool
	mirror bool
	code   string
	msg    string
}

func (w want) check(t *testing.T, what string, d Decision) {
	t.Helper()
	ok := true
	switch {
	case w.code != "":
		ok = d.Err != nil && d.Err.Code == w.code && strings.Contains(d.Err.Message, w.msg) ||
			w.code == notSupported && d.Gather != nil && strings.Contains(d.Gather.Why, w.msg)
	case d.Err != nil:
		ok = false
	case w.any:
		ok = d.Any && d.Shards == 0 && d.Write == w.write
	default:
		ok = !d.Any && d.Shards == w.shards && d.Write == w.write && d.Mirror == w.mirror
	}
	if w.code == "" && d.Err == nil && w.any && d.Mirror != w.mirror {
		ok = false
	}
	if !ok {
		t.Errorf("%s\n got %s\nwant %s", what, describe(d), w.String())
	}
}

func (w want) String() string {
	switch {
	case w.code != "":
		return fmt.Sprintf("error %s containing %q", w.code, w.msg)
	case w.any:
		return describe(Decision{Any: true, Write: w.write, Mirror: w.mirror})
	}
	return describe(Decision{Shards: w.shards, Write: w.write, Mirror: w.mirror})
}

// Shorthands for the tables of cases.
func on(shards ...int) want      { return want{shards: mask(shards...)} }
func writeOn(shards ...int) want { return want{shards: mask(shards...), write: true} }
func anyShard() want             { return want{any: true} }
func allShards() want            { return want{shards: all4} }
func writeAll() want             { return want{shards: all4, write: true} }
func mirrorAll() want            { return want{shards: all4, write: true, mirror: true} }

// refused: the error; for a cross-shard SELECT that no merge computes, the coordinator step's gather taking
// over from that error (Gather.Why).
func refused(code, msg string) want {
	return want{code: code, msg: msg}
}

// int8Bin is the binary form of a bigint parameter.
func int8Bin(v int64) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, uint64(v))
	return b
}

func sortedPieces(d Decision) []Piece {
	p := append([]Piece(nil), d.Split...)
	sort.Slice(p, func(i, j int) bool { return p[i].Shard < p[j].Shard })
	return p
}
