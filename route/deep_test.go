package route

import (
	"strings"
	"testing"
)

// Deeply nested input is refused by pg_query's own stack check (a parse error: Any), never a crash.
func TestDeepNesting(t *testing.T) {
	r := NewRouter(mustSchema(t, testDB()), 10)
	for _, n := range []int{100, 1000, 100000} {
		q := "SELECT * FROM accounts WHERE aid = " + strings.Repeat("(", n) + "1" + strings.Repeat(")", n)
		d := r.Query(q, NoSession)
		if d.Err != nil {
			t.Errorf("depth %d: %s", n, describe(d))
		}
		q = "SELECT * FROM accounts WHERE aid IN (SELECT aid FROM accounts WHERE aid IN " + strings.Repeat("(SELECT aid FROM accounts WHERE aid IN ", n) + "(1)" + strings.Repeat(")", n) + ")"
		d = r.Query(q, NoSession)
		if d.Err != nil && d.Err.Code != notSupported {
			t.Errorf("subquery depth %d: %s", n, describe(d))
		}
	}
}
