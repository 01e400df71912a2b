package shard

import "fmt"

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
