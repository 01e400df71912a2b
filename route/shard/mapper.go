package shard

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/pgshard/pgshard/codec"
	"github.com/pgshard/pgshard/config"
)

type mapping uint8

const (
	hashMapping mapping = iota + 1
	listMapping
	rangeMapping
)

// Mapper maps key values of one sharded table to shard indexes. It is immutable and safe for concurrent
// use.
type Mapper struct {
	typ     Type
	mapping mapping
	shards  uint64
	table   string // "" for an entry covering every table with the column
	column  string

	// list mapping: value -> shard
	ints  map[int64]int
	texts map[string]int
	uuids map[[16]byte]int

	// range mapping, ordered by lower bound
	intRanges  []intRange
	byteRanges []byteRange // text and uuid
}

type intRange struct {
	from, to       int64
	hasFrom, hasTo bool
	shard          int
}

type byteRange struct {
	from, to []byte // nil = unbounded (a text key has no value below "")
	hasTo    bool
	shard    int
}

// NewMapper builds the mapper of a config.yaml sharded_tables entry for a database of shards shards. It
// checks what config validation checks (key type, mapping, values and ranges that read as the key type,
// shard indexes in range, no value listed twice, no overlapping ranges), so it also serves entries built
// in code.
func NewMapper(t *config.ShardedTable, shards int) (*Mapper, error) {
	typ, err := ParseType(t.Type)
	if err != nil {
		return nil, err
	}
	if shards < 1 {
		return nil, fmt.Errorf("a database needs at least one shard, got %d", shards)
	}
	m := &Mapper{typ: typ, shards: uint64(shards), table: t.Table, column: t.Column}
	switch t.Mapping {
	case config.MappingHash:
		m.mapping = hashMapping
		if len(t.Values) > 0 || len(t.Ranges) > 0 {
			return nil, fmt.Errorf("%s: mapping hash takes neither values nor ranges", m.what())
		}
	case config.MappingList:
		m.mapping = listMapping
		err = m.buildList(t.Values)
	case config.MappingRange:
		m.mapping = rangeMapping
		err = m.buildRanges(t.Ranges)
	default:
		err = fmt.Errorf("%s: mapping must be %q, %q or %q, got %q", m.what(), config.MappingHash, config.MappingList, config.MappingRange, t.Mapping)
	}
	if err != nil {
		return nil, err
	}
	return m, nil
}

// what names the table (or column) of the mapper in messages.
func (m *Mapper) what() string {
	if m.table == "" {
		return fmt.Sprintf("the tables sharded by %q", m.column)
	}
	return fmt.Sprintf("table %q", m.table)
}

func (m *Mapper) checkShard(s int) error {
	if s < 0 || uint64(s) >= m.shards {
		return fmt.Errorf("%s: shard %d does not exist (there are %d shards: 0 to %d)", m.what(), s, m.shards, m.shards-1)
	}
	return nil
}

// parseBound reads a value of a list or range in the config.
func (m *Mapper) parseBound(s string) (int64, []byte, error) {
	switch {
	case m.typ.IsInt():
		n, perr := parseInt([]byte(s), m.typ.bitSize())
		if perr != parseOK {
			return 0, nil, fmt.Errorf("%s: value %q is not a valid %s", m.what(), s, m.typ)
		}
		return n, nil, nil
	case m.typ == UUID:
		u, ok := parseUUID([]byte(s))
		if !ok {
			return 0, nil, fmt.Errorf("%s: value %q is not a valid uuid", m.what(), s)
		}
		return 0, u[:], nil
	}
	return 0, []byte(s), nil
}

func (m *Mapper) buildList(values map[int][]string) error {
	if len(values) == 0 {
		return fmt.Errorf("%s: mapping list needs values", m.what())
	}
	shards := make([]int, 0, len(values))
	for s := range values {
		shards = append(shards, s)
	}
	sort.Ints(shards) // report problems in a stable order
	switch {
	case m.typ.IsInt():
		m.ints = map[int64]int{}
	case m.typ == UUID:
		m.uuids = map[[16]byte]int{}
	default:
		m.texts = map[string]int{}
	}
	for _, s := range shards {
		if err := m.checkShard(s); err != nil {
			return err
		}
		for _, v := range values[s] {
			n, b, err := m.parseBound(v)
			if err != nil {
				return err
			}
			var prev int
			var dup bool
			switch {
			case m.typ.IsInt():
				prev, dup = m.ints[n]
				m.ints[n] = s
			case m.typ == UUID:
				u := [16]byte(b)
				prev, dup = m.uuids[u]
				m.uuids[u] = s
			default:
				prev, dup = m.texts[string(b)]
				m.texts[string(b)] = s
			}
			if dup {
				return fmt.Errorf("%s: value %q is listed twice (shards %d and %d)", m.what(), v, prev, s)
			}
		}
	}
	return nil
}

func (m *Mapper) buildRanges(ranges []config.Range) error {
	if len(ranges) == 0 {
		return fmt.Errorf("%s: mapping range needs ranges", m.what())
	}
	for i, r := range ranges {
		if err := m.checkShard(r.Shard); err != nil {
			return err
		}
		desc := fmt.Sprintf("%s: range %d [%q, %q)", m.what(), i, r.From, r.To)
		var from, to int64
		var fromB, toB []byte
		var err error
		if r.From != "" {
			if from, fromB, err = m.parseBound(r.From); err != nil {
				return err
			}
		}
		if r.To != "" {
			if to, toB, err = m.parseBound(r.To); err != nil {
				return err
			}
		}
		if m.typ.IsInt() {
			ir := intRange{from: from, to: to, hasFrom: r.From != "", hasTo: r.To != "", shard: r.Shard}
			if ir.hasFrom && ir.hasTo && from >= to {
				return fmt.Errorf("%s is empty: from must be below to (from is inclusive, to exclusive)", desc)
			}
			m.intRanges = append(m.intRanges, ir)
			continue
		}
		if fromB == nil {
			fromB = []byte{} // unbounded below: nothing sorts before the empty string
		}
		br := byteRange{from: fromB, to: toB, hasTo: r.To != "", shard: r.Shard}
		if br.hasTo && bytes.Compare(fromB, toB) >= 0 {
			return fmt.Errorf("%s is empty: from must be below to (from is inclusive, to exclusive)", desc)
		}
		m.byteRanges = append(m.byteRanges, br)
	}
	// Sort by lower bound; then ranges overlap exactly when one ends past the start of the next.
	if m.typ.IsInt() {
		rs := m.intRanges
		sort.SliceStable(rs, func(i, j int) bool { return lessFrom(rs[i], rs[j]) })
		for i := 1; i < len(rs); i++ {
			if !rs[i-1].hasTo || !rs[i].hasFrom || rs[i-1].to > rs[i].from {
				return fmt.Errorf("%s: ranges overlap: %s and %s", m.what(), rs[i-1], rs[i])
			}
		}
		return nil
	}
	rs := m.byteRanges
	sort.SliceStable(rs, func(i, j int) bool { return bytes.Compare(rs[i].from, rs[j].from) < 0 })
	for i := 1; i < len(rs); i++ {
		if !rs[i-1].hasTo || bytes.Compare(rs[i-1].to, rs[i].from) > 0 {
			return fmt.Errorf("%s: ranges overlap: %s and %s", m.what(), m.byteRangeString(rs[i-1]), m.byteRangeString(rs[i]))
		}
	}
	return nil
}

func lessFrom(a, b intRange) bool {
	if !a.hasFrom || !b.hasFrom {
		return !a.hasFrom && b.hasFrom
	}
	return a.from < b.from
}

func (r intRange) String() string {
	f, t := "", ""
	if r.hasFrom {
		f = strconv.FormatInt(r.from, 10)
	}
	if r.hasTo {
		t = strconv.FormatInt(r.to, 10)
	}
	return fmt.Sprintf("[%q, %q) on shard %d", f, t, r.shard)
}

func (m *Mapper) byteRangeString(r byteRange) string {
	f, t := m.bytesString(r.from), ""
	if len(r.from) == 0 {
		f = ""
	}
	if r.hasTo {
		t = m.bytesString(r.to)
	}
	return fmt.Sprintf("[%q, %q) on shard %d", f, t, r.shard)
}

// bytesString is a text or uuid key in text form.
func (m *Mapper) bytesString(b []byte) string {
	if m.typ == UUID && len(b) == 16 {
		return formatUUID([16]byte(b))
	}
	return string(b)
}

// Type is the type of the key column.
func (m *Mapper) Type() Type { return m.typ }

// Mapping is the mapping's name as config.yaml spells it: config.MappingHash, MappingList or MappingRange.
func (m *Mapper) Mapping() string {
	switch m.mapping {
	case listMapping:
		return config.MappingList
	case rangeMapping:
		return config.MappingRange
	}
	return config.MappingHash
}

// Shards is the number of shards of the database.
func (m *Mapper) Shards() int { return int(m.shards) }

// ShardText maps a key value in Postgres's text form: "42", " -7 ", "abc",
// "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11". Integers and uuids read as Postgres's input functions read them;
// a text key is its bytes (the client must send UTF-8, the server encoding).
func (m *Mapper) ShardText(v []byte) (int, *codec.Error) {
	switch m.typ {
	case Int2, Int4, Int8:
		n, perr := parseInt(v, m.typ.bitSize())
		switch perr {
		case badSyntax:
			return -1, syntaxError(m.typ, v)
		case outOfRange:
			return -1, rangeError(m.typ, v)
		}
		return m.shardInt(n)
	case UUID:
		u, ok := parseUUID(v)
		if !ok {
			return -1, syntaxError(m.typ, v)
		}
		return m.shardUUID(&u)
	}
	return m.shardBytes(v)
}

// ShardBinary maps a key value in Postgres's binary form: a big-endian integer of 2, 4 or 8 bytes (any
// width for any integer type, as long as the value fits the type), a text key's bytes, a uuid's 16 bytes.
func (m *Mapper) ShardBinary(v []byte) (int, *codec.Error) {
	switch m.typ {
	case Int2, Int4, Int8:
		var n int64
		switch len(v) {
		case 2:
			n = int64(int16(binary.BigEndian.Uint16(v)))
		case 4:
			n = int64(int32(binary.BigEndian.Uint32(v)))
		case 8:
			n = int64(binary.BigEndian.Uint64(v))
		default:
			return -1, binaryError(m.typ, len(v), "2, 4 or 8")
		}
		return m.ShardInt(n)
	case UUID:
		if len(v) != 16 {
			return -1, binaryError(m.typ, len(v), "16")
		}
		u := [16]byte(v)
		return m.shardUUID(&u)
	}
	return m.shardBytes(v)
}

// ShardInt maps an integer key value. It refuses a value that does not fit the key's type (22003), and any
// integer for a text or uuid key (22023).
func (m *Mapper) ShardInt(v int64) (int, *codec.Error) {
	if !m.typ.IsInt() {
		return -1, codec.NewError(codec.SQLStateInvalidParameterValue,
			fmt.Sprintf("%s: the shard key %s is a %s, not an integer", m.what(), m.column, m.typ))
	}
	if !m.typ.fits(v) {
		return -1, intRangeError(m.typ, v)
	}
	return m.shardInt(v)
}

// HashText is the partition hash of a key value in text form, whatever the mapping (the hash mapping
// sends it to shard HashText % Shards).
func (m *Mapper) HashText(v []byte) (uint64, *codec.Error) {
	switch m.typ {
	case Int2, Int4, Int8:
		n, perr := parseInt(v, m.typ.bitSize())
		switch perr {
		case badSyntax:
			return 0, syntaxError(m.typ, v)
		case outOfRange:
			return 0, rangeError(m.typ, v)
		}
		return HashInt(m.typ, n), nil
	case UUID:
		u, ok := parseUUID(v)
		if !ok {
			return 0, syntaxError(m.typ, v)
		}
		return HashUUID(u), nil
	}
	return HashBytes(v), nil
}

func (m *Mapper) shardInt(v int64) (int, *codec.Error) {
	switch m.mapping {
	case hashMapping:
		return int(HashInt(m.typ, v) % m.shards), nil
	case listMapping:
		if s, ok := m.ints[v]; ok {
			return s, nil
		}
	case rangeMapping:
		rs := m.intRanges
		// The last range starting at or below v is the only one that can hold it.
		i := sort.Search(len(rs), func(i int) bool { return rs[i].hasFrom && rs[i].from > v }) - 1
		if i >= 0 && (!rs[i].hasTo || v < rs[i].to) {
			return rs[i].shard, nil
		}
	}
	return -1, m.unmapped(strconv.FormatInt(v, 10))
}

func (m *Mapper) shardBytes(v []byte) (int, *codec.Error) {
	switch m.mapping {
	case hashMapping:
		return int(HashBytes(v) % m.shards), nil
	case listMapping:
		if s, ok := m.texts[string(v)]; ok {
			return s, nil
		}
	case rangeMapping:
		if s, ok := m.searchBytes(v); ok {
			return s, nil
		}
	}
	return -1, m.unmapped(quoteLiteral(shown(v)))
}

func (m *Mapper) shardUUID(u *[16]byte) (int, *codec.Error) {
	switch m.mapping {
	case hashMapping:
		return int(HashUUID(*u) % m.shards), nil
	case listMapping:
		if s, ok := m.uuids[*u]; ok {
			return s, nil
		}
	case rangeMapping:
		if s, ok := m.searchBytes(u[:]); ok {
			return s, nil
		}
	}
	return -1, m.unmapped(quoteLiteral(formatUUID(*u)))
}

func (m *Mapper) searchBytes(v []byte) (int, bool) {
	rs := m.byteRanges
	lo, hi := 0, len(rs) // find the first range starting above v
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if bytes.Compare(rs[mid].from, v) > 0 {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	i := lo - 1
	if i >= 0 && (!rs[i].hasTo || bytes.Compare(v, rs[i].to) < 0) {
		return rs[i].shard, true
	}
	return -1, false
}

// unmapped is the 22023 for a key value (in SQL form) that no list value or range covers.
func (m *Mapper) unmapped(value string) *codec.Error {
	where, fix := "values", "add it to"
	if m.mapping == rangeMapping {
		where, fix = "ranges", "add a range that covers it to"
	}
	return codec.NewError(codec.SQLStateInvalidParameterValue,
		fmt.Sprintf("no shard of %s holds %s = %s: %s sharded_tables %s", m.what(), m.column, value, fix, where)).
		WithHint("the " + m.Mapping() + " mapping of " + m.what() + " in config.yaml decides which shard holds each " + m.column)
}

func quoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// Table is the table the mapper shards ("" for an entry covering every table with its column).
func (m *Mapper) Table() string { return m.table }

// Column is the key column.
func (m *Mapper) Column() string { return m.column }
