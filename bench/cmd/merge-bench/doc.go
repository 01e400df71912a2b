// Command merge-bench measures pgshard's cross-shard reads and sharded COPY against one unsharded Postgres holding
// the same rows (`make bench-merge`; bench/README.md says how to read the figures).
//
// It starts a Postgres cluster of its own on 127.0.0.1 in a temporary directory, with one reference database and
// -shards shard databases. Table items (id bigint primary key, k integer, v text) holds -rows × -shards rows on
// the reference; shard i holds exactly the rows that Postgres's PARTITION BY HASH (id) puts into the partition
// (MODULUS shards, REMAINDER i) (satisfies_hash_partition), which is where pgshard places them. It starts pgshard
// (bin/pgshard, built with `make build`) over the shard databases, transaction pooling, and measures with pgx,
// alternating direct and pgshard run by run after one discarded warm-up each:
//
//	a. SELECT id, k, v FROM items ORDER BY k LIMIT 100        latency and rows/s
//	b. SELECT id, k, v FROM items                             the full scan: rows/s and MB/s
//	c. SELECT id, k, v FROM items ORDER BY id                 the full scan merged in key order
//	d. COPY items_copy FROM STDIN (text), -copy-rows new rows rows/s
//
// and pgshard's memory (VmRSS, VmHWM) around each case. Every result is checked cheaply (row counts, the order of
// the keys, where copied rows land): a wrong one is shown as WRONG, and a case pgshard refuses with SQLSTATE 0A000
// as "not supported by this build". It prints Markdown tables with the medians and the ratios pgshard / direct,
// PASS/FAIL lines for the targets (full scan and COPY at least 0.7× direct; the full scan's RSS growth under
// 64 MB), and writes every run as JSON to bench/results/merge-<UTC time>.json. A missed target never makes the exit
// status non-zero: a benchmark reports. Everything it started (pgshard, Postgres) it stops by pid at the end and on
// Ctrl-C; a run killed outright is cleaned up by the next one.
package main
