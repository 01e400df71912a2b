package loop

import (
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/pgshard/pgshard/codec"
)

// The registry keeps a statement while a client names it and shares it; once no client does it waits in the
// idle list, still shared, and the oldest idle ones past maxIdleStmts leave the registry.
func TestStmtRegistryIsBounded(t *testing.T) {
	var r stmtRegistry
	var a, b map[string]*stmt
	get := func(i int) *stmt { return r.get([]byte("SELECT "+strconv.Itoa(i)), "", "", codec.OIDs{}) }
	n := maxIdleStmts + 500
	for i := 0; i < n; i++ {
		r.setName(&a, "s"+strconv.Itoa(i), get(i))
	}
	if got := r.size(); got != n {
		t.Fatalf("registry holds %d statements a client names, want all %d", got, n)
	}
	first := a["s0"]
	r.setName(&b, "mine", get(0))
	if b["mine"] != first {
		t.Fatal("the same text and types is not shared")
	}
	r.dropNames(&a)
	if got := r.size(); got != maxIdleStmts+1 {
		t.Fatalf("after the client left the registry holds %d, want %d (the idle bound and the one still named)", got, maxIdleStmts+1)
	}
	if get(0) != first {
		t.Fatal("a statement another client still names left the registry")
	}
	recent := r.idle.Front().Value.(*stmt)
	if r.get([]byte(recent.query), "", "", codec.OIDs{}) != recent {
		t.Fatal("a statement released last is not shared any more")
	}
	r.dropNames(&b)
	if got := r.size(); got > maxIdleStmts {
		t.Fatalf("registry holds %d, more than the idle bound", got)
	}
}

// A statement no client uses may wait in the registry (maxIdleStmts of them), so what one keeps is mostly its
// text, held once: inside its Parse message, which still names it and carries the text and types a client sent.
func TestStmtKeepsItsTextOnce(t *testing.T) {
	filler := strings.Repeat("x", 1000)
	var r stmtRegistry
	const n = 2000
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := 0; i < n; i++ {
		r.getRaw([]byte(fmt.Sprintf("SELECT %d, '%s'", i, filler)), "", "", []uint32{23})
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	perStmt := int(after.HeapAlloc-before.HeapAlloc) / n
	t.Logf("%d B kept per statement of 1 kB", perStmt)
	if perStmt > 1800 {
		t.Errorf("the registry keeps %d B per statement of 1 kB: its text is held more than once", perStmt)
	}
	st := r.getRaw([]byte("SELECT 7, '"+filler+"'"), "", "", []uint32{23})
	m, err := codec.ParseParse([]byte(st.parse)[5:])
	if err != nil {
		t.Fatal(err)
	}
	if string(m.Name) != st.name || string(m.Query) != st.query || st.query != "SELECT 7, '"+filler+"'" || len(st.types) != 4 {
		t.Fatalf("Parse %q %q, stmt %q %q", m.Name, m.Query, st.name, st.query)
	}
	runtime.KeepAlive(&r)
}
