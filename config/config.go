package config

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// AdminDatabase is the database name clients use to reach the admin console; no configured database may
// take it.
const AdminDatabase = "pgshard"

// Config is a parsed and validated config.yaml.
type Config struct {
	Listen        string // "listen": host:port, or an absolute unix socket directory
	MetricsListen string // "metrics_listen": host:port of the Prometheus endpoint; "" disables it
	// "event_loops": gnet event loops (threads serving connections); 0 picks half the CPUs, at least one.
	// Measured on a 2-core machine shared with Postgres and the clients: one loop served 38k TPS at 10.6 µs
	// of proxy CPU per transaction, two loops 31.5k TPS at 14 µs (they wake twice as often for half the
	// events each and compete with Postgres for the cores). A dedicated proxy host wants one per core.
	EventLoops      int
	ShutdownTimeout time.Duration // "shutdown_timeout": on SIGTERM running transactions get this long
	LogFormat       string        // "log_format": LogText (key=value lines) or LogJSON (one JSON object a line), to stderr
	// "log_wire": log every message between a client and pgshard, one line each (codec.TraceLine: names, texts
	// and tags, never row or parameter values), as libpq's PQtrace; for debugging, it costs a log line a message.
	LogWire bool
	// "two_phase_log": the file where pgshard writes its two-phase commit decisions (databases with
	// two_phase_commit), read at start to finish what a crash left prepared. Load makes a relative path
	// relative to the config file's directory.
	TwoPhaseLog string
	// "auth_user" (PgBouncer's): a user of users: as whom pgshard looks up, on shard 0 of the database a client
	// asks for, the SCRAM verifier of a user that is not in users: with AuthQuery; such a user then logs in with
	// its own password, and pgshard logs in to the shards as that user with the keys its login proved. "": off.
	AuthUser string
	// "auth_query": the lookup, given the user name as $1; its first row's second column is the verifier.
	AuthQuery string
	// "auth_cache_ttl": how long a looked-up verifier (or its absence) is used before it is looked up again.
	AuthCacheTTL time.Duration
	Limits       Limits     // "limits"
	TLS          TLS        // "tls"
	Pool         Pool       // "pool"
	Admin        Admin      // "admin"
	Users        []User     // "users"
	Databases    []Database // "databases"
}

// Limits bound what one client can cost the proxy.
type Limits struct {
	MaxMessageSize       int           // "max_message_size", bytes: a larger client message gets 08P01
	ClientStartupTimeout time.Duration // "client_startup_timeout": time to finish startup and auth
	// "max_pending_logins": sockets still logging in; past it a new one gets 53300 at once. They do not count
	// against pool.max_client_connections, so silent sockets cannot lock out logged-in clients.
	MaxPendingLogins     int
	ClientOutboundBuffer int           // "client_outbound_buffer", bytes: past it the proxy stops reading from that client's server
	ServerConnectTimeout time.Duration // "server_connect_timeout": time to connect and authenticate to a shard
	// "client_prepared_statements": named prepared statements one client may hold at once (protocol level and
	// SQL PREPARE each); past it a Parse or PREPARE gets 53400.
	ClientPreparedStatements int
	// The client timeouts of PgBouncer, each 0 (off) by default. "query_timeout": a statement that has run
	// longer is cancelled and its client closed (57014); "idle_transaction_timeout": a client idle inside a
	// transaction longer is closed and its transaction rolled back (25P03), so it cannot hold a server
	// connection the pool needs; "client_idle_timeout": a client idle outside a transaction longer is
	// closed (57P05).
	QueryTimeout           time.Duration
	IdleTransactionTimeout time.Duration
	ClientIdleTimeout      time.Duration
	// "max_intermediate_result", bytes: the rows one cross-shard SELECT gathers for the coordinator step
	// (docs/cross-shard.md); past it the statement gets 54000.
	MaxIntermediateResult int
}

// TLS is how clients may or must encrypt their connections. RELOAD (and SIGHUP) reads the files again and applies
// the mode; connected clients keep the certificate they were served with.
type TLS struct {
	// "mode": TLSDisable answers every SSLRequest no; TLSAllow encrypts when the client asks (sslmode=prefer,
	// require, verify-*); TLSRequire refuses a client that does not ask (28000); TLSVerifyCA also wants a client
	// certificate signed by a CA of ClientCA, TLSVerifyFull one whose common name is the user's name (Postgres's
	// clientcert=verify-ca and verify-full). Default: allow when a certificate is set, else disable.
	Mode string
	Cert string // "cert": the server's certificate chain, PEM; a relative path is relative to the config file
	Key  string // "key": its private key, PEM
	// "client_ca": the CAs whose client certificates are trusted, PEM. With it a client may present a certificate
	// in every mode (a user with auth_method cert logs in with one).
	ClientCA string
}

// Pool sizes and times the server connection pools, one per (database, user, shard, role).
type Pool struct {
	Mode                 string        // "mode": "transaction" or "session"
	Size                 int           // "size": server connections per pool, at least 1
	MinIdle              int           // "min_idle": idle connections kept open, at most Size
	CheckoutTimeout      time.Duration // "checkout_timeout": a client waiting longer for a connection gets an error
	IdleTimeout          time.Duration // "idle_timeout": idle server connections are closed after this; 0 = never
	ServerLifetime       time.Duration // "server_lifetime": server connections are closed at this age once idle; 0 = never
	MaxClientConnections int           // "max_client_connections"
	// "max_prepared_statements": named prepared statements kept per server connection in transaction mode
	// (least recently used closed first); 0 turns the mapping off and passes client names through as they are.
	MaxPreparedStatements int
	// "server_reuse" (session mode): false closes a server connection when its client leaves instead of
	// resetting it (DISCARD ALL) for the next client, so that each client session has a backend of its own, as
	// with Postgres directly (what DISCARD ALL cannot undo: libraries loaded, the temporary schema, per-backend
	// statistics), at the cost of a Postgres login per client. True (the default) pools them.
	ServerReuse bool
	// "health_check_interval": a server connection idle in its pool this long is checked (an empty query) before
	// a client gets it; one that fails the check, or does not answer it within limits.server_connect_timeout,
	// is closed, and its host, a replica, banned. 0 turns the checks off.
	HealthCheckInterval time.Duration
	// "ban_time": how long a replica that failed (a connection or login that failed, a connection lost) takes
	// no reads; they go to the other replicas, or to the primary.
	BanTime time.Duration
	// "replica_check_interval": how often each replica's replay position is compared with its primary's.
	ReplicaCheckInterval time.Duration
	// "max_replica_lag" and "max_replica_lag_bytes": a replica further behind its primary (in time, or in WAL
	// bytes) takes no reads until it has caught up; 0 turns a limit off.
	MaxReplicaLag      time.Duration
	MaxReplicaLagBytes int
	// "failover_buffer_timeout": how long a new transaction of a database with role auto waits for its shard's
	// primary while there is none (the primary went down or into recovery, and no other host is one yet); past
	// it the client gets an error.
	FailoverBufferTimeout time.Duration
}

// Admin is the login of the admin database (AdminDatabase).
type Admin struct {
	User     string // "user"
	Password string // "password": cleartext, SCRAM verifier or md5 hash, like User.Password
}

// User is a login clients may use.
type User struct {
	Name string // "name"
	// Password is "password": cleartext, a SCRAM-SHA-256 verifier
	// ("SCRAM-SHA-256$<iter>:<salt>$<storedkey>:<serverkey>", base64) or an md5 hash ("md5" + 32 hex digits).
	Password       string
	AuthMethod     string // "auth_method": "scram-sha-256", "md5" or "trust"
	ServerUser     string // "server_user": the role used on the shards; defaults to Name
	ServerPassword string // "server_password": defaults to Password when that is cleartext, else ""
}

// Database is a database clients connect to, spread over one or more shards.
type Database struct {
	Name             string         // "name"
	Shards           []Shard        // "shards": shard i is the i-th entry
	ShardedTables    []ShardedTable // "sharded_tables"
	ReplicatedTables []string       // "replicated_tables": present in full on every shard
	// UnlistedTables is "unlisted_tables": what a query may do with a table that is neither sharded nor
	// replicated: UnlistedReplicated (the default) treats it as replicated, UnlistedError refuses the
	// query (0A000) so that every table the application uses must be listed.
	UnlistedTables string
	TwoPhaseCommit bool // "two_phase_commit"
	// CrossShard is "cross_shard": what a session does by default (pgshard.cross_shard) with a statement that
	// runs on several shards because no shard key in it decides (a scatter): CrossShardAllow (the default) runs
	// it, CrossShardWarn runs it with a WARNING, CrossShardDeny refuses it (0A000).
	CrossShard string
	// ReadWriteSplit is "read_write_split": where a statement that surely only reads goes, outside a transaction
	// block, in transaction mode, when its shard has replicas: SplitReplicas (the default) to a replica (the
	// primary when every replica is banned), SplitReplicasAndPrimary to the replicas and the primary in turn,
	// SplitOff to the primary.
	ReadWriteSplit string
	// ReadYourWrites is "read_your_writes": RYWSession makes a client's reads go only to replicas that have
	// replayed its last write (else to the primary); RYWOff (the default) does not look.
	ReadYourWrites string
	// ReadYourWritesTimeout is "read_your_writes_timeout": how long a client's read waits for a replica to
	// replay its last write before it goes to the primary; 0 (the default) sends it to the primary at once.
	ReadYourWritesTimeout time.Duration
	// LoadBalancing is "load_balancing": how reads are spread over the replicas: BalanceRoundRobin (the
	// default: in turn, by weight) or BalanceLeastOutstanding (to the one with the fewest server connections in
	// use for its weight).
	LoadBalancing string
	// Role is "role": RoleFixed (the default) takes each shard's primary and replicas as the config lists them;
	// RoleAuto asks the hosts (pg_is_in_recovery) which is the primary, and follows it when another host is
	// promoted, holding the shard's new transactions while it has none.
	Role string
}

// Shard is one shard: a primary and its read replicas.
type Shard struct {
	Primary  Server   // "primary": a postgres:// URL
	Replicas []Server // "replicas": postgres:// URLs
}

// ShardedTable says how rows of a table are spread over the shards.
type ShardedTable struct {
	Table  string // "table": empty means every table that has Column
	Column string // "column": the shard key
	Type   string // "type": smallint, integer, bigint, text, varchar or uuid
	// Mapping is "mapping": "hash" (Postgres hash partitioning), "list" or "range".
	Mapping string
	// Values is "values", for the list mapping: shard index -> the key values stored on that shard.
	Values map[int][]string
	// Ranges is "ranges", for the range mapping. Integer keys compare as numbers, text and uuid keys
	// byte-wise (the C collation).
	Ranges []Range
}

// Range sends keys in [From, To) to shard Shard. An empty From or To is unbounded.
type Range struct {
	Shard    int    // "shard"
	From, To string // "from", "to"
}

// Sharding key types and mappings.
const (
	ModeTransaction = "transaction"
	ModeSession     = "session"

	AuthSCRAM = "scram-sha-256"
	AuthMD5   = "md5"
	AuthTrust = "trust"
	AuthCert  = "cert" // a TLS client certificate whose common name is the user's name (tls.client_ca)

	UnlistedReplicated = "replicated"
	UnlistedError      = "error"

	BalanceRoundRobin       = "round_robin"
	BalanceLeastOutstanding = "least_outstanding"

	RYWOff     = "off"
	RYWSession = "session"

	RoleFixed = "fixed"
	RoleAuto  = "auto"

	SplitOff                = "off"
	SplitReplicas           = "replicas"
	SplitReplicasAndPrimary = "replicas_and_primary"

	CrossShardAllow = "allow"
	CrossShardWarn  = "warn"
	CrossShardDeny  = "deny"

	LogText = "text"
	LogJSON = "json"

	TLSDisable    = "disable"
	TLSAllow      = "allow"
	TLSRequire    = "require"
	TLSVerifyCA   = "verify-ca"
	TLSVerifyFull = "verify-full"

	MappingHash  = "hash"
	MappingList  = "list"
	MappingRange = "range"
)

// DefaultAuthQuery is auth_query's default, PgBouncer's (pg_shadow needs a superuser; a SECURITY DEFINER function
// is the usual way around that).
const DefaultAuthQuery = "SELECT usename, passwd FROM pg_shadow WHERE usename = $1"

// DefaultTwoPhaseLog is two_phase_log when the file does not set it: next to the config file.
const DefaultTwoPhaseLog = "pgshard-2pc.log"

// defaults is the Config before the file is applied. Defaults of list entries (users, sharded tables) are
// set where they are decoded.
func defaults() *Config {
	return &Config{
		Listen:          "127.0.0.1:6432",
		ShutdownTimeout: 30 * time.Second,
		LogFormat:       LogText,
		AuthQuery:       DefaultAuthQuery,
		AuthCacheTTL:    time.Minute,
		TwoPhaseLog:     DefaultTwoPhaseLog,
		Limits: Limits{
			MaxMessageSize:           64 << 20,
			ClientStartupTimeout:     10 * time.Second,
			MaxPendingLogins:         1000,
			ClientOutboundBuffer:     8 << 20,
			ServerConnectTimeout:     5 * time.Second,
			ClientPreparedStatements: 10000,
			MaxIntermediateResult:    64 << 20,
		},
		Pool: Pool{
			Mode:                  ModeTransaction,
			Size:                  20,
			CheckoutTimeout:       5 * time.Second,
			IdleTimeout:           10 * time.Minute,
			ServerLifetime:        time.Hour,
			MaxClientConnections:  10000,
			MaxPreparedStatements: 1000,
			ServerReuse:           true,
			BanTime:               time.Minute,
			HealthCheckInterval:   30 * time.Second,
			ReplicaCheckInterval:  time.Second,
			MaxReplicaLag:         30 * time.Second,
			FailoverBufferTimeout: 10 * time.Second,
		},
		Admin: Admin{User: "admin"},
	}
}

// Load reads and parses the file at path. Its problems are reported as "<path> line N: ...".
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	c, err := Parse(data)
	if ve, ok := err.(*ValidationError); ok {
		ve.File = path
	}
	if err == nil {
		for _, p := range []*string{&c.TwoPhaseLog, &c.TLS.Cert, &c.TLS.Key, &c.TLS.ClientCA} {
			if *p != "" && !filepath.IsAbs(*p) {
				*p = filepath.Join(filepath.Dir(path), *p)
			}
		}
	}
	return c, err
}

// Parse decodes a config file, applies the defaults and validates the result. Every problem found is
// returned in one *ValidationError.
func Parse(data []byte) (*Config, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, &ValidationError{Problems: []Problem{syntaxProblem(err)}}
	}
	d := newDecoder()
	c := defaults()
	if doc.Kind == yaml.DocumentNode && len(doc.Content) > 0 {
		d.config(doc.Content[0], c)
	}
	validate(c, d)
	if len(d.problems) > 0 {
		// Decoding and validation each go in document order; merge them. Problems without a line
		// (something missing from the whole file) go last.
		sort.SliceStable(d.problems, func(i, j int) bool {
			a, b := d.problems[i].Line, d.problems[j].Line
			if a == 0 || b == 0 {
				return a != 0 && b == 0
			}
			return a < b
		})
		return nil, &ValidationError{Problems: d.problems}
	}
	return c, nil
}

// User returns the user called name, or nil.
func (c *Config) User(name string) *User {
	for i := range c.Users {
		if c.Users[i].Name == name {
			return &c.Users[i]
		}
	}
	return nil
}

// Database returns the database called name, or nil.
func (c *Config) Database(name string) *Database {
	for i := range c.Databases {
		if c.Databases[i].Name == name {
			return &c.Databases[i]
		}
	}
	return nil
}

// Problem is one thing wrong with a config file. Line is 0 when the problem has no place in the file
// (something required is missing altogether).
type Problem struct {
	Line int
	Msg  string
}

// ValidationError lists every problem found in a config file.
type ValidationError struct {
	File     string // set by Load; empty for Parse
	Problems []Problem
}

// Error gives one problem per line, each as "<file> line N: msg".
func (e *ValidationError) Error() string {
	var b strings.Builder
	for i, p := range e.Problems {
		if i > 0 {
			b.WriteByte('\n')
		}
		switch {
		case e.File != "" && p.Line > 0:
			fmt.Fprintf(&b, "%s line %d: ", e.File, p.Line)
		case e.File != "":
			fmt.Fprintf(&b, "%s: ", e.File)
		case p.Line > 0:
			fmt.Fprintf(&b, "line %d: ", p.Line)
		}
		b.WriteString(p.Msg)
	}
	return b.String()
}
