package config

import (
	"cmp"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"
)

// validator checks a decoded Config. It shares the decoder's problem list and line table, so a problem
// points at the line of the value it is about, or at the nearest enclosing entry when that value is
// missing.
type validator struct{ *decoder }

func validate(c *Config, d *decoder) {
	v := validator{d}
	v.listenAddr("listen", c.Listen, true)
	if c.MetricsListen != "" {
		v.listenAddr("metrics_listen", c.MetricsListen, false)
	}
	v.nonNegative("shutdown_timeout", c.ShutdownTimeout)
	if c.LogFormat != LogText && c.LogFormat != LogJSON && v.ok("log_format") {
		v.errorf("log_format", "must be %q or %q, got %q", LogText, LogJSON, c.LogFormat)
	}
	if (c.TwoPhaseLog == "" || strings.HasSuffix(c.TwoPhaseLog, "/")) && v.ok("two_phase_log") {
		v.errorf("two_phase_log", "must name a file, got %q", c.TwoPhaseLog)
	}

	l := c.Limits
	v.atLeast("limits.max_message_size", l.MaxMessageSize, 1)
	v.positive("limits.client_startup_timeout", l.ClientStartupTimeout)
	v.atLeast("limits.max_pending_logins", l.MaxPendingLogins, 1)
	v.atLeast("limits.client_outbound_buffer", l.ClientOutboundBuffer, 1)
	v.atLeast("limits.max_intermediate_result", l.MaxIntermediateResult, 1)
	v.atLeast("limits.client_prepared_statements", l.ClientPreparedStatements, 1)
	v.positive("limits.server_connect_timeout", l.ServerConnectTimeout)
	v.nonNegative("limits.query_timeout", l.QueryTimeout)
	v.nonNegative("limits.idle_transaction_timeout", l.IdleTransactionTimeout)
	v.nonNegative("limits.client_idle_timeout", l.ClientIdleTimeout)

	t := &c.TLS
	if t.Mode == "" {
		t.Mode = TLSDisable
		if t.Cert != "" {
			t.Mode = TLSAllow
		}
	}
	switch {
	case !slices.Contains([]string{TLSDisable, TLSAllow, TLSRequire, TLSVerifyCA, TLSVerifyFull}, t.Mode) && v.ok("tls.mode"):
		v.errorf("tls.mode", "must be %q, %q, %q, %q or %q, got %q", TLSDisable, TLSAllow, TLSRequire, TLSVerifyCA, TLSVerifyFull, t.Mode)
	case (t.Cert == "") != (t.Key == "") && v.ok("tls.cert") && v.ok("tls.key"):
		v.errorf("tls", "cert and key go together: set both or neither")
	case t.Mode != TLSDisable && t.Cert == "" && v.ok("tls.mode"):
		v.errorf("tls.mode", "%s needs tls.cert and tls.key", t.Mode)
	case (t.Mode == TLSVerifyCA || t.Mode == TLSVerifyFull) && t.ClientCA == "" && v.ok("tls.mode"):
		v.errorf("tls.mode", "%s needs tls.client_ca (the CAs of the client certificates)", t.Mode)
	case t.ClientCA != "" && t.Mode == TLSDisable && v.ok("tls.client_ca"):
		v.errorf("tls.client_ca", "needs TLS: set tls.cert and tls.key")
	}

	p := c.Pool
	if p.Mode != ModeTransaction && p.Mode != ModeSession && v.ok("pool.mode") {
		v.errorf("pool.mode", "must be %q or %q, got %q", ModeTransaction, ModeSession, p.Mode)
	}
	v.atLeast("event_loops", c.EventLoops, 0)
	v.atLeast("pool.size", p.Size, 1)
	v.atLeast("pool.min_idle", p.MinIdle, 0)
	if p.MinIdle > p.Size && p.Size >= 1 && v.ok("pool.min_idle") && v.ok("pool.size") {
		v.errorf("pool.min_idle", "%d is more than pool.size (%d)", p.MinIdle, p.Size)
	}
	// A zero checkout timeout would mean either "fail at once" or "wait forever"; neither is what anyone
	// wants, so it must be positive. The idle and lifetime limits document 0 as "never".
	v.positive("pool.checkout_timeout", p.CheckoutTimeout)
	v.nonNegative("pool.idle_timeout", p.IdleTimeout)
	v.nonNegative("pool.server_lifetime", p.ServerLifetime)
	v.atLeast("pool.max_client_connections", p.MaxClientConnections, 1)
	v.atLeast("pool.max_prepared_statements", p.MaxPreparedStatements, 0)
	v.positive("pool.ban_time", p.BanTime)
	v.nonNegative("pool.health_check_interval", p.HealthCheckInterval)
	v.positive("pool.replica_check_interval", p.ReplicaCheckInterval)
	v.nonNegative("pool.max_replica_lag", p.MaxReplicaLag)
	v.atLeast("pool.max_replica_lag_bytes", p.MaxReplicaLagBytes, 0)
	v.positive("pool.failover_buffer_timeout", p.FailoverBufferTimeout)
	if !p.ServerReuse && p.Mode != ModeSession && v.ok("pool.server_reuse") && v.ok("pool.mode") {
		v.errorf("pool.server_reuse", "false needs pool.mode session (in transaction mode clients share server connections by design)")
	}

	if c.Admin.User == "" && v.ok("admin.user") {
		v.errorf("admin.user", "must not be empty")
	}
	if passwordKindOf(c.Admin.Password) == passwordBadSCRAM {
		v.errorf("admin.password", "%s", badSCRAM)
	}

	if len(c.Users) == 0 && v.ok("users") {
		v.errorf("users", "at least one user is required")
	}
	userAt := map[string]string{}
	for i, u := range c.Users {
		v.user(index("users", i), u, userAt)
	}
	if c.AuthUser != "" && c.User(c.AuthUser) == nil && v.ok("auth_user") {
		v.errorf("auth_user", "%q is not in users: (pgshard logs in to the shards as that user to look up the others)", c.AuthUser)
	}
	if c.AuthUser != "" && !strings.Contains(c.AuthQuery, "$1") && v.ok("auth_query") {
		v.errorf("auth_query", "must take the user name as $1")
	}
	v.positive("auth_cache_ttl", c.AuthCacheTTL)

	if len(c.Databases) == 0 && v.ok("databases") {
		v.errorf("databases", "at least one database is required")
	}
	dbAt := map[string]string{}
	for i, db := range c.Databases {
		v.database(index("databases", i), db, dbAt)
	}
}

const badSCRAM = "is not a valid SCRAM-SHA-256 verifier (SCRAM-SHA-256$<iterations>:<salt>$<storedkey>:<serverkey>)"

func (v validator) user(p string, u User, userAt map[string]string) {
	v.name(p+".name", u.Name, userAt, "user")
	pw := p + ".password"
	kind := passwordKindOf(u.Password)
	switch u.AuthMethod {
	case AuthSCRAM:
		switch kind {
		case passwordEmpty:
			v.required(pw, "with auth_method scram-sha-256 (the cleartext password or a SCRAM-SHA-256 verifier)")
		case passwordMD5:
			v.errorf(pw, "is an md5 hash, which cannot check a scram-sha-256 login: give the cleartext password or a SCRAM-SHA-256 verifier")
		case passwordBadSCRAM:
			v.errorf(pw, "%s", badSCRAM)
		}
	case AuthMD5:
		switch kind {
		case passwordEmpty:
			v.required(pw, "with auth_method md5 (the cleartext password or an md5 hash)")
		case passwordSCRAM:
			v.errorf(pw, "is a SCRAM-SHA-256 verifier, which cannot check an md5 login: give the cleartext password or an md5 hash")
		case passwordBadSCRAM:
			v.errorf(pw, "%s", badSCRAM)
		}
	case AuthTrust, AuthCert:
		// The password is not checked, so any form will do.
	default:
		if v.ok(p + ".auth_method") {
			v.errorf(p+".auth_method", "must be %q, %q, %q or %q, got %q", AuthSCRAM, AuthMD5, AuthCert, AuthTrust, u.AuthMethod)
		}
	}
}

func (v validator) database(p string, db Database, dbAt map[string]string) {
	v.name(p+".name", db.Name, dbAt, "database")
	if db.Name == AdminDatabase {
		v.errorf(p+".name", "%q is reserved for the admin database", db.Name)
	}
	if len(db.Shards) == 0 && v.ok(p+".shards") {
		v.errorf(p+".shards", "at least one shard is required")
	}
	for i, s := range db.Shards {
		sp := index(p+".shards", i)
		if s.Primary.Raw == "" {
			v.required(sp+".primary", "(a postgres:// URL)")
		}
	}

	sharded := map[string]string{} // "table" or "column" + name -> path of the entry
	for i, t := range db.ShardedTables {
		v.shardedTable(index(p+".sharded_tables", i), t, db, sharded)
	}

	replicated := map[string]string{}
	for i, name := range db.ReplicatedTables {
		rp := index(p+".replicated_tables", i)
		switch {
		case name == "":
			v.required(rp, "(a table name)")
		case replicated[name] != "":
			v.errorf(rp, "table %q is already listed at %s", name, replicated[name])
		case sharded["table "+name] != "":
			v.errorf(rp, "table %q is also sharded (%s)", name, sharded["table "+name])
		}
		if replicated[name] == "" {
			replicated[name] = rp
		}
	}
	if db.UnlistedTables != UnlistedReplicated && db.UnlistedTables != UnlistedError && v.ok(p+".unlisted_tables") {
		v.errorf(p+".unlisted_tables", "must be %q or %q, got %q", UnlistedReplicated, UnlistedError, db.UnlistedTables)
	}
	if s := db.ReadWriteSplit; s != SplitOff && s != SplitReplicas && s != SplitReplicasAndPrimary && v.ok(p+".read_write_split") {
		v.errorf(p+".read_write_split", "must be %q, %q or %q, got %q", SplitOff, SplitReplicas, SplitReplicasAndPrimary, s)
	}
	if s := db.Role; s != RoleFixed && s != RoleAuto && v.ok(p+".role") {
		v.errorf(p+".role", "must be %q or %q, got %q", RoleFixed, RoleAuto, s)
	}
	if s := db.LoadBalancing; s != BalanceRoundRobin && s != BalanceLeastOutstanding && v.ok(p+".load_balancing") {
		v.errorf(p+".load_balancing", "must be %q or %q, got %q", BalanceRoundRobin, BalanceLeastOutstanding, s)
	}
	for i, sh := range db.Shards {
		for j, r := range sh.Replicas {
			v.atLeast(index(index(p+".shards", i)+".replicas", j)+".weight", r.Weight, 1)
		}
	}
	v.nonNegative(p+".read_your_writes_timeout", db.ReadYourWritesTimeout)
	if s := db.ReadYourWrites; s != RYWOff && s != RYWSession && v.ok(p+".read_your_writes") {
		v.errorf(p+".read_your_writes", "must be %q or %q, got %q", RYWOff, RYWSession, s)
	}
	if db.CrossShard != CrossShardAllow && db.CrossShard != CrossShardWarn && db.CrossShard != CrossShardDeny && v.ok(p+".cross_shard") {
		v.errorf(p+".cross_shard", "must be %q, %q or %q, got %q", CrossShardAllow, CrossShardWarn, CrossShardDeny, db.CrossShard)
	}
}

// keyTypes are the sharding key types, with the bit size of the integer ones.
var keyTypes = map[string]int{"smallint": 16, "integer": 32, "bigint": 64, "text": 0, "varchar": 0, "uuid": 0}

func (v validator) shardedTable(p string, t ShardedTable, db Database, sharded map[string]string) {
	if t.Column == "" {
		v.required(p+".column", "(the shard key column)")
	}
	typeOK := false
	if _, known := keyTypes[t.Type]; known {
		typeOK = true
	} else if t.Type == "" {
		v.required(p+".type", "(smallint, integer, bigint, text, varchar or uuid)")
	} else if v.ok(p + ".type") {
		v.errorf(p+".type", "must be smallint, integer, bigint, text, varchar or uuid, got %q", t.Type)
	}

	// One shard key per table: a second entry for it could only disagree with the first.
	key, what := "table "+t.Table, fmt.Sprintf("table %q", t.Table)
	if t.Table == "" {
		key, what = "column "+t.Column, fmt.Sprintf("column %q (for every table)", t.Column)
	}
	if first := sharded[key]; first != "" && t.Column != "" {
		v.errorf(p, "%s is already listed at %s", what, first)
	} else if t.Column != "" {
		sharded[key] = p
	}

	_, hasValues := v.lines[p+".values"]
	_, hasRanges := v.lines[p+".ranges"]
	switch t.Mapping {
	case MappingHash:
		if hasValues {
			v.errorf(p+".values", "is only for mapping: list")
		}
		if hasRanges {
			v.errorf(p+".ranges", "is only for mapping: range")
		}
	case MappingList:
		if hasRanges {
			v.errorf(p+".ranges", "is only for mapping: range")
		}
		if len(t.Values) == 0 {
			v.required(p+".values", "with mapping: list ({shard index: [values]})")
		}
		v.listValues(p+".values", t, db, typeOK)
	case MappingRange:
		if hasValues {
			v.errorf(p+".values", "is only for mapping: list")
		}
		if len(t.Ranges) == 0 {
			v.required(p+".ranges", "with mapping: range ([{shard: 0, from: ..., to: ...}])")
		}
		v.ranges(p+".ranges", t, db, typeOK)
	default:
		if v.ok(p + ".mapping") {
			v.errorf(p+".mapping", "must be %q, %q or %q, got %q", MappingHash, MappingList, MappingRange, t.Mapping)
		}
	}
}

func (v validator) listValues(p string, t ShardedTable, db Database, typeOK bool) {
	shards := make([]int, 0, len(t.Values))
	for s := range t.Values {
		shards = append(shards, s)
	}
	slices.Sort(shards) // report in a stable order
	at := map[string]string{}
	for _, s := range shards {
		sp := index(p, s)
		v.shardIndex(sp, s, db)
		for i, val := range t.Values[s] {
			vp := index(sp, i)
			if !typeOK {
				continue
			}
			if err := checkKey(t.Type, val); err != nil {
				v.errorf(vp, "%v", err)
				continue
			}
			k := canonicalKey(t.Type, val)
			if first := at[k]; first != "" {
				v.errorf(vp, "value %q is already listed at %s", val, first)
				continue
			}
			at[k] = vp
		}
	}
}

func (v validator) ranges(p string, t ShardedTable, db Database, typeOK bool) {
	var checked []int // indexes of ranges whose bounds are valid
	for i, r := range t.Ranges {
		rp := index(p, i)
		if _, set := v.lines[rp+".shard"]; !set && v.ok(rp+".shard") {
			v.required(rp+".shard", "(the shard index the range goes to)")
		} else {
			v.shardIndex(rp+".shard", r.Shard, db)
		}
		if !typeOK {
			continue
		}
		valid := true
		for _, b := range []struct{ key, val string }{{"from", r.From}, {"to", r.To}} {
			if b.val == "" {
				continue
			}
			if err := checkKey(t.Type, b.val); err != nil {
				v.errorf(rp+"."+b.key, "%v", err)
				valid = false
			}
		}
		if !valid {
			continue
		}
		if r.From != "" && r.To != "" && compareKeys(t.Type, r.From, r.To) >= 0 {
			v.errorf(rp, "from %q must be below to %q (from is inclusive, to exclusive)", r.From, r.To)
			continue
		}
		// A key in two ranges would have two shards.
		for _, j := range checked {
			if rangesOverlap(t.Type, t.Ranges[j], r) {
				v.errorf(rp, "overlaps %s", index(p, j))
				break
			}
		}
		checked = append(checked, i)
	}
}

// rangesOverlap tells whether [a.From, a.To) and [b.From, b.To) share a key; "" is unbounded.
func rangesOverlap(typ string, a, b Range) bool {
	below := func(from, to string) bool {
		return from == "" || to == "" || compareKeys(typ, from, to) < 0
	}
	return below(a.From, b.To) && below(b.From, a.To)
}

func (v validator) shardIndex(p string, s int, db Database) {
	if (s < 0 || s >= len(db.Shards)) && v.ok(p) {
		v.errorf(p, "shard %d does not exist (database %q has %d shards: 0 to %d)", s, db.Name, len(db.Shards), len(db.Shards)-1)
	}
}

// checkKey tells whether s is a valid literal of the sharding key type typ.
func checkKey(typ, s string) error {
	if bits := keyTypes[typ]; bits > 0 {
		if _, err := strconv.ParseInt(s, 10, bits); err != nil {
			return fmt.Errorf("value %q is not a valid %s", s, typ)
		}
	}
	if typ == "uuid" && !isUUID(s) {
		return fmt.Errorf("value %q is not a valid uuid", s)
	}
	return nil
}

// canonicalKey is s in a form where equal keys are equal strings ("007" = "7"; uuids in any case).
func canonicalKey(typ, s string) string {
	if keyTypes[typ] > 0 {
		n, _ := strconv.ParseInt(s, 10, 64)
		return strconv.FormatInt(n, 10)
	}
	if typ == "uuid" {
		return strings.ToLower(strings.ReplaceAll(s, "-", ""))
	}
	return s
}

// compareKeys orders two valid keys: integers as numbers, uuids as their bytes, text byte-wise.
func compareKeys(typ, a, b string) int {
	if keyTypes[typ] > 0 {
		x, _ := strconv.ParseInt(a, 10, 64)
		y, _ := strconv.ParseInt(b, 10, 64)
		return cmp.Compare(x, y)
	}
	return strings.Compare(canonicalKey(typ, a), canonicalKey(typ, b))
}

// isUUID accepts the standard 8-4-4-4-12 form and 32 bare hex digits, in either case.
func isUUID(s string) bool {
	if len(s) == 36 {
		for _, i := range []int{8, 13, 18, 23} {
			if s[i] != '-' {
				return false
			}
		}
		s = strings.ReplaceAll(s, "-", "")
	}
	if len(s) != 32 {
		return false
	}
	for _, c := range s {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// name checks a required, unique name; at maps the names seen so far to their paths.
func (v validator) name(p, name string, at map[string]string, what string) {
	if name == "" {
		v.required(p, "")
		return
	}
	if first := at[name]; first != "" {
		v.errorf(p, "%s %q is already defined at %s", what, name, first)
		return
	}
	at[name] = p
}

func (v validator) listenAddr(p, addr string, unixOK bool) {
	if !v.ok(p) || unixOK && strings.HasPrefix(addr, "/") {
		return
	}
	if _, port, err := net.SplitHostPort(addr); err == nil {
		if n, err := strconv.Atoi(port); err == nil && n >= 0 && n <= 65535 {
			return
		}
	}
	if unixOK {
		v.errorf(p, "%q is not host:port or an absolute unix socket directory", addr)
	} else {
		v.errorf(p, "%q is not host:port", addr)
	}
}

func (v validator) atLeast(p string, got, min int) {
	if got < min && v.ok(p) {
		v.errorf(p, "must be at least %d, got %d", min, got)
	}
}

func (v validator) positive(p string, got time.Duration) {
	if got <= 0 && v.ok(p) {
		v.errorf(p, "must be more than 0, got %s", got)
	}
}

func (v validator) nonNegative(p string, got time.Duration) {
	if got < 0 && v.ok(p) {
		v.errorf(p, "must not be negative, got %s", got)
	}
}

// required reports a missing value, unless it was there but could not be decoded.
func (v validator) required(p, hint string) {
	if !v.ok(p) {
		return
	}
	if hint != "" {
		hint = " " + hint
	}
	v.errorf(p, "is required%s", hint)
}

func (v validator) ok(p string) bool { return !v.bad[p] }

// errorf reports a problem with the value at path p, at its line or its nearest ancestor's.
func (v validator) errorf(p, format string, args ...any) {
	v.problem(v.line(p), "%s: %s", p, fmt.Sprintf(format, args...))
}

func (v validator) line(p string) int {
	for p != "" {
		if l, ok := v.lines[p]; ok {
			return l
		}
		i := strings.LastIndexAny(p, ".[")
		if i < 0 {
			break
		}
		p = p[:i]
	}
	return 0
}
