// Command pgbench-compare is pgshard's benchmark harness, the one place where its speed is measured (`make bench`;
// bench/README.md says how to read the figures).
//
// It starts everything it needs on 127.0.0.1 in a temporary directory: a real Postgres cluster (initialised once
// with `pgbench -i`), pgshard built from this checkout, and PgBouncer (Debian's package) with an equivalent pool.
// Each scenario runs pgbench through every target and directly against Postgres, alternating the targets run by
// run (A, B, C, A, B, C, ...) so that machine drift hits all alike, after one discarded warm-up run per target. For
// every run it records TPS, average and p99 latency (from `pgbench --log`), the proxy's CPU time per 1000
// transactions (utime+stime from /proc/<pid>/stat, before and after the run) and its peak RSS (VmHWM from
// /proc/<pid>/status, reset before each run through /proc/<pid>/clear_refs). It prints one Markdown table per
// scenario with medians and ratios (pgshard / PgBouncer, pgshard / direct) and writes the raw runs as JSON, with the
// machine's core count and the versions used, under bench/results/. Every process it starts it stops by pid at the
// end, also on Ctrl-C.
//
// The sharded scenarios also fill two shard databases from the reference, split by Postgres's own hash
// partitioning of aid, run pgshard over them against PgBouncer and direct connections to the unsharded reference,
// and afterwards read sampled keys back through pgshard: wrong answers fail the run (exit status 1), since pgbench
// itself never looks at what it gets back.
package main
