package route

import (
	"sort"
	"strings"

	"github.com/pgshard/pgshard/route/lex"
)

// Rewriting a statement for the shards. A cached plan serves every statement of one normalized shape, whose
// literals differ; so a rewrite is kept as a template: pieces of the planned statement's text, and references
// to literal slots that each execution fills in with its own literals' text. The text between literals of
// two statements of one shape may differ only in spacing, comments and the case of words, none of which
// changes their meaning.

// seg is one piece of a template: text, or the current statement's literal in slot (>= 0).
type seg struct {
	text string
	slot int32
}

// edit replaces the planned statement's text [at, end) with ins.
type edit struct {
	at, end int32
	ins     []seg
}

// txt is a template piece of fixed text.
func txt(s string) seg { return seg{text: s, slot: -1} }

// copyRange is the template for the planned statement's text [from, to): its literals become slot references.
func copyRange(sql string, lits [][2]int32, from, to int32) []seg {
	var out []seg
	i := sort.Search(len(lits), func(i int) bool { return lits[i][1] > from })
	for ; i < len(lits) && lits[i][0] < to; i++ {
		if lits[i][0] < from || lits[i][1] > to {
			continue // a literal cut by the range: copied as text (never happens for token-aligned ranges)
		}
		if lits[i][0] > from {
			out = append(out, txt(sql[from:lits[i][0]]))
		}
		out = append(out, seg{slot: int32(i)})
		from = lits[i][1]
	}
	if to > from {
		out = append(out, txt(sql[from:to]))
	}
	return out
}

// applyEdits builds the template of sql with edits (which must not overlap) applied.
func applyEdits(sql string, lits [][2]int32, edits []edit) []seg {
	sort.SliceStable(edits, func(i, j int) bool { return edits[i].at < edits[j].at })
	var out []seg
	prev := int32(0)
	for _, e := range edits {
		out = append(out, copyRange(sql, lits, prev, e.at)...)
		out = append(out, e.ins...)
		prev = max(prev, e.end)
	}
	out = append(out, copyRange(sql, lits, prev, int32(len(sql)))...)
	// Join neighbouring text pieces.
	j := 0
	for _, s := range out {
		if j > 0 && s.slot < 0 && out[j-1].slot < 0 {
			out[j-1].text += s.text
			continue
		}
		out[j] = s
		j++
	}
	return out[:j]
}

// render fills a template with the literals of sql. ok is false when sql has too few literals (a statement
// of another shape: never, for plans found by shape).
func render(tmpl []seg, sql string, lits [][2]int32) (string, bool) {
	n := 0
	for _, s := range tmpl {
		if s.slot < 0 {
			n += len(s.text)
		} else if int(s.slot) < len(lits) {
			n += int(lits[s.slot][1] - lits[s.slot][0])
		} else {
			return "", false
		}
	}
	var sb strings.Builder
	sb.Grow(n)
	for _, s := range tmpl {
		if s.slot < 0 {
			sb.WriteString(s.text)
		} else {
			r := lits[s.slot]
			sb.WriteString(sql[r[0]:r[1]])
		}
	}
	return sb.String(), true
}

// dtok is a token with the parenthesis depth it is at.
type dtok struct {
	lex.Token
	depth int
}

// scanDepth lexes sql into tokens (no comments) with their depth.
func scanDepth(sql string) []dtok {
	var l lex.Lexer
	l.Reset(sql)
	var out []dtok
	depth := 0
	for {
		t := l.Next()
		if t.Kind == lex.EOF {
			out = append(out, dtok{t, depth})
			return out
		}
		if t.Kind == lex.Punct {
			switch sql[t.Start] {
			case '(', '[':
				out = append(out, dtok{t, depth})
				depth++
				continue
			case ')', ']':
				depth--
			}
		}
		out = append(out, dtok{t, depth})
	}
}

// kw reports whether token i is the keyword w at depth 0.
func kwAt(sql string, toks []dtok, i int, w string) bool {
	return i >= 0 && i < len(toks) && toks[i].depth == 0 && lex.IsKeyword(sql, toks[i].Token, w)
}

// punctAt reports whether token i is the punctuation c at depth 0.
func punctAt(sql string, toks []dtok, i int, c byte) bool {
	return i >= 0 && i < len(toks) && toks[i].depth == 0 && toks[i].Kind == lex.Punct && sql[toks[i].Start] == c &&
		toks[i].End-toks[i].Start == 1
}

// selectClauses are the token indexes where the clauses of a statement's top-level SELECT start (-1: absent).
type selectClauses struct {
	targets, from, where, group, having, window, order, limit, offset, fetch, lock, end int
	distinctOn                                                                          int // the ( after DISTINCT ON
}

// findClauses locates the clauses of the top-level SELECT of sql.
func findClauses(sql string, toks []dtok) (selectClauses, bool) {
	c := selectClauses{targets: -1, from: -1, where: -1, group: -1, having: -1, window: -1, order: -1, limit: -1,
		offset: -1, fetch: -1, lock: -1, distinctOn: -1, end: len(toks) - 1}
	i := 0
	for ; i < len(toks) && !kwAt(sql, toks, i, "select"); i++ {
	}
	if i >= len(toks) {
		return c, false
	}
	i++
	switch {
	case kwAt(sql, toks, i, "all"):
		i++
	case kwAt(sql, toks, i, "distinct"):
		i++
		if kwAt(sql, toks, i, "on") && punctAt(sql, toks, i+1, '(') {
			c.distinctOn = i + 1
			for i += 2; i < len(toks) && toks[i].depth > 0; i++ {
			}
			i++ // past )
		}
	}
	c.targets = i
	for ; i < len(toks)-1; i++ {
		if toks[i].depth != 0 || toks[i].Kind != lex.Ident {
			if punctAt(sql, toks, i, ';') {
				c.end = i
				return c, c.from >= 0
			}
			continue
		}
		set := func(p *int) {
			if *p < 0 {
				*p = i
			}
		}
		switch {
		case c.from < 0 && kwAt(sql, toks, i, "from") && !kwAt(sql, toks, i-1, "distinct"):
			c.from = i
		case c.from < 0:
		case kwAt(sql, toks, i, "where"):
			set(&c.where)
		case kwAt(sql, toks, i, "group") && kwAt(sql, toks, i+1, "by"):
			set(&c.group)
		case kwAt(sql, toks, i, "having"):
			set(&c.having)
		case kwAt(sql, toks, i, "window"):
			set(&c.window)
		case kwAt(sql, toks, i, "order") && kwAt(sql, toks, i+1, "by"):
			set(&c.order)
		case kwAt(sql, toks, i, "limit"):
			set(&c.limit)
		case kwAt(sql, toks, i, "offset"):
			set(&c.offset)
		case kwAt(sql, toks, i, "fetch"):
			set(&c.fetch)
		case kwAt(sql, toks, i, "for"):
			set(&c.lock)
		case kwAt(sql, toks, i, "union"), kwAt(sql, toks, i, "intersect"), kwAt(sql, toks, i, "except"):
			return c, false
		}
	}
	return c, c.from >= 0
}

// clauseEnd is the token index where the clause starting at token i ends: the next clause of c after it.
func (c *selectClauses) clauseEnd(i int) int {
	end := c.end
	for _, k := range []int{c.from, c.where, c.group, c.having, c.window, c.order, c.limit, c.offset, c.fetch, c.lock} {
		if k > i && k < end {
			end = k
		}
	}
	return end
}

// splitList splits the tokens [from, to) at the commas at the depth of the first one into item ranges of
// token indexes.
func splitList(sql string, toks []dtok, from, to int) [][2]int {
	var out [][2]int
	start := from
	if from >= to {
		return nil
	}
	d := toks[from].depth
	for i := from; i < to; i++ {
		if toks[i].depth == d && toks[i].Kind == lex.Punct && sql[toks[i].Start] == ',' {
			out = append(out, [2]int{start, i})
			start = i + 1
		}
	}
	if to > start {
		out = append(out, [2]int{start, to})
	}
	return out
}

// byteRange is the text range of tokens [from, to).
func byteRange(toks []dtok, from, to int) (int32, int32) {
	if to <= from {
		return toks[from].Start, toks[from].Start
	}
	return toks[from].Start, toks[to-1].End
}

// matchParen is the index of the token closing the parenthesis opened at token i.
func matchParen(toks []dtok, i int) int {
	d := toks[i].depth
	for j := i + 1; j < len(toks); j++ {
		if toks[j].depth == d && toks[j].Kind == lex.Punct {
			return j
		}
	}
	return len(toks) - 1
}
