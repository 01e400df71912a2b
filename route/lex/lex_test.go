package lex

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

// tokens lexes sql and renders each token as "Kind:text".
func tokens(sql string, keepComments bool) ([]string, error) {
	var l Lexer
	l.KeepComments = keepComments
	l.Reset(sql)
	var out []string
	for {
		t := l.Next()
		if t.Kind == EOF {
			if t.Start != int32(len(sql)) || t.End != int32(len(sql)) {
				out = append(out, "bad EOF span")
			}
			return out, l.Err()
		}
		out = append(out, t.Kind.String()+":"+l.Text(t))
	}
}

func TestLexer(t *testing.T) {
	tests := []struct {
		sql  string
		want []string
	}{
		{"SELECT a, b FROM t;", []string{"Ident:SELECT", "Ident:a", "Punct:,", "Ident:b", "Ident:FROM", "Ident:t", "Punct:;"}},
		{"  \t\n\r\f\vx  ", []string{"Ident:x"}},
		// comments
		{"/* a /* b */ c */ x", []string{"Comment:/* a /* b */ c */", "Ident:x"}},
		{"/**/x/***/y", []string{"Comment:/**/", "Ident:x", "Comment:/***/", "Ident:y"}},
		{"/*/ still comment */x", []string{"Comment:/*/ still comment */", "Ident:x"}},
		{"a--c\nb", []string{"Ident:a", "Comment:--c", "Ident:b"}},
		{"a -- c\r\nb", []string{"Ident:a", "Comment:-- c", "Ident:b"}},
		{"a--", []string{"Ident:a", "Comment:--"}},
		{"a+/*c*/b", []string{"Ident:a", "Op:+", "Comment:/*c*/", "Ident:b"}},
		{"a<--c\nb", []string{"Ident:a", "Op:<", "Comment:--c", "Ident:b"}},
		{"a*/*c*/b", []string{"Ident:a", "Op:*", "Comment:/*c*/", "Ident:b"}},
		// identifiers
		{"café_1$x foo$bar _x", []string{"Ident:café_1$x", "Ident:foo$bar", "Ident:_x"}},
		{`"My ""quoted"" id" "x"`, []string{`QuotedIdent:"My ""quoted"" id"`, `QuotedIdent:"x"`}},
		{`U&"d\0061t\+000061"`, []string{`QuotedIdent:U&"d\0061t\+000061"`}},
		{`u&x`, []string{"Ident:u", "Op:&", "Ident:x"}},
		// strings
		{`'it''s' 'x'`, []string{`String:'it''s'`, `String:'x'`}},
		{`'a\' 'b'`, []string{`String:'a\'`, `String:'b'`}}, // standard_conforming_strings: \ is plain
		{`E'it\'s' e'\\' E'a''b'`, []string{`String:E'it\'s'`, `String:e'\\'`, `String:E'a''b'`}},
		{`U&'\0041' u&'x'`, []string{`String:U&'\0041'`, `String:u&'x'`}},
		{`B'101' b'1' X'1F' x'ff' N'abc' n'x'`, []string{"String:B'101'", "String:b'1'", "String:X'1F'", "String:x'ff'", "String:N'abc'", "String:n'x'"}},
		{"B'10''01'", []string{"String:B'10'", "String:'01'"}}, // no doubled quotes in bit strings
		{"'a'\n'b'", []string{"String:'a'\n'b'"}},
		{"'a'  -- c\n  'b' x", []string{"String:'a'  -- c\n  'b'", "Ident:x"}},
		{"E'a'\n'\\n'", []string{"String:E'a'\n'\\n'"}},
		{"'a' 'b'", []string{"String:'a'", "String:'b'"}},
		{"'a'\n/* c */ 'b'", []string{"String:'a'", "Comment:/* c */", "String:'b'"}},
		{"'a'\n", []string{"String:'a'"}},
		{"$fn$ body with 'quotes' and $$ $fn$ x", []string{"String:$fn$ body with 'quotes' and $$ $fn$", "Ident:x"}},
		{"$$a;b$$", []string{"String:$$a;b$$"}},
		{"$a$ $b$ $ab$ $a$", []string{"String:$a$ $b$ $ab$ $a$"}},
		{"$ab$x$abc$y$ab$", []string{"String:$ab$x$abc$y$ab$"}},
		{"$_1$x$_1$", []string{"String:$_1$x$_1$"}},
		// parameters and $
		{"$1::int", []string{"Param:$1", "Punct:::", "Ident:int"}},
		{"$12,$3", []string{"Param:$12", "Punct:,", "Param:$3"}},
		{"$ $a x", []string{"Other:$", "Other:$", "Ident:a", "Ident:x"}},
		{`\ { }`, []string{`Other:\`, "Other:{", "Other:}"}},
		// numbers
		{"42 3.14 1e10 1E+5 2e-3 .5 5. 0x1F 0X_ff 0o17 0b101 1_000 1_000.000_1e1_0", []string{
			"Number:42", "Number:3.14", "Number:1e10", "Number:1E+5", "Number:2e-3", "Number:.5", "Number:5.",
			"Number:0x1F", "Number:0X_ff", "Number:0o17", "Number:0b101", "Number:1_000", "Number:1_000.000_1e1_0"}},
		{"1.e5", []string{"Number:1.e5"}},
		{"1..10", []string{"Number:1", "Punct:..", "Number:10"}},
		{"x.5", []string{"Ident:x", "Number:.5"}},
		{"1.5.5", []string{"Number:1.5", "Number:.5"}},
		{"1e5.5", []string{"Number:1e5", "Number:.5"}},
		{"1::text", []string{"Number:1", "Punct:::", "Ident:text"}},
		// operators
		{"a<>b", []string{"Ident:a", "Op:<>", "Ident:b"}},
		{"a<=-1", []string{"Ident:a", "Op:<=", "Op:-", "Number:1"}},
		{"a=-1", []string{"Ident:a", "Op:=", "Op:-", "Number:1"}},
		{"a+-1", []string{"Ident:a", "Op:+", "Op:-", "Number:1"}},
		{"a*-+1", []string{"Ident:a", "Op:*", "Op:-", "Op:+", "Number:1"}},
		{"a@-1", []string{"Ident:a", "Op:@-", "Number:1"}},
		{"a?-b", []string{"Ident:a", "Op:?-", "Ident:b"}},
		{"a !- b", []string{"Ident:a", "Op:!-", "Ident:b"}},
		{"a!=b", []string{"Ident:a", "Op:!=", "Ident:b"}},
		{"j->>'k' j#>>'{a}' a||b a@>b a?|b a~~*b a!~~*b x^2 x%2 a|/b", []string{
			"Ident:j", "Op:->>", "String:'k'", "Ident:j", "Op:#>>", "String:'{a}'", "Ident:a", "Op:||", "Ident:b",
			"Ident:a", "Op:@>", "Ident:b", "Ident:a", "Op:?|", "Ident:b", "Ident:a", "Op:~~*", "Ident:b",
			"Ident:a", "Op:!~~*", "Ident:b", "Ident:x", "Op:^", "Number:2", "Ident:x", "Op:%", "Number:2",
			"Ident:a", "Op:|/", "Ident:b"}},
		{"f(a => 1, b := 2)", []string{"Ident:f", "Punct:(", "Ident:a", "Op:=>", "Number:1", "Punct:,", "Ident:b", "Punct::=", "Number:2", "Punct:)"}},
		// punctuation
		{"x.y t.* a[1:2]", []string{"Ident:x", "Punct:.", "Ident:y", "Ident:t", "Punct:.", "Op:*", "Ident:a", "Punct:[", "Number:1", "Punct::", "Number:2", "Punct:]"}},
		{"a:::b", []string{"Ident:a", "Punct:::", "Punct::", "Ident:b"}},
	}
	for _, tc := range tests {
		got, err := tokens(tc.sql, true)
		if err != nil {
			t.Errorf("%q: unexpected error %v", tc.sql, err)
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%q:\n got %q\nwant %q", tc.sql, got, tc.want)
		}
	}
}

func TestLexerSkipsComments(t *testing.T) {
	got, _ := tokens("SELECT /* c */ 1 -- x\n, 2", false)
	want := []string{"Ident:SELECT", "Number:1", "Punct:,", "Number:2"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %q want %q", got, want)
	}
}

func TestLexerErrors(t *testing.T) {
	tests := []struct {
		sql, last, msg string
	}{
		{"SELECT 'abc", "String:'abc", "unterminated quoted string"},
		{"SELECT 'a''", "String:'a''", "unterminated quoted string"},
		{`SELECT E'a\'`, `String:E'a\'`, "unterminated quoted string"},
		{`SELECT E'a\`, `String:E'a\`, "unterminated quoted string"},
		{"SELECT 'a'\n'b", "String:'a'\n'b", "unterminated quoted string"},
		{`SELECT "abc`, `QuotedIdent:"abc`, "unterminated quoted identifier"},
		{`SELECT ""`, `QuotedIdent:""`, "zero-length delimited identifier"},
		{`SELECT U&""`, `QuotedIdent:U&""`, "zero-length delimited identifier"},
		{"SELECT /* a /* b */", "Comment:/* a /* b */", "unterminated /* comment"},
		{"SELECT $x$abc$x", "String:$x$abc$x", "unterminated dollar-quoted string"},
		{"SELECT B'10", "String:B'10", "unterminated bit string literal"},
		{"SELECT X'1", "String:X'1", "unterminated hexadecimal string literal"},
		{"SELECT 123abc", "Number:123abc", "trailing junk after numeric literal"},
		{"SELECT 1_", "Number:1_", "trailing junk after numeric literal"},
		{"SELECT 1__0", "Number:1__0", "trailing junk after numeric literal"},
		{"SELECT 1e", "Number:1e", "trailing junk after numeric literal"},
		{"SELECT 1e+", "Number:1e+", "trailing junk after numeric literal"},
		{"SELECT 0x", "Number:0x", "invalid hexadecimal integer"},
		{"SELECT 0b2", "Number:0b2", "invalid binary integer"},
		{"SELECT 0o8", "Number:0o8", "invalid octal integer"},
		{"SELECT $1a", "Param:$1a", "trailing junk after parameter"},
	}
	for _, tc := range tests {
		got, err := tokens(tc.sql, true)
		if len(got) == 0 || got[len(got)-1] != tc.last {
			t.Errorf("%q: tokens %q, want last %q", tc.sql, got, tc.last)
		}
		var se *SyntaxError
		if !errors.As(err, &se) || se.Msg != tc.msg || se.Pos != 7 {
			t.Errorf("%q: err %v, want %q at 7", tc.sql, err, tc.msg)
		}
	}
	// Reset clears the error.
	var l Lexer
	l.Reset("'x")
	for l.Next().Kind != EOF {
	}
	if l.Err() == nil {
		t.Fatal("no error")
	}
	l.Reset("x")
	if l.Err() != nil {
		t.Fatal("Reset kept the error")
	}
}

func TestUnquote(t *testing.T) {
	tests := []struct{ sql, want string }{
		{"FooBar", "foobar"},
		{"foo", "foo"},
		{"CaFÉ", "cafÉ"}, // only ASCII folds
		{`"FooBar"`, "FooBar"},
		{`"a""b"`, `a"b`},
		{`U&"d\0061t\+000061"`, "data"},
		{`'it''s'`, "it's"},
		{`'a\n'`, `a\n`},
		{`E'it\'s\n\t\\\x41\101\u00e9\U0001F600\z'`, "it's\n\t\\AAé😀z"},
		{`E'\uD83D\uDE00'`, "😀"},
		{`E'a''b'`, "a'b"},
		{`U&'\0041\+00263A\\x'`, "A☺\\x"},
		{`U&'\D83D\DE00'`, "😀"},
		{"B'1010'", "1010"},
		{"X'1F'", "1F"},
		{"N'abc'", "abc"},
		{"'foo'\n'bar'", "foobar"},
		{"'a''b'  -- c\n\n 'c''d'", "a'bc'd"},
		{"E'\\n'\n'\\n'", "\n\n"},
		{"$fn$ body 'q' $$ $fn$", " body 'q' $$ "},
		{"$$$$", ""},
		{"42", "42"},
		{"'unterminated", "unterminated"},
		{"$a$unterminated", "unterminated"},
	}
	for _, tc := range tests {
		var l Lexer
		l.Reset(tc.sql)
		tok := l.Next()
		if got := Unquote(tc.sql, tok); got != tc.want {
			t.Errorf("Unquote(%q) = %q, want %q", tc.sql, got, tc.want)
		}
	}
	// No allocation when the value is a substring.
	sql := `select "Col", 'plain', $$dollar$$, lower_ident`
	var toks []Token
	var l Lexer
	l.Reset(sql)
	for tk := l.Next(); tk.Kind != EOF; tk = l.Next() {
		toks = append(toks, tk)
	}
	if n := testing.AllocsPerRun(100, func() {
		for _, tk := range toks {
			_ = Unquote(sql, tk)
		}
	}); n != 0 {
		t.Errorf("Unquote allocates %v times for plain values", n)
	}
}

func TestIsKeyword(t *testing.T) {
	sql := `SeLeCt "select" selects`
	var l Lexer
	l.Reset(sql)
	a, b, c := l.Next(), l.Next(), l.Next()
	if !IsKeyword(sql, a, "select") || IsKeyword(sql, b, "select") || IsKeyword(sql, c, "select") {
		t.Fatal("IsKeyword")
	}
}

func TestSplit(t *testing.T) {
	tests := []struct {
		sql  string
		want []string
	}{
		{"SELECT 1", []string{"SELECT 1"}},
		{"SELECT 1; SELECT 2;", []string{"SELECT 1", "SELECT 2"}},
		{"  ;; SELECT 1 ;  ; -- only a comment\n; /* c */ ;", []string{"SELECT 1"}},
		{"SELECT ';' ; SELECT \";\"; SELECT $$;$$; SELECT $x$ $$;$$ $x$; SELECT E'\\';'",
			[]string{"SELECT ';'", `SELECT ";"`, "SELECT $$;$$", "SELECT $x$ $$;$$ $x$", `SELECT E'\';'`}},
		{"SELECT 1 /* ; */ -- ;\n; SELECT 2", []string{"SELECT 1 /* ; */ -- ;", "SELECT 2"}},
		{"/* pgshard: shard=1 */ SELECT 1; SELECT 2", []string{"/* pgshard: shard=1 */ SELECT 1", "SELECT 2"}},
		{"CREATE RULE r AS ON INSERT TO t DO ALSO (INSERT INTO a VALUES (1); INSERT INTO b VALUES (2)); SELECT 3",
			[]string{"CREATE RULE r AS ON INSERT TO t DO ALSO (INSERT INTO a VALUES (1); INSERT INTO b VALUES (2))", "SELECT 3"}},
		{"CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT CASE WHEN true THEN 2 END; END; SELECT 4",
			[]string{"CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT CASE WHEN true THEN 2 END; END", "SELECT 4"}},
		{"create or replace procedure p() begin atomic insert into t values (1); end; begin; commit",
			[]string{"create or replace procedure p() begin atomic insert into t values (1); end", "begin", "commit"}},
		{"BEGIN; SELECT 1; END;", []string{"BEGIN", "SELECT 1", "END"}},
		{"SELECT 'unterminated; SELECT 2", []string{"SELECT 'unterminated; SELECT 2"}},
		{"", nil},
	}
	for _, tc := range tests {
		var got []string
		for _, r := range Split(tc.sql, nil) {
			got = append(got, tc.sql[r[0]:r[1]])
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Split(%q):\n got %q\nwant %q", tc.sql, got, tc.want)
		}
	}
	// Appends to dst without allocating when it has room.
	dst := make([][2]int, 0, 8)
	if n := testing.AllocsPerRun(100, func() { dst = Split("SELECT 1; SELECT 2; SELECT 3", dst[:0]) }); n != 0 {
		t.Errorf("Split allocates %v times", n)
	}
}

// TestLexerCoversInput checks on a long mixed input that tokens are in order, do not overlap and leave only
// whitespace between them.
func TestLexerCoversInput(t *testing.T) {
	sql := strings.Repeat("SELECT a.b, \"Q\"\"x\", 'it''s', E'\\'', $t$x$t$, 1.5e3, $1 FROM t /* c /* n */ */ WHERE x<=-1 -- c\n;", 10)
	checkCoverage(t, sql)
}

func checkCoverage(t *testing.T, sql string) {
	t.Helper()
	var l Lexer
	l.KeepComments = true
	l.Reset(sql)
	pos := 0
	for n := 0; ; n++ {
		tok := l.Next()
		if tok.Start < int32(pos) || tok.End < tok.Start || int(tok.End) > len(sql) {
			t.Fatalf("%q: token %d %v out of order (pos %d)", sql, n, tok, pos)
		}
		for i := pos; i < int(tok.Start); i++ {
			if !isSpace(sql[i]) {
				t.Fatalf("%q: byte %d (%q) not covered by a token", sql, i, sql[i])
			}
		}
		if tok.Kind == EOF {
			if int(tok.Start) != len(sql) {
				t.Fatalf("%q: EOF at %d", sql, tok.Start)
			}
			return
		}
		if tok.End == tok.Start {
			t.Fatalf("%q: empty token %v", sql, tok)
		}
		pos = int(tok.End)
	}
}
