package pgtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"testing"
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
	for attempt := 1; ; attempt++ {
		if c.Port, err = FreePort(); err != nil {
			return nil, err
		}
		if err := c.writeConfig(); err != nil {
			return nil, err
		}
		err = c.pgctlStart(ctx)
		if err == nil || !errors.Is(err, errBind) || attempt == 8 {
			return c, err
		}
	}
}
