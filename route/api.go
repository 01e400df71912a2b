package route

import (
	"github.com/pgshard/pgshard/codec"
)

// MaxShards bounds the shards of one database: shard sets are 64-bit masks.
const MaxShards = 64

// Session is what the client's session says about routing: SET pgshard.shard / SET pgshard.sharding_key
// (session or LOCAL), kept by the proxy. A comment hint in the statement wins over the session's.
type Session struct {
	Shard      int    // from pgshard.shard, -1 when unset
	Key        string // from pgshard.sharding_key
	HasKey     bool
	CrossShard CrossShard // from pgshard.cross_shard (crossshard.go)
	// KeyAt is the answer to a Decision.NeedKey, for routing the statement that asked again.
	KeyAt *KeyPosition
	// Gathered is the answer to a Decision.Gather, for routing the statement that asked again: for each table
	// of Gather.SQL, the rows the shards returned. GatherErr instead when the shards refused Gather.SQL (or
	// their rows passed the limit).
	Gathered  []Rows
	GatherErr *codec.Error
}

// NoSession is a session with no routing settings.
var NoSession = Session{Shard: -1}

// Params are the parameter values of a Bind, as the client sent them.
type Params struct {
	Values  [][]byte // nil is SQL NULL
	Formats []int16  // as in Bind: none = all text, one = all alike, else one per value (0 text, 1 binary)
	Types   []uint32 // parameter type OIDs from the Parse (may be shorter than Values, 0 = unspecified)
}

// Decision says where one statement (or one Query string) goes.
type Decision struct {
	// Shards is the set of shards the statement runs on (bit i = shard i). Zero when Any is set.
	Shards uint64
	// Any: one shard, whichever the proxy likes (no table, catalog tables, SHOW, a read of replicated
	// tables). The proxy prefers a shard the client's transaction already uses, else round robin.
	Any bool
	// Write: the statement may change data or schema (a transaction that wrote on several shards is a
	// multi-shard write, for two-phase commit).
	Write bool
	// Mirror: the statement does the same on every shard it runs on (a write to a replicated or unlisted
	// table, DDL): the proxy reports one shard's row count, not the sum. (Lead: please set it.)
	Mirror bool
	// Err refuses the statement: the client gets this error (0A000, 22023, ...) and nothing runs.
	Err *codec.Error
	// NeedKey: an INSERT without a column list into a sharded table, which cannot be routed before the proxy
	// runs NeedKey.Query on a shard and routes it again with the answer in Session.KeyAt (positional.go).
	NeedKey *KeyPosition
	// Scatter: the statement runs on several shards because a sharded table in it has no key condition that
	// restricts it (a read merged from every shard, an UPDATE or DELETE without the key). Keys that name
	// several shards, writes that split by row and statements that run everywhere by nature (DDL, replicated
	// tables) are not scatters. pgshard.cross_shard applies to scatters (crossshard.go).
	Scatter bool
	// Warning, when set, goes to the client (a NoticeResponse) before the statement's answers: a scatter
	// that the session's pgshard.cross_shard = warn lets run.
	Warning *codec.Error
	// Split, when not empty, replaces the statement: the statement text to run on each shard (a multi-row
	// INSERT whose rows belong to several shards). Shards then has exactly the bits of the pieces.
	Split []Piece
	// Merge, for a SELECT whose rows from several shards the proxy combines (ORDER BY, LIMIT, aggregates,
	// GROUP BY, DISTINCT): the statement the shards run and how their rows merge.
	Merge *Merge
	// CopyOut, for a COPY ... TO STDOUT run on several shards: what the proxy must know to concatenate their
	// outputs into one.
	CopyOut *CopyOut
	// Copy, for a COPY ... FROM STDIN into a sharded table (Shards then has every shard): how the proxy
	// splits the rows among the shards.
	Copy *CopyIn
	// Gather, for a SELECT that the coordinator step answers (coordinate.go): the query whose rows the proxy
	// gathers from every shard of Shards before the statement is routed again with them (Session.Gathered).
	Gather *Gather
	// Coordinated, then: the statement to run instead, on one shard of Shards (any: the proxy picks, as for
	// Any), with the gathered rows in its text. A Bind's parameters are its parameters.
	Coordinated string
}

// Rows are a table's gathered rows as the elements of an array literal ("(1,a)","(2,b)" without the braces),
// in chunks that split no element: their concatenation is the text.
type Rows [][]byte

// Gather is the first step of a coordinated SELECT: SQL returns (table number, row text) pairs for Tables
// tables.
type Gather struct {
	SQL    string
	Tables int
	Why    string // the refusal the coordinator step takes over from: what no merge of the shards' rows computes
}

// CopyOut is a COPY ... TO STDOUT's format: with HEADER the client gets one header line; in binary format one
// file header and one trailer.
type CopyOut struct {
	Header bool
	Binary bool
}

// Plans: a *Plan returned by Router.Prepare is immutable and may be used by every loop's Router.Bind (the
// proxy caches a named statement's Plan on the statement, which all loops share). (Lead's requirement.)

// Piece is the statement one shard runs when a statement is split.
type Piece struct {
	Shard int
	SQL   string
	// Params, for a prepared statement's piece: the Bind's values (0-based) that are the piece's $1, $2, ...
	Params []int
}
