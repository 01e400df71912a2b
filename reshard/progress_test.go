package reshard

import (
	"io"
	"testing"
	"time"
)

// The copy counts each table's rows and bytes, and the progress turns both into rates: MB/s beside rows/s.
func TestCopyProgressCountsBytes(t *testing.T) {
	tp := &tableProgress{t: &table{key: -1}} // a replicated table: every row goes to every destination
	r := &rowRouter{t: tp.t, prog: tp}
	for range 5000 {
		if err := r.CopyRow(make([]byte, 100), nil, false); err != nil {
			t.Fatal(err)
		}
	}
	if tp.rows.Load() != 4096 || tp.bytes.Load() != 409600 {
		t.Errorf("after 5000 rows, before the end: %d rows and %d bytes counted, want 4096 and 409600", tp.rows.Load(), tp.bytes.Load())
	}
	r.flushProgress()
	if tp.rows.Load() != 5000 || tp.bytes.Load() != 500000 {
		t.Errorf("at the end: %d rows and %d bytes, want 5000 and 500000", tp.rows.Load(), tp.bytes.Load())
	}

	pr := &progress{out: io.Discard, rates: map[*tableProgress]*rate{}, tables: []*tableProgress{tp}}
	pr.tick(false)
	pr.rates[tp].at = time.Now().Add(-time.Second) // a second ago, with nothing copied since: then 1 MB more
	pr.rates[tp].rows, pr.rates[tp].bytes = 0, 0
	tp.bytes.Add(1e6 - 500000)
	pr.tick(false)
	if got := pr.st.Tables[0].MBPerSec; got < 0.9 || got > 1.1 {
		t.Errorf("1 MB in a second: %.2f MB/s", got)
	}
}
