package lex

import (
	"strings"
	"testing"
)

func TestMayTouchSession(t *testing.T) {
	for sql, want := range map[string]bool{
		"SELECT abalance FROM pgbench_accounts WHERE aid = 1": false,
		"":                              false,
		"SET x = 1":                     true,
		"reset all":                     true,
		"DISCARD ALL":                   true,
		"Deallocate p":                  true,
		"DECLARE c CURSOR FOR SELECT 1": true,
		"LISTEN c":                      true,
		"UNLISTEN *":                    true,
		"CREATE TEMP TABLE t (a int)":   true,
		"SELECT pg_advisory_lock(1)":    true,
		"SELECT 1 -- se":                false,
	} {
		if got := MayTouchSession([]byte(sql)); got != want {
			t.Errorf("MayTouchSession(%q) = %v, want %v", sql, got, want)
		}
	}
}

func TestSetsConfigForSession(t *testing.T) {
	for sql, want := range map[string]bool{
		"SELECT 1": false,
		"SELECT set_config('search_path', ' ', false)":                      true,
		"SELECT pg_catalog.set_config('a.b', $1, true)":                     false,
		"select SET_CONFIG('a.b', 'x', TRUE), set_config('c.d', 'y', true)": false,
		"select set_config('a.b', 'x', true), set_config('c.d', 'y', $2)":   true,
		"SELECT set_config('a.b', f(1, true), (true))":                      true,
		"SELECT 'set_config(' || 'x'":                                       false,
	} {
		if got := SetsConfigForSession(sql); got != want {
			t.Errorf("%s: %v, want %v", sql, got, want)
		}
	}
}

func TestPreparedStatementLooks(t *testing.T) {
	for _, tc := range []struct {
		sql      string
		mentions bool
		names    []string
		all      bool
	}{
		{"SELECT 1", false, nil, false},
		{"EXECUTE s1(1)", true, []string{"s1"}, false},
		{`EXPLAIN EXECUTE "S 2"`, true, []string{"S 2"}, false},
		{"PREPARE p AS SELECT 1", true, nil, false},
		{"SELECT * FROM pg_prepared_statements", true, nil, true},
		{"DO $$ BEGIN EXECUTE 'EXECUTE s1'; END $$", true, nil, true},
	} {
		if got := MentionsPrepared([]byte(tc.sql)); got != tc.mentions {
			t.Errorf("MentionsPrepared(%q) = %v", tc.sql, got)
		}
		if got := ExecutedNames(tc.sql); strings.Join(got, ",") != strings.Join(tc.names, ",") {
			t.Errorf("ExecutedNames(%q) = %q, want %q", tc.sql, got, tc.names)
		}
		if got := SeesAllPrepared(tc.sql); got != tc.all {
			t.Errorf("SeesAllPrepared(%q) = %v", tc.sql, got)
		}
	}
	for sql, want := range map[string]bool{"ALTER TABLE t ADD c int": true, " (create table x ()": true, "drop view v": true,
		"SELECT 1": false, "-- alter\nSELECT 1": false} {
		if got := ChangesSchema([]byte(sql)); got != want {
			t.Errorf("ChangesSchema(%q) = %v", sql, got)
		}
	}
}

func TestSettingValue(t *testing.T) {
	for sql, want := range map[string]string{
		"SET pgshard.role = 'primary'":                                    "primary",
		"SET pgshard.role TO replica":                                     "replica",
		"set pgshard.role = 'it''s'":                                      "it's",
		"SELECT pg_catalog.set_config('pgshard.role', 'primary', false)":  "primary",
		"SELECT pg_catalog.set_config('pgshard.role', 'o''clock', false)": "o'clock",
		"SELECT 1": "",
	} {
		if got := SettingValue(sql); got != want {
			t.Errorf("SettingValue(%q) = %q, want %q", sql, got, want)
		}
	}
}

// FuzzWordSet holds the word sets' scan to its definition: a word, in any ASCII case, anywhere in the bytes.
func FuzzWordSet(f *testing.F) {
	for _, s := range []string{"SELECT abalance FROM pgbench_accounts WHERE aid = 1", "SeT x", "xunlisten", "pg_temp.t",
		"execut", "DEALLOCATE", "\xffset", "s", ""} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, q []byte) {
		lower := make([]byte, len(q))
		for i, c := range q {
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			lower[i] = c
		}
		for _, w := range []*wordSet{sessionWords, preparedWords} {
			want := false
			for _, words := range w.words {
				for _, word := range words {
					want = want || strings.Contains(string(lower), word)
				}
			}
			if got := w.in(q); got != want {
				t.Fatalf("in(%q) = %v, want %v (words %v)", q, got, want, w.words)
			}
		}
	})
}
