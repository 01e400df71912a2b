package route

import (
	"math"
	"strconv"
	"strings"
	"sync/atomic"

	pg "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/pgshard/pgshard/merge"
	"github.com/pgshard/pgshard/route/lex"
)

// mergePlan is how a SELECT over several shards with ORDER BY, LIMIT/OFFSET, aggregates, GROUP BY, HAVING or
// DISTINCT runs: the statement the shards get instead of the client's (tmpl, nil: the client's own), and the
// merge.Spec that combines their rows into the client's.
type mergePlan struct {
	agg    bool
	spec   *merge.Spec // aggregates: the spec; otherwise built per column count (specFor)
	tmpl   []seg
	hidden int // shard columns the rewrite adds after the client's

	// Without aggregates: the client's columns are all the shard columns but the hidden ones, which a
	// SELECT * makes known only from the first RowDescription. keys are the ORDER BY and DISTINCT ON values
	// as shard columns numbered as planned: below targets an output position, from targets on hidden column
	// (col - targets).
	targets  int
	keys     []int
	order    []merge.SortKey // Value: index into keys
	distinct bool
	distOn   []int // indexes into keys
	last     atomic.Pointer[merge.Spec]

	limit, offset planVal // kind 0: none
	limitAll      bool
	consts        []planVal // HAVING's constants
}

// Merge is how one execution's rows from several shards combine (Decision.Merge).
type Merge struct {
	p *mergePlan
	// SQL is the statement the shards run instead of the client's (simple Query), "" for the client's own.
	SQL string
	// Args are this execution's LIMIT, OFFSET and HAVING constants.
	Args merge.Args
}

// Hidden is the number of columns the rewrite adds after the client's.
func (m *Merge) Hidden() int { return m.p.hidden }

// Spec is the merge spec for shard rows of ncols columns (the shards' RowDescription).
func (m *Merge) Spec(ncols int) *merge.Spec { return m.p.specFor(ncols) }

// specFor returns the spec for shard rows of ncols columns.
func (mp *mergePlan) specFor(ncols int) *merge.Spec {
	if mp.spec != nil {
		return mp.spec
	}
	if s := mp.last.Load(); s != nil && s.Visible == ncols-mp.hidden {
		return s
	}
	visible := max(ncols-mp.hidden, 0)
	s := &merge.Spec{Visible: visible, Distinct: mp.distinct, Limit: mp.limit.kind != 0 || mp.limitAll,
		Offset: mp.offset.kind != 0}
	s.Values = make([]merge.Value, visible, visible+len(mp.keys))
	for i := range s.Values {
		s.Values[i].Col = i
	}
	// A key that is one of the client's columns is that Value; a hidden one gets a Value of its own.
	keyValue := make([]int, len(mp.keys))
	for i, col := range mp.keys {
		if col >= 0 && col < visible {
			keyValue[i] = col
			continue
		}
		if col < 0 {
			col = visible - col - 1
		}
		keyValue[i] = len(s.Values)
		s.Values = append(s.Values, merge.Value{Col: col})
	}
	for _, k := range mp.order {
		k.Value = keyValue[k.Value]
		s.Order = append(s.Order, k)
	}
	for _, k := range mp.distOn {
		s.DistinctOn = append(s.DistinctOn, keyValue[k])
	}
	mp.last.Store(s)
	return s
}

// decide builds the Merge of one execution.
func (mp *mergePlan) decide(sql string, lits [][2]int32, params *Params) *Merge {
	m := &Merge{p: mp, Args: merge.Args{Limit: -1}}
	if mp.tmpl != nil && params == nil {
		m.SQL, _ = render(mp.tmpl, sql, lits)
	}
	if mp.limit.kind != 0 {
		if n, ok := intValue(&mp.limit, sql, lits, params); ok && n >= 0 {
			m.Args.Limit = n
		}
	}
	if mp.offset.kind != 0 {
		if n, ok := intValue(&mp.offset, sql, lits, params); ok && n > 0 {
			m.Args.Offset = n
		}
	}
	for i := range mp.consts {
		v := &mp.consts[i]
		var f int16
		if v.kind == valParam && params != nil {
			f = paramFormat(params, int(v.n))
		}
		if c := textValue(v, sql, lits, params); c != nil {
			m.Args.Consts = append(m.Args.Consts, append([]byte(nil), c...)) // the Bind's buffer is reused
		} else {
			m.Args.Consts = append(m.Args.Consts, nil)
		}
		m.Args.ConstFormats = append(m.Args.ConstFormats, f)
	}
	return m
}

// intValue reads a LIMIT or OFFSET value. ok is false for NULL or a value that is not a number (the shards
// then report the error).
func intValue(v *planVal, sql string, lits [][2]int32, params *Params) (int64, bool) {
	if v.kind == valParam && params != nil && int(v.n) < len(params.Values) && paramFormat(params, int(v.n)) == 1 {
		b := params.Values[v.n]
		switch len(b) {
		case 8:
			return int64(uint64(b[0])<<56 | uint64(b[1])<<48 | uint64(b[2])<<40 | uint64(b[3])<<32 |
				uint64(b[4])<<24 | uint64(b[5])<<16 | uint64(b[6])<<8 | uint64(b[7])), true
		case 4:
			return int64(int32(uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3]))), true
		case 2:
			return int64(int16(uint16(b[0])<<8 | uint16(b[1]))), true
		}
		return 0, false
	}
	t := textValue(v, sql, lits, params)
	if t == nil {
		return 0, false
	}
	s := strings.TrimSpace(string(t))
	if n, ok := parseInt(s, v.kind == valNegSlot); ok {
		return n, true
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || math.Abs(f) > 9e18 {
		return 0, false
	}
	if v.kind == valNegSlot {
		f = -f
	}
	return int64(math.Round(f)), true
}

// textValue is a constant's text (nil: NULL).
func textValue(v *planVal, sql string, lits [][2]int32, params *Params) []byte {
	switch v.kind {
	case valSlot, valNegSlot:
		if int(v.n) >= len(lits) {
			return nil
		}
		r := lits[v.n]
		t := sql[r[0]:r[1]]
		if t != "" && (t[0] == '\'' || t[0] == 'e' || t[0] == 'E' || t[0] == '$' || t[0] == 'u' || t[0] == 'U') {
			t = lex.Unquote(sql, lex.Token{Kind: lex.String, Start: r[0], End: r[1]})
		}
		if v.kind == valNegSlot {
			t = "-" + t
		}
		return []byte(t)
	case valParam:
		if params == nil || int(v.n) >= len(params.Values) {
			return nil
		}
		return params.Values[v.n]
	case valTrue:
		return []byte("t")
	}
	return nil
}

// paramFormat is the format code of parameter i.
func paramFormat(p *Params, i int) int16 {
	switch len(p.Formats) {
	case 0:
		return 0
	case 1:
		return p.Formats[0]
	}
	if i < len(p.Formats) {
		return p.Formats[i]
	}
	return 0
}

// mergeBuilder plans the merge of the top-level SELECT s.
type mergeBuilder struct {
	b      *builder
	s      *pg.SelectStmt
	toks   []dtok
	c      selectClauses
	items  [][2]int // the select list's items, as token ranges
	star   int      // the index of the first * item, or -1
	mp     *mergePlan
	edits  []edit
	hidden [][]seg // columns added after the client's
	why    string  // what cannot be merged, for the refusal

	shardsRefuse bool // the statement is wrong: sent as it is, for the shards to say why
}

// aggKinds are the aggregates the proxy can finish from the shards' partial results.
var aggKinds = map[string]merge.AggKind{
	"count": merge.AggCount, "sum": merge.AggSum, "min": merge.AggMin, "max": merge.AggMax, "avg": merge.AggAvg,
	"bool_and": merge.AggBoolAnd, "every": merge.AggBoolAnd, "bool_or": merge.AggBoolOr,
	"string_agg": merge.AggStringAgg, "array_agg": merge.AggArrayAgg,
}

// planMerge plans how the rows of s, the statement's top-level SELECT, merge across shards. It returns nil
// and a description of the shape when they cannot be merged exactly ("" when the generic message fits).
func (b *builder) planMerge(s *pg.SelectStmt, agg bool) (*mergePlan, string) {
	if s == nil || s.Op != pg.SetOperation_SETOP_NONE && s.Op != pg.SetOperation_SET_OPERATION_UNDEFINED ||
		s.IntoClause != nil || len(s.ValuesLists) > 0 {
		return nil, ""
	}
	if len(s.WindowClause) > 0 {
		return nil, "window functions"
	}
	if s.LimitOption == pg.LimitOption_LIMIT_OPTION_WITH_TIES {
		return nil, "FETCH ... WITH TIES"
	}
	mb := &mergeBuilder{b: b, s: s, toks: scanDepth(b.sql), star: -1, mp: &mergePlan{agg: agg}}
	var ok bool
	mb.c, ok = findClauses(b.sql, mb.toks)
	if !ok {
		return nil, ""
	}
	mb.items = splitList(b.sql, mb.toks, mb.c.targets, mb.c.from)
	if len(mb.items) != len(s.TargetList) {
		return nil, ""
	}
	mb.mp.targets = len(mb.items)
	for i, n := range s.TargetList {
		if rt := n.GetResTarget(); rt != nil && isStar(rt.Val) && mb.star < 0 {
			mb.star = i
		}
	}
	if agg {
		mb.aggregate()
	} else {
		mb.plain()
	}
	if mb.why != "" {
		return nil, mb.why
	}
	mb.limits(agg)
	if mb.why != "" {
		return nil, mb.why
	}
	if len(mb.hidden) > 0 {
		var ins []seg
		for _, h := range mb.hidden {
			ins = append(ins, txt(", "))
			ins = append(ins, h...)
		}
		at := mb.toks[mb.c.from].Start
		// Right after the last select-list item, so that the space before FROM stays.
		if last := mb.items[len(mb.items)-1]; last[1] > last[0] {
			at = mb.toks[last[1]-1].End
		}
		mb.edits = append(mb.edits, edit{at: at, end: at, ins: ins})
	}
	mp := mb.mp
	if mb.shardsRefuse {
		return &mergePlan{agg: agg, spec: &merge.Spec{}}, ""
	}
	mp.hidden = len(mb.hidden)
	if len(mb.edits) > 0 {
		mp.tmpl = applyEdits(b.sql, b.lits, mb.edits)
	}
	if mp.spec != nil {
		mp.spec.Limit, mp.spec.Offset = mp.limit.kind != 0 || mp.limitAll, mp.offset.kind != 0
	}
	return mp, ""
}

// isStar reports whether a select-list item is * or t.*.
func isStar(n *pg.Node) bool {
	if n.GetAStar() != nil {
		return true
	}
	if cr := n.GetColumnRef(); cr != nil && len(cr.Fields) > 0 && cr.Fields[len(cr.Fields)-1].GetAStar() != nil {
		return true
	}
	return false
}

// addHidden adds a column to the shards' select list and returns its shard column: after the select list's
// items with aggregates, -1 for the first hidden one, -2 for the next, ... otherwise (a * makes the number of
// the client's columns known only at run time).
func (mb *mergeBuilder) addHidden(h []seg) int {
	mb.hidden = append(mb.hidden, h)
	if mb.mp.agg {
		return mb.mp.targets + len(mb.hidden) - 1
	}
	return -len(mb.hidden)
}

// dropClause is the edit that removes the clause starting at token at (up to the next one).
func (mb *mergeBuilder) dropClause(at int) edit {
	return edit{at: mb.toks[at].Start, end: mb.toks[mb.c.clauseEnd(at)].Start}
}

// tokenText is the template of the tokens [from, to).
func (mb *mergeBuilder) tokenText(from, to int) []seg {
	a, z := byteRange(mb.toks, from, to)
	return copyRange(mb.b.sql, mb.b.lits, a, z)
}

// sortItems returns the ORDER BY items' expression token ranges (without ASC/DESC/NULLS/USING).
func (mb *mergeBuilder) listItems(clause, skip int) [][2]int {
	if clause < 0 {
		return nil
	}
	items := splitList(mb.b.sql, mb.toks, clause+skip, mb.c.clauseEnd(clause))
	for k, it := range items {
		for j := it[0]; j < it[1]; j++ {
			if kwAt(mb.b.sql, mb.toks, j, "asc") || kwAt(mb.b.sql, mb.toks, j, "desc") ||
				kwAt(mb.b.sql, mb.toks, j, "nulls") || kwAt(mb.b.sql, mb.toks, j, "using") {
				items[k][1] = j
				break
			}
		}
	}
	return items
}

// sortKey reads the direction of an ORDER BY item.
func (mb *mergeBuilder) sortKey(sb *pg.SortBy, value int) (merge.SortKey, bool) {
	k := merge.SortKey{Value: value}
	switch sb.SortbyDir {
	case pg.SortByDir_SORTBY_DESC:
		k.Desc = true
	case pg.SortByDir_SORTBY_USING:
		op := ""
		if len(sb.UseOp) > 0 {
			op = sb.UseOp[len(sb.UseOp)-1].GetString_().GetSval()
		}
		switch op {
		case "<":
		case ">":
			k.Desc = true
		default:
			mb.why = "ORDER BY ... USING " + op
			return k, false
		}
	}
	k.NullsFirst = k.Desc
	switch sb.SortbyNulls {
	case pg.SortByNulls_SORTBY_NULLS_FIRST:
		k.NullsFirst = true
	case pg.SortByNulls_SORTBY_NULLS_LAST:
		k.NullsFirst = false
	}
	return k, true
}

// target finds the select-list item an ORDER BY / GROUP BY / DISTINCT ON expression names: a position
// (ORDER BY 2), an output column name, or the same column reference. -1 when none.
func (mb *mergeBuilder) target(n *pg.Node, positions bool) int {
	if c := n.GetAConst(); c != nil && positions {
		if iv := c.GetIval(); iv != nil && iv.Ival >= 1 && (mb.star < 0 && int(iv.Ival) <= len(mb.items) || mb.star >= 0) {
			return int(iv.Ival) - 1
		}
		return -1
	}
	cr := n.GetColumnRef()
	if cr == nil {
		return -1
	}
	limit := len(mb.s.TargetList)
	if mb.star >= 0 {
		limit = mb.star // items after a * are not at their position among the output columns
	}
	if len(cr.Fields) == 1 {
		name := cr.Fields[0].GetString_().GetSval()
		for i := 0; i < limit; i++ {
			if rt := mb.s.TargetList[i].GetResTarget(); rt != nil && rt.Name == name && name != "" {
				return i
			}
		}
	}
	for i := 0; i < limit; i++ {
		rt := mb.s.TargetList[i].GetResTarget()
		if rt == nil || (rt.Name != "" && len(cr.Fields) == 1 && rt.Name != cr.Fields[0].GetString_().GetSval()) {
			continue
		}
		if tc := rt.Val.GetColumnRef(); tc != nil && sameFields(tc.Fields, cr.Fields) {
			return i
		}
	}
	return -1
}

// sameAsItem finds the select-list item (before any *) whose expression is written as the tokens of r, or -1.
func (mb *mergeBuilder) sameAsItem(r [2]int) int {
	limit := len(mb.items)
	if mb.star >= 0 {
		limit = mb.star
	}
	for i := 0; i < limit; i++ {
		it := mb.items[i]
		end := it[1]
		if rt := mb.s.TargetList[i].GetResTarget(); rt != nil && rt.Name != "" {
			// Without the alias: "expr AS name" or "expr name".
			end--
			if end > it[0] && kwAt(mb.b.sql, mb.toks, end-1, "as") {
				end--
			}
		}
		if mb.sameTokens(it[0], end, r[0], r[1]) {
			return i
		}
	}
	return -1
}

// sameTokens reports whether tokens [a, b) and [c, d) read the same (words compared ignoring case). Never
// when they hold a literal: a cached plan serves statements whose literals differ.
func (mb *mergeBuilder) sameTokens(a, b, c, d int) bool {
	if b-a != d-c || b <= a {
		return false
	}
	for i := 0; i < b-a; i++ {
		x, y := mb.toks[a+i], mb.toks[c+i]
		if x.Kind == lex.String || x.Kind == lex.Number || y.Kind == lex.String || y.Kind == lex.Number {
			return false
		}
		tx, ty := mb.b.sql[x.Start:x.End], mb.b.sql[y.Start:y.End]
		if x.Kind != y.Kind || !(tx == ty || x.Kind == lex.Ident && strings.EqualFold(tx, ty)) {
			return false
		}
	}
	return true
}

func sameFields(a, b []*pg.Node) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].GetString_() == nil || a[i].GetString_().GetSval() != b[i].GetString_().GetSval() {
			return false
		}
	}
	return true
}

// plain plans a SELECT without aggregates: ORDER BY keys, DISTINCT, DISTINCT ON.
func (mb *mergeBuilder) plain() {
	s, mp := mb.s, mb.mp
	key := func(n *pg.Node, r [2]int) int {
		col := mb.target(n, true)
		if col < 0 {
			col = mb.sameAsItem(r)
		}
		if col < 0 && mp.distinct {
			// SELECT DISTINCT sorts by its own columns only: the shards report the error (42P10).
			mb.shardsRefuse = true
			col = 0
		}
		if col < 0 {
			col = mb.addHidden(mb.tokenText(r[0], r[1]))
		}
		mp.keys = append(mp.keys, col)
		return len(mp.keys) - 1
	}
	plainDistinct := len(s.DistinctClause) == 1 && s.DistinctClause[0].GetNode() == nil
	mp.distinct = plainDistinct
	var ok bool
	if mp.order, ok = mb.orderBy(func(n *pg.Node, r [2]int) (int, bool) { return key(n, r), true }); !ok {
		return
	}
	if len(s.DistinctClause) > 0 && !plainDistinct {
		items := splitList(mb.b.sql, mb.toks, mb.c.distinctOn+1, matchParen(mb.toks, mb.c.distinctOn))
		if mb.c.distinctOn < 0 || len(items) != len(s.DistinctClause) {
			mb.why = "this DISTINCT ON"
			return
		}
		for i, n := range s.DistinctClause {
			mp.distOn = append(mp.distOn, key(n, items[i]))
		}
	}
}

// limits plans LIMIT and OFFSET: the shards get LIMIT limit+offset and no OFFSET (without aggregates), or
// neither (aggregates: each shard's first groups are not the first groups of all); the proxy applies them.
func (mb *mergeBuilder) limits(agg bool) {
	s, mp, sql, toks := mb.s, mb.mp, mb.b.sql, mb.toks
	if s.LimitCount == nil && s.LimitOffset == nil {
		return
	}
	one := func(n *pg.Node) (planVal, bool) {
		if c := n.GetAConst(); c != nil && c.Isnull {
			return planVal{}, true // LIMIT NULL / ALL: no limit
		}
		if v, ok := mb.b.value(n); ok && v.kind != valNull {
			return v, true
		}
		mb.why = "LIMIT or OFFSET given by an expression (use a number or a parameter)"
		return planVal{}, false
	}
	var ok bool
	if s.LimitCount != nil {
		if mp.limit, ok = one(s.LimitCount); !ok {
			return
		}
		mp.limitAll = mp.limit.kind == 0
	}
	if s.LimitOffset != nil {
		if mp.offset, ok = one(s.LimitOffset); !ok {
			return
		}
	}
	// The value tokens: one token after LIMIT / OFFSET / FETCH FIRST|NEXT (a literal, $n, ALL or NULL; a
	// folded minus is one literal slot).
	valueTok := func(at int) (int, bool) {
		end := mb.c.clauseEnd(at)
		switch {
		case kwAt(sql, toks, at, "fetch"):
			if end-at >= 5 && !kwAt(sql, toks, at+2, "row") && !kwAt(sql, toks, at+2, "rows") {
				return at + 2, true
			}
			return -1, true // FETCH FIRST ROW ONLY: 1
		case kwAt(sql, toks, at, "offset"):
			if end == at+2 || end == at+3 && (kwAt(sql, toks, at+2, "row") || kwAt(sql, toks, at+2, "rows")) {
				return at + 1, true
			}
		case end == at+2:
			return at + 1, true
		}
		mb.why = "LIMIT or OFFSET given by an expression (use a number or a parameter)"
		return -1, false
	}
	limitAt := mb.c.limit
	if limitAt < 0 {
		limitAt = mb.c.fetch
	}
	if agg {
		// The proxy applies both to the final groups: the shards get neither.
		for _, at := range []int{limitAt, mb.c.offset} {
			if at >= 0 {
				mb.edits = append(mb.edits, mb.dropClause(at))
			}
		}
		return
	}
	if mb.c.offset < 0 {
		return
	}
	offTok, ok := valueTok(mb.c.offset)
	if !ok {
		return
	}
	mb.edits = append(mb.edits, mb.dropClause(mb.c.offset)) // no OFFSET on the shards
	if limitAt < 0 || mp.limitAll {
		return
	}
	limTok, ok := valueTok(limitAt)
	if !ok {
		return
	}
	off := mb.tokenText(offTok, offTok+1)
	if limTok < 0 { // FETCH FIRST ROW ONLY
		at := toks[limitAt+1].End
		ins := append([]seg{txt(" (1 + (")}, off...)
		mb.edits = append(mb.edits, edit{at: at, end: at, ins: append(ins, txt(")::bigint)"))})
		return
	}
	ins := append([]seg{txt("((")}, mb.tokenText(limTok, limTok+1)...)
	ins = append(ins, txt(")::bigint + ("))
	ins = append(ins, off...)
	ins = append(ins, txt(")::bigint)"))
	mb.edits = append(mb.edits, edit{at: toks[limTok].Start, end: toks[limTok].End, ins: ins})
}

// aggregate plans a SELECT with aggregates, GROUP BY or HAVING: the shards return each group's partial
// aggregates, the proxy finishes them (avg from sum and count), applies HAVING, sorts and limits the groups.
func (mb *mergeBuilder) aggregate() {
	s := mb.s
	if mb.star >= 0 {
		mb.why = "SELECT * with aggregates"
		return
	}
	if len(s.DistinctClause) > 0 && s.DistinctClause[0].GetNode() != nil {
		mb.why = "DISTINCT ON with aggregates"
		return
	}
	spec := &merge.Spec{Aggregate: true, Visible: len(s.TargetList), Distinct: len(s.DistinctClause) > 0}
	mb.mp.spec = spec
	for i, n := range s.TargetList {
		rt := n.GetResTarget()
		if rt == nil {
			mb.why = "this select list"
			return
		}
		v, ok := mb.targetValue(rt, i)
		if !ok {
			return
		}
		spec.Values = append(spec.Values, v)
	}
	if len(s.GroupClause) > 0 {
		items := mb.listItems(mb.c.group, 2)
		if len(items) != len(s.GroupClause) {
			mb.why = "this GROUP BY"
			return
		}
		for i, n := range s.GroupClause {
			if n.GetGroupingSet() != nil {
				mb.why = "GROUPING SETS, ROLLUP or CUBE"
				return
			}
			col := mb.target(n, true)
			if col < 0 {
				col = mb.addHidden(mb.tokenText(items[i][0], items[i][1]))
			}
			spec.Group = append(spec.Group, col)
		}
	}
	if s.HavingClause != nil {
		if spec.Having = mb.cond(s.HavingClause); spec.Having == nil {
			if mb.why == "" {
				mb.why = "this HAVING condition"
			}
			return
		}
		// The shards keep every group: HAVING is made always true, yet keeps its parameters and their types.
		from, to := mb.c.having+1, mb.c.clauseEnd(mb.c.having)
		mb.edits = append(mb.edits, edit{at: mb.toks[from].Start, end: mb.toks[from].Start, ins: []seg{txt("(")}},
			edit{at: mb.toks[to-1].End, end: mb.toks[to-1].End, ins: []seg{txt(") IS NULL OR true")}})
	}
	spec.Order, _ = mb.orderBy(func(n *pg.Node, r [2]int) (int, bool) {
		if v := mb.target(n, true); v >= 0 {
			return v, true
		}
		return mb.exprValue(n, r)
	})
}

// orderBy plans the ORDER BY keys; value gives the Value an item's expression (with its tokens r) sorts.
func (mb *mergeBuilder) orderBy(value func(n *pg.Node, r [2]int) (int, bool)) ([]merge.SortKey, bool) {
	s := mb.s
	if len(s.SortClause) == 0 {
		return nil, true
	}
	items := mb.listItems(mb.c.order, 2)
	if len(items) != len(s.SortClause) {
		mb.why = "this ORDER BY"
		return nil, false
	}
	var keys []merge.SortKey
	for i, n := range s.SortClause {
		sb := n.GetSortBy()
		if sb == nil {
			mb.why = "this ORDER BY"
			return nil, false
		}
		v, ok := value(sb.Node, items[i])
		if !ok {
			return nil, false
		}
		k, ok := mb.sortKey(sb, v)
		if !ok {
			return nil, false
		}
		keys = append(keys, k)
	}
	return keys, true
}

// targetValue plans select-list item i of an aggregating SELECT: an aggregate the proxy finishes, or a
// group expression passed on.
func (mb *mergeBuilder) targetValue(rt *pg.ResTarget, i int) (merge.Value, bool) {
	switch rt.Val.Node.(type) {
	case *pg.Node_JsonArrayAgg:
		mb.why = "the aggregate JSON_ARRAYAGG()"
		return merge.Value{}, false
	case *pg.Node_JsonObjectAgg:
		mb.why = "the aggregate JSON_OBJECTAGG()"
		return merge.Value{}, false
	}
	f := rt.Val.GetFuncCall()
	if f == nil || !isAggCall(f) {
		if containsAgg(rt.Val) {
			mb.why = "an expression over an aggregate (select the aggregate itself)"
			return merge.Value{}, false
		}
		return merge.Value{Col: i}, true
	}
	if !mb.aggSupported(f) {
		return merge.Value{}, false
	}
	it := mb.items[i]
	open, end, ok := mb.callTokens(it[0])
	if !ok {
		return merge.Value{}, false
	}
	// Past the call: nothing but an alias.
	rest := it[1] - end
	switch {
	case rest == 0:
	case rest == 1 && rt.Name != "":
	case rest == 2 && rt.Name != "" && kwAt(mb.b.sql, mb.toks, end, "as"):
	default:
		mb.why = "an expression over an aggregate (select the aggregate itself)"
		return merge.Value{}, false
	}
	return mb.aggCall(f, it[0], open, end, i, rt.Name)
}

// aggCall plans the aggregate call f spanning tokens [start, end) with its arguments' ( at open. col is the
// shard column that has it, or -1 when it must be added.
func (mb *mergeBuilder) aggCall(f *pg.FuncCall, start, open, end, col int, alias string) (merge.Value, bool) {
	if !mb.aggSupported(f) {
		return merge.Value{}, false
	}
	v := merge.Value{Agg: aggKinds[funcName(f.Funcname)], Col: col}
	sql, toks := mb.b.sql, mb.toks
	nameTok := open - 1
	switch v.Agg {
	case merge.AggAvg:
		// avg(x) is sum(x) / count(x): the shards return both.
		if col < 0 {
			v.Col = mb.addHidden(append([]seg{txt("sum")}, mb.tokenText(open, end)...))
		} else {
			mb.edits = append(mb.edits, edit{at: toks[nameTok].Start, end: toks[nameTok].End, ins: []seg{txt("sum")}})
			if alias == "" {
				v.Name = "avg"
			}
		}
		v.Col2 = mb.addHidden(append([]seg{txt("count")}, mb.tokenText(open, end)...))
		return v, true
	case merge.AggStringAgg:
		closeTok := matchParen(toks, open)
		comma := -1
		for j := open + 1; j < closeTok; j++ {
			if toks[j].depth == toks[open].depth+1 && toks[j].Kind == lex.Punct && sql[toks[j].Start] == ',' {
				comma = j
			}
		}
		if comma < 0 {
			mb.why = "this string_agg()"
			return merge.Value{}, false
		}
		v.Col2 = mb.addHidden(mb.tokenText(comma+1, closeTok))
	}
	if v.Col < 0 {
		v.Col = mb.addHidden(mb.tokenText(start, end))
	}
	return v, true
}

// aggSupported reports whether the proxy can finish aggregate f from partial results (else mb.why says
// why not).
func (mb *mergeBuilder) aggSupported(f *pg.FuncCall) bool {
	name := funcName(f.Funcname)
	_, known := aggKinds[name]
	switch {
	case f.AggDistinct:
		mb.why = name + "(DISTINCT ...)"
	case len(f.AggOrder) > 0 && !f.AggWithinGroup:
		mb.why = name + "(... ORDER BY ...)"
	case f.AggWithinGroup:
		mb.why = "the ordered-set aggregate " + name + "() WITHIN GROUP"
	case !known || !isAggregate(f.Funcname):
		mb.why = "the aggregate " + name + "()"
	}
	return mb.why == ""
}

// callTokens finds the ( of the function call starting at token start and the token after the call (and its
// FILTER clause).
func (mb *mergeBuilder) callTokens(start int) (open, end int, ok bool) {
	sql, toks := mb.b.sql, mb.toks
	open = start + 1
	if punctAt(sql, toks, open, '.') { // pg_catalog.name
		open += 2
	}
	if open >= len(toks) || toks[open].Kind != lex.Punct || sql[toks[open].Start] != '(' {
		mb.why = "this aggregate call"
		return 0, 0, false
	}
	end = matchParen(toks, open) + 1
	if kwAt(sql, toks, end, "filter") && punctAt(sql, toks, end+1, '(') {
		end = matchParen(toks, end+1) + 1
	}
	return open, end, true
}

// tokenAt is the index of the token starting at byte offset loc, or -1.
func (mb *mergeBuilder) tokenAt(loc int32) int {
	for i, t := range mb.toks {
		if t.Start == loc {
			return i
		}
		if t.Start > loc {
			break
		}
	}
	return -1
}

// exprValue adds a hidden value for an ORDER BY or HAVING expression of an aggregating SELECT: an aggregate
// call (the select list's own when it has the same one), or a group expression spanning tokens r.
func (mb *mergeBuilder) exprValue(n *pg.Node, r [2]int) (int, bool) {
	spec := mb.mp.spec
	if f := n.GetFuncCall(); f != nil && isAggCall(f) {
		start := mb.tokenAt(f.Location)
		if start < 0 {
			mb.why = "this aggregate call"
			return 0, false
		}
		open, end, ok := mb.callTokens(start)
		if !ok {
			return 0, false
		}
		for i, it := range mb.items {
			if tf := mb.s.TargetList[i].GetResTarget().GetVal().GetFuncCall(); tf != nil && isAggCall(tf) {
				if ts := mb.tokenAt(tf.Location); ts == it[0] {
					if _, te, ok := mb.callTokens(ts); ok && mb.sameTokens(ts, te, start, end) {
						return i, true
					}
				}
			}
		}
		v, ok := mb.aggCall(f, start, open, end, -1, "")
		if !ok {
			return 0, false
		}
		spec.Values = append(spec.Values, v)
		return len(spec.Values) - 1, true
	}
	if containsAgg(n) {
		mb.why = "an expression over an aggregate in ORDER BY or HAVING"
		return 0, false
	}
	if r[1] <= r[0] {
		mb.why = "this ORDER BY or HAVING expression"
		return 0, false
	}
	spec.Values = append(spec.Values, merge.Value{Col: mb.addHidden(mb.tokenText(r[0], r[1]))})
	return len(spec.Values) - 1, true
}

// cond plans a HAVING condition the proxy evaluates on the final groups: AND, OR, NOT, comparisons and
// IS [NOT] NULL of aggregates and group columns with constants.
func (mb *mergeBuilder) cond(n *pg.Node) *merge.Cond {
	switch x := n.Node.(type) {
	case *pg.Node_BoolExpr:
		c := &merge.Cond{}
		switch x.BoolExpr.Boolop {
		case pg.BoolExprType_AND_EXPR:
			c.Op = merge.CondAnd
		case pg.BoolExprType_OR_EXPR:
			c.Op = merge.CondOr
		default:
			c.Op = merge.CondNot
		}
		for _, a := range x.BoolExpr.Args {
			ac := mb.cond(a)
			if ac == nil {
				return nil
			}
			c.Args = append(c.Args, ac)
		}
		return c
	case *pg.Node_AExpr:
		e := x.AExpr
		if e.Kind != pg.A_Expr_Kind_AEXPR_OP || len(e.Name) != 1 {
			return nil
		}
		ops := map[string]merge.CmpOp{"=": merge.CmpEq, "<>": merge.CmpNe, "!=": merge.CmpNe, "<": merge.CmpLt,
			"<=": merge.CmpLe, ">": merge.CmpGt, ">=": merge.CmpGe}
		op, ok := ops[e.Name[0].GetString_().GetSval()]
		if !ok {
			return nil
		}
		l, ok1 := mb.operand(e.Lexpr)
		r, ok2 := mb.operand(e.Rexpr)
		if !ok1 || !ok2 || l.Const >= 0 && r.Const >= 0 {
			return nil
		}
		return &merge.Cond{Op: merge.CondCmp, Cmp: op, L: l, R: r}
	case *pg.Node_FuncCall, *pg.Node_ColumnRef:
		// A boolean aggregate or column alone: it = true.
		l, ok := mb.operand(n)
		if !ok {
			return nil
		}
		mb.mp.consts = append(mb.mp.consts, planVal{kind: valTrue})
		return &merge.Cond{Op: merge.CondCmp, Cmp: merge.CmpEq, L: l, R: merge.Operand{Value: -1, Const: len(mb.mp.consts) - 1}}
	case *pg.Node_NullTest:
		l, ok := mb.operand(x.NullTest.Arg)
		if !ok || l.Const >= 0 {
			return nil
		}
		c := &merge.Cond{Op: merge.CondIsNull, L: l}
		if x.NullTest.Nulltesttype == pg.NullTestType_IS_NOT_NULL {
			c.Op = merge.CondIsNotNull
		}
		return c
	}
	return nil
}

// operand plans one side of a HAVING comparison: a constant, an aggregate call or a column.
func (mb *mergeBuilder) operand(n *pg.Node) (merge.Operand, bool) {
	if v, ok := mb.b.value(n); ok {
		mb.mp.consts = append(mb.mp.consts, v)
		return merge.Operand{Value: -1, Const: len(mb.mp.consts) - 1}, true
	}
	if cr := n.GetColumnRef(); cr != nil {
		if t := mb.target(n, false); t >= 0 {
			return merge.Operand{Value: t, Const: -1}, true
		}
		start := mb.tokenAt(cr.Location)
		if start < 0 {
			return merge.Operand{}, false
		}
		v, ok := mb.exprValue(n, [2]int{start, start + 2*len(cr.Fields) - 1})
		return merge.Operand{Value: v, Const: -1}, ok
	}
	if f := n.GetFuncCall(); f != nil && isAggCall(f) {
		v, ok := mb.exprValue(n, [2]int{})
		return merge.Operand{Value: v, Const: -1}, ok
	}
	return merge.Operand{}, false
}

// isAggCall reports whether f is an aggregate call (not a window function).
func isAggCall(f *pg.FuncCall) bool {
	return f.Over == nil && (f.AggStar || f.AggDistinct || f.AggWithinGroup || len(f.AggOrder) > 0 ||
		f.AggFilter != nil || isAggregate(f.Funcname))
}

// containsAgg reports whether an expression has an aggregate call in it (outside subqueries).
func containsAgg(n *pg.Node) bool {
	found := false
	var visit func(m protoreflect.Message)
	visit = func(m protoreflect.Message) {
		if found {
			return
		}
		switch x := m.Interface().(type) {
		case *pg.FuncCall:
			if isAggCall(x) {
				found = true
				return
			}
		case *pg.JsonArrayAgg, *pg.JsonObjectAgg:
			found = true
			return
		case *pg.SubLink, *pg.SelectStmt:
			return
		}
		m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
			if fd.Kind() != protoreflect.MessageKind {
				return true
			}
			if fd.IsList() {
				l := v.List()
				for i := 0; i < l.Len(); i++ {
					visit(l.Get(i).Message())
				}
				return true
			}
			visit(v.Message())
			return !found
		})
	}
	if n != nil {
		visit(n.ProtoReflect())
	}
	return found
}

// ShardSQL is the statement the shards prepare instead of a prepared statement's own text, "" when they
// prepare the client's.
func (p *Plan) ShardSQL() string { return p.shardSQL }

// ShardSpec is how rows of a prepared statement the shards know rewritten (ShardSQL) become the client's:
// its RowDescription, for a Describe. Nil when not rewritten.
func (p *Plan) ShardSpec(ncols int) *merge.Spec {
	if p.shardSQL == "" {
		return nil
	}
	return p.merge.specFor(ncols)
}
