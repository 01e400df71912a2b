package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runHash(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(append([]string{"hash"}, args...), &out, &errb)
	return out.String(), errb.String(), code
}

func TestHashCommand(t *testing.T) {
	out, errs, code := runHash(t, "--shards", "4", "--type", "bigint", "42", "-7")
	want := "42 -> shard 2 (hash 0xafd30d9a116a5a62)\n-7 -> shard 2 (hash 0xe457ec323f4a4cda)\n"
	if code != 0 || out != want || errs != "" {
		t.Errorf("got %d %q %q, want 0 %q", code, out, errs, want)
	}
	// Flags after values; text values quoted.
	out, _, code = runHash(t, "", "fr", "--type=text", "--shards=3")
	if code != 0 || out != "'' -> shard 2 (hash 0xfa8431e86a2568a6)\n'fr' -> shard 0 (hash 0x19bef02942ced995)\n" {
		t.Errorf("text: %d %q", code, out)
	}
	// A bad value is reported, the others still printed, exit status 2.
	out, errs, code = runHash(t, "--shards", "2", "--type", "smallint", "1", "40000", "x")
	if code != 2 || !strings.HasPrefix(out, "1 -> shard ") || strings.Count(out, "\n") != 1 ||
		!strings.Contains(errs, `value "40000" is out of range for type smallint`) || !strings.Contains(errs, `"x"`) {
		t.Errorf("bad values: %d %q %q", code, out, errs)
	}
	for _, args := range [][]string{
		{"--shards", "2", "--type", "numeric", "1"},
		{"--shards", "0", "--type", "integer", "1"},
		{"--type", "integer", "1"},
		{"--shards", "2", "--type", "integer"},
		{"--shards", "two", "--type", "integer", "1"},
		{"--shards", "2", "--type", "integer", "--table", "t", "1"},
	} {
		if _, errs, code := runHash(t, args...); code != 2 || errs == "" {
			t.Errorf("%q: exit %d, stderr %q", args, code, errs)
		}
	}
}

func TestHashCommandConfig(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.yaml")
	cfg := `
users: [{name: app, password: secret}]
databases:
  - name: app
    shards:
      - primary: "postgres://127.0.0.1:5432/app_0"
      - primary: "postgres://127.0.0.1:5432/app_1"
    sharded_tables:
      - {table: accounts, column: aid, type: bigint, mapping: hash}
      - {table: events, column: region, type: text, mapping: list, values: {0: [eu, uk], 1: [us]}}
      - {column: tenant_id, type: integer, mapping: range, ranges: [{shard: 0, to: "100"}, {shard: 1, from: "100"}]}
`
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	out, errs, code := runHash(t, "--config", path, "--table", "accounts", "1", "2", "3")
	if code != 0 || out != "1 -> shard 0 (hash 0x9c7715e2970a8fb8)\n2 -> shard 0 (hash 0xeb7b1343af5ea17a)\n3 -> shard 1 (hash 0xef0d27b973ee34b9)\n" {
		t.Errorf("accounts: %d %q %q", code, out, errs)
	}
	out, errs, code = runHash(t, "--config", path, "--database", "app", "--table", "events", "us", "fr")
	if code != 2 || out != "'us' -> shard 1\n" || !strings.Contains(errs, `no shard of table "events" holds region = 'fr'`) {
		t.Errorf("events: %d %q %q", code, out, errs)
	}
	// A table not listed falls back to the one entry for every table with a column.
	out, errs, code = runHash(t, "--config", path, "--table", "invoices", "99", "100")
	if code != 0 || out != "99 -> shard 0\n100 -> shard 1\n" {
		t.Errorf("invoices: %d %q %q", code, out, errs)
	}
	for _, args := range [][]string{
		{"--config", path, "--database", "nope", "--table", "accounts", "1"},
		{"--config", path, "--table", "accounts", "--column", "nope", "1"},
		{"--config", path, "1"},
		{"--config", path, "--shards", "2", "--table", "accounts", "1"},
		{"--config", filepath.Join(t.TempDir(), "missing.yaml"), "--table", "accounts", "1"},
	} {
		if _, errs, code := runHash(t, args...); code != 2 || errs == "" {
			t.Errorf("%q: exit %d, stderr %q", args, code, errs)
		}
	}
}
