// Package merge combines the result rows of several shards that ran the same (possibly rewritten) statement
// into the rows one Postgres holding all the data would return: a streaming k-way merge for ORDER BY,
// LIMIT/OFFSET, aggregates finished in the proxy (count, sum, min, max, avg from sum and count, bool_and,
// bool_or, string_agg, array_agg), GROUP BY, HAVING, DISTINCT and DISTINCT ON.
//
// It works on protocol messages (RowDescription, DataRow) and knows nothing of connections: the loop feeds it
// each shard's rows as they arrive and writes what it emits. The router decides what to merge (Spec); the
// values of LIMIT, OFFSET and HAVING's constants come with each execution (Args).
//
// Values are read in the format the RowDescription gives (text or binary) and compared as Postgres compares
// them: numbers numerically (numeric and float NaN above everything, -0 = 0), text, varchar and name byte-wise
// (the C collation), bpchar without trailing spaces, bytea, uuid and bool by their bytes, dates and times as
// the instants they name (text in DateStyle ISO; timestamptz by its UTC offset). Aggregates the proxy computes
// are written as Postgres's output and send functions write them (numeric scales and division as numeric.c,
// floats as float8out/float4out's shortest round-trip digits). Equality for GROUP BY and DISTINCT is the
// type's (1.5 = 1.50); types the merger does not know compare equal only when their bytes are.
//
// Files: merger.go (the Merger: description checks, pass-through, ordered merge, DISTINCT, LIMIT), agg.go
// (groups and aggregates), having.go (HAVING), key.go (reading and comparing values), numeric.go, float.go,
// datetime.go and array.go (the types' formats).
//
// Limits: text is ordered in the C collation, so ORDER BY a text column merges correctly only when the shards
// sort it that way too (COLLATE "C", or a C/POSIX database); dates and times in text must use DateStyle ISO; a
// HAVING constant for a timestamptz without an offset is read as UTC; interval, money, json and other types
// cannot be ORDER BY keys or min/max (0A000 at Describe) but pass through and group by their bytes.
package merge
