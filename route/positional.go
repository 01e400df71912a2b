package route

import (
	"strconv"
	"strings"

	pg "github.com/pganalyze/pg_query_go/v6"

	"github.com/pgshard/pgshard/codec"
)

// INSERT INTO t VALUES (...) without a column list: the values go to t's columns in their order in the
// catalog, which the config does not give. The plan keeps every value of every row (a literal, a $n, or
// none: an expression or DEFAULT) and the catalog query that finds the key's position among the columns;
// routing it asks the proxy to run that query on a shard first (Decision.NeedKey), then picks each row's key
// by the position the proxy passes back (Session.KeyAt). The position is asked for each statement, never
// cached: a column dropped or added on the shards since would otherwise move the key and send rows to the
// wrong shard. A column list saves that round trip.

// KeyPosition is where the shard key is among a table's columns: Query, run on any shard, answers it with
// one integer: the position from 0, or KeyMissing when the table has no such column; no row (At stays
// NoTable) when there is no such table.
type KeyPosition struct {
	Query string
	At    int
}

// Answers of a KeyPosition's query other than a position.
const (
	KeyMissing = -1 // the table exists without the key column
	NoTable    = -2 // no table of that name (the server reports it when the INSERT runs)
)

// posVal is one value of a row of a positional INSERT.
type posVal struct {
	v     planVal
	state posState
}

type posState uint8

const (
	posExpr    posState = iota // an expression: not a key pgshard can read
	posValue                   // a literal or a $n (v)
	posDefault                 // DEFAULT
)

// insertPositional plans the rows of an INSERT ... VALUES without a column list into table (key column key).
func (b *builder) insertPositional(sc *scope, lv *level, rv *pg.RangeVar, sel *pg.SelectStmt, key string) {
	name := quoteIdent(rv.Relname)
	if rv.Schemaname != "" {
		name = quoteIdent(rv.Schemaname) + "." + name
	}
	b.keyQuery = "SELECT CASE WHEN k.attnum IS NULL THEN -1 ELSE (SELECT count(*) FROM pg_catalog.pg_attribute a" +
		" WHERE a.attrelid = r.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attnum < k.attnum)::int END" +
		" FROM (SELECT pg_catalog.to_regclass(" + sqlLiteral(name) + ") AS oid) r LEFT JOIN pg_catalog.pg_attribute k" +
		" ON k.attrelid = r.oid AND k.attname = " + sqlLiteral(key) + " AND NOT k.attisdropped WHERE r.oid IS NOT NULL"
	b.insertKey = key
	rows := make([][]posVal, 0, len(sel.ValuesLists))
	for _, row := range sel.ValuesLists {
		items := row.GetList().GetItems()
		vals := make([]posVal, len(items))
		for i, it := range items {
			switch v, ok := b.value(it); {
			case it.GetSetToDefault() != nil:
				vals[i].state = posDefault
			case ok:
				vals[i] = posVal{v: v, state: posValue}
			}
		}
		rows = append(rows, vals)
		b.walk(sc, lv, row)
	}
	b.posRows = rows
	b.rows = []planVal{} // an INSERT ... VALUES into a sharded table, its rows' keys to be read at eval
}

// rowsAt returns each row's key, the value at position at of a positional INSERT, or the refusal of a row
// whose key pgshard cannot read.
func (p *Plan) rowsAt(at int) ([]planVal, *codec.Error) {
	rows := make([]planVal, len(p.posRows))
	give := "give the shard key a value (or write the INSERT with a column list)"
	for r, row := range p.posRows {
		refuse := func(what string) ([]planVal, *codec.Error) {
			return nil, codec.NewError(codec.SQLStateFeatureNotSupported, "INSERT into sharded table "+p.insertTable+
				": row "+strconv.Itoa(r+1)+" "+what+": "+give)
		}
		switch {
		case at >= len(row):
			return refuse("has no value for the shard key (the key is column " + strconv.Itoa(at+1) + ")")
		case row[at].state == posDefault:
			return refuse("sets the shard key to DEFAULT, which cannot be routed")
		case row[at].state == posExpr:
			return refuse("computes the shard key with an expression")
		}
		rows[r] = row[at].v
	}
	return rows, nil
}

// keyAt is the key position the session passes for the plan's catalog query, if it has one.
func (p *Plan) keyAt(sess *Session) (int, bool) {
	if sess.KeyAt == nil || sess.KeyAt.Query != p.keyQuery {
		return 0, false
	}
	return sess.KeyAt.At, true
}

func sqlLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
