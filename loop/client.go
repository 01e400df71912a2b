package loop

import (
	"errors"
	"strconv"
	"time"

	"github.com/pgshard/pgshard/auth"
	"github.com/pgshard/pgshard/codec"
	"github.com/pgshard/pgshard/pool"
	"github.com/pgshard/pgshard/route"
	"github.com/pgshard/pgshard/route/lex"
	"github.com/pgshard/pgshard/tlsio"
)

// clientState is where a client connection is in its life; it changes only in setState.
//
//	startup ──▶ [lookup] ──▶ auth ──▶ [connecting] ──▶ ready
//	                           └────▶ admin                    any ──▶ closed
//
// What it is doing meanwhile (waiting for a server, held by a PAUSE, its output held) are details in fields of
// their own.
type clientState int

const (
	clientStartup    clientState = iota // waiting for the startup packet
	clientLookup                        // its user is being looked up with auth_query (authquery.go)
	clientAuth                          // in the authentication exchange
	clientConnecting                    // authenticated; waiting for a first server to learn its parameters
	clientReady                         // serving queries
	clientAdmin                         // logged in to the admin console
	clientClosed
)

var clientStateNames = [...]string{"startup", "lookup", "auth", "connecting", "ready", "admin", "closed"}

func (st clientState) String() string {
	if st >= 0 && int(st) < len(clientStateNames) {
		return clientStateNames[st]
	}
	return "clientState(" + strconv.Itoa(int(st)) + ")"
}

// clientTransitions[from] has bit 1<<to set for each state from can go to.
var clientTransitions = [...]uint8{
	clientStartup:    1<<clientLookup | 1<<clientAuth | 1<<clientClosed,
	clientLookup:     1<<clientAuth | 1<<clientClosed,
	clientAuth:       1<<clientConnecting | 1<<clientReady | 1<<clientAdmin | 1<<clientClosed,
	clientConnecting: 1<<clientReady | 1<<clientClosed,
	clientReady:      1 << clientClosed,
	clientAdmin:      1 << clientClosed,
	clientClosed:     0,
}

// setState moves cl to state to; an impossible transition panics in the package's tests and is logged
// otherwise (see strictStates).
func (cl *client) setState(to clientState) {
	if clientTransitions[cl.state]&(1<<to) == 0 {
		cl.e.impossible("client", cl.state, to)
	}
	if transitionMade != nil {
		transitionMade("client", int(cl.state), int(to))
	}
	cl.state = to
}

// maxStartupPacket bounds a startup packet, as Postgres does (MAX_STARTUP_PACKET_LENGTH).
const maxStartupPacket = 10000

// client is one client connection and its session. Only its loop's goroutine touches it.
type client struct {
	e   *Engine
	ls  *loopState
	c   conn        // a *tlsio.Conn when the client speaks TLS
	tls *tlsio.Conn // nil in plaintext
	// tlsBinding is the channel binding data of the certificate the client was served (SCRAM-SHA-256-PLUS).
	tlsBinding []byte
	state      clientState
	startBy    time.Time

	addr        string
	connectedAt time.Time
	dbName      string
	login       string    // the user name of its startup packet
	isAdmin     bool      // logged in to the admin console (set before its cancel key is registered)
	admitted    admitKind // which connection limit counts it (admission.go)
	adminBusy   bool      // an admin command runs off the loop, or a PAUSE waits; later messages wait
	pausing     *pause    // the PAUSE this console connection waits for (pause.go)
	held        hold      // why it waits in pgshard for a server rather than in a pool's queue (with waiting set)

	user   *user
	db     *database
	params []codec.Param // startup parameters, for ParameterStatus
	pools  []*pool.Pool  // the database's pools for this user, one per shard
	pool   *pool.Pool    // the one checked out from (or waited on) last
	mapped bool          // client statement names are mapped (transaction mode, see prepared.go)
	rt     *route.Router // the loop's router for a sharded database; nil for a plain pooled one
	rs     route.Session // SET pgshard.shard / pgshard.sharding_key
	sh     sharding      // routing state (shards.go)

	scram        *auth.ScramServer
	scramStarted bool
	md5Salt      [4]byte

	pid uint32
	key [4]byte

	srv        *server          // the server connection messages go to now
	srvs       []*server        // attached server connections, by shard
	stmts      map[string]*stmt // the client's named prepared statements (transaction mode)
	sqlStmts   map[string]*stmt // and those of its SQL PREPARE statements
	skipToSync bool             // pgshard refused a message: drop the rest of the batch until Sync

	// The read/write split (replicas.go): the pools of the replicas of each shard when the client's reads go
	// there; a statement held until the replica the client holds has answered (holdForPrimary); the session's
	// pgshard.role, and the statement in settings it was read from (sessionRole).
	readPools       [][]*pool.Pool
	waitsForPrimary bool
	role, roleFrom  string
	// Read-your-writes: each shard's primary's WAL position after the client's last statements there (wrote),
	// the shards where statements ran since it was asked, and those where reads go to the primary at once
	// until a later write.
	writeLSN  []uint64
	lsnWanted uint64
	gaveUp    uint64 // the shards where a read gave up waiting for the client's last write (read_your_writes_timeout)
	// deferredBegin is a plain BEGIN pgshard answered and holds back until the next statement says whether the
	// transaction is read only (deferBegin): it goes in front of that statement, to the server it goes to.
	deferredBegin string

	// Session state (session.go).
	settings    map[string]string   // the client's settings: name -> statement that sets it
	defaults    map[string]string   // its startup parameters, what RESET returns to
	settingsVer uint64              // bumped on every change, so an unchanged client is not compared again
	needSync    bool                // a server was just attached, or a RESET confirmed: give it the client's settings when it is quiet
	tx          provisional         // the settings to restore if the transaction in progress rolls back
	pins        pins                // session features that keep the server attached
	unnamedFx   *effects            // what the unnamed statement does to the session
	unnamedMsg  []byte              // the Parse of the client's unnamed statement, for a server that lacks it (transaction mode)
	unnamedGen  uint64              // counts the client's unnamed Parses
	portalFx    map[string]*effects // what each bound portal will do ("" is the unnamed portal)
	waiter      pool.Waiter         // queued for a server connection
	waiting     bool                // a checkout is under way (queued, dialing, or a connection is moving to us)

	cancelArmed   bool      // a fan-out's shards are cancelled when a grace period ends (cancel.go)
	cancelPending bool      // the client's CancelRequest came while its statement waited in pgshard: cancel it once sent
	outputHeld    bool      // its statements wait until it reads its answers (holdForOutput)
	out           []byte    // replies the proxy itself makes, written once per callback
	flushes       int       // writes of out, to tell whether what was in it is still there
	park          parking   // reading paused while the server cannot take more
	wire          wireTrace // log_wire
	clock         clock     // what the client timeouts measure (timeouts.go)
}

func (cl *client) onTraffic() {
	cl.clock.reads++
	if cl.tls != nil {
		if err := cl.tls.Fill(cl.ls.tlsScratch()); err != nil {
			cl.e.log.Debug("TLS client connection ended", "client", cl.addr, "err", err)
			cl.fatal(nil)
			return
		}
	}
	// A client may send its next messages in the write that moves it to the next state (a password after the
	// startup packet, a query after a trust login): each state reads what it finds, now, not at the next read.
	for {
		before := cl.state
		switch cl.state {
		case clientStartup:
			cl.readStartup()
		case clientAuth:
			cl.readAuth()
		case clientReady:
			cl.forward()
		case clientAdmin:
			cl.adminQuery()
		}
		if cl.state == before || cl.state == clientClosed || cl.park.parked || cl.c.InboundBuffered() == 0 {
			break
		}
	}
	if !cl.answersComing() {
		cl.flush()
	}
}

// answersComing says whether a server of the client owes answers it will send without anything more from the
// client (a Sync or a Query was the last thing it was sent). Then the replies pgshard made itself (cl.out:
// the ParseComplete of a statement it did not send yet, say) are held and go out in the same write as the
// server's answer (server.onTraffic), which comes after them: one write to the client per round trip, not two.
func (cl *client) answersComing() bool {
	if len(cl.out) == 0 || cl.state != clientReady {
		return false
	}
	for _, s := range cl.srvs {
		if s != nil && s.client == cl && !s.gone() && !s.park.parked && !s.unsynced && s.expects.len() > 0 {
			return true
		}
	}
	return false
}

// writeAfterHeld writes out, a server's answers, after the first held bytes of cl.out (held by
// answersComing), in one write. What was added to cl.out after them waits for the next flush, as before.
func (cl *client) writeAfterHeld(held int, out []byte) {
	if held > 0 {
		b := append(cl.ls.joined[:0], cl.out[:held]...)
		out = append(b, out...)
		cl.ls.joined = out[:0]
		cl.out = cl.out[:copy(cl.out, cl.out[held:])]
	}
	if len(out) == 0 || cl.park.parked || cl.state == clientClosed {
		return
	}
	if cl.wire.on {
		cl.traceOut(out)
	}
	_, _ = cl.c.Write(out)
}

// stateName says what the client is doing, for SHOW CLIENTS.
func (cl *client) stateName() string {
	switch {
	case cl.state == clientAdmin:
		return "admin"
	case cl.state < clientConnecting:
		return "login"
	case cl.held == heldByPause:
		return "paused"
	case cl.held == heldByFailover:
		return "failover"
	case cl.held == heldForReplay:
		return "replay"
	case cl.waiting:
		return "waiting"
	case cl.attachedMask() != 0 && cl.pins.any():
		return "pinned"
	case cl.attachedMask() != 0: // a sharded client may hold several, none of them cl.srv
		return "active"
	}
	return "idle"
}

// flush writes what the proxy itself queued for the client.
func (cl *client) flush() {
	if cl.park.parked {
		return // written when the client is back in the loop
	}
	if len(cl.out) > 0 && cl.state != clientClosed {
		if cl.wire.on {
			cl.traceOut(cl.out)
		}
		_, _ = cl.c.Write(cl.out)
	}
	cl.out = cl.out[:0]
	cl.flushes++
}

// fatal sends a FATAL error and closes the client; nil closes it with what it was sent already (a server's own
// FATAL error, passed on).
func (cl *client) fatal(err *codec.Error) {
	if cl.state == clientClosed {
		return
	}
	if cl.park.parked {
		cl.park.closeParked()
		cl.onClose()
		return
	}
	if err != nil {
		cl.out = codec.AppendErrorResponse(cl.out, err)
	}
	cl.flush()
	cl.ls.closeConn(cl.c) // runs onClose at once
}

// fatalDrain sends a FATAL error to a client that is still sending (an oversized message): closing at once
// would make the kernel reset the connection and the client would lose the error before reading it. So the
// session ends now, but the socket half-closes and what the client still sends is read and dropped for a
// moment, as Postgres does.
func (cl *client) fatalDrain(err *codec.Error) {
	if cl.state == clientClosed || cl.park.parked {
		cl.fatal(err)
		return
	}
	cl.out = codec.AppendErrorResponse(cl.out, err)
	cl.flush()
	c, ls := cl.c, cl.ls
	cl.onClose()
	ls.drain(c)
}

// forward passes the client's complete messages to its server connection, checking one out first when the
// client has none. Messages stay buffered while the client waits for a server (boundReadAhead bounds them).
// Most bytes pass through untouched; named prepared statements are renamed or answered by pgshard (see
// prepared.go).
func (cl *client) forward() {
	if cl.park.parked {
		return // its messages wait until it is back (reopened)
	}
	if (cl.db.retired.Load() || cl.user.retired.Load()) && !cl.rebind() {
		return // its database was removed (RELOAD): closed
	}
	if cl.outputHeld || cl.overloaded(1) {
		cl.holdForOutput()
		return
	}
	if cl.rt != nil {
		cl.forwardSharded()
		return
	}
	if s := cl.srv; s != nil && s.park.parked {
		// The server is not being read (its client is slow); what the client sends waits, up to a bound.
		cl.boundReadAhead(s.unparkedOrGone)
		return
	}
	cl.forwardUnsharded()
}

// forwardUnsharded is forward's pass-through of a database of one shard: the client's messages go to its one
// server connection, checked out at the first message that needs it.
func (cl *client) forwardUnsharded() {
	buf := cl.park.input(cl.c)
	sp := splice{in: buf, scratch: &cl.ls.toServer}
	maxSize := cl.e.cfg.Limits.MaxMessageSize
	pos := 0
	for pos < len(buf) {
		m, n, err := codec.ReadMessage(buf[pos:], maxSize)
		if err != nil {
			cl.sendToServer(sp.result(pos), pos)
			cl.fatalDrain(codec.NewFatal(codec.SQLStateProtocolViolation, "invalid message from client: "+err.Error()).
				WithHint("limits.max_message_size bounds one message"))
			return
		}
		if n == 0 {
			break
		}
		if perr := invalidMessageType(m.Type); perr != nil {
			cl.sendToServer(sp.result(pos), pos)
			cl.fatal(perr)
			return
		}
		if m.Type == codec.Terminate {
			cl.sendToServer(sp.result(pos), pos)
			cl.ls.closeConn(cl.c)
			return
		}
		if cl.srv == nil && cl.state == clientReady {
			if used := cl.answerWithoutServer(buf[pos:]); used > 0 {
				sp.drop(pos, pos+used)
				pos += used
				continue
			}
		}
		if cl.srv == nil && pos > 0 {
			cl.sendToServer(nil, pos)
			cl.checkOutFor(buf[pos:])
			return
		}
		if !cl.serverFor(buf[pos:], m) {
			break // the bytes stay buffered until a server arrives, or the replica the client holds is done
		}
		if cl.srv.expects.len() > maxInFlight {
			cl.outputHeld = true // the rest waits for answers (holdForOutput, after this batch is sent)
			break
		}
		if cl.needSync && cl.srv.quiet() {
			cl.needSync = false
			if cl.srv.replaySettings(cl) {
				break // the client's bytes wait for the replay's answer (pos is 0: the server was quiet)
			}
		}
		if cl.deferredBegin != "" {
			cl.beginHeldBack(&sp, pos)
		}
		if perr := cl.message(&sp, m, pos, n); perr != nil {
			cl.sendToServer(sp.result(pos), pos)
			cl.fatal(perr)
			return
		}
		pos += n
	}
	if pos > 0 {
		cl.sendToServer(sp.result(pos), pos)
		if cl.cancelPending && cl.srv != nil && !cl.srv.cancelling {
			cl.cancelPending = false
			cl.srv.cancel()
		}
	}
	if cl.outputHeld && cl.state == clientReady {
		cl.outputHeld = false
		cl.holdForOutput()
	} else if cl.waiting {
		cl.boundReadAhead(cl.notWaiting)
	}
}

// answerWithoutServer answers what the client sent at the start of buf, while it holds no server, when pgshard
// can: a plain BEGIN it holds back (deferBegin), the messages of named statements it knows (answerLocally). It
// returns the bytes it used. Nothing is answered here while a BEGIN is held back: what follows goes to the
// server that gets the BEGIN.
func (cl *client) answerWithoutServer(buf []byte) int {
	switch {
	case cl.deferredBegin != "":
		return 0
	case cl.readPools != nil:
		if used := cl.deferBegin(buf); used > 0 {
			return used
		}
	}
	if cl.mapped {
		return cl.answerLocally(buf)
	}
	return 0
}

// checkOutFor checks out a server for the unit of work at the start of buf, after pgshard answered what came
// before it. (It used to wait for the client's next bytes, which a client waiting for its answers never sends.)
func (cl *client) checkOutFor(buf []byte) {
	var wait bool
	if cl.pool, wait = cl.poolFor(buf); wait {
		cl.waitForReplay()
	} else if cl.acquire() {
		cl.forward()
	}
}

// serverFor makes sure that the message m at the start of buf has a server connection to go to: it checks one
// out when the client has none, of the pool poolFor picks for the unit of work m begins, and holds a unit that
// may not go to the replica the client holds (holdForPrimary). False: m waits.
func (cl *client) serverFor(buf []byte, m codec.Message) bool {
	chosenReplica := false // the unit was just given a replica's pool: it needs no second look
	if cl.srv == nil && !cl.waiting {
		var wait bool
		if cl.pool, wait = cl.poolFor(buf); wait {
			cl.waitForReplay()
			return false
		}
		chosenReplica = cl.pool.Replica > 0
	}
	if cl.srv == nil && !cl.acquire() {
		return false
	}
	if cl.readPools != nil && !chosenReplica && startsUnit(m, cl.srv) && !cl.unitMayGo(buf) {
		cl.holdForPrimary()
		return false
	}
	return true
}

// notWaiting says when a client parked while it waited for a server (or for RESUME) comes back.
func (cl *client) notWaiting() bool {
	return cl.state == clientClosed || !cl.waiting
}

// maxInFlight bounds the client's statements sent to a server and not answered yet: each costs pgshard an
// entry until its answer comes (a client pipelining millions of statements would hold millions).
const maxInFlight = 4096

// overloaded says whether the client's next statements must wait: it has more than limits.client_outbound_buffer
// of answers unread, or one of its servers has that much of its statements unread, or maxInFlight of them
// unanswered. Without this, a client that sends and never reads makes pgshard hold its answers without bound.
func (cl *client) overloaded(fraction int) bool {
	limit := cl.e.cfg.Limits.ClientOutboundBuffer / fraction
	if cl.c.OutboundBuffered() > limit {
		return true
	}
	for _, s := range cl.srvs {
		if s != nil && !s.gone() && (s.backedUp(limit) || s.expects.len() > maxInFlight/fraction) {
			return true
		}
	}
	return false
}

// serversSaid says whether a server of the client has answers pgshard has not passed on: they wait while the
// client is parked, and it must come back for them (they may be what it waits for).
func (cl *client) serversSaid() bool {
	for _, s := range cl.srvs {
		if s != nil && !s.gone() && !s.park.parked && s.c.InboundBuffered() > 0 {
			return true
		}
	}
	return false
}

// holdForOutput keeps the client's statements waiting while it is overloaded; they go on once it is half way
// back (checked every parkPoll, as a parked connection is).
func (cl *client) holdForOutput() {
	if cl.boundReadAhead(func() bool { return cl.state == clientClosed || !cl.overloaded(2) }) {
		cl.outputHeld = false
		return
	}
	if cl.outputHeld {
		return // its poll is running
	}
	cl.outputHeld = true
	var check func()
	check = func() {
		switch {
		case cl.state == clientClosed || !cl.outputHeld || cl.park.parked:
		case !cl.overloaded(2):
			cl.outputHeld = false
			cl.forward()
			cl.flush()
		default:
			time.AfterFunc(parkPoll, func() { _ = cl.ls.execute(check) })
		}
	}
	time.AfterFunc(parkPoll, func() { _ = cl.ls.execute(check) })
}

// heldReadAhead is how much a client whose statements wait may send before pgshard stops reading it. It is
// small because gnet's read buffer grows by doubling to hold what is not used, and a parked client's bytes are
// copied into its stash: both cost far more than the bytes themselves, each time the client is parked.
const heldReadAhead = 256 << 10

// readAhead is how much the client sent that pgshard has read and not used yet.
func (cl *client) readAhead() int {
	return cl.c.InboundBuffered() + len(cl.park.stash)
}

// boundReadAhead runs while the client's statements wait (for its own output to drain, or for its server).
// gnet reads a socket whenever it can, so what the client goes on sending meanwhile piles up in pgshard. Past
// limits.client_outbound_buffer of it the client is disconnected (53400): it sends without reading the answers
// to what it sent, and nothing else would ever bound it. Past heldReadAhead, a client with none of its answers
// waiting in pgshard is parked until ready (TCP then slows it down); one with answers waiting cannot be (gnet
// would drop them) and is read on, up to the limit. A parked client also comes back when one of its servers has
// answers for it (they wait while it is parked). It reports whether the client is now parked or closed.
func (cl *client) boundReadAhead(ready func() bool) bool {
	limit, readAhead := cl.e.cfg.Limits.ClientOutboundBuffer, cl.readAhead()
	switch {
	case readAhead > limit:
		cl.fatal(codec.NewFatal(codec.SQLStateConfigurationLimitExceed,
			"the client sent more than limits.client_outbound_buffer of requests without reading the answers to earlier ones").
			WithHint("read the results while sending more statements, or raise limits.client_outbound_buffer"))
		return true
	case readAhead <= min(limit, heldReadAhead):
		return false
	case cl.c.OutboundBuffered() == 0 && cl.state == clientReady &&
		cl.park.park(cl.e, cl.ls, cl.c, &reopen{cl: cl}, func() bool { return ready() || cl.serversSaid() }):
		return true
	}
	cl.park.keep(cl.c) // read on: what it sends waits in the stash
	return false
}

// invalidMessageType is Postgres's answer to a message type a logged-in client may not send: pgshard never
// passes one to a server (which would end its session with it).
func invalidMessageType(t byte) *codec.Error {
	if codec.IsSessionMessage(t) {
		return nil
	}
	return codec.NewFatal(codec.SQLStateProtocolViolation, "invalid frontend message type "+strconv.Itoa(int(t)))
}

// message accounts for one client message bound for the server at buf[at:at+n]: what the server will answer,
// and, in transaction mode, the renaming of named prepared statements.
func (cl *client) message(sp *splice, m codec.Message, at, n int) *codec.Error {
	s := cl.srv
	if cl.skipToSync {
		// pgshard refused a message of this batch itself: like Postgres, ignore the rest until Sync.
		if m.Type != codec.Sync {
			sp.drop(at, at+n)
			return nil
		}
		cl.skipToSync = false
	}
	switch m.Type {
	case codec.Query:
		cl.queryMessage(sp, s, m, at)
	case codec.FunctionCall:
		s.expects.push(expectQuery())
	case codec.Sync:
		if !(s.copyIn && s.copyMsgs == s.copyFrom) { // a Sync the server ignores, before a COPY's data, is not answered
			s.expects.push(expectation{answers: reqSync, copyMsgs: s.copyMsgs})
		}
		s.unsynced = false
	case codec.CopyData, codec.CopyDone, codec.CopyFail:
		s.copyMsgs++
		if m.Type != codec.CopyData {
			s.copyIn = false
		}
	case codec.Execute:
		cl.executeMessage(s, m)
	case codec.Flush:
		s.unsynced = true
	case codec.Parse:
		return cl.parseMessage(sp, s, m, at, n)
	case codec.Bind, codec.Describe:
		return cl.bindOrDescribe(sp, s, m, at, n)
	case codec.Close:
		return cl.closeMessage(sp, s, m, at, n)
	}
	return nil
}

// queryMessage expects the answers to a simple Query, noting what it does to the session: settings, pins,
// SQL-level prepared statements (which the server must hold first), the unnamed statement it drops.
func (cl *client) queryMessage(sp *splice, s *server, m codec.Message, at int) {
	e := expectQuery()
	q, _ := codec.ParseQuery(m.Body)
	if cl.sh.pieceOf != nil {
		q = cl.sh.pieceOf
	}
	if cl.mapped && lex.ChangesSchema(q) {
		cl.e.registry.forget()
	}
	if fx := effectsOf(q); fx != nil {
		cl.applyPins(fx)
		e.sets = fx.changes
		if fx.discardAll && cl.mapped {
			cl.forgetStatements()
		}
	}
	if cl.mapped {
		e.sqlOps = cl.sqlPrepared(sp, s, q, at)
		cl.unnamedMsg, s.unnamedOwner = cl.unnamedMsg[:0], nil // a simple query drops the unnamed statement
	}
	e.copyMsgs = s.copyMsgs
	s.expects.push(e)
}

// executeMessage expects the answers to an Execute, with what its portal's statement does to the session.
func (cl *client) executeMessage(s *server, m codec.Message) {
	e := expectation{answers: reqExecute, copyMsgs: s.copyMsgs}
	if cl.portalFx != nil {
		if em, err := codec.ParseExecute(m.Body); err == nil {
			if fx := cl.portalFx[string(em.Portal)]; fx != nil {
				cl.applyPins(fx)
				e.sets = fx.changes
			}
		}
	}
	s.expects.push(e)
	s.unsynced = true
}

// parseMessage sends a Parse on: the unnamed statement as it is; a named one under the name of the shared
// statement it is (prepared.go), or answered by pgshard when the server holds that statement already.
func (cl *client) parseMessage(sp *splice, s *server, m codec.Message, at, n int) *codec.Error {
	batchStart := !s.unsynced
	s.unsynced = true
	if !cl.mapped {
		s.expects.push(expectation{answers: reqParse})
		return nil
	}
	pm, err := codec.ParseParse(m.Body)
	if err != nil {
		return codec.NewFatal(codec.SQLStateProtocolViolation, err.Error())
	}
	if lex.ChangesSchema(pm.Query) {
		cl.e.registry.forget()
	}
	if batchStart && (len(cl.sqlStmts) > 0 || len(s.sqlNames.byName) > 0) {
		// "EXECUTE name" sent with Parse (psql's \gdesc): the server must hold the client's statement. Its
		// PREPAREs go in front only at a batch's start, where a Query does not end the client's pipeline.
		cl.sqlPrepared(sp, s, pm.Query, at)
	}
	if len(pm.Name) == 0 {
		cl.unnamedMsg = append(cl.unnamedMsg[:0], sp.in[at:at+n]...)
		cl.unnamedGen++
		s.unnamedOwner, s.unnamedGen = cl, cl.unnamedGen
		cl.unnamedFx = effectsOf(pm.Query)
		s.expects.push(expectation{answers: reqParse})
		return nil
	}
	sp.drop(at, at+n)
	if perr := cl.refuseParse(pm.Name); perr != nil {
		cl.skipToSync = true
		s.synth(cl, refusal(perr))
		return nil
	}
	st := cl.stmtFor(pm.Query, pm.ParamTypes)
	cl.setStmt(pm.Name, st)
	if s.stmts.has(st) {
		s.synth(cl, expectation{answers: reqParse, handling: synthesized, st: st, name: string(pm.Name)})
	} else {
		s.prepare(sp, at, st, forward)
		s.expects.last().name = string(pm.Name)
	}
	return nil
}

// bindOrDescribe sends on a Bind, or a Describe, naming the statement by its shared name and preparing it on
// the server first when the server lacks it (the unnamed one too, when it was parsed on another connection).
func (cl *client) bindOrDescribe(sp *splice, s *server, m codec.Message, at, n int) *codec.Error {
	batchStart := !s.unsynced
	s.unsynced = true
	req := reqBind
	if m.Type == codec.Describe {
		req = reqDescribe
	}
	name, nameAt, err := statementName(m)
	if err != nil {
		return codec.NewFatal(codec.SQLStateProtocolViolation, err.Error())
	}
	var plan *route.Plan
	if req == reqDescribe {
		plan, cl.sh.describePlan = cl.sh.describePlan, nil
	}
	if !cl.mapped || len(name) == 0 {
		namesStatement := m.Type == codec.Bind || len(m.Body) > 0 && m.Body[0] == codec.TargetStatement
		if cl.mapped && namesStatement && len(cl.unnamedMsg) > 0 && (s.unnamedOwner != cl || s.unnamedGen != cl.unnamedGen) {
			// The client's unnamed statement was parsed on another server connection (psql's \gdesc sends
			// Parse and Sync, then Describe and Sync), or dropped by a query since: parse it here first,
			// after the SQL-prepared statements it names ("EXECUTE name", as \gdesc sends it).
			if pm, err := codec.ParseParse(cl.unnamedMsg[codec.HeaderLen:]); err == nil && batchStart && len(cl.sqlStmts) > 0 {
				cl.sqlPrepared(sp, s, pm.Query, at)
			}
			sp.insert(at, cl.unnamedMsg)
			s.expects.push(expectAdded(reqParse))
			s.unnamedOwner, s.unnamedGen = cl, cl.unnamedGen
		}
		if cl.mapped && m.Type == codec.Bind {
			cl.bindEffects(m, cl.unnamedFx)
		}
		s.expects.push(expectation{answers: req, plan: plan})
		return nil
	}
	msg := sp.in[at : at+n]
	sp.drop(at, at+n)
	st := cl.stmts[string(name)]
	if st == nil {
		cl.skipToSync = true
		s.synth(cl, refusal(codec.NewError(codec.SQLStateUndefinedPreparedStmt,
			`prepared statement "`+string(name)+`" does not exist`)))
		return nil
	}
	if !s.stmts.has(st) {
		s.prepare(sp, at, st, added)
	}
	if m.Type == codec.Bind {
		cl.bindEffects(m, st.fx)
	}
	*sp.scratch = appendRenamed(*sp.scratch, msg, nameAt, nameAt+len(name), st.name)
	s.expects.push(expectation{answers: req, st: st, plan: plan})
	return nil
}

// closeMessage sends a Close on, except a named statement's, which only the client's own map holds: pgshard
// drops the name and answers itself.
func (cl *client) closeMessage(sp *splice, s *server, m codec.Message, at, n int) *codec.Error {
	s.unsynced = true
	cm, err := codec.ParseClose(m.Body)
	if err != nil && !errors.Is(err, codec.ErrBadValue) { // a bad target goes on for the server to refuse
		return codec.NewFatal(codec.SQLStateProtocolViolation, err.Error())
	}
	if cl.mapped && cm.Target == codec.TargetStatement && len(cm.Name) > 0 {
		cl.dropStmt(string(cm.Name))
		sp.drop(at, at+n)
		s.synth(cl, synthesize(reqClose))
		return nil
	}
	s.expects.push(expectation{answers: reqClose})
	return nil
}

// statementName returns the statement a Bind or Describe names ("" for the unnamed one or a portal) and the
// offset of the name inside the whole message.
func statementName(m codec.Message) ([]byte, int, error) {
	if m.Type == codec.Bind {
		bm, err := codec.ParseBind(m.Body)
		if err != nil {
			return nil, 0, err
		}
		return bm.Statement, codec.HeaderLen + len(bm.Portal) + 1, nil
	}
	dm, err := codec.ParseDescribe(m.Body)
	if errors.Is(err, codec.ErrBadValue) {
		return nil, 0, nil // neither a statement nor a portal: the server refuses it as Postgres does
	}
	if err != nil || dm.Target != codec.TargetStatement {
		return nil, 0, err
	}
	return dm.Name, codec.HeaderLen + 1, nil
}

// refuseParse is the error for a Parse of a named statement that must not be made: under a name the client has
// not closed (Postgres's 42P05), or past limits.client_prepared_statements.
func (cl *client) refuseParse(name []byte) *codec.Error {
	if _, used := cl.stmts[string(name)]; used {
		return codec.NewError(codec.SQLStateDuplicatePreparedStmt, `prepared statement "`+string(name)+`" already exists`)
	}
	if max := cl.e.cfg.Limits.ClientPreparedStatements; len(cl.stmts) >= max {
		return codec.NewError(codec.SQLStateConfigurationLimitExceed, "too many prepared statements: the client holds "+
			strconv.Itoa(max)+" named prepared statements (limits.client_prepared_statements)").
			WithHint("close the statements it no longer uses, or raise limits.client_prepared_statements")
	}
	return nil
}

// setStmt maps one of the client's statement names to a stmt.
func (cl *client) setStmt(name []byte, st *stmt) { cl.e.registry.setName(&cl.stmts, string(name), st) }

// dropStmt forgets one of the client's statement names (Close, a Parse that did not run).
func (cl *client) dropStmt(name string) { cl.e.registry.dropName(cl.stmts, name) }

// dropStmts forgets every statement name of the client, protocol level and SQL PREPAREd.
func (cl *client) dropStmts() {
	cl.e.registry.dropNames(&cl.stmts)
	cl.e.registry.dropNames(&cl.sqlStmts)
}

// forgetStatements runs on DISCARD ALL: the server drops every prepared statement, pgshard's own names
// included, so they must be prepared again there, and the client's names are gone.
func (cl *client) forgetStatements() {
	cl.srv.stmts.clear()
	cl.srv.sqlNames.clear()
	cl.dropStmts()
}

// bindEffects remembers what the portal a Bind creates will do to the session when it is executed.
func (cl *client) bindEffects(m codec.Message, fx *effects) {
	bm, err := codec.ParseBind(m.Body)
	if err != nil {
		return
	}
	if fx == nil {
		if cl.portalFx != nil {
			delete(cl.portalFx, string(bm.Portal))
		}
		return
	}
	if cl.portalFx == nil {
		cl.portalFx = map[string]*effects{}
	}
	cl.portalFx[string(bm.Portal)] = fx
}

// sendToServer writes out (the client's bytes, possibly rewritten) to its server in one write and drops the
// consumed bytes from the client's buffer. When the server cannot keep up, the client is parked.
func (cl *client) sendToServer(out []byte, consumed int) {
	s := cl.srv
	if s != nil && len(out) > 0 {
		s.send(out)
	}
	if consumed > 0 {
		cl.consumeInput(consumed)
	}
	if s != nil && !s.gone() && s.backedUp(cl.e.cfg.Limits.ClientOutboundBuffer) {
		cl.parkUntilDrained()
	}
}

// parkUntilDrained stops reading from the client until its server has taken what it was sent.
func (cl *client) parkUntilDrained() {
	if cl.c.OutboundBuffered() > 0 || cl.state != clientReady {
		return // parking would drop what gnet has yet to write; try again on the next read
	}
	limit := cl.e.cfg.Limits.ClientOutboundBuffer
	cl.park.park(cl.e, cl.ls, cl.c, &reopen{cl: cl}, func() bool {
		s := cl.srv
		return s == nil || s.gone() || s.park.parked || s.unsent() <= limit/2 || s.c.InboundBuffered() > 0
	})
}

// acquire checks out a server connection. It reports whether one is attached now; otherwise the client waits
// and resumes in gotServer.
func (cl *client) acquire() bool {
	if cl.waiting {
		return false
	}
	cl.waiter.Loop = cl.ls.idx
	cl.waiter.Since = time.Now()
	cl.waiter.Handle = cl
	if cl.e.pausedN.Load() > 0 && cl.attachedMask() == 0 && cl.e.isPaused(cl.dbName) {
		// A new transaction of a paused database: it waits for RESUME (pause.go).
		cl.holdBack(heldByPause)
		return false
	}
	if cl.db.followsPrimary && cl.pool.Replica == 0 && cl.attachedMask() == 0 && cl.db.primaryLost[cl.pool.Shard].Load() != 0 {
		// A new transaction of a shard that has no primary now: it waits for one (failover.go).
		cl.holdBack(heldByFailover)
		return false
	}
	pc, outcome := cl.pool.Checkout(&cl.waiter)
	switch outcome {
	case pool.Ready:
		cl.attach(pc.Handle.(*server))
		return true
	case pool.OtherLoop:
		cl.waiting = true
		pc.Handle.(*server).moveTo(cl.ls, cl, false)
	case pool.MustDial:
		cl.waiting = true
		cl.e.dial(cl.pool, cl.ls, cl)
	case pool.Waiting:
		cl.waiting = true
	}
	return false
}

// gotServer receives a server connection (on the client's loop) after a wait, a dial or a move.
func (cl *client) gotServer(s *server) {
	cl.waiting = false
	if cl.state == clientClosed {
		s.release()
		return
	}
	cl.attach(s)
	cl.resume()
}

// resume goes on with what the client was doing when it had to wait for a server.
func (cl *client) resume() {
	switch cl.state {
	case clientConnecting:
		s := cl.srv
		if cl.ownsServer() {
			cl.e.newCancelKey(cl, s.backend.PID)
		}
		cl.finishStartup(s.backend.Params)
		if cl.e.cfg.Pool.Mode != "session" {
			cl.detach()
			s.release()
		}
		if cl.c.InboundBuffered() > 0 {
			cl.forward() // a client that did not wait for ReadyForQuery
		}
	case clientReady:
		cl.forward()
	}
	cl.flush()
}

// serverFailed tells a waiting client that its server connection could not be made.
func (cl *client) serverFailed(err *codec.Error) {
	cl.waiting = false
	cl.fatal(err)
}

func (cl *client) attach(s *server) {
	cl.srv = s
	cl.srvs[s.shard] = s
	s.client = cl
	s.setState(serverActive)
	if cl.rt != nil {
		s.fresh = true
	} else {
		cl.needSync = true
	}
}

// cancelStatements forwards the client's CancelRequest to each of its servers that runs a statement of its.
// Such a server stays the client's until the request is delivered (server.cancel), so that a late cancel never
// reaches the statement of a client that gets the server next; an idle server is left alone, as Postgres
// ignores a cancel that arrives between statements.
//
// A cancel that comes while the client's statement waits in pgshard (for a server connection, or for the replay
// of its settings) is kept until the statement is sent, as the server would have had it by then.
func (cl *client) cancelStatements() {
	if cl.state == clientClosed {
		return
	}
	if cl.waiting || cl.c.InboundBuffered() > 0 {
		cl.cancelPending = true
	}
	for _, s := range cl.srvs {
		if s == nil || s.gone() || s.cancelling {
			continue
		}
		if h := s.expects.front(); h.keeps(keepReplay) {
			cl.cancelPending = true
		} else if h != nil || s.unsynced {
			s.cancel()
		}
	}
}

// detach forgets the server messages go to now; the caller returns it to the pool or closes it.
func (cl *client) detach() {
	if cl.srv != nil {
		cl.detachServer(cl.srv)
	}
}

// detachServer forgets one of the client's servers; the caller returns it to the pool or closes it.
func (cl *client) detachServer(s *server) {
	if cl.srvs[s.shard] == s {
		cl.srvs[s.shard] = nil
	}
	s.client, s.fan = nil, nil
	if s.state == serverActive {
		s.setState(serverDetached)
	}
	if cl.srv == s {
		cl.srv = nil
	}
}

// checkTimers enforces the startup, checkout and client timeouts.
func (cl *client) checkTimers(now time.Time) {
	if cl.state == clientReady {
		cl.checkIdle(now)
		if cl.state == clientClosed {
			return
		}
	}
	switch {
	case cl.state < clientReady && cl.state != clientConnecting && now.After(cl.startBy):
		cl.fatal(codec.NewFatal(codec.SQLStateProtocolViolation, "timed out waiting for the startup and authentication of the client").
			WithHint("limits.client_startup_timeout bounds how long a client may take to log in"))
	case cl.held == heldByFailover && cl.waiter.Since.Add(cl.e.cfg.Pool.FailoverBufferTimeout).Before(now):
		cl.unhold()
		cl.fatal(noPrimary(cl.dbName, cl.pool.Shard, cl.e.cfg.Pool.FailoverBufferTimeout))
	case cl.held == heldForReplay && cl.waiter.Since.Add(cl.db.db.ReadYourWritesTimeout).Before(now):
		cl.replayWaitOver()
	case cl.held == heldByPause && cl.waiter.Since.Add(cl.e.cfg.Pool.CheckoutTimeout).Before(now):
		cl.unhold()
		cl.fatal(codec.NewFatal(codec.SQLStateTooManyConnections,
			"timed out after "+cl.e.cfg.Pool.CheckoutTimeout.String()+" waiting for a server connection: database \""+cl.dbName+
				"\" is paused for maintenance").
			WithHint("an administrator paused it (PAUSE in pgshard's console); clients go on after RESUME. Retry later, or raise pool.checkout_timeout to wait longer"))
	case cl.waiting && cl.waiter.Since.Add(cl.pool.Settings().CheckoutTimeout).Before(now):
		if cl.pool.Cancel(&cl.waiter, true) {
			cl.waiting = false
			cl.fatal(codec.NewFatal(codec.SQLStateTooManyConnections,
				"timed out after "+cl.pool.Settings().CheckoutTimeout.String()+" waiting for a server connection of pool "+cl.pool.Name).
				WithHint("all pool.size server connections are busy: raise pool.size or pool.checkout_timeout, or shorten transactions"))
		}
	}
}

// onClose runs once when the client's connection is gone, whoever closed it.
func (cl *client) onClose() {
	if cl.state == clientClosed {
		return
	}
	cl.setState(clientClosed)
	cl.park.stash = nil // what it sent and pgshard never used
	delete(cl.ls.clients, cl)
	cl.e.clients.Add(-1)
	cl.leave()
	if cl.pid != 0 {
		cl.e.dropCancelKey(cl)
	}
	if cl.pausing != nil {
		// A console connection gone while its PAUSE waits: the pause is withdrawn.
		cl.e.endPause(cl.pausing, "the console connection that sent PAUSE closed")
		cl.pausing = nil
	}
	cl.unhold()
	if cl.waiting && cl.pool.Cancel(&cl.waiter, false) {
		cl.waiting = false
	}
	// Otherwise a connection or a slot is on its way; gotServer or dial sees the client closed.
	cl.abandonDrive()
	cl.dropStmts()
	for _, s := range cl.srvs {
		if s != nil {
			cl.detachServer(s)
			s.clientLeft(cl)
		}
	}
}
