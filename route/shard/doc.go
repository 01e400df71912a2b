// Package shard owns the sharding function: which shard of a database holds a given value of a sharded
// table's key column.
//
// The hash mapping is exactly Postgres's hash partitioning with one key column, so shard i of N holds the
// rows a table partitioned FOR VALUES WITH (MODULUS N, REMAINDER i) would put in partition i: the same
// extended hash functions (hashint2extended, hashint4extended, hashint8extended, hashtextextended under a
// deterministic collation, uuid_hash_extended), seeded with HASH_PARTITION_SEED and combined with
// hash_combine64 as compute_partition_hash_value does. The list and range mappings come from config.yaml.
//
// A Mapper reads key values in Postgres's text form (literals, text-format parameters) and binary form
// (binary parameters), and refuses malformed or unmapped values with Postgres errors (22P02, 22003,
// 22023). The hot path (ShardText, ShardBinary, ShardInt on integer and short text keys) does not
// allocate. The package uses only the standard library, config and codec.
package shard
