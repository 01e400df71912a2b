package compat

import (
	"bytes"
	"os"
	"slices"
	"strings"
	"testing"
)

// pg_regress 15's output: serial tests, a parallel group, an ignored failure, a crashed test.
const regressOut = `(using postmaster on 127.0.0.1, port 5432)
============== running regression test queries        ==============
test test_setup                   ... ok          311 ms
test tablespace                   ... FAILED      567 ms
parallel group (3 tests):  boolean random char
     boolean                      ... ok          597 ms
     random                       ... failed (ignored)      444 ms
     char                         ... FAILED (test process exited with exit code 2)     1032 ms
 2 of 5 tests failed, 1 of these failures ignored.
`

func TestParseResults(t *testing.T) {
	res, err := ParseResults(strings.NewReader(regressOut))
	if err != nil {
		t.Fatal(err)
	}
	want := Results{"test_setup": true, "tablespace": false, "boolean": true, "random": false, "char": false}
	if len(res) != len(want) {
		t.Fatalf("got %v, want %v", res, want)
	}
	for name, ok := range want {
		if got, seen := res[name]; !seen || got != ok {
			t.Errorf("%s: got %v (seen %v), want %v", name, got, seen, ok)
		}
	}
	if got := res.Passed(); !slices.Equal(got, []string{"boolean", "test_setup"}) {
		t.Errorf("Passed() = %v", got)
	}
}

func TestParseExpectations(t *testing.T) {
	exp, err := ParseExpectations(strings.NewReader(`# comment

transaction  prepare   SQL PREPARE names are mapped:  "q1" shows as pgshard_q1
session temp reused backend
`))
	if err != nil {
		t.Fatal(err)
	}
	if got := exp["transaction"]["prepare"]; got != `SQL PREPARE names are mapped:  "q1" shows as pgshard_q1` {
		t.Errorf("reason = %q", got)
	}
	if got := exp["session"]["temp"]; got != "reused backend" {
		t.Errorf("reason = %q", got)
	}
	for _, bad := range []string{"transaction prepare", "bogus prepare why", "session temp a\nsession temp b"} {
		if _, err := ParseExpectations(strings.NewReader(bad)); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestCompare(t *testing.T) {
	direct := Results{"a": true, "b": true, "c": true, "d": false, "e": true}
	proxied := Results{"a": true, "b": false, "c": false, "d": true, "e": true}
	exp := Expectations{"transaction": {"b": "why b", "e": "fixed since", "d": "fails directly too"}}
	c := Compare("transaction", direct, proxied, exp)
	if c.Total != 5 || c.Direct != 4 || c.Proxied != 2 {
		t.Errorf("counts: %+v", c)
	}
	if !slices.Equal(c.Expected, []string{"b"}) || !slices.Equal(c.Unexpected, []string{"c"}) ||
		!slices.Equal(c.Stale, []string{"d", "e"}) || !slices.Equal(c.ExtraProxyPass, []string{"d"}) {
		t.Errorf("lists: %+v", c)
	}

	var buf bytes.Buffer
	if Report(&buf, []Comparison{c}, exp, "/out") {
		t.Errorf("Report ok with an unexpected failure:\n%s", buf.String())
	}
	for _, want := range []string{"NEW   c", "known b", "why b", "remove the lines): d e", "/out/transaction/regression.diffs"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, buf.String())
		}
	}
	if !Report(&buf, []Comparison{Compare("session", direct, direct, exp)}, exp, "/out") {
		t.Error("Report not ok for a clean session run")
	}
}

// The checked-in file parses, so that a bad line fails plain `go test`, not only `make compat`.
func TestExpectationsFile(t *testing.T) {
	f, err := os.Open("expected-failures.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := ParseExpectations(f); err != nil {
		t.Fatalf("expected-failures.txt: %v", err)
	}
}
