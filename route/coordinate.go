package route

import (
	"bytes"
	"slices"
	"strconv"
	"strings"
	"sync"

	pg "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/proto"

	"github.com/pgshard/pgshard/codec"
	"github.com/pgshard/pgshard/route/lex"
)

// The coordinator step: a SELECT over sharded tables whose answer no merge of the shards' rows computes exactly
// (a window function, an expression over an aggregate, count(DISTINCT ...), a percentile, a join of sharded
// tables not on their keys, a subquery over a sharded table, ...) is answered in two steps, and in both it is
// Postgres that evaluates SQL, never pgshard:
//
//  1. Gather: every shard returns the rows of each sharded table the statement mentions, as the text of the
//     table's row type (SELECT 0, x::text FROM t AS x UNION ALL SELECT 1, y::text FROM u AS y).
//  2. Coordinate: one shard runs the statement itself with each mention of a sharded table replaced by those
//     rows, all of them, as a literal array of the table's row type: FROM unnest($pgshard${"(1,a)",...}$pgshard$
//     ::t[]) AS t. Every function, cast, operator, collation and NULL rule is then the shard's own; replicated
//     tables are on that shard already. The columns and their types are the table's (a row type's text form
//     reads back exactly: floats print their shortest exact form since Postgres 12).
//
// The cost is the rows gathered crossing the proxy twice, so each gather is bounded
// (limits.max_intermediate_result), and it applies on the shards the conditions of the table's own WHERE
// clause that give the same answer there (pushDown). A key condition that
// would narrow the statement to one shard takes it to that shard whole, as before: the coordinator step only
// answers what would otherwise be refused as a cross-shard shape.
//
// The text replaced is found again in the statement's own text (a plan cached for a query of the same shape
// has another text's offsets): the name of each mention, as written (schema-qualified or quoted), up to its
// end, followed by AS and the table's name when the text gives no alias, so that the statement's column
// references (t.v) still resolve. FROM ONLY t is refused as before.

// coordination is what a plan keeps for the coordinator step: the text it was built from and the mentions of
// sharded tables in it.
type coordination struct {
	sql     string
	refs    []tableRef
	explain explainMode
	refusal *codec.Error // what the statement got before the coordinator step, for what it still cannot do
}

// explainMode is what an EXPLAIN of a coordinated statement shows: the coordinating shard's plan over no rows
// (nothing is gathered), or, with ANALYZE, over the rows gathered (the statement runs).
type explainMode uint8

const (
	explainNone explainMode = iota
	explainPlain
	explainAnalyze
)

// explainOf says whether an EXPLAIN runs its statement (ANALYZE, ANALYZE true/on/1).
func explainOf(e *pg.ExplainStmt) explainMode {
	mode := explainPlain
	for _, o := range e.Options {
		de := o.GetDefElem()
		if de == nil || de.Defname != "analyze" {
			continue
		}
		mode = explainAnalyze
		switch v := de.Arg; {
		case v.GetBoolean() != nil && !v.GetBoolean().GetBoolval(),
			v.GetInteger() != nil && v.GetInteger().GetIval() == 0:
			mode = explainPlain
		case v.GetString_() != nil:
			if off := strings.ToLower(v.GetString_().GetSval()); off == "false" || off == "off" || off == "no" {
				mode = explainPlain
			}
		}
	}
	return mode
}

// tableRef is one mention of a sharded table: where its name starts, whether an alias follows, whether it
// says ONLY, and the conditions of its WHERE clause that its gather applies on the shards (pushDown).
type tableRef struct {
	at      int32
	aliased bool
	only    bool
	filter  string

	// While the builder runs: the WHERE clause of the SELECT level whose FROM list names the table directly
	// (nil in a join), the name its columns are qualified with there, and whether an unqualified column is
	// surely the table's (the level's only FROM item, where no outer query's columns are visible).
	where       *pg.Node
	alias       string
	table       string
	unqualified bool
}

// decide routes one execution: the gather step first, the coordinated statement once the rows are in.
func (c *coordination) decide(s *Schema, sql string, sess *Session) Decision {
	if sess.GatherErr != nil {
		return Decision{Err: sess.GatherErr}
	}
	refs := c.refs
	if sql != c.sql {
		// A cached plan of the same shape: find the mentions in this text.
		tree, err := pg.Parse(sql)
		if err != nil {
			return c.cannot(s)
		}
		q := buildPlan(s, sql, nil, tree.Stmts)
		if q.coordinate == nil {
			return c.cannot(s)
		}
		refs = q.coordinate.refs
	}
	names, ok := mentionedNames(sql, refs)
	if !ok {
		return c.cannot(s)
	}
	tables := distinct(sql, names, refs)
	gather := &Gather{SQL: gatherSQL(sql, names, refs, tables), Tables: slices.Max(tables) + 1, Why: c.refusal.Message}
	var notice *codec.Error
	if c.explain != explainNone {
		notice = &codec.Error{Severity: "NOTICE", Code: codec.SQLStateSuccessfulCompletion,
			Message: "pgshard coordinator step: each shard first runs " + gather.SQL + "; the plan is the coordinating " +
				"shard's, over the rows gathered (none without ANALYZE)"}
	}
	if c.explain == explainPlain {
		return Decision{Coordinated: coordinatedSQL(sql, names, refs, tables, make([]Rows, gather.Tables)),
			Shards: s.allShards(), Warning: notice}
	}
	if sess.Gathered == nil {
		return Decision{Gather: gather, Shards: s.allShards(), Scatter: true, Warning: notice}
	}
	if len(sess.Gathered) != gather.Tables {
		return Decision{Err: codec.NewError(codec.SQLStateInternalError, "pgshard gathered rows of "+
			strconv.Itoa(len(sess.Gathered))+" tables for a statement that reads "+strconv.Itoa(gather.Tables))}
	}
	return Decision{Coordinated: coordinatedSQL(sql, names, refs, tables, sess.Gathered), Shards: s.allShards(),
		Scatter: true}
}

// name is the text of one mention's table name: sql[start:end], and its last part (the table's own name as
// written, an alias for it).
type name struct {
	start, end int
	last       string
}

// mentionedNames finds the end of each mention's name: identifiers joined by dots. False for a mention it
// cannot replace (FROM ONLY t).
func mentionedNames(sql string, refs []tableRef) ([]name, bool) {
	names := make([]name, len(refs))
	var l lex.Lexer
	for i, r := range refs {
		if r.only || r.at < 0 || int(r.at) >= len(sql) {
			return nil, false
		}
		l.Reset(sql[r.at:])
		n := name{start: int(r.at)}
		for {
			t := l.Next()
			if t.Kind != lex.Ident && t.Kind != lex.QuotedIdent {
				return nil, false
			}
			n.end, n.last = int(r.at)+int(t.End), l.Text(t)
			if next := l.Next(); l.Text(next) != "." {
				break
			}
		}
		names[i] = n
	}
	return names, true
}

// distinct numbers the gathers of the mentions: one per table name (written alike, read alike) and filter;
// tables[i] is the number of mention i's.
func distinct(sql string, names []name, refs []tableRef) []int {
	tables := make([]int, len(names))
	seen := map[string]int{}
	for i, n := range names {
		key := n.text(sql) + "\x00" + refs[i].filter
		k, ok := seen[key]
		if !ok {
			k = len(seen)
			seen[key] = k
		}
		tables[i] = k
	}
	return tables
}

func (n name) text(sql string) string { return sql[n.start:n.end] }

// gatherSQL is the gather step's query: each table's rows, as text, numbered by table.
func gatherSQL(sql string, names []name, refs []tableRef, tables []int) string {
	var b strings.Builder
	done := map[int]bool{}
	for i, n := range names {
		if done[tables[i]] {
			continue
		}
		done[tables[i]] = true
		if b.Len() > 0 {
			b.WriteString(" UNION ALL ")
		}
		b.WriteString("SELECT " + strconv.Itoa(tables[i]) + ", pgshard_row::text FROM " + n.text(sql) + " AS pgshard_row")
		if f := refs[i].filter; f != "" {
			b.WriteString(" WHERE " + f)
		}
	}
	return b.String()
}

// coordinatedSQL is the statement with each mention replaced by its table's gathered rows.
func coordinatedSQL(sql string, names []name, refs []tableRef, tables []int, gathered []Rows) string {
	tag := dollarTag(gathered)
	size := len(sql)
	for i := range names {
		for _, c := range gathered[tables[i]] {
			size += len(c)
		}
		size += 2*len(tag) + 32 + 2*(names[i].end-names[i].start)
	}
	var b strings.Builder
	b.Grow(size)
	last := 0
	for i, n := range names {
		b.WriteString(sql[last:n.start])
		b.WriteString("unnest(" + tag + "{")
		for _, c := range gathered[tables[i]] {
			b.Write(c)
		}
		b.WriteString("}" + tag + "::" + n.text(sql) + "[])")
		if !refs[i].aliased {
			b.WriteString(" AS " + n.last)
		}
		last = n.end
	}
	b.WriteString(sql[last:])
	return b.String()
}

// dollarTag is a dollar quote's tag that none of the rows holds. A row is never split between chunks, and
// rows are joined by '","': a tag, which has no '"', is within one chunk if anywhere.
func dollarTag(gathered []Rows) string {
	for i := 0; ; i++ {
		tag := "$pgshard$"
		if i > 0 {
			tag = "$pgshard" + strconv.Itoa(i) + "$"
		}
		clash := false
		for _, rows := range gathered {
			for _, c := range rows {
				clash = clash || bytes.Contains(c, []byte(tag))
			}
		}
		if !clash {
			return tag
		}
	}
}

// pushDown works out each mention's filter: the conditions ANDed in the WHERE clause of its level that
// pushable accepts, its columns qualified as the gather query names the table (pgshard_row). The statement
// itself keeps them all: for the conditions pushed, which give the same answer on the shard as on the
// coordinator, evaluating them twice changes nothing, and every other condition is evaluated only there.
func pushDown(refs []tableRef) []tableRef {
	for i := range refs {
		r := &refs[i]
		var conds, kept []*pg.Node
		conjuncts(r.where, &conds)
		for _, c := range conds {
			if pushable(c, r) {
				c = proto.Clone(c).(*pg.Node)
				requalify(c, r.alias)
				kept = append(kept, c)
			}
		}
		r.filter, r.where = deparseCondition(kept), nil
	}
	return refs
}

// conjuncts appends the conditions that n ANDs together.
func conjuncts(n *pg.Node, out *[]*pg.Node) {
	if n == nil {
		return
	}
	if be := n.GetBoolExpr(); be != nil && be.Boolop == pg.BoolExprType_AND_EXPR {
		for _, a := range be.Args {
			conjuncts(a, out)
		}
		return
	}
	*out = append(*out, n)
}

// pushable accepts a condition whose value on a row of r's table depends on that row alone and is the same on
// every Postgres with the same schema: comparisons (=, <>, <, >, <=, >=, LIKE and ILIKE), IN lists,
// BETWEEN, IS [NOT] NULL and AND/OR/NOT of those, over r's columns, constants and casts. No function call (its
// volatility is unknown here), no parameter (the gather is a query of pgshard's own), no subquery.
func pushable(n *pg.Node, r *tableRef) bool {
	switch x := n.Node.(type) {
	case *pg.Node_BoolExpr:
		for _, a := range x.BoolExpr.Args {
			if !pushable(a, r) {
				return false
			}
		}
		return true
	case *pg.Node_NullTest:
		return operand(x.NullTest.Arg, r)
	case *pg.Node_AExpr:
		e := x.AExpr
		switch e.Kind {
		case pg.A_Expr_Kind_AEXPR_OP, pg.A_Expr_Kind_AEXPR_LIKE, pg.A_Expr_Kind_AEXPR_ILIKE:
			if len(e.Name) != 1 || !comparison[e.Name[0].GetString_().GetSval()] {
				return false
			}
			return operand(e.Lexpr, r) && operand(e.Rexpr, r)
		case pg.A_Expr_Kind_AEXPR_IN, pg.A_Expr_Kind_AEXPR_BETWEEN, pg.A_Expr_Kind_AEXPR_NOT_BETWEEN:
			if !operand(e.Lexpr, r) {
				return false
			}
			for _, v := range e.Rexpr.GetList().GetItems() {
				if !operand(v, r) {
					return false
				}
			}
			return e.Rexpr.GetList() != nil
		}
	}
	return false
}

var comparison = map[string]bool{"=": true, "<>": true, "!=": true, "<": true, ">": true, "<=": true, ">=": true,
	"~~": true, "!~~": true, "~~*": true, "!~~*": true}

// operand accepts a column of r's table, a constant, or a cast of one.
func operand(n *pg.Node, r *tableRef) bool {
	switch x := n.GetNode().(type) {
	case *pg.Node_AConst:
		return true
	case *pg.Node_TypeCast:
		return operand(x.TypeCast.Arg, r)
	case *pg.Node_ColumnRef:
		f := x.ColumnRef.Fields
		switch {
		case len(f) == 1:
			// Not the table's name or alias: that is the whole row, which the gather query calls pgshard_row.
			col := f[0].GetString_().GetSval()
			return r.unqualified && f[0].GetString_() != nil && col != r.alias && col != r.table
		case len(f) == 2:
			return r.alias != "" && f[0].GetString_().GetSval() == r.alias && f[1].GetString_() != nil
		}
	}
	return false
}

// requalify renames the qualifier of n's columns from alias to the gather query's pgshard_row.
func requalify(n *pg.Node, alias string) {
	switch x := n.GetNode().(type) {
	case *pg.Node_ColumnRef:
		if f := x.ColumnRef.Fields; len(f) == 2 && f[0].GetString_().GetSval() == alias {
			f[0] = pg.MakeStrNode("pgshard_row")
		}
	case *pg.Node_BoolExpr:
		for _, a := range x.BoolExpr.Args {
			requalify(a, alias)
		}
	case *pg.Node_NullTest:
		requalify(x.NullTest.Arg, alias)
	case *pg.Node_TypeCast:
		requalify(x.TypeCast.Arg, alias)
	case *pg.Node_AExpr:
		requalify(x.AExpr.Lexpr, alias)
		requalify(x.AExpr.Rexpr, alias)
	case *pg.Node_List:
		for _, v := range x.List.Items {
			requalify(v, alias)
		}
	}
}

// deparseCondition is the SQL text of the conditions ANDed, or "" for none (or none Postgres's deparser takes).
func deparseCondition(conds []*pg.Node) string {
	if len(conds) == 0 {
		return ""
	}
	where := conds[0]
	if len(conds) > 1 {
		where = pg.MakeBoolExprNode(pg.BoolExprType_AND_EXPR, conds, -1)
	}
	sel := &pg.SelectStmt{TargetList: []*pg.Node{pg.MakeResTargetNodeWithVal(pg.MakeAConstIntNode(1, -1), -1)},
		WhereClause: where, LimitOption: pg.LimitOption_LIMIT_OPTION_DEFAULT, Op: pg.SetOperation_SETOP_NONE}
	text, err := pg.Deparse(&pg.ParseResult{Version: parseTreeVersion(),
		Stmts: []*pg.RawStmt{{Stmt: &pg.Node{Node: &pg.Node_SelectStmt{SelectStmt: sel}}}}})
	_, cond, ok := strings.Cut(text, " WHERE ")
	if err != nil || !ok {
		return ""
	}
	return cond
}

// parseTreeVersion is the parse tree version pg_query's deparser wants: its parser's own.
var parseTreeVersion = sync.OnceValue(func() int32 {
	tree, err := pg.Parse("SELECT 1")
	if err != nil {
		return 0
	}
	return tree.Version
})

// cannot is the decision for a statement the coordinator step cannot take after all (FROM ONLY t): its
// refusal; an EXPLAIN of it goes to every shard, each showing its own plan, as any EXPLAIN of a cross-shard
// statement does.
func (c *coordination) cannot(s *Schema) Decision {
	if c.explain != explainNone {
		return Decision{Shards: s.allShards()}
	}
	return Decision{Err: c.refusal}
}
