package route

import (
	"math/bits"
	"strconv"
	"strings"

	"github.com/pgshard/pgshard/codec"
)

// CrossShard is what a session does with a scatter: a statement over sharded tables that runs on several
// shards because no shard key decides it (a read merged from every shard, an UPDATE or DELETE without the
// key). Statements that name their keys run where the keys say even when those are several shards (a
// multi-row INSERT split by row, COPY), and so do those that must run everywhere (DDL, writes to replicated
// tables): neither is a scatter. Set per database (cross_shard in the config) and per session
// (SET pgshard.cross_shard), as a guard for applications that mean every query to hit one shard.
type CrossShard uint8

const (
	CrossShardAllow CrossShard = iota // run it (the default)
	CrossShardWarn                    // run it, with a WARNING before its answers
	CrossShardDeny                    // refuse it with 0A000
)

var crossShardNames = [...]string{"allow", "warn", "deny"}

func (c CrossShard) String() string { return crossShardNames[c] }

// ParseCrossShard reads a pgshard.cross_shard value (any case).
func ParseCrossShard(s string) (CrossShard, bool) {
	for i, n := range crossShardNames {
		if strings.EqualFold(s, n) {
			return CrossShard(i), true
		}
	}
	return CrossShardAllow, false
}

// guardScatter applies the session's pgshard.cross_shard to d, the decision for a statement of plan p.
func (p *Plan) guardScatter(d Decision, sess *Session) Decision {
	if sess.CrossShard == CrossShardAllow || !d.Scatter {
		return d
	}
	what := "a read"
	if d.Write {
		what = "a write"
	}
	msg := what + " on " + strconv.Itoa(bits.OnesCount64(d.Shards)) + " shards: no shard key in the statement decides its shard"
	if sess.CrossShard == CrossShardDeny {
		return Decision{Err: codec.NewError(codec.SQLStateFeatureNotSupported, "cross-shard statement refused: "+msg+
			" (pgshard.cross_shard is deny)").
			WithHint("compare the shard key with a value in the statement, name the shard (/* pgshard: shard=N */), " +
				"or SET pgshard.cross_shard = allow"), Write: d.Write}
	}
	d.Warning = &codec.Error{Severity: "WARNING", Code: codec.SQLStateWarning, Message: "cross-shard statement: " + msg,
		Hint: "pgshard.cross_shard is warn; compare the shard key with a value to run on one shard"}
	return d
}
