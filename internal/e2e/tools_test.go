package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestPsql runs psql through the proxy: DDL, \copy from and to a file, a query, and an error that stops a
// script.
func TestPsql(t *testing.T) {
	t.Parallel()
	psql := pgTool(t, "psql")
	e := startEnv(t, envOpts{})
	ctx := Ctx(t, 60*time.Second)
	dsn := e.dsn("app", "")
	run := func(args ...string) (string, error) {
		return runTool(ctx, "secret", psql, append([]string{dsn, "-X", "-v", "ON_ERROR_STOP=1"}, args...)...)
	}
	mustRun := func(args ...string) string {
		t.Helper()
		out, err := run(args...)
		if err != nil {
			t.Fatalf("psql %v: %v\n%s", args, err, out)
		}
		return out
	}

	dir := t.TempDir()
	in := filepath.Join(dir, "in.tsv")
	out := filepath.Join(dir, "out.tsv")
	var data strings.Builder
	for i := 1; i <= 500; i++ {
		fmt.Fprintf(&data, "%d\tname %d\t%s\n", i, i, map[bool]string{true: `\N`, false: "x\\ty"}[i%10 == 0])
	}
	if err := os.WriteFile(in, []byte(data.String()), 0o644); err != nil {
		t.Fatal(err)
	}

	mustRun("-c", "CREATE TABLE psql_t (id int PRIMARY KEY, name text, note text)")
	if got := mustRun("-c", `\copy psql_t from '`+in+`'`); !strings.Contains(got, "COPY 500") {
		t.Errorf(`\copy from: output %q, want COPY 500`, got)
	}
	if got := e.pg.QueryString(t, "app_0", "SELECT count(*) || ' ' || count(note) FROM psql_t"); got != "500 450" {
		t.Errorf("psql_t on the cluster: %s, want 500 rows, 450 notes", got)
	}
	if got := mustRun("-c", `\copy (SELECT * FROM psql_t ORDER BY id) to '`+out+`'`); !strings.Contains(got, "COPY 500") {
		t.Errorf(`\copy to: output %q, want COPY 500`, got)
	}
	back, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if string(back) != data.String() {
		t.Errorf(`\copy to wrote %d bytes that differ from the %d loaded`, len(back), data.Len())
	}
	if got := strings.TrimSpace(mustRun("-tA", "-c", "SELECT count(*), sum(id) FROM psql_t WHERE note IS NULL")); got != "50|12750" {
		t.Errorf("query: %q, want 50|12750", got)
	}
	// Several statements in one -c, in a transaction block, with a psql variable.
	got := mustRun("-tA", "-c", "BEGIN; UPDATE psql_t SET note = 'u' WHERE id <= 10; SELECT count(*) FROM psql_t WHERE note = 'u'; COMMIT;")
	if !strings.Contains(got, "10") {
		t.Errorf("multi-statement -c: %q", got)
	}

	// An error stops the script with exit status 3 (ON_ERROR_STOP in a file) and names the server's error.
	script := filepath.Join(dir, "script.sql")
	if err := os.WriteFile(script, []byte("SELECT 1;\nSELECT 1/0;\nINSERT INTO psql_t VALUES (9999, 'after', NULL);\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err = run("-f", script)
	if err == nil {
		t.Fatalf("a script with a division by zero succeeded:\n%s", got)
	}
	if !strings.Contains(got, "division by zero") {
		t.Errorf("psql output %q does not show the server's error", got)
	}
	if n := e.pg.QueryString(t, "app_0", "SELECT count(*) FROM psql_t WHERE id = 9999"); n != "0" {
		t.Error("psql went on after the error despite ON_ERROR_STOP")
	}

	// sslmode=require: psql says the server does not do SSL.
	got, err = runTool(ctx, "secret", psql, e.dsn("app", "", "sslmode=require"), "-X", "-c", "SELECT 1")
	if err == nil {
		t.Fatalf("psql with sslmode=require connected:\n%s", got)
	}
	if !strings.Contains(got, "does not support SSL") {
		t.Errorf("psql with sslmode=require: %q, want 'server does not support SSL'", got)
	}
}

// TestPgbench initializes pgbench's tables through the proxy and runs 32 clients over a pool of 8 in transaction
// mode, with the simple and the extended protocol.
func TestPgbench(t *testing.T) {
	t.Parallel()
	pgbench := pgTool(t, "pgbench")
	e := startEnv(t, envOpts{size: 8, checkout: "10s"})
	ctx := Ctx(t, 90*time.Second)
	conn := []string{"-h", "127.0.0.1", "-p", strconv.Itoa(e.proxy.Port), "-U", "app"}
	out, err := runTool(ctx, "secret", pgbench, append(append([]string{"-i", "-s", "1"}, conn...), "app")...)
	if err != nil {
		t.Fatalf("pgbench -i: %v\n%s", err, out)
	}
	if got := e.pg.QueryString(t, "app_0", "SELECT count(*) FROM pgbench_accounts"); got != "100000" {
		t.Fatalf("pgbench_accounts holds %s rows after pgbench -i -s 1, want 100000", got)
	}
	processed := regexp.MustCompile(`number of transactions actually processed: (\d+)`)
	failed := regexp.MustCompile(`number of failed transactions: (\d+)`)
	for _, mode := range []string{"simple", "extended"} {
		t.Run(mode, func(t *testing.T) {
			args := append([]string{"-c", "32", "-j", "2", "-T", "5", "-M", mode}, conn...)
			out, err := runTool(ctx, "secret", pgbench, append(args, "app")...)
			if err != nil {
				t.Fatalf("pgbench -M %s: %v\n%s", mode, err, out)
			}
			lower := strings.ToLower(out)
			if strings.Contains(lower, "error") || strings.Contains(lower, "aborted") {
				t.Errorf("pgbench -M %s reported errors:\n%s", mode, out)
			}
			m := processed.FindStringSubmatch(out)
			if m == nil {
				t.Fatalf("pgbench -M %s: no transaction count in\n%s", mode, out)
			}
			n, _ := strconv.Atoi(m[1])
			if n <= 0 {
				t.Errorf("pgbench -M %s processed %d transactions", mode, n)
			}
			if f := failed.FindStringSubmatch(out); f != nil && f[1] != "0" {
				t.Errorf("pgbench -M %s: %s failed transactions", mode, f[1])
			}
			// pgbench truncates pgbench_history before the run; then every processed transaction leaves a row in it
			// (and the up to 32 cut short by the end of -T may have committed too).
			h, _ := strconv.Atoi(e.pg.QueryString(t, "app_0", "SELECT count(*) FROM pgbench_history"))
			if h < n || h > n+32 {
				t.Errorf("pgbench_history holds %d rows, pgbench reported %d transactions", h, n)
			}
			if k, _ := strconv.Atoi(e.pg.QueryString(t, "postgres", "SELECT count(*) FROM pg_stat_activity WHERE usename = 'app'")); k > 8 {
				t.Errorf("%d backends of app with pool size 8", k)
			}
			t.Logf("pgbench -M %s: %d transactions", mode, n)
		})
	}
}
