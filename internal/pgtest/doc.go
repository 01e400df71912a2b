// Package pgtest starts real Postgres clusters for tests and local tools.
//
// Start gives a test a fresh, throw-away cluster on a free loopback port (from a per-machine initdb template, so a
// start takes well under a second), configured for pgshard's needs: wal_level=logical, prepared transactions,
// scram-sha-256 for ordinary users, trust for the superuser "postgres". StartDir does the same for a persistent
// directory and a fixed port (used by `make run`). When the process runs as root, every Postgres command runs as
// the operating-system user postgres through `runuser`, since Postgres refuses to run as root.
//
// Postgres itself comes from PGTEST_BINDIR, the PATH's initdb, or the newest /usr/lib/postgresql/*/bin;
// scripts/ensure-postgres.sh installs it when missing. This package imports nothing of pgshard.
package pgtest
