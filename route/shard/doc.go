// Package shard owns the sharding function: which shard of a database holds a given value of a sharded
// table's key column.
//
// The hash mapping is exactly Postgres's hash partitioning with one key column, so shard i of N holds the
// rows a table partitioned FOR VALUES WITH (MODULUS N, REMAINDER i) would put in partition i: the same
// extended hash functions (hashint2extended, hashint4extended, hashint8extended, hashtextextended under a
// deterministic collation, uuid_hash_extended), seeded with HASH_PARTITION_SEED and combined with
// hash_combine64 as compute_partition_hash_value does. The list and range mappings come from config.yaml.
// oracle_test.go checks all of it against hash-partitioned tables of a real server.
//
// A Mapper reads key values in Postgres's text form (literals, text-format parameters) as the types'
// input functions do, and in binary form (binary parameters), and refuses malformed, out-of-range and
// unmapped values with Postgres errors (22P02, 22P03, 22003, 22023). The hot path (ShardText, ShardBinary,
// ShardInt on integer, text and uuid keys) does not allocate.
//
// Assumptions, as Postgres's own partitioning makes them: a text key is hashed as the bytes the server
// stores, so clients must send text keys in the server encoding (UTF-8 client_encoding with a UTF8
// server); and the servers are little-endian (Postgres hashes native 32-bit words, so a big-endian server
// would place rows differently).
//
// The package uses only the standard library, config and codec.
package shard
