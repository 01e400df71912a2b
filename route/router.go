package route

import (
	"bytes"
	"strings"

	farm "github.com/dgryski/go-farm"
	pg "github.com/pganalyze/pg_query_go/v6"

	"github.com/pgshard/pgshard/codec"
	"github.com/pgshard/pgshard/route/lex"
)

// DefaultCacheSize is the plan cache size NewRouter uses for a cacheSize of 0 or less.
const DefaultCacheSize = 1024

// Router plans and routes statements for one database. Use one per event loop: it is not safe for concurrent
// use and takes no locks. Its plan cache is a bounded LRU of normalized statement shapes (simple Query) and
// exact statement texts (Prepare).
type Router struct {
	s     *Schema
	norm  lex.Normalized
	split [][2]int
	cache lru
	stats RouterStats
}

// RouterStats counts the plan cache's work.
type RouterStats struct {
	Hits        uint64 // plans found in the cache
	Misses      uint64 // plans built (each one pg_query parse)
	Evictions   uint64 // plans dropped to keep the cache within its size
	Size        int    // plans in the cache now
	ParseErrors uint64 // statements pg_query could not parse (routed Any: the server reports the error)
}

// NewRouter returns a Router for schema s whose plan cache holds up to cacheSize plans.
func NewRouter(s *Schema, cacheSize int) *Router {
	if cacheSize <= 0 {
		cacheSize = DefaultCacheSize
	}
	r := &Router{s: s}
	r.cache.init(cacheSize)
	return r
}

// Schema returns the schema r routes for.
func (r *Router) Schema() *Schema { return r.s }

// Stats returns the plan cache counters.
func (r *Router) Stats() RouterStats {
	st := r.stats
	st.Size = r.cache.len()
	return st
}

// Query routes the text of a simple-protocol Query message, which may hold several statements: each is routed
// and the decisions are combined (the union of their shards; Any only when all are Any; Write when any writes;
// Mirror when every statement that is not Any mirrors; the first error). Only a single-statement Query may be
// split (Decision.Split).
func (r *Router) Query(sql string, sess Session) Decision {
	err := lex.Normalize(sql, &r.norm)
	if bytes.IndexByte(r.norm.Text, ';') >= 0 {
		return r.multi(sql, sess)
	}
	return r.one(sql, err, sess, true)
}

// one routes one statement whose normalization (into r.norm) returned err.
func (r *Router) one(sql string, err error, sess Session, allowSplit bool) Decision {
	if err != nil {
		if he, ok := err.(*lex.HintError); ok {
			return Decision{Err: codec.NewError(codec.SQLStateInvalidParameterValue, he.Error())}
		}
		return Decision{Any: true} // a lexical error: the server reports it
	}
	if len(r.norm.Text) == 0 {
		return Decision{Any: true}
	}
	p := r.lookup(sql)
	return p.eval(r.s, sql, r.norm.Literals, nil, &r.norm.Hints, &sess, allowSplit)
}

// multi routes a Query string that holds several statements.
func (r *Router) multi(sql string, sess Session) Decision {
	r.split = lex.Split(sql, r.split[:0])
	var out Decision
	first := true
	for _, rg := range r.split {
		stmt := sql[rg[0]:rg[1]]
		err := lex.Normalize(stmt, &r.norm)
		d := r.one(stmt, err, sess, len(r.split) == 1)
		if d.Err != nil {
			return d
		}
		if d.NeedKey != nil {
			if len(r.split) > 1 {
				return Decision{Err: codec.NewError(codec.SQLStateFeatureNotSupported, "an INSERT into a sharded table "+
					"without a column list is routed only as a query of its own").
					WithHint("give the INSERT a column list, or send it alone"), Write: true}
			}
			return d
		}
		if d.Gather != nil || d.Coordinated != "" {
			if len(r.split) > 1 {
				return Decision{Err: codec.NewError(codec.SQLStateFeatureNotSupported, "a cross-shard SELECT that "+
					"pgshard answers in two steps (see docs/cross-shard.md) is run only as a query of its own").
					WithHint("send the SELECT alone")}
			}
			return d
		}
		out.Write = out.Write || d.Write
		if d.Warning != nil {
			out.Warning = d.Warning
		}
		switch {
		case first:
			out.Shards, out.Any, out.Mirror = d.Shards, d.Any, d.Mirror
		case d.Any:
		case out.Any:
			out.Shards, out.Any, out.Mirror = d.Shards, false, d.Mirror
		case d.Shards != out.Shards:
			// Each statement of the string would run on every shard of the union: a write meant for one
			// shard would land on all of them. Splitting the string (and its implicit transaction) across
			// shards is not done yet.
			return Decision{Err: codec.NewError(codec.SQLStateFeatureNotSupported,
				"a query string whose statements go to different shards is not supported: send the statements one at a time").
				WithHint("the proxy routes a multi-statement simple query as a whole; pgx batches in simple protocol mode send one such string")}
		default:
			out.Mirror = out.Mirror && d.Mirror
		}
		first = false
	}
	if first {
		out.Any = true
	}
	return out
}

// lookup returns the plan of the statement normalized in r.norm, building it on a miss.
func (r *Router) lookup(sql string) *Plan {
	k := cacheKey{fp: r.norm.Fingerprint}
	if e := r.cache.get(k); e != nil && e.text == string(r.norm.Text) {
		r.stats.Hits++
		return e.plan
	}
	r.stats.Misses++
	p := r.build(sql, r.norm.Literals)
	if ev := r.cache.put(k, string(r.norm.Text), p); ev {
		r.stats.Evictions++
	}
	return p
}

// build parses sql and plans it.
func (r *Router) build(sql string, lits [][2]int32) *Plan {
	tree, err := pg.Parse(sql)
	if err != nil {
		r.stats.ParseErrors++
		return &Plan{kind: planUnknown}
	}
	return buildPlan(r.s, sql, lits, tree.Stmts)
}

// Prepare plans the text of an extended-protocol Parse message. Plans are cached by the exact text; the Plan
// stays valid for as long as the caller keeps it (evicting it from the cache does not change it). A Plan from
// Prepare keeps its own copy of the text, its literals and its pgshard comment hints, for Bind.
func (r *Router) Prepare(sql string) *Plan {
	k := cacheKey{fp: farm.Fingerprint64(bytesOf(sql)), prepared: true}
	if e := r.cache.get(k); e != nil && e.text == sql {
		r.stats.Hits++
		return e.plan
	}
	r.stats.Misses++
	sql = strings.Clone(sql)
	var n lex.Normalized
	err := lex.Normalize(sql, &n)
	var p *Plan
	switch err.(type) {
	case nil:
		p = r.build(sql, n.Literals)
	case *lex.HintError:
		p = &Plan{hard: codec.NewError(codec.SQLStateInvalidParameterValue, err.Error())}
	default:
		p = &Plan{kind: planUnknown}
	}
	p.sql, p.lits, p.hints = sql, n.Literals, n.Hints
	if p.merge != nil && p.merge.tmpl != nil {
		p.shardSQL, _ = render(p.merge.tmpl, sql, n.Literals)
	}
	if ev := r.cache.put(k, sql, p); ev {
		r.stats.Evictions++
	}
	return p
}

// Bind routes one execution of a prepared statement with its parameter values. A nil plan routes Any.
func (r *Router) Bind(p *Plan, params Params, sess Session) Decision {
	if p == nil {
		return Decision{Any: true}
	}
	return p.eval(r.s, p.sql, p.lits, &params, &p.hints, &sess, false)
}

// cacheKey is a plan's key: the normalized text's fingerprint (Query) or the exact text's (Prepare).
type cacheKey struct {
	fp       uint64
	prepared bool
}

// lru is a bounded map of plans with least-recently-used eviction, over a fixed array of entries linked in
// use order.
type lru struct {
	m          map[cacheKey]int32
	ents       []lruEntry
	head, tail int32 // most and least recently used, -1 when empty
	size       int
}

type lruEntry struct {
	key        cacheKey
	text       string // the normalized (Query) or exact (Prepare) text: guards against fingerprint collisions
	plan       *Plan
	prev, next int32
}

func (c *lru) init(size int) {
	c.m = make(map[cacheKey]int32, size)
	c.size = size
	c.head, c.tail = -1, -1
}

func (c *lru) len() int { return len(c.m) }

// get returns the entry of k and marks it most recently used, or nil.
func (c *lru) get(k cacheKey) *lruEntry {
	i, ok := c.m[k]
	if !ok {
		return nil
	}
	c.touch(i)
	return &c.ents[i]
}

// put stores a plan under k (replacing what k held) and reports whether another plan was evicted.
func (c *lru) put(k cacheKey, text string, p *Plan) bool {
	if i, ok := c.m[k]; ok {
		c.ents[i].text, c.ents[i].plan = text, p
		c.touch(i)
		return false
	}
	evicted := false
	var i int32
	if len(c.ents) < c.size {
		i = int32(len(c.ents))
		c.ents = append(c.ents, lruEntry{prev: -1, next: -1})
	} else {
		i = c.tail
		c.unlink(i)
		delete(c.m, c.ents[i].key)
		evicted = true
	}
	c.ents[i] = lruEntry{key: k, text: text, plan: p, prev: -1, next: -1}
	c.m[k] = i
	c.pushFront(i)
	return evicted
}

func (c *lru) touch(i int32) {
	if c.head == i {
		return
	}
	c.unlink(i)
	c.pushFront(i)
}

func (c *lru) unlink(i int32) {
	e := &c.ents[i]
	if e.prev >= 0 {
		c.ents[e.prev].next = e.next
	} else {
		c.head = e.next
	}
	if e.next >= 0 {
		c.ents[e.next].prev = e.prev
	} else {
		c.tail = e.prev
	}
	e.prev, e.next = -1, -1
}

func (c *lru) pushFront(i int32) {
	e := &c.ents[i]
	e.prev, e.next = -1, c.head
	if c.head >= 0 {
		c.ents[c.head].prev = i
	}
	c.head = i
	if c.tail < 0 {
		c.tail = i
	}
}
