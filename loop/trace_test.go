package loop

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/pgshard/pgshard/codec"
)

func TestWireTrace(t *testing.T) {
	cl, s := testPair(t)
	var log bytes.Buffer
	cl.e.log = slog.New(slog.NewTextHandler(&log, nil))
	cl.wire.on = true
	clientSends(cl, codec.AppendQuery(nil, "SELECT big"))
	row := codec.AppendDataRowText(nil, []string{strings.Repeat("x", 3*streamThreshold)}, nil)
	answerWith(s, row[:streamThreshold]) // streamed: its first part goes out before the rest came
	answerWith(s, row[streamThreshold:])
	answerWith(s, rfq(complete(nil, "SELECT 1"), codec.TxIdle))
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(log.String()), "\n") {
		_, msg, _ := strings.Cut(l, "msg=wire ")
		lines = append(lines, msg)
	}
	want := []string{
		`from=client msg="Query \"SELECT big\"`,
		`from=pgshard msg="(D, the first part of a large message, streamed)"`,
		`from=pgshard msg="CommandComplete \"SELECT 1\"`,
		`from=pgshard msg="ReadyForQuery I`,
	}
	if len(lines) != len(want) {
		t.Fatalf("trace:\n%s", strings.Join(lines, "\n"))
	}
	for i, w := range want {
		if !strings.Contains(lines[i], w) {
			t.Errorf("line %d: %s\nwant it to contain %s", i, lines[i], w)
		}
	}
	if strings.Contains(log.String(), "xxxx") {
		t.Error("the trace shows a row's value")
	}
}
