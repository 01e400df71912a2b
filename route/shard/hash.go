package shard

import (
	"encoding/binary"
	"math/bits"
)

// What follows is Bob Jenkins's lookup3 hash as Postgres uses it (src/common/hashfn.c), in its 64-bit
// "extended" form, plus the way partitioning combines the key's hash (partbounds.c,
// compute_partition_hash_value). Postgres reads the key's bytes as native 32-bit words; every server we
// know of is little-endian, so the words here are little-endian too. (A big-endian server places rows
// differently: Postgres itself does not carry hash partitions across endianness.)

// partitionSeed is HASH_PARTITION_SEED (src/include/catalog/partition.h).
const partitionSeed uint64 = 0x7A5B22367996DCFD

// combineConst is the constant of hash_combine64 (src/include/common/hashfn.h).
const combineConst uint64 = 0x49a0f4dd15e5a8e3

// golden is the initial value of lookup3's state, before the length is added.
const golden uint32 = 0x9e3779b9 + 3923095

func mix(a, b, c uint32) (uint32, uint32, uint32) {
	a -= c
	a ^= bits.RotateLeft32(c, 4)
	c += b
	b -= a
	b ^= bits.RotateLeft32(a, 6)
	a += c
	c -= b
	c ^= bits.RotateLeft32(b, 8)
	b += a
	a -= c
	a ^= bits.RotateLeft32(c, 16)
	c += b
	b -= a
	b ^= bits.RotateLeft32(a, 19)
	a += c
	c -= b
	c ^= bits.RotateLeft32(b, 4)
	b += a
	return a, b, c
}

func final(a, b, c uint32) (uint32, uint32) {
	c ^= b
	c -= bits.RotateLeft32(b, 14)
	a ^= c
	a -= bits.RotateLeft32(c, 11)
	b ^= a
	b -= bits.RotateLeft32(a, 25)
	c ^= b
	c -= bits.RotateLeft32(b, 16)
	a ^= c
	a -= bits.RotateLeft32(c, 4)
	b ^= a
	b -= bits.RotateLeft32(a, 14)
	c ^= b
	c -= bits.RotateLeft32(b, 24)
	return b, c
}

// seeded is lookup3's state for a key of n bytes once the seed is mixed in.
func seeded(n uint32, seed uint64) (a, b, c uint32) {
	a = golden + n
	b, c = a, a
	if seed != 0 {
		a += uint32(seed >> 32)
		b += uint32(seed)
		a, b, c = mix(a, b, c)
	}
	return a, b, c
}

// hashBytesExtended is hash_bytes_extended(k, len(k), seed).
func hashBytesExtended(k []byte, seed uint64) uint64 {
	a, b, c := seeded(uint32(len(k)), seed)
	for len(k) >= 12 {
		a += binary.LittleEndian.Uint32(k)
		b += binary.LittleEndian.Uint32(k[4:])
		c += binary.LittleEndian.Uint32(k[8:])
		a, b, c = mix(a, b, c)
		k = k[12:]
	}
	// The last 0 to 11 bytes; the lowest byte of c stays out of it (lookup3 keeps it for the length).
	switch len(k) {
	case 11:
		c += uint32(k[10]) << 24
		fallthrough
	case 10:
		c += uint32(k[9]) << 16
		fallthrough
	case 9:
		c += uint32(k[8]) << 8
		fallthrough
	case 8:
		b += binary.LittleEndian.Uint32(k[4:])
		a += binary.LittleEndian.Uint32(k)
	case 7:
		b += uint32(k[6]) << 16
		fallthrough
	case 6:
		b += uint32(k[5]) << 8
		fallthrough
	case 5:
		b += uint32(k[4])
		fallthrough
	case 4:
		a += binary.LittleEndian.Uint32(k)
	case 3:
		a += uint32(k[2]) << 16
		fallthrough
	case 2:
		a += uint32(k[1]) << 8
		fallthrough
	case 1:
		a += uint32(k[0])
	}
	hb, hc := final(a, b, c)
	return uint64(hb)<<32 | uint64(hc)
}

// Lookup3's state for a 4-byte key after HASH_PARTITION_SEED is mixed in: the same for every integer key.
var int4A, int4B, int4C = seeded(4, partitionSeed)

// hashUint32Extended is hash_bytes_uint32_extended(k, HASH_PARTITION_SEED).
func hashUint32Extended(k uint32) uint64 {
	b, c := final(int4A+k, int4B, int4C)
	return uint64(b)<<32 | uint64(c)
}

// combine is compute_partition_hash_value for one key column: hash_combine64(0, h).
func combine(h uint64) uint64 { return h + combineConst }

// HashInt is Postgres's partition hash of an integer key of type t: hash_combine64(0, hashint8extended(v,
// HASH_PARTITION_SEED)). hashint2extended and hashint4extended give the same hash for every value their
// type holds, so t does not change the result; it is there for callers that think in column types.
func HashInt(t Type, v int64) uint64 {
	_ = t
	lo, hi := uint32(v), uint32(uint64(v)>>32)
	if v >= 0 {
		lo ^= hi
	} else {
		lo ^= ^hi
	}
	return combine(hashUint32Extended(lo))
}

// HashBytes is Postgres's partition hash of a text or varchar key (under a deterministic collation, as
// every default collation is): hash_combine64(0, hash_bytes_extended(v, HASH_PARTITION_SEED)) over the
// value's bytes in the server encoding.
func HashBytes(v []byte) uint64 { return combine(hashBytesExtended(v, partitionSeed)) }

// HashUUID is Postgres's partition hash of a uuid key: uuid_hash_extended hashes its 16 bytes like
// HashBytes does.
func HashUUID(u [16]byte) uint64 { return combine(hashBytesExtended(u[:], partitionSeed)) }
