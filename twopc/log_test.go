package twopc

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

func mustOpen(t *testing.T, path string) *Log {
	t.Helper()
	l, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func commit(t *testing.T, l *Log, gid string) {
	t.Helper()
	var wg sync.WaitGroup
	var err error
	wg.Add(1)
	l.Commit(gid, func(e error) { err = e; wg.Done() })
	wg.Wait()
	if err != nil {
		t.Fatalf("commit %s: %v", gid, err)
	}
}

func TestLogDecisionsSurviveRestarts(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "2pc.log")
	l := mustOpen(t, path)
	inst, boot := l.Instance(), l.Boot()
	if len(inst) != 16 || boot != 1 {
		t.Fatalf("new log: instance %q, boot %d", inst, boot)
	}
	a, b, c := l.NewGID(), l.NewGID(), l.NewGID()
	if a == b || !strings.HasPrefix(a, "pgshard_"+inst+"_1_") || !l.Ours(a) || !l.ThisBoot(a) {
		t.Fatalf("gids %q %q: not pgshard_<instance>_1_<n>", a, b)
	}
	if l.Ours("pgshard_0123456789abcdef_1_1") || l.Ours(l.Prefix()+"x_1") || l.Ours("other") {
		t.Error("Ours accepts a foreign identifier")
	}
	commit(t, l, a)
	commit(t, l, b)
	if !l.Decided(a) || l.Decided(c) {
		t.Errorf("Decided: a %v, c %v", l.Decided(a), l.Decided(c))
	}
	l.Done(b)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	l = mustOpen(t, path)
	if l.Instance() != inst || l.Boot() != 2 {
		t.Errorf("reopened: instance %q boot %d, want %q 2", l.Instance(), l.Boot(), inst)
	}
	if got := l.Undone(); !slices.Equal(got, []string{a}) {
		t.Errorf("earlier decisions %q, want [%s] (b is done, c was never decided)", got, a)
	}
	if !l.Decided(a) || l.Decided(b) || l.Decided(c) || l.ThisBoot(a) {
		t.Error("decisions of the earlier boot are wrong")
	}
	if g := l.NewGID(); !strings.HasPrefix(g, l.Prefix()+"2_") || g == a {
		t.Errorf("new gid after restart %q", g)
	}
	l.Done(a)
	l.Close()

	// Compaction: only the header (and comment) remain once everything is done.
	l = mustOpen(t, path)
	defer l.Close()
	data, _ := os.ReadFile(path)
	if n := strings.Count(string(data), "\n"); n != 2 || len(l.Undone()) != 0 {
		t.Errorf("compacted log has %d lines:\n%s", n, data)
	}
}

func TestLogSkipsDamagedLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "2pc.log")
	l := mustOpen(t, path)
	a := l.NewGID()
	commit(t, l, a)
	inst := l.Instance()
	l.Close()
	f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	// A record with a wrong checksum, then a torn line (a crash while appending).
	f.WriteString("commit " + l.Prefix() + "1_99 00000000\n")
	f.WriteString(string(appendRecord(nil, "commit", l.Prefix()+"1_98"))[:20])
	f.Close()
	l = mustOpen(t, path)
	defer l.Close()
	if l.Damaged() != 2 || l.Instance() != inst {
		t.Errorf("damaged %d (want 2), instance %q", l.Damaged(), l.Instance())
	}
	if got := l.Undone(); !slices.Equal(got, []string{a}) {
		t.Errorf("decisions %q, want only %s", got, a)
	}
}

func TestLogIsLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "2pc.log")
	l := mustOpen(t, path)
	if _, err := Open(path); err == nil || !strings.Contains(err.Error(), "in use by another pgshard") {
		t.Errorf("second Open: %v, want in use", err)
	}
	l.Close()
	mustOpen(t, path).Close()
}

func TestLogRefusesAForeignFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "2pc.log")
	os.WriteFile(path, []byte("hello\n"), 0o600)
	if _, err := Open(path); err == nil || !strings.Contains(err.Error(), "not a pgshard two-phase commit log") {
		t.Errorf("Open of another file: %v", err)
	}
}

func TestLogGroupCommit(t *testing.T) {
	l := mustOpen(t, filepath.Join(t.TempDir(), "2pc.log"))
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	gids := make([]string, 200)
	for i := range gids {
		gids[i] = l.NewGID()
		wg.Add(1)
		go l.Commit(gids[i], func(err error) {
			mu.Lock()
			errs = append(errs, err)
			mu.Unlock()
			wg.Done()
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, g := range gids {
		if !l.Decided(g) {
			t.Fatalf("%s not decided", g)
		}
	}
	l.Close()
	l = mustOpen(t, l.Path())
	defer l.Close()
	if n := len(l.Undone()); n != len(gids) {
		t.Errorf("%d decisions after reopening, want %d", n, len(gids))
	}
}

func TestLiteral(t *testing.T) {
	if got := Literal("a'b"); got != "'a''b'" {
		t.Errorf("Literal: %s", got)
	}
}

// InFlight, taken before a sweep lists the prepared transactions, leaves alone every transaction whose commit
// was under way at that moment, even once it has ended, and those begun after it; it gives the sweep only
// those of this boot that had ended before it, and those of earlier boots.
func TestInFlight(t *testing.T) {
	path := filepath.Join(t.TempDir(), "2pc.log")
	l := mustOpen(t, path)
	earlier := l.Begin()
	l.Close()
	l = mustOpen(t, path)
	defer l.Close()
	ended, running, endsLater := l.Begin(), l.Begin(), l.Begin()
	l.End(ended)
	inFlight := l.InFlight()
	l.End(endsLater) // ends after the snapshot: still the commit's, not the sweep's
	after := l.Begin()
	for gid, want := range map[string]bool{earlier: false, ended: false, running: true, endsLater: true, after: true,
		"pgshard_0123456789abcdef_1_1": false} {
		if got := inFlight(gid); got != want {
			t.Errorf("inFlight(%s) = %v, want %v", gid, got, want)
		}
	}
	if l.InFlight()(endsLater) || !l.InFlight()(running) {
		t.Error("a later snapshot does not see which commits ended since")
	}
}

// Each shard prepares its part of a transaction under its own identifier (shards may be databases of one
// Postgres, where identifiers are unique server-wide), and recovery maps each back to the transaction, the bare
// identifiers of earlier versions too; others' identifiers are not ours.
func TestShardGID(t *testing.T) {
	l := mustOpen(t, filepath.Join(t.TempDir(), "2pc.log"))
	defer l.Close()
	gid := l.Begin()
	a, b := ShardGID(gid, 0), ShardGID(gid, 1)
	if a == b {
		t.Fatalf("shards 0 and 1 share the identifier %s", a)
	}
	for _, server := range []string{a, b, gid} {
		if tx, ok := l.Transaction(server); !ok || tx != gid {
			t.Errorf("Transaction(%s) = %q, %v; want %s", server, tx, ok, gid)
		}
	}
	for _, other := range []string{"pgshard_0123456789abcdef_1_1_0", gid + "_x", gid + "_1_2", "pgshard_", "x"} {
		if tx, ok := l.Transaction(other); ok {
			t.Errorf("Transaction(%s) = %q: taken for ours", other, tx)
		}
	}
}
