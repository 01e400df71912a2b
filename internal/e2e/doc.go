// Package e2e holds pgshard's end-to-end tests: each starts real Postgres clusters (internal/pgtest) and the
// real pgshard binary built from this checkout, and drives it with real clients (pgx, psql, pgbench).
//
// The helpers here (building the binary, writing a config, starting and stopping the proxy) are for tests
// only; the tests live in the _test.go files.
package e2e
