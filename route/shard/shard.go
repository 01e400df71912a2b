package shard

import (
	"fmt"

	"github.com/pgshard/pgshard/codec"
	"github.com/pgshard/pgshard/config"
)

// Type is the type of a shard key column.
type Type uint8

// Shard key types. Varchar keys are Text: they hash and compare alike.
const (
	Int2 Type = iota + 1 // smallint
	Int4                 // integer
	Int8                 // bigint
	Text                 // text, varchar
	UUID                 // uuid
)

// ParseType reads a config.yaml key type: smallint, integer, bigint, text, varchar or uuid.
func ParseType(s string) (Type, error) {
	switch s {
	case "smallint":
		return Int2, nil
	case "integer":
		return Int4, nil
	case "bigint":
		return Int8, nil
	case "text", "varchar":
		return Text, nil
	case "uuid":
		return UUID, nil
	}
	return 0, fmt.Errorf("unknown shard key type %q (want smallint, integer, bigint, text, varchar or uuid)", s)
}

// String is the type's SQL name.
func (t Type) String() string {
	switch t {
	case Int2:
		return "smallint"
	case Int4:
		return "integer"
	case Int8:
		return "bigint"
	case Text:
		return "text"
	case UUID:
		return "uuid"
	}
	return fmt.Sprintf("Type(%d)", uint8(t))
}

// IsInt tells whether t is smallint, integer or bigint.
func (t Type) IsInt() bool { return t == Int2 || t == Int4 || t == Int8 }

// Mapper maps key values of one sharded table to shard indexes. It is immutable and safe for concurrent use.
type Mapper struct {
	typ    Type
	shards int
}

// NewMapper builds the mapper of a config.yaml sharded_tables entry for a database of shards shards.
func NewMapper(t *config.ShardedTable, shards int) (*Mapper, error) {
	typ, err := ParseType(t.Type)
	if err != nil {
		return nil, err
	}
	return &Mapper{typ: typ, shards: shards}, nil
}

// Type is the type of the key column.
func (m *Mapper) Type() Type { return m.typ }

// ShardText maps a key value in Postgres text form.
func (m *Mapper) ShardText(v []byte) (int, *codec.Error) { return 0, nil }

// ShardBinary maps a key value in Postgres binary form.
func (m *Mapper) ShardBinary(v []byte) (int, *codec.Error) { return 0, nil }

// ShardInt maps an integer key value.
func (m *Mapper) ShardInt(v int64) (int, *codec.Error) { return 0, nil }
