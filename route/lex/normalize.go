package lex

import (
	"math"
	"slices"
	"strconv"

	farm "github.com/dgryski/go-farm"
)

// Normalized is the result of Normalize. Reuse one across calls: its slices are truncated and appended to, so a
// warmed-up Normalized makes Normalize allocation-free.
//
// Text is the plan-cache form of the statement:
//   - comments are removed (pgshard hint comments are read into Hints first: hints are not part of the text);
//   - tokens are separated by exactly one space, except that none is written after ( and [, before ) ] , and ;,
//     around . and :: next to a name, and between a name (other than a few keywords: in, values, select, ...)
//     and a following ( or [ — so the spacing of the input (id=7 or id = 7) never matters, and the text still
//     reads like SQL: "select count(*) from t where id in (?1, ?2)";
//   - unquoted identifiers and keywords are lower-cased (ASCII, as Postgres folds them); quoted identifiers,
//     parameters ($1) and operators are kept as written, except that != is written <> (Postgres's own
//     spelling of it); trailing semicolons are dropped;
//   - every literal constant is replaced by a slot marker: '?', a class letter, the 1-based slot number. The class
//     keeps literals that Postgres types differently apart: "?1" an integer (42, 0x2A, 1_000), "?f1" any other
//     number (4.2, 1e3), "?s1" a character string ('x', E'x', U&'x', $$x$$), "?b1" a bit string (B'1', X'1'),
//     "?n1" a national character string (N'x'). A marker cannot be mistaken for input: in Text an operator is
//     always followed by a space or by ) ] , ;, so a '?' directly followed by a letter or a digit is a marker.
//
// Unary minus: a '-' operator immediately followed by a number (no space: -5, not - 5) is folded into that
// number's literal — the slot's range then starts at the '-' — when the token before the '-' cannot end an
// operand (nothing, an operator, a punctuation other than ) and ], or one of the keywords select where and or
// not when then else case between symmetric asymmetric like ilike to from on limit offset having returning
// distinct all default for in, unless that keyword follows a '.') and the number is not followed by :: or [
// (which bind tighter than unary minus: -1::int is -(1::int)). This is when Postgres's grammar folds the sign
// into the constant (doNegate), which also reports the constant's location at the '-'. A plan builder should map
// pg_query's A_Const nodes to slots by location == Literals[i][0] and treat a constant with no matching slot
// (- 5 with a space, for instance) as part of the query's shape.
//
// ORDER BY and GROUP BY positions (ORDER BY 2, GROUP BY 1, 3) are not literals: they name output columns, so
// they stay in Text verbatim and a query sorted by another column gets another fingerprint.
type Normalized struct {
	Text []byte
	// Literals[i] is the byte range in the original SQL of the literal in slot i+1 (marker "?i+1").
	Literals [][2]int32
	// Fingerprint is farm.Fingerprint64(Text).
	Fingerprint uint64
	// Hints are the pgshard comments found anywhere in the statement.
	Hints Hints
}

// Hints are read from pgshard comments: /* pgshard: shard=1 */, /* pgshard: key=42 */, /* pgshard: key='a b' */,
// several in one comment separated by spaces or commas, or a line comment -- pgshard: shard=2.
type Hints struct {
	// Shard is the shard index from shard=N, or -1 when absent.
	Shard int
	// Key is the sharding key from key=VALUE (unquoted when given as 'VALUE'); HasKey tells whether there was one.
	Key    string
	HasKey bool
	// Role is "primary" or "replica" from role=..., where a read/write split sends the statement; "" when absent.
	Role string
}

// HintError is a malformed pgshard comment. The proxy answers it with SQLSTATE 22023 and Error() as message.
type HintError struct {
	Comment string // the comment's raw text
	Pos     int    // its byte offset in the statement
	Msg     string
}

func (e *HintError) Error() string {
	c := e.Comment
	if len(c) > 200 {
		c = c[:200] + "..."
	}
	return "malformed pgshard comment " + strconv.Quote(c) + ": " + e.Msg
}

// Spacing classes of the tokens written to Text.
const (
	eNone  = iota
	eWord  // identifier, keyword, parameter, literal marker, ORDER BY position
	eOp    // operator
	eOpen  // ( [
	eClose // ) ]
	eComma
	eSemi
	eDot   // .
	eCast  // ::
	eOther // : := .. and Other tokens
)

// Normalize lexes sql (one statement) and fills n; see Normalized. It returns a *HintError for a malformed
// pgshard comment, else a *SyntaxError for a lexical error (the one Postgres would report), else nil; n is
// filled in every case.
func Normalize(sql string, n *Normalized) error {
	n.Literals = n.Literals[:0]
	n.Hints = Hints{Shard: -1}
	var hintErr *HintError

	var l Lexer
	l.KeepComments = true
	l.Reset(sql)
	src := l.src

	w := writer{text: n.Text[:0], src: src}
	var (
		prev, prv2 Token // the last two non-comment tokens (Kind EOF when none)
		neg        = -1  // start of a '-' folded into the next number
		depth      = 0   // parenthesis depth
		byDepth    = -1  // depth of the ORDER BY / GROUP BY list we are in, or -1
	)
	for {
		t := l.Next()
		if t.Kind == EOF {
			break
		}
		if t.Kind == Comment {
			if e := readHint(src, t, &n.Hints); e != nil && hintErr == nil {
				hintErr = e
			}
			continue
		}
		text := src[t.Start:t.End]
		switch t.Kind {
		case Ident:
			if byDepth == depth && endsOrderList(text) {
				byDepth = -1
			}
			if len(text) == 2 && prev.Kind == Ident && equalFoldLower(text, "by") &&
				(IsKeyword(src, prev, "order") || IsKeyword(src, prev, "group")) {
				byDepth = depth
			}
			w.space(eWord, false)
			k := len(w.text)
			w.text = slices.Grow(w.text, len(text))[:k+len(text)]
			dst := w.text[k:]
			for i := 0; i < len(dst) && i < len(text); i++ {
				dst[i] = lowerTable[text[i]]
			}
			w.ident, w.identAt = t, len(w.text)
		case QuotedIdent, Param, Other:
			class := eWord
			if t.Kind == Other {
				class = eOther
			}
			w.space(class, false)
			w.text = append(w.text, text...)
		case Op:
			if len(text) == 1 {
				if text[0] == '-' && neg < 0 && unaryMinus(&l, src, t, prev, prv2) {
					neg = int(t.Start)
					break
				}
				w.space(eOp, text[0] == '*')
			} else {
				w.space(eOp, false)
				if text == "!=" {
					text = "<>"
				}
			}
			w.text = append(w.text, text...)
		case Punct:
			class := eOther
			glue := false
			switch text[0] {
			case '(':
				class, glue = eOpen, true
				depth++
			case '[':
				class, glue = eOpen, true
			case ')':
				class = eClose
				depth--
				if depth < byDepth {
					byDepth = -1
				}
			case ']':
				class = eClose
			case ',':
				class = eComma
			case '.':
				if len(text) == 1 {
					class = eDot
				}
			case ':':
				if text == "::" {
					class = eCast
				}
			case ';':
				w.semis++
				byDepth = -1
				prv2, prev = prev, t
				continue
			}
			w.space(class, glue)
			w.text = append(w.text, text...)
		case Number:
			if byDepth == depth && neg < 0 && orderPosition(&l, src, prev) {
				w.space(eWord, false)
				w.text = append(w.text, text...)
				break
			}
			start := t.Start
			if neg >= 0 {
				start = int32(neg)
				neg = -1
			}
			class := byte(0)
			if !isIntegerLiteral(text) {
				class = 'f'
			}
			n.Literals = append(n.Literals, [2]int32{start, t.End})
			w.marker(class, len(n.Literals))
		case String:
			var class byte
			switch text[0] {
			case 'b', 'B', 'x', 'X':
				class = 'b'
			case 'n', 'N':
				class = 'n'
			default:
				class = 's'
			}
			n.Literals = append(n.Literals, [2]int32{t.Start, t.End})
			w.marker(class, len(n.Literals))
		}
		prv2, prev = prev, t
	}
	n.Text = w.text
	n.Fingerprint = farm.Fingerprint64(n.Text)
	if hintErr != nil {
		return hintErr
	}
	if l.err != nil {
		return l.err
	}
	return nil
}

// writer appends tokens to the normalized text.
type writer struct {
	text    []byte
	src     string
	last    int   // class of the last token written
	semis   int   // semicolons not written yet (dropped when trailing)
	ident   Token // the last Ident written,
	identAt int   // and the length of text after it
}

// space writes the separator that goes before a token of class c (and the pending semicolons).
func (w *writer) space(c int, glue bool) {
	if w.semis > 0 || c == eOpen {
		w.spaceSlow(c, glue)
		return
	}
	if needSpace(w.last, c, glue) {
		w.text = append(w.text, ' ')
	}
	w.last = c
}

func (w *writer) spaceSlow(c int, glue bool) {
	if w.semis > 0 {
		for ; w.semis > 0; w.semis-- {
			w.text = append(w.text, ';')
		}
		w.last = eSemi
	}
	if needSpace(w.last, c, glue) || c == eOpen && w.identAt == len(w.text) && w.ident.Kind == Ident &&
		spacedKeyword(w.src[w.ident.Start:w.ident.End]) {
		w.text = append(w.text, ' ')
	}
	w.last = c
}

// marker writes the marker of literal slot number slot.
func (w *writer) marker(class byte, slot int) {
	w.space(eWord, false)
	w.text = append(w.text, '?')
	if class != 0 {
		w.text = append(w.text, class)
	}
	if slot < 10 {
		w.text = append(w.text, byte('0'+slot))
	} else {
		w.text = strconv.AppendInt(w.text, int64(slot), 10)
	}
}

// needSpace tells whether a space separates a token of class b from the previous one of class a. glue is set for
// ( and [ (which follow a name or a closing bracket without a space) and for the operator * (which follows a
// '.' without one: t.*).
func needSpace(a, b int, glue bool) bool {
	g := 0
	if glue {
		g = 1
	}
	return spaceTable[g][a&15][b&15]
}

var spaceTable = func() (t [2][16][16]bool) {
	for g := range t {
		for a := range t[g] {
			for b := range t[g][a] {
				t[g][a][b] = spaceRule(a, b, g == 1)
			}
		}
	}
	return t
}()

func spaceRule(a, b int, glue bool) bool {
	switch {
	case a == eNone, a == eOpen:
		return false
	case b == eClose, b == eComma, b == eSemi:
		return false
	case a == eDot && (b == eWord || b == eOp && glue), a == eCast && b == eWord:
		return false
	case (b == eDot || b == eCast) && (a == eWord || a == eClose):
		return false
	case b == eOpen && glue && (a == eWord || a == eClose):
		return false
	}
	return true
}

var lowerTable = func() (t [256]byte) {
	for i := range t {
		t[i] = byte(i)
		if i >= 'A' && i <= 'Z' {
			t[i] += 'a' - 'A'
		}
	}
	return t
}()

// spacedKeyword reports keywords after which Text keeps a space before '(' (values (1), in (1, 2), select
// (select ...)), so that only function calls and type modifiers read f(x).
func spacedKeyword(s string) bool {
	switch len(s) {
	case 2, 3, 4, 5, 6, 7, 9:
	default:
		return false
	}
	var buf [9]byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c-'A' < 26 {
			c += 'a' - 'A'
		}
		buf[i] = c
	}
	switch string(buf[:len(s)]) {
	case "in", "as", "on", "and", "or", "not", "select", "values", "exists", "from", "where", "using", "join",
		"into", "with", "union", "except", "intersect", "when", "then", "else", "returning", "between":
		return true
	}
	return false
}

// isIntegerLiteral tells an integer constant (decimal, 0x, 0o, 0b) from one with a fraction or an exponent.
func isIntegerLiteral(s string) bool {
	if len(s) > 1 && s[0] == '0' {
		switch s[1] {
		case 'x', 'X', 'o', 'O', 'b', 'B':
			return true
		}
	}
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '.', 'e', 'E':
			return false
		}
	}
	return true
}

// unaryMinus decides whether the '-' operator t folds into the number right after it (see Normalized).
func unaryMinus(l *Lexer, src string, t, prev, prv2 Token) bool {
	e := int(t.End)
	if e >= len(src) || !(isDigit(src[e]) || src[e] == '.' && e+1 < len(src) && isDigit(src[e+1])) {
		return false
	}
	switch prev.Kind {
	case EOF, Op:
	case Punct:
		if c := src[prev.Start]; c == ')' || c == ']' {
			return false
		}
	case Ident:
		if !operandKeyword(src[prev.Start:prev.End]) ||
			prv2.Kind == Punct && src[prv2.Start:prv2.End] == "." {
			return false
		}
	default:
		return false
	}
	// The number must not be followed by :: or [, which bind tighter than unary minus.
	peek := *l
	peek.KeepComments = false
	peek.Next() // the number
	after := peek.Next()
	if after.Kind == Punct {
		switch src[after.Start:after.End] {
		case "::", "[":
			return false
		}
	}
	return true
}

// lowerShort lower-cases an ASCII word of 2 to len(buf) bytes into buf without allocating; longer or shorter
// words give nil (no keyword the callers look for is outside that range).
func lowerShort(buf []byte, s string) []byte {
	if len(s) < 2 || len(s) > len(buf) {
		return nil
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c-'A' < 26 {
			c += 'a' - 'A'
		}
		buf[i] = c
	}
	return buf[:len(s)]
}

// operandKeyword reports the keywords after which a '-' is a sign: they introduce an expression.
func operandKeyword(s string) bool {
	var buf [10]byte
	switch string(lowerShort(buf[:], s)) {
	case "select", "where", "and", "or", "not", "when", "then", "else", "case", "between", "symmetric",
		"asymmetric", "like", "ilike", "to", "from", "on", "limit", "offset", "having", "returning", "distinct",
		"all", "default", "for", "in":
		return true
	}
	return false
}

// endsOrderList reports keywords that end an ORDER BY / GROUP BY list at its own parenthesis depth.
func endsOrderList(s string) bool {
	var buf [10]byte
	switch string(lowerShort(buf[:], s)) {
	case "limit", "offset", "having", "window", "union", "except", "intersect", "fetch", "for", "returning",
		"select", "from", "where", "on":
		return true
	}
	return false
}

// orderPosition reports whether a number in an ORDER BY / GROUP BY list is a bare output-column position:
// right after BY or a comma, and followed by a comma, a closing parenthesis, a semicolon, a keyword or the end.
func orderPosition(l *Lexer, src string, prev Token) bool {
	switch {
	case prev.Kind == Ident: // BY (the list starts with it)
		if !IsKeyword(src, prev, "by") {
			return false
		}
	case prev.Kind == Punct && src[prev.Start] == ',':
	default:
		return false
	}
	peek := *l
	peek.KeepComments = false
	next := peek.Next()
	switch next.Kind {
	case EOF, Ident:
		return true
	case Punct:
		switch src[next.Start:next.End] {
		case ",", ")", ";":
			return true
		}
	}
	return false
}

// readHint reads a pgshard comment into h; other comments are ignored.
func readHint(src string, t Token, h *Hints) *HintError {
	raw := src[t.Start:t.End]
	body := raw[2:]
	if raw[0] == '/' && len(body) >= 2 && body[len(body)-2:] == "*/" {
		body = body[:len(body)-2]
	}
	i := skipSpace(body, 0)
	if len(body)-i < 7 || !equalFoldLower(body[i:i+7], "pgshard") {
		return nil
	}
	i = skipSpace(body, i+7)
	if i >= len(body) || body[i] != ':' {
		return nil
	}
	i++
	fail := func(msg string) *HintError { return &HintError{Comment: raw, Pos: int(t.Start), Msg: msg} }
	settings := 0
	for {
		for i < len(body) && (isSpace(body[i]) || body[i] == ',') {
			i++
		}
		if i >= len(body) {
			break
		}
		j := i
		for j < len(body) && (body[j]-'a' < 26 || body[j]-'A' < 26 || body[j] == '_') {
			j++
		}
		name := body[i:j]
		if name == "" {
			return fail("expected name=value at " + strconv.Quote(rest(body[i:])))
		}
		i = skipSpace(body, j)
		if i >= len(body) || body[i] != '=' {
			return fail("expected '=' after " + strconv.Quote(name))
		}
		i = skipSpace(body, i+1)
		var value string
		if i < len(body) && body[i] == '\'' {
			j = i + 1
			for {
				if j >= len(body) {
					return fail("unterminated quoted value for " + strconv.Quote(name))
				}
				if body[j] == '\'' {
					if j+1 < len(body) && body[j+1] == '\'' {
						j += 2
						continue
					}
					break
				}
				j++
			}
			value = unquoteDoubled(body[i+1:j+1], '\'')
			i = j + 1
		} else {
			j = i
			for j < len(body) && !isSpace(body[j]) && body[j] != ',' && body[j] != '\'' && body[j] != '"' {
				j++
			}
			value = body[i:j]
			if value == "" {
				return fail("missing value for " + strconv.Quote(name))
			}
			i = j
		}
		switch {
		case equalFoldLower(name, "shard"):
			v, ok := parseShard(value)
			if !ok {
				return fail("shard must be a non-negative integer, got " + strconv.Quote(value))
			}
			if h.Shard >= 0 && h.Shard != v {
				return fail("conflicting shard hints " + strconv.Itoa(h.Shard) + " and " + strconv.Itoa(v))
			}
			h.Shard = v
		case equalFoldLower(name, "key"):
			if h.HasKey && h.Key != value {
				return fail("conflicting key hints " + strconv.Quote(h.Key) + " and " + strconv.Quote(value))
			}
			h.Key, h.HasKey = value, true
		case equalFoldLower(name, "role"):
			var v string
			switch {
			case equalFoldLower(value, "primary"):
				v = "primary"
			case equalFoldLower(value, "replica"):
				v = "replica"
			default:
				return fail("role must be primary or replica, got " + strconv.Quote(value))
			}
			if h.Role != "" && h.Role != v {
				return fail("conflicting role hints " + h.Role + " and " + v)
			}
			h.Role = v
		default:
			return fail("unknown setting " + strconv.Quote(name) + " (want shard=N, key=VALUE or role=primary|replica)")
		}
		settings++
	}
	if settings == 0 {
		return fail("no settings (want shard=N, key=VALUE or role=primary|replica)")
	}
	return nil
}

func skipSpace(s string, i int) int {
	for i < len(s) && isSpace(s[i]) {
		i++
	}
	return i
}

func rest(s string) string {
	if len(s) > 20 {
		return s[:20]
	}
	return s
}

func parseShard(s string) (int, bool) {
	if s == "" || len(s) > 10 {
		return 0, false
	}
	v := 0
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return 0, false
		}
		v = v*10 + int(s[i]-'0')
	}
	if v > math.MaxInt32 {
		return 0, false
	}
	return v, true
}
