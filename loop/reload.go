package loop

import (
	"errors"
	"strconv"
	"strings"

	"github.com/pgshard/pgshard/codec"
	"github.com/pgshard/pgshard/config"
	"github.com/pgshard/pgshard/pool"
)

// RELOAD (and SIGHUP) read the config file again. A file with problems changes nothing. Otherwise users, the
// admin login and databases are applied: a new catalog is published (engine.go) in which what did not change
// is the old one's, with its pools. Every other setting is read once at start and keeps its value; RELOAD says
// so in a NOTICE naming it.
//
// A database whose entry changed gets a new routing schema and new pools, so that its next transactions go to
// the new shards: the old pools are retired (their idle servers are closed now, the others when their client
// lets go of them) and each loop drops its plan cache for the old schema. A client moves to the new database
// when it next needs a server while holding none (between transactions: rebind); until then it finishes what
// it is doing on the old shards. Statements it prepared are planned again for the new schema. A user whose
// login on the shards changed gets new pools the same way. A removed database refuses new connections with
// 3D000, and its clients are closed with 57P01 as soon as they are between transactions, as PgBouncer closes
// the clients of a database removed from its config.

// Reload implements admin.Source: it reads the config file again and applies it.
func (e *Engine) Reload() ([]string, *codec.Error) {
	e.reloadMu.Lock()
	defer e.reloadMu.Unlock()
	if e.configFile == "" {
		return nil, codec.NewError(codec.SQLStateConfigFileError, "pgshard was started without a config file: there is nothing to reload")
	}
	next, err := config.Load(e.configFile)
	if err != nil {
		e.log.Error("reload: the config file has problems; nothing changed", "file", e.configFile, "err", err)
		return nil, reloadError(e.configFile, err)
	}
	old := e.cat.Load()
	ch := config.Compare(old.cfg, next)
	var notices []string
	for _, k := range config.Compare(e.cfg, next).Restart {
		notices = append(notices, k+" changed in the config file, but it takes a restart: pgshard goes on with the value it started with")
		e.log.Warn("reload: setting takes a restart; kept as it was", "setting", k)
	}
	if e.tpc == nil {
		for _, d := range next.Databases {
			if d.TwoPhaseCommit {
				notices = append(notices, "two_phase_commit of database "+d.Name+" takes a restart (pgshard opened no two-phase commit log at start): until then its transactions commit without it")
				e.log.Warn("reload: two_phase_commit takes a restart", "database", d.Name)
			}
		}
	}
	cat, err := newCatalog(next, old, &ch)
	if err != nil {
		e.log.Error("reload: nothing changed", "file", e.configFile, "err", err)
		return notices, reloadError(e.configFile, err)
	}

	// Publish first: from now on new logins and clients that move get the new databases. Then retire what
	// was replaced, so that a client that still sees the old database uses it for one transaction at most.
	e.cat.Store(cat)
	retired, retiredNotes := e.retireReplaced(old, cat, &ch)
	notices = append(notices, retiredNotes...)
	for _, l := range []struct {
		what  string
		names []string
	}{{"added", ch.UsersAdded}, {"removed (its clients stay until they leave)", ch.UsersRemoved}, {"changed", ch.UsersChanged}} {
		for _, name := range l.names {
			notices = append(notices, "user "+name+" "+l.what)
		}
	}
	if ch.AdminChanged {
		notices = append(notices, "admin login changed (for new console connections)")
	}
	e.published(cat, retired)
	if len(notices) == 0 {
		notices = append(notices, "the config file changes nothing")
	}
	e.log.Info("reloaded", "file", e.configFile, "databases_added", ch.DatabasesAdded, "databases_removed", ch.DatabasesRemoved,
		"databases_changed", ch.DatabasesChanged, "users_added", ch.UsersAdded, "users_removed", ch.UsersRemoved,
		"users_changed", ch.UsersChanged, "restart_needed", ch.Restart)
	return notices, nil
}

// retireReplaced retires the databases and pools that a reload replaced or removed (their clients finish
// what they are doing on them), and says what changed for databases.
func (e *Engine) retireReplaced(old, cat *catalog, ch *config.Changes) (retired []*pool.Pool, notices []string) {
	for _, name := range ch.DatabasesChanged {
		retired = append(retired, e.retireDatabase(old.dbs[name])...)
		note := "database " + name + ": its settings changed"
		if ch.Routing[name] {
			note = "database " + name + ": new routing (" + strconv.Itoa(len(old.dbs[name].db.Shards)) + " -> " +
				strconv.Itoa(len(cat.dbs[name].db.Shards)) + " shards): its clients move to the new shards at their next transaction"
		}
		notices = append(notices, note)
	}
	for _, name := range ch.DatabasesRemoved {
		retired = append(retired, e.retireDatabase(old.dbs[name])...)
		e.dropPause(name)
		notices = append(notices, "database "+name+" removed: new connections to it are refused, and its clients are closed between transactions")
	}
	for _, name := range ch.DatabasesAdded {
		notices = append(notices, "database "+name+" added")
	}
	for _, name := range ch.ServerLogin {
		old.users[name].retired.Store(true)
		for _, d := range cat.dbs {
			d.mu.Lock()
			d.eachPool(name, func(_ string, p *pool.Pool) {
				p.Retire()
				retired = append(retired, p)
			})
			delete(d.pools, name)
			delete(d.readPools, name)
			d.mu.Unlock()
		}
	}
	return retired, notices
}

// published brings the engine up to a catalog just published in place of one whose pools retired were
// retired (a RELOAD, a new primary): the two-phase commit resolver's servers, and each loop's plan caches and
// idle servers (afterReload).
func (e *Engine) published(cat *catalog, retired []*pool.Pool) {
	if e.tpc != nil {
		e.setTwoPhaseTargets(e.twoPhaseTargets(cat))
	}
	e.forEachLoop(func(ls *loopState) { e.afterReload(ls, retired) })
}

// retireDatabase retires d, replaced or removed, and its pools, which it returns.
func (e *Engine) retireDatabase(d *database) (retired []*pool.Pool) {
	d.retired.Store(true)
	d.mu.Lock()
	d.eachPool("", func(_ string, p *pool.Pool) {
		p.Retire()
		retired = append(retired, p)
	})
	d.mu.Unlock()
	return retired
}

// reloadError is the console's error for a config file RELOAD cannot use: the first problem in the message,
// all of them in the detail.
func reloadError(file string, err error) *codec.Error {
	problems := err.Error()
	var ve *config.ValidationError
	n := 1
	if errors.As(err, &ve) {
		n = len(ve.Problems)
	}
	first, _, _ := strings.Cut(problems, "\n")
	msg := "RELOAD failed, nothing changed: " + first
	if n > 1 {
		msg += " (and " + strconv.Itoa(n-1) + " more problems)"
	}
	e := codec.NewError(codec.SQLStateConfigFileError, msg).
		WithHint("fix the file and RELOAD again; pgshard check --config " + file + " lists the problems")
	e.Detail = problems
	return e
}

// afterReload runs on each loop once a RELOAD is published: the loop forgets the plan caches of replaced
// databases, closes the idle servers of retired pools, and closes the clients of removed databases that are
// between transactions.
func (e *Engine) afterReload(ls *loopState, retired []*pool.Pool) {
	for d := range ls.routers {
		if d.retired.Load() {
			delete(ls.routers, d)
		}
	}
	for _, p := range retired {
		ls.expired = p.Drain(ls.idx, ls.expired[:0])
		for _, pc := range ls.expired {
			pc.Handle.(*server).closeExpected()
		}
	}
	cat := e.cat.Load()
	for cl := range ls.clients {
		if cl.state == clientReady && cat.dbs[cl.dbName] == nil && cl.betweenTransactions() {
			cl.fatal(removedDatabase(cl.dbName))
		}
	}
}

func removedDatabase(name string) *codec.Error {
	return codec.NewFatal(codec.SQLStateAdminShutdown, `terminating connection because database "`+name+`" was removed from pgshard's config (RELOAD)`).
		WithHint("connect to a database pgshard serves")
}

// betweenTransactions reports a client that holds no server for a transaction (in session mode: whose
// servers are idle) and is not about to get one.
func (cl *client) betweenTransactions() bool {
	if cl.waiting && cl.held == notHeld {
		return false
	}
	for _, s := range cl.srvs {
		if s != nil && !(cl.e.cfg.Pool.Mode == config.ModeSession && s.idleInSession() && !cl.sh.txOpen) {
			return false
		}
	}
	return true
}

// rebind moves a client whose database or user a RELOAD replaced to the current ones, when it holds no
// server (otherwise it goes on with what it has and moves at a later message). False: the client was closed
// (its database is gone).
func (cl *client) rebind() bool {
	if cl.attachedMask() != 0 || cl.waiting || cl.sh.group.active || cl.sh.drive != nil || cl.sh.stalled {
		return true
	}
	cat := cl.e.cat.Load()
	d := cat.dbs[cl.dbName]
	if d == nil {
		cl.fatal(removedDatabase(cl.dbName))
		return false
	}
	u := cl.user
	if nu := cat.users[u.cfg.Name]; nu != nil {
		u = nu
	}
	if d.schema == nil && cl.rt != nil && cl.sh.txOpen {
		// A transaction whose BEGIN pgshard held back cannot go on in a plain database: it ends on the old one.
		return true
	}
	cl.db, cl.user = d, u
	cl.pools = cl.e.poolsFor(d, u)
	cl.pool = cl.pools[0]
	cl.readPools = nil
	if cl.e.splitsReads(d) {
		cl.readPools = cl.e.readPoolsFor(d, u)
	}
	cl.srvs = make([]*server, len(cl.pools))
	cl.rt = nil
	if d.schema != nil {
		cl.rt = cl.ls.router(d, cl.e.cfg.Pool.MaxPreparedStatements+1000)
	}
	cl.mapped = cl.mapped || cl.e.mapNames || cl.rt != nil
	// Routing state of the statement that was being sent, worked out for the old shards.
	n := len(cl.srvs)
	sh := &cl.sh
	sh.target, sh.unnamedPl, sh.describePlan, sh.merge, sh.mergeMsg, sh.copyOut, sh.copy = 0, nil, nil, nil, nil, nil, nil
	sh.group.later = 0
	if cl.rs.Shard >= n {
		cl.rs.Shard = -1
	}
	if sh.local != nil && sh.local.Shard >= n {
		sh.local.Shard = -1
	}
	if cl.rt != nil {
		// What servers prepare for a statement can depend on the schema (a rewrite for merging rows).
		for name, st := range cl.stmts {
			if send := cl.rt.Prepare(st.query).ShardSQL(); send != st.send {
				cl.e.registry.setName(&cl.stmts, name, cl.e.registry.resend(st, send))
			}
		}
	}
	return true
}
