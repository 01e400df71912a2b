package lex

import "strings"

// Cheap looks at a query's text that tell the session state it may touch, so that the proxy classifies only
// the queries that can (most are ruled out by one pass over their bytes).

// MayTouchSession is a cheap first look at a query: only statements that may change session state or pin
// the client are classified, so ordinary queries cost one pass over their bytes.
func MayTouchSession(q []byte) bool {
	return sessionWords.in(q)
}

var sessionWords = newWordSet("set", "reset", "discard", "deallocate", "declare", "listen", "unlisten", "temp", "advisory")

// ChangesSchema is the cheap look at a statement's first word that tells DDL, which may change what an
// already prepared text means.
func ChangesSchema(q []byte) bool {
	i := 0
	for i < len(q) && (q[i] == ' ' || q[i] == '\t' || q[i] == '\n' || q[i] == '\r' || q[i] == '(') {
		i++
	}
	return hasFoldAt(q, i, "alter") || hasFoldAt(q, i, "create") || hasFoldAt(q, i, "drop")
}

// SetsConfigForSession reports a call of set_config whose third argument is not the literal true: it changes a
// setting for the session, to a value only the server knows, so the client keeps its server connection (until
// DISCARD ALL). set_config(..., true), as PostgREST calls it in every transaction, lasts the transaction.
func SetsConfigForSession(sql string) bool {
	if !strings.Contains(strings.ToLower(sql), "set_config") {
		return false
	}
	var l Lexer
	l.Reset(sql)
	for t := l.Next(); t.Kind != EOF; t = l.Next() {
		if !IsKeyword(sql, t, "set_config") {
			continue
		}
		if t = l.Next(); l.Text(t) != "(" {
			continue
		}
		depth, last, lastIsTrue := 1, 0, false
		for t = l.Next(); t.Kind != EOF && depth > 0; t = l.Next() {
			switch text := l.Text(t); {
			case text == "(":
				depth++
			case text == ")":
				depth--
			case text == "," && depth == 1:
				last, lastIsTrue = 0, false
				continue
			}
			if depth > 0 {
				last++
				lastIsTrue = last == 1 && IsKeyword(sql, t, "true")
			}
		}
		if !lastIsTrue {
			return true
		}
	}
	return false
}

// MentionsPrepared is the cheap first look for PREPARE, EXECUTE and DEALLOCATE.
func MentionsPrepared(q []byte) bool {
	return preparedWords.in(q)
}

var preparedWords = newWordSet("prepare", "execute", "deallocate")

// ExecutedNames returns the names that follow the keyword EXECUTE in a statement: EXECUTE name, EXPLAIN ...
// EXECUTE name, CREATE TABLE ... AS EXECUTE name.
func ExecutedNames(text string) []string {
	if !MentionsPrepared([]byte(text)) {
		return nil
	}
	var names []string
	var l Lexer
	l.Reset(text)
	afterExecute := false
	for t := l.Next(); t.Kind != EOF; t = l.Next() {
		if afterExecute && (t.Kind == Ident || t.Kind == QuotedIdent) {
			names = append(names, Unquote(text, t))
		}
		afterExecute = IsKeyword(text, t, "execute")
	}
	return names
}

// SeesAllPrepared reports a query that may use SQL-level prepared statements in ways ExecutedNames cannot
// see: one that reads pg_prepared_statements, or says EXECUTE inside a literal (a function body, a DO block,
// PL/pgSQL's EXECUTE 'EXECUTE name').
func SeesAllPrepared(sql string) bool {
	lower := strings.ToLower(sql)
	if strings.Contains(lower, "pg_prepared_statements") {
		return true
	}
	return strings.Count(lower, "execute") > len(ExecutedNames(sql))
}

// wordSet is a few lowercase words (two letters or more), kept by their first two letters: looking for any of
// them in a text costs a table look-up per byte, and a comparison only where a word's first two letters are.
// Every ordinary query is scanned this way, twice, so the scan is most of what the pass-through path spends
// outside system calls unless it is cheap (with a look-up by first letter alone, the words starting with s, d,
// r, t, a, l and u were compared at almost every letter: ~2,700 instructions per pgbench -S transaction).
type wordSet struct {
	second [26]uint32   // bit b of second[a]: some word starts with the letters a, b ('a' = 0)
	words  [26][]string // the words by their first letter
}

func newWordSet(words ...string) *wordSet {
	var w wordSet
	for _, word := range words {
		a, b := word[0]-'a', word[1]-'a'
		w.second[a] |= 1 << b
		w.words[a] = append(w.words[a], word)
	}
	return &w
}

// in reports whether q holds one of the words, in any case, anywhere (a first look, not a parse).
func (w *wordSet) in(q []byte) bool {
	for i := 0; i+1 < len(q); i++ {
		// Only an ASCII letter, lowered by | 0x20, lands in 'a'..'z'; anything else wraps to 26 or more.
		a, b := q[i]|0x20-'a', q[i+1]|0x20-'a'
		if a >= 26 || b >= 26 || w.second[a]&(1<<b) == 0 {
			continue
		}
		for _, word := range w.words[a] {
			if hasFoldAt(q, i, word) {
				return true
			}
		}
	}
	return false
}

func hasFoldAt(b []byte, i int, word string) bool {
	if i+len(word) > len(b) {
		return false
	}
	for j := 0; j < len(word); j++ {
		if b[i+j]|0x20 != word[j] {
			return false
		}
	}
	return true
}

// SettingValue is the value that sql, a statement that sets a setting (SET name TO value, or a SELECT of
// set_config('name', 'value', ...)), gives it, unquoted; "" for any other statement.
func SettingValue(sql string) string {
	if st := Classify(sql); st.Kind == StmtSet {
		v := st.Value
		if len(v) >= 2 && v[0] == '\'' {
			v = unquoteDoubled(v[1:], '\'')
		}
		return v
	}
	var l Lexer
	l.Reset(sql)
	strs := 0
	for t := l.Next(); t.Kind != EOF; t = l.Next() {
		if t.Kind == String {
			if strs++; strs == 2 { // set_config('name', 'value', ...)
				return Unquote(sql, t)
			}
		}
	}
	return ""
}
