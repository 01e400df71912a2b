package route

import (
	"bytes"
	"strconv"
	"strings"

	pg "github.com/pganalyze/pg_query_go/v6"

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
// The cost is the sharded tables' rows crossing the proxy twice, so each gather is bounded
// (limits.max_intermediate_result); the filters are not pushed down to the shards yet. A key condition that
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
	sql  string
	refs []tableRef
}

// tableRef is one mention of a sharded table: where its name starts, whether an alias follows, whether it
// says ONLY.
type tableRef struct {
	at      int32
	aliased bool
	only    bool
}

// decide routes one execution: the gather step first, the coordinated statement once the rows are in.
// refusal is the error the statement got before the coordinator step existed, for what it still cannot do.
func (c *coordination) decide(s *Schema, refusal *codec.Error, sql string, sess *Session) Decision {
	if sess.GatherErr != nil {
		return Decision{Err: sess.GatherErr}
	}
	refs := c.refs
	if sql != c.sql {
		// A cached plan of the same shape: find the mentions in this text.
		tree, err := pg.Parse(sql)
		if err != nil {
			return Decision{Err: refusal}
		}
		q := buildPlan(s, sql, nil, tree.Stmts)
		if q.coordinate == nil {
			return Decision{Err: refusal}
		}
		refs = q.coordinate.refs
	}
	names, ok := mentionedNames(sql, refs)
	if !ok {
		return Decision{Err: refusal}
	}
	tables := distinct(sql, names)
	if sess.Gathered == nil {
		return Decision{Gather: &Gather{SQL: gatherSQL(sql, names, tables), Tables: len(tables), Why: refusal.Message},
			Shards:  s.allShards(),
			Scatter: true}
	}
	if len(sess.Gathered) != len(tables) {
		return Decision{Err: codec.NewError(codec.SQLStateInternalError, "pgshard gathered rows of "+
			strconv.Itoa(len(sess.Gathered))+" tables for a statement that reads "+strconv.Itoa(len(tables)))}
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

// distinct numbers the tables of names by their text (written alike, read alike): tables[i] is the number of
// names[i]'s table.
func distinct(sql string, names []name) []int {
	tables := make([]int, len(names))
	seen := map[string]int{}
	for i, n := range names {
		key := n.text(sql)
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
func gatherSQL(sql string, names []name, tables []int) string {
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
	}
	return b.String()
}

// coordinatedSQL is the statement with each mention replaced by its table's gathered rows.
func coordinatedSQL(sql string, names []name, refs []tableRef, tables []int, gathered [][]byte) string {
	tag := dollarTag(gathered)
	size := len(sql)
	for i := range names {
		size += len(gathered[tables[i]]) + 2*len(tag) + 32 + 2*(names[i].end-names[i].start)
	}
	var b strings.Builder
	b.Grow(size)
	last := 0
	for i, n := range names {
		b.WriteString(sql[last:n.start])
		b.WriteString("unnest(" + tag + "{")
		b.Write(gathered[tables[i]])
		b.WriteString("}" + tag + "::" + n.text(sql) + "[])")
		if !refs[i].aliased {
			b.WriteString(" AS " + n.last)
		}
		last = n.end
	}
	b.WriteString(sql[last:])
	return b.String()
}

// dollarTag is a dollar quote's tag that none of the data holds.
func dollarTag(data [][]byte) string {
	for i := 0; ; i++ {
		tag := "$pgshard$"
		if i > 0 {
			tag = "$pgshard" + strconv.Itoa(i) + "$"
		}
		clash := false
		for _, d := range data {
			clash = clash || bytes.Contains(d, []byte(tag))
		}
		if !clash {
			return tag
		}
	}
}
