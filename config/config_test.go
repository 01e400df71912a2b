package config

import (
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// tail completes a config whose own lines come first, so line numbers in test cases count from its top.
const tail = `
users:
  - name: app
    password: secret
databases:
  - name: app
    shards:
      - primary: postgres://127.0.0.1/app
`

var (
	b64      = base64.StdEncoding.EncodeToString
	verifier = "SCRAM-SHA-256$4096:" + b64([]byte("0123456789abcdef")) + "$" +
		b64([]byte(strings.Repeat("s", 32))) + ":" + b64([]byte(strings.Repeat("k", 32)))
	md5Hash = "md5" + strings.Repeat("0a", 16)
)

func mustParse(t *testing.T, src string) *Config {
	t.Helper()
	c, err := Parse([]byte(src))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return c
}

// problems returns the lines of Parse's error, failing if there is none or it is not a *ValidationError.
func problems(t *testing.T, src string) []string {
	t.Helper()
	c, err := Parse([]byte(src))
	if err == nil {
		t.Fatalf("Parse succeeded, want an error; got %+v", c)
	}
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("error is %T, want *ValidationError: %v", err, err)
	}
	if c != nil {
		t.Errorf("Parse returned a Config along with an error")
	}
	return strings.Split(err.Error(), "\n")
}

func TestDefaults(t *testing.T) {
	c := mustParse(t, tail)
	primary, err := ParseServer("postgres://127.0.0.1/app")
	if err != nil {
		t.Fatal(err)
	}
	want := &Config{
		Listen:          "127.0.0.1:6432",
		MetricsListen:   "",
		ShutdownTimeout: 30 * time.Second,
		LogFormat:       LogText,
		AuthQuery:       DefaultAuthQuery,
		AuthCacheTTL:    time.Minute,
		TwoPhaseLog:     "pgshard-2pc.log",
		Limits: Limits{
			MaxMessageSize:           67108864,
			ClientStartupTimeout:     10 * time.Second,
			MaxPendingLogins:         1000,
			ClientOutboundBuffer:     8 << 20,
			ServerConnectTimeout:     5 * time.Second,
			ClientPreparedStatements: 10000,
			MaxIntermediateResult:    64 << 20,
		},
		Pool: Pool{
			Mode:                  "transaction",
			Size:                  20,
			MinIdle:               0,
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
		TLS:   TLS{Mode: TLSDisable},
		Admin: Admin{User: "admin"},
		Users: []User{{Name: "app", Password: "secret", AuthMethod: "scram-sha-256", ServerUser: "app", ServerPassword: "secret"}},
		Databases: []Database{{
			Name:           "app",
			Shards:         []Shard{{Primary: primary}},
			UnlistedTables: UnlistedReplicated, CrossShard: CrossShardAllow, ReadWriteSplit: SplitReplicas, ReadYourWrites: RYWOff,
			LoadBalancing: BalanceRoundRobin, Role: RoleFixed,
		}},
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("defaults:\n got %+v\nwant %+v", c, want)
	}
	if primary.Host != "127.0.0.1" || primary.Port != 5432 || primary.Database != "app" {
		t.Errorf("primary = %+v", primary)
	}
}

func TestNullMeansDefault(t *testing.T) {
	c := mustParse(t, "pool:\n  size:\nlimits:\n"+tail)
	if c.Pool.Size != 20 {
		t.Errorf("pool.size = %d, want the default 20", c.Pool.Size)
	}
}

func TestExampleFile(t *testing.T) {
	c, err := Load("../config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != "127.0.0.1:6432" || c.MetricsListen != "127.0.0.1:9930" {
		t.Errorf("listen = %q, metrics_listen = %q", c.Listen, c.MetricsListen)
	}
	if c.Pool.Mode != ModeTransaction || c.Pool.Size != 20 {
		t.Errorf("pool = %+v", c.Pool)
	}
	if c.Admin != (Admin{User: "admin", Password: "change-me"}) {
		t.Errorf("admin = %+v", c.Admin)
	}
	u := c.User("app")
	if u == nil || *u != (User{Name: "app", Password: "secret", AuthMethod: AuthSCRAM, ServerUser: "app", ServerPassword: "secret"}) {
		t.Errorf("user app = %+v", u)
	}
	db := c.Database("app")
	if db == nil {
		t.Fatal("no database app")
	}
	var addrs []string
	for _, s := range db.Shards {
		_, a := s.Primary.Addr()
		addrs = append(addrs, a+"/"+s.Primary.Database)
	}
	if want := []string{"127.0.0.1:55432/app_0", "127.0.0.1:55433/app_1"}; !reflect.DeepEqual(addrs, want) {
		t.Errorf("shards = %v, want %v", addrs, want)
	}
	wantTables := []ShardedTable{{Table: "accounts", Column: "aid", Type: "bigint", Mapping: MappingHash}}
	if !reflect.DeepEqual(db.ShardedTables, wantTables) {
		t.Errorf("sharded_tables = %+v", db.ShardedTables)
	}
	if !reflect.DeepEqual(db.ReplicatedTables, []string{"branches"}) || db.TwoPhaseCommit || db.UnlistedTables != UnlistedReplicated {
		t.Errorf("replicated_tables = %v, two_phase_commit = %v", db.ReplicatedTables, db.TwoPhaseCommit)
	}
	if abs, _ := filepath.Abs(".."); c.TwoPhaseLog != filepath.Join("..", "pgshard-2pc.log") && c.TwoPhaseLog != filepath.Join(abs, "pgshard-2pc.log") {
		t.Errorf("two_phase_log = %q, want pgshard-2pc.log next to the config file", c.TwoPhaseLog)
	}
}

func TestTwoPhaseLog(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct{ line, want string }{
		{"", filepath.Join(dir, "pgshard-2pc.log")},
		{"two_phase_log: decisions/2pc.log\n", filepath.Join(dir, "decisions", "2pc.log")},
		{"two_phase_log: /var/lib/pgshard/2pc.log\n", "/var/lib/pgshard/2pc.log"},
	} {
		path := filepath.Join(dir, "pgshard.yaml")
		if err := os.WriteFile(path, []byte(tt.line+tail), 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := Load(path)
		if err != nil {
			t.Fatal(err)
		}
		if c.TwoPhaseLog != tt.want {
			t.Errorf("%q: two_phase_log = %q, want %q", tt.line, c.TwoPhaseLog, tt.want)
		}
	}
	for _, bad := range []string{`""`, `"logs/"`} {
		got := strings.Join(problems(t, "two_phase_log: "+bad+"\n"+tail), "\n")
		if want := "line 1: two_phase_log: must name a file, got " + bad; got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	}
	if got := strings.Join(problems(t, "two_phase_log: [a]\n"+tail), "\n"); got != "line 1: two_phase_log: expected a string, got a list" {
		t.Errorf("list: got %q", got)
	}
}

func TestUnlistedTables(t *testing.T) {
	c := mustParse(t, tail)
	if got := c.Databases[0].UnlistedTables; got != UnlistedReplicated {
		t.Errorf("default unlisted_tables = %q, want %q", got, UnlistedReplicated)
	}
	c = mustParse(t, tail+"    unlisted_tables: error\n")
	if got := c.Databases[0].UnlistedTables; got != UnlistedError {
		t.Errorf("unlisted_tables = %q, want %q", got, UnlistedError)
	}
	if got := c.Databases[0].CrossShard; got != CrossShardAllow {
		t.Errorf("default cross_shard = %q, want %q", got, CrossShardAllow)
	}
	c = mustParse(t, tail+"    cross_shard: deny\n")
	if got := c.Databases[0].CrossShard; got != CrossShardDeny {
		t.Errorf("cross_shard = %q, want %q", got, CrossShardDeny)
	}
}

func TestLookup(t *testing.T) {
	c := mustParse(t, tail)
	if c.User("app") == nil || c.User("nobody") != nil {
		t.Errorf("User lookups wrong")
	}
	if c.Database("app") == nil || c.Database("nothing") != nil {
		t.Errorf("Database lookups wrong")
	}
	c.User("app").Password = "changed" // a pointer into the Config, not a copy
	if c.Users[0].Password != "changed" {
		t.Errorf("User returned a copy")
	}
}

func TestUnknownKeys(t *testing.T) {
	tests := []struct{ name, src, want string }{
		{"top", "listen: x:1\nlisten_port: 1\n" + tail, `line 2: unknown key "listen_port"`},
		{"pool", "pool:\n  size: 3\n  sise: 4\n" + tail, `line 3: unknown key "pool.sise"`},
		{"limits", "limits:\n\n  max_msg: 1\n" + tail, `line 3: unknown key "limits.max_msg"`},
		{"user", `users:
  - name: a
    password: p
  - name: b
    pasword: p
databases:
  - name: d
    shards: [{primary: "postgres://h/d"}]
`, `line 4: users[1].password: is required with auth_method scram-sha-256 (the cleartext password or a SCRAM-SHA-256 verifier)
line 5: unknown key "users[1].pasword"`},
		{"shard", `users: [{name: a, password: p}]
databases:
  - name: d
    shards:
      - primary: postgres://h/d0
      - primary: postgres://h/d1
        replica: postgres://h2/d1
`, `line 7: unknown key "databases[0].shards[1].replica"`},
		{"range", `users: [{name: a, password: p}]
databases:
  - name: d
    shards: [{primary: "postgres://h/d0"}]
    sharded_tables:
      - column: id
        type: bigint
        mapping: range
        ranges:
          - shard: 0
            from: 1
            until: 5
`, `line 12: unknown key "databases[0].sharded_tables[0].ranges[0].until"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := strings.Join(problems(t, tt.src), "\n")
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestProblems(t *testing.T) {
	// db wraps sharded_tables entries (given at an indent of 6) in a database with two shards; its own
	// lines are 1 to 7, so the entries start at line 8.
	db := func(entries string) string {
		return `users: [{name: a, password: p}]
databases:
  - name: d
    shards:
      - primary: postgres://h/d0
      - primary: postgres://h/d1
    sharded_tables:
` + entries
	}
	tests := []struct {
		name string
		src  string
		want []string
	}{
		{"yaml syntax", "pool:\n  size: 1\n mode: x\n" + tail, []string{"line 2: invalid YAML: did not find expected key"}},
		{"top level not a mapping", "- a\n", []string{
			`line 1: the file: expected a mapping, got a list`,
			"users: at least one user is required",
			"databases: at least one database is required",
		}},
		{"empty file", "", []string{
			"users: at least one user is required",
			"databases: at least one database is required",
		}},
		{"only comments", "# nothing yet\n", []string{
			"users: at least one user is required",
			"databases: at least one database is required",
		}},
		{"empty lists", "users: []\ndatabases: []\n", []string{
			"line 1: users: at least one user is required",
			"line 2: databases: at least one database is required",
		}},
		{"tls mode", "tls:\n  mode: verify\n" + tail, []string{`line 2: tls.mode: must be "disable", "allow", "require", "verify-ca" or "verify-full", got "verify"`}},
		{"tls require without a certificate", "tls:\n  mode: require\n" + tail, []string{"line 2: tls.mode: require needs tls.cert and tls.key"}},
		{"tls cert without key", "tls:\n  cert: a.pem\n" + tail, []string{"line 1: tls: cert and key go together: set both or neither"}},
		{"tls verify-full without client_ca", "tls:\n  mode: verify-full\n  cert: a.pem\n  key: a.key\n" + tail, []string{"line 2: tls.mode: verify-full needs tls.client_ca (the CAs of the client certificates)"}},
		{"duplicate key", "pool:\n  size: 1\n  size: 2\n" + tail, []string{`line 3: duplicate key "pool.size" (first at line 2)`}},
		{"pool", `pool:
  mode: statement
  size: 0
  min_idle: -1
  checkout_timeout: 0s
  idle_timeout: -1s
  server_lifetime: -1h
  max_client_connections: 0
` + tail, []string{
			`line 2: pool.mode: must be "transaction" or "session", got "statement"`,
			"line 3: pool.size: must be at least 1, got 0",
			"line 4: pool.min_idle: must be at least 0, got -1",
			"line 5: pool.checkout_timeout: must be more than 0, got 0s",
			"line 6: pool.idle_timeout: must not be negative, got -1s",
			"line 7: pool.server_lifetime: must not be negative, got -1h0m0s",
			"line 8: pool.max_client_connections: must be at least 1, got 0",
		}},
		{"server_reuse off in transaction mode", "pool:\n  mode: transaction\n  server_reuse: false\n" + tail, []string{
			"line 3: pool.server_reuse: false needs pool.mode session (in transaction mode clients share server connections by design)",
		}},
		{"min_idle above size", "pool:\n  size: 5\n  min_idle: 6\n" + tail, []string{
			"line 3: pool.min_idle: 6 is more than pool.size (5)",
		}},
		{"min_idle above default size", "pool:\n  min_idle: 21\n" + tail, []string{
			"line 2: pool.min_idle: 21 is more than pool.size (20)",
		}},
		{"limits", `limits:
  max_message_size: 0
  client_startup_timeout: 0s
  client_outbound_buffer: -5
  server_connect_timeout: -1s
shutdown_timeout: -2s
` + tail, []string{
			"line 2: limits.max_message_size: must be at least 1, got 0",
			"line 3: limits.client_startup_timeout: must be more than 0, got 0s",
			"line 4: limits.client_outbound_buffer: must be at least 1, got -5",
			"line 5: limits.server_connect_timeout: must be more than 0, got -1s",
			"line 6: shutdown_timeout: must not be negative, got -2s",
		}},
		{"listen addresses", "listen: localhost\nmetrics_listen: /tmp\n" + tail, []string{
			`line 1: listen: "localhost" is not host:port or an absolute unix socket directory`,
			`line 2: metrics_listen: "/tmp" is not host:port`,
		}},
		{"type errors", `pool:
  size: "20"
  mode: [transaction]
  checkout_timeout: 5
  idle_timeout: soon
admin: x
shutdown_timeout: {a: 1}
` + tail, []string{
			"line 2: pool.size: expected an integer, got a string",
			"line 3: pool.mode: expected a string, got a list",
			`line 4: pool.checkout_timeout: invalid duration "5" (use a Go duration such as "5s", "10m" or "1h30m")`,
			`line 5: pool.idle_timeout: invalid duration "soon" (use a Go duration such as "5s", "10m" or "1h30m")`,
			"line 6: admin: expected a mapping, got a string",
			"line 7: shutdown_timeout: expected a duration, got a mapping",
		}},
		{"users", `admin:
  user: ""
users:
  - name: a
    password: p
  - name: a
    password: p
  - password: p
  - name: b
    auth_method: password
  - name: c
  - name: d
    auth_method: md5
  - name: e
    password: ` + md5Hash + `
  - name: f
    auth_method: md5
    password: "` + verifier + `"
  - name: g
    password: "SCRAM-SHA-256$4096:abc"
  - name: h
    auth_method: trust
  - name: i
    auth_method: trust
    password: "SCRAM-SHA-256$broken"
databases:
  - name: x
    shards: [{primary: "postgres://h/x"}]
`, []string{
			"line 2: admin.user: must not be empty",
			`line 6: users[1].name: user "a" is already defined at users[0].name`,
			"line 8: users[2].name: is required",
			`line 10: users[3].auth_method: must be "scram-sha-256", "md5", "cert" or "trust", got "password"`,
			"line 11: users[4].password: is required with auth_method scram-sha-256 (the cleartext password or a SCRAM-SHA-256 verifier)",
			"line 12: users[5].password: is required with auth_method md5 (the cleartext password or an md5 hash)",
			"line 15: users[6].password: is an md5 hash, which cannot check a scram-sha-256 login: give the cleartext password or a SCRAM-SHA-256 verifier",
			"line 18: users[7].password: is a SCRAM-SHA-256 verifier, which cannot check an md5 login: give the cleartext password or an md5 hash",
			"line 20: users[8].password: is not a valid SCRAM-SHA-256 verifier (SCRAM-SHA-256$<iterations>:<salt>$<storedkey>:<serverkey>)",
		}},
		{"databases", `users: [{name: a, password: p}]
databases:
  - name: pgshard
    shards: [{primary: "postgres://h/x"}]
  - name: d
    shards: []
  - name: d
  - shards:
      - replicas: ["postgres://h/r"]
      - primary: "mysql://h/x"
        replicas: ["postgres://h"]
`, []string{
			`line 3: databases[0].name: "pgshard" is reserved for the admin database`,
			"line 6: databases[1].shards: at least one shard is required",
			`line 7: databases[2].name: database "d" is already defined at databases[1].name`,
			"line 7: databases[2].shards: at least one shard is required",
			"line 8: databases[3].name: is required",
			"line 9: databases[3].shards[0].primary: is required (a postgres:// URL)",
			`line 10: databases[3].shards[1].primary: scheme "mysql" is not postgres:// or postgresql://`,
			"line 11: databases[3].shards[1].replicas[0]: URL has no database name (postgres://host[:port]/dbname)",
		}},
		{"sharded table fields", db(`      - table: t
      - table: u
        column: c
        type: int
        mapping: modulo
      - column: k
        type: text
      - column: k
        type: uuid
      - table: u
        column: other
        type: bigint
`), []string{
			"line 8: databases[0].sharded_tables[0].column: is required (the shard key column)",
			"line 8: databases[0].sharded_tables[0].type: is required (smallint, integer, bigint, text, varchar or uuid)",
			`line 11: databases[0].sharded_tables[1].type: must be smallint, integer, bigint, text, varchar or uuid, got "int"`,
			`line 12: databases[0].sharded_tables[1].mapping: must be "hash", "list" or "range", got "modulo"`,
			`line 15: databases[0].sharded_tables[3]: column "k" (for every table) is already listed at databases[0].sharded_tables[2]`,
			`line 17: databases[0].sharded_tables[4]: table "u" is already listed at databases[0].sharded_tables[1]`,
		}},
		{"mapping mismatches", db(`      - column: a
        type: bigint
        values: {0: [1]}
        ranges: [{shard: 0}]
      - column: b
        type: bigint
        mapping: list
        ranges: [{shard: 0}]
      - column: c
        type: bigint
        mapping: range
        values: {0: [1]}
      - column: d
        type: bigint
        mapping: list
      - column: e
        type: bigint
        mapping: range
`), []string{
			"line 10: databases[0].sharded_tables[0].values: is only for mapping: list",
			"line 11: databases[0].sharded_tables[0].ranges: is only for mapping: range",
			"line 12: databases[0].sharded_tables[1].values: is required with mapping: list ({shard index: [values]})",
			"line 15: databases[0].sharded_tables[1].ranges: is only for mapping: range",
			"line 16: databases[0].sharded_tables[2].ranges: is required with mapping: range ([{shard: 0, from: ..., to: ...}])",
			"line 19: databases[0].sharded_tables[2].values: is only for mapping: list",
			"line 20: databases[0].sharded_tables[3].values: is required with mapping: list ({shard index: [values]})",
			"line 23: databases[0].sharded_tables[4].ranges: is required with mapping: range ([{shard: 0, from: ..., to: ...}])",
		}},
		{"list values", db(`      - column: region
        type: smallint
        mapping: list
        values:
          0: [1, 2]
          1: [3, "02", 40000]
          2: [5]
          -1: []
      - column: id
        type: uuid
        mapping: list
        values:
          0: ["A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11"]
          1: [a0eebc999c0b4ef8bb6d6bb9bd380a11, nope]
          x: [1]
`), []string{
			`line 13: databases[0].sharded_tables[0].values[1][1]: value "02" is already listed at databases[0].sharded_tables[0].values[0][1]`,
			`line 13: databases[0].sharded_tables[0].values[1][2]: value "40000" is not a valid smallint`,
			`line 14: databases[0].sharded_tables[0].values[2]: shard 2 does not exist (database "d" has 2 shards: 0 to 1)`,
			`line 15: databases[0].sharded_tables[0].values[-1]: shard -1 does not exist (database "d" has 2 shards: 0 to 1)`,
			`line 21: databases[0].sharded_tables[1].values[1][0]: value "a0eebc999c0b4ef8bb6d6bb9bd380a11" is already listed at databases[0].sharded_tables[1].values[0][0]`,
			`line 21: databases[0].sharded_tables[1].values[1][1]: value "nope" is not a valid uuid`,
			`line 22: databases[0].sharded_tables[1].values: key "x" is not a shard index (0, 1, ...)`,
		}},
		{"ranges", db(`      - column: id
        type: integer
        mapping: range
        ranges:
          - {shard: 0, to: "100"}
          - {shard: 1, from: "100", to: "50"}
          - {shard: 1, from: "99", to: "200"}
          - {shard: 2, from: "200"}
          - {from: "300"}
          - {shard: 1, from: "x"}
      - column: name
        type: text
        mapping: range
        ranges:
          - {shard: 0, to: "m"}
          - {shard: 1, from: "m"}
`), []string{
			`line 13: databases[0].sharded_tables[0].ranges[1]: from "100" must be below to "50" (from is inclusive, to exclusive)`,
			"line 14: databases[0].sharded_tables[0].ranges[2]: overlaps databases[0].sharded_tables[0].ranges[0]",
			`line 15: databases[0].sharded_tables[0].ranges[3].shard: shard 2 does not exist (database "d" has 2 shards: 0 to 1)`,
			"line 16: databases[0].sharded_tables[0].ranges[4].shard: is required (the shard index the range goes to)",
			"line 16: databases[0].sharded_tables[0].ranges[4]: overlaps databases[0].sharded_tables[0].ranges[3]",
			`line 17: databases[0].sharded_tables[0].ranges[5].from: value "x" is not a valid integer`,
		}},
		{"replicated tables", db(`      - table: accounts
        column: aid
        type: bigint
    replicated_tables: [branches, "", branches, accounts]
`), []string{
			"line 11: databases[0].replicated_tables[1]: is required (a table name)",
			`line 11: databases[0].replicated_tables[2]: table "branches" is already listed at databases[0].replicated_tables[0]`,
			`line 11: databases[0].replicated_tables[3]: table "accounts" is also sharded (databases[0].sharded_tables[0])`,
		}},
		{"unlisted tables", db("      - {column: a, type: text}\n    unlisted_tables: replicate\n"), []string{
			`line 9: databases[0].unlisted_tables: must be "replicated" or "error", got "replicate"`,
		}},
		{"cross shard", db("      - {column: a, type: text}\n    cross_shard: never\n"), []string{
			`line 9: databases[0].cross_shard: must be "allow", "warn" or "deny", got "never"`,
		}},
		{"replicas", `users: [{name: a, password: p}]
databases:
  - name: d
    read_write_split: sometimes
    read_your_writes: always
    load_balancing: random
    role: primary
    shards:
      - primary: postgres://h/d0
        replicas: [{url: postgres://r/d0, weight: 0}, {url: postgres://r2/d0, weigth: 2}]
`, []string{
			`line 4: databases[0].read_write_split: must be "off", "replicas" or "replicas_and_primary", got "sometimes"`,
			`line 5: databases[0].read_your_writes: must be "off" or "session", got "always"`,
			`line 6: databases[0].load_balancing: must be "round_robin" or "least_outstanding", got "random"`,
			`line 7: databases[0].role: must be "fixed" or "auto", got "primary"`,
			`line 10: unknown key "databases[0].shards[0].replicas[1].weigth"`,
			"line 10: databases[0].shards[0].replicas[0].weight: must be at least 1, got 0",
		}},
		{"bool", db("      - {column: a, type: text}\n    two_phase_commit: yes\n"), []string{
			"line 9: databases[0].two_phase_commit: expected true or false, got a string",
		}},
		{"merge key", "pool:\n  <<: {size: 1}\n" + tail, []string{"line 2: pool: merge keys (<<) are not supported"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := problems(t, tt.src)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(tt.want, "\n  "))
			}
		})
	}
}

func TestLoadNamesTheFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pgshard.yaml")
	if err := os.WriteFile(path, []byte("pool:\n  sise: 1\n"+tail+"unknown: 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path)
	want := path + ` line 2: unknown key "pool.sise"` + "\n" + path + ` line 11: unknown key "unknown"`
	if err == nil || err.Error() != want {
		t.Errorf("got %v, want %s", err, want)
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing.yaml")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: got %v, want a not-exist error", err)
	}
}

func TestValidationErrorWithoutLines(t *testing.T) {
	e := &ValidationError{File: "c.yaml", Problems: []Problem{{Line: 3, Msg: "a"}, {Msg: "b"}}}
	if got, want := e.Error(), "c.yaml line 3: a\nc.yaml: b"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestParseServer(t *testing.T) {
	tests := []struct {
		raw           string
		want          Server
		network, addr string
	}{
		{"postgres://127.0.0.1:55432/app_0",
			Server{Raw: "postgres://127.0.0.1:55432/app_0", Host: "127.0.0.1", Port: 55432, Database: "app_0", SSLMode: "prefer"},
			"tcp", "127.0.0.1:55432"},
		{"postgresql://db.example.com/app",
			Server{Raw: "postgresql://db.example.com/app", Host: "db.example.com", Port: 5432, Database: "app", SSLMode: "prefer"},
			"tcp", "db.example.com:5432"},
		{"postgres://u:p%40ss@[::1]:6000/app",
			Server{Raw: "postgres://u:xxxxx@[::1]:6000/app", Host: "::1", Port: 6000, Database: "app", User: "u", Password: "p@ss", SSLMode: "prefer"},
			"tcp", "[::1]:6000"},
		{"postgres://u@h/app",
			Server{Raw: "postgres://u@h/app", Host: "h", Port: 5432, Database: "app", User: "u", SSLMode: "prefer"},
			"tcp", "h:5432"},
		{"postgres:///app?host=/var/run/postgresql",
			Server{Raw: "postgres:///app?host=/var/run/postgresql", Host: "/var/run/postgresql", Port: 5432, Database: "app", SSLMode: "prefer"},
			"unix", "/var/run/postgresql/.s.PGSQL.5432"},
		{"postgres://u:pw@/app?host=%2Ftmp&port=55433",
			Server{Raw: "postgres://u:xxxxx@/app?host=%2Ftmp&port=55433", Host: "/tmp", Port: 55433, Database: "app", User: "u", Password: "pw", SSLMode: "prefer"},
			"unix", "/tmp/.s.PGSQL.55433"},
		{"postgres://h/app?sslmode=verify-full&sslrootcert=/etc/ca.pem",
			Server{Raw: "postgres://h/app?sslmode=verify-full&sslrootcert=/etc/ca.pem", Host: "h", Port: 5432, Database: "app",
				SSLMode: "verify-full", SSLRootCert: "/etc/ca.pem"},
			"tcp", "h:5432"},
	}
	for _, tt := range tests {
		got, err := ParseServer(tt.raw)
		if err != nil {
			t.Errorf("%s: %v", tt.raw, err)
			continue
		}
		if got != tt.want {
			t.Errorf("%s:\n got %+v\nwant %+v", tt.raw, got, tt.want)
		}
		if n, a := got.Addr(); n != tt.network || a != tt.addr {
			t.Errorf("%s: Addr() = %s %s, want %s %s", tt.raw, n, a, tt.network, tt.addr)
		}
	}
}

func TestParseServerErrors(t *testing.T) {
	tests := []struct{ raw, want string }{
		{"127.0.0.1:5432/app", "not a URL: want postgres://host[:port]/dbname"},
		{"host/app", "not a URL: want postgres://host[:port]/dbname"},
		{"http://h/app", `scheme "http" is not postgres:// or postgresql://`},
		{"postgres:h/app", "not a URL: want postgres://host[:port]/dbname"},
		{"postgres://h", "URL has no database name (postgres://host[:port]/dbname)"},
		{"postgres://h/", "URL has no database name (postgres://host[:port]/dbname)"},
		{"postgres:///app", "URL has no host (give host[:port], or ?host=/socket/dir for a unix socket)"},
		{"postgres://h:0/app", "port must be a number from 1 to 65535"},
		{"postgres://h:65536/app", "port must be a number from 1 to 65535"},
		{"postgres://app:hunter2/app", "port must be a number from 1 to 65535"},
		{"postgres:///app?host=/tmp&port=x", "port must be a number from 1 to 65535"},
		{"postgres://h:5432/app?port=5433", "port is given both after the host and as ?port="},
		{"postgres://h/app?host=/tmp", "host is given both before the path and as ?host="},
		{"postgres://h/app?sslcert=c.pem", `URL parameter "sslcert" is not supported (host, port, sslmode and sslrootcert are)`},
		{"postgres://h/app?sslmode=on", "sslmode must be one of disable, allow, prefer, require, verify-ca, verify-full"},
		{"postgres:///app?host=/a&host=/b", `URL parameter "host" is given 2 times`},
		{"postgres://a,b/app", "several hosts in one URL are not supported"},
		{"postgres://u:hunter2%zz@h/app", "URL has an invalid %-escape"},
		{"postgres://h/app#x", "URL has a #fragment"},
	}
	for _, tt := range tests {
		_, err := ParseServer(tt.raw)
		if err == nil || err.Error() != tt.want {
			t.Errorf("%s: got %v, want %s", tt.raw, err, tt.want)
		}
	}
}

func TestPasswordsStayOutOfErrors(t *testing.T) {
	src := `admin:
  password: [hunter2]
users:
  - name: a
    password: hunter2
    server_password: {x: hunter2}
  - name: b
    password: "SCRAM-SHA-256$hunter2"
databases:
  - name: d
    shards:
      - primary: "postgres://u:hunter2@h:hunter2/d"
      - primary: "postgres://u:hunter2/d"
      - primary: "postgres://u:hunter2%@h/d"
      - primary: "postgres://u:hunter2@h/d?password=hunter2"
    replicated_tables: "postgres://u:hunter2@h/d"
`
	got := problems(t, src)
	if len(got) != 8 {
		t.Errorf("want 8 problems, got %d:\n%s", len(got), strings.Join(got, "\n"))
	}
	for _, line := range got {
		if strings.Contains(line, "hunter2") {
			t.Errorf("password in error: %s", line)
		}
	}
}

func TestServerCredentialDefaults(t *testing.T) {
	c := mustParse(t, `users:
  - {name: clear, password: pw}
  - {name: scram, password: "`+verifier+`"}
  - {name: hashed, auth_method: md5, password: `+md5Hash+`}
  - {name: own, password: pw, server_user: role, server_password: other}
  - {name: none, password: pw, server_password: ""}
  - {name: open, auth_method: trust}
databases:
  - {name: d, shards: [{primary: "postgres://h/d"}]}
`)
	want := map[string][2]string{
		"clear":  {"clear", "pw"},
		"scram":  {"scram", ""},
		"hashed": {"hashed", ""},
		"own":    {"role", "other"},
		"none":   {"none", ""},
		"open":   {"open", ""},
	}
	for name, w := range want {
		u := c.User(name)
		if u == nil || u.ServerUser != w[0] || u.ServerPassword != w[1] {
			t.Errorf("user %s = %+v, want server_user %q server_password %q", name, u, w[0], w[1])
		}
	}
}

func TestSizes(t *testing.T) {
	good := map[string]int{
		"1024": 1024, "100B": 100, "512kB": 512 << 10, "512KB": 512 << 10, "4KiB": 4 << 10,
		"64MB": 64 << 20, "8MiB": 8 << 20, "8 mib": 8 << 20, "1GB": 1 << 30, "2GiB": 2 << 30,
	}
	for s, want := range good {
		if got, err := parseSize(s); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", s, got, err, want)
		}
	}
	for _, s := range []string{"", "MB", "1.5MB", "-1MB", "64 MBs", "64M", "1TB", "99999999999999999999"} {
		if got, err := parseSize(s); err == nil {
			t.Errorf("parseSize(%q) = %d, want an error", s, got)
		}
	}
	c := mustParse(t, "limits:\n  max_message_size: 1048576\n  client_outbound_buffer: 512kB\n"+tail)
	if c.Limits.MaxMessageSize != 1<<20 || c.Limits.ClientOutboundBuffer != 512<<10 {
		t.Errorf("limits = %+v", c.Limits)
	}
	got := problems(t, "limits:\n  max_message_size: 64 MBs\n  client_outbound_buffer: [1]\n"+tail)
	want := []string{
		`line 2: limits.max_message_size: invalid size "64 MBs" (use bytes, or a number with kB, MB or GB, e.g. "64MB")`,
		"line 3: limits.client_outbound_buffer: expected a size, got a list",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestDurations(t *testing.T) {
	c := mustParse(t, `shutdown_timeout: 1m30s
limits:
  client_startup_timeout: 1500ms
pool:
  idle_timeout: 0
  server_lifetime: 0s
  checkout_timeout: 2h
`+tail)
	if c.ShutdownTimeout != 90*time.Second || c.Limits.ClientStartupTimeout != 1500*time.Millisecond ||
		c.Pool.IdleTimeout != 0 || c.Pool.ServerLifetime != 0 || c.Pool.CheckoutTimeout != 2*time.Hour {
		t.Errorf("got %v %v %+v", c.ShutdownTimeout, c.Limits.ClientStartupTimeout, c.Pool)
	}
	got := problems(t, "shutdown_timeout: 30\n"+tail)
	want := `line 1: shutdown_timeout: invalid duration "30" (use a Go duration such as "5s", "10m" or "1h30m")`
	if len(got) != 1 || got[0] != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestShardingAccepted(t *testing.T) {
	c := mustParse(t, `users: [{name: a, password: p}]
databases:
  - name: d
    shards:
      - primary: postgres://h/d0
        replicas: [postgres://r1/d0, {url: postgres://r2/d0, weight: 3}]
      - primary: postgres://h/d1
    role: auto
    sharded_tables:
      - table: events
        column: region
        type: text
        mapping: list
        values: {0: ["eu", "uk"], 1: [us]}
      - column: order_id
        type: bigint
        mapping: range
        ranges:
          - {shard: 1, from: "1000"}
          - {shard: 0, to: 1000}
    two_phase_commit: true
  - name: plain
    shards: [{primary: postgres://h/plain}, {primary: postgres://h/plain2}]
`)
	db := c.Database("d")
	if r := db.Shards[0].Replicas; len(r) != 2 || r[1].Host != "r2" || r[0].Weight != 1 || r[1].Weight != 3 || !db.TwoPhaseCommit || db.Role != RoleAuto {
		t.Errorf("database d = %+v", db)
	}
	if want := map[int][]string{0: {"eu", "uk"}, 1: {"us"}}; !reflect.DeepEqual(db.ShardedTables[0].Values, want) {
		t.Errorf("values = %v, want %v", db.ShardedTables[0].Values, want)
	}
	if want := []Range{{Shard: 1, From: "1000"}, {Shard: 0, To: "1000"}}; !reflect.DeepEqual(db.ShardedTables[1].Ranges, want) {
		t.Errorf("ranges = %+v, want %+v", db.ShardedTables[1].Ranges, want)
	}
}

func TestSCRAMVerifier(t *testing.T) {
	v, ok := ParseSCRAMVerifier(verifier)
	if !ok || v.Iterations != 4096 || string(v.Salt) != "0123456789abcdef" || len(v.StoredKey) != 32 || len(v.ServerKey) != 32 {
		t.Errorf("ParseSCRAMVerifier = %+v, %v", v, ok)
	}
	key := b64([]byte(strings.Repeat("k", 32)))
	for _, bad := range []string{
		"SCRAM-SHA-256$4096:c2FsdA==$" + key,                // one key
		"SCRAM-SHA-256$0:c2FsdA==$" + key + ":" + key,       // no iterations
		"SCRAM-SHA-256$4096:$" + key + ":" + key,            // no salt
		"SCRAM-SHA-256$4096:c2FsdA==$c2hvcnQ=:" + key,       // short key
		"SCRAM-SHA-1$4096:c2FsdA==$" + key + ":" + key,      // other hash
		"SCRAM-SHA-256$4096:not base64!$" + key + ":" + key, // bad base64
	} {
		if _, ok := ParseSCRAMVerifier(bad); ok {
			t.Errorf("ParseSCRAMVerifier(%q) accepted it", bad)
		}
	}
	if !IsMD5Hash(md5Hash) || IsMD5Hash("md5"+strings.Repeat("A", 32)) || IsMD5Hash("md5abc") {
		t.Errorf("IsMD5Hash wrong")
	}
}
