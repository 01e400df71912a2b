package e2e

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgshard/pgshard/internal/pgtest"
)

// env is one Postgres cluster with database app_0 and role app, and a pgshard in front of it.
type env struct {
	pg    *pgtest.Cluster
	proxy *Proxy
}

const baseConfig = `
listen: "127.0.0.1:%PORT%"
shutdown_timeout: %SHUTDOWN%
pool:
  mode: %MODE%
  size: %SIZE%
  checkout_timeout: %CHECKOUT%
  max_client_connections: %MAXCLIENTS%
%POOL%limits:
  client_startup_timeout: 2s
  max_message_size: 1MB
%LIMITS%admin:
  user: admin
  password: adminpw
users:
  - name: app
    password: secret
  - name: md5user
    password: secret5
    auth_method: md5
    server_user: app
    server_password: secret
  - name: trusted
    auth_method: trust
    server_user: app
    server_password: secret
databases:
  - name: app
    shards:
      - primary: "postgres://127.0.0.1:%PGPORT%/app_0"
`

type envOpts struct {
	mode       string
	size       int
	checkout   string
	maxClients int
	shutdown   string   // shutdown_timeout; "5s" when empty
	limits     []string // more lines of limits:, as "key: value"
	pool       []string // and of pool:
	top        []string // top-level lines put first ("tls: {...}")
}

func startEnv(t *testing.T, o envOpts) *env {
	t.Helper()
	if testing.Short() {
		t.Skip("starts Postgres")
	}
	if o.mode == "" {
		o.mode = "transaction"
	}
	if o.size == 0 {
		o.size = 4
	}
	if o.checkout == "" {
		o.checkout = "5s"
	}
	if o.maxClients == 0 {
		o.maxClients = 1000
	}
	if o.shutdown == "" {
		o.shutdown = "5s"
	}
	pg := pgtest.Start(t, pgtest.Options{
		Databases:     []string{"app_0"},
		DatabaseOwner: "app",
		Users:         []pgtest.UserSpec{{Name: "app", Password: "secret"}},
	})
	var limits, pool strings.Builder
	for _, l := range o.limits {
		limits.WriteString("  " + l + "\n")
	}
	for _, l := range o.pool {
		pool.WriteString("  " + l + "\n")
	}
	cfg := strings.NewReplacer("%LIMITS%", limits.String(), "%POOL%", pool.String(), "%MODE%", o.mode, "%SIZE%", fmt.Sprint(o.size), "%CHECKOUT%", o.checkout,
		"%MAXCLIENTS%", fmt.Sprint(o.maxClients), "%SHUTDOWN%", o.shutdown, "%PGPORT%", fmt.Sprint(pg.Port)).Replace(baseConfig)
	return &env{pg: pg, proxy: StartProxy(t, strings.Join(append(o.top, cfg), "\n"))}
}

func (e *env) connect(t *testing.T, ctx context.Context) *pgx.Conn {
	t.Helper()
	c, err := pgx.Connect(ctx, e.proxy.DSN("app", "app", "secret"))
	if err != nil {
		t.Fatalf("connect through pgshard: %v", err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

func pgCode(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

func TestSimpleAndExtendedQuery(t *testing.T) {
	e := startEnv(t, envOpts{})
	ctx := Ctx(t, 30*time.Second)
	c := e.connect(t, ctx)
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeExec, pgx.QueryExecModeDescribeExec, pgx.QueryExecModeCacheDescribe, pgx.QueryExecModeCacheStatement} {
		var n int64
		var s string
		if err := c.QueryRow(ctx, "SELECT $1::int8 * 2, $2::text || 'x'", mode, int64(21), "ab").Scan(&n, &s); err != nil {
			t.Fatalf("mode %v: %v", mode, err)
		}
		if n != 42 || s != "abx" {
			t.Fatalf("mode %v: got %d %q", mode, n, s)
		}
	}
}
