package loop

import (
	"container/list"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/pgshard/pgshard/codec"
	"github.com/pgshard/pgshard/merge"
	"github.com/pgshard/pgshard/route"
	"github.com/pgshard/pgshard/route/lex"
)

// Named prepared statements in transaction mode. A client's statement names mean nothing to the next server
// connection it gets, and two clients may use one name for different queries. So pgshard keeps one stmt per
// distinct (query, parameter types, scope), prepared on a server under a name of its own ("pgshard_<id>") the first
// time a client on that server needs it: a client's Parse is sent only when its server lacks the statement
// (otherwise pgshard answers ParseComplete itself), and a Bind or Describe that names a statement the server
// lacks gets the Parse sent first, its ParseComplete hidden. Each client maps its own names to stmts, so
// Close and DEALLOCATE touch only that client's names. The scope is what else decides what a query text
// means — the database, the user and the search_path — so that a description pgshard answers from its cache
// names the types this client's server would name (an enum or a domain has another OID in another database).

// stmt is a prepared statement as pgshard shares it between clients.
type stmt struct {
	name  string // the server-side name
	query string
	scope string // database, user and search_path it was prepared under (stmtScope)
	types string // the raw parameter type OIDs, 4 bytes each
	send  string // the text servers prepare instead of query, if any
	parse string // a Parse message under the server-side name, ready to write; query shares its bytes when send is empty

	// What servers said of it, so that a client preparing a statement another client already prepared is
	// answered by pgshard without a server (no checkout, no round trip): whether a Parse of it succeeded, and
	// its ParameterDescription and RowDescription (or NoData) as a Describe returned them.
	valid    atomic.Bool
	describe atomic.Pointer[[]byte]

	fx *effects // what executing it does to the session (SET, advisory locks, ...), nil for nothing

	key  string        // its entry in the registry
	refs atomic.Int32  // client names that mean it
	idle *list.Element // in the registry's idle list while no client names it (guarded by the registry's lock)

	plan atomic.Pointer[stmtPlan] // how it is routed (sharded databases), planned on first use
	tx   txKind                   // a transaction command (sharded databases send those to every shard of a transaction)
	// readAccess: whether it surely only reads, and its role comment (replicas.go), worked out on first use.
	readAccess atomic.Pointer[lex.Access]
}

// stmtPlan is a stmt's plan and the routing schema it was made for. Statements are shared by every client of
// every database, and a RELOAD that changes a database's shards or tables gives it a new schema: a plan is
// used only with the schema it was made for.
type stmtPlan struct {
	schema *route.Schema
	plan   *route.Plan
}

// planOf returns st's plan for the client's router (a sharded database), planning it when there is none for
// its schema.
func (cl *client) planOf(st *stmt) *route.Plan {
	s := cl.rt.Schema()
	if sp := st.plan.Load(); sp != nil && sp.schema == s {
		return sp.plan
	}
	p := cl.rt.Prepare(st.query)
	st.plan.Store(&stmtPlan{schema: s, plan: p})
	return p
}

// stmtRegistry holds the stmts of the engine. Parse messages take its lock; Bind and Describe don't (they
// go through the client's own map). It is bounded: a stmt no client names any more waits in the idle list, so
// that a client preparing it again (after a reconnect, say) still shares it, and the oldest idle ones past
// maxIdleStmts leave the registry (servers that hold them keep them until their own bound evicts them).
type stmtRegistry struct {
	mu      sync.Mutex
	byText  map[string][]*stmt
	idle    list.List // of *stmt, most recently released first
	next    uint64
	scratch []byte // where getRaw builds a Parse message
}

// maxIdleStmts bounds the statements the registry keeps that no client names.
const maxIdleStmts = 10000

// add enters a new st under key, idle until a client names it. Called with the lock held.
func (r *stmtRegistry) add(key string, st *stmt) *stmt {
	if r.byText == nil {
		r.byText = map[string][]*stmt{}
	}
	st.key = key
	r.byText[key] = append(r.byText[key], st)
	r.makeIdle(st)
	return st
}

// makeIdle puts st first in the idle list and drops the oldest idle stmts past maxIdleStmts. Called with the
// lock held.
func (r *stmtRegistry) makeIdle(st *stmt) {
	st.idle = r.idle.PushFront(st)
	for r.idle.Len() > maxIdleStmts {
		old := r.idle.Back().Value.(*stmt)
		r.idle.Remove(old.idle)
		old.idle = nil
		r.remove(old)
	}
}

// release drops one client name of st; the last one puts it in the idle list.
func (r *stmtRegistry) release(st *stmt) {
	if st.refs.Add(-1) > 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if st.refs.Load() > 0 || st.idle != nil || !r.holds(st) {
		return
	}
	r.makeIdle(st)
}

func (r *stmtRegistry) holds(st *stmt) bool {
	for _, x := range r.byText[st.key] {
		if x == st {
			return true
		}
	}
	return false
}

func (r *stmtRegistry) remove(st *stmt) {
	list := r.byText[st.key]
	for i, x := range list {
		if x == st {
			list = append(list[:i], list[i+1:]...)
			break
		}
	}
	if len(list) == 0 {
		delete(r.byText, st.key)
	} else {
		r.byText[st.key] = list
	}
}

// setName maps name in a client's names m to st, counting the reference.
func (r *stmtRegistry) setName(m *map[string]*stmt, name string, st *stmt) {
	if *m == nil {
		*m = map[string]*stmt{}
	}
	if old, ok := (*m)[name]; ok {
		if old == st {
			return
		}
		r.release(old)
	}
	if st.refs.Add(1) == 1 {
		r.mu.Lock()
		if st.idle != nil { // named again: out of the idle list
			r.idle.Remove(st.idle)
			st.idle = nil
		}
		r.mu.Unlock()
	}
	(*m)[name] = st
}

// dropName removes name from a client's names m.
func (r *stmtRegistry) dropName(m map[string]*stmt, name string) {
	if st, ok := m[name]; ok {
		delete(m, name)
		r.release(st)
	}
}

// dropNames empties a client's names *m.
func (r *stmtRegistry) dropNames(m *map[string]*stmt) {
	for _, st := range *m {
		r.release(st)
	}
	*m = nil
}

// size is the number of stmts the registry holds (for tests and metrics).
func (r *stmtRegistry) size() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, list := range r.byText {
		n += len(list)
	}
	return n
}

// get returns the stmt of query with parameter types types; send, when not empty, is the text the servers
// prepare instead (a sharded database's statement whose rows pgshard merges).
func (r *stmtRegistry) get(query []byte, scope, send string, types codec.OIDs) *stmt {
	raw := make([]uint32, 0, 8)
	raw = types.Append(raw)
	return r.getRaw(query, scope, send, raw)
}

// resend returns the stmt of st's query and parameter types that servers prepare as send.
func (r *stmtRegistry) resend(st *stmt, send string) *stmt {
	return r.getRaw([]byte(st.query), st.scope, send, st.paramTypes())
}

// paramTypes returns the parameter type OIDs st was prepared with.
func (st *stmt) paramTypes() []uint32 {
	raw := make([]uint32, 0, len(st.types)/4)
	for i := 0; i+4 <= len(st.types); i += 4 {
		raw = append(raw, uint32(st.types[i])<<24|uint32(st.types[i+1])<<16|uint32(st.types[i+2])<<8|uint32(st.types[i+3]))
	}
	return raw
}

func (r *stmtRegistry) getRaw(query []byte, scope, send string, raw []uint32) *stmt {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, st := range r.byText[string(query)] {
		if sameTypes(st.types, raw) && st.send == send && st.scope == scope {
			return st
		}
	}
	r.next++
	st := &stmt{name: "pgshard_" + strconv.FormatUint(r.next, 10), send: send, scope: scope}
	tb := make([]byte, 0, 4*len(raw))
	for _, t := range raw {
		tb = append(tb, byte(t>>24), byte(t>>16), byte(t>>8), byte(t))
	}
	st.types = string(tb)
	// The registry keeps up to maxIdleStmts statements no client uses, and their texts are most of its memory.
	// The query is held once, inside the Parse message (after its type, length and name), not a second time
	// beside it; and the message is built in a scratch buffer, so that the one allocation of its size is the
	// one kept: garbage of the same size between the kept ones would leave their pages half empty, pages the
	// runtime cannot give back.
	if send == "" {
		r.scratch = codec.AppendParse(r.scratch[:0], st.name, query, raw)
		st.parse = string(r.scratch)
		textAt := 1 + 4 + len(st.name) + 1
		st.query = st.parse[textAt : textAt+len(query)]
	} else {
		r.scratch = codec.AppendParse(r.scratch[:0], st.name, send, raw)
		st.parse = string(r.scratch)
		st.query = string(query)
	}
	st.fx = effectsOf(query)
	st.tx = txCommandOf(st.query).kind
	return r.add(st.query, st)
}

// forget starts the registry afresh after a schema change (DDL through pgshard, or a server's "cached plan must
// not change result type"): a statement text prepared from now on gets a new stmt, prepared anew on servers and
// described anew, as a PREPARE after an ALTER TABLE is on Postgres. Statements clients prepared before keep
// their stmt, which the server re-plans, or refuses with that error, as Postgres does.
func (r *stmtRegistry) forget() {
	r.mu.Lock()
	r.byText = nil
	for el := r.idle.Front(); el != nil; el = el.Next() {
		el.Value.(*stmt).idle = nil
	}
	r.idle.Init()
	r.mu.Unlock()
}

func sameTypes(enc string, raw []uint32) bool {
	if len(enc) != 4*len(raw) {
		return false
	}
	for i, t := range raw {
		if enc[4*i] != byte(t>>24) || enc[4*i+1] != byte(t>>16) || enc[4*i+2] != byte(t>>8) || enc[4*i+3] != byte(t) {
			return false
		}
	}
	return true
}

// serverStmts is the set of stmts prepared on one server connection, least recently used first out once it
// holds max.
type serverStmts struct {
	max   int
	byPtr map[*stmt]*list.Element
	lru   list.List // front: most recently used
}

func (ss *serverStmts) has(st *stmt) bool {
	el, ok := ss.byPtr[st]
	if ok {
		ss.lru.MoveToFront(el)
	}
	return ok
}

// add records st as prepared and returns the stmts to close first to stay within max.
func (ss *serverStmts) add(st *stmt, evicted []*stmt) []*stmt {
	if ss.byPtr == nil {
		ss.byPtr = map[*stmt]*list.Element{}
	}
	for ss.max > 0 && len(ss.byPtr) >= ss.max {
		old := ss.lru.Back()
		ost := old.Value.(*stmt)
		ss.lru.Remove(old)
		delete(ss.byPtr, ost)
		evicted = append(evicted, ost)
	}
	ss.byPtr[st] = ss.lru.PushFront(st)
	return evicted
}

func (ss *serverStmts) remove(st *stmt) {
	if el, ok := ss.byPtr[st]; ok {
		ss.lru.Remove(el)
		delete(ss.byPtr, st)
	}
}

func (ss *serverStmts) clear() {
	ss.byPtr = nil
	ss.lru.Init()
}

// An expectation is what pgshard waits for from a server, one per message it sent that gets an answer, in
// order. The queue tells when the server is done (no entries, nothing unsynced), and where to hide or add
// messages so that the client sees exactly the answers to what it sent. Each says three things, independently:
// which request its answer completes, what becomes of that answer, and, for pgshard's own queries, what pgshard
// keeps of it.

// request is the message an expectation's answer completes.
type request uint8

const (
	reqParse    request = iota // ParseComplete
	reqBind                    // BindComplete
	reqDescribe                // [ParameterDescription] RowDescription | NoData
	reqExecute                 // rows, then CommandComplete | EmptyQueryResponse | PortalSuspended
	reqClose                   // CloseComplete
	reqSync                    // the ReadyForQuery that ends an extended-protocol batch
	reqQuery                   // a simple query or function call: everything up to ReadyForQuery
	reqNone                    // nothing the client sent: pgshard's own answer (raw, or a refusal in err)
)

// handling is what becomes of an expectation's answer.
type handling uint8

const (
	// forward: the client asked; its answer is passed on.
	forward handling = iota
	// added: pgshard added the message to the client's (a Parse, the Close of an evicted statement, a
	// Describe for the merger); its success is hidden, its error is the client's.
	added
	// own: pgshard's own query (a reset, the client's settings, a catalog lookup, a transaction's end); all of
	// its answer is hidden.
	own
	// synthesized: nothing was sent; pgshard answers itself, in its turn among the server's answers.
	synthesized
)

// purpose says, for pgshard's own queries, what it keeps of the answer.
type purpose uint8

const (
	keepNothing  purpose = iota // a reset or setting: only a failure matters (the connection is then suspect)
	keepReplay                  // the client's settings given to its server (replaySettings): its error
	keepCatalog                 // the key's position for a sharded COPY or an INSERT without a column list: its one value
	keepDrive                   // a statement ending a transaction (txdrive.go): its outcome
	keepCopyEnd                 // COMMIT or ROLLBACK of pgshard's transaction around a sharded COPY: its error
	keepWriteLSN                // the primary's WAL position after a client's statements (read-your-writes): its value
	keepGather                  // the rows of the coordinator step's gather query (gather.go): each, and its error
)

type expectation struct {
	answers  request
	handling handling
	keep     purpose
	sets     []settingChange // Query and Execute: SET/RESET statements to apply as their CommandCompletes arrive
	sqlOps   []sqlOp         // Query: its SQL PREPAREs and DEALLOCATEs, applied as their CommandCompletes arrive
	st       *stmt           // Parse: unmarked on the server if the Parse never ran; Describe: what to cache
	name     string          // the client's Parse: its name for st, which a failed or skipped Parse does not create
	cleanup  bool            // keepReplay: the RESETs of what an earlier client left, not the client's own settings
	plan     *route.Plan     // Describe of a statement the shards know rewritten: how its rows look to the client
	err      *codec.Error    // synthesized: the refusal (reqNone), or a local Query's error
	tag      string          // synthesized Query: its CommandComplete
	status   byte            // synthesized Query: its ReadyForQuery status
	raw      []byte          // synthesized: the messages (reqNone), the rows before CommandComplete (reqQuery)
	// copyMsgs is the server's copyMsgs when this Query, Execute or Sync was sent: which COPY's data it came
	// before (server.copyStarted)
	copyMsgs uint64
}

// The expectations made in more than one place.

func expectQuery() expectation { return expectation{answers: reqQuery} }
func expectOwn(keep purpose) expectation {
	return expectation{answers: reqQuery, handling: own, keep: keep}
}
func expectAdded(r request) expectation { return expectation{answers: r, handling: added} }
func synthesize(r request) expectation  { return expectation{answers: r, handling: synthesized} }
func refusal(err *codec.Error) expectation {
	return expectation{answers: reqNone, handling: synthesized, err: err}
}
func rawAnswer(raw []byte) expectation {
	return expectation{answers: reqNone, handling: synthesized, raw: raw}
}

// expectQueue is a FIFO that reuses its backing array.
type expectQueue struct {
	items []expectation
	head  int
}

// push appends e. When the array is full and its front half holds only popped entries, the queue moves down
// instead of growing: a client that pipelines without pause may keep its queue from ever emptying, and the
// array would then grow by one entry per statement it ever sent.
func (q *expectQueue) push(e expectation) {
	if len(q.items) == cap(q.items) && q.head >= len(q.items)/2 {
		n := copy(q.items, q.items[q.head:])
		clear(q.items[n:])
		q.items, q.head = q.items[:n], 0
	}
	q.items = append(q.items, e)
}
func (q *expectQueue) len() int           { return len(q.items) - q.head }
func (q *expectQueue) last() *expectation { return &q.items[len(q.items)-1] }
func (q *expectQueue) front() *expectation {
	if q.head == len(q.items) {
		return nil
	}
	return &q.items[q.head]
}
func (q *expectQueue) pop() {
	q.items[q.head] = expectation{}
	q.head++
	if q.head == len(q.items) {
		q.items, q.head = q.items[:0], 0
	}
}

// splice builds an output from an input buffer. Runs of input pass through untouched; only once something
// is inserted or dropped are bytes copied into a scratch buffer, so the common case stays zero-copy.
type splice struct {
	in       []byte
	runStart int
	scratch  *[]byte
	building bool
}

func (sp *splice) begin(at int) {
	if !sp.building {
		sp.building = true
		*sp.scratch = (*sp.scratch)[:0]
	}
	if at > sp.runStart {
		*sp.scratch = append(*sp.scratch, sp.in[sp.runStart:at]...)
		sp.runStart = at
	}
}

// insert adds b at offset at of the input (after whatever was inserted there already).
func (sp *splice) insert(at int, b []byte) {
	sp.begin(at)
	*sp.scratch = append(*sp.scratch, b...)
}

// tail returns the output built so far, up to offset at of the input, for the caller to append to directly
// (then setTail): what would be inserted at at, without copying it through another buffer first.
func (sp *splice) tail(at int) []byte {
	sp.begin(at)
	return *sp.scratch
}

// setTail takes back the output tail returned, with what the caller appended.
func (sp *splice) setTail(b []byte) { *sp.scratch = b }

// drop leaves out in[from:to].
func (sp *splice) drop(from, to int) {
	sp.begin(from)
	sp.runStart = to
}

// result returns the output for in[:end].
func (sp *splice) result(end int) []byte {
	if !sp.building {
		return sp.in[:end]
	}
	*sp.scratch = append(*sp.scratch, sp.in[sp.runStart:end]...)
	sp.runStart = end
	return *sp.scratch
}

// appendRenamed appends a Bind or Describe message (whole, header included) with its statement name
// replaced. nameAt and nameEnd delimit the old name (without NUL) inside msg.
func appendRenamed(dst, msg []byte, nameAt, nameEnd int, name string) []byte {
	start := len(dst)
	dst = append(dst, msg[:nameAt]...)
	dst = append(dst, name...)
	dst = append(dst, msg[nameEnd:]...)
	return codec.FinishMessage(dst, start)
}

// answerLocally answers, without a server, a batch that only prepares, describes or closes statements that
// servers already accepted, up to its Sync: what pgx does for every new connection and pgbench -M prepared for
// every client. It returns the bytes it used, 0 when the batch needs a server (or is not complete yet).
func (cl *client) answerLocally(buf []byte) int {
	if cl.skipToSync {
		return cl.skipLocally(buf)
	}
	pos := 0
	for {
		m, n, err := codec.ReadMessage(buf[pos:], cl.e.cfg.Limits.MaxMessageSize)
		if err != nil || n == 0 {
			return 0
		}
		switch m.Type {
		case codec.Sync:
			if pos == 0 {
				return 0 // a lone Sync: let the server answer it
			}
			cl.replayLocally(buf[:pos])
			cl.out = codec.AppendReadyForQuery(cl.out, codec.TxIdle)
			return pos + n
		case codec.Parse:
			pm, err := codec.ParseParse(m.Body)
			if err != nil || len(pm.Name) == 0 || cl.lookupPending(buf[:pos], pm.Name) != nil ||
				len(cl.stmts) >= cl.e.cfg.Limits.ClientPreparedStatements || !cl.stmtFor(pm.Query, pm.ParamTypes).valid.Load() {
				return 0 // a name in use, or one too many, gets its error on the way to the server
			}
		case codec.Describe:
			dm, err := codec.ParseDescribe(m.Body)
			if err != nil || dm.Target != codec.TargetStatement || len(dm.Name) == 0 {
				return 0
			}
			if st := cl.lookupPending(buf[:pos], dm.Name); st == nil || st.describe.Load() == nil {
				return 0
			}
		case codec.Close:
			cm, err := codec.ParseClose(m.Body)
			if err != nil || cm.Target != codec.TargetStatement || len(cm.Name) == 0 {
				return 0
			}
		default:
			return 0
		}
		pos += n
	}
}

// skipLocally drops, without a server, the rest of a batch pgshard refused a message of, up to its Sync,
// which it answers and which ends the skipping (as message does on the way to a server). It returns the bytes
// it used, 0 when the Sync has not come yet.
func (cl *client) skipLocally(buf []byte) int {
	for pos := 0; ; {
		m, n, err := codec.ReadMessage(buf[pos:], cl.e.cfg.Limits.MaxMessageSize)
		if err != nil || n == 0 {
			return 0
		}
		pos += n
		if m.Type == codec.Sync {
			cl.skipToSync = false
			cl.out = codec.AppendReadyForQuery(cl.out, codec.TxIdle)
			return pos
		}
	}
}

// stmtFor is the shared stmt of a client's Parse: for a sharded database, prepared on servers as the
// router rewrites it (when it merges its rows).
func (cl *client) stmtFor(query []byte, types codec.OIDs) *stmt {
	send := ""
	if cl.rt != nil {
		send = cl.rt.Prepare(string(query)).ShardSQL()
	}
	return cl.e.registry.get(query, cl.stmtScope(), send, types)
}

// stmtScope is what, besides its text, decides what a client's statement means on a server.
func (cl *client) stmtScope() string {
	return cl.dbName + "\x00" + cl.user.cfg.Name + "\x00" + cl.settings["search_path"]
}

// appendDescribe appends a cached Describe answer of st (ParameterDescription, then RowDescription or NoData)
// as the client sees it: a statement the servers know rewritten shows the client's own columns.
func (cl *client) appendDescribe(dst []byte, st *stmt, d []byte) []byte {
	if st.send == "" || cl.rt == nil {
		return append(dst, d...)
	}
	_, n, err := codec.ReadMessage(d, 0)
	if err != nil || n >= len(d) || d[n] != codec.RowDescription {
		return append(dst, d...)
	}
	spec := cl.planOf(st).ShardSpec(rowDescColumns(d[n:]))
	if spec == nil {
		return append(dst, d...)
	}
	dst = append(dst, d[:n]...)
	if out, err := merge.ClientRowDescription(spec, dst, d[n:]); err == nil {
		return out
	}
	return append(dst, d[n:]...)
}

// lookupPending finds the stmt a name means after the Parse messages in batch (not applied yet).
func (cl *client) lookupPending(batch, name []byte) *stmt {
	var found *stmt
	if st, ok := cl.stmts[string(name)]; ok {
		found = st
	}
	for pos := 0; pos < len(batch); {
		m, n, _ := codec.ReadMessage(batch[pos:], 0)
		pos += n
		if m.Type == codec.Parse {
			if pm, err := codec.ParseParse(m.Body); err == nil && string(pm.Name) == string(name) {
				found = cl.stmtFor(pm.Query, pm.ParamTypes)
			}
		} else if m.Type == codec.Close {
			if cm, err := codec.ParseClose(m.Body); err == nil && string(cm.Name) == string(name) {
				found = nil
			}
		}
	}
	return found
}

// replayLocally applies a batch answerLocally accepted: names mapped or dropped, answers queued.
func (cl *client) replayLocally(batch []byte) {
	for pos := 0; pos < len(batch); {
		m, n, _ := codec.ReadMessage(batch[pos:], 0)
		pos += n
		switch m.Type {
		case codec.Parse:
			pm, _ := codec.ParseParse(m.Body)
			cl.setStmt(pm.Name, cl.stmtFor(pm.Query, pm.ParamTypes))
			cl.out = codec.AppendEmpty(cl.out, codec.ParseComplete)
		case codec.Describe:
			dm, _ := codec.ParseDescribe(m.Body)
			st := cl.stmts[string(dm.Name)]
			cl.out = cl.appendDescribe(cl.out, st, *st.describe.Load())
		case codec.Close:
			cm, _ := codec.ParseClose(m.Body)
			cl.dropStmt(string(cm.Name))
			cl.out = codec.AppendEmpty(cl.out, codec.CloseComplete)
		}
	}
}
