package reshard

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pgshard/pgshard/reshard/status"
)

// progress keeps the figures of a run and shows them: redrawn in place on a terminal, as a plain line
// every few seconds otherwise, and every second in the status file SHOW RESHARD reads.
type progress struct {
	dir string
	out io.Writer
	tty bool

	mu      sync.Mutex
	st      status.Status
	tables  []*tableProgress
	rates   map[*tableProgress]*rate
	drawn   int // lines drawn last time (terminal)
	printed time.Time

	applied  atomic.Int64
	lag      atomic.Pointer[lagFigures]
	retained atomic.Int64 // WAL bytes the run's slots make the sources keep (slotwatch.go)
}

type lagFigures struct {
	bytes   int64
	seconds float64
}

// rate is a table's smoothed rows/s and bytes/s.
type rate struct {
	rows, bytes int64 // at the last update
	at          time.Time
	value       float64 // rows/s
	byteRate    float64 // bytes/s
}

// smooth averages an instantaneous rate into a smoothed one (the first reading is taken as it is).
func smooth(old, inst float64, first bool) float64 {
	if first || old == 0 {
		return inst
	}
	return 0.5*old + 0.5*inst
}

func newProgress(p *plan) *progress {
	pr := &progress{dir: p.opt.StateDir, out: p.opt.Out, rates: map[*tableProgress]*rate{}}
	if f, ok := p.opt.Out.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			pr.tty = true
		}
	}
	now := time.Now()
	pr.st = status.Status{Database: p.opt.Database, From: len(p.sources), To: len(p.dests), Started: now, Updated: now, PID: os.Getpid(), Phase: status.PhaseCheck}
	return pr
}

func (pr *progress) table(t *table) *tableProgress {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	for _, tp := range pr.tables {
		if tp.t == t {
			return tp
		}
	}
	tp := &tableProgress{t: t}
	pr.tables = append(pr.tables, tp)
	return tp
}

// phase records a new phase and says so.
func (pr *progress) phase(ph string) {
	pr.mu.Lock()
	pr.st.Phase = ph
	pr.mu.Unlock()
	pr.logf("phase: %s", ph)
	pr.tick(true)
}

// logf prints a message line (above the display on a terminal).
func (pr *progress) logf(format string, args ...any) {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	pr.erase()
	fmt.Fprintf(pr.out, "%s reshard %s: %s\n", time.Now().Format("15:04:05"), pr.st.Database, fmt.Sprintf(format, args...))
}

// fail records the error that ends the run.
func (pr *progress) fail(err error, phase string) {
	pr.mu.Lock()
	pr.st.Phase = phase
	pr.st.Error = err.Error()
	pr.mu.Unlock()
	pr.tick(true)
}

func (pr *progress) copied(rows int64, took time.Duration) {
	pr.mu.Lock()
	pr.st.CopyRows, pr.st.CopySeconds = rows, took.Seconds()
	pr.mu.Unlock()
}

func (pr *progress) setPause(d time.Duration) {
	pr.mu.Lock()
	pr.st.PauseMS = float64(d.Microseconds()) / 1000
	pr.mu.Unlock()
}

// run updates the display and the status file every second until ctx ends.
func (pr *progress) run(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			pr.tick(false)
		}
	}
}

// tick refreshes the figures, writes the status file and draws.
func (pr *progress) tick(force bool) {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	now := time.Now()
	pr.st.Updated = now
	pr.st.Tables = pr.st.Tables[:0]
	for _, tp := range pr.tables {
		rows, bytes := tp.rows.Load(), tp.bytes.Load()
		r := pr.rates[tp]
		if r == nil {
			r = &rate{rows: rows, bytes: bytes, at: now}
			pr.rates[tp] = r
		} else if dt := now.Sub(r.at).Seconds(); dt >= 0.5 {
			r.value = smooth(r.value, float64(rows-r.rows)/dt, r.rows == 0)
			r.byteRate = smooth(r.byteRate, float64(bytes-r.bytes)/dt, r.bytes == 0)
			r.rows, r.bytes, r.at = rows, bytes, now
		}
		done := tp.items.Load() == 0
		total := max(tp.total.Load(), rows)
		eta := 0.0
		if !done && r.value > 0 {
			eta = float64(total-rows) / r.value
		}
		pr.st.Tables = append(pr.st.Tables, status.Table{Name: tp.t.String(), Kind: tp.t.kindName(), RowsCopied: rows,
			RowsTotal: total, RowsPerSec: r.value, MBPerSec: r.byteRate / 1e6, ETASeconds: eta, Done: done})
	}
	pr.st.Applied = pr.applied.Load()
	if l := pr.lag.Load(); l != nil {
		pr.st.LagBytes, pr.st.LagSeconds = l.bytes, l.seconds
	}
	pr.st.RetainedWAL = pr.retained.Load()
	if pr.dir != "" {
		status.Write(pr.dir, &pr.st)
	}
	pr.draw(force, now)
}

// draw shows the figures: in place on a terminal, every 5 s as one plain line otherwise.
func (pr *progress) draw(force bool, now time.Time) {
	var lines []string
	switch pr.st.Phase {
	case status.PhaseCopy:
		for _, t := range pr.st.Tables {
			pct := 100.0
			if t.RowsTotal > 0 {
				pct = 100 * float64(t.RowsCopied) / float64(t.RowsTotal)
			}
			state := fmt.Sprintf("%6.0f rows/s %6.1f MB/s  ETA %s", t.RowsPerSec, t.MBPerSec, (time.Duration(t.ETASeconds) * time.Second).String())
			if t.Done {
				state = "done"
			}
			lines = append(lines, fmt.Sprintf("  %-30s %12d / ~%-12d %5.1f%%  %s", t.Name, t.RowsCopied, t.RowsTotal, min(pct, 100), state))
		}
	case status.PhaseStreaming, status.PhaseCutover:
		lines = append(lines, fmt.Sprintf("  streaming: lag %d bytes, %.1f s; %d changes applied", pr.st.LagBytes, pr.st.LagSeconds, pr.st.Applied))
	}
	if pr.st.RetainedWAL > 0 {
		lines = append(lines, "  WAL kept on the sources for the run's slots: "+sizeText(pr.st.RetainedWAL))
	}
	if pr.tty {
		pr.erase()
		for _, l := range lines {
			fmt.Fprintln(pr.out, l)
		}
		pr.drawn = len(lines)
		return
	}
	if len(lines) > 0 && (force || now.Sub(pr.printed) >= 5*time.Second) {
		pr.printed = now
		fmt.Fprintln(pr.out, strings.Join(lines, "\n"))
	}
}

// erase removes the lines drawn last (terminal only).
func (pr *progress) erase() {
	if pr.tty && pr.drawn > 0 {
		fmt.Fprintf(pr.out, "\x1b[%dA\x1b[J", pr.drawn)
		pr.drawn = 0
	}
}
