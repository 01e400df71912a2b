package loop

import (
	"crypto/rand"
	"errors"
	"strconv"
	"strings"

	"github.com/pgshard/pgshard/route"

	"github.com/pgshard/pgshard/auth"
	"github.com/pgshard/pgshard/codec"
	"github.com/pgshard/pgshard/config"
)

// adminDatabase is the name of the admin console's database, as PgBouncer's is "pgbouncer".
const adminDatabase = "pgshard"

// readStartup handles the untyped packets that open a connection: SSLRequest (TLS begins, tls.go, or 'N' when
// tls.mode is disable: the client goes on in plaintext), GSSENCRequest ('N'), CancelRequest, and the
// StartupMessage.
func (cl *client) readStartup() {
	for cl.state == clientStartup {
		buf, _ := cl.c.Peek(-1)
		body, n, err := codec.ReadStartupPacket(buf, maxStartupPacket)
		if err != nil {
			cl.fatal(codec.NewFatal(codec.SQLStateProtocolViolation, "invalid startup packet: "+err.Error()))
			return
		}
		if n == 0 {
			return
		}
		s, err := codec.ParseStartup(body)
		_, _ = cl.c.Discard(n)
		if err != nil {
			cl.fatal(codec.NewFatal(codec.SQLStateProtocolViolation, "invalid startup packet: "+err.Error()))
			return
		}
		t := cl.e.cat.Load().tls
		switch s.Code {
		case codec.SSLRequestCode:
			if cl.tls != nil {
				cl.fatal(codec.NewFatal(codec.SQLStateProtocolViolation, "SSLRequest on a connection that is already encrypted"))
				return
			}
			if t.mode != config.TLSDisable {
				cl.startTLS(t)
				return
			}
			cl.out = append(cl.out, 'N')
			cl.flush()
		case codec.GSSENCRequestCode:
			cl.out = append(cl.out, 'N')
			cl.flush()
		case codec.CancelRequestCode:
			cl.e.forwardCancel(s.CancelPID, s.CancelKey)
			cl.ls.closeConn(cl.c)
			return
		default:
			if t.plaintextRefused() && cl.tls == nil {
				cl.fatal(codec.NewFatal(codec.SQLStateInvalidAuthorization, "pgshard accepts only encrypted connections (tls.mode: require)").
					WithHint("connect with sslmode=require (or verify-ca, verify-full)"))
				return
			}
			cl.startup(s)
		}
	}
}

func (cl *client) startup(s *codec.Startup) {
	// A newer minor protocol version, or protocol options (_pq_.*), are answered as Postgres 15 answers them: the
	// version pgshard speaks (3.0) and the options it does not know, and the login goes on.
	var options []string
	for _, p := range s.Params {
		if strings.HasPrefix(p.Name, "_pq_.") {
			options = append(options, p.Name)
		}
	}
	if s.Code != codec.ProtocolVersion30 || len(options) > 0 {
		cl.out = codec.AppendNegotiateProtocolVersion(cl.out, codec.ProtocolVersion30, options...)
	}
	if v, ok := s.Get("replication"); ok && replicationAsked(v) {
		cl.fatal(codec.NewFatal(codec.SQLStateFeatureNotSupported, "pgshard does not proxy replication connections (replication="+v+")").
			WithHint("connect to the shard's Postgres directly for streaming or logical replication"))
		return
	}
	name, _ := s.Get("user")
	if name == "" {
		cl.fatal(codec.NewFatal(codec.SQLStateInvalidAuthorization, "no PostgreSQL user name specified in startup packet"))
		return
	}
	dbName, ok := s.Get("database")
	if !ok || dbName == "" {
		dbName = name
	}
	if cl.e.shuttingDown.Load() {
		cl.fatal(codec.NewFatal(codec.SQLStateCannotConnectNow, "the database system is shutting down"))
		return
	}
	if cl.e.full(dbName == adminDatabase) {
		// Refused before the password costs anything; admit, once it is right, has the last word.
		cl.fatal(codec.NewFatal(codec.SQLStateTooManyConnections, "sorry, too many clients already").
			WithHint("pool.max_client_connections is set to " + strconv.Itoa(cl.e.cfg.Pool.MaxClientConnections)))
		return
	}
	cl.dbName, cl.login = dbName, name
	cat := cl.e.cat.Load()
	u := cat.users[name]
	if dbName == adminDatabase {
		u = nil
		if cat.admin != nil && name == cat.admin.cfg.Name {
			u, cl.isAdmin = cat.admin, true
		}
	}
	cl.params = s.Params
	if d := cat.dbs[dbName]; u == nil && !cl.isAdmin && dbName != adminDatabase && d != nil && cl.e.cfg.AuthUser != "" {
		cl.setState(clientLookup)
		cl.e.lookUpUser(cl.ls, d, name, func(u *user) {
			if cl.state == clientLookup {
				cl.beginAuth(cat, u)
				cl.flush()
			}
		})
		return
	}
	cl.beginAuth(cat, u)
}

// beginAuth asks the client to prove it is u, with u's auth_method; a nil u (a role pgshard does not know) is
// asked for a password like any other and refused at the end as a wrong password (28P01), as Postgres does, so
// that role names cannot be probed; the log says why.
func (cl *client) beginAuth(cat *catalog, u *user) {
	name, dbName := cl.login, cl.dbName
	cl.setState(clientAuth)
	if u == nil {
		cl.startScram(auth.MockVerifier(cl.e.loginSecret[:], name))
		return
	}
	cl.user = u
	cl.db = cat.dbs[dbName]
	certFailed := func(why string) {
		cl.e.log.Info("login refused", "user", name, "database", dbName, "addr", cl.addr, "reason", why)
		cl.fatal(codec.NewFatal(codec.SQLStateInvalidAuthorization, `certificate authentication failed for user "`+name+`"`).
			WithHint("connect with sslcert and sslkey naming a certificate whose common name is the user name, signed by a CA in tls.client_ca"))
	}
	if cat.tls.mode == config.TLSVerifyFull && cl.certName() != name {
		certFailed("tls.mode verify-full: the client certificate's common name is " + strconv.Quote(cl.certName()))
		return
	}
	switch u.method {
	case config.AuthCert:
		if cn := cl.certName(); cn != name {
			certFailed("auth_method cert: the client certificate's common name is " + strconv.Quote(cn))
			return
		}
		cl.authenticated()
	case "trust":
		cl.authenticated()
	case "md5":
		_, _ = rand.Read(cl.md5Salt[:])
		cl.out = codec.AppendAuthentication(cl.out, codec.AuthMD5Password, cl.md5Salt[:])
	default:
		cl.startScram(u.verifier)
	}
}

// startScram asks the client for a SCRAM exchange against v, offering channel binding over TLS.
func (cl *client) startScram(v auth.Verifier) {
	cl.scram = auth.NewScramServer(v)
	if cl.tlsBinding != nil {
		cl.scram.OfferChannelBinding(cl.tlsBinding)
	}
	cl.out = codec.AppendAuthSASL(cl.out, cl.scram.Mechanisms()...)
}

// readAuth handles the client's answers in the authentication exchange.
func (cl *client) readAuth() {
	for cl.state == clientAuth {
		buf, _ := cl.c.Peek(-1)
		m, n, err := codec.ReadMessage(buf, maxStartupPacket)
		if err != nil {
			cl.fatal(codec.NewFatal(codec.SQLStateProtocolViolation, "invalid authentication message: "+err.Error()))
			return
		}
		if n == 0 {
			return
		}
		if m.Type != codec.PasswordMessage {
			cl.fatal(codec.NewFatal(codec.SQLStateProtocolViolation, "expected a password response, got message type "+string(rune(m.Type))))
			return
		}
		body := append([]byte(nil), m.Body...) // the exchange keeps parts of it
		_, _ = cl.c.Discard(n)
		cl.authStep(body)
	}
}

func (cl *client) authStep(body []byte) {
	bad := func() {
		why := "wrong password"
		if cl.user == nil {
			why = "no such user in pgshard's config (users:, or admin: for database " + adminDatabase + ")"
		}
		cl.e.log.Info("login refused", "user", cl.login, "database", cl.dbName, "addr", cl.addr, "reason", why)
		cl.fatal(codec.NewFatal(codec.SQLStateInvalidPassword, `password authentication failed for user "`+cl.login+`"`))
	}
	switch {
	case cl.user != nil && cl.user.method == "md5":
		pw, err := codec.ParsePassword(body)
		if err != nil {
			cl.fatal(codec.NewFatal(codec.SQLStateProtocolViolation, "invalid password message: "+err.Error()))
			return
		}
		if !auth.MD5Check(cl.user.cfg.Name, cl.user.cfg.Password, cl.md5Salt, pw) {
			bad()
			return
		}
		cl.authenticated()
	case !cl.scramStarted:
		mech, data, err := codec.ParseSASLInitialResponse(body)
		if err == nil {
			err = cl.scram.Choose(mech)
		}
		var reply []byte
		if err == nil {
			reply, err = cl.scram.ClientFirst(data)
		}
		if err != nil {
			cl.fatal(codec.NewFatal(codec.SQLStateProtocolViolation, "invalid SCRAM exchange: "+err.Error()))
			return
		}
		cl.scramStarted = true
		cl.out = codec.AppendAuthentication(cl.out, codec.AuthSASLContinue, reply)
	default:
		reply, err := cl.scram.ClientFinal(body)
		if errors.Is(err, auth.ErrBadPassword) {
			bad()
			return
		}
		if err != nil {
			cl.fatal(codec.NewFatal(codec.SQLStateProtocolViolation, "invalid SCRAM exchange: "+err.Error()))
			return
		}
		if cl.user == nil { // a made-up verifier matches no password; never let one through
			bad()
			return
		}
		if cl.user.lookedUp {
			if keys, ok := cl.scram.Keys(); ok {
				cl.user.keys.Store(&keys) // for the logins to the shards as this role
			}
		}
		cl.out = codec.AppendAuthentication(cl.out, codec.AuthSASLFinal, reply)
		cl.authenticated()
	}
}

// authenticated continues once the password is right: unknown databases are refused only now, as Postgres
// does, so that names are not told to strangers.
func (cl *client) authenticated() {
	if !cl.admit() {
		return
	}
	cl.out = codec.AppendAuthentication(cl.out, codec.AuthOK, nil)
	if cl.isAdmin {
		cl.e.newCancelKey(cl, 0)
		cl.reportParams(adminParams)
		cl.setState(clientAdmin)
		return
	}
	if cat := cl.e.cat.Load(); cl.db != nil && cl.db.retired.Load() || cl.user.retired.Load() {
		// A RELOAD replaced them during the login.
		cl.db = cat.dbs[cl.dbName]
		if u := cat.users[cl.user.cfg.Name]; u != nil {
			cl.user = u
		}
	}
	if cl.db == nil {
		cl.fatal(codec.NewFatal(codec.SQLStateInvalidCatalogName, `database "`+cl.dbName+`" does not exist`).
			WithHint("add it to databases: in pgshard's config"))
		return
	}
	cl.pools = cl.e.poolsFor(cl.db, cl.user)
	cl.pool = cl.pools[0]
	if cl.e.splitsReads(cl.db) {
		cl.readPools = cl.e.readPoolsFor(cl.db, cl.user)
	}
	cl.srvs = make([]*server, len(cl.pools))
	if cl.db.schema != nil {
		cl.rt = cl.ls.router(cl.db, cl.e.cfg.Pool.MaxPreparedStatements+1000)
		cl.rs = route.NoSession
		cl.rs.CrossShard = cl.db.crossShard
	}
	cl.mapped = cl.e.mapNames || cl.rt != nil
	cl.defaults = startupSettings(cl.params)
	if cl.rt != nil {
		// pgshard.shard, pgshard.sharding_key and pgshard.cross_shard given at login are pgshard's, not the
		// servers'.
		for name, value := range pgshardStartup(cl.params) {
			if err := cl.applyShardSetting(&cl.rs, name, value); err != nil {
				cl.fatal(codec.NewFatal(err.Code, err.Message).WithHint(err.Hint))
				return
			}
			delete(cl.defaults, name)
		}
	}
	cl.settings = cloneSettings(cl.defaults)
	if cl.ownsServer() {
		// Session mode: the client's session is one server's from its login on, and its process id is that
		// backend's (tools that watch a session's locks by pg_backend_pid(), as the isolation tester does,
		// find it under the id the login gave them). The key is pgshard's own. See resume.
		cl.setState(clientConnecting)
		if cl.acquire() {
			cl.resume()
		}
		return
	}
	cl.e.newCancelKey(cl, 0)
	if params := cl.e.knownParams(cl.e.paramsKey(cl.db, cl.user)); params != nil {
		cl.finishStartup(params)
		return
	}
	// First client of this pool: a server connection tells us what to report (server_version, encodings).
	cl.setState(clientConnecting)
	if cl.acquire() {
		cl.resume()
	}
}

// replicationAsked reads the startup parameter replication as Postgres does: a boolean, or "database".
func replicationAsked(v string) bool {
	switch strings.ToLower(v) {
	case "", "false", "off", "no", "0":
		return false
	}
	return true
}

// ownsServer says whether the client keeps one server connection for its whole session (session mode, an
// unsharded database).
func (cl *client) ownsServer() bool { return cl.e.cfg.Pool.Mode == "session" && cl.rt == nil }

// finishStartup sends the server's parameters (with the client's own application_name) and pgshard's cancel
// key, and the client is ready.
func (cl *client) finishStartup(params map[string]string) {
	cl.e.rememberParams(cl.e.paramsKey(cl.db, cl.user), params)
	cl.reportParams(params)
	cl.setState(clientReady)
}

// reportParams sends the ParameterStatus messages, pgshard's cancel key and ReadyForQuery.
func (cl *client) reportParams(params map[string]string) {
	appName := ""
	for _, p := range cl.params {
		if p.Name == "application_name" {
			appName = p.Value
		}
	}
	for name, value := range params {
		if name == "application_name" {
			value = appName
		} else if !cl.isAdmin {
			// What the client asked for at startup is what its server connections will be given.
			for _, p := range cl.params {
				if strings.EqualFold(p.Name, name) {
					value = p.Value
				}
			}
		}
		cl.out = codec.AppendParameterStatus(cl.out, name, value)
	}
	cl.out = codec.AppendBackendKeyData(cl.out, cl.pid, cl.key[:])
	cl.out = codec.AppendReadyForQuery(cl.out, codec.TxIdle)
}
