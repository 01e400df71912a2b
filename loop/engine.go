package loop

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"

	"github.com/pgshard/pgshard/auth"
	"github.com/pgshard/pgshard/codec"
	"github.com/pgshard/pgshard/config"
	"github.com/pgshard/pgshard/pool"
	"github.com/pgshard/pgshard/route"
)

// sweepInterval is how often each loop checks its timers (startup, checkout, idle and lifetime). Timeouts are
// therefore honoured within this much.
const sweepInterval = 100 * time.Millisecond

// Engine is a running pgshard proxy.
type Engine struct {
	gnet.BuiltinEventEngine

	cfg        *config.Config // as pgshard started: the settings RELOAD does not change are read here
	log        *slog.Logger
	nloops     int
	configFile string                  // the file cfg came from, which RELOAD reads again ("" when none)
	cat        atomic.Pointer[catalog] // users, admin login and databases: RELOAD replaces them
	reloadMu   sync.Mutex              // one RELOAD (or new primary: failover.go) at a time
	checkNow   chan struct{}           // has the replica checks run now (kickChecks)
	// replayWaits counts the reads waiting for a replica to replay their client's write (replicas.go).
	replayWaits atomic.Int64

	shutdownOnce sync.Once
	shutdownErr  error

	eng     gnet.Engine
	started chan struct{}

	loopsMu sync.Mutex
	loops   []*loopState
	byLoop  map[gnet.EventLoop]*loopState

	clients      atomic.Int64 // client sockets open, logged in or not
	handshakes   atomic.Int64 // TLS handshakes in flight, off the loops (tls.go)
	authLookups  authLookups  // users found with auth_query (authquery.go)
	shuttingDown atomic.Bool

	// Admission counts (admission.go).
	pending, loggedIn, admins atomic.Int64
	// loginSecret keys the made-up SCRAM salts of roles that do not exist (auth.MockVerifier).
	loginSecret [32]byte

	cancelMu sync.Mutex
	cancel   map[uint32]*client // by the pid pgshard gave the client

	registry stmtRegistry // named prepared statements shared by clients (transaction mode)
	mapNames bool         // rename clients' prepared statements (transaction mode, max_prepared_statements > 0)

	paramsMu sync.Mutex
	params   map[string]map[string]string // what the first server of a (database, user) reported at startup, by paramsKey

	pauseState    // PAUSE and RESUME (pause.go)
	twoPhaseState // two-phase commit (twopc.go)
}

// catalog is what a config file says of users, the admin login and databases. A published catalog is never
// changed: RELOAD builds a new one (reusing the users and databases that did not change) and publishes it.
type catalog struct {
	cfg   *config.Config
	tls   *tlsServer
	users map[string]*user
	admin *user // the console's login; nil when it has no password (the console is off)
	dbs   map[string]*database
}

type user struct {
	cfg      *config.User
	method   string
	verifier auth.Verifier // for scram-sha-256
	// lookedUp: the role is not in users:, auth_query found it (authquery.go). pgshard logs in to the shards as it
	// with keys, those the last successful login of one of its clients proved.
	lookedUp bool
	keys     atomic.Pointer[auth.Keys]
	// retired: a RELOAD changed the user's login on the shards. Its pools are retired, and its clients move
	// to the new user at their next transaction.
	retired atomic.Bool
}

type database struct {
	db     *config.Database
	schema *route.Schema // nil for a plain pooled database (one shard, nothing sharded): nothing is routed
	tls    []pool.TLS    // how to encrypt the connections to each shard's primary (its URL's sslmode)
	// replicas of each shard: how to reach them, whether they are banned, and their pools (replicas.go).
	replicas  [][]*replica
	readPools map[string][][]*pool.Pool // by user name, then shard, then replica
	// followsPrimary (role: auto): the checks find each shard's primary, and a new one replaces this database
	// (failover.go). primaryLost[shard] is when that shard was found without a primary (unix nanoseconds), 0
	// while it has one.
	followsPrimary bool
	primaryLost    []atomic.Int64
	// readTurn[shard] takes the reads of a shard to its replicas in turn (readPool).
	readTurn []atomic.Uint32
	// crossShard is the pgshard.cross_shard a session starts with (cross_shard in the config).
	crossShard route.CrossShard
	mu         sync.Mutex
	pools      map[string][]*pool.Pool // by user name, then shard
	// retired: a RELOAD changed or removed the database. Its pools are retired, and its clients move to the
	// new database (or are closed, when it was removed) at their next transaction.
	retired atomic.Bool
}

// loopState is what pgshard keeps per event loop. Only that loop's goroutine touches the maps.
type loopState struct {
	idx      int
	tlsBuf   []byte // scratch for decrypting TLS connections' records (tlsScratch)
	el       gnet.EventLoop
	clients  map[*client]struct{}
	servers  map[*server]struct{}
	draining map[gnet.Conn]*draining
	expired  []*pool.Conn

	unflushed []*server // servers whose outbox holds bytes, written when the callback returns (outbox.go)
	depth     int       // callbacks running, nested (outbox.go)
	flushing  bool

	// Scratch buffers, reused: bytes rewritten on their way to a server or a client, pgshard's own small
	// answers, and statements evicted from a server.
	toServer, toClient, synth []byte
	joined                    []byte // replies pgshard held for a server's answer, and the answer (writeAfterHeld)
	described                 []byte // a ParameterDescription waiting for its RowDescription, to cache both
	evicted                   []*stmt

	held map[*client]struct{} // clients held back by a PAUSE or a failover (pause.go)
	// checking are the idle servers whose health check is in flight, and when it was sent (healthcheck.go).
	checking map[*server]time.Time
	routers  map[*database]*route.Router // plan caches of sharded databases, per loop (no locks)
	rr       int                         // round robin over shards for statements any shard can serve
	params   [][]byte                    // a Bind's values and formats, for routing
	formats  []int16
}

// New checks the configuration and prepares an engine; Run starts it.
func New(cfg *config.Config, log *slog.Logger) (*Engine, error) {
	e := &Engine{
		cfg:      cfg,
		log:      log,
		nloops:   cfg.EventLoops,
		byLoop:   map[gnet.EventLoop]*loopState{},
		cancel:   map[uint32]*client{},
		params:   map[string]map[string]string{},
		started:  make(chan struct{}),
		checkNow: make(chan struct{}, 1),
	}
	if e.nloops <= 0 {
		e.nloops = max(1, runtime.GOMAXPROCS(0)/2)
	}
	e.mapNames = cfg.Pool.Mode != "session" && cfg.Pool.MaxPreparedStatements > 0
	_, _ = rand.Read(e.loginSecret[:])
	e.failpoint = os.Getenv("PGSHARD_FAILPOINT")
	cat, err := newCatalog(cfg, nil, nil)
	if err != nil {
		return nil, err
	}
	e.cat.Store(cat)
	return e, nil
}

// newCatalog makes the catalog of cfg. With old and the changes from old's config, the users and databases
// that did not change are old's (with their pools); the others are new.
func newCatalog(cfg *config.Config, old *catalog, ch *config.Changes) (*catalog, error) {
	c := &catalog{cfg: cfg, users: map[string]*user{}, dbs: map[string]*database{}}
	var err error
	if c.tls, err = newTLSServer(cfg.TLS); err != nil {
		return nil, err
	}
	changed := map[string]bool{}
	if ch != nil {
		for _, l := range [][]string{ch.UsersAdded, ch.UsersChanged} {
			for _, name := range l {
				changed["user "+name] = true
			}
		}
		for _, l := range [][]string{ch.DatabasesAdded, ch.DatabasesChanged} {
			for _, name := range l {
				changed["db "+name] = true
			}
		}
	}
	for i := range cfg.Users {
		u := &cfg.Users[i]
		if old != nil && !changed["user "+u.Name] && old.users[u.Name] != nil {
			c.users[u.Name] = old.users[u.Name]
			continue
		}
		eu := &user{cfg: u, method: u.AuthMethod}
		if eu.method == "" {
			eu.method = "scram-sha-256"
		}
		if eu.method == "scram-sha-256" {
			v, err := verifierFor(u.Password)
			if err != nil {
				return nil, fmt.Errorf("user %q: %w", u.Name, err)
			}
			eu.verifier = v
		}
		c.users[u.Name] = eu
	}
	if old != nil && !ch.AdminChanged {
		c.admin = old.admin
	} else if cfg.Admin.Password != "" {
		c.admin = &user{cfg: &config.User{Name: cfg.Admin.User, Password: cfg.Admin.Password}, method: "scram-sha-256"}
		v, err := verifierFor(cfg.Admin.Password)
		if err != nil {
			return nil, fmt.Errorf("admin: %w", err)
		}
		c.admin.verifier = v
	}
	for i := range cfg.Databases {
		d := &cfg.Databases[i]
		var prev *database
		if old != nil {
			prev = old.dbs[d.Name]
		}
		if prev != nil && !changed["db "+d.Name] {
			c.dbs[d.Name] = prev
			continue
		}
		if prev != nil && d.Role == config.RoleAuto {
			d = primariesOf(prev, d) // the primaries found since start, not the file's
		}
		ed, err := newDatabase(d)
		if err != nil {
			return nil, err
		}
		c.dbs[d.Name] = ed
	}
	return c, nil
}

// newDatabase makes the database of d, with no pools yet.
func newDatabase(d *config.Database) (*database, error) {
	ed := &database{db: d, pools: map[string][]*pool.Pool{}, readPools: map[string][][]*pool.Pool{},
		followsPrimary: d.Role == config.RoleAuto, primaryLost: make([]atomic.Int64, len(d.Shards)),
		readTurn: make([]atomic.Uint32, len(d.Shards))}
	ed.crossShard, _ = route.ParseCrossShard(d.CrossShard) // validated with the config
	for i, sh := range d.Shards {
		t, err := pool.ServerTLS(sh.Primary.SSLMode, sh.Primary.SSLRootCert, sh.Primary.Host)
		if err != nil {
			return nil, fmt.Errorf("database %q shard %d: %w", d.Name, i, err)
		}
		ed.tls = append(ed.tls, t)
		reps, err := replicasOf(sh)
		if err != nil {
			return nil, fmt.Errorf("database %q shard %d: %w", d.Name, i, err)
		}
		ed.replicas = append(ed.replicas, reps)
	}
	schema, err := route.NewSchema(d)
	if err != nil {
		return nil, fmt.Errorf("database %q: %w", d.Name, err)
	}
	if schema.Sharded() {
		ed.schema = schema
	}
	return ed, nil
}

// SetConfigFile names the file the configuration came from: RELOAD (and SIGHUP) read it again, and SHOW
// RESHARD reads the reshard progress files next to it. Call it before Run.
func (e *Engine) SetConfigFile(path string) {
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	e.configFile = path
}

// verifierFor turns a configured password (cleartext or a SCRAM verifier) into a verifier, once, so that no
// login pays for PBKDF2.
func verifierFor(password string) (auth.Verifier, error) {
	if auth.IsVerifier(password) {
		return auth.ParseVerifier(password)
	}
	return auth.NewVerifier(password, nil, 0), nil
}

// Run serves until Shutdown; it returns when the engine is down.
func (e *Engine) Run() error {
	// The loops are the only goroutines with steady work, and each blocks in epoll_wait whenever its clients are
	// quiet. With exactly as many Ps as loops, no P is idle while a loop is blocked there, so the runtime's
	// sysmon takes the loop's P away after ~20 µs and starts a thread to look for other work, which finds none
	// and sleeps again: a connection storm (pgbench -C, a SCRAM login per transaction) cost 19 context switches
	// and 742 µs of pgshard CPU per connection that way, against 7.8 and 459 µs with one spare P (PgBouncer:
	// ~7.6 switches), 2026-12-07 on the 2-core test machine. Under load (pgbench -S -c 32, two alternating
	// rounds against PgBouncer) the spare P was no worse: CPU per transaction 1.07-1.09x PgBouncer's in the
	// simple protocol, against 1.20-1.43x without it. An explicit GOMAXPROCS in the environment wins.
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(e.nloops + 1)
	}

	if err := e.startTwoPhase(); err != nil {
		return err
	}
	defer e.watchReplicas()()
	if e.tpc != nil {
		defer e.tpc.Close()
	}
	metrics, err := e.serveMetrics()
	if err != nil {
		return fmt.Errorf("metrics_listen: %w", err)
	}
	if metrics != nil {
		defer metrics.Close()
	}
	addr := e.cfg.Listen
	proto := "tcp://" + addr
	if strings.HasPrefix(addr, "/") {
		proto = "unix://" + addr
	}
	return gnet.Run(e, proto,
		gnet.WithNumEventLoop(e.nloops),
		gnet.WithReuseAddr(true),
		gnet.WithTCPNoDelay(gnet.TCPNoDelay),
		gnet.WithLockOSThread(false),
		gnet.WithLogger(gnetLogger{e.log}),
	)
}

// Started is closed once the listener accepts connections.
func (e *Engine) Started() <-chan struct{} { return e.started }

// OnBoot keeps the engine handle and starts the timers.
func (e *Engine) OnBoot(eng gnet.Engine) gnet.Action {
	e.eng = eng
	go e.tick()
	close(e.started)
	e.log.Info("listening", "addr", e.cfg.Listen, "loops", e.nloops, "pool_mode", e.cfg.Pool.Mode)
	return gnet.None
}

// loopOf returns the state of c's event loop, registering the loop the first time it is seen.
func (e *Engine) loopOf(c gnet.Conn) *loopState {
	el := c.EventLoop()
	e.loopsMu.Lock()
	defer e.loopsMu.Unlock()
	ls := e.byLoop[el]
	if ls == nil {
		ls = &loopState{idx: len(e.loops), el: el, clients: map[*client]struct{}{}, servers: map[*server]struct{}{},
			draining: map[gnet.Conn]*draining{}}
		e.loops = append(e.loops, ls)
		e.byLoop[el] = ls
	}
	return ls
}

// OnOpen meets a new client, or a server connection that a dial or a move between loops enrolled.
func (e *Engine) OnOpen(c gnet.Conn) ([]byte, gnet.Action) {
	switch x := c.Context().(type) {
	case *serverOpen:
		ls := e.loopOf(c)
		ls.enter()
		defer ls.leave()
		e.serverOpened(c, x)
		return nil, gnet.None
	case *reopen:
		ls := e.loopOf(c)
		ls.enter()
		defer ls.leave()
		e.reopened(c, x)
		return nil, gnet.None
	case *tlsOpen:
		e.tlsOpened(c, x)
		return nil, gnet.None
	}
	if !e.admitPending() {
		return e.tooManyLoggingIn(), gnet.Close
	}
	cl := e.newClient(c, time.Now())
	if a := c.RemoteAddr(); a != nil {
		cl.addr = a.String()
	}
	return nil, gnet.None
}

// newClient makes the client of a new connection c, admitted (admitPending) and logging in.
func (e *Engine) newClient(c gnet.Conn, now time.Time) *client {
	ls := e.loopOf(c)
	cl := &client{e: e, ls: ls, c: c, startBy: now.Add(e.cfg.Limits.ClientStartupTimeout), connectedAt: now, admitted: admitPending,
		wire: wireTrace{on: e.cfg.LogWire}}
	c.SetContext(cl)
	ls.clients[cl] = struct{}{}
	e.clients.Add(1)
	return cl
}

// OnTraffic reads what a client or a server sent.
func (e *Engine) OnTraffic(c gnet.Conn) gnet.Action {
	switch x := c.Context().(type) {
	case *client:
		x.ls.enter()
		defer x.ls.leave()
		defer e.survive(c)
		x.onTraffic()
	case *server:
		x.ls.enter()
		defer x.ls.leave()
		defer e.survive(c)
		x.onTraffic()
	case *draining:
		_, _ = c.Discard(-1)
		x.halfClose(c)
	}
	return gnet.None
}

// OnClose cleans up after a client or a server connection went away.
func (e *Engine) OnClose(c gnet.Conn, err error) gnet.Action {
	switch x := c.Context().(type) {
	case *client:
		x.ls.enter()
		defer x.ls.leave()
		if !x.park.parked {
			x.onClose()
		}
	case *server:
		x.ls.enter()
		defer x.ls.leave()
		x.onClose(c, err)
	case *draining:
		delete(e.loopOf(c).draining, c)
	}
	return gnet.None
}

// survive keeps a bug in one session from taking the proxy down: the panic is logged with its stack, the
// connection involved is closed (its client gets XX000), and every other session goes on.
func (e *Engine) survive(c gnet.Conn) {
	r := recover()
	if r == nil {
		return
	}
	e.log.Error("internal error: closing the connection involved", "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
	switch x := c.Context().(type) {
	case *client:
		x.fatal(codec.NewFatal(codec.SQLStateInternalError, "pgshard internal error; the connection was closed").
			WithHint("this is a bug in pgshard: please report it with pgshard's log"))
	case *server:
		if cl := x.client; cl != nil {
			cl.fatal(codec.NewFatal(codec.SQLStateInternalError, "pgshard internal error; the connection was closed"))
		}
		x.closeExpected()
	}
}

// poolsFor returns the pools of (database, user), one per shard, made on first use. Pools made for a
// database or user a RELOAD replaced meanwhile (a client that logged in during the RELOAD) are retired at
// once, and those of a replaced user are not kept: its login on the shards is not the current one's.
func (e *Engine) poolsFor(d *database, u *user) []*pool.Pool {
	d.mu.Lock()
	defer d.mu.Unlock()
	ps := d.pools[u.cfg.Name]
	if ps == nil || u.retired.Load() {
		ps = nil
		for i := range d.db.Shards {
			ps = append(ps, e.newPool(d, u, i, 0))
		}
		if !u.retired.Load() {
			d.pools[u.cfg.Name] = ps
		}
	}
	return ps
}

// newPool makes the pool of (d, u) for shard's primary (replica 0) or its replica-th replica, retired at once
// when a RELOAD replaced d or u meanwhile.
func (e *Engine) newPool(d *database, u *user, shard, replica int) *pool.Pool {
	name := d.db.Name + "/" + u.cfg.Name + "/shard" + strconv.Itoa(shard)
	if replica > 0 {
		name += "/replica" + strconv.Itoa(replica)
	}
	pc := e.cfg.Pool
	p := pool.New(name, pool.Settings{
		Size:            pc.Size,
		CheckoutTimeout: pc.CheckoutTimeout,
		IdleTimeout:     pc.IdleTimeout,
		Lifetime:        pc.ServerLifetime,
		CheckAfter:      pc.HealthCheckInterval,
	}, e.nloops)
	p.Shard, p.Replica = shard, replica
	p.Host = d // a primary's: its database says whether the shard has one now (failover.go)
	if replica > 0 {
		p.Host = d.replicas[shard][replica-1]
	}
	if d.retired.Load() || u.retired.Load() {
		p.Retire()
	}
	return p
}

// router returns ls's router for a sharded database d.
func (ls *loopState) router(d *database, cacheSize int) *route.Router {
	r := ls.routers[d]
	if r == nil {
		if ls.routers == nil {
			ls.routers = map[*database]*route.Router{}
		}
		r = route.NewRouter(d.schema, cacheSize)
		if !d.retired.Load() {
			ls.routers[d] = r // a replaced database's is used by a client that moves at its next message
		}
	}
	return r
}

// target says how to reach the primary of shard i of d as u.
func (e *Engine) target(d *database, u *user, i int) pool.Target {
	return e.targetOf(d, u, i, 0)
}

// targetOf is the server of shard i that replica names: 0 for the primary, n for its n-th replica.
func (e *Engine) targetOf(d *database, u *user, i, replica int) pool.Target {
	srv, tls := d.db.Shards[i].Primary, d.tls[i]
	if replica > 0 {
		r := d.replicas[i][replica-1]
		srv, tls = r.srv, r.tls
	}
	network, address := srv.Addr()
	t := pool.Target{Network: network, Address: address, Database: srv.Database, TLS: tls}
	t.User, t.Password = u.cfg.ServerUser, u.cfg.ServerPassword
	if srv.User != "" {
		t.User, t.Password = srv.User, srv.Password
	}
	if t.User == "" {
		t.User = u.cfg.Name
	}
	if u.lookedUp {
		t.Keys = u.keys.Load()
	}
	t.Params = []codec.Param{{Name: "application_name", Value: "pgshard"}}
	return t
}

// paramsKey names the server whose startup parameters clients of (d, u) are told: the primary of shard 0 as
// u logs in there. It outlives a RELOAD that keeps that server, so that new clients need not wait for a
// server connection (which a PAUSE would hold back) to learn them.
func (e *Engine) paramsKey(d *database, u *user) string {
	t := e.target(d, u, 0)
	return t.Network + "|" + t.Address + "|" + t.Database + "|" + t.User
}

// knownParams returns the startup parameters the server of key reported, nil before the first connection.
func (e *Engine) knownParams(key string) map[string]string {
	e.paramsMu.Lock()
	defer e.paramsMu.Unlock()
	return e.params[key]
}

// rememberParams keeps a copy of a server's startup parameters for the clients that log in later.
func (e *Engine) rememberParams(key string, params map[string]string) {
	e.paramsMu.Lock()
	defer e.paramsMu.Unlock()
	if e.params[key] != nil {
		return
	}
	m := make(map[string]string, len(params))
	for k, v := range params {
		m[k] = v
	}
	e.params[key] = m
}

// newCancelKey registers cl under a fresh secret key of pgshard's own and the process id pid, or a fresh one
// when pid is 0 or taken (by a client of another cluster's backend with that pid).
func (e *Engine) newCancelKey(cl *client, pid uint32) {
	var b [8]byte
	e.cancelMu.Lock()
	defer e.cancelMu.Unlock()
	for {
		_, _ = rand.Read(b[:])
		if pid == 0 || e.cancel[pid] != nil {
			pid = binary.BigEndian.Uint32(b[:4]) & 0x7fffffff
			continue
		}
		cl.pid = pid
		copy(cl.key[:], b[4:])
		e.cancel[pid] = cl
		return
	}
}

func (e *Engine) dropCancelKey(cl *client) {
	e.cancelMu.Lock()
	if e.cancel[cl.pid] == cl {
		delete(e.cancel, cl.pid)
	}
	e.cancelMu.Unlock()
}

// forwardCancel sends a client's CancelRequest on to the server serving it at this moment, if any.
func (e *Engine) forwardCancel(pid uint32, key []byte) {
	e.cancelMu.Lock()
	cl := e.cancel[pid]
	e.cancelMu.Unlock()
	if cl == nil || len(key) != 4 || !constantTimeEqual(cl.key[:], key) {
		return
	}
	if cl.isAdmin {
		_ = cl.ls.execute(cl.cancelAdmin)
		return
	}
	_ = cl.ls.execute(cl.cancelStatements)
}

func constantTimeEqual(a, b []byte) bool {
	var v byte
	for i := range a {
		v |= a[i] ^ b[i]
	}
	return v == 0
}

// tick runs each loop's sweep on the loop itself.
func (e *Engine) tick() {
	t := time.NewTicker(sweepInterval)
	defer t.Stop()
	jan := newJanitor()
	var deadlocks deadlockWatch
	for n := 1; ; n++ {
		<-t.C
		if n%janitorEvery == 0 {
			jan.check(e.clients.Load())
		}
		if n%deadlockEvery == 0 {
			deadlocks.look(e)
		}
		e.loopsMu.Lock()
		loops := append([]*loopState(nil), e.loops...)
		e.loopsMu.Unlock()
		for _, ls := range loops {
			ls := ls
			if err := ls.execute(func() { e.sweep(ls) }); err != nil {
				return // engine stopped
			}
		}
	}
}

type runnable func()

func (r runnable) Run(context.Context) error { r(); return nil }

// sweep enforces the timers of one loop.
func (e *Engine) sweep(ls *loopState) {
	now := time.Now()
	for cl := range ls.clients {
		cl.checkTimers(now)
	}
	for c, d := range ls.draining {
		if now.After(d.until) {
			_ = ls.el.Close(c)
		} else {
			d.halfClose(c)
		}
	}
	for _, d := range e.cat.Load().dbs {
		d.mu.Lock()
		pools := make([]*pool.Pool, 0, len(d.pools))
		d.eachPool("", func(_ string, p *pool.Pool) { pools = append(pools, p) })
		d.mu.Unlock()
		for _, p := range pools {
			ls.expired = p.Expired(ls.idx, now, ls.expired[:0])
			for _, pc := range ls.expired {
				pc.Handle.(*server).closeExpected()
			}
			ls.checkIdleServers(p, now)
		}
	}
	e.failSilentChecks(ls, now, e.cfg.Limits.ServerConnectTimeout)
}

// Shutdown stops taking new clients, lets transactions in flight finish for up to timeout, then ends every
// client with 57P01 and stops the engine.
func (e *Engine) Shutdown(timeout time.Duration) error {
	e.shutdownOnce.Do(func() { e.shutdownErr = e.shutdown(timeout) })
	return e.shutdownErr
}

func (e *Engine) shutdown(timeout time.Duration) error {
	e.shuttingDown.Store(true)
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) && e.busyClients() > 0 {
		time.Sleep(50 * time.Millisecond)
	}
	e.forEachLoop(func(ls *loopState) {
		for cl := range ls.clients {
			cl.fatal(codec.NewFatal(codec.SQLStateAdminShutdown, "terminating connection due to administrator command").
				WithHint("pgshard is shutting down; reconnect when it is back"))
		}
		for s := range ls.servers {
			s.closeExpected()
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return e.eng.Stop(ctx)
}

// busyClients counts clients that hold a server connection (in a transaction, or in session mode).
func (e *Engine) busyClients() int {
	var n atomic.Int64
	e.forEachLoop(func(ls *loopState) {
		for cl := range ls.clients {
			if cl.srv != nil && !(e.cfg.Pool.Mode == "session" && cl.srv.idleInSession()) {
				n.Add(1)
			}
		}
	})
	return int(n.Load())
}

// forEachLoop runs f on every loop and waits for all of them.
func (e *Engine) forEachLoop(f func(*loopState)) {
	e.loopsMu.Lock()
	loops := append([]*loopState(nil), e.loops...)
	e.loopsMu.Unlock()
	var wg sync.WaitGroup
	for _, ls := range loops {
		ls := ls
		wg.Add(1)
		if err := ls.execute(func() { defer wg.Done(); f(ls) }); err != nil {
			wg.Done()
		}
	}
	wg.Wait()
}

// gnetLogger routes gnet's own logs through slog.
type gnetLogger struct{ l *slog.Logger }

func (g gnetLogger) Debugf(format string, args ...any) { g.l.Debug(fmt.Sprintf(format, args...)) }
func (g gnetLogger) Infof(format string, args ...any)  { g.l.Debug(fmt.Sprintf(format, args...)) }
func (g gnetLogger) Warnf(format string, args ...any)  { g.l.Warn(fmt.Sprintf(format, args...)) }
func (g gnetLogger) Errorf(format string, args ...any) { g.l.Error(fmt.Sprintf(format, args...)) }
func (g gnetLogger) Fatalf(format string, args ...any) { g.l.Error(fmt.Sprintf(format, args...)) }

// Version is pgshard's version, reported by `pgshard version` and the admin console.
const Version = "0.1.0-dev"
