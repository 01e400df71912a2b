package loop

import (
	"testing"

	"github.com/pgshard/pgshard/codec"
)

// The fan-out's merging of several shards' answers into one, without servers: each case feeds answers of
// shards 0 and 1 (bits 1 and 2) in the given order and checks what the client gets.

type shardAnswer struct {
	shard uint64
	msg   []byte
}

// fanIn runs answers through a fan-out over shards 0 and 1 and returns what passes to the client.
func fanIn(mirror bool, answers ...shardAnswer) ([]byte, *fanout) {
	var g fanout
	g.start(3, mirror)
	var out []byte
	for _, a := range answers {
		pass, extra := g.merge(a.msg, nil, a.shard)
		if pass {
			out = append(out, a.msg...)
		}
		out = append(out, extra...)
	}
	return out, &g
}

func tagOf(t *testing.T, b []byte) string {
	t.Helper()
	for pos := 0; pos < len(b); pos += codec.MessageLen(b[pos:]) {
		if b[pos] == codec.CommandComplete {
			tag, _ := codec.ParseCommandComplete(b[pos+codec.HeaderLen : pos+codec.MessageLen(b[pos:])])
			return string(tag)
		}
	}
	return ""
}

func TestFanoutSumsRowCounts(t *testing.T) {
	out, g := fanIn(false,
		shardAnswer{1, codec.AppendRowDescriptionText(nil, "a")}, shardAnswer{2, codec.AppendRowDescriptionText(nil, "a")},
		shardAnswer{1, codec.AppendDataRowText(nil, []string{"1"}, nil)}, shardAnswer{2, codec.AppendDataRowText(nil, []string{"2"}, nil)},
		shardAnswer{2, complete(nil, "SELECT 1")}, shardAnswer{1, complete(nil, "SELECT 1")},
		shardAnswer{1, rfq(nil, codec.TxIdle)}, shardAnswer{2, rfq(nil, codec.TxIdle)})
	if got := types(out); got != "TDDCZ" {
		t.Fatalf("client got %q, want one RowDescription, both rows, one CommandComplete, one ReadyForQuery", got)
	}
	if tag := tagOf(t, out); tag != "SELECT 2" {
		t.Fatalf("tag %q, want SELECT 2", tag)
	}
	if g.active {
		t.Fatal("the fan-out is still active after both ReadyForQuery")
	}
}

func TestFanoutOfAMirroredWriteReportsOneShard(t *testing.T) {
	out, _ := fanIn(true,
		shardAnswer{1, codec.AppendDataRowText(nil, []string{"r"}, nil)}, shardAnswer{2, codec.AppendDataRowText(nil, []string{"r"}, nil)},
		shardAnswer{1, complete(nil, "UPDATE 1")}, shardAnswer{2, complete(nil, "UPDATE 1")},
		shardAnswer{1, rfq(nil, codec.TxIdle)}, shardAnswer{2, rfq(nil, codec.TxIdle)})
	if got := types(out); got != "DCZ" {
		t.Fatalf("client got %q, want one shard's RETURNING row", got)
	}
	if tag := tagOf(t, out); tag != "UPDATE 1" {
		t.Fatalf("tag %q, want UPDATE 1 (one shard's count)", tag)
	}
}

func TestFanoutPassesTheFirstErrorOnly(t *testing.T) {
	out, _ := fanIn(false,
		shardAnswer{1, serverError(nil, "23505", "duplicate key")}, shardAnswer{2, codec.AppendDataRowText(nil, []string{"2"}, nil)},
		shardAnswer{2, serverError(nil, "57014", "canceling statement")},
		shardAnswer{1, rfq(nil, codec.TxIdle)}, shardAnswer{2, rfq(nil, codec.TxIdle)})
	if got := types(out); got != "EZ" {
		t.Fatalf("client got %q, want the first error, then ReadyForQuery", got)
	}
	if pe := errorIn(t, out); pe.Code != "23505" {
		t.Fatalf("error %s, want the first shard's 23505", pe.Code)
	}
}

func TestFanoutReadyForQueryStatus(t *testing.T) {
	for _, tc := range []struct {
		a, b, want byte
	}{{'I', 'I', 'I'}, {'I', 'T', 'T'}, {'T', 'E', 'E'}, {'E', 'T', 'E'}} {
		out, _ := fanIn(false, shardAnswer{1, rfq(nil, tc.a)}, shardAnswer{2, rfq(nil, tc.b)})
		if len(out) != 6 || out[5] != tc.want {
			t.Errorf("%c and %c: client got %q, want ReadyForQuery %c", tc.a, tc.b, out, tc.want)
		}
	}
}

func TestFanoutOneOffAnswersOnce(t *testing.T) {
	out, _ := fanIn(false,
		shardAnswer{1, codec.AppendEmpty(nil, codec.BindComplete)}, shardAnswer{2, codec.AppendEmpty(nil, codec.BindComplete)},
		shardAnswer{1, codec.AppendEmpty(nil, codec.NoData)}, shardAnswer{2, codec.AppendEmpty(nil, codec.NoData)},
		shardAnswer{1, codec.AppendEmptyQueryResponse(nil)}, shardAnswer{2, codec.AppendEmptyQueryResponse(nil)},
		shardAnswer{1, rfq(nil, codec.TxIdle)}, shardAnswer{2, rfq(nil, codec.TxIdle)})
	if got := types(out); got != "2nIZ" {
		t.Fatalf("client got %q, want each one-off answer once", got)
	}
}

func TestFanoutPortalSuspendedOnceAllShardsSuspended(t *testing.T) {
	out, _ := fanIn(false,
		shardAnswer{1, codec.AppendEmpty(nil, codec.PortalSuspended)},
		shardAnswer{2, complete(nil, "SELECT 0")})
	if got := types(out); got != "s" {
		t.Fatalf("client got %q, want one PortalSuspended once both shards are through", got)
	}
}

func TestFanoutCopyInWaitsForEveryShard(t *testing.T) {
	copyIn := codec.AppendCopyInResponse(nil, 0, []int16{0})
	out, _ := fanIn(false, shardAnswer{1, copyIn})
	if len(out) != 0 {
		t.Fatalf("client got %q after one shard's CopyInResponse, want nothing yet", types(out))
	}
	out, _ = fanIn(false, shardAnswer{1, copyIn}, shardAnswer{2, copyIn})
	if got := types(out); got != "G" {
		t.Fatalf("client got %q, want one CopyInResponse", got)
	}
}

func TestFanoutNoticesPassFromEveryShard(t *testing.T) {
	notice := codec.AppendNoticeResponse(nil, &codec.Error{Severity: "NOTICE", Code: "00000", Message: "n"})
	out, _ := fanIn(false, shardAnswer{1, notice}, shardAnswer{2, notice})
	if got := types(out); got != "NN" {
		t.Fatalf("client got %q, want each shard's notice", got)
	}
}
