package route

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"testing"
)

// A cached plan decides for other literals exactly as a fresh plan does.
func TestCacheHitMatchesMiss(t *testing.T) {
	s := mustSchema(t, testDB())
	// Explicit argument indexes: fmt then ignores the arguments a shape does not use.
	shapes := []string{
		"SELECT abalance FROM accounts WHERE aid = %[1]d",
		"SELECT * FROM accounts WHERE aid IN (%[1]d, %[2]d) AND abalance > %[3]d",
		"UPDATE accounts SET abalance = abalance + %[1]d WHERE aid = %[2]d",
		"INSERT INTO accounts (aid, abalance) VALUES (%[1]d, %[2]d), (%[3]d, 0)",
		"SELECT * FROM accounts a JOIN history h ON h.aid = a.aid WHERE a.aid = %[1]d ORDER BY h.delta LIMIT %[2]d",
		"SELECT * FROM users WHERE name = '%[1]d'",
		"DELETE FROM accounts WHERE aid = -%[1]d",
	}
	cached := NewRouter(s, 100)
	rng := rand.New(rand.NewPCG(1, 2))
	for _, shape := range shapes {
		for i := 0; i < 200; i++ {
			args := make([]any, 4)
			for j := range args {
				args[j] = rng.IntN(100000)
			}
			sql := fmt.Sprintf(shape, args...)
			hit := cached.Query(sql, NoSession)
			miss := NewRouter(s, 1).Query(sql, NoSession)
			if describe(hit) != describe(miss) {
				t.Fatalf("%s:\ncached %s\n fresh %s", sql, describe(hit), describe(miss))
			}
		}
	}
	st := cached.Stats()
	if st.Misses != uint64(len(shapes)) || st.Hits != uint64(len(shapes)*200-len(shapes)) || st.Size != len(shapes) {
		t.Errorf("stats %+v, want %d misses", st, len(shapes))
	}
}

func TestCacheEviction(t *testing.T) {
	s := mustSchema(t, testDB())
	r := NewRouter(s, 3)
	q := func(i int) string { return "SELECT c" + strconv.Itoa(i) + " FROM accounts WHERE aid = 1" }
	for i := 0; i < 10; i++ {
		r.Query(q(i), NoSession)
	}
	st := r.Stats()
	if st.Size != 3 || st.Misses != 10 || st.Evictions != 7 || st.Hits != 0 {
		t.Fatalf("after 10 shapes in a cache of 3: %+v", st)
	}
	// The three most recent stay; using the oldest of them keeps it over the next newcomer.
	r.Query(q(7), NoSession)
	r.Query(q(10), NoSession) // evicts 8
	r.Query(q(7), NoSession)
	r.Query(q(9), NoSession)
	st = r.Stats()
	if st.Hits != 3 || st.Misses != 11 {
		t.Fatalf("LRU order: %+v", st)
	}
	r.Query(q(8), NoSession)
	if st2 := r.Stats(); st2.Misses != 12 {
		t.Fatalf("8 should have been evicted: %+v", st2)
	}
	// Prepared statements share the bound.
	for i := 0; i < 5; i++ {
		r.Prepare(q(i))
	}
	if st := r.Stats(); st.Size != 3 {
		t.Fatalf("size %d", st.Size)
	}
	// A cache of one still works.
	r1 := NewRouter(s, 1)
	for i := 0; i < 3; i++ {
		r1.Query(q(i), NoSession)
		r1.Query(q(i), NoSession)
	}
	if st := r1.Stats(); st.Hits != 3 || st.Misses != 3 || st.Size != 1 {
		t.Fatalf("cache of one: %+v", st)
	}
	if NewRouter(s, 0).cache.size != DefaultCacheSize {
		t.Error("cacheSize 0 does not give the default")
	}
}

// Two texts with the same fingerprint must not share a plan.
func TestCacheCollisionGuard(t *testing.T) {
	s := mustSchema(t, testDB())
	e := newExpander(t, s)
	r := NewRouter(s, 10)
	q := e.sql("SELECT * FROM accounts WHERE aid = {k1}")
	r.Query(q, NoSession)
	// Plant a foreign plan under the same fingerprint with another text, as a collision would.
	k := cacheKey{fp: r.norm.Fingerprint}
	i := r.cache.m[k]
	r.cache.ents[i].text = "select 1"
	r.cache.ents[i].plan = &Plan{kind: planSession}
	d := r.Query(q, NoSession)
	on(1).check(t, "after a collision", d)
	if st := r.Stats(); st.Misses != 2 || st.Hits != 0 {
		t.Errorf("stats %+v: the colliding entry was used", st)
	}
	// Same for prepared statements.
	p := r.Prepare(q)
	pk := cacheKey{fp: k.fp, prepared: true}
	for key, idx := range r.cache.m {
		if key.prepared {
			pk = key
			r.cache.ents[idx].text = "other"
		}
	}
	if p2 := r.Prepare(q); p2 == p || r.cache.ents[r.cache.m[pk]].text != q {
		t.Error("prepared collision not guarded")
	}
	// A Query and a Prepare of one text never share an entry.
	if _, ok := r.cache.m[cacheKey{fp: k.fp, prepared: true}]; ok && k.fp == pk.fp {
		t.Error("Query and Prepare keys collide")
	}
}

func TestParseErrorsCounted(t *testing.T) {
	s := mustSchema(t, testDB())
	r := NewRouter(s, 10)
	r.Query("SELEC 1", NoSession)
	r.Query("SELEC 2", NoSession) // same shape: cached
	r.Prepare("SELEC $1")
	if st := r.Stats(); st.ParseErrors != 2 || st.Hits != 1 {
		t.Errorf("stats %+v", st)
	}
}

// The hot path allocates nothing: a cache hit of a query with literals, its Bind twin, and an INSERT.
func TestHitAllocatesNothing(t *testing.T) {
	s := mustSchema(t, testDB())
	r := NewRouter(s, 100)
	queries := []string{
		"SELECT abalance FROM pgbench_accounts WHERE aid = 48213",
		"UPDATE pgbench_accounts SET abalance = abalance + -4711 WHERE aid = 48213",
		"INSERT INTO accounts (aid, abalance) VALUES (17, 0)",
		"SELECT * FROM users WHERE name = 'alice'",
		"SELECT * FROM accounts WHERE aid IN (1, 2, 3) AND bid = 4",
		"BEGIN",
		"/* pgshard: shard=1 */ SELECT * FROM accounts",
		"SELECT * FROM devices WHERE id = 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'",
	}
	for _, q := range queries {
		r.Query(q, NoSession)
		if n := testing.AllocsPerRun(200, func() { r.Query(q, NoSession) }); n != 0 {
			t.Errorf("%s: %v allocs per cache hit", q, n)
		}
	}
	p := r.Prepare("SELECT abalance FROM pgbench_accounts WHERE aid = $1")
	params := Params{Values: [][]byte{[]byte("48213")}}
	if n := testing.AllocsPerRun(200, func() { r.Bind(p, params, NoSession) }); n != 0 {
		t.Errorf("Bind: %v allocs", n)
	}
	q := "SELECT abalance FROM pgbench_accounts WHERE aid = $1"
	if n := testing.AllocsPerRun(200, func() { r.Prepare(q) }); n != 0 {
		t.Errorf("Prepare hit: %v allocs", n)
	}
}
