package loop

import (
	"container/list"
	"strings"

	"github.com/pgshard/pgshard/codec"
	"github.com/pgshard/pgshard/route/lex"
)

// SQL-level PREPARE, EXECUTE and DEALLOCATE in transaction mode. A statement lives on the server under the
// client's own name, so the client's SQL goes to the server as it wrote it: errors and their positions,
// EXPLAIN EXECUTE, CREATE TABLE ... AS EXECUTE and psql's \gdesc are the server's own. What pgshard adds is
// hidden statements in front of the client's query, so that the server holds under each name what this client
// prepared under it: the client's PREPARE on a server where another client left that name gets a DEALLOCATE
// first, and an EXECUTE (or DEALLOCATE) of a name the server lacks, or holds for another client, gets the
// PREPARE first. A name counts as prepared or deallocated once the server confirms it (its CommandComplete).
// SQL EXECUTE does not see statements prepared with a protocol-level Parse (README, known limitations).

// sqlStmt returns the shared statement for a PREPARE's "(types) AS body". When the PREPARE was a query string of
// its own, whole is that string: a server is given the client's own text again, which pg_prepared_statements
// shows as Postgres would.
func (r *stmtRegistry) sqlStmt(types, body, whole string) *stmt {
	key := "\x00PREPARE" + types + "\x00" + body + "\x00" + whole // cannot collide with a Parse's query text
	r.mu.Lock()
	defer r.mu.Unlock()
	if list := r.byText[key]; len(list) > 0 {
		return list[0]
	}
	st := &stmt{query: types + " AS " + body, send: whole}
	st.fx = effectsOf([]byte(body))
	return r.add(key, st)
}

// prepareAs is the PREPARE that makes st the statement name on a server: the client's own query string when
// it prepared st alone (it names name), else one made of its parts.
func prepareAs(name string, st *stmt) string {
	if st.send != "" {
		return st.send
	}
	return "PREPARE " + quoteIdent(name) + st.query
}

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// sqlOp is a PREPARE or DEALLOCATE of the client's query, applied when the server confirms it.
type sqlOp struct {
	tag  string // the CommandComplete that confirms it: PREPARE, DEALLOCATE or DEALLOCATE ALL
	name string
	st   *stmt // PREPARE: what the name now means
}

// sqlNames are the SQL-level prepared statements on one server connection, by name, least recently used first
// out once it holds max.
type sqlNames struct {
	max    int
	byName map[string]*list.Element // of *namedStmt
	lru    list.List                // front: most recently used
}

type namedStmt struct {
	name string
	st   *stmt
}

func (n *sqlNames) get(name string) *stmt {
	if el, ok := n.byName[name]; ok {
		n.lru.MoveToFront(el)
		return el.Value.(*namedStmt).st
	}
	return nil
}

// set records name as st and returns the names to deallocate first to stay within max.
func (n *sqlNames) set(name string, st *stmt, evicted []string) []string {
	if n.byName == nil {
		n.byName = map[string]*list.Element{}
	}
	if el, ok := n.byName[name]; ok {
		el.Value.(*namedStmt).st = st
		n.lru.MoveToFront(el)
		return evicted
	}
	for n.max > 0 && len(n.byName) >= n.max {
		old := n.lru.Back()
		n.lru.Remove(old)
		delete(n.byName, old.Value.(*namedStmt).name)
		evicted = append(evicted, old.Value.(*namedStmt).name)
	}
	n.byName[name] = n.lru.PushFront(&namedStmt{name: name, st: st})
	return evicted
}

func (n *sqlNames) remove(name string) {
	if el, ok := n.byName[name]; ok {
		n.lru.Remove(el)
		delete(n.byName, name)
	}
}

func (n *sqlNames) clear() {
	n.byName = nil
	n.lru.Init()
}

// sqlPrepared looks at a simple Query q for s that uses SQL-level prepared statements: it inserts at offset at
// the hidden statements the server needs first, and returns the PREPAREs and DEALLOCATEs to apply once the
// server confirms them.
func (cl *client) sqlPrepared(sp *splice, s *server, q []byte, at int) []sqlOp {
	if !lex.MentionsPrepared(q) || s.status == codec.TxFailed {
		return nil // in a failed transaction the server refuses the client's statements anyway
	}
	p := sqlPrep{cl: cl, s: s, pending: map[string]*stmt{}}
	sql := string(q)
	if lex.SeesAllPrepared(sql) {
		// The query may see or run statements by names pgshard cannot read in it (pg_prepared_statements, an
		// EXECUTE in a function's text): the server gets exactly the client's names first.
		for name := range s.sqlNames.byName {
			if _, mine := cl.sqlStmts[name]; !mine {
				p.clear(name)
			}
		}
		for name, st := range cl.sqlStmts {
			p.ensure(name, st)
		}
	}
	stmts := lex.Split(sql, nil)
	for _, r := range stmts {
		whole := ""
		if len(stmts) == 1 {
			whole = sql
		}
		p.statement(sql[r[0]:r[1]], whole)
	}
	for _, b := range p.before {
		sp.insert(at, codec.AppendQuery(s.ls.synth[:0], b))
		s.expects.push(expectOwn(keepNothing))
		s.unnamedOwner = nil // a simple query drops the unnamed statement
	}
	return p.ops
}

// sqlPrep is sqlPrepared's work on one query: which of the client's statements the server must hold first,
// and what the query's own PREPAREs and DEALLOCATEs do.
type sqlPrep struct {
	cl      *client
	s       *server
	before  []string         // the hidden statements to send first
	ops     []sqlOp          // the query's PREPAREs and DEALLOCATEs
	pending map[string]*stmt // what this query's own PREPAREs and DEALLOCATEs made of a name so far
}

// lookup is the client's statement of that name at this point of the query.
func (p *sqlPrep) lookup(name string) (*stmt, bool) {
	if st, ok := p.pending[name]; ok {
		return st, st != nil
	}
	st := p.cl.sqlStmts[name]
	return st, st != nil
}

// ensure makes the server hold name as st.
func (p *sqlPrep) ensure(name string, st *stmt) {
	s := p.s
	if _, decided := p.pending[name]; decided || s.sqlNames.get(name) == st {
		return
	}
	if s.sqlNames.get(name) != nil {
		p.before = append(p.before, "DEALLOCATE "+quoteIdent(name))
	}
	p.before = append(p.before, prepareAs(name, st))
	for _, old := range s.sqlNames.set(name, st, nil) {
		p.before = append(p.before, "DEALLOCATE "+quoteIdent(old))
	}
}

// clear makes the server hold nothing under name.
func (p *sqlPrep) clear(name string) {
	if _, decided := p.pending[name]; !decided && p.s.sqlNames.get(name) != nil {
		p.before = append(p.before, "DEALLOCATE "+quoteIdent(name))
		p.s.sqlNames.remove(name)
	}
}

// statement looks at one statement text of the query (whole: the query, when it is the only one).
func (p *sqlPrep) statement(text, whole string) {
	st := lex.Classify(text)
	for _, name := range lex.ExecutedNames(text) {
		if x, ok := p.lookup(name); ok {
			p.ensure(name, x)
			if x.fx != nil {
				p.cl.applyPins(x.fx) // what running it does to the session (advisory locks)
			}
		} else {
			p.clear(name) // another client's statement of that name is not this client's to run: 26000
		}
	}
	switch st.Kind {
	case lex.StmtPrepare:
		if x, ok := p.lookup(st.Name); ok {
			p.ensure(st.Name, x) // so that the server refuses it as Postgres would: 42P05
			return
		}
		p.clear(st.Name)
		types := ""
		if st.TypesRange != [2]int{} {
			types = text[st.TypesRange[0]:st.TypesRange[1]]
		}
		shared := p.cl.e.registry.sqlStmt(types, text[st.Body[0]:st.Body[1]], whole)
		p.ops = append(p.ops, sqlOp{tag: "PREPARE", name: st.Name, st: shared})
		p.pending[st.Name] = shared
	case lex.StmtDeallocate:
		if st.Name == "all" {
			p.ops = append(p.ops, sqlOp{tag: "DEALLOCATE ALL"})
			return
		}
		if x, ok := p.lookup(st.Name); ok {
			p.ensure(st.Name, x)
		} else {
			p.clear(st.Name) // the server refuses it as Postgres would: 26000
		}
		p.ops = append(p.ops, sqlOp{tag: "DEALLOCATE", name: st.Name})
		p.pending[st.Name] = nil
	}
}

// applySQLOp applies the client's PREPARE or DEALLOCATE that the server confirmed.
func (cl *client) applySQLOp(s *server, op sqlOp) {
	switch op.tag {
	case "PREPARE":
		cl.e.registry.setName(&cl.sqlStmts, op.name, op.st)
		for _, old := range s.sqlNames.set(op.name, op.st, nil) {
			// Over the bound: the least used name goes (it is prepared again when the client needs it).
			s.send(codec.AppendQuery(s.ls.synth[:0], "DEALLOCATE "+quoteIdent(old)))
			s.expects.push(expectOwn(keepNothing))
		}
	case "DEALLOCATE":
		cl.e.registry.dropName(cl.sqlStmts, op.name)
		s.sqlNames.remove(op.name)
	case "DEALLOCATE ALL":
		// The server dropped every prepared statement, pgshard's own protocol-level ones too.
		cl.dropStmts()
		s.stmts.clear()
		s.sqlNames.clear()
	}
}
