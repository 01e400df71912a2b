package route

import (
	"math/bits"
	"strconv"
	"strings"

	"github.com/pgshard/pgshard/codec"
	"github.com/pgshard/pgshard/route/lex"
)

// split rewrites a multi-row INSERT whose rows belong to the shards of mask into one INSERT per shard, each
// with that shard's rows: the text before the first row and after the last one (ON CONFLICT, RETURNING) is
// kept, the rows are cut from the original text by byte ranges. Rows whose key is NULL go with the first shard.
// A prepared statement's pieces (params set) have their $n numbered anew, each piece from $1, and say which
// of the Bind's values they take (Piece.Params).
func (p *Plan) split(s *Schema, sql string, lits [][2]int32, keys []planVal, params *Params, mask uint64) Decision {
	rows := valuesRows(sql)
	if len(rows) != len(keys) {
		return Decision{Err: codec.NewError(codec.SQLStateFeatureNotSupported, "cannot split this INSERT "+
			"by shard: send one row per statement or rows of one shard"), Write: p.write}
	}
	first := bits.TrailingZeros64(mask)
	owner := make([]int, len(rows))
	for i := range keys {
		sh, r, _ := p.value(p.rowMapper, &keys[i], sql, lits, params)
		if r != vOK {
			sh = first
		}
		owner[i] = sh
	}
	prefix, suffix := sql[:rows[0][0]], sql[rows[len(rows)-1][1]:]
	d := Decision{Shards: mask, Write: p.write}
	for m := mask; m != 0; m &= m - 1 {
		sh := bits.TrailingZeros64(m)
		var b strings.Builder
		b.Grow(len(sql))
		b.WriteString(prefix)
		n := 0
		for i, o := range owner {
			if o != sh {
				continue
			}
			if n > 0 {
				b.WriteString(", ")
			}
			b.WriteString(sql[rows[i][0]:rows[i][1]])
			n++
		}
		b.WriteString(suffix)
		piece := Piece{Shard: sh, SQL: b.String()}
		if params != nil {
			piece.SQL, piece.Params = renumber(piece.SQL)
		}
		d.Split = append(d.Split, piece)
	}
	return d
}

// renumber writes the $n of sql as $1, $2, ... in the order of their first use, and returns which of the
// original parameters (0-based) each new one is.
func renumber(sql string) (string, []int) {
	var l lex.Lexer
	l.Reset(sql)
	var b strings.Builder
	var params []int
	newOf := map[int]int{}
	last := 0
	for t := l.Next(); t.Kind != lex.EOF; t = l.Next() {
		if t.Kind != lex.Param {
			continue
		}
		n, err := strconv.Atoi(sql[t.Start+1 : t.End])
		if err != nil || n < 1 {
			continue
		}
		k, ok := newOf[n]
		if !ok {
			params = append(params, n-1)
			k = len(params)
			newOf[n] = k
		}
		b.WriteString(sql[last:t.Start])
		b.WriteString("$" + strconv.Itoa(k))
		last = int(t.End)
	}
	b.WriteString(sql[last:])
	return b.String(), params
}

// valuesRows returns the byte ranges of the parenthesized rows of the top-level VALUES list of an INSERT,
// parentheses included.
func valuesRows(sql string) [][2]int {
	var l lex.Lexer
	l.Reset(sql)
	depth := 0
	for {
		t := l.Next()
		switch {
		case t.Kind == lex.EOF:
			return nil
		case t.Kind == lex.Punct && sql[t.Start] == '(':
			depth++
		case t.Kind == lex.Punct && sql[t.Start] == ')':
			depth--
		case depth == 0 && lex.IsKeyword(sql, t, "values"):
			return rowsAfter(&l, sql)
		}
	}
}

// rowsAfter reads ( ... ) [, ( ... )]... from l.
func rowsAfter(l *lex.Lexer, sql string) [][2]int {
	var rows [][2]int
	for {
		t := l.Next()
		if t.Kind != lex.Punct || sql[t.Start] != '(' {
			return nil
		}
		start, depth := int(t.Start), 1
		for depth > 0 {
			t = l.Next()
			switch {
			case t.Kind == lex.EOF:
				return nil
			case t.Kind == lex.Punct && sql[t.Start] == '(':
				depth++
			case t.Kind == lex.Punct && sql[t.Start] == ')':
				depth--
			}
		}
		rows = append(rows, [2]int{start, int(t.End)})
		t = l.Next()
		if t.Kind != lex.Punct || sql[t.Start] != ',' {
			return rows
		}
	}
}
