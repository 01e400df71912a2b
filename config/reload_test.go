package config

import (
	"slices"
	"testing"
)

const reloadBase = `
listen: 127.0.0.1:6432
pool:
  size: 10
users:
  - name: app
    password: secret
  - name: ro
    password: secret
    server_user: reader
databases:
  - name: app
    shards:
      - primary: postgres://127.0.0.1/app_0
    sharded_tables:
      - table: accounts
        column: aid
        type: bigint
    replicated_tables: [branches]
  - name: other
    shards:
      - primary: postgres://127.0.0.1/other
`

func TestCompareNothing(t *testing.T) {
	a, b := mustParse(t, reloadBase), mustParse(t, reloadBase)
	ch := Compare(a, b)
	if !ch.None() {
		t.Fatalf("the same file changes something: %+v", ch)
	}
}

func TestCompare(t *testing.T) {
	a := mustParse(t, reloadBase)
	b := mustParse(t, `
listen: 127.0.0.1:7432
event_loops: 2
pool:
  size: 10
  checkout_timeout: 1s
admin:
  password: new
users:
  - name: app
    password: changed
  - name: ro
    password: secret
    server_user: writer
  - name: new
    password: x
databases:
  - name: app
    shards:
      - primary: postgres://127.0.0.1/app_0
      - primary: postgres://127.0.0.1/app_1
    sharded_tables:
      - table: accounts
        column: aid
        type: bigint
    replicated_tables: [branches]
  - name: third
    shards:
      - primary: postgres://127.0.0.1/third
`)
	ch := Compare(a, b)
	if want := []string{"listen", "event_loops", "pool.checkout_timeout"}; !slices.Equal(ch.Restart, want) {
		t.Errorf("Restart = %q, want %q", ch.Restart, want)
	}
	check := func(what string, got, want []string) {
		t.Helper()
		if !slices.Equal(got, want) {
			t.Errorf("%s = %q, want %q", what, got, want)
		}
	}
	check("DatabasesAdded", ch.DatabasesAdded, []string{"third"})
	check("DatabasesRemoved", ch.DatabasesRemoved, []string{"other"})
	check("DatabasesChanged", ch.DatabasesChanged, []string{"app"})
	check("UsersAdded", ch.UsersAdded, []string{"new"})
	check("UsersRemoved", ch.UsersRemoved, nil)
	// app's server_password follows its cleartext password, so its login on the shards changed too.
	check("UsersChanged", ch.UsersChanged, []string{"app", "ro"})
	check("ServerLogin", ch.ServerLogin, []string{"app", "ro"})
	if !ch.Routing["app"] {
		t.Error("a second shard is not a routing change")
	}
	if !ch.AdminChanged {
		t.Error("the admin password change is not seen")
	}
}

func TestRoutingChanged(t *testing.T) {
	base := mustParse(t, reloadBase).Databases[0]
	cases := []struct {
		name    string
		yaml    string
		routing bool
	}{
		{"same", `
    sharded_tables: [{table: accounts, column: aid, type: bigint}]
    replicated_tables: [branches]`, false},
		{"two-phase commit only", `
    sharded_tables: [{table: accounts, column: aid, type: bigint}]
    replicated_tables: [branches]
    two_phase_commit: true`, false},
		{"key type", `
    sharded_tables: [{table: accounts, column: aid, type: integer}]
    replicated_tables: [branches]`, true},
		{"replicated table", `
    sharded_tables: [{table: accounts, column: aid, type: bigint}]
    replicated_tables: [branches, tellers]`, true},
		{"unlisted tables", `
    sharded_tables: [{table: accounts, column: aid, type: bigint}]
    replicated_tables: [branches]
    unlisted_tables: error`, true},
		{"list values", `
    sharded_tables: [{table: accounts, column: aid, type: bigint}, {table: ev, column: r, type: text, mapping: list, values: {0: [eu]}}]
    replicated_tables: [branches]`, true},
	}
	for _, tc := range cases {
		c := mustParse(t, `
users: [{name: app, password: secret}]
databases:
  - name: app
    shards:
      - primary: postgres://127.0.0.1/app_0`+tc.yaml+"\n")
		if got := RoutingChanged(&base, &c.Databases[0]); got != tc.routing {
			t.Errorf("%s: RoutingChanged = %v, want %v", tc.name, got, tc.routing)
		}
	}
	// An empty list is no list.
	c := mustParse(t, `
users: [{name: app, password: secret}]
databases: [{name: o, shards: [{primary: "postgres://127.0.0.1/other"}], replicated_tables: []}]
`)
	if RoutingChanged(&mustParse(t, reloadBase).Databases[1], &c.Databases[0]) {
		t.Error("replicated_tables: [] differs from none")
	}
}

// cross_shard is a session's default: a RELOAD that changes it changes the database (new sessions take it),
// not its routing.
func TestReloadSeesCrossShard(t *testing.T) {
	cur := mustParse(t, reloadBase)
	next := mustParse(t, reloadBase)
	next.Databases[0].CrossShard = CrossShardDeny
	ch := Compare(cur, next)
	if !slices.Equal(ch.DatabasesChanged, []string{"app"}) || ch.Routing["app"] {
		t.Errorf("changed %v, routing %v: want app changed, its routing not", ch.DatabasesChanged, ch.Routing)
	}
}
