package e2e

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgshard/pgshard/internal/pgtest"
)

// TestAuthQuery: a role created on the shard only (not in pgshard's config) logs in through pgshard with its own
// password, found with auth_query as auth_user, and its statements run on the shards as that role, which pgshard
// logs in as with the keys the client's login proved (no password of it in the config); a wrong password is 28P01,
// a role the shard lacks too; the cached verifier expires after auth_cache_ttl, so a changed password takes over.
func TestAuthQuery(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("starts Postgres")
	}
	pg := pgtest.Start(t, pgtest.Options{Databases: []string{"app_0", "app_1"}, DatabaseOwner: "app",
		Users: []pgtest.UserSpec{{Name: "app", Password: "secret"}, {Name: "lookup", Password: "lookpw", Superuser: true}}})
	for _, db := range []string{"app_0", "app_1"} {
		pg.Exec(t, db, "CREATE TABLE t (k int, v text); ALTER TABLE t OWNER TO app; GRANT ALL ON t TO PUBLIC")
	}
	pg.Exec(t, "postgres", "CREATE ROLE alice LOGIN PASSWORD 'alicepw'")
	for _, mode := range []string{"transaction", "session"} {
		t.Run(mode, func(t *testing.T) {
			p := StartProxy(t, `listen: "127.0.0.1:%PORT%"
auth_user: lookup
auth_cache_ttl: 1s
pool: {mode: `+mode+`}
users:
  - {name: app, password: secret}
  - {name: lookup, password: lookpw}
databases:
  - name: app
    shards:
      - primary: "postgres://127.0.0.1:`+strconv.Itoa(pg.Port)+`/app_0"
      - primary: "postgres://127.0.0.1:`+strconv.Itoa(pg.Port)+`/app_1"
    sharded_tables: [{table: t, column: k, type: integer}]
`)
			ctx := Ctx(t, time.Minute)
			c, err := pgx.Connect(ctx, p.DSN("app", "alice", "alicepw"))
			if err != nil {
				t.Fatalf("alice, known only to the shard: %v", err)
			}
			defer c.Close(context.Background())
			var who string
			if err := c.QueryRow(ctx, "SELECT current_user").Scan(&who); err != nil || who != "alice" {
				t.Fatalf("current_user on the shard: %q, %v", who, err)
			}
			for k := 0; k < 20; k++ { // both shards, as alice
				if _, err := c.Exec(ctx, "INSERT INTO t (k, v) VALUES ($1, current_user)", k); err != nil {
					t.Fatal(err)
				}
			}
			var n int
			if err := c.QueryRow(ctx, "SELECT count(*) FROM t WHERE v = 'alice'").Scan(&n); err != nil || n != 20 {
				t.Fatalf("rows written as alice on both shards: %d, %v", n, err)
			}
			c.Close(ctx)

			refused := func(what, user, password string) {
				t.Helper()
				_, err := pgx.Connect(ctx, p.DSN("app", user, password))
				var pe *pgconn.PgError
				if !errors.As(err, &pe) || pe.Code != "28P01" {
					t.Errorf("%s: %v, want 28P01", what, err)
				}
			}
			refused("alice with a wrong password", "alice", "nope")
			refused("a role the shard does not have", "bob", "bobpw")

			pg.Exec(t, "postgres", "ALTER ROLE alice PASSWORD 'newpw'")
			if !waitFor(10*time.Second, func() bool {
				c, err := pgx.Connect(ctx, p.DSN("app", "alice", "newpw"))
				if err != nil {
					return false
				}
				defer c.Close(ctx)
				return c.QueryRow(ctx, "SELECT current_user").Scan(&who) == nil
			}) {
				t.Fatal("alice's new password was not taken within 10 s (auth_cache_ttl 1s)")
			}
			refused("alice's old password after the change", "alice", "alicepw")
			pg.Exec(t, "postgres", "ALTER ROLE alice PASSWORD 'alicepw'")
			pg.Exec(t, "app_0", "TRUNCATE t")
			pg.Exec(t, "app_1", "TRUNCATE t")
		})
	}
}
