package route

import (
	"sort"
	"strconv"
	"strings"

	pg "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/pgshard/pgshard/codec"
	"github.com/pgshard/pgshard/route/shard"
)

// builder turns a pg_query parse tree into a Plan. It runs only on a plan-cache miss.
type builder struct {
	s    *Schema
	sql  string     // the statement text the tree was parsed from (locations are offsets into it)
	lits [][2]int32 // its literal slots, from lex.Normalize

	insts []inst  // sharded table instances (one per mention of a sharded table)
	conds []bcond // key conditions, each on one instance

	kind      planKind
	write     bool
	all       bool        // DDL and the like: every shard
	replWrite string      // a replicated (or unlisted) table the statement writes: every shard
	unchecked bool        // no cross-shard checks: EXPLAIN (a plan is shown, not rows), CREATE TABLE AS
	explain   explainMode // EXPLAIN: checked only for the coordinator step, whose plan it shows
	hard      *codec.Error
	soft      *codec.Error
	shapes    shapeSet
	aggName   string // the first aggregate met at a counted level, for the message
	word      string // SELECT, UPDATE, DELETE, ...: the statement kind, for messages

	// The top-level SELECT branches (one, or the branches of a set operation): each produces rows of the
	// result, which concatenation across shards keeps right only if the branch reads a sharded table in its
	// FROM list and all its sharded tables are joined on their keys.
	branch   int // the branch being planned, -1 outside any (WITH of the statement, UPDATE, DELETE, ...)
	branches []bool
	cteReads int // references to WITH queries that read sharded tables
	sublinks int // depth of subquery expressions (EXISTS, IN, scalar) being planned
	lateral  int // depth of LATERAL derived tables being planned

	// INSERT ... VALUES into a sharded table.
	insertRule  *keyRule
	insertTable string
	keyQuery    string     // INSERT without a column list: the catalog query of its key's position (positional.go)
	insertKey   string     // its key column
	posRows     [][]posVal // and the values of its rows
	rows        []planVal

	copyPlan *CopyIn // COPY FROM STDIN into a sharded table

	refs []tableRef // every mention of a sharded table in a FROM list, for the coordinator step (coordinate.go)

	top         *pg.SelectStmt // the statement's own SELECT, whose rows merging across shards can combine
	innerShapes bool           // shapes in derived tables or WITH queries: no merging
	cursor      bool           // DECLARE CURSOR, COPY (query) TO: rows never merged
	copyOut     *CopyOut       // COPY ... TO STDOUT
}

// inst is one mention of a sharded table in a statement.
type inst struct {
	rule    *keyRule // nil while a column-rule table's key column is not known yet
	colRule bool     // sharded by a column rule (not listed by name)
	name    string
	parent  int // union-find over instances whose keys are equal
	branch  int // the top-level branch it belongs to (-1: all of them)
}

// bcond is inst.key = one of vals.
type bcond struct {
	inst int
	vals []planVal
}

// scope is one FROM list (plus the WITH names) that column references resolve against.
type scope struct {
	parent *scope
	items  []item
	ctes   []cte
}

// cte is a WITH query's name and whether it reads sharded tables.
type cte struct {
	name    string
	sharded bool
}

// item is one relation of a FROM list.
type item struct {
	name   string // alias, or the relation name
	schema string // the relation's schema when not aliased
	inst   int    // the sharded instance, or -1
}

// level collects what a SELECT level's expressions contain.
type level struct {
	agg    bool
	window bool
}

// condMode says what a boolean expression may contribute to the key conditions.
type condMode uint8

const (
	condNone  condMode = iota // under OR / NOT, or not a filter: nothing
	condMerge                 // the ON clause of an outer join: only key = key equalities (co-located rows)
	condAll                   // reached through AND from a WHERE or inner join: key = value too
)

type shapeSet uint16

const (
	shapeAgg shapeSet = 1 << iota
	shapeGroup
	shapeHaving
	shapeDistinct
	shapeWindow
	shapeOrder
	shapeLimit
	shapeOffset
	shapeUnion
	shapeIntersect
	shapeExcept
)

func (b *builder) refuseHard(msg string) {
	if b.hard == nil {
		b.hard = codec.NewError(codec.SQLStateFeatureNotSupported, msg)
	}
}

func (b *builder) refuseSoft(msg string) {
	if b.soft == nil {
		b.soft = codec.NewError(codec.SQLStateFeatureNotSupported, msg)
	}
}

// buildPlan plans the statements of one parse (normally one).
func buildPlan(s *Schema, sql string, lits [][2]int32, stmts []*pg.RawStmt) *Plan {
	b := &builder{s: s, sql: sql, lits: lits, branch: -1}
	if len(stmts) != 1 {
		// Nothing but comments, or several statements where one was expected (a prepared statement:
		// the server refuses it).
		return &Plan{kind: planUnknown}
	}
	b.stmt(nil, stmts[0].Stmt, true)
	return b.finish()
}

// stmt plans one statement node. top is false for a statement inside another (WITH, EXPLAIN, COPY).
func (b *builder) stmt(sc *scope, n *pg.Node, top bool) {
	if n == nil {
		return
	}
	switch x := n.Node.(type) {
	case *pg.Node_SelectStmt:
		if b.word == "" {
			b.word = "SELECT"
		}
		if top && b.top == nil {
			b.top = x.SelectStmt
		}
		b.selectStmt(sc, x.SelectStmt, top)
		if x.SelectStmt.IntoClause != nil { // SELECT ... INTO: creates a table
			b.all, b.write = true, true
		}
	case *pg.Node_InsertStmt:
		b.insert(sc, x.InsertStmt, top)
	case *pg.Node_UpdateStmt:
		b.update(sc, x.UpdateStmt)
	case *pg.Node_DeleteStmt:
		b.delete(sc, x.DeleteStmt)
	case *pg.Node_MergeStmt:
		b.mergeStmt(sc, x.MergeStmt)
	case *pg.Node_CopyStmt:
		b.copy(sc, x.CopyStmt)
	case *pg.Node_ExplainStmt:
		b.unchecked = true
		b.explain = explainOf(x.ExplainStmt)
		b.stmt(sc, x.ExplainStmt.Query, top)
	case *pg.Node_DeclareCursorStmt:
		b.cursor = true // FETCH goes to one shard: a cursor's rows are never merged
		b.stmt(sc, x.DeclareCursorStmt.Query, top)
	case *pg.Node_CreateTableAsStmt:
		// CREATE TABLE AS, CREATE MATERIALIZED VIEW: on every shard, each from its own rows.
		b.all, b.write = true, true
		b.unchecked = true // no shape checks: nothing is returned
		b.stmt(sc, x.CreateTableAsStmt.Query, false)
	case *pg.Node_TransactionStmt, *pg.Node_VariableSetStmt, *pg.Node_VariableShowStmt, *pg.Node_DiscardStmt,
		*pg.Node_DeallocateStmt, *pg.Node_PrepareStmt, *pg.Node_ExecuteStmt, *pg.Node_FetchStmt,
		*pg.Node_ClosePortalStmt, *pg.Node_ListenStmt, *pg.Node_UnlistenStmt, *pg.Node_NotifyStmt,
		*pg.Node_LoadStmt, *pg.Node_ConstraintsSetStmt:
		// Session and transaction control: the proxy handles these itself.
		if top {
			b.kind = planSession
		}
	default:
		// DDL (CREATE, ALTER, DROP, TRUNCATE, COMMENT, GRANT, CREATE INDEX, VACUUM, ANALYZE, REINDEX,
		// CLUSTER, LOCK, REFRESH MATERIALIZED VIEW, CREATE TABLE AS, ...), DO and CALL: every shard.
		b.all, b.write = true, true
	}
}

// finish builds the Plan.
func (b *builder) finish() *Plan {
	p := &Plan{kind: b.kind, write: b.write, hard: b.hard, soft: b.soft, all: b.all || b.replWrite != "", copyOut: b.copyOut}
	if b.copyPlan != nil && p.hard == nil && p.soft == nil {
		return &Plan{kind: planRoute, write: true, all: true, copy: b.copyPlan, keyMapper: b.copyPlan.Mapper}
	}
	if p.kind != planRoute {
		p.hard, p.soft, p.all = nil, nil, false
		return p
	}
	firstSharded := ""
	if len(b.insts) > 0 {
		firstSharded = b.insts[0].name
	}
	if b.replWrite != "" && firstSharded != "" {
		b.refuseSoft("writing replicated table " + b.replWrite + " from sharded table " + firstSharded +
			" is not supported: each shard would write different rows")
		p.soft = b.soft
	}
	if b.rows != nil && (firstSharded != "" || p.all) {
		other := firstSharded
		if other == "" {
			other = b.replWrite
		}
		b.refuseSoft("INSERT into sharded table " + b.insertTable + " that also reads or writes table " + other +
			" is not supported yet: insert with VALUES of literals or parameters only, or add a " +
			"/* pgshard: shard=N */ comment")
		p.soft = b.soft
	}

	// Column-rule tables whose key column the statement never names are taken to have the first one.
	for i := range b.insts {
		if b.insts[i].rule == nil && len(b.s.byColumn) > 0 {
			b.insts[i].rule = b.s.byColumn[0]
		}
	}
	// Key classes: the union-find roots, each with its members' distinct mappers and all their conditions.
	classOf := make(map[int]int)
	for i := range b.insts {
		r := b.find(i)
		ci, ok := classOf[r]
		if !ok {
			ci = len(p.classes)
			classOf[r] = ci
			p.classes = append(p.classes, planClass{})
		}
		c := &p.classes[ci]
		if m := b.insts[i].rule.mapper; !containsMapper(c.mappers, m) {
			c.mappers = append(c.mappers, m)
		}
	}
	// Conditions grouped by class.
	sort.SliceStable(b.conds, func(i, j int) bool { return classOf[b.find(b.conds[i].inst)] < classOf[b.find(b.conds[j].inst)] })
	for _, cd := range b.conds {
		c := &p.classes[classOf[b.find(cd.inst)]]
		if c.cn == 0 {
			c.c0 = int32(len(p.conds))
		}
		c.cn++
		p.conds = append(p.conds, planCond{v0: int32(len(p.vals)), vn: int32(len(cd.vals))})
		p.vals = append(p.vals, cd.vals...)
	}

	if b.rows != nil {
		p.rows = b.rows
		p.keyQuery, p.posRows, p.insertTable = b.keyQuery, b.posRows, b.insertTable
		if p.keyQuery != "" {
			p.keyMissing = codec.NewError(codec.SQLStateFeatureNotSupported, "INSERT into sharded table "+b.insertTable+
				": the table has no shard key column "+b.insertKey).
				WithHint("give the table its key column, or list it in replicated_tables if it is not sharded")
		}
		p.rowMapper = b.insertRule.mapper
		p.spread = codec.NewError(codec.SQLStateFeatureNotSupported, "INSERT into sharded table "+
			b.insertTable+" with rows of several shards is not supported in a query string of several "+
			"statements: send it alone")
	}

	// The key hints' mapper and the key named in messages.
	keyName := ""
	switch {
	case b.insertRule != nil:
		p.keyMapper, keyName = b.insertRule.mapper, b.insertRule.column
	case len(b.insts) > 0:
		p.keyMapper, keyName = b.insts[0].rule.mapper, b.insts[0].rule.column
	case b.s.first != nil:
		p.keyMapper = b.s.first.mapper
	}
	if p.keyMapper == nil {
		p.noKeyErr = codec.NewError(codec.SQLStateInvalidParameterValue, "pgshard key= needs a sharded table: "+
			"database "+strconv.Quote(b.s.name)+" has no sharded_tables (use shard=N)")
	}
	p.mirror = p.all && len(b.insts) == 0 && b.rows == nil
	if b.unchecked && b.explain == explainNone {
		return p
	}
	word := b.word
	if word == "" {
		word = "statement"
	}
	key := "the shard key"
	if keyName != "" {
		key += " (" + keyName + " = ...)"
	}
	const fix = " to the WHERE clause or a /* pgshard: shard=N */ comment"
	a, c := b.notColocated()
	switch {
	case b.shapes != 0:
		why := ""
		if b.shapes&shapeWindow != 0 {
			why = "window functions"
		} else if b.top != nil && !b.cursor && !b.innerShapes && a == "" && !b.unpartitioned() && len(b.insts) > 0 {
			p.merge, why = b.planMerge(b.top, b.shapes&(shapeAgg|shapeGroup|shapeHaving) != 0)
			if p.merge != nil {
				break
			}
		}
		if why != "" {
			p.multi = codec.NewError(codec.SQLStateFeatureNotSupported, "cross-shard "+word+" with "+why+
				" is not supported: add "+key+fix)
			break
		}
		p.multi = codec.NewError(codec.SQLStateFeatureNotSupported, "cross-shard "+word+" with "+
			b.shapeNames()+" is not supported yet: add "+key+fix)
	case a != "":
		p.multi = codec.NewError(codec.SQLStateFeatureNotSupported, "cross-shard "+word+" combining rows of "+
			a+" and "+c+" not joined on their shard keys is not supported yet: join them on the shard key, or "+
			"add "+key+fix)
	case b.unpartitioned():
		p.multi = codec.NewError(codec.SQLStateFeatureNotSupported, "cross-shard "+word+" whose rows do not "+
			"come from a sharded table (it reads "+firstSharded+" only in a subquery) is not supported yet: add "+
			key+fix)
	}
	refusal := p.multi
	coordinated := refusal != nil && b.word == "SELECT" && !b.write && !b.cursor && b.copyOut == nil && len(b.refs) > 0
	if b.explain != explainNone {
		// A plan is no rows to merge or refuse: each shard's own, as it comes, unless the coordinator step would
		// answer the statement, whose plan is then the coordinating shard's (coordinate.go).
		p.merge, p.multi = nil, nil
	}
	if coordinated {
		// A read no merge of the shards' rows answers exactly: the coordinator step answers it instead.
		p.coordinate = &coordination{sql: b.sql, refs: pushDown(b.refs), explain: b.explain, refusal: refusal}
	}
	return p
}

// notColocated returns two sharded tables whose rows one result row may combine although equal keys do not
// put them on one shard (not joined on their keys, or mapped differently), or "".
func (b *builder) notColocated() (string, string) {
	type group struct {
		root int
		m    *shard.Mapper
	}
	n := len(b.branches)
	if n == 0 {
		n = 1
	}
	for br := 0; br < n; br++ {
		var first group
		firstName := ""
		for i := range b.insts {
			in := &b.insts[i]
			if len(b.branches) > 0 && in.branch != br && in.branch != -1 {
				continue
			}
			g := group{b.find(i), in.rule.mapper}
			switch {
			case firstName == "":
				first, firstName = g, in.name
			case g != first:
				return firstName, in.name
			}
		}
	}
	return "", ""
}

// unpartitioned reports a result branch whose FROM list reads no sharded table while the statement reads
// some: run on several shards, each would return its rows again.
func (b *builder) unpartitioned() bool {
	if len(b.insts) == 0 {
		return false
	}
	for _, fromSharded := range b.branches {
		if !fromSharded {
			return true
		}
	}
	return false
}

func containsMapper(ms []*shard.Mapper, m *shard.Mapper) bool {
	for _, x := range ms {
		if x == m {
			return true
		}
	}
	return false
}

func (b *builder) shapeNames() string {
	var names []string
	for _, s := range []struct {
		bit  shapeSet
		name string
	}{
		{shapeAgg, "aggregate " + b.aggName}, {shapeGroup, "GROUP BY"}, {shapeHaving, "HAVING"},
		{shapeDistinct, "DISTINCT"}, {shapeWindow, "window functions"}, {shapeOrder, "ORDER BY"},
		{shapeLimit, "LIMIT"}, {shapeOffset, "OFFSET"}, {shapeUnion, "UNION"}, {shapeIntersect, "INTERSECT"},
		{shapeExcept, "EXCEPT"},
	} {
		if b.shapes&s.bit != 0 {
			names = append(names, s.name)
		}
	}
	if len(names) == 1 {
		return names[0]
	}
	return strings.Join(names[:len(names)-1], ", ") + " and " + names[len(names)-1]
}

// find is the union-find root of instance i.
func (b *builder) find(i int) int {
	for b.insts[i].parent != i {
		b.insts[i].parent = b.insts[b.insts[i].parent].parent
		i = b.insts[i].parent
	}
	return i
}

func (b *builder) unite(i, j int) {
	ri, rj := b.find(i), b.find(j)
	if ri != rj {
		if rj < ri {
			ri, rj = rj, ri
		}
		b.insts[rj].parent = ri
	}
}

// relation registers a table named in a FROM list, an UPDATE/DELETE target or a COPY, and returns its sharded
// instance or -1. write: the statement writes it.
func (b *builder) relation(sc *scope, rv *pg.RangeVar, write bool) int {
	if rv == nil {
		return -1
	}
	it := item{name: rv.Relname, schema: rv.Schemaname, inst: -1}
	if rv.Alias != nil && rv.Alias.Aliasname != "" {
		it.name, it.schema = rv.Alias.Aliasname, ""
	}
	defer func() {
		if sc != nil {
			sc.items = append(sc.items, it)
		}
	}()
	if rv.Schemaname == "" {
		if c := sc.cte(rv.Relname); c != nil {
			if c.sharded {
				b.cteReads++
			}
			return -1
		}
	}
	kind, rule := b.s.lookup(rv.Schemaname, rv.Relname)
	switch kind {
	case relCatalog:
	case relReplicated:
		if write && b.replWrite == "" {
			b.replWrite = rv.Relname
		}
	case relUnlisted:
		b.unlisted(rv)
		if write && b.replWrite == "" {
			b.replWrite = rv.Relname
		}
	case relSharded, relColumn:
		b.refs = append(b.refs, tableRef{at: rv.Location, aliased: rv.Alias != nil, only: !rv.Inh, table: rv.Relname})
		it.inst = len(b.insts)
		b.insts = append(b.insts, inst{rule: rule, colRule: kind == relColumn, name: rv.Relname, parent: it.inst,
			branch: b.branch})
	}
	return it.inst
}

// unlisted refuses a table in no list when the configuration asks for it.
func (b *builder) unlisted(rv *pg.RangeVar) {
	if !b.s.unlistedErr || rv.Schemaname == "pg_temp" {
		return
	}
	name := rv.Relname
	if rv.Schemaname != "" {
		name = rv.Schemaname + "." + name
	}
	b.refuseHard("table " + strconv.Quote(name) + " is neither sharded nor replicated: list it in sharded_tables " +
		"or replicated_tables of database " + strconv.Quote(b.s.name) + " (unlisted_tables: error)")
}

// cte returns the WITH query called name visible in sc, or nil.
func (sc *scope) cte(name string) *cte {
	for ; sc != nil; sc = sc.parent {
		for i := len(sc.ctes) - 1; i >= 0; i-- {
			if sc.ctes[i].name == name {
				return &sc.ctes[i]
			}
		}
	}
	return nil
}

// with plans the queries of a WITH clause and makes their names visible in sc.
func (b *builder) with(sc *scope, w *pg.WithClause) {
	if w == nil {
		return
	}
	for _, n := range w.Ctes {
		c := n.GetCommonTableExpr()
		if c == nil {
			continue
		}
		if w.Recursive {
			sc.ctes = append(sc.ctes, cte{name: c.Ctename})
		}
		before, reads := len(b.insts), b.cteReads
		b.stmt(sc, c.Ctequery, false)
		sharded := len(b.insts) > before || b.cteReads > reads
		if w.Recursive {
			sc.ctes[len(sc.ctes)-1].sharded = sharded
		} else {
			sc.ctes = append(sc.ctes, cte{name: c.Ctename, sharded: sharded})
		}
	}
}

// selectStmt plans one SELECT (or VALUES, or set operation) level. top: its rows are the statement's result.
func (b *builder) selectStmt(outer *scope, s *pg.SelectStmt, top bool) {
	if s == nil {
		return
	}
	sc := &scope{parent: outer}
	b.with(sc, s.WithClause)
	lv := &level{}
	before := len(b.insts)
	if s.Op != pg.SetOperation_SETOP_NONE && s.Op != pg.SetOperation_SET_OPERATION_UNDEFINED {
		b.selectStmt(sc, s.Larg, top)
		b.selectStmt(sc, s.Rarg, top)
		if top || len(b.insts) > before && b.sublinks == 0 {
			switch {
			case s.Op == pg.SetOperation_SETOP_UNION && !s.All:
				b.shapes |= shapeUnion
			case s.Op == pg.SetOperation_SETOP_INTERSECT:
				b.shapes |= shapeIntersect
			case s.Op == pg.SetOperation_SETOP_EXCEPT:
				b.shapes |= shapeExcept
			}
			b.clauseShapes(s, lv)
		}
		b.walkList(sc, lv, s.SortClause)
		b.walk(sc, lv, s.LimitCount)
		b.walk(sc, lv, s.LimitOffset)
		return
	}
	if len(s.LockingClause) > 0 { // FOR UPDATE / SHARE: row locks, a primary's job
		b.write = true
	}
	outerBranch := b.branch
	if top {
		b.branch = len(b.branches)
		b.branches = append(b.branches, false)
	}
	reads := b.cteReads
	for _, f := range s.FromClause {
		n := len(b.refs)
		b.fromItem(sc, lv, f)
		if _, direct := f.Node.(*pg.Node_RangeVar); direct && len(b.refs) == n+1 {
			// A mention of its own in this FROM list (not in a join): this level's WHERE may filter its gather.
			r := &b.refs[n]
			r.where, r.alias = s.WhereClause, sc.items[len(sc.items)-1].name // relation added the mention's item
			r.unqualified = len(s.FromClause) == 1 && b.sublinks == 0 && b.lateral == 0
		}
	}
	fromSharded := len(b.insts) > before || b.cteReads > reads
	if top {
		b.branches[b.branch] = fromSharded
		defer func() { b.branch = outerBranch }()
	}
	// A level's shape breaks concatenation when its rows make the result: the top level, and derived tables
	// and WITH queries over sharded tables. A subquery expression is evaluated per row of its own shard:
	// it is right when it reads the same rows as its outer query (joined on the key, notColocated checks).
	counted := top || fromSharded && b.sublinks == 0
	b.where(sc, lv, s.WhereClause, condAll)
	b.walkList(sc, lv, s.TargetList)
	b.walkList(sc, lv, s.DistinctClause)
	b.walkList(sc, lv, s.GroupClause)
	b.walk(sc, lv, s.HavingClause)
	b.walkList(sc, lv, s.WindowClause)
	b.walkList(sc, lv, s.SortClause)
	b.walk(sc, lv, s.LimitCount)
	b.walk(sc, lv, s.LimitOffset)
	for _, row := range s.ValuesLists {
		b.walk(sc, lv, row)
	}
	if counted {
		before := b.shapes
		b.clauseShapes(s, lv)
		if !top && b.shapes != before {
			b.innerShapes = true
		}
	}
}

// clauseShapes records the shapes of a counted SELECT level that plain concatenation of shard results breaks.
func (b *builder) clauseShapes(s *pg.SelectStmt, lv *level) {
	if lv.agg {
		b.shapes |= shapeAgg
	}
	if lv.window || len(s.WindowClause) > 0 {
		b.shapes |= shapeWindow
	}
	if len(s.GroupClause) > 0 {
		b.shapes |= shapeGroup
	}
	if s.HavingClause != nil {
		b.shapes |= shapeHaving
	}
	if len(s.DistinctClause) > 0 {
		b.shapes |= shapeDistinct
	}
	if len(s.SortClause) > 0 {
		b.shapes |= shapeOrder
	}
	if s.LimitCount != nil {
		b.shapes |= shapeLimit
	}
	if s.LimitOffset != nil {
		b.shapes |= shapeOffset
	}
}

// fromItem plans one entry of a FROM list and adds its relations to sc.
func (b *builder) fromItem(sc *scope, lv *level, n *pg.Node) {
	if n == nil {
		return
	}
	switch x := n.Node.(type) {
	case *pg.Node_RangeVar:
		b.relation(sc, x.RangeVar, false)
	case *pg.Node_JoinExpr:
		j := x.JoinExpr
		left := len(sc.items)
		b.fromItem(sc, lv, j.Larg)
		right := len(sc.items)
		b.fromItem(sc, lv, j.Rarg)
		mode := condMerge
		if j.Jointype == pg.JoinType_JOIN_INNER {
			mode = condAll
		}
		for _, u := range j.UsingClause {
			col := u.GetString_().GetSval()
			l, r := b.keyItem(sc.items[left:right], col), b.keyItem(sc.items[right:], col)
			if l >= 0 && r >= 0 {
				b.unite(l, r)
			}
		}
		b.where(sc, lv, j.Quals, mode)
	case *pg.Node_RangeSubselect:
		rs := x.RangeSubselect
		if rs.Lateral {
			b.lateral++ // its columns may be the FROM list's before it
			defer func() { b.lateral-- }()
		}
		b.stmt(sc, rs.Subquery, false)
		name := ""
		if rs.Alias != nil {
			name = rs.Alias.Aliasname
		}
		sc.items = append(sc.items, item{name: name, inst: -1})
	case *pg.Node_RangeFunction:
		b.walkList(sc, lv, x.RangeFunction.Functions)
		name := ""
		if x.RangeFunction.Alias != nil {
			name = x.RangeFunction.Alias.Aliasname
		}
		sc.items = append(sc.items, item{name: name, inst: -1})
	case *pg.Node_RangeTableSample:
		b.fromItem(sc, lv, x.RangeTableSample.Relation)
	default:
		b.walk(sc, lv, n)
		sc.items = append(sc.items, item{inst: -1})
	}
}

// keyItem returns the one sharded instance among items whose key column is col, or -1.
func (b *builder) keyItem(items []item, col string) int {
	found := -1
	for _, it := range items {
		if it.inst >= 0 && b.mayBeKey(it.inst, col) {
			if found >= 0 {
				return -1
			}
			found = it.inst
		}
	}
	if found >= 0 {
		b.isKey(found, col)
	}
	return found
}

// mayBeKey reports whether col is (or, for a column-rule table not yet bound, could be) i's key column.
func (b *builder) mayBeKey(i int, col string) bool {
	in := &b.insts[i]
	if in.rule != nil {
		return in.rule.column == col
	}
	return b.s.columnRule(col) != nil
}

// isKey reports whether col is i's key column, binding a column-rule table to the rule of col.
func (b *builder) isKey(i int, col string) bool {
	in := &b.insts[i]
	if in.rule != nil {
		return in.rule.column == col
	}
	if r := b.s.columnRule(col); r != nil {
		in.rule = r
		return true
	}
	return false
}

// keyRef returns the sharded instance whose key column n names, or -1.
func (b *builder) keyRef(sc *scope, n *pg.Node) int {
	cr := n.GetColumnRef()
	if cr == nil || len(cr.Fields) == 0 || len(cr.Fields) > 3 {
		return -1
	}
	var names [3]string
	for i, f := range cr.Fields {
		s := f.GetString_()
		if s == nil {
			return -1
		}
		names[i] = s.Sval
	}
	switch len(cr.Fields) {
	case 1:
		// Unqualified: only the innermost FROM list, and only when one sharded table there can own it.
		col := names[0]
		if sc == nil {
			return -1
		}
		return b.keyItem(sc.items, col)
	case 2:
		for s := sc; s != nil; s = s.parent {
			for k := len(s.items) - 1; k >= 0; k-- {
				it := s.items[k]
				if it.name == names[0] {
					if it.inst >= 0 && b.isKey(it.inst, names[1]) {
						return it.inst
					}
					return -1
				}
			}
		}
	case 3:
		for s := sc; s != nil; s = s.parent {
			for k := len(s.items) - 1; k >= 0; k-- {
				it := s.items[k]
				if it.name == names[1] && it.schema == names[0] {
					if it.inst >= 0 && b.isKey(it.inst, names[2]) {
						return it.inst
					}
					return -1
				}
			}
		}
	}
	return -1
}

// where plans a boolean expression: key conditions reached through AND, and whatever subqueries it holds.
func (b *builder) where(sc *scope, lv *level, n *pg.Node, mode condMode) {
	if n == nil {
		return
	}
	switch x := n.Node.(type) {
	case *pg.Node_BoolExpr:
		m := mode
		if x.BoolExpr.Boolop != pg.BoolExprType_AND_EXPR {
			m = condNone
		}
		for _, a := range x.BoolExpr.Args {
			b.where(sc, lv, a, m)
		}
		return
	case *pg.Node_AExpr:
		if mode != condNone {
			b.keyExpr(sc, x.AExpr, mode)
		}
	}
	b.walk(sc, lv, n)
}

// keyExpr records key = value, key IN (values) and key = key.
func (b *builder) keyExpr(sc *scope, e *pg.A_Expr, mode condMode) {
	if len(e.Name) != 1 || e.Name[0].GetString_().GetSval() != "=" {
		return
	}
	switch e.Kind {
	case pg.A_Expr_Kind_AEXPR_OP:
		l, r := b.keyRef(sc, e.Lexpr), b.keyRef(sc, e.Rexpr)
		switch {
		case l >= 0 && r >= 0:
			b.unite(l, r)
		case mode != condAll:
		case l >= 0:
			if v, ok := b.value(e.Rexpr); ok {
				b.conds = append(b.conds, bcond{inst: l, vals: []planVal{v}})
			}
		case r >= 0:
			if v, ok := b.value(e.Lexpr); ok {
				b.conds = append(b.conds, bcond{inst: r, vals: []planVal{v}})
			}
		}
	case pg.A_Expr_Kind_AEXPR_IN:
		if mode != condAll {
			return
		}
		l := b.keyRef(sc, e.Lexpr)
		list := e.Rexpr.GetList()
		if l < 0 || list == nil {
			return
		}
		vals := make([]planVal, 0, len(list.Items))
		for _, it := range list.Items {
			v, ok := b.value(it)
			if !ok {
				return
			}
			vals = append(vals, v)
		}
		b.conds = append(b.conds, bcond{inst: l, vals: vals})
	}
}

// value reads a key value: a literal (by its slot), $n, NULL, or a cast of one of them.
func (b *builder) value(n *pg.Node) (planVal, bool) {
	for n != nil {
		switch x := n.Node.(type) {
		case *pg.Node_TypeCast:
			n = x.TypeCast.Arg
			continue
		case *pg.Node_ParamRef:
			if x.ParamRef.Number < 1 {
				return planVal{}, false
			}
			return planVal{kind: valParam, n: x.ParamRef.Number - 1}, true
		case *pg.Node_AConst:
			c := x.AConst
			if c.Isnull {
				return planVal{kind: valNull}, true
			}
			if c.GetBoolval() != nil {
				return planVal{}, false
			}
			return b.slot(c.Location)
		}
		return planVal{}, false
	}
	return planVal{}, false
}

// slot finds the literal slot of a constant at byte offset loc: a slot starting there, or a minus sign there
// followed (past whitespace and comments) by a slot. Constants with no slot are refused rather than read from
// the tree: a cached plan must never hold a literal value.
func (b *builder) slot(loc int32) (planVal, bool) {
	i := sort.Search(len(b.lits), func(i int) bool { return b.lits[i][0] >= loc })
	if i < len(b.lits) && b.lits[i][0] == loc {
		return planVal{kind: valSlot, n: int32(i)}, true
	}
	if loc < 0 || int(loc) >= len(b.sql) || b.sql[loc] != '-' || i >= len(b.lits) {
		return planVal{}, false
	}
	if onlySpace(b.sql[loc+1 : b.lits[i][0]]) {
		return planVal{kind: valNegSlot, n: int32(i)}, true
	}
	return planVal{}, false
}

// onlySpace reports whether s holds only whitespace and comments.
func onlySpace(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v':
		case c == '-' && i+1 < len(s) && s[i+1] == '-':
			for i < len(s) && s[i] != '\n' && s[i] != '\r' {
				i++
			}
		case c == '/' && i+1 < len(s) && s[i+1] == '*':
			k := strings.Index(s[i+2:], "*/")
			if k < 0 {
				return false
			}
			i += k + 3
		default:
			return false
		}
	}
	return true
}

// insert plans an INSERT.
func (b *builder) insert(outer *scope, s *pg.InsertStmt, top bool) {
	b.write = true
	if b.word == "" {
		b.word = "INSERT"
	}
	sc := &scope{parent: outer}
	b.with(sc, s.WithClause)
	rv := s.Relation
	if rv == nil {
		return
	}
	kind, rule := b.s.lookup(rv.Schemaname, rv.Relname)
	lv := &level{}
	switch kind {
	case relUnlisted:
		b.unlisted(rv)
		fallthrough
	case relReplicated:
		if b.replWrite == "" {
			b.replWrite = rv.Relname
		}
	case relSharded, relColumn:
		if !top {
			b.refuseSoft("INSERT into sharded table " + rv.Relname + " inside a WITH query or another " +
				"statement is not supported yet: insert with a statement of its own")
		} else {
			b.insertSharded(sc, lv, s, rule)
		}
	}
	if b.rows == nil {
		b.stmt(sc, s.SelectStmt, false)
	}
	if oc := s.OnConflictClause; oc != nil {
		b.walkList(sc, lv, oc.TargetList)
		b.walk(sc, lv, oc.WhereClause)
	}
	b.walkList(sc, lv, s.ReturningList)
}

// insertSharded plans INSERT ... VALUES into a sharded table: each row's key value.
func (b *builder) insertSharded(sc *scope, lv *level, s *pg.InsertStmt, rule *keyRule) {
	table := s.Relation.Relname
	var cols []string
	for _, c := range s.Cols {
		rt := c.GetResTarget()
		name := ""
		if rt != nil && len(rt.Indirection) == 0 {
			name = rt.Name
		}
		cols = append(cols, name)
	}
	if rule == nil { // a column rule: the first whose column is in the column list
		for _, r := range b.s.byColumn {
			if slicesIndex(cols, r.column) >= 0 {
				rule = r
				break
			}
		}
		if rule == nil {
			rule = b.s.byColumn[0]
		}
	}
	b.insertRule, b.insertTable = rule, table
	key := rule.column
	give := "give the shard key column " + key + " a value"
	if oc := s.OnConflictClause; oc != nil {
		for _, t := range oc.TargetList {
			if rt := t.GetResTarget(); rt != nil && rt.Name == key {
				b.refuseHard(keyChange(key))
			}
		}
	}
	if s.SelectStmt == nil {
		b.refuseSoft("INSERT ... DEFAULT VALUES into sharded table " + table + " cannot be routed: " + give)
		return
	}
	sel := s.SelectStmt.GetSelectStmt()
	if sel == nil || len(sel.ValuesLists) == 0 || sel.WithClause != nil || len(sel.SortClause) > 0 ||
		sel.LimitCount != nil || sel.LimitOffset != nil {
		b.refuseSoft("INSERT ... SELECT into sharded table " + table + " is not supported yet: insert the rows " +
			"with VALUES, or add a /* pgshard: shard=N */ comment when they all belong to one shard")
		return
	}
	if len(cols) == 0 {
		b.insertPositional(sc, lv, s.Relation, sel, key)
		return
	}
	ki := slicesIndex(cols, key)
	if ki < 0 {
		b.refuseSoft("INSERT into sharded table " + table + " without its shard key: " + give)
		return
	}
	rows := make([]planVal, 0, len(sel.ValuesLists))
	for r, row := range sel.ValuesLists {
		items := row.GetList().GetItems()
		if ki >= len(items) {
			b.refuseSoft("INSERT into sharded table " + table + ": row " + strconv.Itoa(r+1) +
				" has no value for the shard key: " + give)
			return
		}
		if items[ki].GetSetToDefault() != nil {
			b.refuseSoft("INSERT into sharded table " + table + ": row " + strconv.Itoa(r+1) +
				" sets the shard key to DEFAULT, which cannot be routed: " + give)
			return
		}
		v, ok := b.value(items[ki])
		if !ok {
			b.refuseSoft("INSERT into sharded table " + table + ": row " + strconv.Itoa(r+1) +
				" computes the shard key with an expression: " + give + " as a literal or a $n parameter")
			return
		}
		rows = append(rows, v)
		b.walk(sc, lv, row)
	}
	b.rows = rows
}

func slicesIndex(s []string, v string) int {
	for i := range s {
		if s[i] == v {
			return i
		}
	}
	return -1
}

func keyChange(key string) string {
	return "changing the shard key of a row (" + key + ") is not supported: delete and insert it instead"
}

// update plans an UPDATE.
func (b *builder) update(outer *scope, s *pg.UpdateStmt) {
	b.write = true
	if b.word == "" {
		b.word = "UPDATE"
	}
	sc := &scope{parent: outer}
	b.with(sc, s.WithClause)
	lv := &level{}
	t := b.relation(sc, s.Relation, true)
	if t >= 0 {
		for _, n := range s.TargetList {
			if rt := n.GetResTarget(); rt != nil && b.isKey(t, rt.Name) {
				b.refuseHard(keyChange(rt.Name))
			}
		}
	}
	for _, f := range s.FromClause {
		b.fromItem(sc, lv, f)
	}
	b.where(sc, lv, s.WhereClause, condAll)
	b.walkList(sc, lv, s.TargetList)
	b.walkList(sc, lv, s.ReturningList)
}

// delete plans a DELETE.
func (b *builder) delete(outer *scope, s *pg.DeleteStmt) {
	b.write = true
	if b.word == "" {
		b.word = "DELETE"
	}
	sc := &scope{parent: outer}
	b.with(sc, s.WithClause)
	lv := &level{}
	b.relation(sc, s.Relation, true)
	for _, f := range s.UsingClause {
		b.fromItem(sc, lv, f)
	}
	b.where(sc, lv, s.WhereClause, condAll)
	b.walkList(sc, lv, s.ReturningList)
}

// merge plans a MERGE: into a replicated table on every shard; into a sharded table not yet.
func (b *builder) mergeStmt(outer *scope, s *pg.MergeStmt) {
	b.write = true
	if b.word == "" {
		b.word = "MERGE"
	}
	sc := &scope{parent: outer}
	b.with(sc, s.WithClause)
	lv := &level{}
	if rv := s.Relation; rv != nil {
		if kind, _ := b.s.lookup(rv.Schemaname, rv.Relname); kind == relSharded || kind == relColumn {
			b.refuseSoft("MERGE into sharded table " + rv.Relname + " is not supported yet: use INSERT ... " +
				"ON CONFLICT, UPDATE or DELETE with the shard key")
			return
		}
	}
	b.relation(sc, s.Relation, true)
	b.fromItem(sc, lv, s.SourceRelation)
	b.where(sc, lv, s.JoinCondition, condNone)
	b.walkList(sc, lv, s.MergeWhenClauses)
	b.walkList(sc, lv, s.ReturningList)
}

// copy plans a COPY.
func (b *builder) copy(sc *scope, s *pg.CopyStmt) {
	if b.word == "" {
		b.word = "COPY"
	}
	if !s.IsFrom {
		// Every shard's rows, concatenated (one header).
		b.copyOut = &CopyOut{}
		for _, n := range s.Options {
			if de := n.GetDefElem(); de != nil {
				switch de.Defname {
				case "format":
					b.copyOut.Binary = strings.EqualFold(defString(de.Arg), "binary")
				case "header":
					b.copyOut.Header = de.Arg == nil || defBool(defString(de.Arg))
				}
			}
		}
	}
	if s.Query != nil {
		b.cursor = true // its rows are COPY data: never merged
		b.stmt(sc, s.Query, true)
		return
	}
	rv := s.Relation
	if rv == nil {
		return
	}
	if !s.IsFrom {
		b.relation(sc, rv, false)
		return
	}
	b.write = true
	switch kind, rule := b.s.lookup(rv.Schemaname, rv.Relname); kind {
	case relSharded:
		b.copyIn(s, rule)
		return
	case relColumn:
		for _, n := range s.Attlist {
			if str, ok := n.Node.(*pg.Node_String_); ok {
				if r := b.s.columnRule(str.String_.Sval); r != nil {
					b.copyIn(s, r)
					return
				}
			}
		}
		if len(s.Attlist) == 0 {
			b.refuseSoft("COPY into table " + rv.Relname + " without a column list: it may be sharded by a column rule; " +
				"name its columns, or list the table in sharded_tables or replicated_tables")
			return
		}
	}
	b.relation(sc, rv, true)
}

func (b *builder) walkList(sc *scope, lv *level, ns []*pg.Node) {
	for _, n := range ns {
		b.walk(sc, lv, n)
	}
}

// walk visits an expression for what matters to routing: subqueries (each a level of its own, whose tables
// join the statement), nested statements, aggregate and window calls, and key column names (which bind a
// column-rule table to its key).
func (b *builder) walk(sc *scope, lv *level, n *pg.Node) {
	if n == nil {
		return
	}
	switch x := n.Node.(type) {
	case *pg.Node_AConst, *pg.Node_ParamRef, *pg.Node_String_, *pg.Node_Integer, *pg.Node_Float,
		*pg.Node_Boolean, *pg.Node_AStar, *pg.Node_SetToDefault:
		return
	case *pg.Node_SubLink:
		b.walk(sc, lv, x.SubLink.Testexpr)
		b.sublinks++
		b.stmt(sc, x.SubLink.Subselect, false)
		b.sublinks--
		return
	case *pg.Node_SelectStmt, *pg.Node_InsertStmt, *pg.Node_UpdateStmt, *pg.Node_DeleteStmt, *pg.Node_MergeStmt:
		b.stmt(sc, n, false)
		return
	case *pg.Node_ColumnRef:
		b.keyRef(sc, n)
		return
	case *pg.Node_FuncCall:
		f := x.FuncCall
		if name := funcName(f.Funcname); name == "nextval" || name == "setval" {
			b.write = true // sequences change (on whichever shard runs it: each shard has its own)
		}
		if f.Over != nil {
			lv.window = true
		} else if f.AggStar || f.AggDistinct || f.AggWithinGroup || len(f.AggOrder) > 0 || f.AggFilter != nil ||
			isAggregate(f.Funcname) {
			if !lv.agg {
				lv.agg = true
				if b.aggName == "" {
					b.aggName = funcName(f.Funcname) + "()"
				}
			}
		}
	case *pg.Node_JsonArrayAgg, *pg.Node_JsonObjectAgg:
		if !lv.agg {
			lv.agg = true
			if b.aggName == "" {
				b.aggName = "JSON_ARRAYAGG()"
				if _, ok := x.(*pg.Node_JsonObjectAgg); ok {
					b.aggName = "JSON_OBJECTAGG()"
				}
			}
		}
	}
	b.walkMsg(sc, lv, n.ProtoReflect())
}

// walkMsg visits the nodes among the fields of any parse-tree message.
func (b *builder) walkMsg(sc *scope, lv *level, m protoreflect.Message) {
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd.Kind() != protoreflect.MessageKind {
			return true
		}
		if fd.IsList() {
			l := v.List()
			for i := 0; i < l.Len(); i++ {
				b.walkAny(sc, lv, l.Get(i).Message())
			}
			return true
		}
		b.walkAny(sc, lv, v.Message())
		return true
	})
}

func (b *builder) walkAny(sc *scope, lv *level, m protoreflect.Message) {
	switch x := m.Interface().(type) {
	case *pg.Node:
		b.walk(sc, lv, x)
	case *pg.RangeVar, *pg.SelectStmt:
		// Only met through the statements planned above.
	default:
		b.walkMsg(sc, lv, m)
	}
}
