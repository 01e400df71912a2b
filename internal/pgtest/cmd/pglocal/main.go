// Command pglocal creates (once) and starts the local Postgres clusters `make run` serves through pgshard: shard i
// lives in <data>/shard<i> and listens on the i-th port, with database <db>_<i> owned by the login role <user>
// (SCRAM password), and a small sample schema: branches 1..10 on every shard (replicated) and accounts 1..1000
// split the way Postgres hash partitioning splits them (shard i holds the rows of the partition
// FOR VALUES WITH (MODULUS n, REMAINDER i)). Re-running it starts stopped clusters and changes nothing else.
// The clusters keep running after it exits; scripts/stop-local.sh stops them.
//
//	go run ./internal/pgtest/cmd/pglocal -data data -ports 55432,55433
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/pgshard/pgshard/internal/pgtest"
)

func main() {
	data := flag.String("data", "data", "directory holding shard0, shard1, ...")
	ports := flag.String("ports", "55432,55433", "comma-separated ports, one per shard")
	user := flag.String("user", "app", "login role that owns the databases")
	password := flag.String("password", "secret", "its password (stored as SCRAM-SHA-256)")
	db := flag.String("db", "app", "database name prefix: shard i gets <db>_<i>")
	flag.Parse()
	if err := run(*data, *ports, *user, *password, *db); err != nil {
		fmt.Fprintln(os.Stderr, "pglocal:", err)
		os.Exit(1)
	}
}

func run(data, portList, user, password, dbPrefix string) error {
	var ports []int
	for _, p := range strings.Split(portList, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil || n <= 0 || n > 65535 {
			return fmt.Errorf("bad port %q", p)
		}
		ports = append(ports, n)
	}
	for i, port := range ports {
		dir := filepath.Join(data, fmt.Sprintf("shard%d", i))
		db := fmt.Sprintf("%s_%d", dbPrefix, i)
		c, err := pgtest.StartDir(dir, port, pgtest.Options{
			Databases:     []string{db},
			DatabaseOwner: user,
			Users:         []pgtest.UserSpec{{Name: user, Password: password}},
			// These clusters keep data across runs: keep it crash-safe.
			Settings: map[string]string{"fsync": "on", "synchronous_commit": "on", "full_page_writes": "on"},
		})
		if err != nil {
			return fmt.Errorf("shard %d: %w", i, err)
		}
		if err := loadSample(c.DSN(db, user, password), i, len(ports)); err != nil {
			return fmt.Errorf("shard %d: loading the sample schema as %s: %w", i, user, err)
		}
		fmt.Fprintf(os.Stderr, "pglocal: shard %d: %s (data %s, log %s)\n", i, c.DSN(db, user, "..."), c.DataDir, c.LogFile)
	}
	return nil
}

// loadSample creates the sample tables and fills them, idempotently, connecting as the application role (which
// also proves its password works over TCP).
func loadSample(dsn string, shard, shards int) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	var sql strings.Builder
	sql.WriteString(`
CREATE TABLE IF NOT EXISTS branches (bid int PRIMARY KEY, bbalance int, filler text);
CREATE TABLE IF NOT EXISTS accounts (aid bigint PRIMARY KEY, bid int, abalance int, filler text);
INSERT INTO branches SELECT b, 0, '' FROM generate_series(1, 10) b ON CONFLICT DO NOTHING;
-- Let Postgres itself decide which shard owns which aid: a hash-partitioned table with one partition per shard.
CREATE TEMP TABLE accounts_split (aid bigint, bid int, abalance int, filler text) PARTITION BY HASH (aid);
`)
	for r := range shards {
		fmt.Fprintf(&sql, "CREATE TEMP TABLE accounts_split_%d PARTITION OF accounts_split FOR VALUES WITH (MODULUS %d, REMAINDER %d);\n", r, shards, r)
	}
	fmt.Fprintf(&sql, `
INSERT INTO accounts_split SELECT a, (a - 1) / 100 + 1, 0, '' FROM generate_series(1, 1000) a;
INSERT INTO accounts SELECT * FROM accounts_split_%d ON CONFLICT DO NOTHING;
DROP TABLE accounts_split;
`, shard)
	_, err = conn.Exec(ctx, sql.String())
	return err
}
