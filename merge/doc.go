// Package merge combines the result rows of several shards that ran the same (possibly rewritten) statement
// into the rows one Postgres holding all the data would return: a streaming k-way merge for ORDER BY,
// LIMIT/OFFSET, aggregates finished in the proxy (count, sum, min, max, avg from sum and count, bool_and,
// bool_or, string_agg, array_agg), GROUP BY, HAVING, DISTINCT and DISTINCT ON.
//
// It works on protocol messages (RowDescription, DataRow) and knows nothing of connections: the loop feeds it
// each shard's rows as they arrive and writes what it emits. The router decides what to merge (Spec); the
// values of LIMIT, OFFSET and HAVING's constants come with each execution (Args).
package merge
