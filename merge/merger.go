package merge

import (
	"encoding/binary"
	"strconv"

	"github.com/pgshard/pgshard/codec"
)

// Merger combines the rows of one execution of a statement on k shards. It is not safe for concurrent use: the
// loop that owns the client feeds it. Reset readies it for the next execution and keeps its buffers.
//
// The loop calls Describe with each shard's RowDescription (before that shard's rows), Row with each DataRow,
// End when a shard's CommandComplete came, and Emit whenever it is about to write to the client; Emit appends
// the DataRows that are ready. Rows are ready:
//
//   - without ORDER BY, aggregates or DISTINCT: as they come (the pass-through path);
//   - with ORDER BY: when every shard that has not ended has a row queued (each shard's rows are sorted; the
//     smallest head goes first, the lower shard on ties);
//   - with aggregates: once every shard has ended (groups are combined, HAVING filters, ORDER BY sorts).
//
// LIMIT and OFFSET apply to the merged rows; Satisfied says the LIMIT is reached. Errors are *codec.Error with
// Postgres's SQLSTATEs; after one, the merger returns it from every call until Reset.
type Merger struct {
	spec *Spec
	k    int
	args Args
	mode mode

	// Columns of the shards' rows (from the first Describe), and of each Value.
	cols        []col
	names       []byte
	firstShard  int
	described   []bool
	nDescribed  int
	vkind       []kind
	vfmt        []int16
	identity    bool  // Values[:Visible] are the shard columns 0..Visible-1 in order
	valCol      []int // where Value i is in a row: its shard column, or i in the aggregate's final rows
	needCols    int   // shard columns the Values refer to (when no Describe came)
	distinctSet bool  // DISTINCT / DISTINCT ON keeps a set of the rows seen

	skip      int64 // OFFSET rows still to skip
	limit     int64 // -1: none
	rows      uint64
	satisfied bool
	err       error

	out     []byte   // pass-through: rows ready for Emit
	colsBuf [][]byte // a row's columns
	scratch key

	// Ordered merge.
	qs []shardQ

	// DISTINCT and DISTINCT ON.
	seen    map[string]struct{}
	canon   []byte
	runKey  []byte // DISTINCT with ORDER BY: canonical sort keys of the current run
	prevKey []byte // DISTINCT ON with ORDER BY: canonical DISTINCT ON values of the last row kept
	hasPrev bool
	runBuf  []byte // DISTINCT with ORDER BY: canonical rows of the current run while it is short
	runOffs []int

	agg aggregator
}

type mode uint8

const (
	modePass mode = iota
	modeOrder
	modeAgg
)

// shardQ is one shard's queue of rows for the ordered merge: DataRow bodies back to back in buf.
type shardQ struct {
	buf   []byte
	offs  []int // start of each row in buf; a row ends where the next starts (or at len(buf))
	head  int
	ended bool
	cols  [][]byte // the head row's columns
	keys  []key    // the head row's sort keys
}

func (q *shardQ) queued() int { return len(q.offs) - q.head }

func (q *shardQ) row(i int) []byte {
	end := len(q.buf)
	if i+1 < len(q.offs) {
		end = q.offs[i+1]
	}
	return q.buf[q.offs[i]:end]
}

// New returns a Merger for a statement run on k shards (numbered 0..k-1 here; the loop maps them).
func New(spec *Spec, k int, args Args) *Merger {
	m := &Merger{}
	m.Reset(spec, k, args)
	return m
}

// Reset makes m ready for a new execution, keeping its buffers.
func (m *Merger) Reset(spec *Spec, k int, args Args) {
	if spec == nil {
		spec = &Spec{}
	}
	if k < 0 {
		k = 0
	}
	m.spec, m.k, m.args = spec, k, args
	switch {
	case spec.Aggregate:
		m.mode = modeAgg
	case len(spec.Order) > 0:
		m.mode = modeOrder
	default:
		m.mode = modePass
	}
	m.cols = m.cols[:0]
	m.names = m.names[:0]
	m.firstShard = -1
	m.described = resize(m.described, k)
	clear(m.described)
	m.nDescribed = 0
	m.vkind = resize(m.vkind, len(spec.Values))
	m.vfmt = resize(m.vfmt, len(spec.Values))
	clear(m.vkind)
	clear(m.vfmt)
	m.identity = m.mode != modeAgg
	m.needCols = 0
	m.valCol = resize(m.valCol, len(spec.Values))
	for i, v := range spec.Values {
		m.valCol[i] = v.Col
		if m.mode == modeAgg {
			m.valCol[i] = i
		}
		if i < spec.Visible && v.Col != i {
			m.identity = false
		}
		m.needCols = max(m.needCols, v.Col+1)
		if v.Agg == AggAvg || v.Agg == AggStringAgg {
			m.needCols = max(m.needCols, v.Col2+1)
		}
	}
	for _, g := range spec.Group {
		m.needCols = max(m.needCols, g+1)
	}
	m.distinctSet = spec.Distinct || len(spec.DistinctOn) > 0
	m.skip = max(args.Offset, 0)
	m.limit = args.Limit
	if m.limit < -1 {
		m.limit = -1
	}
	m.rows = 0
	m.satisfied = m.limit == 0
	m.err = nil
	m.out = m.out[:0]
	if cap(m.qs) < k {
		qs := make([]shardQ, k)
		copy(qs, m.qs[:cap(m.qs)])
		m.qs = qs
	}
	m.qs = m.qs[:k]
	for i := range m.qs {
		q := &m.qs[i]
		q.buf, q.offs, q.head, q.ended = q.buf[:0], q.offs[:0], 0, false
		q.keys = resize(q.keys, len(spec.Order))
	}
	if len(m.seen) > 0 {
		clear(m.seen)
	}
	m.canon, m.runKey, m.prevKey, m.hasPrev = m.canon[:0], m.runKey[:0], m.prevKey[:0], false
	m.runBuf, m.runOffs = m.runBuf[:0], m.runOffs[:0]
	m.agg.reset(m)
}

func resize[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}

func errInternal(msg string) *codec.Error {
	return codec.NewError(codec.SQLStateInternalError, "pgshard: merge: "+msg)
}

func (m *Merger) fail(err error) error {
	if m.err == nil {
		m.err = err
	}
	return m.err
}

// body checks that msg is one whole message of type typ and returns its body.
func body(msg []byte, typ byte, what string) ([]byte, error) {
	if len(msg) < codec.HeaderLen || msg[0] != typ || codec.MessageLen(msg) != len(msg) {
		return nil, errMalformed(what)
	}
	return msg[codec.HeaderLen:], nil
}

// Describe takes one shard's RowDescription (the whole message). Every shard's must have the same columns
// (count, types and formats); the first one also checks that the Spec fits the columns and that the merger can
// compare and combine their types (0A000 otherwise, before any row).
func (m *Merger) Describe(shard int, msg []byte) error {
	if m.err != nil {
		return m.err
	}
	if shard < 0 || shard >= m.k {
		return m.fail(errInternal("RowDescription of shard " + strconv.Itoa(shard) + " of " + strconv.Itoa(m.k)))
	}
	b, err := body(msg, codec.RowDescription, "RowDescription")
	if err != nil {
		return m.fail(err)
	}
	rd, err := codec.ParseRowDescription(b)
	if err != nil {
		return m.fail(errMalformed("RowDescription"))
	}
	if m.firstShard < 0 {
		m.cols = m.cols[:0]
		it := rd.Iter()
		for it.Next() {
			f := it.Field()
			start := len(m.names)
			m.names = append(m.names, f.Name...)
			m.cols = append(m.cols, col{FieldDescription: f, kind: kindOf(f.TypeOID)})
			m.cols[len(m.cols)-1].Name = m.names[start:len(m.names):len(m.names)]
		}
		// Names point into m.names; appending may have moved it, so point them again.
		off := 0
		for i := range m.cols {
			n := len(m.cols[i].Name)
			m.cols[i].Name = m.names[off : off+n : off+n]
			off += n
		}
		m.firstShard = shard
		if err := m.checkSpec(); err != nil {
			return m.fail(err)
		}
	} else if err := m.sameColumns(shard, rd); err != nil {
		return m.fail(err)
	}
	if !m.described[shard] {
		m.described[shard] = true
		m.nDescribed++
	}
	return nil
}

// sameColumns checks a later shard's description against the first one's.
func (m *Merger) sameColumns(shard int, rd codec.RowDescriptionMessage) error {
	hint := "make the table's definition the same on every shard"
	if rd.NumFields() != len(m.cols) {
		return codec.NewError(codec.SQLStateDatatypeMismatch, "pgshard: shards return different columns: "+
			strconv.Itoa(len(m.cols))+" on shard "+strconv.Itoa(m.firstShard)+", "+
			strconv.Itoa(rd.NumFields())+" on shard "+strconv.Itoa(shard)).WithHint(hint)
	}
	it := rd.Iter()
	for i := 0; it.Next(); i++ {
		f, c := it.Field(), &m.cols[i]
		if f.TypeOID != c.TypeOID {
			return codec.NewError(codec.SQLStateDatatypeMismatch, "pgshard: column "+strconv.Quote(string(c.Name))+" has type "+
				typeName(c.TypeOID)+" on shard "+strconv.Itoa(m.firstShard)+" but "+typeName(f.TypeOID)+
				" on shard "+strconv.Itoa(shard)).WithHint(hint)
		}
		if f.Format != c.Format {
			return codec.NewError(codec.SQLStateDatatypeMismatch, "pgshard: column "+strconv.Quote(string(c.Name))+
				" comes in different formats from shards "+strconv.Itoa(m.firstShard)+" and "+strconv.Itoa(shard))
		}
	}
	return nil
}

func (m *Merger) colName(i int) string {
	if i >= 0 && i < len(m.cols) {
		return strconv.Quote(string(m.cols[i].Name))
	}
	return strconv.Itoa(i)
}

func unsupported(what, column string, oid uint32, hint string) *codec.Error {
	return codec.NewError(codec.SQLStateFeatureNotSupported, "pgshard: cannot "+what+" column "+column+
		" of type "+typeName(oid)+" across shards").WithHint(hint)
}

// checkSpec checks the Spec against the shard columns and sets each Value's kind and format.
func (m *Merger) checkSpec() error {
	s := m.spec
	n := len(m.cols)
	if s.Visible < 0 || s.Visible > len(s.Values) {
		return errInternal("Visible out of range")
	}
	inRange := func(c int) bool { return c >= 0 && c < n }
	for i, v := range s.Values {
		if !inRange(v.Col) || ((v.Agg == AggAvg || v.Agg == AggStringAgg) && !inRange(v.Col2)) {
			return errInternal("value " + strconv.Itoa(i) + " refers to a column the shards do not return")
		}
		if !s.Aggregate && v.Agg != AggNone {
			return errInternal("aggregate value without Aggregate")
		}
		c := &m.cols[v.Col]
		m.vkind[i], m.vfmt[i] = c.kind, c.Format
		castHint := "cast the column to a type pgshard can compare (e.g. ::text), or run the statement on one shard"
		switch v.Agg {
		case AggCount:
			if c.kind != kInt8 {
				return unsupported("count", m.colName(v.Col), c.TypeOID, "count partials must be bigint")
			}
		case AggSum:
			switch c.kind {
			case kInt8, kNumeric, kFloat4, kFloat8:
			default:
				return unsupported("sum", m.colName(v.Col), c.TypeOID, "sum a numeric column cast to numeric, or run the statement on one shard")
			}
		case AggMin, AggMax:
			if c.kind == kUnsupported {
				return unsupported("compute min/max of", m.colName(v.Col), c.TypeOID, castHint)
			}
		case AggAvg:
			switch c.kind {
			case kInt2, kInt4, kInt8, kNumeric:
				m.vkind[i] = kNumeric
			case kFloat4, kFloat8:
				m.vkind[i] = kFloat8
			default:
				return unsupported("average", m.colName(v.Col), c.TypeOID, "average a numeric column cast to numeric, or run the statement on one shard")
			}
			if !m.cols[v.Col2].kind.isInt() {
				return unsupported("average with a count in", m.colName(v.Col2), m.cols[v.Col2].TypeOID, "the count partial must be bigint")
			}
		case AggBoolAnd, AggBoolOr:
			if c.kind != kBool {
				return unsupported("combine bool_and/bool_or of", m.colName(v.Col), c.TypeOID, "the partials must be boolean")
			}
		case AggStringAgg:
			if !c.kind.isString() && c.kind != kBytea {
				return unsupported("combine string_agg of", m.colName(v.Col), c.TypeOID, "string_agg partials must be text or bytea")
			}
			if m.cols[v.Col2].kind != c.kind && !(m.cols[v.Col2].kind.isString() && c.kind.isString()) {
				return unsupported("use as string_agg delimiter", m.colName(v.Col2), m.cols[v.Col2].TypeOID, "the delimiter must have the type of the values")
			}
		case AggArrayAgg:
			m.vkind[i] = kUnsupported
		}
	}
	for _, g := range s.Group {
		if !inRange(g) {
			return errInternal("GROUP BY refers to a column the shards do not return")
		}
	}
	for _, o := range s.Order {
		if o.Value < 0 || o.Value >= len(s.Values) {
			return errInternal("ORDER BY refers to a missing value")
		}
		if m.vkind[o.Value] == kUnsupported {
			v := s.Values[o.Value]
			return unsupported("ORDER BY", m.colName(v.Col), m.valueOID(o.Value),
				"order by a column of a type pgshard can compare, cast it (e.g. ::text), or run the statement on one shard")
		}
	}
	for _, d := range s.DistinctOn {
		if d < 0 || d >= len(s.Values) {
			return errInternal("DISTINCT ON refers to a missing value")
		}
	}
	if s.Having != nil {
		if !s.Aggregate {
			return errInternal("HAVING without Aggregate")
		}
		if err := m.checkCond(s.Having, 0); err != nil {
			return err
		}
	}
	return nil
}

// valueOID is the type of Value i in the client's RowDescription.
func (m *Merger) valueOID(i int) uint32 {
	v := m.spec.Values[i]
	if v.Agg == AggAvg {
		if m.vkind[i] == kFloat8 {
			return oidFloat8
		}
		return oidNumeric
	}
	return m.cols[v.Col].TypeOID
}

// RowDescription appends the client's RowDescription: the Visible values with their shard column's name (or
// Value.Name), table, type and format, except avg's type (numeric, or double precision for float sums).
// Call it after the first Describe.
func (m *Merger) RowDescription(dst []byte) []byte {
	return appendClientRowDescription(dst, m.spec, m.cols)
}

func appendClientRowDescription(dst []byte, spec *Spec, cols []col) []byte {
	start := len(dst)
	dst = codec.StartMessage(dst, codec.RowDescription)
	vis := min(max(spec.Visible, 0), len(spec.Values))
	dst = codec.AppendInt16(dst, int16(vis))
	for _, v := range spec.Values[:vis] {
		var f codec.FieldDescription
		if v.Col >= 0 && v.Col < len(cols) {
			f = cols[v.Col].FieldDescription
		}
		if v.Name != "" {
			dst = append(dst, v.Name...)
		} else {
			dst = append(dst, f.Name...)
		}
		dst = append(dst, 0)
		if v.Agg == AggAvg {
			if k := kindOf(f.TypeOID); k == kFloat4 || k == kFloat8 {
				f.TypeOID, f.TypeSize, f.TypeModifier = oidFloat8, 8, -1
			} else {
				f.TypeOID, f.TypeSize, f.TypeModifier = oidNumeric, -1, -1
			}
		}
		dst = binary.BigEndian.AppendUint32(dst, f.TableOID)
		dst = codec.AppendInt16(dst, f.ColumnNumber)
		dst = binary.BigEndian.AppendUint32(dst, f.TypeOID)
		dst = codec.AppendInt16(dst, f.TypeSize)
		dst = codec.AppendInt32(dst, f.TypeModifier)
		dst = codec.AppendInt16(dst, f.Format)
	}
	return codec.FinishMessage(dst, start)
}

// ClientRowDescription appends the client's RowDescription made from one shard's (msg, the whole message), for
// flows where only one shard describes the statement (a statement Describe).
func ClientRowDescription(spec *Spec, dst, msg []byte) ([]byte, error) {
	b, err := body(msg, codec.RowDescription, "RowDescription")
	if err != nil {
		return dst, err
	}
	rd, err := codec.ParseRowDescription(b)
	if err != nil {
		return dst, errMalformed("RowDescription")
	}
	var stack [16]col
	cols := stack[:0]
	it := rd.Iter()
	for it.Next() {
		f := it.Field()
		cols = append(cols, col{FieldDescription: f, kind: kindOf(f.TypeOID)})
	}
	for _, v := range spec.Values {
		if v.Col < 0 || v.Col >= len(cols) || ((v.Agg == AggAvg || v.Agg == AggStringAgg) && (v.Col2 < 0 || v.Col2 >= len(cols))) {
			return dst, errInternal("a value refers to a column the shard does not return")
		}
	}
	if spec.Visible < 0 || spec.Visible > len(spec.Values) {
		return dst, errInternal("Visible out of range")
	}
	return appendClientRowDescription(dst, spec, cols), nil
}

// Row takes one DataRow (the whole message) of shard. The merger copies what it keeps.
func (m *Merger) Row(shard int, msg []byte) error {
	if m.err != nil {
		return m.err
	}
	if shard < 0 || shard >= m.k {
		return m.fail(errInternal("row of shard " + strconv.Itoa(shard) + " of " + strconv.Itoa(m.k)))
	}
	if m.satisfied && m.mode != modeAgg {
		return nil
	}
	b, err := body(msg, codec.DataRow, "DataRow")
	if err != nil {
		return m.fail(err)
	}
	cols, err := m.columns(b)
	if err != nil {
		return m.fail(err)
	}
	switch m.mode {
	case modePass:
		if m.distinctSet {
			fresh, err := m.firstSeen(cols)
			if err != nil {
				return m.fail(err)
			}
			if !fresh {
				return nil
			}
		}
		if m.skip > 0 {
			m.skip--
			return nil
		}
		if m.identity && len(cols) == m.spec.Visible {
			m.out = append(m.out, msg...)
		} else {
			m.out = m.appendRow(m.out, cols)
		}
		m.countRow()
		return nil
	case modeOrder:
		q := &m.qs[shard]
		q.offs = append(q.offs, len(q.buf))
		q.buf = append(q.buf, b...)
		if q.queued() == 1 {
			if err := m.prepareHead(q); err != nil {
				return m.fail(err)
			}
		}
		return nil
	}
	if err := m.agg.row(m, cols); err != nil {
		return m.fail(err)
	}
	return nil
}

// columns splits a DataRow body into m.colsBuf and checks the column count.
func (m *Merger) columns(b []byte) ([][]byte, error) {
	dr, err := codec.ParseDataRow(b)
	if err != nil {
		return nil, errMalformed("DataRow")
	}
	cols, err := dr.Columns(m.colsBuf)
	if err != nil {
		return nil, errMalformed("DataRow")
	}
	m.colsBuf = cols
	if m.firstShard >= 0 {
		if len(cols) != len(m.cols) {
			return nil, codec.NewError(codec.SQLStateProtocolViolation, "pgshard: a shard sent a row of "+
				strconv.Itoa(len(cols))+" columns for a RowDescription of "+strconv.Itoa(len(m.cols)))
		}
	} else {
		if m.mode != modePass {
			return nil, errInternal("rows came before the shard's RowDescription")
		}
		if len(cols) < m.needCols {
			return nil, codec.NewError(codec.SQLStateProtocolViolation, "pgshard: a shard sent a row of "+
				strconv.Itoa(len(cols))+" columns where "+strconv.Itoa(m.needCols)+" are needed")
		}
	}
	return cols, nil
}

// countRow counts an emitted row against the LIMIT.
func (m *Merger) countRow() {
	m.rows++
	if m.limit >= 0 && m.rows >= uint64(m.limit) {
		m.satisfied = true
	}
}

// appendRow appends the client's DataRow of a shard row's columns (the Visible values).
func (m *Merger) appendRow(dst []byte, cols [][]byte) []byte {
	start := len(dst)
	dst = codec.StartMessage(dst, codec.DataRow)
	dst = codec.AppendInt16(dst, int16(m.spec.Visible))
	for _, c := range m.valCol[:m.spec.Visible] {
		v := cols[c]
		if v == nil {
			dst = codec.AppendInt32(dst, -1)
			continue
		}
		dst = codec.AppendInt32(dst, int32(len(v)))
		dst = append(dst, v...)
	}
	return codec.FinishMessage(dst, start)
}

// firstSeen reports whether a row's DISTINCT (all visible values) or DISTINCT ON values were not seen before,
// remembering them (streaming paths without ORDER BY).
func (m *Merger) firstSeen(cols [][]byte) (bool, error) {
	var err error
	m.canon, err = m.appendDistinctCanon(m.canon[:0], cols)
	if err != nil {
		return false, err
	}
	if _, ok := m.seen[string(m.canon)]; ok {
		return false, nil
	}
	if m.seen == nil {
		m.seen = make(map[string]struct{})
	}
	m.seen[string(m.canon)] = struct{}{}
	return true, nil
}

// appendDistinctCanon appends the canonical form of the DISTINCT ON values, or of all visible values.
func (m *Merger) appendDistinctCanon(dst []byte, cols [][]byte) ([]byte, error) {
	var err error
	if len(m.spec.DistinctOn) > 0 {
		for _, i := range m.spec.DistinctOn {
			if dst, err = appendCanon(dst, m.vkind[i], m.vfmt[i], cols[m.valCol[i]], &m.scratch); err != nil {
				return dst, err
			}
		}
		return dst, nil
	}
	for i := 0; i < m.spec.Visible; i++ {
		if dst, err = appendCanon(dst, m.vkind[i], m.vfmt[i], cols[m.valCol[i]], &m.scratch); err != nil {
			return dst, err
		}
	}
	return dst, nil
}

// prepareHead reads the columns and sort keys of the row at the head of q.
func (m *Merger) prepareHead(q *shardQ) error {
	dr, err := codec.ParseDataRow(q.row(q.head))
	if err != nil {
		return errMalformed("DataRow")
	}
	if q.cols, err = dr.Columns(q.cols); err != nil {
		return errMalformed("DataRow")
	}
	for i, o := range m.spec.Order {
		if err := parseKey(m.vkind[o.Value], m.vfmt[o.Value], q.cols[m.valCol[o.Value]], &q.keys[i]); err != nil {
			return err
		}
	}
	return nil
}

// pop drops the head of q and prepares the next one.
func (m *Merger) pop(q *shardQ) error {
	q.head++
	switch {
	case q.head == len(q.offs):
		q.buf, q.offs, q.head = q.buf[:0], q.offs[:0], 0
		return nil
	case q.offs[q.head] >= 64<<10 && q.offs[q.head] > len(q.buf)/2:
		// Most of buf is rows already emitted: move the queued ones down.
		shift := q.offs[q.head]
		n := copy(q.buf, q.buf[shift:])
		q.buf = q.buf[:n]
		k := copy(q.offs, q.offs[q.head:])
		q.offs = q.offs[:k]
		for i := range q.offs {
			q.offs[i] -= shift
		}
		q.head = 0
	}
	return m.prepareHead(q)
}

// cmpHeads compares the head rows of two shards by the ORDER BY keys.
func (m *Merger) cmpHeads(a, b *shardQ) int {
	return m.cmpKeyRows(a.keys, b.keys)
}

func (m *Merger) cmpKeyRows(a, b []key) int {
	for i, o := range m.spec.Order {
		ka, kb := &a[i], &b[i]
		var c int
		switch {
		case ka.null && kb.null:
			continue
		case ka.null:
			c = 1
			if o.NullsFirst {
				c = -1
			}
			return c
		case kb.null:
			c = -1
			if o.NullsFirst {
				c = 1
			}
			return c
		}
		c = cmpKeys(m.vkind[o.Value], ka, kb)
		if c != 0 {
			if o.Desc {
				return -c
			}
			return c
		}
	}
	return 0
}

// End says shard has sent all its rows.
func (m *Merger) End(shard int) {
	if shard < 0 || shard >= m.k {
		return
	}
	m.qs[shard].ended = true
}

// Emit appends the DataRows ready for the client to dst.
func (m *Merger) Emit(dst []byte) ([]byte, error) {
	if m.err != nil {
		return dst, m.err
	}
	switch m.mode {
	case modePass:
		dst = append(dst, m.out...)
		m.out = m.out[:0]
		return dst, nil
	case modeOrder:
		var err error
		dst, err = m.emitOrdered(dst)
		if err != nil {
			return dst, m.fail(err)
		}
		return dst, nil
	}
	for i := range m.qs {
		if !m.qs[i].ended {
			return dst, nil
		}
	}
	dst, err := m.agg.emit(m, dst)
	if err != nil {
		return dst, m.fail(err)
	}
	return dst, nil
}

func (m *Merger) emitOrdered(dst []byte) ([]byte, error) {
	for !m.satisfied {
		var best *shardQ
		for i := range m.qs {
			q := &m.qs[i]
			if q.queued() == 0 {
				if !q.ended {
					return dst, nil // its next row may be the smallest
				}
				continue
			}
			if best == nil || m.cmpHeads(q, best) < 0 {
				best = q
			}
		}
		if best == nil {
			return dst, nil // every shard ended and was emitted
		}
		var err error
		if dst, err = m.emitHead(dst, best); err != nil {
			return dst, err
		}
		if err := m.pop(best); err != nil {
			return dst, err
		}
	}
	for i := range m.qs { // LIMIT reached: what is queued is not needed
		q := &m.qs[i]
		q.buf, q.offs, q.head = q.buf[:0], q.offs[:0], 0
	}
	return dst, nil
}

// emitHead applies DISTINCT, OFFSET and LIMIT to the head row of q and appends it when it is kept.
func (m *Merger) emitHead(dst []byte, q *shardQ) ([]byte, error) {
	if m.distinctSet {
		keep, err := m.keepSorted(q.cols, q.keys)
		if err != nil || !keep {
			return dst, err
		}
	}
	if m.skip > 0 {
		m.skip--
		return dst, nil
	}
	if m.identity && len(q.cols) == m.spec.Visible {
		b := q.row(q.head)
		dst = append(dst, codec.DataRow)
		dst = codec.AppendInt32(dst, int32(len(b)+4))
		dst = append(dst, b...)
	} else {
		dst = m.appendRow(dst, q.cols)
	}
	m.countRow()
	return dst, nil
}

// keepSorted is DISTINCT / DISTINCT ON on a sorted stream of rows (cols, with their sort keys).
//
// DISTINCT ON keeps the first row of each run of equal DISTINCT ON values. DISTINCT drops a row equal to one
// kept before; equal rows have equal sort keys (ORDER BY of a SELECT DISTINCT uses selected values), so only the
// rows of the current run of equal sort keys need remembering.
func (m *Merger) keepSorted(cols [][]byte, keys []key) (bool, error) {
	var err error
	if len(m.spec.DistinctOn) > 0 {
		m.canon, err = m.appendDistinctCanon(m.canon[:0], cols)
		if err != nil {
			return false, err
		}
		if m.hasPrev && string(m.canon) == string(m.prevKey) {
			return false, nil
		}
		m.prevKey = append(m.prevKey[:0], m.canon...)
		m.hasPrev = true
		return true, nil
	}
	// The run: canonical sort keys.
	m.canon = m.canon[:0]
	for _, o := range m.spec.Order {
		if m.canon, err = appendCanon(m.canon, m.vkind[o.Value], m.vfmt[o.Value], cols[m.valCol[o.Value]], &m.scratch); err != nil {
			return false, err
		}
	}
	if !m.hasPrev || string(m.canon) != string(m.runKey) {
		m.runKey = append(m.runKey[:0], m.canon...)
		m.hasPrev = true
		m.runBuf, m.runOffs = m.runBuf[:0], m.runOffs[:0]
		if len(m.seen) > 0 {
			clear(m.seen)
		}
	}
	m.canon, err = m.appendDistinctCanon(m.canon[:0], cols)
	if err != nil {
		return false, err
	}
	const shortRun = 32
	if len(m.runOffs) < shortRun {
		for i, off := range m.runOffs {
			end := len(m.runBuf)
			if i+1 < len(m.runOffs) {
				end = m.runOffs[i+1]
			}
			if string(m.runBuf[off:end]) == string(m.canon) {
				return false, nil
			}
		}
		m.runOffs = append(m.runOffs, len(m.runBuf))
		m.runBuf = append(m.runBuf, m.canon...)
		if len(m.runOffs) == shortRun { // a long run: move it to the set
			if m.seen == nil {
				m.seen = make(map[string]struct{})
			}
			for i, off := range m.runOffs {
				end := len(m.runBuf)
				if i+1 < len(m.runOffs) {
					end = m.runOffs[i+1]
				}
				m.seen[string(m.runBuf[off:end])] = struct{}{}
			}
		}
		return true, nil
	}
	if _, ok := m.seen[string(m.canon)]; ok {
		return false, nil
	}
	m.seen[string(m.canon)] = struct{}{}
	return true, nil
}

// Queued is the number of rows held for shard (the loop stops reading a shard whose queue is long).
func (m *Merger) Queued(shard int) int {
	if m.mode != modeOrder || shard < 0 || shard >= len(m.qs) {
		return 0
	}
	return m.qs[shard].queued()
}

// Satisfied reports that the LIMIT is reached: no more rows are needed from any shard.
func (m *Merger) Satisfied() bool { return m.satisfied }

// Rows is the number of DataRows emitted so far (for the "SELECT n" tag).
func (m *Merger) Rows() uint64 { return m.rows }
