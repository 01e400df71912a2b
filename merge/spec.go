package merge

// Spec says how the rows of several shards running one statement combine. The router builds it from the
// statement (with the statement it sends to the shards, which may carry extra hidden columns); it is
// immutable and shared by every execution and every loop.
//
// The shards' rows have the columns of the rewritten statement (shard columns). From each shard row (or, when
// Aggregate is set, from each group of shard rows) the merger computes Values; the first Visible of them are
// the client's columns, the rest are hidden helpers that ORDER BY, HAVING or DISTINCT ON need.
type Spec struct {
	Values  []Value
	Visible int

	// Order is ORDER BY: keys on Values, most significant first. Without Aggregate the shards sort their own
	// rows the same way and the merger merges the sorted streams; with Aggregate it sorts the final groups.
	Order []SortKey

	// Aggregate: the rows are partial results of aggregates, grouped by Group (shard columns; none: a single
	// group over all rows, which always yields one row, as Postgres does for an aggregate without GROUP BY).
	Aggregate bool
	Group     []int
	Having    *Cond // evaluated on a group's Values; nil: every group

	// Distinct drops repeated rows (all Visible values equal). DistinctOn keeps the first row (in Order) of
	// each run of rows whose DistinctOn values (indexes into Values) are equal.
	Distinct   bool
	DistinctOn []int

	// Limit/Offset: the statement has them (the numbers come with Args). The shards were sent
	// LIMIT limit+offset and no OFFSET.
	Limit, Offset bool
}

// Value is one computed column.
type Value struct {
	Agg  AggKind
	Col  int // the shard column: the value itself (AggNone) or the aggregate's partial result
	Col2 int // AggAvg: the shard column with the count (Col has the sum); AggStringAgg: the delimiter
	// Name overrides the column name in the client's RowDescription ("" keeps the shard column's).
	Name string
}

// AggKind is how a Value's partial results from each shard combine.
type AggKind uint8

const (
	AggNone      AggKind = iota // not an aggregate: the column's value (a group key when Aggregate)
	AggCount                    // count(*) / count(x): int8 partials summed
	AggSum                      // sum(x): partials summed in their type (int8, numeric, float4, float8)
	AggMin                      // min(x)
	AggMax                      // max(x)
	AggAvg                      // avg(x): sum in Col, count in Col2; numeric (or float8 for float sums)
	AggBoolAnd                  // bool_and / every
	AggBoolOr                   // bool_or
	AggStringAgg                // string_agg(x, delimiter): partials joined by the delimiter (Col2)
	AggArrayAgg                 // array_agg(x): partial arrays concatenated
)

// SortKey is one ORDER BY key.
type SortKey struct {
	Value      int // index into Values
	Desc       bool
	NullsFirst bool // Postgres's default: NULLS FIRST for DESC, NULLS LAST for ASC (the router fills it in)
}

// Cond is a HAVING predicate over a group's final Values and per-execution constants.
type Cond struct {
	Op   CondOp
	Args []*Cond // CondAnd, CondOr: two or more; CondNot: one
	L, R Operand // CondCmp: L op R; CondIsNull, CondIsNotNull: L
	Cmp  CmpOp
}

// CondOp is the kind of a Cond node.
type CondOp uint8

const (
	CondAnd CondOp = iota + 1
	CondOr
	CondNot
	CondCmp
	CondIsNull
	CondIsNotNull
)

// CmpOp is a comparison.
type CmpOp uint8

const (
	CmpEq CmpOp = iota + 1
	CmpNe
	CmpLt
	CmpLe
	CmpGt
	CmpGe
)

// Operand is a Value (Const < 0) or a constant of the statement (Args.Consts[Const], compared as the type of
// the Value on the other side).
type Operand struct {
	Value int
	Const int
}

// Args are the numbers of one execution.
type Args struct {
	Limit  int64 // -1: no limit (none, or LIMIT ALL / NULL)
	Offset int64 // 0: none
	// Consts are HAVING's constants (nil: NULL), in text form unless ConstFormats says binary (a parameter
	// sent in binary: then it is read as the binary value of the other side's type, which is the type
	// Postgres gave the parameter).
	Consts       [][]byte
	ConstFormats []int16
}
