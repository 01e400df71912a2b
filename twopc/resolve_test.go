package twopc

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/pgshard/pgshard/internal/pgtest"
	"github.com/pgshard/pgshard/pool"
)

// TestResolve leaves prepared transactions on a real Postgres the way crashes of pgshard would, and checks
// that Resolve commits exactly the decided ones, rolls back the other ones of this log, and leaves alone
// those of another instance and those a transaction in flight owns.
func TestResolve(t *testing.T) {
	c := pgtest.Start(t, pgtest.Options{Databases: []string{"app_0"}, DatabaseOwner: "app", Users: []pgtest.UserSpec{{Name: "app", Password: "secret"}}})
	c.Exec(t, "app_0", "CREATE TABLE t (k int PRIMARY KEY); GRANT ALL ON t TO app")
	path := filepath.Join(t.TempDir(), "2pc.log")

	l := mustOpen(t, path)
	earlierDecided, earlierUndecided := l.NewGID(), l.NewGID()
	commit(t, l, earlierDecided)
	l.Close()
	l = mustOpen(t, path)
	defer l.Close()
	busy, undecided, decided := l.NewGID(), l.NewGID(), l.NewGID()
	commit(t, l, decided)
	foreign := "pgshard_0123456789abcdef_1_1"

	conn := c.Connect(t, "app_0", "app", "secret")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for k, gid := range []string{earlierDecided, earlierUndecided, busy, undecided, decided, foreign} {
		if _, err := conn.Exec(ctx, fmt.Sprintf("BEGIN; INSERT INTO t VALUES (%d); PREPARE TRANSACTION %s", k, Literal(gid))); err != nil {
			t.Fatal(err)
		}
	}
	target := pool.Target{Network: "tcp", Address: c.Addr(), Database: "app_0", User: "app", Password: "secret"}
	rep, err := Resolve(ctx, l, target, func(gid string) bool { return gid == busy })
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(rep.Committed)
	slices.Sort(rep.RolledBack)
	want := []string{earlierDecided, decided}
	slices.Sort(want)
	if !slices.Equal(rep.Committed, want) {
		t.Errorf("committed %q, want %q", rep.Committed, want)
	}
	want = []string{earlierUndecided, undecided}
	slices.Sort(want)
	if !slices.Equal(rep.RolledBack, want) {
		t.Errorf("rolled back %q, want %q", rep.RolledBack, want)
	}
	if !slices.Equal(rep.Foreign, []string{foreign}) || rep.MaxPrepared != 64 {
		t.Errorf("foreign %q, max_prepared_transactions %d", rep.Foreign, rep.MaxPrepared)
	}
	if got := c.QueryStrings(t, "app_0", "SELECT k FROM t ORDER BY k"); !slices.Equal(flat(got), []string{"0", "4"}) {
		t.Errorf("committed rows %v, want keys 0 and 4", got)
	}
	left := flat(c.QueryStrings(t, "app_0", "SELECT gid FROM pg_prepared_xacts ORDER BY gid"))
	want = []string{busy, foreign}
	slices.Sort(want)
	if !slices.Equal(left, want) {
		t.Errorf("left prepared %q, want %q", left, want)
	}
	// A second pass finds nothing more to do.
	rep, err = Resolve(ctx, l, target, func(gid string) bool { return gid == busy })
	if err != nil || len(rep.Committed)+len(rep.RolledBack) != 0 {
		t.Errorf("second pass: %+v, %v", rep, err)
	}
	for _, gid := range want {
		c.Exec(t, "app_0", "ROLLBACK PREPARED "+Literal(gid))
	}
	// A transaction someone else finished first is not reported as finished here.
	sc, err := dial(ctx, target)
	if err != nil {
		t.Fatal(err)
	}
	defer sc.close()
	if done, err := finish(ctx, sc, busy, false); done || err != nil {
		t.Errorf("finishing a transaction that is gone: done %v, err %v; want neither", done, err)
	}
}

func flat(rows [][]string) []string {
	var out []string
	for _, r := range rows {
		out = append(out, r...)
	}
	return out
}
