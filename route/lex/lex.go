package lex

import (
	"math"
	"strconv"
	"strings"
)

// Kind is the lexical class of a Token.
type Kind uint8

const (
	// EOF is returned at the end of the input (Start == End == len(input)).
	EOF Kind = iota
	// Ident is an unquoted identifier or keyword; compare with IsKeyword.
	Ident
	// QuotedIdent is "..." (with "" escapes) or U&"...".
	QuotedIdent
	// String is '...', E'...', U&'...', B'...', X'...', N'...' (each possibly continued over a newline, as
	// 'a'<newline>'b'), or a dollar-quoted $tag$...$tag$.
	String
	// Number is a numeric constant: 42, 3.14, 1e10, .5, 0x1F, 0o17, 0b101, 1_000.
	Number
	// Param is a positional parameter: $1.
	Param
	// Op is an operator: + - * / < > = ~ ! @ # % ^ & | ` ? and the multi-character ones, split as Postgres
	// splits them (a<=-1 is a, <=, -, 1).
	Op
	// Punct is ( ) [ ] , ; : :: := . ..
	Punct
	// Comment is a -- or /* */ comment; only returned when Lexer.KeepComments is set.
	Comment
	// Other is a single byte Postgres's lexer returns as a character token of its own that no grammar rule
	// accepts: a '$' that starts neither a parameter nor a dollar quote, '\', '{', '}', control characters.
	Other
)

var kindNames = [...]string{"EOF", "Ident", "QuotedIdent", "String", "Number", "Param", "Op", "Punct", "Comment", "Other"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

// Token is one lexical token: input[Start:End] is its raw text.
type Token struct {
	Kind       Kind
	Start, End int32
}

// SyntaxError is a lexical error: the ones Postgres reports itself (unterminated quoted string, trailing junk
// after numeric literal, ...). Pos is the byte offset of the token at fault.
type SyntaxError struct {
	Pos int
	Msg string
}

func (e *SyntaxError) Error() string {
	return e.Msg + " at offset " + strconv.Itoa(e.Pos)
}

// Lexer splits SQL text into tokens. It is reusable (Reset) and its zero value is ready for use.
type Lexer struct {
	// KeepComments makes Next return Comment tokens instead of skipping them.
	KeepComments bool

	src string
	pos int
	err *SyntaxError
}

// maxInput bounds the input so that offsets fit Token's int32 fields (Postgres itself caps a query at 1 GB).
const maxInput = math.MaxInt32

// Reset starts lexing sql from its beginning and clears the error.
func (l *Lexer) Reset(sql string) {
	l.err = nil
	l.pos = 0
	if len(sql) > maxInput {
		sql = sql[:maxInput]
		l.fail(maxInput, "query too long")
	}
	l.src = sql
}

// Err returns the first lexical error met so far, or nil. Lexing goes on after an error: the offending token
// is returned with its best-guess extent (an unterminated string runs to the end of the input).
func (l *Lexer) Err() error {
	if l.err == nil {
		return nil
	}
	return l.err
}

// Text returns the raw text of t (a substring of the input, not a copy).
func (l *Lexer) Text(t Token) string { return l.src[t.Start:t.End] }

func (l *Lexer) fail(pos int, msg string) {
	if l.err == nil {
		l.err = &SyntaxError{Pos: pos, Msg: msg}
	}
}

// Character classes.
const (
	cSpace      = 1 << iota // [ \t\n\r\f\v]
	cIdentStart             // [A-Za-z_\x80-\xff]
	cIdentCont              // ident start, digits, '$'
	cDigit                  // [0-9]
	cOpChar                 // ~ ! @ # ^ & | ` ? + - * / % < > =
	cHex                    // [0-9A-Fa-f]
)

var charClass = func() (t [256]uint8) {
	for _, c := range []byte(" \t\n\r\f\v") {
		t[c] |= cSpace
	}
	for c := 0; c < 256; c++ {
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c >= 0x80 {
			t[c] |= cIdentStart | cIdentCont
		}
		if c >= '0' && c <= '9' {
			t[c] |= cDigit | cIdentCont | cHex
		}
		if c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' {
			t[c] |= cHex
		}
	}
	t['$'] |= cIdentCont
	for _, c := range []byte("~!@#^&|`?+-*/%<>=") {
		t[c] |= cOpChar
	}
	return t
}()

func isDigit(c byte) bool      { return c-'0' < 10 }
func isIdentStart(c byte) bool { return charClass[c]&cIdentStart != 0 }
func isIdentCont(c byte) bool  { return charClass[c]&cIdentCont != 0 }
func isSpace(c byte) bool      { return charClass[c]&cSpace != 0 }

// Next returns the next token, or an EOF token at the end of the input.
func (l *Lexer) Next() Token {
	s := l.src
	for {
		i := l.pos
		for i < len(s) && charClass[s[i]]&cSpace != 0 {
			i++
		}
		if i >= len(s) {
			l.pos = len(s)
			return Token{Kind: EOF, Start: int32(len(s)), End: int32(len(s))}
		}
		c := s[i]
		if charClass[c]&cIdentStart != 0 && (i+1 >= len(s) || s[i+1] != '\'' && s[i+1] != '&') {
			// The common case: an identifier or keyword that is no string prefix (E'..., U&'...).
			j := i + 1
			for j < len(s) && charClass[s[j]]&cIdentCont != 0 {
				j++
			}
			l.pos = j
			return Token{Kind: Ident, Start: int32(i), End: int32(j)}
		}
		if c == '-' && i+1 < len(s) && s[i+1] == '-' {
			end := lineEnd(s, i+2)
			l.pos = end
			if l.KeepComments {
				return Token{Kind: Comment, Start: int32(i), End: int32(end)}
			}
			continue
		}
		if c == '/' && i+1 < len(s) && s[i+1] == '*' {
			end, ok := blockCommentEnd(s, i)
			if !ok {
				l.fail(i, "unterminated /* comment")
			}
			l.pos = end
			if l.KeepComments {
				return Token{Kind: Comment, Start: int32(i), End: int32(end)}
			}
			continue
		}
		kind, end := l.scan(i)
		l.pos = end
		return Token{Kind: kind, Start: int32(i), End: int32(end)}
	}
}

// lineEnd returns the index of the first '\n' or '\r' at or after i, or len(s).
func lineEnd(s string, i int) int {
	for ; i < len(s); i++ {
		if c := s[i]; c == '\n' || c == '\r' {
			return i
		}
	}
	return len(s)
}

// blockCommentEnd returns the end of the (nestable) /* comment starting at i.
func blockCommentEnd(s string, i int) (int, bool) {
	depth := 1
	j := i + 2
	for j+1 < len(s) {
		switch {
		case s[j] == '*' && s[j+1] == '/':
			j += 2
			depth--
			if depth == 0 {
				return j, true
			}
		case s[j] == '/' && s[j+1] == '*':
			j += 2
			depth++
		default:
			j++
		}
	}
	return len(s), false
}

// scan lexes the token starting at s[i], which is neither whitespace nor a comment start.
func (l *Lexer) scan(i int) (Kind, int) {
	s := l.src
	c := s[i]
	var c1 byte
	if i+1 < len(s) {
		c1 = s[i+1]
	}
	cls := charClass[c]
	switch {
	case cls&cIdentStart != 0:
		if c1 == '\'' {
			switch c {
			case 'e', 'E':
				return String, l.scanString(i, i+2, modeEscape)
			case 'b', 'B':
				return String, l.scanString(i, i+2, modeBit)
			case 'x', 'X':
				return String, l.scanString(i, i+2, modeHex)
			case 'n', 'N':
				return String, l.scanString(i, i+2, modeStd)
			}
		}
		if (c == 'u' || c == 'U') && c1 == '&' && i+2 < len(s) {
			switch s[i+2] {
			case '\'':
				return String, l.scanString(i, i+3, modeStd)
			case '"':
				return QuotedIdent, l.scanQuotedIdent(i, i+3)
			}
		}
		j := i + 1
		for j < len(s) && charClass[s[j]]&cIdentCont != 0 {
			j++
		}
		return Ident, j
	case cls&cDigit != 0:
		return Number, l.scanNumber(i)
	case cls&cOpChar != 0:
		return Op, l.scanOperator(i)
	}
	switch c {
	case '\'':
		return String, l.scanString(i, i+1, modeStd)
	case '"':
		return QuotedIdent, l.scanQuotedIdent(i, i+1)
	case '.':
		if isDigit(c1) {
			return Number, l.scanNumber(i)
		}
		if c1 == '.' {
			return Punct, i + 2
		}
		return Punct, i + 1
	case ':':
		if c1 == ':' || c1 == '=' {
			return Punct, i + 2
		}
		return Punct, i + 1
	case ',', '(', ')', '[', ']', ';':
		return Punct, i + 1
	case '$':
		return l.scanDollar(i)
	}
	return Other, i + 1
}

// String modes.
const (
	modeStd    = iota // '...' with '' (also N'...' and U&'...')
	modeEscape        // E'...': '' and backslash escapes
	modeBit           // B'...': no escapes at all
	modeHex           // X'...': no escapes at all
)

// scanString scans a quoted string whose body starts at i (just after the opening quote) and whose token starts
// at start, including any continuation segments ('a'<newline>'b').
func (l *Lexer) scanString(start, i, mode int) int {
	s := l.src
	for {
		switch mode {
		case modeStd:
			for {
				k := strings.IndexByte(s[i:], '\'')
				if k < 0 {
					l.fail(start, "unterminated quoted string")
					return len(s)
				}
				i += k + 1
				if i < len(s) && s[i] == '\'' {
					i++
					continue
				}
				break
			}
		case modeEscape:
			for {
				if i >= len(s) {
					l.fail(start, "unterminated quoted string")
					return len(s)
				}
				c := s[i]
				if c == '\\' {
					i += 2
					continue
				}
				i++
				if c == '\'' {
					if i < len(s) && s[i] == '\'' {
						i++
						continue
					}
					break
				}
			}
		default: // modeBit, modeHex
			k := strings.IndexByte(s[i:], '\'')
			if k < 0 {
				if mode == modeBit {
					l.fail(start, "unterminated bit string literal")
				} else {
					l.fail(start, "unterminated hexadecimal string literal")
				}
				return len(s)
			}
			i += k + 1
		}
		next, ok := quoteContinue(s, i)
		if !ok {
			return i
		}
		i = next + 1
	}
}

// quoteContinue reports whether the string that ended just before i continues: whitespace (and -- comments)
// containing at least one newline, then a quote. It returns the index of that quote.
func quoteContinue(s string, i int) (int, bool) {
	newline := false
	for i < len(s) {
		switch c := s[i]; c {
		case '\n', '\r':
			newline = true
			i++
		case ' ', '\t', '\f', '\v':
			i++
		case '-':
			if i+1 < len(s) && s[i+1] == '-' {
				i = lineEnd(s, i+2)
				continue
			}
			return 0, false
		case '\'':
			return i, newline
		default:
			return 0, false
		}
	}
	return 0, false
}

// scanQuotedIdent scans "..." whose body starts at i.
func (l *Lexer) scanQuotedIdent(start, i int) int {
	s := l.src
	body := i
	for {
		k := strings.IndexByte(s[i:], '"')
		if k < 0 {
			l.fail(start, "unterminated quoted identifier")
			return len(s)
		}
		i += k + 1
		if i < len(s) && s[i] == '"' {
			i++
			continue
		}
		if i-1 == body {
			l.fail(start, "zero-length delimited identifier")
		}
		return i
	}
}

// scanDecimal scans digits with single underscores between them ({decinteger}) from i, which is a digit.
func scanDecimal(s string, i int) int {
	i++
	for i < len(s) {
		c := s[i]
		if isDigit(c) {
			i++
		} else if c == '_' && i+1 < len(s) && isDigit(s[i+1]) {
			i += 2
		} else {
			break
		}
	}
	return i
}

// isBaseDigit reports whether c is a digit of the base whose largest digit is limit ('f' for hexadecimal).
func isBaseDigit(c, limit byte) bool {
	if limit == 'f' {
		return charClass[c]&cHex != 0
	}
	return c >= '0' && c <= limit
}

// scanNumber scans a numeric constant starting at i (a digit, or '.' followed by a digit).
func (l *Lexer) scanNumber(i int) int {
	s := l.src
	start := i
	if s[i] == '0' && i+1 < len(s) {
		var name string
		var limit byte // the largest digit of the base, or 'f' for hexadecimal
		switch s[i+1] {
		case 'x', 'X':
			name, limit = "hexadecimal", 'f'
		case 'o', 'O':
			name, limit = "octal", '7'
		case 'b', 'B':
			name, limit = "binary", '1'
		}
		if limit != 0 {
			j := i + 2
			n := 0
			for j < len(s) {
				if isBaseDigit(s[j], limit) {
					j++
					n++
				} else if s[j] == '_' && j+1 < len(s) && isBaseDigit(s[j+1], limit) {
					j += 2
					n++
				} else {
					break
				}
			}
			if n == 0 {
				l.fail(start, "invalid "+name+" integer")
				for j < len(s) && isIdentCont(s[j]) {
					j++
				}
				return j
			}
			return l.numberJunk(start, j)
		}
	}
	j := i
	if isDigit(s[j]) {
		j = scanDecimal(s, j)
	}
	if j < len(s) && s[j] == '.' {
		if j+1 < len(s) && s[j+1] == '.' && j > start {
			// 1..10 is 1 then .. then 10 ({numericfail}).
			return j
		}
		j++
		if j < len(s) && isDigit(s[j]) {
			j = scanDecimal(s, j)
		}
	}
	if j < len(s) && (s[j] == 'e' || s[j] == 'E') {
		k := j + 1
		if k < len(s) && (s[k] == '+' || s[k] == '-') {
			k++
		}
		if k < len(s) && isDigit(s[k]) {
			j = scanDecimal(s, k)
		} else {
			l.fail(start, "trailing junk after numeric literal")
			j = k
			for j < len(s) && isIdentCont(s[j]) {
				j++
			}
			return j
		}
	}
	return l.numberJunk(start, j)
}

// numberJunk reports an identifier character glued to a number (Postgres 15+ rejects 123abc) and includes the
// junk in the token.
func (l *Lexer) numberJunk(start, j int) int {
	s := l.src
	if j < len(s) && isIdentStart(s[j]) {
		l.fail(start, "trailing junk after numeric literal")
		for j < len(s) && isIdentCont(s[j]) {
			j++
		}
	}
	return j
}

// scanDollar lexes a token starting with '$': a parameter, a dollar-quoted string, or a lone '$'.
func (l *Lexer) scanDollar(i int) (Kind, int) {
	s := l.src
	j := i + 1
	if j < len(s) && isDigit(s[j]) {
		j = scanDecimal(s, j)
		if j < len(s) && isIdentStart(s[j]) {
			l.fail(i, "trailing junk after parameter")
			for j < len(s) && isIdentCont(s[j]) {
				j++
			}
		}
		return Param, j
	}
	if j < len(s) && isIdentStart(s[j]) {
		j++
		for j < len(s) && isIdentCont(s[j]) && s[j] != '$' {
			j++
		}
	}
	if j >= len(s) || s[j] != '$' {
		return Other, i + 1
	}
	tag := s[i : j+1]
	k := strings.Index(s[j+1:], tag)
	if k < 0 {
		l.fail(i, "unterminated dollar-quoted string")
		return String, len(s)
	}
	return String, j + 1 + k + len(tag)
}

// scanOperator scans an operator starting at s[i] (an operator character that does not start a comment),
// applying Postgres's rules: the operator stops before an embedded /* or --, and a trailing + or - is split off
// unless the operator contains one of ~ ! @ # ^ & | ` ? % (so that a<=-1 lexes as a <= - 1).
func (l *Lexer) scanOperator(i int) int {
	s := l.src
	j := i + 1
	for j < len(s) && charClass[s[j]]&cOpChar != 0 {
		if (s[j] == '*' && s[j-1] == '/') || (s[j] == '-' && s[j-1] == '-') {
			j--
			break
		}
		j++
	}
	if j-i > 1 && (s[j-1] == '+' || s[j-1] == '-') {
		special := false
		for k := i; k < j; k++ {
			switch s[k] {
			case '~', '!', '@', '#', '^', '&', '|', '`', '?', '%':
				special = true
			}
		}
		if !special {
			for j-i > 1 && (s[j-1] == '+' || s[j-1] == '-') {
				j--
			}
		}
	}
	return j
}
