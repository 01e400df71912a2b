package loop

import (
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pgshard/pgshard/codec"
)

// PAUSE and RESUME, as in PgBouncer's console. From a PAUSE of a database on, no client of it gets a server
// connection for a new transaction: a client whose next message needs a server and that holds none is held
// back (its bytes stay buffered, as while it waits for a pool) until RESUME, within pool.checkout_timeout like
// any checkout. Clients holding servers (in a transaction, mid-query, pinned, or in session mode) go on, and
// may take more servers for their transaction. PAUSE answers once no client of the database holds a server
// or is about to get one, so that the caller knows its writes have stopped. Closing the console connection,
// or a CancelRequest for it, while PAUSE waits withdraws the pause.
//
// Nothing here blocks a loop: the wait for the database to be quiet runs on a goroutine that visits the loops
// (Execute) every few milliseconds, and held-back clients are woken on their own loops.

// pauseState is the engine's part of PAUSE.
type pauseState struct {
	pauseMu sync.Mutex
	pauses  map[string]*pause // by database name; "" is a PAUSE of every database
	pausedN atomic.Int32      // len(pauses): checkouts look at the map only when it is not 0
}

// pause is one PAUSE.
type pause struct {
	db    string  // "" for all databases
	owner *client // the console connection waiting for the answer; nil once answered (under pauseMu)
	done  bool    // the database was quiet and PAUSE answered
}

// pauseQuietPoll bounds how often the PAUSE goroutine looks whether the database is quiet; it starts at
// pauseQuietFirst and doubles.
const (
	pauseQuietFirst = 2 * time.Millisecond
	pauseQuietPoll  = 50 * time.Millisecond
)

// isPaused reports whether a PAUSE holds back the clients of database db.
func (e *Engine) isPaused(db string) bool {
	if e.pausedN.Load() == 0 {
		return false
	}
	e.pauseMu.Lock()
	defer e.pauseMu.Unlock()
	return e.pauses[""] != nil || e.pauses[db] != nil
}

// pauseStateOf says how a database is paused, for SHOW DATABASES: "", "pausing" or "paused".
func (e *Engine) pauseStateOf(db string) string {
	e.pauseMu.Lock()
	defer e.pauseMu.Unlock()
	p := e.pauses[db]
	if p == nil {
		p = e.pauses[""]
	}
	switch {
	case p == nil:
		return ""
	case p.done:
		return "paused"
	}
	return "pausing"
}

func pauseTarget(db string) string {
	if db == "" {
		return "every database"
	}
	return `database "` + db + `"`
}

// startPause runs the console's PAUSE [db] on cl's loop: the pause begins at once; cl gets its answer when
// the database is quiet.
func (cl *client) startPause(db string) *codec.Error {
	e := cl.e
	if db != "" && e.cat.Load().dbs[db] == nil {
		return codec.NewError(codec.SQLStateInvalidCatalogName, `database "`+db+`" does not exist`).
			WithHint("PAUSE names a database of pgshard's config (SHOW DATABASES lists them); PAUSE alone pauses every database")
	}
	e.pauseMu.Lock()
	var err *codec.Error
	switch {
	case e.pauses[""] != nil:
		err = codec.NewError(codec.SQLStateObjectNotInPrerequisite, "every database is already paused").
			WithHint("RESUME ends that pause")
	case db == "" && len(e.pauses) > 0:
		err = codec.NewError(codec.SQLStateObjectNotInPrerequisite, "some databases are already paused").
			WithHint("RESUME them first (SHOW DATABASES shows which), or RESUME to end every pause")
	case e.pauses[db] != nil:
		err = codec.NewError(codec.SQLStateObjectNotInPrerequisite, pauseTarget(db)+" is already paused").
			WithHint("RESUME " + db + " ends that pause")
	}
	if err != nil {
		e.pauseMu.Unlock()
		return err
	}
	if e.pauses == nil {
		e.pauses = map[string]*pause{}
	}
	p := &pause{db: db, owner: cl}
	e.pauses[db] = p
	e.pausedN.Store(int32(len(e.pauses)))
	e.pauseMu.Unlock()
	e.log.Info("pausing", "database", db)
	cl.pausing = p
	cl.adminBusy = true
	go e.awaitQuiet(p)
	return nil
}

// awaitQuiet waits, off the loops, until no client of p's database holds a server or is about to get one,
// then answers the PAUSE. Each pass also holds back the clients that were queued for a server when the
// pause began. It ends early when the pause is withdrawn.
func (e *Engine) awaitQuiet(p *pause) {
	delay := pauseQuietFirst
	for {
		var busy atomic.Int64
		e.forEachLoop(func(ls *loopState) { busy.Add(int64(e.holdQueued(ls, p.db))) })
		e.pauseMu.Lock()
		if e.pauses[p.db] != p {
			e.pauseMu.Unlock()
			return
		}
		if busy.Load() == 0 {
			p.done = true
			owner := p.owner
			p.owner = nil
			e.pauseMu.Unlock()
			e.log.Info("paused", "database", p.db)
			if owner != nil {
				_ = owner.ls.execute(func() { owner.pauseAnswered(p) })
			}
			return
		}
		e.pauseMu.Unlock()
		time.Sleep(delay)
		delay = min(2*delay, pauseQuietPoll)
	}
}

// holdQueued runs on ls: clients of db ("" all) queued for a server while holding none are taken out of the
// pool's queue and held back like the clients that ask after the pause began. It returns how many clients
// of db hold a server or are about to get one.
func (e *Engine) holdQueued(ls *loopState, db string) int {
	busy := 0
	for cl := range ls.clients {
		if (cl.state != clientReady && cl.state != clientConnecting) || (db != "" && cl.dbName != db) {
			continue
		}
		cl.holdIfQueued(heldByPause)
		if cl.attachedMask() != 0 || (cl.waiting && cl.held == notHeld) {
			busy++
		}
	}
	return busy
}

// hold is why a client that needs a server waits in pgshard, not in a pool's queue: until the reason is gone,
// when wake lets it go on, or its time is up (checkTimers).
type hold uint8

const (
	notHeld        hold = iota
	heldByPause         // a PAUSE of its database, until RESUME, within pool.checkout_timeout
	heldByFailover      // its shard has no primary, until it has one, within pool.failover_buffer_timeout (failover.go)
	heldForReplay       // its read waits for a replica to replay its write, within read_your_writes_timeout (replicas.go)
)

// holdIfQueued takes a client that holds no server out of the pool queue it waits in, and holds it back for
// why instead (a client being dialled for stays: its dial's outcome finds it).
func (cl *client) holdIfQueued(why hold) {
	if cl.waiting && cl.held == notHeld && cl.attachedMask() == 0 && cl.pool.Cancel(&cl.waiter, false) {
		cl.holdBack(why)
	}
}

// holdBack makes a client that holds no server wait for why to be gone (acquire, or a pool queue it left).
func (cl *client) holdBack(why hold) {
	if why == heldForReplay {
		cl.e.replayWaits.Add(1)
	}
	cl.waiting, cl.held = true, why
	if cl.ls.held == nil {
		cl.ls.held = map[*client]struct{}{}
	}
	cl.ls.held[cl] = struct{}{}
}

// unhold forgets that cl is held back.
func (cl *client) unhold() {
	if cl.held != notHeld {
		if cl.held == heldForReplay {
			cl.e.replayWaits.Add(-1)
		}
		delete(cl.ls.held, cl)
		cl.waiting, cl.held = false, notHeld
	}
}

// stillHeld says whether what holds cl back is still there.
func (cl *client) stillHeld() bool {
	switch cl.held {
	case heldByFailover:
		return !cl.db.retired.Load() && cl.db.primaryLost[cl.pool.Shard].Load() != 0
	case heldForReplay:
		caughtUp, _ := cl.replayOf(cl.pool.Shard, time.Now())
		return !cl.db.retired.Load() && !caughtUp
	}
	return cl.e.isPaused(cl.dbName)
}

// pauseAnswered runs on the console connection's loop when its PAUSE is done.
func (cl *client) pauseAnswered(p *pause) {
	if cl.state != clientAdmin || cl.pausing != p {
		return // withdrawn meanwhile
	}
	cl.pausing = nil
	cl.adminEnd(codec.AppendCommandComplete(cl.out, "PAUSE"))
}

// pauseFailed ends a waiting PAUSE of the console connection cl with err (its pause is already gone).
func (cl *client) pauseFailed(p *pause, err *codec.Error) {
	if cl.state != clientAdmin || cl.pausing != p {
		return
	}
	cl.pausing = nil
	cl.adminEnd(codec.AppendErrorResponse(cl.out, err))
}

// adminEnd finishes a console command that ran off the loop or waited: its answer is out, then
// ReadyForQuery, and the connection's next messages are read.
func (cl *client) adminEnd(out []byte) {
	cl.out = codec.AppendReadyForQuery(out, codec.TxIdle)
	cl.adminBusy = false
	cl.adminQuery()
	cl.flush()
}

// cancelAdmin runs on a console connection's loop when a CancelRequest names it: a waiting PAUSE is withdrawn.
func (cl *client) cancelAdmin() {
	p := cl.pausing
	if cl.state != clientAdmin || p == nil {
		return
	}
	cl.pausing = nil
	cl.e.endPause(p, "canceled")
	cl.adminEnd(codec.AppendErrorResponse(cl.out, codec.NewError(codec.SQLStateQueryCanceled,
		"canceling PAUSE due to user request: "+pauseTarget(p.db)+" is not paused")))
}

// endPause withdraws p (if it is still in force) and wakes the clients it held back.
func (e *Engine) endPause(p *pause, why string) {
	e.pauseMu.Lock()
	if e.pauses[p.db] != p {
		e.pauseMu.Unlock()
		return
	}
	delete(e.pauses, p.db)
	e.pausedN.Store(int32(len(e.pauses)))
	e.pauseMu.Unlock()
	e.log.Info("pause withdrawn", "database", p.db, "why", why)
	e.wakeHeld()
}

// dropPause ends the pause of a database a RELOAD removed: a PAUSE still waiting gets an error. Its held-back
// clients are closed with the rest of the database's clients (afterReload).
func (e *Engine) dropPause(db string) {
	e.pauseMu.Lock()
	p := e.pauses[db]
	if p == nil {
		e.pauseMu.Unlock()
		return
	}
	delete(e.pauses, db)
	e.pausedN.Store(int32(len(e.pauses)))
	owner := p.owner
	e.pauseMu.Unlock()
	e.log.Info("pause ended: database removed", "database", db)
	if owner != nil {
		_ = owner.ls.execute(func() {
			owner.pauseFailed(p, codec.NewError(codec.SQLStateInvalidCatalogName, "PAUSE ended: "+pauseTarget(db)+" was removed by RELOAD"))
		})
	}
}

// Resume implements admin.Source: RESUME db ends the pause of db, RESUME ("") every pause. A PAUSE still
// waiting for its database to be quiet gets an error. RESUME of a database that is not paused changes
// nothing and says so in a notice: a tool finishing an interrupted cutover may always send it.
func (e *Engine) Resume(db string) (string, *codec.Error) {
	e.pauseMu.Lock()
	var ended []*pause
	switch {
	case db == "":
		for _, p := range e.pauses {
			ended = append(ended, p)
		}
		if len(ended) == 0 {
			e.pauseMu.Unlock()
			return "no database is paused", nil
		}
	case e.pauses[db] != nil:
		ended = append(ended, e.pauses[db])
	default:
		all := e.pauses[""] != nil
		e.pauseMu.Unlock()
		switch {
		case e.cat.Load().dbs[db] == nil:
			return "", codec.NewError(codec.SQLStateInvalidCatalogName, `database "`+db+`" does not exist`).
				WithHint("RESUME names a paused database (SHOW DATABASES lists them); RESUME alone ends every pause")
		case all:
			return "", codec.NewError(codec.SQLStateObjectNotInPrerequisite, `database "`+db+`" is paused by a PAUSE of every database`).
				WithHint("RESUME without a database name ends it")
		}
		return `database "` + db + `" is not paused`, nil
	}
	var waiting []*pause
	for _, p := range ended {
		delete(e.pauses, p.db)
		if p.owner != nil {
			waiting = append(waiting, p)
		}
	}
	e.pausedN.Store(int32(len(e.pauses)))
	e.pauseMu.Unlock()
	for _, p := range ended {
		e.log.Info("resumed", "database", p.db)
	}
	for _, p := range waiting {
		owner := p.owner // the owner field is only read here: the pause is out of the map, no one else touches it
		_ = owner.ls.execute(func() {
			owner.pauseFailed(p, codec.NewError(codec.SQLStateQueryCanceled, "PAUSE ended by RESUME before "+pauseTarget(p.db)+
				" was quiet: it is not paused").WithHint("PAUSE again to pause it"))
		})
	}
	e.wakeHeld()
	return "", nil
}

// wakeHeld lets the held-back clients whose database is no longer paused, or whose shard has a primary again,
// go on, on their own loops, without waiting for them.
func (e *Engine) wakeHeld() {
	e.loopsMu.Lock()
	loops := append([]*loopState(nil), e.loops...)
	e.loopsMu.Unlock()
	for _, ls := range loops {
		_ = ls.execute(func() { e.wake(ls) })
	}
}

// wake runs on ls: its held-back clients that are held no more go on, longest waiting first.
func (e *Engine) wake(ls *loopState) {
	var ready []*client
	for cl := range ls.held {
		if !cl.stillHeld() {
			ready = append(ready, cl)
		}
	}
	sort.Slice(ready, func(i, j int) bool { return ready[i].waiter.Since.Before(ready[j].waiter.Since) })
	for _, cl := range ready {
		if cl.held == notHeld || cl.state == clientClosed {
			continue
		}
		cl.unhold()
		switch cl.state {
		case clientConnecting:
			if (cl.db.retired.Load() || cl.user.retired.Load()) && !cl.rebind() {
				continue
			}
			if cl.acquire() {
				cl.resume()
			}
		case clientReady:
			cl.forward()
			cl.flush()
		}
	}
}
