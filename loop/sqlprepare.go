package loop

import (
	"strings"

	"github.com/pgshard/pgshard/codec"
	"github.com/pgshard/pgshard/route/lex"
)

// SQL-level PREPARE, EXECUTE and DEALLOCATE in transaction mode work like the protocol-level statements of
// prepared.go: a client's PREPARE name AS body maps name to a shared statement "pgshard_q<id>" (one per
// distinct types-and-body), prepared on whichever server runs the client's EXECUTE, and the names in the
// client's SQL are rewritten. They live in their own namespace: EXECUTE does not see a statement made with
// a protocol-level Parse (Postgres shares one namespace; clients mix the two rarely).

// sqlStmt returns the shared statement for a PREPARE's "(types) AS body".
func (r *stmtRegistry) sqlStmt(types, body string) *stmt {
	key := "\x00PREPARE" + types + "\x00" + body // cannot collide with a Parse's query text
	r.mu.Lock()
	defer r.mu.Unlock()
	if list := r.byText[key]; len(list) > 0 {
		return list[0]
	}
	if r.byText == nil {
		r.byText = map[string][]*stmt{}
	}
	r.next++
	name := "pgshard_q" + itoa64(r.next)
	st := &stmt{name: name, query: "PREPARE " + name + types + " AS " + body}
	st.fx = effectsOf([]byte(body))
	r.byText[key] = []*stmt{st}
	return st
}

// rewriteSQLPrepared renames the SQL-level prepared statements of a simple query q for server s. It returns
// the query to send (q itself when nothing changed), the statements pgshard must run first on s (PREPAREs of
// statements s lacks, DEALLOCATEs of evicted ones), and the statements the query prepares (forgotten again
// if the query fails).
func (cl *client) rewriteSQLPrepared(s *server, q string) (string, []string, []*stmt) {
	var out strings.Builder
	var before []string
	var prepared []*stmt
	last := 0
	ensure := func(st *stmt) {
		if !s.sqlStmts.has(st) {
			before = append(before, st.query)
			s.ls.evicted = s.sqlStmts.add(st, s.ls.evicted[:0])
			for _, old := range s.ls.evicted {
				before = append(before, "DEALLOCATE "+old.name)
			}
		}
	}
	rename := func(at [2]int, off int, name string) {
		out.WriteString(q[last : off+at[0]])
		out.WriteString(name)
		last = off + at[1]
	}
	for _, r := range lex.Split(q, nil) {
		text := q[r[0]:r[1]]
		st := lex.Classify(text)
		switch st.Kind {
		case lex.StmtPrepare:
			types := ""
			if st.TypesRange != [2]int{} {
				types = text[st.TypesRange[0]:st.TypesRange[1]]
			}
			shared := cl.e.registry.sqlStmt(types, text[st.Body[0]:st.Body[1]])
			if s.sqlStmts.has(shared) {
				// Another client prepared it on this server: drop it first, so that this PREPARE answers as
				// Postgres would and the server's copy is fresh.
				before = append(before, "DEALLOCATE "+shared.name)
				s.sqlStmts.remove(shared)
			}
			s.ls.evicted = s.sqlStmts.add(shared, s.ls.evicted[:0])
			for _, old := range s.ls.evicted {
				before = append(before, "DEALLOCATE "+old.name)
			}
			if cl.sqlStmts == nil {
				cl.sqlStmts = map[string]*stmt{}
			}
			cl.sqlStmts[st.Name] = shared
			prepared = append(prepared, shared)
			rename(st.NameRange, r[0], shared.name)
		case lex.StmtExecute:
			if shared := cl.sqlStmts[st.Name]; shared != nil {
				ensure(shared)
				if shared.fx != nil {
					cl.applyPins(shared.fx)
				}
				rename(st.NameRange, r[0], shared.name)
			}
		case lex.StmtDeallocate:
			if st.Name == "all" {
				cl.stmts, cl.sqlStmts = nil, nil
				s.stmts.clear()
				s.sqlStmts.clear()
				continue
			}
			if shared := cl.sqlStmts[st.Name]; shared != nil {
				ensure(shared) // so that the server's DEALLOCATE succeeds, as the client's would have
				delete(cl.sqlStmts, st.Name)
				s.sqlStmts.remove(shared)
				rename(st.NameRange, r[0], shared.name)
			}
		}
	}
	if last == 0 {
		return q, before, prepared
	}
	out.WriteString(q[last:])
	return out.String(), before, prepared
}

// sqlPrepared rewrites a simple Query message at buf[at:at+n] when it uses SQL-level prepared statements.
func (cl *client) sqlPrepared(sp *splice, s *server, q []byte, at, n int) []*stmt {
	if !mentionsPrepared(q) {
		return nil
	}
	rewritten, before, prepared := cl.rewriteSQLPrepared(s, string(q))
	if len(before) == 0 && rewritten == string(q) {
		return prepared
	}
	sp.drop(at, at+n)
	for _, b := range before {
		*sp.scratch = codec.AppendQuery(*sp.scratch, b)
		s.expects.push(expectation{kind: expHiddenQuery})
	}
	*sp.scratch = codec.AppendQuery(*sp.scratch, rewritten)
	return prepared
}

// mentionsPrepared is the cheap first look for PREPARE, EXECUTE and DEALLOCATE.
func mentionsPrepared(q []byte) bool {
	for i := range q {
		switch q[i] | 0x20 {
		case 'p':
			if hasFoldAt(q, i, "prepare") {
				return true
			}
		case 'e':
			if hasFoldAt(q, i, "execute") {
				return true
			}
		case 'd':
			if hasFoldAt(q, i, "deallocate") {
				return true
			}
		}
	}
	return false
}

func itoa64(n uint64) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			return string(b[i:])
		}
	}
}
