package loop

import (
	"math/bits"
	"sort"
	"strings"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/pgshard/pgshard/admin"
	"github.com/pgshard/pgshard/codec"
	"github.com/pgshard/pgshard/config"
	"github.com/pgshard/pgshard/pool"
	"github.com/pgshard/pgshard/route/lex"
)

// The read/write split.
//
// A shard is a primary and its streaming replicas. In transaction mode, a client between transactions sends
// its next unit of work (a Query, or an extended-protocol batch up to its Sync) to a replica when it goes to one
// (toReplica): its role=primary|replica comment says so, else the session's pgshard.role, else lex.ReadAccess
// finds that every statement in it surely only reads, or begins a read-only transaction. Replicas take the
// reads in turn (read_write_split: replicas, or replicas_and_primary, which counts the primary among them);
// anything else goes to the primary. Each replica has its own pool per user.
//
// A client holds a replica's connection only for its reads: a statement after them that does not go to a
// replica waits in pgshard until the replica has answered, and the connection is back in its pool, then goes to
// the primary (holdForPrimary). A transaction block starts on a replica only when it says READ ONLY, and then
// stays there; any other starts on the primary and never moves, its reads included, so it sees its own writes.
//
// A replica that fails (a connection or login that fails, a connection lost, a check it does not answer) is
// banned for pool.ban_time, and one that lags too far is out until it catches up (replicalag.go): reads go to
// the other replicas, or to the primary when none is left, and a read that was waiting for a failed connection
// is sent elsewhere instead of failing. With read_your_writes, a client's reads go only to replicas that have
// replayed its last statements on the primary (askWriteLSN).
//
// A sharded database's client decides where each unit of work goes when it begins (unitStarts) and takes each
// shard's server from a replica's pool for a unit that reads (shardPool); a unit that does not waits until the
// replicas the client still holds have answered (leaveReplicas).
//
// Not here: session mode (the client's session is one server's). Following a new primary is failover.go's.

// replica is one replica of a shard: how to reach it, and until when it is banned.
type replica struct {
	srv         config.Server
	tls         pool.TLS
	bannedUntil atomic.Int64           // unix nanoseconds; 0 when never banned
	banReason   atomic.Pointer[string] // why it was banned last

	// What the last check found (replicalag.go): how far it has replayed the primary's WAL, how far behind it
	// is, and whether that is too far.
	replayLSN atomic.Uint64
	lagBytes  atomic.Uint64
	lag       atomic.Int64 // a time.Duration
	lagging   atomic.Bool
}

// replicasOf makes the replicas of shard sh.
func replicasOf(sh config.Shard) ([]*replica, error) {
	var out []*replica
	for _, srv := range sh.Replicas {
		t, err := pool.ServerTLS(srv.SSLMode, srv.SSLRootCert, srv.Host)
		if err != nil {
			return nil, err
		}
		out = append(out, &replica{srv: srv, tls: t})
	}
	return out, nil
}

// banned says whether r takes no reads now: banned, or lagging.
func (r *replica) banned(now time.Time) bool { return r.inBan(now) || r.lagging.Load() }

// inBan says whether r is banned (for failing, or by the admin console) now.
func (r *replica) inBan(now time.Time) bool { return now.UnixNano() < r.bannedUntil.Load() }

// splitsReads says whether d's clients send reads to replicas: transaction mode, a shard that has replicas,
// read_write_split not off.
func (e *Engine) splitsReads(d *database) bool {
	if e.cfg.Pool.Mode != config.ModeTransaction || d.db.ReadWriteSplit == config.SplitOff {
		return false
	}
	for _, reps := range d.replicas {
		if len(reps) > 0 {
			return true
		}
	}
	return false
}

// readPoolsFor returns the pools of the replicas of (d, u), by shard then replica, made on first use (see
// poolsFor, whose rules for a RELOAD they follow).
func (e *Engine) readPoolsFor(d *database, u *user) [][]*pool.Pool {
	d.mu.Lock()
	defer d.mu.Unlock()
	ps := d.readPools[u.cfg.Name]
	if ps != nil && !u.retired.Load() {
		return ps
	}
	ps = make([][]*pool.Pool, len(d.replicas))
	for i, reps := range d.replicas {
		for r := range reps {
			ps[i] = append(ps[i], e.newPool(d, u, i, r+1))
		}
	}
	if !u.retired.Load() {
		d.readPools[u.cfg.Name] = ps
	}
	return ps
}

// eachPool calls f with each pool of d, its primaries' and its replicas', and the user it is for: every user's,
// or only userName's when it is not "". Call it with d.mu held.
func (d *database) eachPool(userName string, f func(userName string, p *pool.Pool)) {
	for name, ps := range d.pools {
		if userName == "" || name == userName {
			for _, p := range ps {
				f(name, p)
			}
		}
	}
	for name, byShard := range d.readPools {
		if userName == "" || name == userName {
			for _, reps := range byShard {
				for _, p := range reps {
					f(name, p)
				}
			}
		}
	}
}

// poolFor picks the pool of the unit of work at the start of buf (a Query, or an extended batch up to its Sync):
// a replica's when it goes to one (toReplica), else the primary's. wait: it is a read that should wait for a
// replica to replay the client's last write (waitForReplay) rather than go to the primary now.
func (cl *client) poolFor(buf []byte) (p *pool.Pool, wait bool) {
	if cl.readPools == nil || cl.pins.any() {
		return cl.pools[0], false
	}
	if cl.deferredBegin != "" {
		if cl.makesReadOnly(buf) {
			return cl.readPool(0), false
		}
		return cl.pools[0], false
	}
	if !cl.toReplica(buf) {
		return cl.pools[0], false
	}
	return cl.readPoolOrWait(0)
}

// readPoolOrWait is readPool for a read on shard, and whether the read should rather wait for a replica to
// replay the client's last write there (waitForReplay) than go to the primary now: read_your_writes_timeout is
// set, a replica that takes reads is behind that write, and no earlier read gave up waiting for it.
func (cl *client) readPoolOrWait(shard int) (p *pool.Pool, wait bool) {
	p = cl.readPool(shard)
	d := cl.db.db // with replicas_and_primary the primary is a read's place like any replica, not a fallback
	if p.Replica > 0 || d.ReadYourWritesTimeout == 0 || d.ReadWriteSplit == config.SplitReplicasAndPrimary ||
		cl.gaveUp&(1<<shard) != 0 || cl.wrote(shard) == 0 {
		return p, false
	}
	_, behind := cl.replayOf(shard, time.Now())
	return p, behind
}

// unitStarts decides, for a sharded database, where the unit of work that m, at the start of buf, may begin
// goes: a Query always begins one, an extended message one when none is under way. In a transaction block,
// to replicas when its BEGIN said READ ONLY (or the session's pgshard.role says replica); otherwise as
// toReplica says. Its statements then go to a replica of each shard they run on (shardPool), and a unit that
// does not go to replicas waits for the replicas the client still holds (leaveReplicas).
func (cl *client) unitStarts(buf []byte, m codec.Message) {
	if m.Type != codec.Query && (cl.sh.inBatch || m.Type == codec.Sync || m.Type == codec.Flush) {
		return
	}
	switch {
	case cl.pins.any():
		cl.sh.reads = false
	case cl.sh.txOpen && cl.sessionRole() != "":
		cl.sh.reads = cl.sessionRole() == "replica"
	case cl.sh.txOpen:
		cl.sh.reads = readOnlyBegin(cl.sh.beginSQL)
	default:
		cl.sh.reads = cl.toReplica(buf)
	}
}

// heldWithBegin answers a SET TRANSACTION ... READ ONLY that comes before any shard joined the transaction
// (sharded databases): it goes with the held-back BEGIN to every shard that joins, on a replica (unitStarts).
func (cl *client) heldWithBegin(r *run, buf []byte, at, n int, sql string) (bool, *codec.Error) {
	ok, perr := cl.answerLocal(r, buf, at, n, expectation{answers: reqQuery, handling: synthesized, tag: "SET"})
	if ok {
		cl.sh.beginSQL += "; " + strings.TrimRight(strings.TrimSpace(sql), ";")
	}
	return ok, perr
}

// readOnlyBegin says whether a sharded database's transaction that begin opened (its BEGIN, and a SET
// TRANSACTION held with it: heldWithBegin) is read only.
func readOnlyBegin(begin string) bool {
	if i := strings.LastIndex(begin, "; "); i >= 0 && lex.SetsReadOnly(begin[i+2:]) {
		return true
	}
	return lex.ReadAccess(begin).Read
}

// shardPool is the pool a statement of a sharded database's client takes its server of shard i from: a
// replica's for a unit of work that goes to replicas (readPoolOrWait), else the primary's. wait: as
// readPoolOrWait's.
func (cl *client) shardPool(i int) (p *pool.Pool, wait bool) {
	if cl.readPools != nil && cl.sh.reads {
		return cl.readPoolOrWait(i)
	}
	return cl.pools[i], false
}

// leaveReplicas lets go of the replicas' servers the client holds on the shards of mask, for a unit of work
// that does not go to replicas: one that has answered everything goes back to its pool now; false when one
// is still answering the unit before (the client stalls until it has: the server then goes back by itself).
func (cl *client) leaveReplicas(mask uint64) bool {
	for m := mask; m != 0; m &= m - 1 {
		s := cl.srvs[bits.TrailingZeros64(m)]
		if s == nil || s.pc.Pool().Replica == 0 {
			continue
		}
		if !s.quiet() {
			return false
		}
		cl.detachServer(s)
		s.release()
	}
	return true
}

// deferBegin answers a plain BEGIN (lex.PlainBegin) at the start of buf itself and holds it back: whether the
// transaction runs on a replica depends on its next statement, a SET TRANSACTION READ ONLY or not (poolFor,
// beginHeldBack). It returns the bytes it used; 0 when buf does not start with one, or the session's
// pgshard.role decides for it.
func (cl *client) deferBegin(buf []byte) int {
	q, n := cl.leadingQuery(buf)
	if n == 0 || cl.pins.any() || cl.sessionRole() != "" || !lex.PlainBegin(transient(q)) {
		return 0
	}
	cl.deferredBegin = string(q)
	cl.out = codec.AppendReadyForQuery(codec.AppendCommandComplete(cl.out, "BEGIN"), codec.TxActive)
	return n
}

// makesReadOnly says whether the unit of work at the start of buf, the first after a held-back BEGIN, makes
// the transaction read only: a Query that is one SET TRANSACTION ... READ ONLY.
func (cl *client) makesReadOnly(buf []byte) bool {
	q, n := cl.leadingQuery(buf)
	return n > 0 && lex.SetsReadOnly(transient(q))
}

// leadingQuery returns the text of the Query message at the start of buf and the message's length; n is 0
// when buf does not start with a complete, valid Query.
func (cl *client) leadingQuery(buf []byte) (q []byte, n int) {
	m, n, err := codec.ReadMessage(buf, cl.e.cfg.Limits.MaxMessageSize)
	if err != nil || n == 0 || m.Type != codec.Query {
		return nil, 0
	}
	if q, err = codec.ParseQuery(m.Body); err != nil {
		return nil, 0
	}
	return q, n
}

// beginHeldBack sends the BEGIN deferBegin held back in front of the client's message at at, to the server
// the message goes to; its answers are pgshard's (the client had them).
func (cl *client) beginHeldBack(sp *splice, at int) {
	sp.insert(at, codec.AppendQuery(cl.ls.synth[:0], cl.deferredBegin))
	cl.srv.expects.push(expectOwn(keepNothing))
	cl.deferredBegin = ""
}

// replayOf says, of the replicas of shard that take reads, whether one has replayed the client's last write
// there (caughtUp: a waiting read can go) and whether one has not yet (behind: one a read could wait for).
func (cl *client) replayOf(shard int, now time.Time) (caughtUp, behind bool) {
	for _, r := range cl.db.replicas[shard] {
		if !r.banned(now) {
			done := r.replayLSN.Load() >= cl.wrote(shard)
			caughtUp, behind = caughtUp || done, behind || !done
		}
	}
	return caughtUp, behind
}

// waitForReplay holds a read until a replica has replayed the client's last write: the replica checks wake it
// (they run every failoverCheckEvery while a read waits), or read_your_writes_timeout ends the wait and the
// read goes to the primary (replayWaitOver).
func (cl *client) waitForReplay() {
	cl.waiter.Since = time.Now()
	cl.holdBack(heldForReplay)
}

// replayWaitOver sends a read that waited read_your_writes_timeout for a replica to the primary, and the
// client's reads of that shard after it, until its next write there (wroteUpTo).
func (cl *client) replayWaitOver() {
	cl.gaveUp |= 1 << cl.pool.Shard
	cl.unhold()
	cl.forward()
	cl.flush()
}

// readPool picks the pool of a read on shard among the replicas that are not banned or lagging, and have
// replayed the client's last write (read-your-writes), with the primary among them for replicas_and_primary:
// in turn, each as often as its weight says, or the one with the fewest connections in use for its weight
// (load_balancing: least_outstanding). The primary when none is left.
func (cl *client) readPool(shard int) *pool.Pool {
	reps := cl.readPools[shard]
	hosts := len(reps) // the primary is hosts-th, when it takes reads
	if cl.db.db.ReadWriteSplit == config.SplitReplicasAndPrimary {
		hosts++
	}
	now := time.Now()
	poolOf := func(i int) *pool.Pool {
		if i == len(reps) {
			return cl.pools[shard]
		}
		return reps[i]
	}
	eligible := func(i int) bool {
		if i == len(reps) {
			return true
		}
		r := cl.db.replicas[shard][i]
		return !r.banned(now) && r.replayLSN.Load() >= cl.wrote(shard)
	}
	weight := func(i int) int {
		if i == len(reps) {
			return 1
		}
		return max(1, cl.db.replicas[shard][i].srv.Weight)
	}
	turn := int(cl.db.readTurn[shard].Add(1) - 1)
	if cl.db.db.LoadBalancing == config.BalanceLeastOutstanding {
		best, bestLoad := -1, 0
		for k := range hosts {
			i := (turn + k) % hosts // ties go round
			if !eligible(i) {
				continue
			}
			if load := poolOf(i).InUse() * 1000 / weight(i); best < 0 || load < bestLoad {
				best, bestLoad = i, load
			}
		}
		if best < 0 {
			return cl.pools[shard]
		}
		return poolOf(best)
	}
	total := 0
	for i := range hosts {
		total += weight(i)
	}
	for k := range total {
		t := (turn + k) % total
		i := 0
		for t >= weight(i) {
			t -= weight(i)
			i++
		}
		if eligible(i) {
			return poolOf(i)
		}
	}
	return cl.pools[shard]
}

// toReplica says whether the unit of work at the start of buf goes to a replica: as a role=primary or
// role=replica comment in it says; else as the session's pgshard.role says; else when it surely only reads. A
// batch whose Sync has not arrived yet goes to the primary: what follows could be anything.
func (cl *client) toReplica(buf []byte) bool {
	a, complete := cl.unitAccess(buf)
	switch {
	case !complete:
		return false
	case a.Role != "":
		return a.Role == "replica"
	}
	switch cl.sessionRole() {
	case "primary":
		return false
	case "replica":
		return true
	}
	return a.Read
}

// unitAccess is the access of the unit of work at the start of buf, its statements' taken together: a read
// when each is; the role its comments give, primary when they disagree. complete: the unit has all arrived.
func (cl *client) unitAccess(buf []byte) (a lex.Access, complete bool) {
	a.Read = true
	add := func(b lex.Access) {
		a.Read = a.Read && b.Read
		if a.Role == "" || b.Role == "primary" {
			a.Role = b.Role
		}
	}
	// The unnamed statement as the batch's Parses leave it; an earlier batch's is looked at only when bound here.
	var unnamed lex.Access
	unnamedKnown := false
	for pos := 0; pos < len(buf); {
		m, n, err := codec.ReadMessage(buf[pos:], cl.e.cfg.Limits.MaxMessageSize)
		if err != nil || n == 0 {
			return a, false
		}
		pos += n
		switch m.Type {
		case codec.Query:
			if pos > n { // a Query after extended messages that had no Sync
				return a, false
			}
			q, err := codec.ParseQuery(m.Body)
			return lex.ReadAccess(transient(q)), err == nil
		case codec.Parse:
			pm, err := codec.ParseParse(m.Body)
			if err != nil {
				return a, false
			}
			b := lex.ReadAccess(transient(pm.Query))
			if len(pm.Name) == 0 {
				unnamed, unnamedKnown = b, true
			}
			add(b)
		case codec.Bind:
			name, ok := bindStatement(m.Body)
			switch st := cl.stmts[string(name)]; {
			case !ok:
				return a, false
			case len(name) == 0:
				if !unnamedKnown {
					unnamed, unnamedKnown = cl.unnamedAccess(), true
				}
				add(unnamed)
			case st == nil:
				add(lex.Access{})
			default:
				add(st.access())
			}
		case codec.Describe, codec.Execute, codec.Close, codec.Flush:
		case codec.Sync:
			return a, true
		default:
			add(lex.Access{})
		}
	}
	return a, false
}

// unnamedAccess is the access of the client's unnamed statement, parsed in an earlier batch.
func (cl *client) unnamedAccess() lex.Access {
	if len(cl.unnamedMsg) == 0 {
		return lex.Access{}
	}
	pm, err := codec.ParseParse(cl.unnamedMsg[codec.HeaderLen:])
	if err != nil {
		return lex.Access{}
	}
	return lex.ReadAccess(transient(pm.Query))
}

// transient views b as a string without copying it, for a call that keeps nothing of it (lex.ReadAccess keeps
// no part of its argument), while b is not changed.
func transient(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// access is st's access, worked out once.
func (st *stmt) access() lex.Access {
	if a := st.readAccess.Load(); a != nil {
		return *a
	}
	a := lex.ReadAccess(st.query)
	st.readAccess.Store(&a)
	return a
}

// sessionRole is the session's pgshard.role (SET pgshard.role, or a startup option): "primary", "replica", or
// "" for auto (also for a value it does not know; Postgres keeps any value of a setting with a dot in its name).
func (cl *client) sessionRole() string {
	replay, ok := cl.settings["pgshard.role"]
	if !ok {
		return ""
	}
	if replay != cl.roleFrom {
		cl.roleFrom, cl.role = replay, ""
		switch v := strings.ToLower(lex.SettingValue(replay)); v {
		case "primary", "replica":
			cl.role = v
		}
	}
	return cl.role
}

// bindStatement returns the statement name of a Bind's body (after its portal name).
func bindStatement(body []byte) ([]byte, bool) {
	for i, c := range body {
		if c == 0 {
			rest := body[i+1:]
			for j, c := range rest {
				if c == 0 {
					return rest[:j], true
				}
			}
			return nil, false
		}
	}
	return nil, false
}

// onReplica reports a client whose server connection is a replica's.
func (cl *client) onReplica() bool { return cl.srv != nil && cl.srv.pc.Pool().Replica > 0 }

// unitMayGo says whether the unit of work at the start of buf, about to go to the client's server, may go
// there: not when the server is a replica outside a transaction and the unit does not go to one (it is held
// for the primary). One that goes to a primary is noted for read-your-writes.
func (cl *client) unitMayGo(buf []byte) bool {
	s := cl.srv
	if s.pc.Pool().Replica > 0 {
		return s.status != codec.TxIdle || cl.toReplica(buf)
	}
	cl.noteWrite(1)
	return true
}

// askWriteLSN asks primary s, whose client cl ran statements on it, how far its WAL goes now: cl's reads go
// only to replicas that have replayed that far (readPool). idleNow releases s once it has answered.
func (s *server) askWriteLSN(cl *client) {
	cl.lsnWanted &^= 1 << s.shard
	s.send(codec.AppendQuery(nil, "SELECT pg_catalog.pg_current_wal_insert_lsn()::text"))
	s.expects.push(expectOwn(keepWriteLSN))
}

// noteWrite notes that statements go to the primaries of the shards of mask: with read_your_writes, pgshard
// asks each how far its WAL goes once they are done (askWriteLSN).
func (cl *client) noteWrite(mask uint64) {
	if cl.db.db.ReadYourWrites == config.RYWSession {
		cl.lsnWanted |= mask
	}
}

// wrote is how far the WAL of shard's primary went after the client's last statements there (0: none known).
func (cl *client) wrote(shard int) uint64 {
	if shard < len(cl.writeLSN) {
		return cl.writeLSN[shard]
	}
	return 0
}

// wroteUpTo takes the answer of askWriteLSN on shard's primary, a DataRow.
func (cl *client) wroteUpTo(shard int, msg []byte) {
	row, err := codec.ParseDataRow(msg[codec.HeaderLen:])
	if err != nil || row.NumColumns() != 1 {
		return
	}
	var cols [1][]byte
	vals, err := row.Columns(cols[:0])
	if err != nil || vals[0] == nil {
		return
	}
	if lsn, ok := parseLSN(string(vals[0])); ok && lsn > cl.wrote(shard) {
		if shard >= len(cl.writeLSN) {
			cl.writeLSN = append(cl.writeLSN, make([]uint64, shard+1-len(cl.writeLSN))...)
		}
		cl.writeLSN[shard] = lsn
		cl.gaveUp &^= 1 << shard // a new write: its reads wait for it again
	}
}

// startsUnit says whether m, about to go to the client's server s, begins a new unit of work (a Query, or the
// first message of an extended batch).
func startsUnit(m codec.Message, s *server) bool {
	return m.Type == codec.Query || !s.unsynced && m.Type != codec.Sync
}

// holdForPrimary keeps a statement that does not go to a replica from the replica the client holds: it waits in
// pgshard until the replica has answered (idleNow). Then the replica is back in its pool and the statement goes
// to the primary; or the replica is in a transaction the client began there (BEGIN READ ONLY), whose
// statements are all its, and the statement goes to it (a write fails there, as in Postgres).
func (cl *client) holdForPrimary() { cl.waitsForPrimary = true }

// heldStatementGoes sends a statement holdForPrimary held, once the replica has answered.
func (cl *client) heldStatementGoes() {
	if cl.waitsForPrimary && cl.state == clientReady {
		cl.waitsForPrimary = false
		cl.forward()
		cl.flush()
	}
}

// banReplica bans replica r for ban_time, for why, unless it is banned already, and logs it with where (the
// pool or the check that saw it fail, as slog attributes).
func (e *Engine) banReplica(r *replica, why string, where ...any) {
	now := time.Now()
	if r.inBan(now) {
		return
	}
	e.ban(r, now, why)
	_, addr := r.srv.Addr()
	e.log.Warn("replica banned: reads go elsewhere", append(where, "replica", addr, "for", e.cfg.Pool.BanTime.String(), "reason", why)...)
}

func (e *Engine) ban(r *replica, now time.Time, why string) {
	r.banReason.Store(&why)
	r.bannedUntil.Store(now.Add(e.cfg.Pool.BanTime).UnixNano())
}

// eachReplica calls f with every replica of every database, and where it is.
func (e *Engine) eachReplica(f func(d *database, shard int, host string, r *replica)) {
	for _, d := range e.cat.Load().dbs {
		for shard, reps := range d.replicas {
			for _, r := range reps {
				_, host := r.srv.Addr()
				f(d, shard, host, r)
			}
		}
	}
}

// Replicas implements admin.Source.
func (e *Engine) Replicas() []admin.ReplicaInfo {
	var out []admin.ReplicaInfo
	now := time.Now()
	e.eachReplica(func(d *database, shard int, host string, r *replica) {
		if !e.splitsReads(d) {
			return
		}
		ri := admin.ReplicaInfo{Database: d.db.Name, Shard: shard, Host: host, State: "ok", LagBytes: r.lagBytes.Load(),
			Lag: time.Duration(r.lag.Load())}
		switch {
		case r.inBan(now):
			ri.State, ri.Until, ri.Reason = "banned", time.Unix(0, r.bannedUntil.Load()), *r.banReason.Load()
		case r.lagging.Load():
			ri.State = "lagging"
		}
		out = append(out, ri)
	})
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		return a.Database < b.Database || a.Database == b.Database && (a.Shard < b.Shard || a.Shard == b.Shard && a.Host < b.Host)
	})
	return out
}

// Ban implements admin.Source: the replica at host, in every database that has it, is banned for ban_time, or
// its ban ends.
func (e *Engine) Ban(host string, ban bool) *codec.Error {
	found := false
	now := time.Now()
	e.eachReplica(func(d *database, shard int, h string, r *replica) {
		if h != host {
			return
		}
		found = true
		if ban {
			e.ban(r, now, "BAN from the admin console")
		} else {
			r.bannedUntil.Store(0)
		}
	})
	if !found {
		return codec.NewError(codec.SQLStateUndefinedObject, "no database has a replica at "+host).
			WithHint("SHOW POOLS lists the replicas by host:port (role replica)")
	}
	verb := "unbanned"
	if ban {
		verb = "banned"
	}
	e.log.Info("the admin console "+verb+" a replica", "replica", host)
	return nil
}

// readElsewhere sends a read that waited for a connection of the replica of pool p, which could not be made,
// to another pool; false when cl did not wait for p.
func (cl *client) readElsewhere(p *pool.Pool) bool {
	if cl.state != clientReady || !cl.waiting || cl.pool != p {
		return false
	}
	cl.waiting = false
	cl.pool = cl.readPool(p.Shard)
	if cl.acquire() {
		cl.resume()
	}
	return true
}
