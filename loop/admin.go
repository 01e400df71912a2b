package loop

import (
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/pgshard/pgshard/admin"
	"github.com/pgshard/pgshard/codec"
	"github.com/pgshard/pgshard/pool"
	"github.com/pgshard/pgshard/reshard/status"
	"github.com/pgshard/pgshard/route"
)

// adminParams are the ParameterStatus values of the admin console, enough for psql.
var adminParams = map[string]string{
	"server_version":              "15.0 (pgshard " + Version + ")",
	"server_encoding":             "UTF8",
	"client_encoding":             "UTF8",
	"DateStyle":                   "ISO, MDY",
	"integer_datetimes":           "on",
	"standard_conforming_strings": "on",
}

// adminQuery runs the console's simple-protocol messages. Commands that visit every loop (SHOW CLIENTS,
// SHOW SERVERS) run on a goroutine, and the client's further messages wait until the answer is written.
func (cl *client) adminQuery() {
	for !cl.adminBusy && cl.state == clientAdmin {
		buf, _ := cl.c.Peek(-1)
		m, n, err := codec.ReadMessage(buf, cl.e.cfg.Limits.MaxMessageSize)
		if err != nil {
			cl.fatal(codec.NewFatal(codec.SQLStateProtocolViolation, "invalid message from client: "+err.Error()))
			return
		}
		if n == 0 {
			return
		}
		typ := m.Type
		var sql string
		if typ == codec.Query {
			q, _ := codec.ParseQuery(m.Body)
			sql = string(q)
		}
		_, _ = cl.c.Discard(n)
		switch typ {
		case codec.Terminate:
			cl.ls.closeConn(cl.c)
			return
		case codec.Query:
		case codec.Sync:
			cl.out = codec.AppendReadyForQuery(cl.out, codec.TxIdle)
			continue
		default:
			cl.out = codec.AppendErrorResponse(cl.out, codec.NewError(codec.SQLStateFeatureNotSupported,
				"the admin console speaks the simple query protocol only").WithHint("use psql, or your driver's simple protocol mode"))
			continue
		}
		cmd, perr := admin.Parse(sql)
		if perr != nil {
			cl.out = codec.AppendErrorResponse(cl.out, perr)
			cl.out = codec.AppendReadyForQuery(cl.out, codec.TxIdle)
			continue
		}
		if cmd.Verb == "PAUSE" {
			// Answered when the database is quiet (pause.go); later messages wait until then.
			if err := cl.startPause(cmd.Arg); err != nil {
				cl.out = codec.AppendErrorResponse(cl.out, err)
				cl.out = codec.AppendReadyForQuery(cl.out, codec.TxIdle)
			}
			continue
		}
		if !cmd.OffLoop() {
			cl.out = admin.Run(cl.out, cmd, cl.e)
			cl.out = codec.AppendReadyForQuery(cl.out, codec.TxIdle)
			continue
		}
		cl.adminBusy = true
		go func() {
			out := admin.Run(nil, cmd, cl.e)
			_ = cl.ls.execute(func() {
				cl.adminBusy = false
				if cl.state != clientAdmin {
					return
				}
				cl.adminEnd(append(cl.out, out...))
			})
		}()
	}
}

// Version implements admin.Source.
func (e *Engine) Version() string { return Version }

// Pools implements admin.Source.
func (e *Engine) Pools() []admin.PoolInfo {
	var out []admin.PoolInfo
	for _, d := range e.cat.Load().dbs {
		d.mu.Lock()
		d.eachPool("", func(userName string, p *pool.Pool) { out = append(out, e.poolInfo(d, userName, p)) })
		d.mu.Unlock()
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Database != b.Database {
			return a.Database < b.Database
		}
		if a.User != b.User {
			return a.User < b.User
		}
		if a.Shard != b.Shard {
			return a.Shard < b.Shard
		}
		return a.Role < b.Role || a.Role == b.Role && a.Host < b.Host
	})
	return out
}

// poolInfo is what SHOW POOLS and the metrics say of pool p of database d and user userName.
func (e *Engine) poolInfo(d *database, userName string, p *pool.Pool) admin.PoolInfo {
	st := p.Stats()
	srv := d.db.Shards[p.Shard].Primary
	if r, ok := p.Host.(*replica); ok {
		srv = r.srv
	}
	_, host := srv.Addr()
	return admin.PoolInfo{
		Database: d.db.Name, User: userName, Shard: p.Shard, Role: p.Role(), Host: host, Mode: e.cfg.Pool.Mode, Size: p.Settings().Size,
		Active: st.Total - st.Idle, Idle: st.Idle, Waiting: st.Waiting, Checkouts: st.Checkouts, Waits: st.Waits,
		CrossLoop: st.CrossLoop, Dials: st.Dials, DialFailures: st.DialFailures, Timeouts: st.Timeouts,
		WaitTime: st.WaitTime, MaxWait: st.MaxWait,
	}
}

// Clients implements admin.Source; it visits every loop, so it must not run on one.
func (e *Engine) Clients() []admin.ClientInfo {
	var out []admin.ClientInfo
	e.collect(func(ls *loopState, add func(any)) {
		for cl := range ls.clients {
			ci := admin.ClientInfo{Addr: cl.addr, ConnectedAt: cl.connectedAt, Loop: ls.idx, PID: cl.pid, State: cl.stateName()}
			if cl.user != nil {
				ci.User = cl.user.cfg.Name
			}
			ci.Database = cl.dbName
			for _, p := range cl.params {
				if p.Name == "application_name" {
					ci.ApplicationName = p.Value
				}
			}
			if cl.srv != nil {
				ci.ServerPID = cl.srv.backend.PID
			}
			if cl.tls != nil {
				st := cl.tls.Session().ConnectionState()
				ci.TLS = strings.Replace(tls.VersionName(st.Version), "TLS ", "TLSv", 1) + "/" + tls.CipherSuiteName(st.CipherSuite) // as PgBouncer shows it
			}
			add(ci)
		}
	}, func(x any) { out = append(out, x.(admin.ClientInfo)) })
	sort.Slice(out, func(i, j int) bool { return out[i].ConnectedAt.Before(out[j].ConnectedAt) })
	return out
}

// Servers implements admin.Source; it visits every loop, so it must not run on one.
func (e *Engine) Servers() []admin.ServerInfo {
	var out []admin.ServerInfo
	e.collect(func(ls *loopState, add func(any)) {
		for s := range ls.servers {
			si := admin.ServerInfo{Addr: s.target.Address, Loop: ls.idx, PID: s.backend.PID, ConnectedAt: s.pc.Created,
				Database: s.target.Database, User: s.target.User, State: "idle", Role: s.pc.Pool().Role()}
			_, checking := ls.checking[s]
			switch {
			case s.client != nil:
				si.State, si.ClientPID = "active", s.client.pid
			case checking:
				si.State = "checking" // a health check in flight (healthcheck.go)
			case s.inUse():
				si.State = "resetting"
			}
			if s.park.parked {
				si.State += " (parked)"
			}
			add(si)
		}
	}, func(x any) { out = append(out, x.(admin.ServerInfo)) })
	sort.Slice(out, func(i, j int) bool { return out[i].ConnectedAt.Before(out[j].ConnectedAt) })
	return out
}

// collect runs visit on every loop and hands what it adds to sink, one loop at a time.
func (e *Engine) collect(visit func(ls *loopState, add func(any)), sink func(any)) {
	var items []any
	e.forEachLoop(func(ls *loopState) {
		var local []any
		visit(ls, func(x any) { local = append(local, x) })
		e.loopsMu.Lock()
		items = append(items, local...)
		e.loopsMu.Unlock()
	})
	for _, x := range items {
		sink(x)
	}
}

// Databases implements admin.Source: the configured databases, by name.
func (e *Engine) Databases() []admin.DatabaseInfo {
	cat := e.cat.Load()
	out := make([]admin.DatabaseInfo, 0, len(cat.dbs))
	for name, d := range cat.dbs {
		di := admin.DatabaseInfo{Name: name, PoolSize: e.cfg.Pool.Size, PoolMode: e.cfg.Pool.Mode, PauseState: e.pauseStateOf(name)}
		for _, sh := range d.db.Shards {
			di.Primaries = append(di.Primaries, sh.Primary.Raw)
		}
		out = append(out, di)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Reshard implements admin.Source: the progress files of the reshard runs next to the config file.
func (e *Engine) Reshard() ([]*status.Status, error) {
	if e.configFile == "" {
		return nil, errors.New("pgshard was started without a config file, so it has no directory to look in")
	}
	return status.ReadAll(filepath.Dir(e.configFile))
}

// Config implements admin.Source: the settings that matter when reading the other tables, no secrets.
func (e *Engine) Config() [][2]string {
	c := e.cfg
	return [][2]string{
		{"config_file", e.configFile},
		{"listen", c.Listen},
		{"metrics_listen", c.MetricsListen},
		{"pool.mode", c.Pool.Mode},
		{"pool.size", strconv.Itoa(c.Pool.Size)},
		{"pool.min_idle", strconv.Itoa(c.Pool.MinIdle)},
		{"pool.checkout_timeout", c.Pool.CheckoutTimeout.String()},
		{"pool.idle_timeout", c.Pool.IdleTimeout.String()},
		{"pool.server_lifetime", c.Pool.ServerLifetime.String()},
		{"pool.max_client_connections", strconv.Itoa(c.Pool.MaxClientConnections)},
		{"pool.server_reuse", strconv.FormatBool(c.Pool.ServerReuse)},
		{"limits.max_message_size", strconv.Itoa(c.Limits.MaxMessageSize)},
		{"limits.client_startup_timeout", c.Limits.ClientStartupTimeout.String()},
		{"limits.max_pending_logins", strconv.Itoa(c.Limits.MaxPendingLogins)},
		{"limits.client_outbound_buffer", strconv.Itoa(c.Limits.ClientOutboundBuffer)},
		{"limits.server_connect_timeout", c.Limits.ServerConnectTimeout.String()},
		{"limits.client_prepared_statements", strconv.Itoa(c.Limits.ClientPreparedStatements)},
		{"limits.query_timeout", c.Limits.QueryTimeout.String()},
		{"limits.idle_transaction_timeout", c.Limits.IdleTransactionTimeout.String()},
		{"limits.client_idle_timeout", c.Limits.ClientIdleTimeout.String()},
		{"shutdown_timeout", c.ShutdownTimeout.String()},
		{"log_format", c.LogFormat},
		{"event_loops", strconv.Itoa(e.nloops)},
		{"tls.mode", e.cat.Load().cfg.TLS.Mode}, // RELOAD changes it: the running value
		{"tls.cert", e.cat.Load().cfg.TLS.Cert},
	}
}

// RequestShutdown implements admin.Source: the console's SHUTDOWN does what SIGTERM does.
func (e *Engine) RequestShutdown() {
	go func() {
		if err := e.Shutdown(e.cfg.ShutdownTimeout); err != nil {
			e.log.Error("shutdown", "err", err)
		}
	}()
}

// serveMetrics serves /metrics on metrics_listen until the engine stops.
func (e *Engine) serveMetrics() (*http.Server, error) {
	if e.cfg.MetricsListen == "" {
		return nil, nil
	}
	ln, err := net.Listen("tcp", e.cfg.MetricsListen)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", admin.MetricsHandler(e, e.clients.Load))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return srv, nil
}

// Route implements admin.Source: SHOW ROUTE, with a router of its own for the database's schema (the loops'
// plan caches are theirs alone).
func (e *Engine) Route(db, sql string) (decision, plan string, err *codec.Error) {
	d := e.cat.Load().dbs[db]
	if d == nil {
		return "", "", codec.NewError(codec.SQLStateInvalidCatalogName, `database "`+db+`" does not exist`).
			WithHint("SHOW DATABASES lists the databases of pgshard's config")
	}
	if d.schema == nil {
		return "shard 0 (the database has one shard and no sharded tables: every statement goes there)", "", nil
	}
	dec, p := route.NewRouter(d.schema, 16).Explain(sql)
	return dec.String(), p.String(), nil
}
