// Package compat is pgshard's compatibility suite: it runs PostgreSQL's own regression tests (pg_regress with the
// parallel_schedule of the installed server's version) directly against a fresh Postgres cluster and then through
// pgshard in session and in transaction pooling mode (one shard, no sharded tables: pgshard as a plain pooler), and
// reports every test that passes directly but fails through pgshard.
//
// lib/pq's own test suite (TestLibPQ, libpq_test.go) and Postgres's isolation tests (TestIsolation,
// isolation_test.go: concurrent sessions, session mode only) run the same way, each with its own
// expected-failures-*.txt.
//
// It owns:
//   - the harness, TestRegress (regress_test.go). It runs only when PGSHARD_COMPAT=1 (`make compat`), since it
//     needs the regression tests from scripts/ensure-regress.sh and takes minutes;
//   - expected-failures.txt: the tests known to fail through pgshard, per mode, each with the reason seen in its
//     diff. A test that passes directly and fails through pgshard without being listed fails the suite; a listed
//     test that passes again is reported so that the line can go;
//   - the pure parts (reading pg_regress's results and the expectations file, comparing, the report), unit-tested
//     by plain `go test`.
//
// Environment: PGSHARD_COMPAT=1 runs the suite; PGSHARD_COMPAT_OUT is the output directory (default a new
// directory under the temp dir, printed); PGSHARD_BIN is a pgshard binary to use instead of building cmd/pgshard;
// PGSHARD_REGRESS_CACHE is where scripts/ensure-regress.sh keeps the tests (one directory per Postgres package
// version under it; default ~/.cache/pgshard-regress).
package compat
