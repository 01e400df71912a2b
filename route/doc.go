// Package route decides where each statement goes: which shards of a database run it, whether it writes, or
// why it is refused.
//
// The hot path never parses SQL. Router.Query normalizes the statement with package lex (literals become
// slots, pgshard comments are read, the normalized text is fingerprinted) and looks the fingerprint up in a
// bounded LRU plan cache (one per Router, so per event loop, without locks). Only on a miss does it parse the
// statement with pg_query (libpg_query through cgo; route is the only package that links it) and build a
// Plan: the sharded tables the statement touches, the conditions on their shard keys as references to literal
// slots and $n parameters, and what refuses it. Evaluating a Plan reads the literals' text from the query by
// their byte ranges and maps them with the shard functions of package route/shard, so one Plan serves every
// query of the same shape whatever its literals, and a cache hit allocates nothing. Extended-protocol
// statements are planned once by Router.Prepare (cached by their exact text) and routed per execution by
// Router.Bind with the bound parameter values.
//
// The routing rules, in short (the tests have one case or more per rule):
//
//   - A sharded table (sharded_tables, by name or, for an entry without table:, every table not listed by
//     name) is read or written on the shards its key conditions allow: key = value or key IN (values) reached
//     through AND, with literals, $n and casts of them as values; joins on the key (a.k = b.k, JOIN USING)
//     share conditions. Anything else (OR, NOT, <, = ANY($1), f(key), no condition) means every shard. Two
//     conditions intersect; an empty result (key = NULL, key = 1 AND key = 2) goes to any one shard.
//   - Replicated tables (replicated_tables) and, by default, unlisted ones are read on any one shard and
//     written on every shard; with unlisted_tables: error a query naming an unlisted table is refused (DDL is
//     not). Catalog tables (pg_catalog, information_schema, pg_*) and statements without tables go to any one
//     shard; so do sequences (nextval, marked Write), which each shard keeps on its own: a sequence does not
//     give keys unique across shards. SELECT ... FOR UPDATE/SHARE is marked Write (it locks rows).
//   - INSERT ... VALUES into a sharded table routes each row by its key; the rows of a simple Query that
//     belong to several shards are split into one INSERT per shard (Decision.Split). An UPDATE (or ON
//     CONFLICT DO UPDATE) that assigns the shard key is refused.
//   - A statement that runs on several shards gets the plain concatenation of their results, so it is
//     refused (0A000, at Bind/Query time: the same plan on one shard is fine) when that would be wrong: ORDER
//     BY, LIMIT, OFFSET, aggregates, GROUP BY, HAVING, DISTINCT, window functions, UNION/INTERSECT/EXCEPT
//     (UNION ALL is fine) in the result or in a derived table or WITH query over sharded tables; rows of
//     sharded tables combined without a join on their keys (each shard would only see its own part of the
//     other table); result rows that do not come from a sharded table (SELECT FROM a replicated table WHERE
//     x IN (SELECT ... FROM a sharded one) would repeat them once per shard). A subquery expression joined
//     to its outer query on the key is evaluated on the shard of the outer row, so it may aggregate.
//   - DDL, VACUUM, ANALYZE, DO and CALL run on every shard; transaction control, SET, SHOW, LISTEN, PREPARE,
//     EXECUTE, FETCH... go to any one shard and ignore hints: the proxy handles them.
//   - /* pgshard: shard=N */ and /* pgshard: key=V */ comments, then the session's pgshard.shard and
//     pgshard.sharding_key, override the plan's routing (and lift its "not supported yet" refusals).
package route
