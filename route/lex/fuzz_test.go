package lex

import (
	"strings"
	"testing"
)

var fuzzSeeds = []string{
	"SELECT * FROM t WHERE id = 42",
	"select  PG_ADVISORY_LOCK(1), 2",
	"/* a /* b */ c */ SELECT E'it\\'s', $fn$ body with 'quotes' and $$ $fn$, U&'\\0041', a<=-1, x.y, $1::int, 1.e5, .5, 1..10, 1_000",
	"SELECT 'a'\n'b', B'101', X'1F', N'x', 0x1F, 0o17, 0b101, \"Q\"\"x\", U&\"d\\0061\"",
	"SET search_path = \"$user\", public; SET TIME ZONE 'UTC'; set local statement_timeout=5",
	"PREPARE \"MyStmt\" (int) AS SELECT $1; EXECUTE \"MyStmt\"(1); DEALLOCATE PREPARE \"MyStmt\"",
	"/* pgshard: shard=1, key='a''b' */ SELECT 1 -- pgshard: key=7\n",
	"/* pgshard: shard=x */ SELECT 1",
	"CREATE FUNCTION f() RETURNS int BEGIN ATOMIC SELECT 1; END; SELECT 2",
	"SELECT a FROM t GROUP BY 1 ORDER BY -1, 2 LIMIT 3",
	"DECLARE c CURSOR WITH HOLD FOR SELECT 1; CREATE TEMP TABLE t(a int); DISCARD ALL; UNLISTEN *",
	"SELECT 'unterminated",
	"SELECT $x$ unterminated",
	"SELECT /* unterminated",
	"SELECT 123abc, 0x, 1e+, $1a, \"\"",
	"a!=b @- 1 ?| x ^- 2 !~~* y",
}

func addSeeds(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s)
	}
}

// FuzzLexer checks that lexing never panics, that tokens cover the input in order without overlapping (only
// whitespace between them), that skipping comments changes nothing else, and that Unquote and Split stay in
// bounds.
func FuzzLexer(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, sql string) {
		var all, noComments []Token
		starts, ends := map[int]bool{}, map[int]bool{}
		var l Lexer
		l.KeepComments = true
		l.Reset(sql)
		pos := 0
		for {
			tok := l.Next()
			if tok.Start < int32(pos) || tok.End < tok.Start || int(tok.End) > len(sql) {
				t.Fatalf("token %v out of order or bounds (pos %d, len %d)", tok, pos, len(sql))
			}
			for i := pos; i < int(tok.Start); i++ {
				if !isSpace(sql[i]) {
					t.Fatalf("byte %d (%q) not covered", i, sql[i])
				}
			}
			if tok.Kind == EOF {
				if int(tok.Start) != len(sql) {
					t.Fatalf("EOF at %d of %d", tok.Start, len(sql))
				}
				break
			}
			if tok.End == tok.Start {
				t.Fatalf("empty token %v", tok)
			}
			pos = int(tok.End)
			starts[int(tok.Start)], ends[int(tok.End)] = true, true
			_ = Unquote(sql, tok)
			if tok.Kind != Comment {
				all = append(all, tok)
			}
		}
		keepErr := l.Err()

		l.KeepComments = false
		l.Reset(sql)
		for tok := l.Next(); tok.Kind != EOF; tok = l.Next() {
			noComments = append(noComments, tok)
		}
		if len(all) != len(noComments) {
			t.Fatalf("%d tokens with comments kept, %d without", len(all), len(noComments))
		}
		for i := range all {
			if all[i] != noComments[i] {
				t.Fatalf("token %d: %v vs %v", i, all[i], noComments[i])
			}
		}
		if (keepErr == nil) != (l.Err() == nil) {
			t.Fatalf("errors differ: %v vs %v", keepErr, l.Err())
		}

		end := 0
		for _, r := range Split(sql, nil) {
			if r[0] < end || r[1] <= r[0] || r[1] > len(sql) {
				t.Fatalf("split range %v out of order or bounds (after %d)", r, end)
			}
			if !starts[r[0]] || !ends[r[1]] {
				t.Fatalf("split range %v does not run from a token's start to a token's end: %q", r, sql[r[0]:r[1]])
			}
			end = r[1]
		}
	})
}

// FuzzNormalize checks that Normalize never panics, that literal ranges are in bounds and in order, that the
// fingerprint matches the text, and that respacing the tokens (when that does not change how they lex) keeps
// the fingerprint.
func FuzzNormalize(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, sql string) {
		var n Normalized
		err := Normalize(sql, &n)
		end := int32(0)
		for _, r := range n.Literals {
			if r[0] < end || r[1] <= r[0] || int(r[1]) > len(sql) {
				t.Fatalf("literal range %v out of order or bounds", r)
			}
			end = r[1]
		}
		if len(n.Text) > 3*len(sql)+16 {
			t.Fatalf("text of %d bytes for %d of input", len(n.Text), len(sql))
		}
		if n.Hints.Shard < -1 {
			t.Fatalf("shard %d", n.Hints.Shard)
		}
		if err != nil {
			return
		}

		// Respace: the tokens joined by single spaces (or by a newline and a tab) must give the same
		// fingerprint, provided they lex the same way and no '-' touched a number (unary minus folds only
		// then).
		var l Lexer
		l.Reset(sql)
		var parts []string
		var kinds []Kind
		for tok := l.Next(); tok.Kind != EOF; tok = l.Next() {
			if tok.Kind == Op && sql[tok.Start:tok.End] == "-" && int(tok.End) < len(sql) &&
				(isDigit(sql[tok.End]) || sql[tok.End] == '.') {
				return
			}
			parts = append(parts, sql[tok.Start:tok.End])
			kinds = append(kinds, tok.Kind)
		}
		for _, sep := range []string{" ", "  \t "} {
			respaced := strings.Join(parts, sep)
			l.Reset(respaced)
			i := 0
			same := true
			for tok := l.Next(); tok.Kind != EOF; tok = l.Next() {
				if i >= len(parts) || tok.Kind != kinds[i] || respaced[tok.Start:tok.End] != parts[i] {
					same = false
					break
				}
				i++
			}
			if !same || i != len(parts) || l.Err() != nil {
				continue
			}
			var m Normalized
			if err := Normalize(respaced, &m); err != nil {
				t.Fatalf("respaced %q: %v", respaced, err)
			}
			if m.Fingerprint != n.Fingerprint || len(m.Literals) != len(n.Literals) {
				t.Fatalf("respacing changed the normalized text:\n%q -> %q\n%q -> %q", sql, n.Text, respaced, m.Text)
			}
		}
	})
}

// FuzzClassify checks that Classify never panics and that its ranges are in bounds.
func FuzzClassify(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, sql string) {
		for _, r := range Split(sql, nil) {
			stmt := sql[r[0]:r[1]]
			st := Classify(stmt)
			for _, rg := range [][2]int{st.NameRange, st.Body, st.TypesRange} {
				if rg[0] < 0 || rg[1] < rg[0] || rg[1] > len(stmt) {
					t.Fatalf("%q: range %v out of bounds: %+v", stmt, rg, st)
				}
			}
			if st.Kind == StmtPrepare && st.Body[1] <= st.Body[0] {
				t.Fatalf("%q: empty body: %+v", stmt, st)
			}
			if st.Kind == StmtSet && st.Name == "" {
				t.Fatalf("%q: SET without a name", stmt)
			}
			if st.Kind > StmtRollbackTo {
				t.Fatalf("kind %d", st.Kind)
			}
		}
		// The shortcut taken when sql cannot call a lock function nor say TEMP changes nothing.
		if got, full := Classify(sql), classify(sql, mayContain{advisory: true, temp: true}); got != full {
			t.Fatalf("%q: Classify %+v, full scan %+v", sql, got, full)
		}
	})
}

// FuzzReadAccess checks that ReadAccess never panics, and that a string it calls a read stays one with a
// second read after it, and stops being one with a write after it.
func FuzzReadAccess(f *testing.F) {
	addSeeds(f)
	f.Add("SELECT * FROM t FOR UPDATE")
	f.Add("WITH d AS (DELETE FROM t RETURNING *) SELECT 1")
	f.Add("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE, READ ONLY")
	f.Add("begin work;")
	f.Fuzz(func(t *testing.T, sql string) {
		// A plain BEGIN or a SET TRANSACTION READ ONLY is one statement: another after it makes it neither.
		if PlainBegin(sql+"\n;SELECT 1") || SetsReadOnly(sql+"\n;INSERT INTO t VALUES (1)") {
			t.Fatalf("%q with a statement after it is a plain BEGIN or a SET TRANSACTION READ ONLY", sql)
		}
		if !ReadAccess(sql).Read {
			return
		}
		if !ReadAccess(sql + "\n;SELECT 1").Read {
			t.Fatalf("%q is a read, and not with a SELECT after it", sql)
		}
		if ReadAccess(sql + "\n;INSERT INTO t VALUES (1)").Read {
			t.Fatalf("%q with an INSERT after it is a read", sql)
		}
	})
}
