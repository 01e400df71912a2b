// Command reshard-bench measures the data copy of `pgshard reshard` with 1, 2 and 4 parallel streams against a
// single `pg_dump | psql` of the same table in the same run, and the write pause at the cutover (`make
// bench-reshard`; bench/README.md says how to read the figures).
//
// It starts one Postgres cluster of its own on 127.0.0.1 in a temporary directory and fills database src once
// with a pgbench_accounts-like table, accounts (aid bigint primary key, bid, abalance, filler char(84)), of -size
// bytes of heap (pg_relation_size), and an empty history table. Then, per repetition:
//
//   - pg_dump | psql: `pg_dump --data-only -t accounts src | psql dump_dst`, dump_dst fresh with accounts created
//     empty from the source's pre-data schema (no primary key), timed from pg_dump's start to psql's exit;
//   - for each -streams value: pgshard (bin/pgshard, built with `make build`) serves database app from src alone,
//     and `pgshard reshard --workers <streams>` moves it to two fresh, empty databases dst_0 and dst_1 (hash of
//     aid). Its status.json gives the copy's rows and seconds and the write pause at the cutover. Afterwards the
//     new shards are checked: every account there and on its hash partition's shard, balances and history equal
//     to what the load committed.
//
// During every run a light write load (-load-clients clients × -load-rate transactions per second, UPDATE
// accounts + INSERT history) goes through pgshard, so that the cutover's write pause is measured under writes; its
// longest transaction is the pause as a client sees it. The tables (Markdown on stdout, and with every run as JSON
// in bench/results/reshard-<UTC time>.json) give rows, seconds, rows/s, MB/s (heap bytes ÷ seconds), the ratio to
// pg_dump | psql and the write pause, with PASS/FAIL for the targets: 4 streams beat pg_dump | psql, the
// pause under 2 s. A missed target never makes the exit status non-zero. Everything it started (Postgres,
// pgshard, pgshard reshard) it stops by pid at the end and on Ctrl-C; a run killed outright is cleaned up by the
// next one.
package main
