// Package reshard moves a live database from N shards to M shards with only what stock Postgres offers:
// pg_dump for the schema, an exported snapshot and binary COPY for the data, and logical replication
// (pgoutput, decoded by jackc/pglogrepl) for the changes made while the data is copied.
//
// A run goes through phases, each of which can be resumed after a crash:
//
//  1. check: wal_level, privileges, versions, a primary key or replica identity on every table, an empty
//     destination; each failure is one message naming the fix.
//  2. schema: `pg_dump --schema-only --section=pre-data` of source shard 0 applied to every destination shard
//     in one transaction, together with the pgshard_reshard schema that holds the run's durable state.
//  3. copy: on each source shard a publication and a logical slot whose exported snapshot fixes the
//     consistent point; workers import that snapshot and copy tables (large ones in ctid ranges) with binary
//     COPY, cutting the stream into rows and sending each row to the destination shard the new shard
//     function picks. Replicated tables are read from source shard 0 and written to every destination.
//  4. indexes: the post-data section (primary keys, indexes, constraints, triggers) after the data.
//  5. streaming: the slots' changes are applied to the destinations, one applier per (source, destination)
//     pair, so changes to one row keep their order; each applier commits the source transactions it applied
//     together with their end LSN in pgshard_reshard.progress, so a restarted run skips exactly what was
//     applied, and the slot is confirmed only up to what every destination has made durable.
//  6. cutover: through the proxy's admin console PAUSE the database (in-flight transactions finish), wait
//     until a marker written into each source's WAL has been applied, compare row counts, advance sequences,
//     rewrite the config file with the new shards, RELOAD, RESUME. A failure before RELOAD resumes the old
//     shards untouched.
//  7. cleanup: drop the slots, publications and the pgshard_reshard schema; --abort does the same for a run
//     that failed, and empties the destination tables it created.
//
// Progress goes to the terminal and, as reshard/status files, to the proxy's SHOW RESHARD.
package reshard
