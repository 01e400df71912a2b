package merge

import (
	"strconv"

	"github.com/pgshard/pgshard/codec"
)

// Type OIDs the merger knows (pg_type.oid).
const (
	oidBool        = 16
	oidBytea       = 17
	oidName        = 19
	oidInt8        = 20
	oidInt2        = 21
	oidInt4        = 23
	oidText        = 25
	oidOID         = 26
	oidFloat4      = 700
	oidFloat8      = 701
	oidBpchar      = 1042
	oidVarchar     = 1043
	oidDate        = 1082
	oidTime        = 1083
	oidTimestamp   = 1114
	oidTimestamptz = 1184
	oidNumeric     = 1700
	oidUUID        = 2950
)

// kind is how the merger reads, compares and writes a value of a type.
type kind uint8

const (
	kUnsupported kind = iota // compared by nothing; equal only when the bytes are
	kBool
	kInt2
	kInt4
	kInt8
	kOID
	kFloat4
	kFloat8
	kNumeric
	kText   // text, varchar, name: bytes (C collation)
	kBpchar // bytes without trailing spaces
	kBytea
	kDate
	kTime
	kTimestamp
	kTimestamptz
	kUUID
)

func kindOf(oid uint32) kind {
	switch oid {
	case oidBool:
		return kBool
	case oidBytea:
		return kBytea
	case oidName, oidText, oidVarchar:
		return kText
	case oidInt8:
		return kInt8
	case oidInt2:
		return kInt2
	case oidInt4:
		return kInt4
	case oidOID:
		return kOID
	case oidFloat4:
		return kFloat4
	case oidFloat8:
		return kFloat8
	case oidBpchar:
		return kBpchar
	case oidDate:
		return kDate
	case oidTime:
		return kTime
	case oidTimestamp:
		return kTimestamp
	case oidTimestamptz:
		return kTimestamptz
	case oidNumeric:
		return kNumeric
	case oidUUID:
		return kUUID
	}
	return kUnsupported
}

// isInt reports the integer kinds (whose values fit an int64).
func (k kind) isInt() bool { return k == kInt2 || k == kInt4 || k == kInt8 || k == kOID }

// isNumber reports the kinds of the numeric family (integers, numeric, floats).
func (k kind) isNumber() bool { return k.isInt() || k == kNumeric || k == kFloat4 || k == kFloat8 }

// isString reports the character kinds.
func (k kind) isString() bool { return k == kText || k == kBpchar }

// typeName names a type as Postgres's format_type does, for messages.
func typeName(oid uint32) string {
	switch oid {
	case oidBool:
		return "boolean"
	case oidBytea:
		return "bytea"
	case oidName:
		return "name"
	case oidInt8:
		return "bigint"
	case oidInt2:
		return "smallint"
	case oidInt4:
		return "integer"
	case oidText:
		return "text"
	case oidOID:
		return "oid"
	case oidFloat4:
		return "real"
	case oidFloat8:
		return "double precision"
	case oidBpchar:
		return "character"
	case oidVarchar:
		return "character varying"
	case oidDate:
		return "date"
	case oidTime:
		return "time without time zone"
	case oidTimestamp:
		return "timestamp without time zone"
	case oidTimestamptz:
		return "timestamp with time zone"
	case oidNumeric:
		return "numeric"
	case oidUUID:
		return "uuid"
	case 1186:
		return "interval"
	case 114:
		return "json"
	case 3802:
		return "jsonb"
	case 790:
		return "money"
	case 1266:
		return "time with time zone"
	case 869:
		return "inet"
	case 650:
		return "cidr"
	case 1560:
		return "bit"
	case 1562:
		return "bit varying"
	case 142:
		return "xml"
	}
	return "type with OID " + strconv.FormatUint(uint64(oid), 10)
}

// col is what the merger keeps of one column of the shards' RowDescription.
type col struct {
	codec.FieldDescription
	kind kind
}

// errMalformed is a value or message from a server the merger cannot read.
func errMalformed(what string) *codec.Error {
	return codec.NewError(codec.SQLStateProtocolViolation, "pgshard: malformed "+what+" from a shard")
}

// errValue reports a value of a column that does not read as its type.
func errValue(k kind, format int16) *codec.Error {
	if format == codec.FormatBinary {
		return codec.NewError(codec.SQLStateInvalidBinaryRepresentation,
			"pgshard: invalid binary "+kindName(k)+" value from a shard")
	}
	return codec.NewError(codec.SQLStateInvalidTextRepresentation,
		"pgshard: invalid "+kindName(k)+" value from a shard")
}

func kindName(k kind) string {
	switch k {
	case kBool:
		return "boolean"
	case kInt2:
		return "smallint"
	case kInt4:
		return "integer"
	case kInt8:
		return "bigint"
	case kOID:
		return "oid"
	case kFloat4:
		return "real"
	case kFloat8:
		return "double precision"
	case kNumeric:
		return "numeric"
	case kText:
		return "text"
	case kBpchar:
		return "character"
	case kBytea:
		return "bytea"
	case kDate:
		return "date"
	case kTime:
		return "time"
	case kTimestamp:
		return "timestamp"
	case kTimestamptz:
		return "timestamptz"
	case kUUID:
		return "uuid"
	}
	return "unknown"
}
