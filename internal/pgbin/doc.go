// Package pgbin finds the installed Postgres programs (initdb, pg_ctl, postgres, and the client programs
// beside them) for the tests, the benchmarks and pgshard reshard's pg_dump. It is not a test package: reshard
// uses it at run time.
package pgbin
