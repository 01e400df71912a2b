package pgtest

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// queryTimeout bounds each helper call, so a wedged server fails a test instead of hanging it.
const queryTimeout = 60 * time.Second

// setup creates the users and databases of the options (idempotently).
func (c *Cluster) setup(ctx context.Context) error {
	if len(c.opts.Users) == 0 && len(c.opts.Databases) == 0 {
		return nil
	}
	conn, err := pgx.Connect(ctx, c.SuperDSN("postgres"))
	if err != nil {
		return fmt.Errorf("pgtest: connecting as superuser: %w", err)
	}
	defer conn.Close(context.Background())
	for _, u := range c.opts.Users {
		enc := "scram-sha-256"
		if u.MD5 {
			enc = "md5"
		}
		if _, err := conn.Exec(ctx, "SET password_encryption = '"+enc+"'"); err != nil {
			return fmt.Errorf("pgtest: %w", err)
		}
		var exists bool
		if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT FROM pg_roles WHERE rolname = $1)", u.Name).Scan(&exists); err != nil {
			return fmt.Errorf("pgtest: %w", err)
		}
		verb := "CREATE"
		if exists {
			verb = "ALTER"
		}
		super := "NOSUPERUSER"
		if u.Superuser {
			super = "SUPERUSER"
		}
		password := "NULL"
		if u.Password != "" {
			password = quoteLiteral(u.Password)
		}
		sql := fmt.Sprintf("%s ROLE %s WITH LOGIN %s PASSWORD %s", verb, pgx.Identifier{u.Name}.Sanitize(), super, password)
		if _, err := conn.Exec(ctx, sql); err != nil {
			return fmt.Errorf("pgtest: %s role %q: %w", strings.ToLower(verb), u.Name, err)
		}
	}
	for _, db := range c.opts.Databases {
		var exists bool
		if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT FROM pg_database WHERE datname = $1)", db).Scan(&exists); err != nil {
			return fmt.Errorf("pgtest: %w", err)
		}
		if exists {
			continue
		}
		sql := "CREATE DATABASE " + pgx.Identifier{db}.Sanitize()
		if c.opts.DatabaseOwner != "" {
			sql += " OWNER " + pgx.Identifier{c.opts.DatabaseOwner}.Sanitize()
		}
		if _, err := conn.Exec(ctx, sql); err != nil {
			return fmt.Errorf("pgtest: creating database %q: %w", db, err)
		}
	}
	return nil
}

// quoteLiteral quotes s as an SQL string literal (standard_conforming_strings is on).
func quoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// Connect opens a pgx connection to db as user over TCP and closes it when the test ends. Use user
// "postgres" with an empty password for the superuser.
func (c *Cluster) Connect(t testing.TB, db, user, password string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), queryTimeout)
	defer cancel()
	conn, err := pgx.Connect(ctx, c.DSN(db, user, password))
	if err != nil {
		t.Fatalf("pgtest: connecting to %s as %s: %v", db, user, err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

// ExecContext runs sql in db as the superuser on a connection of its own. Without args, sql may hold several
// statements (simple protocol).
func (c *Cluster) ExecContext(ctx context.Context, db, sql string, args ...any) error {
	conn, err := pgx.Connect(ctx, c.SuperDSN(db))
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, sql, args...)
	return err
}

// Exec is ExecContext for tests: it fails the test on error.
func (c *Cluster) Exec(t testing.TB, db, sql string, args ...any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), queryTimeout)
	defer cancel()
	if err := c.ExecContext(ctx, db, sql, args...); err != nil {
		t.Fatalf("pgtest: in %s: %s: %v", db, sql, err)
	}
}

// Query runs sql in db as the superuser and returns all rows as pgx decodes them (int64, string, time.Time, ...;
// nil for NULL). It fails the test on error.
func (c *Cluster) Query(t testing.TB, db, sql string, args ...any) [][]any {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), queryTimeout)
	defer cancel()
	rows, err := c.query(ctx, db, sql, false, args, func(r pgx.Rows) (any, error) { return r.Values() })
	if err != nil {
		t.Fatalf("pgtest: in %s: %s: %v", db, sql, err)
	}
	out := make([][]any, len(rows))
	for i, r := range rows {
		out[i] = r.([]any)
	}
	return out
}

// QueryStrings runs sql in db as the superuser and returns all rows in Postgres's text form (as psql shows them);
// NULL is "NULL". It fails the test on error.
func (c *Cluster) QueryStrings(t testing.TB, db, sql string, args ...any) [][]string {
	t.Helper()
	rows := c.queryText(t, db, sql, args)
	out := make([][]string, len(rows))
	for i, r := range rows {
		out[i] = make([]string, len(r))
		for j, v := range r {
			if v == nil {
				out[i][j] = "NULL"
			} else {
				out[i][j] = string(v)
			}
		}
	}
	return out
}

// QueryString returns the single value sql yields (first column of the only row) in text form, e.g.
// QueryString(t, "app_0", "SELECT count(*) FROM accounts") == "1000". It fails the test on error, on a row count
// other than one, and on NULL.
func (c *Cluster) QueryString(t testing.TB, db, sql string, args ...any) string {
	t.Helper()
	rows := c.queryText(t, db, sql, args)
	if len(rows) != 1 || len(rows[0]) == 0 {
		t.Fatalf("pgtest: in %s: %s: want one row, got %d", db, sql, len(rows))
	}
	if rows[0][0] == nil {
		t.Fatalf("pgtest: in %s: %s: the value is NULL", db, sql)
	}
	return string(rows[0][0])
}

// queryText runs sql with the simple protocol, which returns every value in text form (nil for NULL).
func (c *Cluster) queryText(t testing.TB, db, sql string, args []any) [][][]byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), queryTimeout)
	defer cancel()
	rows, err := c.query(ctx, db, sql, true, args, func(r pgx.Rows) (any, error) {
		raw := r.RawValues() // valid until the next row: copy
		vals := make([][]byte, len(raw))
		for i, v := range raw {
			if v != nil {
				vals[i] = append([]byte{}, v...)
			}
		}
		return vals, nil
	})
	if err != nil {
		t.Fatalf("pgtest: in %s: %s: %v", db, sql, err)
	}
	out := make([][][]byte, len(rows))
	for i, r := range rows {
		out[i] = r.([][]byte)
	}
	return out
}

func (c *Cluster) query(ctx context.Context, db, sql string, text bool, args []any, row func(pgx.Rows) (any, error)) ([]any, error) {
	conn, err := pgx.Connect(ctx, c.SuperDSN(db))
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.Background())
	if text {
		args = append([]any{pgx.QueryExecModeSimpleProtocol}, args...)
	}
	rows, err := conn.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []any
	for rows.Next() {
		v, err := row(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}
