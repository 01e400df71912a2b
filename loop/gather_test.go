package loop

import (
	"bytes"
	"strings"
	"testing"

	"github.com/pgshard/pgshard/route"
)

// Gathered rows are array elements, quoted and escaped, joined by commas across the chunks they are kept in,
// and no row is split between two chunks.
func TestAppendRow(t *testing.T) {
	var rows route.Rows
	var want []string
	big := strings.Repeat("x", rowChunk/3)
	for _, v := range []string{`(1,a)`, `(2,"b ""q""")`, `(3,\)`, big, big, big, `(4,)`} {
		rows = appendRow(rows, []byte(v))
		want = append(want, `"`+strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(v)+`"`)
	}
	if len(rows) < 2 {
		t.Fatalf("%d chunks: the test wants rows in several", len(rows))
	}
	if got := string(bytes.Join(rows, nil)); got != strings.Join(want, ",") {
		t.Errorf("joined chunks:\n%.200q\nwant\n%.200q", got, strings.Join(want, ","))
	}
	for i, c := range rows {
		if len(c) > 0 && (c[len(c)-1] != '"' || i > 0 && !bytes.HasPrefix(c, []byte(`,"`)) || i == 0 && c[0] != '"') {
			t.Errorf("chunk %d splits a row: starts %.10q, ends %.10q", i, c, c[max(0, len(c)-10):])
		}
	}
}
