package route

import (
	"math/bits"
	"strconv"
	"strings"
	"testing"

	"github.com/pgshard/pgshard/codec"
)

// An INSERT without a column list asks for its key's position first, then routes each row by the value at
// that position, whichever it is.
func TestPositionalInsertRoutesByTheKeyPositionTheCatalogGives(t *testing.T) {
	s := mustSchema(t, testDB())
	r := NewRouter(s, 100)
	shardOf := func(v int) uint64 { return shardOfText(t, s, "accounts", strconv.Itoa(v)) }
	// Two values of different shards, to tell which position was read.
	a, b := 1, 2
	for shardOf(a) == shardOf(b) {
		b++
	}
	sql := "INSERT INTO accounts VALUES (" + strconv.Itoa(a) + ", " + strconv.Itoa(b) + ", 0)"
	d := r.Query(sql, NoSession)
	if d.NeedKey == nil || d.Err != nil || d.Shards != 0 || !d.Write {
		t.Fatalf("without the key's position: %+v, want NeedKey", d)
	}
	if q := d.NeedKey.Query; !strings.Contains(q, "to_regclass('accounts')") || !strings.Contains(q, "k.attname = 'aid'") {
		t.Fatalf("catalog query %q", q)
	}
	at := func(n int) Session {
		return Session{Shard: -1, KeyAt: &KeyPosition{Query: d.NeedKey.Query, At: n}}
	}
	if got := r.Query(sql, at(0)); got.Err != nil || got.Shards != shardOf(a) {
		t.Errorf("key first: %+v, want the shard of %d", got, a)
	}
	if got := r.Query(sql, at(1)); got.Err != nil || got.Shards != shardOf(b) {
		t.Errorf("key second: %+v, want the shard of %d", got, b)
	}
	if got := r.Query(sql, at(NoTable)); !got.Any || got.Err != nil {
		t.Errorf("no such table: %+v, want any shard (the server reports it)", got)
	}
	if got := r.Query(sql, at(KeyMissing)); got.Err == nil || !strings.Contains(got.Err.Message, "no shard key column aid") {
		t.Errorf("a table without its key column: %+v, want 0A000", got)
	}
	if got := r.Query(sql, at(5)); got.Err == nil || got.Err.Code != codec.SQLStateFeatureNotSupported {
		t.Errorf("key past the row's values: %+v, want 0A000", got)
	}
	// An answer for another statement's query is not this one's.
	other := Session{Shard: -1, KeyAt: &KeyPosition{Query: "SELECT 1", At: 0}}
	if got := r.Query(sql, other); got.NeedKey == nil {
		t.Errorf("another table's position was used: %+v", got)
	}
	// Rows of two shards are split, each piece with the rows of its shard, as with a column list.
	multi := "INSERT INTO accounts VALUES (" + strconv.Itoa(a) + ", 1, 0), (" + strconv.Itoa(b) + ", 1, 0)"
	mq := r.Query(multi, NoSession).NeedKey
	if got := r.Query(multi, Session{Shard: -1, KeyAt: &KeyPosition{Query: mq.Query, At: 0}}); len(got.Split) != 2 ||
		bits.OnesCount64(got.Shards) != 2 {
		t.Errorf("two rows of two shards: %+v, want split in two", got)
	}
	// Expressions and DEFAULT are refused where the key is, not elsewhere.
	expr := "INSERT INTO accounts VALUES (" + strconv.Itoa(a) + ", 1 + 1, DEFAULT)"
	eq := r.Query(expr, NoSession).NeedKey
	for n, want := range []string{"", "an expression", "DEFAULT"} {
		got := r.Query(expr, Session{Shard: -1, KeyAt: &KeyPosition{Query: eq.Query, At: n}})
		if want == "" && (got.Err != nil || got.Shards != shardOf(a)) || want != "" && (got.Err == nil || !strings.Contains(got.Err.Message, want)) {
			t.Errorf("key at %d of (%d, 1 + 1, DEFAULT): %+v, want %q", n, a, got, want)
		}
	}
	// A prepared statement: the key's value comes from its Bind.
	p := r.Prepare("INSERT INTO public.accounts VALUES ($1, $2)")
	d = r.Bind(p, Params{Values: [][]byte{[]byte(strconv.Itoa(a)), []byte(strconv.Itoa(b))}}, NoSession)
	if d.NeedKey == nil || !strings.Contains(d.NeedKey.Query, "to_regclass('public.accounts')") {
		t.Fatalf("Bind without the position: %+v", d)
	}
	d = r.Bind(p, Params{Values: [][]byte{[]byte(strconv.Itoa(a)), []byte(strconv.Itoa(b))}},
		Session{Shard: -1, KeyAt: &KeyPosition{Query: d.NeedKey.Query, At: 1}})
	if d.Err != nil || d.Shards != shardOf(b) {
		t.Errorf("Bind with the key second: %+v, want the shard of %d", d, b)
	}
	// Hints still decide without asking.
	if got := r.Query("/* pgshard: shard=1 */ "+sql, NoSession); got.NeedKey != nil || got.Shards != 2 {
		t.Errorf("shard hint: %+v", got)
	}
}
