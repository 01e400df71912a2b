package merge

import (
	"strconv"

	"github.com/pgshard/pgshard/codec"
)

// HAVING: a Cond evaluated on a group's final values with SQL's three-valued logic.

const (
	triFalse int8 = iota
	triTrue
	triNull
)

// maxCondDepth bounds the nesting of a Cond (the evaluator recurses).
const maxCondDepth = 1000

// comparable reports whether values of kinds a and b can be compared: the same known kind, two numbers or two
// strings.
func comparable(a, b kind) bool {
	switch {
	case a == kUnsupported || b == kUnsupported:
		return false
	case a == b:
		return true
	case a.isNumber() && b.isNumber():
		return true
	}
	return a.isString() && b.isString()
}

func (m *Merger) checkCond(c *Cond, depth int) error {
	if c == nil || depth > maxCondDepth {
		return errInternal("HAVING condition missing or too deep")
	}
	value := func(o Operand) error {
		if o.Const >= 0 {
			if o.Const >= len(m.args.Consts) {
				return errInternal("HAVING refers to constant " + strconv.Itoa(o.Const) + " of " + strconv.Itoa(len(m.args.Consts)))
			}
			return nil
		}
		if o.Value < 0 || o.Value >= len(m.spec.Values) {
			return errInternal("HAVING refers to a missing value")
		}
		return nil
	}
	switch c.Op {
	case CondAnd, CondOr, CondNot:
		if len(c.Args) == 0 || (c.Op == CondNot && len(c.Args) != 1) {
			return errInternal("HAVING condition with a wrong number of arguments")
		}
		for _, a := range c.Args {
			if err := m.checkCond(a, depth+1); err != nil {
				return err
			}
		}
		return nil
	case CondIsNull, CondIsNotNull:
		return value(c.L)
	case CondCmp:
		if err := value(c.L); err != nil {
			return err
		}
		if err := value(c.R); err != nil {
			return err
		}
		if c.Cmp < CmpEq || c.Cmp > CmpGe {
			return errInternal("HAVING with an unknown comparison")
		}
		l, r := c.L, c.R
		if l.Const >= 0 && r.Const >= 0 {
			return nil // two constants compare as text
		}
		if l.Const >= 0 {
			l, r = r, l
		}
		lk := m.vkind[l.Value]
		rk := lk
		if r.Const < 0 {
			rk = m.vkind[r.Value]
		}
		if !comparable(lk, rk) {
			oid := m.valueOID(l.Value)
			if lk != kUnsupported && r.Const < 0 {
				oid = m.valueOID(r.Value)
			}
			return codec.NewError(codec.SQLStateFeatureNotSupported, "pgshard: cannot evaluate HAVING on a value of type "+
				typeName(oid)+" across shards").WithHint("compare values of one type pgshard knows (numbers, text, dates, times, uuid, bool), or run the statement on one shard")
		}
		return nil
	}
	return errInternal("HAVING condition of unknown kind")
}

// evalCond evaluates c on a group's final values (indexed by Value).
func (m *Merger) evalCond(c *Cond, row [][]byte) (int8, error) {
	switch c.Op {
	case CondAnd, CondOr:
		result := triTrue
		if c.Op == CondOr {
			result = triFalse
		}
		for _, a := range c.Args {
			r, err := m.evalCond(a, row)
			if err != nil {
				return triNull, err
			}
			switch {
			case c.Op == CondAnd && r == triFalse:
				return triFalse, nil
			case c.Op == CondOr && r == triTrue:
				return triTrue, nil
			case r == triNull:
				result = triNull
			}
		}
		return result, nil
	case CondNot:
		r, err := m.evalCond(c.Args[0], row)
		switch r {
		case triTrue:
			r = triFalse
		case triFalse:
			r = triTrue
		}
		return r, err
	case CondIsNull, CondIsNotNull:
		null := m.operand(c.L, row) == nil
		if null == (c.Op == CondIsNull) {
			return triTrue, nil
		}
		return triFalse, nil
	}
	a, b := m.operand(c.L, row), m.operand(c.R, row)
	if a == nil || b == nil {
		return triNull, nil
	}
	r, err := m.cmpOperands(c.L, a, c.R, b)
	if err != nil {
		return triNull, err
	}
	var ok bool
	switch c.Cmp {
	case CmpEq:
		ok = r == 0
	case CmpNe:
		ok = r != 0
	case CmpLt:
		ok = r < 0
	case CmpLe:
		ok = r <= 0
	case CmpGt:
		ok = r > 0
	case CmpGe:
		ok = r >= 0
	}
	if ok {
		return triTrue, nil
	}
	return triFalse, nil
}

func (m *Merger) operand(o Operand, row [][]byte) []byte {
	if o.Const >= 0 {
		return m.args.Consts[o.Const]
	}
	return row[o.Value]
}

// operandType is the kind and format an operand is read as: a Value's own; a constant's is text, of the other
// side's kind (numbers: numeric, or double precision against a float, so that 1.5 compares with a bigint).
func (m *Merger) operandType(o, other Operand) (kind, int16) {
	if o.Const < 0 {
		return m.vkind[o.Value], m.vfmt[o.Value]
	}
	if other.Const < 0 {
		k := m.vkind[other.Value]
		if o.Const < len(m.args.ConstFormats) && m.args.ConstFormats[o.Const] == codec.FormatBinary {
			return k, codec.FormatBinary
		}
		switch {
		case k == kFloat4 || k == kFloat8:
			return kFloat8, codec.FormatText
		case k.isNumber():
			return kNumeric, codec.FormatText
		}
		return k, codec.FormatText
	}
	return kText, codec.FormatText
}

func (m *Merger) cmpOperands(lo Operand, a []byte, ro Operand, b []byte) (int, error) {
	ak, af := m.operandType(lo, ro)
	bk, bf := m.operandType(ro, lo)
	if ak == bk {
		var x, y key
		if err := parseHavingKey(ak, af, a, &x); err != nil {
			return 0, err
		}
		if err := parseHavingKey(bk, bf, b, &y); err != nil {
			return 0, err
		}
		return cmpKeys(ak, &x, &y), nil
	}
	switch {
	case ak.isNumber() && bk.isNumber():
		if ak == kFloat4 || ak == kFloat8 || bk == kFloat4 || bk == kFloat8 {
			x, err := floatOf(ak, af, a)
			if err != nil {
				return 0, err
			}
			y, err := floatOf(bk, bf, b)
			if err != nil {
				return 0, err
			}
			return cmpFloat(x, y), nil
		}
		var x, y decimal
		if err := decimalOf(ak, af, a, &x); err != nil {
			return 0, err
		}
		if err := decimalOf(bk, bf, b, &y); err != nil {
			return 0, err
		}
		return x.cmp(&y), nil
	case ak.isString() && bk.isString():
		var x, y key
		if err := parseKey(ak, af, a, &x); err != nil {
			return 0, err
		}
		if err := parseKey(bk, bf, b, &y); err != nil {
			return 0, err
		}
		return cmpKeys(kText, &x, &y), nil
	}
	return 0, codec.NewError(codec.SQLStateFeatureNotSupported, "pgshard: cannot compare "+kindName(ak)+" with "+kindName(bk)+" in HAVING across shards")
}

// parseHavingKey is parseKey with the constant's error: a constant that does not read as the type is the
// user's, 22P02 like Postgres's "invalid input syntax".
func parseHavingKey(k kind, format int16, v []byte, out *key) error {
	if err := parseKey(k, format, v, out); err != nil {
		if format == codec.FormatText {
			return codec.NewError(codec.SQLStateInvalidTextRepresentation, "invalid input syntax for type "+
				kindName(k)+": "+strconv.Quote(trunc(v)))
		}
		return err
	}
	return nil
}

func floatOf(k kind, format int16, v []byte) (float64, error) {
	var x key
	switch {
	case k == kFloat4 || k == kFloat8:
		if err := parseHavingKey(k, format, v, &x); err != nil {
			return 0, err
		}
		return x.f, nil
	case k == kNumeric:
		var d decimal
		if err := decimalOf(k, format, v, &d); err != nil {
			return 0, err
		}
		return d.float64(), nil
	}
	if err := parseHavingKey(k, format, v, &x); err != nil {
		return 0, err
	}
	return float64(x.i), nil
}

func decimalOf(k kind, format int16, v []byte, d *decimal) error {
	if k == kNumeric {
		if !d.parse(format, v) {
			if format == codec.FormatText {
				return codec.NewError(codec.SQLStateInvalidTextRepresentation,
					"invalid input syntax for type numeric: "+strconv.Quote(trunc(v)))
			}
			return errValue(kNumeric, format)
		}
		return nil
	}
	var x key
	if err := parseHavingKey(k, format, v, &x); err != nil {
		return err
	}
	d.setInt64(x.i)
	return nil
}
