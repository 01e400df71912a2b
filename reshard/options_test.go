package reshard

import (
	"strings"
	"testing"

	"github.com/pgshard/pgshard/config"
)

const testConfig = `# the proxy
listen: "127.0.0.1:6432"
users:
  - name: app
    password: secret
databases:
  - name: other
    shards:
      - primary: postgres://h:5432/other
  - name: app   # the one to reshard
    shards:
      - primary: postgres://h:5432/app_0
    sharded_tables:
      - column: aid
        type: bigint
`

func TestRewriteConfig(t *testing.T) {
	to := "shards:\n  - primary: postgres://h:5432/new_0\n  - primary: postgres://h:5432/new_1\n"
	out, err := rewriteConfig([]byte(testConfig), "app", []byte(to))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse(out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	app := cfg.Database("app")
	if len(app.Shards) != 2 || app.Shards[1].Primary.Database != "new_1" || len(app.ShardedTables) != 1 {
		t.Errorf("app after the rewrite: %+v", app)
	}
	if other := cfg.Database("other"); len(other.Shards) != 1 || other.Shards[0].Primary.Database != "other" {
		t.Errorf("other changed: %+v", other)
	}
	if !strings.Contains(string(out), "# the one to reshard") || !strings.Contains(string(out), "# the proxy") {
		t.Errorf("comments lost:\n%s", out)
	}
}

func TestRewriteConfigRefusals(t *testing.T) {
	for _, tc := range []struct{ db, to, want string }{
		{"app", "shard:\n  - primary: postgres://h/x\n", `unknown key "shard"`},
		{"app", "sharded_tables: []\n", "no shards"},
		{"app", "- a\n", "want a mapping"},
		{"nope", "shards:\n  - primary: postgres://h/x\n", `no database "nope"`},
	} {
		_, err := rewriteConfig([]byte(testConfig), tc.db, []byte(tc.to))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: got %v, want %q", tc.to, err, tc.want)
		}
	}
}

func TestSlotName(t *testing.T) {
	for in, want := range map[string]string{"app": "pgshard_reshard_app", "My-App.1": "pgshard_reshard_my_app_1"} {
		if got := slotBaseName(in); got != want {
			t.Errorf("slotBaseName(%q) = %q, want %q", in, got, want)
		}
	}
	if got := slotBaseName(strings.Repeat("x", 100)); len(got) > 50 {
		t.Errorf("slot base of %d bytes leaves no room for the source number", len(got))
	}
}

func TestClassify(t *testing.T) {
	db := &config.Database{Name: "app", Shards: make([]config.Shard, 2),
		ShardedTables: []config.ShardedTable{
			{Table: "sales.orders", Column: "customer_id", Type: "bigint", Mapping: config.MappingHash},
			{Column: "aid", Type: "bigint", Mapping: config.MappingHash},
		},
		ReplicatedTables: []string{"branches"}}
	mk := func(schema, name string, cols ...string) *table {
		t := &table{schema: schema, name: name, key: -1}
		for _, c := range cols {
			t.columns = append(t.columns, column{name: c})
		}
		return t
	}
	for _, tc := range []struct {
		t   *table
		key int
	}{
		{mk("sales", "orders", "id", "customer_id"), 1},
		{mk("public", "orders", "id", "customer_id"), -1}, // another schema: not the entry
		{mk("public", "accounts", "aid", "bid"), 0},       // the column rule
		{mk("public", "branches", "bid", "aid"), -1},      // replicated by name before the column rule
		{mk("public", "notes", "id"), -1},                 // unlisted: copied whole
	} {
		if err := classify(tc.t, db); err != nil {
			t.Fatal(err)
		}
		if tc.t.key != tc.key || (tc.key >= 0) != (tc.t.newMapper != nil) {
			t.Errorf("%s: key %d, want %d", tc.t, tc.t.key, tc.key)
		}
	}
	bad := mk("sales", "orders", "id")
	if err := classify(bad, db); err == nil || !strings.Contains(err.Error(), "no such column") {
		t.Errorf("missing key column: %v", err)
	}
}
