package route

import (
	"math/bits"
	"strconv"
	"unsafe"

	"github.com/pgshard/pgshard/codec"
	"github.com/pgshard/pgshard/route/lex"
	"github.com/pgshard/pgshard/route/shard"
)

// Plan is what the planner learned from one parsed statement: which sharded tables it reads or writes and how
// their keys are constrained, as references to literal slots and $n parameters, never to literal values, so
// that one Plan serves every statement of the same normalized shape. It is immutable and may be kept as long as
// needed (a prepared statement keeps its own).
type Plan struct {
	kind  planKind
	write bool
	// hard refuses the statement whatever the hints say; soft refuses it unless a hint or the session names
	// the shard; multi refuses it when it would run on more than one shard (a shape cross-shard merging cannot
	// do yet).
	hard, soft, multi *codec.Error
	all               bool // every shard, whatever the keys (DDL, writes to replicated tables)
	mirror            bool // the statement does the same on every shard (Decision.Mirror)

	classes []planClass
	conds   []planCond
	vals    []planVal

	// INSERT ... VALUES into a sharded table: the key of each row, mapped with rowMapper. Without a column
	// list, every value of each row instead, and the catalog query of the key's position (positional.go).
	rows        []planVal
	rowMapper   *shard.Mapper
	spread      *codec.Error // Bind: rows of several shards
	keyQuery    string
	posRows     [][]posVal
	insertTable string
	keyMissing  *codec.Error // the table has no key column

	merge      *mergePlan    // a SELECT whose rows from several shards the proxy merges
	coordinate *coordination // a SELECT that the coordinator step answers when it needs several shards
	copyOut    *CopyOut      // COPY ... TO STDOUT
	copy       *CopyIn       // COPY FROM STDIN into a sharded table: every shard, rows split by the proxy
	keyMapper  *shard.Mapper // for key= hints and pgshard.sharding_key
	noKeyErr   *codec.Error  // key= hint with no sharded table anywhere

	// Prepared statements (Router.Prepare) keep their own text, literal ranges and hints, and the text the
	// shards prepare instead when merging needs a rewrite.
	shardSQL string
	sql      string
	lits     [][2]int32
	hints    lex.Hints
	hintErr  *codec.Error
}

type planKind uint8

const (
	planRoute   planKind = iota // routed by keys (or Any when no sharded table is involved)
	planSession                 // transaction control, SET, SHOW, ...: Any, hints ignored
	planUnknown                 // not parsed (syntax error): Any, the server reports the error
)

// planClass is a set of sharded table instances whose keys are equal (one table, or tables joined on their
// keys): it needs the shards where all of its conditions can hold, under each member's mapper.
type planClass struct {
	mappers []*shard.Mapper
	c0, cn  int32 // conds[c0:c0+cn], all of which hold (AND)
}

// planCond is key = one of vals[v0:v0+vn] (an = or an IN list).
type planCond struct{ v0, vn int32 }

// planVal is where a key value comes from.
type planVal struct {
	kind valKind
	n    int32 // slot index (into the literal ranges) or parameter index (0-based)
}

type valKind uint8

const (
	valSlot    valKind = iota + 1 // literal slot n
	valNegSlot                    // - literal slot n (a minus the lexer did not fold: "- 5")
	valParam                      // $n+1
	valNull                       // NULL: matches nothing
	valTrue                       // true (a boolean HAVING condition compared with it)
)

// Outcomes of evaluating one key value.
const (
	vOK      = iota
	vNull    // NULL, or a parameter the client did not send: no shard owns it
	vUnknown // a value the router cannot map (a fraction, a bit string): no narrowing
	vErr
)

// Write reports whether the statement may change data or schema.
func (p *Plan) Write() bool { return p.write }

// eval routes one execution of p. sql and lits are the statement's text and literal ranges (the current query's
// for a cached plan, the plan's own for a prepared one); params are a Bind's, nil for a simple Query.
func (p *Plan) eval(s *Schema, sql string, lits [][2]int32, params *Params, hints *lex.Hints, sess *Session,
	allowSplit bool) Decision {
	d := p.route(s, sql, lits, params, hints, sess, allowSplit)
	if p.merge != nil && d.Err == nil && !d.Any && (d.Shards&(d.Shards-1) != 0 || params != nil && p.merge.tmpl != nil) {
		// Several shards' rows to merge; or a prepared statement the shards know rewritten, whose rows
		// (hidden columns, avg's sum and count) need finishing even from one shard.
		d.Merge = p.merge.decide(sql, lits, params)
	}
	if p.copyOut != nil && d.Shards&(d.Shards-1) != 0 {
		d.CopyOut = p.copyOut
	}
	return p.guardScatter(d, sess)
}

// route is eval without merging.
func (p *Plan) route(s *Schema, sql string, lits [][2]int32, params *Params, hints *lex.Hints, sess *Session,
	allowSplit bool) Decision {
	if p.hard != nil {
		return Decision{Err: p.hard, Write: p.write}
	}
	if p.kind != planRoute {
		return Decision{Any: true, Write: p.write, Mirror: p.mirror}
	}
	// Overrides: comment hints first, then the session's settings.
	if hints.Shard >= 0 {
		return p.override(s, hints.Shard)
	}
	if hints.HasKey {
		return p.overrideKey(s, hints.Key)
	}
	if sess.Shard >= 0 {
		return p.override(s, sess.Shard)
	}
	if sess.HasKey {
		return p.overrideKey(s, sess.Key)
	}
	if p.copy != nil {
		return Decision{Shards: s.allShards(), Write: true, Copy: p.copy}
	}
	if p.soft != nil {
		return Decision{Err: p.soft, Write: p.write}
	}

	var mask uint64
	if p.all {
		mask = s.allShards()
	}
	rows := p.rows
	if p.keyQuery != "" {
		at, known := p.keyAt(sess)
		switch {
		case !known:
			return Decision{NeedKey: &KeyPosition{Query: p.keyQuery, At: NoTable}, Write: p.write}
		case at == KeyMissing:
			return Decision{Err: p.keyMissing, Write: p.write}
		case at < 0:
			return Decision{Any: true, Write: p.write} // no such table: the server says so
		}
		var err *codec.Error
		if rows, err = p.rowsAt(at); err != nil {
			return Decision{Err: err, Write: p.write}
		}
	}
	if len(rows) > 0 {
		var rmask uint64
		for i := range rows {
			sh, r, err := p.value(p.rowMapper, &rows[i], sql, lits, params)
			switch r {
			case vErr:
				return Decision{Err: err, Write: p.write}
			case vOK:
				rmask |= 1 << uint(sh)
			}
		}
		if bits.OnesCount64(rmask) > 1 && !p.all {
			if !allowSplit && params == nil {
				return Decision{Err: p.spread, Write: p.write}
			}
			return p.split(s, sql, lits, rows, params, rmask)
		}
		mask |= rmask
	}
	scatter := false // a sharded table that no key condition restricts: every shard, for want of a key
	for ci := range p.classes {
		if mask == s.allShards() {
			scatter = scatter || p.unrestricted(ci)
			break
		}
		c := &p.classes[ci]
		for _, m := range c.mappers {
			ms := s.allShards()
			restricted := false
			for k := c.c0; k < c.c0+c.cn; k++ {
				cd := p.conds[k]
				var cs uint64
				unknown := false
				for j := cd.v0; j < cd.v0+cd.vn; j++ {
					sh, r, err := p.value(m, &p.vals[j], sql, lits, params)
					switch r {
					case vErr:
						return Decision{Err: err, Write: p.write}
					case vOK:
						cs |= 1 << uint(sh)
					case vUnknown:
						unknown = true
					}
				}
				if !unknown {
					ms &= cs
					restricted = true
				}
			}
			mask |= ms
			scatter = scatter || !restricted
		}
	}
	switch {
	case mask == 0:
		return Decision{Any: true, Write: p.write, Mirror: p.mirror}
	case mask&(mask-1) != 0 && p.coordinate != nil:
		return p.coordinate.decide(s, sql, sess)
	case mask&(mask-1) != 0 && p.multi != nil:
		return Decision{Err: p.multi, Write: p.write}
	}
	return Decision{Shards: mask, Write: p.write, Mirror: p.mirror, Scatter: scatter && !p.all && mask&(mask-1) != 0}
}

// unrestricted says whether a class from ci on has no key condition at all (so it reads every shard whatever
// the values): looked at only once the mask is already every shard, for Decision.Scatter.
func (p *Plan) unrestricted(ci int) bool {
	for ; ci < len(p.classes); ci++ {
		if p.classes[ci].cn == 0 {
			return true
		}
	}
	return false
}

func (p *Plan) override(s *Schema, sh int) Decision {
	if sh < 0 || sh >= s.shards {
		return Decision{Err: codec.NewError(codec.SQLStateInvalidParameterValue,
			"pgshard shard "+strconv.Itoa(sh)+" does not exist: database "+strconv.Quote(s.name)+" has "+
				strconv.Itoa(s.shards)+" shards (0 to "+strconv.Itoa(s.shards-1)+")"), Write: p.write}
	}
	return Decision{Shards: 1 << uint(sh), Write: p.write, Mirror: p.mirror}
}

func (p *Plan) overrideKey(s *Schema, key string) Decision {
	if p.keyMapper == nil {
		return Decision{Err: p.noKeyErr, Write: p.write}
	}
	sh, err := p.keyMapper.ShardText(bytesOf(key))
	if err != nil {
		return Decision{Err: err, Write: p.write}
	}
	return p.override(s, sh)
}

// value maps one key value with m.
func (p *Plan) value(m *shard.Mapper, v *planVal, sql string, lits [][2]int32, params *Params) (int, int,
	*codec.Error) {
	switch v.kind {
	case valSlot, valNegSlot:
		if int(v.n) >= len(lits) {
			return 0, vUnknown, nil
		}
		r := lits[v.n]
		if r[0] < 0 || r[1] > int32(len(sql)) || r[0] >= r[1] {
			return 0, vUnknown, nil
		}
		text := sql[r[0]:r[1]]
		switch c := text[0]; {
		case c == '-' || c == '.' || c-'0' < 10:
			// A number (with a folded minus sign when it starts with '-').
			if m.Type().IsInt() {
				n, ok := parseInt(text, v.kind == valNegSlot)
				if !ok {
					return 0, vUnknown, nil
				}
				sh, err := m.ShardInt(n)
				if err != nil {
					return 0, vErr, err
				}
				return sh, vOK, nil
			}
			if v.kind == valNegSlot {
				return 0, vUnknown, nil
			}
			return shardText(m, text)
		case c == 'b' || c == 'B' || c == 'x' || c == 'X':
			return 0, vUnknown, nil // bit strings
		}
		if v.kind == valNegSlot {
			return 0, vUnknown, nil
		}
		return shardText(m, lex.Unquote(sql, lex.Token{Kind: lex.String, Start: r[0], End: r[1]}))
	case valParam:
		if params == nil || int(v.n) >= len(params.Values) {
			return 0, vUnknown, nil
		}
		val := params.Values[v.n]
		if val == nil {
			return 0, vNull, nil
		}
		var f int16
		switch len(params.Formats) {
		case 0:
		case 1:
			f = params.Formats[0]
		default:
			if int(v.n) < len(params.Formats) {
				f = params.Formats[v.n]
			}
		}
		var sh int
		var err *codec.Error
		if f == 1 {
			sh, err = m.ShardBinary(val)
		} else {
			sh, err = m.ShardText(val)
		}
		if err != nil {
			return 0, vErr, err
		}
		return sh, vOK, nil
	case valNull:
		return 0, vNull, nil
	}
	return 0, vUnknown, nil
}

func shardText(m *shard.Mapper, s string) (int, int, *codec.Error) {
	sh, err := m.ShardText(bytesOf(s))
	if err != nil {
		return 0, vErr, err
	}
	return sh, vOK, nil
}

// bytesOf views s as bytes without copying; the mappers only read their argument.
func bytesOf(s string) []byte {
	if s == "" {
		return nil
	}
	return unsafe.Slice(unsafe.StringData(s), len(s))
}

// parseInt reads an integer literal as Postgres writes it: an optional folded '-', decimal digits or a
// 0x/0o/0b prefix, '_' between digits. neg negates the result (a minus the lexer left apart). It fails on
// fractions, exponents and values outside int64.
func parseInt(s string, neg bool) (int64, bool) {
	if s != "" && s[0] == '-' {
		neg = !neg
		s = s[1:]
	}
	base := uint64(10)
	if len(s) > 2 && s[0] == '0' {
		switch s[1] {
		case 'x', 'X':
			base = 16
		case 'o', 'O':
			base = 8
		case 'b', 'B':
			base = 2
		}
		if base != 10 {
			s = s[2:]
		}
	}
	if s == "" {
		return 0, false
	}
	limit := uint64(1<<63 - 1)
	if neg {
		limit = 1 << 63
	}
	var v uint64
	for i := 0; i < len(s); i++ {
		c := s[i]
		var d uint64
		switch {
		case c == '_':
			continue
		case c-'0' < 10:
			d = uint64(c - '0')
		case c|0x20-'a' < 6:
			d = uint64(c|0x20-'a') + 10
		default:
			return 0, false
		}
		if d >= base || v > (limit-d)/base {
			return 0, false
		}
		v = v*base + d
	}
	if neg {
		return -int64(v), true // -(1<<63) wraps to itself: math.MinInt64
	}
	return int64(v), true
}
