package lex

import (
	"strings"
	"unicode/utf8"
)

// IsKeyword reports whether t is an Ident equal to kw case-insensitively. kw must be given in lower case.
func IsKeyword(sql string, t Token, kw string) bool {
	if t.Kind != Ident || int(t.End-t.Start) != len(kw) || t.Start < 0 || int(t.End) > len(sql) {
		return false
	}
	return equalFoldLower(sql[t.Start:t.End], kw)
}

// equalFoldLower reports whether s equals the lower-case ASCII word kw, ignoring ASCII case in s.
func equalFoldLower(s, kw string) bool {
	if len(s) != len(kw) {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c-'A' < 26 {
			c += 'a' - 'A'
		}
		if c != kw[i] {
			return false
		}
	}
	return true
}

// foldIdent lower-cases ASCII letters as Postgres folds an unquoted identifier; it returns s itself when s has
// no upper-case letter.
func foldIdent(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i]-'A' < 26 {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if b[j]-'A' < 26 {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

// Unquote returns the value of a token:
//   - Ident: lower-cased (ASCII letters only, as Postgres folds identifiers);
//   - QuotedIdent: without quotes, "" unescaped; U&"..." with its \XXXX and \+XXXXXX escapes decoded;
//   - String: the value. A doubled quote stands for one quote; continuation segments ('a'<newline>'b') are
//     joined; E'...' takes the backslash escapes \b \f \n \r \t \ooo \xHH \uXXXX \UXXXXXXXX (any other escaped
//     character stands for itself); U&'...' takes \XXXX, \+XXXXXX and \\ (a UESCAPE clause, a separate token,
//     is not applied); B'...' and X'...' give the digits between the quotes; dollar quotes give their body
//     verbatim;
//   - any other kind: its raw text.
//
// It returns a substring of sql, allocating only when the value differs from every substring (escapes,
// continuations, folding). Invalid escapes decode as best they can (Postgres would reject the query).
func Unquote(sql string, t Token) string {
	if t.Start < 0 || t.End < t.Start || int(t.End) > len(sql) {
		return ""
	}
	s := sql[t.Start:t.End]
	if s == "" {
		return ""
	}
	switch t.Kind {
	case Ident:
		return foldIdent(s)
	case QuotedIdent:
		if s[0] == '"' {
			return unquoteDoubled(s[1:], '"')
		}
		if len(s) < 3 {
			return s
		}
		return decodeUnicodeEscapes(unquoteDoubled(s[3:], '"'))
	case String:
		switch s[0] {
		case '$':
			end := strings.IndexByte(s[1:], '$') + 2
			tag := s[:end]
			body := s[end:]
			if len(body) >= len(tag) && strings.HasSuffix(body, tag) {
				body = body[:len(body)-len(tag)]
			}
			return body
		case '\'':
			return unquoteSegments(s, modeStd)
		case 'e', 'E':
			return unquoteSegments(s[1:], modeEscape)
		case 'b', 'B':
			return unquoteSegments(s[1:], modeBit)
		case 'x', 'X':
			return unquoteSegments(s[1:], modeHex)
		case 'n', 'N':
			return unquoteSegments(s[1:], modeStd)
		case 'u', 'U':
			if len(s) < 3 {
				return s
			}
			return decodeUnicodeEscapes(unquoteSegments(s[2:], modeStd))
		}
	}
	return s
}

// unquoteDoubled returns the body of a quoted text that starts just after its opening quote q: up to the
// closing quote (or the end), with doubled quotes undoubled.
func unquoteDoubled(s string, q byte) string {
	k := strings.IndexByte(s, q)
	if k < 0 {
		return s
	}
	if k+1 >= len(s) || s[k+1] != q {
		return s[:k]
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == q {
			if i+1 < len(s) && s[i+1] == q {
				b = append(b, q)
				i++
				continue
			}
			break
		}
		b = append(b, s[i])
	}
	return string(b)
}

// segment returns the body of the quoted segment whose opening quote is s[0] (quotes excluded, escapes not yet
// processed), whether it needs unescaping, and the index just past its closing quote.
func segment(s string, mode int) (body string, escaped bool, next int) {
	i := 1
	for i < len(s) {
		c := s[i]
		if c == '\\' && mode == modeEscape {
			escaped = true
			i += 2
			continue
		}
		if c == '\'' {
			if mode != modeBit && mode != modeHex && i+1 < len(s) && s[i+1] == '\'' {
				escaped = true
				i += 2
				continue
			}
			return s[1:i], escaped, i + 1
		}
		i++
	}
	if i > len(s) {
		i = len(s)
	}
	return s[1:i], escaped, len(s)
}

// unquoteSegments decodes the raw text of a string starting at its first quote.
func unquoteSegments(s string, mode int) string {
	if s == "" {
		return ""
	}
	body, escaped, next := segment(s, mode)
	if next >= len(s) && !escaped {
		return body
	}
	var b []byte
	for {
		b = appendUnescaped(b, body, mode)
		if next >= len(s) {
			break
		}
		q, ok := quoteContinue(s, next)
		if !ok {
			break
		}
		body, _, next = segment(s[q:], mode)
		next += q
	}
	return string(b)
}

func appendUnescaped(b []byte, body string, mode int) []byte {
	for i := 0; i < len(body); i++ {
		c := body[i]
		if c == '\'' && mode != modeBit && mode != modeHex {
			// '' (the second quote is skipped below)
			b = append(b, '\'')
			i++
			continue
		}
		if c != '\\' || mode != modeEscape || i+1 >= len(body) {
			b = append(b, c)
			continue
		}
		i++
		c = body[i]
		switch c {
		case 'b':
			b = append(b, '\b')
		case 'f':
			b = append(b, '\f')
		case 'n':
			b = append(b, '\n')
		case 'r':
			b = append(b, '\r')
		case 't':
			b = append(b, '\t')
		case '0', '1', '2', '3', '4', '5', '6', '7':
			v := int(c - '0')
			for n := 1; n < 3 && i+1 < len(body) && body[i+1]-'0' < 8; n++ {
				i++
				v = v*8 + int(body[i]-'0')
			}
			b = append(b, byte(v))
		case 'x':
			v, n := hexValue(body[i+1:], 2)
			if n == 0 {
				b = append(b, 'x')
				continue
			}
			i += n
			b = append(b, byte(v))
		case 'u', 'U':
			want := 4
			if c == 'U' {
				want = 8
			}
			v, n := hexValue(body[i+1:], want)
			if n != want {
				b = append(b, c)
				continue
			}
			i += n
			r := rune(v)
			if utf16IsHigh(r) && i+6 < len(body) && body[i+1] == '\\' && body[i+2] == 'u' {
				if lo, m := hexValue(body[i+3:], 4); m == 4 && utf16IsLow(rune(lo)) {
					r = combineSurrogates(r, rune(lo))
					i += 6
				}
			}
			b = utf8.AppendRune(b, r)
		default:
			b = append(b, c)
		}
	}
	return b
}

// hexValue parses up to max hex digits at the start of s, returning the value and the number of digits.
func hexValue(s string, max int) (uint32, int) {
	var v uint32
	n := 0
	for n < max && n < len(s) && charClass[s[n]]&cHex != 0 {
		c := s[n]
		switch {
		case c <= '9':
			c -= '0'
		case c >= 'a':
			c -= 'a' - 10
		default:
			c -= 'A' - 10
		}
		v = v<<4 | uint32(c)
		n++
	}
	return v, n
}

func utf16IsHigh(r rune) bool { return r >= 0xD800 && r < 0xDC00 }
func utf16IsLow(r rune) bool  { return r >= 0xDC00 && r < 0xE000 }
func combineSurrogates(hi, lo rune) rune {
	return (hi-0xD800)<<10 | (lo - 0xDC00) + 0x10000
}

// decodeUnicodeEscapes applies U&'...' escapes (escape character '\'): \XXXX, \+XXXXXX and \\.
func decodeUnicodeEscapes(s string) string {
	k := strings.IndexByte(s, '\\')
	if k < 0 {
		return s
	}
	b := make([]byte, 0, len(s))
	b = append(b, s[:k]...)
	for i := k; i < len(s); i++ {
		c := s[i]
		if c != '\\' || i+1 >= len(s) {
			b = append(b, c)
			continue
		}
		if s[i+1] == '\\' {
			b = append(b, '\\')
			i++
			continue
		}
		want, skip := 4, 1
		if s[i+1] == '+' {
			want, skip = 6, 2
		}
		v, n := hexValue(s[i+skip:], want)
		if n != want {
			b = append(b, c)
			continue
		}
		i += skip + n - 1
		r := rune(v)
		if utf16IsHigh(r) && i+5 < len(s) && s[i+1] == '\\' {
			if lo, m := hexValue(s[i+2:], 4); m == 4 && utf16IsLow(rune(lo)) {
				r = combineSurrogates(r, rune(lo))
				i += 5
			}
		}
		b = utf8.AppendRune(b, r)
	}
	return string(b)
}
