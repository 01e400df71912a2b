package config

import (
	"slices"
	"sort"
	"strconv"
)

// Changes is what a new config file changes for a running pgshard (the console's RELOAD, SIGHUP). Users,
// databases and the admin login are applied at once; every other setting is read once at start, and a
// change to it is listed in Restart.
type Changes struct {
	Restart []string // keys whose new value needs a restart ("listen", "pool.size"), in file order

	DatabasesAdded   []string
	DatabasesRemoved []string
	// DatabasesChanged are databases whose entry differs in any way. Routing tells those whose shards or
	// tables changed (a new routing schema) from those where only other settings (two_phase_commit) did.
	DatabasesChanged []string
	Routing          map[string]bool

	UsersAdded   []string
	UsersRemoved []string
	UsersChanged []string
	// ServerLogin are the changed users whose login on the shards (server_user, server_password) changed:
	// their server connections must be made anew.
	ServerLogin []string

	AdminChanged bool
}

// None reports whether the new file changes nothing.
func (c *Changes) None() bool {
	return len(c.Restart)+len(c.DatabasesAdded)+len(c.DatabasesRemoved)+len(c.DatabasesChanged)+
		len(c.UsersAdded)+len(c.UsersRemoved)+len(c.UsersChanged) == 0 && !c.AdminChanged
}

// restartSettings are the settings read once at start, as key and value.
func restartSettings(c *Config) [][2]string {
	d := func(v interface{ String() string }) string { return v.String() }
	n := strconv.Itoa
	return [][2]string{
		{"listen", c.Listen},
		{"metrics_listen", c.MetricsListen},
		{"event_loops", n(c.EventLoops)},
		{"shutdown_timeout", d(c.ShutdownTimeout)},
		{"log_format", c.LogFormat},
		{"log_wire", strconv.FormatBool(c.LogWire)},
		{"auth_user", c.AuthUser},
		{"auth_query", c.AuthQuery},
		{"auth_cache_ttl", d(c.AuthCacheTTL)},
		{"two_phase_log", c.TwoPhaseLog},
		{"limits.max_message_size", n(c.Limits.MaxMessageSize)},
		{"limits.client_startup_timeout", d(c.Limits.ClientStartupTimeout)},
		{"limits.max_pending_logins", n(c.Limits.MaxPendingLogins)},
		{"limits.client_outbound_buffer", n(c.Limits.ClientOutboundBuffer)},
		{"limits.client_prepared_statements", n(c.Limits.ClientPreparedStatements)},
		{"limits.server_connect_timeout", d(c.Limits.ServerConnectTimeout)},
		{"limits.query_timeout", d(c.Limits.QueryTimeout)},
		{"limits.idle_transaction_timeout", d(c.Limits.IdleTransactionTimeout)},
		{"limits.client_idle_timeout", d(c.Limits.ClientIdleTimeout)},
		{"limits.max_intermediate_result", n(c.Limits.MaxIntermediateResult)},
		{"pool.mode", c.Pool.Mode},
		{"pool.size", n(c.Pool.Size)},
		{"pool.min_idle", n(c.Pool.MinIdle)},
		{"pool.checkout_timeout", d(c.Pool.CheckoutTimeout)},
		{"pool.idle_timeout", d(c.Pool.IdleTimeout)},
		{"pool.server_lifetime", d(c.Pool.ServerLifetime)},
		{"pool.max_client_connections", n(c.Pool.MaxClientConnections)},
		{"pool.max_prepared_statements", n(c.Pool.MaxPreparedStatements)},
		{"pool.server_reuse", strconv.FormatBool(c.Pool.ServerReuse)},
		{"pool.ban_time", d(c.Pool.BanTime)},
		{"pool.health_check_interval", d(c.Pool.HealthCheckInterval)},
		{"pool.replica_check_interval", d(c.Pool.ReplicaCheckInterval)},
		{"pool.max_replica_lag", d(c.Pool.MaxReplicaLag)},
		{"pool.max_replica_lag_bytes", n(c.Pool.MaxReplicaLagBytes)},
		{"pool.failover_buffer_timeout", d(c.Pool.FailoverBufferTimeout)},
	}
}

// Compare says what next changes with respect to the running config cur.
func Compare(cur, next *Config) Changes {
	var ch Changes
	a, b := restartSettings(cur), restartSettings(next)
	for i := range a {
		if a[i][1] != b[i][1] {
			ch.Restart = append(ch.Restart, a[i][0])
		}
	}

	ch.Routing = map[string]bool{}
	for _, nd := range next.Databases {
		od := cur.Database(nd.Name)
		switch {
		case od == nil:
			ch.DatabasesAdded = append(ch.DatabasesAdded, nd.Name)
		case RoutingChanged(od, &nd):
			ch.DatabasesChanged = append(ch.DatabasesChanged, nd.Name)
			ch.Routing[nd.Name] = true
		case od.TwoPhaseCommit != nd.TwoPhaseCommit || od.CrossShard != nd.CrossShard || od.ReadWriteSplit != nd.ReadWriteSplit ||
			od.ReadYourWrites != nd.ReadYourWrites || od.LoadBalancing != nd.LoadBalancing || od.Role != nd.Role ||
			od.ReadYourWritesTimeout != nd.ReadYourWritesTimeout:
			ch.DatabasesChanged = append(ch.DatabasesChanged, nd.Name)
		}
	}
	for _, od := range cur.Databases {
		if next.Database(od.Name) == nil {
			ch.DatabasesRemoved = append(ch.DatabasesRemoved, od.Name)
		}
	}

	for _, nu := range next.Users {
		ou := cur.User(nu.Name)
		switch {
		case ou == nil:
			ch.UsersAdded = append(ch.UsersAdded, nu.Name)
		case *ou != nu:
			ch.UsersChanged = append(ch.UsersChanged, nu.Name)
			if ou.ServerUser != nu.ServerUser || ou.ServerPassword != nu.ServerPassword {
				ch.ServerLogin = append(ch.ServerLogin, nu.Name)
			}
		}
	}
	for _, ou := range cur.Users {
		if next.User(ou.Name) == nil {
			ch.UsersRemoved = append(ch.UsersRemoved, ou.Name)
		}
	}
	ch.AdminChanged = cur.Admin != next.Admin
	for _, l := range [][]string{ch.DatabasesAdded, ch.DatabasesRemoved, ch.DatabasesChanged, ch.UsersAdded, ch.UsersRemoved, ch.UsersChanged, ch.ServerLogin} {
		sort.Strings(l)
	}
	return ch
}

// RoutingChanged reports whether two entries of one database route differently: their shards, sharded
// tables, replicated tables or unlisted tables differ. An empty list and a missing one are the same.
func RoutingChanged(a, b *Database) bool {
	if a.UnlistedTables != b.UnlistedTables || !slices.Equal(a.ReplicatedTables, b.ReplicatedTables) ||
		len(a.Shards) != len(b.Shards) || len(a.ShardedTables) != len(b.ShardedTables) {
		return true
	}
	for i := range a.Shards {
		x, y := a.Shards[i], b.Shards[i]
		if x.Primary != y.Primary || !slices.Equal(x.Replicas, y.Replicas) {
			return true
		}
	}
	for i := range a.ShardedTables {
		x, y := a.ShardedTables[i], b.ShardedTables[i]
		if x.Table != y.Table || x.Column != y.Column || x.Type != y.Type || x.Mapping != y.Mapping ||
			!slices.Equal(x.Ranges, y.Ranges) || len(x.Values) != len(y.Values) {
			return true
		}
		for k, v := range x.Values {
			if w, ok := y.Values[k]; !ok || !slices.Equal(v, w) {
				return true
			}
		}
	}
	return false
}
