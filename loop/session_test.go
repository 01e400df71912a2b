package loop

import "testing"

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
		if got := setsConfigForSession(sql); got != want {
			t.Errorf("%s: %v, want %v", sql, got, want)
		}
	}
}
