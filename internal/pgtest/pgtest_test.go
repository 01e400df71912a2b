package pgtest

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

func TestStartUserDatabaseLogicalWAL(t *testing.T) {
	t.Parallel()
	c := Start(t, Options{
		Databases:     []string{"app_0"},
		DatabaseOwner: "app",
		Users: []UserSpec{
			{Name: "app", Password: "s3cr'et"},
			{Name: "old", Password: "md5pw", MD5: true},
		},
		Settings: map[string]string{"application_name": "pgtest"},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// The user logs in over 127.0.0.1 with its password, which must go through SCRAM.
	conn := c.Connect(t, "app_0", "app", "s3cr'et")
	var walLevel, user, db string
	if err := conn.QueryRow(ctx, "SELECT current_setting('wal_level'), current_user, current_database()").Scan(&walLevel, &user, &db); err != nil {
		t.Fatal(err)
	}
	if walLevel != "logical" || user != "app" || db != "app_0" {
		t.Fatalf("got wal_level=%q user=%q db=%q, want logical app app_0", walLevel, user, db)
	}
	if got := c.QueryString(t, "postgres", "SELECT left(rolpassword, 14) FROM pg_authid WHERE rolname = 'app'"); got != "SCRAM-SHA-256$" {
		t.Errorf("app's password is stored as %q..., want a SCRAM verifier", got)
	}
	if got := c.QueryString(t, "postgres", "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'app_0'"); got != "app" {
		t.Errorf("app_0 is owned by %q, want app", got)
	}
	// The owner can create tables (Postgres 15 no longer lets everyone create in public).
	if _, err := conn.Exec(ctx, "CREATE TABLE t (id int); INSERT INTO t VALUES (1), (2)"); err != nil {
		t.Fatal(err)
	}
	if got := c.QueryString(t, "app_0", "SELECT count(*) FROM t"); got != "2" {
		t.Errorf("count = %s, want 2", got)
	}
	if got := c.QueryString(t, "postgres", "SELECT current_setting('max_prepared_transactions')"); got != "64" {
		t.Errorf("max_prepared_transactions = %s, want 64", got)
	}
	if got := c.QueryString(t, "postgres", "SELECT current_setting('application_name')"); got != "pgtest" {
		t.Errorf("extra setting application_name = %q, want pgtest", got)
	}

	// A wrong password is refused with 28P01.
	_, err := pgx.Connect(ctx, c.DSN("app_0", "app", "wrong"))
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "28P01" {
		t.Errorf("wrong password: got %v, want SQLSTATE 28P01", err)
	}
	// The md5 user logs in with md5.
	c.Connect(t, "app_0", "old", "md5pw")
	if got := c.QueryString(t, "postgres", "SELECT left(rolpassword, 3) FROM pg_authid WHERE rolname = 'old'"); got != "md5" {
		t.Errorf("old's password is stored as %q..., want md5", got)
	}
	// The superuser logs in by trust over the unix socket too.
	sock, err := pgx.Connect(ctx, c.SocketDSN("postgres", "postgres"))
	if err != nil {
		t.Fatalf("superuser over the unix socket: %v", err)
	}
	sock.Close(ctx)
}

func TestRestartAndCrash(t *testing.T) {
	t.Parallel()
	c := Start(t, Options{})
	c.Exec(t, "postgres", "CREATE TABLE kept (v text); INSERT INTO kept VALUES ('x')")
	if err := c.Restart(); err != nil {
		t.Fatal(err)
	}
	if got := c.QueryString(t, "postgres", "SELECT v FROM kept"); got != "x" {
		t.Fatalf("after restart got %q, want x", got)
	}
	if err := c.Crash(); err != nil {
		t.Fatal(err)
	}
	if err := c.ExecContext(context.Background(), "postgres", "SELECT 1"); err == nil {
		t.Fatal("crashed cluster still answers")
	}
	if err := c.Restart(); err != nil {
		t.Fatal(err)
	}
	if got := c.QueryString(t, "postgres", "SELECT count(*) FROM kept"); got != "1" {
		t.Fatalf("after crash recovery count = %s, want 1 (the row was checkpointed by the clean restart)", got)
	}
}

func TestQueryStringsNull(t *testing.T) {
	t.Parallel()
	c := Start(t, Options{})
	rows := c.QueryStrings(t, "postgres", "SELECT 1::bigint, NULL::text, 'a b'")
	if got := strings.Join(rows[0], "|"); got != "1|NULL|a b" {
		t.Fatalf("got %q", got)
	}
	vals := c.Query(t, "postgres", "SELECT 1::bigint, NULL::text, $1::text", "z")
	if vals[0][0] != int64(1) || vals[0][1] != nil || vals[0][2] != "z" {
		t.Fatalf("got %#v", vals[0])
	}
}

// A start on a taken port must be recognised as such, since that is what Start retries on.
func TestTakenPortIsRecognised(t *testing.T) {
	t.Parallel()
	a := Start(t, Options{})
	b := Start(t, Options{})
	if err := b.Stop(); err != nil {
		t.Fatal(err)
	}
	b.Port = a.Port
	if err := b.writeConfig(); err != nil {
		t.Fatal(err)
	}
	err := b.pgctlStart(context.Background())
	if !errors.Is(err, errBind) {
		t.Fatalf("start on a taken port: got %v, want errBind", err)
	}
}
