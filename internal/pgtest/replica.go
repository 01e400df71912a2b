package pgtest

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// StartReplica starts a streaming replica of primary for a test: a base backup of it (pg_basebackup -R, so
// that the replica streams from primary), on a free loopback port. Like Start's clusters it is stopped and
// removed when the test ends, and skipped in -short mode. Its users and databases are primary's, replicated.
func StartReplica(t testing.TB, primary *Cluster) *Cluster {
	t.Helper()
	return startForTest(t, func() (*Cluster, error) { return NewReplica(primary) })
}

// NewReplica is StartReplica for tools: the caller stops the replica (Stop) and removes its Dir.
func NewReplica(primary *Cluster) (c *Cluster, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*startTimeout)
	defer cancel()
	dir, err := newTempDir()
	if err != nil {
		return nil, err
	}
	opts := primary.opts
	opts.Users, opts.Databases = nil, nil // replicated from the primary; a replica cannot create them
	c = newCluster(dir, primary.BinDir, opts)
	c.stopMode = "immediate"
	defer func() {
		if err != nil {
			_ = c.Stop()
			_ = os.RemoveAll(dir)
		}
	}()
	if _, err := runPG(ctx, c.bin("pg_basebackup"), "-D", c.DataDir, "-R", "-X", "stream", "-c", "fast",
		"-h", "127.0.0.1", "-p", strconv.Itoa(primary.Port), "-U", Superuser); err != nil {
		return nil, fmt.Errorf("pgtest: base backup of the primary on port %d: %w", primary.Port, err)
	}
	if err := c.startOnFreePort(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// WaitReplayed waits until replica r has replayed every transaction primary had committed when it was called,
// also those whose commit record the primary had not written out yet (synchronous_commit off, the default of
// Start's clusters): a transaction of its own that writes WAL (a temporary table) and commits synchronously
// writes them out first. (One that only takes a transaction id, txid_current(), writes no WAL of its own and so
// is not flushed at commit, synchronous or not.)
func (r *Cluster) WaitReplayed(ctx context.Context, primary *Cluster) error {
	pc, err := pgx.Connect(ctx, primary.SuperDSN("postgres"))
	if err != nil {
		return err
	}
	defer pc.Close(context.Background())
	if _, err := pc.Exec(ctx, "SET synchronous_commit = on; CREATE TEMPORARY TABLE pgtest_flush ()"); err != nil {
		return err
	}
	var lsn string
	if err := pc.QueryRow(ctx, "SELECT pg_current_wal_lsn()::text").Scan(&lsn); err != nil {
		return err
	}
	rc, err := pgx.Connect(ctx, r.SuperDSN("postgres"))
	if err != nil {
		return err
	}
	defer rc.Close(context.Background())
	for {
		var caught bool
		if err := rc.QueryRow(ctx, "SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn", lsn).Scan(&caught); err != nil {
			return fmt.Errorf("pgtest: the replica on port %d did not replay the primary's WAL up to %s: %w", r.Port, lsn, err)
		}
		if caught {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Promote ends the recovery of replica r (`pg_ctl promote`, waiting for it): it becomes a primary, writing on a
// new timeline.
func (r *Cluster) Promote() error {
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	if _, err := runPG(ctx, r.bin("pg_ctl"), "promote", "-D", r.DataDir, "-w", "-t", "60", "-s"); err != nil {
		return fmt.Errorf("pgtest: promoting the replica on port %d: %w", r.Port, err)
	}
	return nil
}
