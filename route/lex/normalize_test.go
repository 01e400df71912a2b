package lex

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	farm "github.com/dgryski/go-farm"
)

func normalize(t *testing.T, sql string) *Normalized {
	t.Helper()
	var n Normalized
	if err := Normalize(sql, &n); err != nil {
		t.Fatalf("Normalize(%q): %v", sql, err)
	}
	return &n
}

func TestNormalizeText(t *testing.T) {
	tests := []struct{ sql, want string }{
		{"SELECT * FROM t WHERE id = 42", "select * from t where id = ?1"},
		{"select *   from T where ID=7 /* c */", "select * from t where id = ?1"},
		{"SELECT \"MyCol\", x.Y FROM \"S\".t;", `select "MyCol", x.y from "S".t`},
		{"SELECT 'a', E'b', $$c$$, U&'d', B'1', X'F', N'n', 4.2, 1e3, 0x1F, 1_000",
			"select ?s1, ?s2, ?s3, ?s4, ?b5, ?b6, ?n7, ?f8, ?f9, ?10, ?11"},
		{"INSERT INTO t (a, b) VALUES ($1, $2) RETURNING id", "insert into t(a, b) values ($1, $2) returning id"},
		{"SELECT count(*), f( a ) FROM t", "select count(*), f(a) from t"},
		{"SELECT a[1], (b)[2] , c :: int, $1::text", "select a[?1], (b)[?2], c::int, $1::text"},
		{"SELECT t.* FROM t", "select t.* from t"},
		{"SELECT 1;;", "select ?1"},
		{"SELECT 1; SELECT 2", "select ?1; select ?2"},
		{"a!=b", "a <> b"},
		{"a<>b", "a <> b"},
		// unary minus
		{"SELECT -1, - 2, x -3, x-4, (-5), f(1,-6), x=-7, x<=-8, x ^ -9, x^-10", "select ?1, - ?2, x - ?3, x - ?4, (?5), f(?6, ?7), x = ?8, x <= ?9, x ^ ?10, x ^- ?11"},
		{"SELECT * FROM t WHERE -1 = a AND -2 < b OR NOT -3 BETWEEN -4 AND -5", "select * from t where ?1 = a and ?2 < b or not ?3 between ?4 and ?5"},
		{"SELECT -1::int, -2[1], 'a' -3, $1 -4, a) -5, t.from -6, -.5, -1e3", "select - ?1::int, - ?2[?3], ?s4 - ?5, $1 - ?6, a) - ?7, t.from - ?8, ?f9, ?f10"},
		{"SELECT --1\n1", "select ?1"},
		// ORDER BY / GROUP BY positions
		{"SELECT a, b FROM t GROUP BY 1, 2 ORDER BY 2 DESC, 1 LIMIT 10 OFFSET 5", "select a, b from t group by 1, 2 order by 2 desc, 1 limit ?1 offset ?2"},
		{"SELECT a FROM t ORDER BY a + 1, f(1, 2), 3::int", "select a from t order by a + ?1, f(?2, ?3), ?4::int"},
		{"SELECT (SELECT x FROM u ORDER BY 1) FROM t WHERE y IN (1, 2)", "select (select x from u order by 1) from t where y in (?1, ?2)"},
		{"SELECT a FROM t ORDER BY 1 UNION SELECT 1, 2", "select a from t order by 1 union select ?1, ?2"},
		// spacing edge cases stay unambiguous
		{"SELECT a . . b, x.. y", "select a. .b, x .. y"},
		{"SELECT ?1", "select ? ?1"},
		{"SELECT a ?| b", "select a ?| b"},
		{`SELECT \ {`, `select \ {`},
	}
	for _, tc := range tests {
		n := normalize(t, tc.sql)
		if string(n.Text) != tc.want {
			t.Errorf("Normalize(%q):\n got %q\nwant %q", tc.sql, n.Text, tc.want)
		}
		if n.Fingerprint != farm.Fingerprint64(n.Text) {
			t.Errorf("%q: fingerprint is not Fingerprint64(Text)", tc.sql)
		}
	}
}

func TestNormalizeLiterals(t *testing.T) {
	sql := "SELECT * FROM t WHERE a = 'x''y' AND b IN (-12, 3.5) AND c = E'\\n' AND d=$tag$q$tag$ AND e = x -1"
	n := normalize(t, sql)
	var got []string
	for _, r := range n.Literals {
		got = append(got, sql[r[0]:r[1]])
	}
	want := []string{"'x''y'", "-12", "3.5", `E'\n'`, "$tag$q$tag$", "1"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("literals %q, want %q", got, want)
	}
	if string(n.Text) != "select * from t where a = ?s1 and b in (?2, ?f3) and c = ?s4 and d = ?s5 and e = x - ?6" {
		t.Fatalf("text %q", n.Text)
	}
}

func TestNormalizeFingerprint(t *testing.T) {
	same := [][]string{
		{
			"SELECT * FROM t WHERE id = 42",
			"select *   from t where id=7 /* c */",
			"SELECT * FROM t WHERE id = -7",
			"-- comment\nSelect\t*\nFrom T Where Id = 1_000",
			"/* pgshard: shard=3 */ SELECT * FROM t WHERE id = 0x10;",
		},
		{
			"SELECT * FROM t WHERE name = 'bob'",
			"SELECT * FROM t WHERE name = E'b\\'ob'",
			"SELECT * FROM t WHERE name = $$bob$$",
			"SELECT * FROM t WHERE name = 'b'\n'ob'",
		},
		{"SELECT a FROM t WHERE x <> 1", "SELECT a FROM t WHERE x != 2"},
	}
	for _, group := range same {
		fp := normalize(t, group[0]).Fingerprint
		for _, q := range group[1:] {
			if got := normalize(t, q); got.Fingerprint != fp {
				t.Errorf("%q and %q differ: %q vs %q", group[0], q, normalize(t, group[0]).Text, got.Text)
			}
		}
	}
	differ := []string{
		"SELECT * FROM t WHERE id = 42",
		"SELECT * FROM t WHERE id = '42'",
		"SELECT * FROM t WHERE id = 4.2",
		"SELECT * FROM t WHERE id = B'101'",
		"SELECT * FROM t WHERE id = $1",
		"SELECT * FROM t WHERE id > 42",
		"SELECT * FROM t WHERE id >= 42",
		"SELECT * FROM t WHERE idx = 42",
		"SELECT * FROM t WHERE \"ID\" = 42",
		"SELECT * FROM t WHERE \"Id\" = 42",
		"SELECT * FROM u WHERE id = 42",
		"SELECT * FROM t WHERE id = 42 AND 1 = 1",
		"SELECT * FROM t WHERE id IN (1, 2, 3)",
		"SELECT * FROM t WHERE id IN (1, 2)",
		"SELECT * FROM t WHERE id = - 42",
		"SELECT * FROM t WHERE id = 42::int",
		"SELECT * FROM t ORDER BY 1",
		"SELECT * FROM t ORDER BY 2",
		"SELECT * FROM t WHERE id = 42; SELECT 1",
		"SELECT * FROM t WHERE id = ?1",
	}
	seen := map[uint64]string{}
	for _, q := range differ {
		n := normalize(t, q)
		if prev, ok := seen[n.Fingerprint]; ok {
			t.Errorf("%q and %q share a fingerprint (%q)", prev, q, n.Text)
		}
		seen[n.Fingerprint] = q
	}
}

func TestNormalizeHints(t *testing.T) {
	tests := []struct {
		sql  string
		want Hints
	}{
		{"SELECT 1", Hints{Shard: -1}},
		{"/* pgshard: shard=1 */ SELECT 1", Hints{Shard: 1}},
		{"SELECT 1 /* pgshard: key=42 */", Hints{Shard: -1, Key: "42", HasKey: true}},
		{"SELECT /* PgShard : key='a''b c' */ 1", Hints{Shard: -1, Key: "a'b c", HasKey: true}},
		{"SELECT /* pgshard: key='' */ 1", Hints{Shard: -1, Key: "", HasKey: true}},
		{"SELECT 1 /*pgshard:shard=1,key=7*/", Hints{Shard: 1, Key: "7", HasKey: true}},
		{"SELECT 1 /* pgshard: shard = 2 ,  key = 7 */", Hints{Shard: 2, Key: "7", HasKey: true}},
		{"SELECT 1 -- pgshard: shard=2", Hints{Shard: 2}},
		{"SELECT 1 -- pgshard: key=0e8f2a1c-0000-4000-8000-000000000001\n", Hints{Shard: -1, Key: "0e8f2a1c-0000-4000-8000-000000000001", HasKey: true}},
		{"/* pgshard: shard=1 */ SELECT 1 /* pgshard: key=x */ -- pgshard: shard=1", Hints{Shard: 1, Key: "x", HasKey: true}},
		{"SELECT 1 /* not pgshard: shard=x */ /* pgshardx */ /* pgshard */", Hints{Shard: -1}},
		{"SELECT '/* pgshard: shard=1 */'", Hints{Shard: -1}},
	}
	for _, tc := range tests {
		n := normalize(t, tc.sql)
		if n.Hints != tc.want {
			t.Errorf("%q: hints %+v, want %+v", tc.sql, n.Hints, tc.want)
		}
		if strings.Contains(string(n.Text), "pgshard") {
			t.Errorf("%q: hint left in text %q", tc.sql, n.Text)
		}
	}
	bad := []struct{ sql, msg string }{
		{"SELECT 1 /* pgshard: shard=x */", `shard must be a non-negative integer, got "x"`},
		{"SELECT 1 /* pgshard: shard=-1 */", `shard must be a non-negative integer, got "-1"`},
		{"SELECT 1 /* pgshard: shard=99999999999 */", `shard must be a non-negative integer, got "99999999999"`},
		{"SELECT 1 /* pgshard: shrad=1 */", `unknown setting "shrad" (want shard=N, key=VALUE or role=primary|replica)`},
		{"SELECT 1 /* pgshard: shard */", `expected '=' after "shard"`},
		{"SELECT 1 /* pgshard: shard= */", `missing value for "shard"`},
		{"SELECT 1 /* pgshard: key='abc */", `unterminated quoted value for "key"`},
		{"SELECT 1 /* pgshard: */", "no settings (want shard=N, key=VALUE or role=primary|replica)"},
		{"SELECT 1 /* pgshard: =1 */", `expected name=value at "=1 "`},
		{"SELECT 1 /* pgshard: shard=1 */ /* pgshard: shard=2 */", "conflicting shard hints 1 and 2"},
		{"SELECT 1 -- pgshard: key=a\n -- pgshard: key=b", `conflicting key hints "a" and "b"`},
	}
	for _, tc := range bad {
		var n Normalized
		err := Normalize(tc.sql, &n)
		var he *HintError
		if !errors.As(err, &he) || he.Msg != tc.msg {
			t.Errorf("%q: err %v, want hint error %q", tc.sql, err, tc.msg)
			continue
		}
		if !strings.HasPrefix(err.Error(), "malformed pgshard comment \"") || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%q: message %q", tc.sql, err.Error())
		}
		if len(n.Text) == 0 || n.Fingerprint == 0 {
			t.Errorf("%q: n not filled on error", tc.sql)
		}
	}
}

func TestNormalizeSyntaxError(t *testing.T) {
	var n Normalized
	err := Normalize("SELECT 'abc", &n)
	var se *SyntaxError
	if !errors.As(err, &se) || se.Msg != "unterminated quoted string" {
		t.Fatalf("err %v", err)
	}
	if string(n.Text) != "select ?s1" || len(n.Literals) != 1 || n.Literals[0] != [2]int32{7, 11} {
		t.Fatalf("n %q %v", n.Text, n.Literals)
	}
}

func TestNormalizeReuse(t *testing.T) {
	var n Normalized
	if err := Normalize("SELECT 1, 2, 3 /* pgshard: key=9 */", &n); err != nil {
		t.Fatal(err)
	}
	if err := Normalize("SELECT x", &n); err != nil {
		t.Fatal(err)
	}
	if string(n.Text) != "select x" || len(n.Literals) != 0 || n.Hints != (Hints{Shard: -1}) {
		t.Fatalf("state leaked: %q %v %+v", n.Text, n.Literals, n.Hints)
	}
}

// benchQuery is a 100-byte query with 3 literals.
const benchQuery = "SELECT id, name, email, balance FROM accounts WHERE id = 42 AND status = 'active' AND balance > -1.5"

func TestNormalizeNoAlloc(t *testing.T) {
	var n Normalized
	_ = Normalize(benchQuery, &n)
	queries := []string{benchQuery, "select 1 /* pgshard: shard=1, key='abc' */", "SELECT a FROM t ORDER BY 1, 2"}
	for _, q := range queries {
		if a := testing.AllocsPerRun(100, func() { _ = Normalize(q, &n) }); a != 0 {
			t.Errorf("Normalize(%q) allocates %v times", q, a)
		}
	}
}
