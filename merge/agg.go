package merge

import (
	"encoding/binary"
	"math"
	"slices"
	"strconv"

	"github.com/pgshard/pgshard/codec"
)

// aggregator combines partial aggregates per group. Groups live in a map from the canonical form of their
// GROUP BY values to their index; each group has one aggVal per Value.
type aggregator struct {
	groups  map[string]int32
	ngroups int
	nv      int
	vals    []aggVal
	done    bool
	key     []byte
	tmp     decimal
	res     decimal
	buf     []byte

	// Emission.
	finBuf  []byte
	finOffs []int // per group and value: start in finBuf, -1 for NULL (end is the next start)
	fin     [][]byte
	sel     []int32
	keys    []key
}

// aggVal is the running state of one Value of one group.
type aggVal struct {
	set bool // a non-NULL partial came (group keys: the value is not NULL)
	i   int64
	f   float64
	dec *decimal
	raw []byte
	arr *textArray
}

func (v *aggVal) reset() {
	v.set, v.i, v.f, v.raw = false, 0, 0, v.raw[:0]
	if v.arr != nil {
		v.arr.reset()
	}
}

func (a *aggregator) reset(m *Merger) {
	if len(a.groups) > 0 {
		clear(a.groups)
	}
	a.ngroups, a.nv, a.done = 0, len(m.spec.Values), false
	a.vals = a.vals[:0]
}

var (
	errBigintRange = codec.NewError(codec.SQLStateNumericValueOutOfRange, "bigint out of range")
	errFloatRange  = codec.NewError(codec.SQLStateNumericValueOutOfRange, "value out of range: overflow")
)

// newGroup adds a group and returns its index.
func (a *aggregator) newGroup() int32 {
	n := len(a.vals)
	if cap(a.vals) >= n+a.nv {
		a.vals = a.vals[:n+a.nv]
		for i := n; i < n+a.nv; i++ {
			a.vals[i].reset()
		}
	} else {
		for i := 0; i < a.nv; i++ {
			a.vals = append(a.vals, aggVal{})
		}
	}
	a.ngroups++
	return int32(a.ngroups - 1)
}

// row combines one shard row of partial aggregates into its group.
func (a *aggregator) row(m *Merger, cols [][]byte) error {
	var err error
	a.key = a.key[:0]
	for _, g := range m.spec.Group {
		if a.key, err = appendCanon(a.key, m.cols[g].kind, m.cols[g].Format, cols[g], &m.scratch); err != nil {
			return err
		}
	}
	gi, ok := a.groups[string(a.key)]
	if !ok {
		gi = a.newGroup()
		if a.groups == nil {
			a.groups = make(map[string]int32)
		}
		a.groups[string(a.key)] = gi
	}
	vals := a.vals[int(gi)*a.nv : (int(gi)+1)*a.nv]
	for i := range m.spec.Values {
		if err := a.combine(m, i, &vals[i], cols, !ok); err != nil {
			return err
		}
	}
	return nil
}

func (a *aggregator) combine(m *Merger, i int, st *aggVal, cols [][]byte, first bool) error {
	v := &m.spec.Values[i]
	c := &m.cols[v.Col]
	x := cols[v.Col]
	k := &m.scratch
	switch v.Agg {
	case AggNone:
		if first && x != nil {
			st.raw, st.set = append(st.raw[:0], x...), true
		}
		return nil
	case AggCount:
		if x == nil {
			return nil
		}
		if err := parseKey(kInt8, c.Format, x, k); err != nil {
			return err
		}
		s, ok := addInt64(st.i, k.i)
		if !ok {
			return errBigintRange
		}
		st.i, st.set = s, true
		return nil
	case AggSum:
		if x == nil {
			return nil
		}
		return a.addSum(c, st, x)
	case AggMin, AggMax:
		if x == nil {
			return nil
		}
		if !st.set {
			st.raw, st.set = append(st.raw[:0], x...), true
			return nil
		}
		var cur key
		if err := parseKey(c.kind, c.Format, x, k); err != nil {
			return err
		}
		if err := parseKey(c.kind, c.Format, st.raw, &cur); err != nil {
			return err
		}
		r := cmpKeys(c.kind, k, &cur)
		if (v.Agg == AggMin && r < 0) || (v.Agg == AggMax && r > 0) {
			st.raw = append(st.raw[:0], x...)
		}
		return nil
	case AggAvg:
		cc := &m.cols[v.Col2]
		if n := cols[v.Col2]; n != nil {
			if err := parseKey(cc.kind, cc.Format, n, k); err != nil {
				return err
			}
			s, ok := addInt64(st.i, k.i)
			if !ok {
				return errBigintRange
			}
			st.i = s
		}
		if x == nil {
			return nil
		}
		switch c.kind {
		case kFloat4, kFloat8:
			if err := parseKey(c.kind, c.Format, x, k); err != nil {
				return err
			}
			st.f += k.f
			st.set = true
			return nil
		}
		if c.kind == kNumeric {
			if !a.tmp.parse(c.Format, x) {
				return errValue(kNumeric, c.Format)
			}
		} else {
			if err := parseKey(c.kind, c.Format, x, k); err != nil {
				return err
			}
			a.tmp.setInt64(k.i)
		}
		st.addDecimal(&a.tmp)
		return nil
	case AggBoolAnd, AggBoolOr:
		if x == nil {
			return nil
		}
		if err := parseKey(kBool, c.Format, x, k); err != nil {
			return err
		}
		switch {
		case !st.set:
			st.i = k.i
		case v.Agg == AggBoolAnd:
			st.i &= k.i
		default:
			st.i |= k.i
		}
		st.set = true
		return nil
	case AggStringAgg:
		if x == nil {
			return nil
		}
		hex := c.kind == kBytea && c.Format == codec.FormatText
		if hex && !isHexBytea(x) {
			return byteaEscapeErr(m.colName(v.Col))
		}
		if !st.set {
			st.raw, st.set = append(st.raw[:0], x...), true
			return nil
		}
		d := cols[v.Col2]
		if hex {
			if d != nil && !isHexBytea(d) {
				return byteaEscapeErr(m.colName(v.Col2))
			}
			if d != nil {
				d = d[2:]
			}
			x = x[2:]
		}
		st.raw = append(append(st.raw, d...), x...)
		return nil
	case AggArrayAgg:
		if x == nil {
			return nil
		}
		if c.Format == codec.FormatText {
			if st.arr == nil {
				st.arr = &textArray{}
			}
			if !st.set {
				st.arr.reset()
			}
			st.set = true
			return st.arr.add(x)
		}
		if !st.set {
			var h binArray
			if !parseArrayBinary(x, &h) {
				return errArray(codec.FormatBinary)
			}
			st.raw, st.set = append(st.raw[:0], x...), true
			return nil
		}
		var err error
		a.buf, err = mergeArrayBinary(a.buf[:0], st.raw, x)
		if err != nil {
			return err
		}
		st.raw = append(st.raw[:0], a.buf...)
		return nil
	}
	return errInternal("unknown aggregate kind " + strconv.Itoa(int(v.Agg)))
}

func isHexBytea(v []byte) bool { return len(v) >= 2 && v[0] == '\\' && v[1] == 'x' }

func byteaEscapeErr(column string) error {
	return codec.NewError(codec.SQLStateFeatureNotSupported, "pgshard: cannot combine string_agg of bytea column "+
		column+" in the escape format across shards").WithHint("set bytea_output to hex (the default)")
}

func addInt64(a, b int64) (int64, bool) {
	s := a + b
	if (s > a) != (b > 0) {
		return 0, false
	}
	return s, true
}

func (st *aggVal) addDecimal(d *decimal) {
	if st.dec == nil {
		st.dec = &decimal{}
	}
	if !st.set {
		st.dec.special, st.dec.scale = d.special, d.scale
		st.dec.coef.Set(&d.coef)
		st.set = true
		return
	}
	st.dec.add(d)
}

// addSum adds a sum partial in its type: bigint (overflow is an error, as int8pl's), numeric (exact), real and
// double precision (float additions; overflow to infinity is an error, as float4pl/float8pl's).
func (a *aggregator) addSum(c *col, st *aggVal, x []byte) error {
	k := &key{}
	switch c.kind {
	case kInt8:
		if err := parseKey(kInt8, c.Format, x, k); err != nil {
			return err
		}
		if !st.set {
			st.i, st.set = k.i, true
			return nil
		}
		s, ok := addInt64(st.i, k.i)
		if !ok {
			return errBigintRange
		}
		st.i = s
	case kNumeric:
		if !a.tmp.parse(c.Format, x) {
			return errValue(kNumeric, c.Format)
		}
		st.addDecimal(&a.tmp)
	case kFloat4:
		if err := parseKey(kFloat4, c.Format, x, k); err != nil {
			return err
		}
		if !st.set {
			st.f, st.set = k.f, true
			return nil
		}
		x, y := float32(st.f), float32(k.f)
		s := x + y
		if math.IsInf(float64(s), 0) && !math.IsInf(float64(x), 0) && !math.IsInf(float64(y), 0) {
			return errFloatRange
		}
		st.f = float64(s)
	case kFloat8:
		if err := parseKey(kFloat8, c.Format, x, k); err != nil {
			return err
		}
		if !st.set {
			st.f, st.set = k.f, true
			return nil
		}
		s := st.f + k.f
		if math.IsInf(s, 0) && !math.IsInf(st.f, 0) && !math.IsInf(k.f, 0) {
			return errFloatRange
		}
		st.f = s
	}
	return nil
}

// emit finishes the groups (once every shard ended): final values, HAVING, ORDER BY, DISTINCT, OFFSET/LIMIT.
func (a *aggregator) emit(m *Merger, dst []byte) ([]byte, error) {
	if a.done {
		return dst, nil
	}
	a.done = true
	if a.ngroups == 0 && len(m.spec.Group) == 0 {
		a.newGroup() // an aggregate without GROUP BY yields one row even over no rows
	}
	nv := a.nv
	a.finBuf = a.finBuf[:0]
	a.finOffs = resize(a.finOffs, a.ngroups*nv)
	var err error
	for g := 0; g < a.ngroups; g++ {
		for i := 0; i < nv; i++ {
			start := len(a.finBuf)
			var null bool
			a.finBuf, null, err = a.final(m, i, &a.vals[g*nv+i], a.finBuf)
			if err != nil {
				return dst, err
			}
			if null {
				a.finBuf = a.finBuf[:start]
				start = -1
			}
			a.finOffs[g*nv+i] = start
		}
	}
	a.fin = resize(a.fin, a.ngroups*nv)
	end := len(a.finBuf)
	for j := len(a.finOffs) - 1; j >= 0; j-- {
		if s := a.finOffs[j]; s >= 0 {
			a.fin[j] = a.finBuf[s:end:end]
			end = s
		} else {
			a.fin[j] = nil
		}
	}
	// HAVING.
	a.sel = a.sel[:0]
	for g := 0; g < a.ngroups; g++ {
		if m.spec.Having != nil {
			r, err := m.evalCond(m.spec.Having, a.fin[g*nv:(g+1)*nv])
			if err != nil {
				return dst, err
			}
			if r != triTrue {
				continue
			}
		}
		a.sel = append(a.sel, int32(g))
	}
	// ORDER BY.
	no := len(m.spec.Order)
	if no > 0 {
		a.keys = resize(a.keys, a.ngroups*no)
		for _, g := range a.sel {
			row := a.fin[int(g)*nv : (int(g)+1)*nv]
			for j, o := range m.spec.Order {
				if err := parseKey(m.vkind[o.Value], m.vfmt[o.Value], row[o.Value], &a.keys[int(g)*no+j]); err != nil {
					return dst, err
				}
			}
		}
		slices.SortStableFunc(a.sel, func(x, y int32) int {
			return m.cmpKeyRows(a.keys[int(x)*no:(int(x)+1)*no], a.keys[int(y)*no:(int(y)+1)*no])
		})
	}
	for _, g := range a.sel {
		if m.satisfied {
			break
		}
		row := a.fin[int(g)*nv : (int(g)+1)*nv]
		if m.distinctSet {
			var keep bool
			if no > 0 {
				keep, err = m.keepSorted(row, a.keys[int(g)*no:(int(g)+1)*no])
			} else {
				keep, err = m.firstSeen(row)
			}
			if err != nil {
				return dst, err
			}
			if !keep {
				continue
			}
		}
		if m.skip > 0 {
			m.skip--
			continue
		}
		dst = m.appendRow(dst, row)
		m.countRow()
	}
	return dst, nil
}

// final appends the final value of Value i of a group in the column's format; null reports NULL.
func (a *aggregator) final(m *Merger, i int, st *aggVal, dst []byte) ([]byte, bool, error) {
	v := &m.spec.Values[i]
	format := m.vfmt[i]
	switch v.Agg {
	case AggNone, AggMin, AggMax, AggStringAgg:
		return append(dst, st.raw...), !st.set, nil
	case AggCount:
		return appendInt8Value(dst, format, st.i), false, nil
	case AggSum:
		if !st.set {
			return dst, true, nil
		}
		switch m.cols[v.Col].kind {
		case kInt8:
			return appendInt8Value(dst, format, st.i), false, nil
		case kNumeric:
			return appendNumericValue(dst, format, st.dec), false, nil
		case kFloat4:
			return appendFloat4Value(dst, format, float32(st.f)), false, nil
		}
		return appendFloat8Value(dst, format, st.f), false, nil
	case AggAvg:
		if !st.set || st.i == 0 {
			return dst, true, nil
		}
		if m.vkind[i] == kFloat8 {
			return appendFloat8Value(dst, format, st.f/float64(st.i)), false, nil
		}
		a.tmp.setInt64(st.i)
		a.res.div(st.dec, &a.tmp)
		return appendNumericValue(dst, format, &a.res), false, nil
	case AggBoolAnd, AggBoolOr:
		if !st.set {
			return dst, true, nil
		}
		return appendBoolValue(dst, format, st.i != 0), false, nil
	case AggArrayAgg:
		if !st.set {
			return dst, true, nil
		}
		if format == codec.FormatText {
			return st.arr.appendTo(dst), false, nil
		}
		return append(dst, st.raw...), false, nil
	}
	return dst, true, errInternal("unknown aggregate kind " + strconv.Itoa(int(v.Agg)))
}

func appendInt8Value(dst []byte, format int16, v int64) []byte {
	if format == codec.FormatBinary {
		return binary.BigEndian.AppendUint64(dst, uint64(v))
	}
	return strconv.AppendInt(dst, v, 10)
}

func appendFloat8Value(dst []byte, format int16, f float64) []byte {
	if format == codec.FormatBinary {
		return binary.BigEndian.AppendUint64(dst, math.Float64bits(f))
	}
	return appendFloat8(dst, f)
}

func appendFloat4Value(dst []byte, format int16, f float32) []byte {
	if format == codec.FormatBinary {
		return binary.BigEndian.AppendUint32(dst, math.Float32bits(f))
	}
	return appendFloat4(dst, f)
}

func appendBoolValue(dst []byte, format int16, b bool) []byte {
	switch {
	case format == codec.FormatBinary && b:
		return append(dst, 1)
	case format == codec.FormatBinary:
		return append(dst, 0)
	case b:
		return append(dst, 't')
	}
	return append(dst, 'f')
}

func appendNumericValue(dst []byte, format int16, d *decimal) []byte {
	if format == codec.FormatBinary {
		return d.appendBinary(dst)
	}
	return d.appendText(dst)
}
