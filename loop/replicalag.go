package loop

import (
	"bufio"
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/pgshard/pgshard/codec"
	"github.com/pgshard/pgshard/pool"
)

// The replica checks.
//
// Every replica_check_interval a goroutine asks each shard's primary how far its WAL goes
// (pg_current_wal_lsn) and each of its replicas how far it has replayed (pg_last_wal_replay_lsn, and when the
// last replayed transaction committed), over connections of its own that it keeps open, logged in as the
// first user of users:. A replica further behind than max_replica_lag (time) or max_replica_lag_bytes takes no
// reads until a later check finds it caught up; one that does not answer is banned like one whose connection
// failed. The replay positions also serve read-your-writes: a client that wrote reads only from replicas that
// have replayed its write (readPool).
//
// The time behind is 0 when the replica has replayed all the primary's WAL, else the age of the last
// transaction it replayed: after a long quiet spell a write may make a replica look old for one check, which
// costs its reads one interval at most.

// watchReplicas starts the checks of the replicas of databases whose reads go to them; stop ends them.
func (e *Engine) watchReplicas() (stop func()) {
	done, finished := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(finished)
		conns := map[string]*checkConn{}
		defer func() {
			for _, c := range conns {
				c.close()
			}
		}()
		t := time.NewTicker(e.cfg.Pool.ReplicaCheckInterval)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				e.checkReplicas(conns)
			}
		}
	}()
	return func() { close(done); <-finished }
}

// checkReplicas runs one round of checks; conns are the connections kept between rounds, by server.
func (e *Engine) checkReplicas(conns map[string]*checkConn) {
	cat := e.cat.Load()
	if len(cat.cfg.Users) == 0 {
		return
	}
	u := cat.users[cat.cfg.Users[0].Name]
	for _, d := range cat.dbs {
		if !e.splitsReads(d) {
			continue
		}
		for shard, reps := range d.replicas {
			row, err := e.checkQuery(conns, e.target(d, u, shard), "SELECT pg_current_wal_lsn()::text")
			if err != nil || len(row) != 1 {
				e.log.Warn("replica check: the primary did not answer", "database", d.db.Name, "shard", shard, "err", err)
				continue
			}
			primaryLSN, ok := lsnColumn(row[0])
			if !ok {
				continue
			}
			for i, r := range reps {
				row, err := e.checkQuery(conns, e.targetOf(d, u, shard, i+1),
					"SELECT pg_last_wal_replay_lsn()::text, extract(epoch from now() - pg_last_xact_replay_timestamp())::float8::text")
				if err != nil || len(row) != 2 {
					e.banReplica(r, "the replica check failed", "database", d.db.Name, "shard", shard, "err", err)
					continue
				}
				e.noteLag(d, shard, r, primaryLSN, row)
			}
		}
	}
}

// noteLag keeps what a check found of replica r (its replay position, and the age of its last replayed
// transaction, either NULL on a server that is no replica) and takes it out of the reads, or back, as its lag
// says.
func (e *Engine) noteLag(d *database, shard int, r *replica, primaryLSN uint64, row []*string) {
	replay, ok := lsnColumn(row[0])
	if !ok {
		replay = primaryLSN // not in recovery: nothing to replay
	}
	lagBytes := uint64(0)
	if primaryLSN > replay {
		lagBytes = primaryLSN - replay
	}
	lag := time.Duration(0)
	if lagBytes > 0 && row[1] != nil {
		if secs, err := strconv.ParseFloat(*row[1], 64); err == nil && secs > 0 {
			lag = time.Duration(secs * float64(time.Second))
		}
	}
	r.replayLSN.Store(replay)
	r.lagBytes.Store(lagBytes)
	r.lag.Store(int64(lag))
	maxLag, maxBytes := e.cfg.Pool.MaxReplicaLag, uint64(e.cfg.Pool.MaxReplicaLagBytes)
	lagging := maxLag > 0 && lag > maxLag || maxBytes > 0 && lagBytes > maxBytes
	if r.lagging.Swap(lagging) != lagging {
		_, addr := r.srv.Addr()
		if lagging {
			e.log.Warn("replica lagging: reads go elsewhere until it catches up", "database", d.db.Name, "shard", shard,
				"replica", addr, "lag", lag.String(), "lag_bytes", lagBytes)
		} else {
			e.log.Info("replica caught up: it takes reads again", "database", d.db.Name, "shard", shard, "replica", addr)
		}
	}
}

// lsnColumn reads a pg_lsn column of a check's row; false for NULL.
func lsnColumn(v *string) (uint64, bool) {
	if v == nil {
		return 0, false
	}
	return parseLSN(*v)
}

// parseLSN reads a pg_lsn's text, "16/B374D848".
func parseLSN(s string) (uint64, bool) {
	hi, lo, ok := strings.Cut(s, "/")
	if !ok {
		return 0, false
	}
	h, err1 := strconv.ParseUint(hi, 16, 32)
	l, err2 := strconv.ParseUint(lo, 16, 32)
	return h<<32 | l, err1 == nil && err2 == nil
}

// checkConn is a connection of the replica checks to one server.
type checkConn struct {
	nc  net.Conn
	r   *bufio.Reader
	buf []byte
}

func (c *checkConn) close() { _ = c.nc.Close() }

// checkQuery runs sql, which returns one row, on the server of t, over the check connection to it (made when
// there is none), and returns the row's values (nil for NULL). A connection that failed is closed and
// forgotten.
func (e *Engine) checkQuery(conns map[string]*checkConn, t pool.Target, sql string) ([]*string, error) {
	key := t.Network + "|" + t.Address + "|" + t.Database
	ctx, cancel := context.WithTimeout(context.Background(), e.cfg.Limits.ServerConnectTimeout)
	defer cancel()
	c := conns[key]
	if c == nil {
		nc, _, err := pool.Dial(ctx, t)
		if err != nil {
			return nil, err
		}
		c = &checkConn{nc: nc, r: bufio.NewReader(nc)}
		conns[key] = c
	}
	row, err := c.query(ctx, sql)
	if err != nil {
		c.close()
		delete(conns, key)
	}
	return row, err
}

func (c *checkConn) query(ctx context.Context, sql string) ([]*string, error) {
	if deadline, ok := ctx.Deadline(); ok {
		_ = c.nc.SetDeadline(deadline)
	}
	if _, err := c.nc.Write(codec.AppendQuery(nil, sql)); err != nil {
		return nil, err
	}
	var row []*string
	var failed error
	for {
		m, err := pool.ReadMessage(c.r, &c.buf)
		if err != nil {
			return nil, err
		}
		switch m.Type {
		case codec.ErrorResponse:
			if pe, err := codec.ParseError(m.Body); err == nil {
				failed = pe
			} else {
				failed = err
			}
		case codec.DataRow:
			dr, err := codec.ParseDataRow(m.Body)
			if err != nil {
				return nil, err
			}
			cols, err := dr.Columns(nil)
			if err != nil {
				return nil, err
			}
			row = make([]*string, len(cols))
			for i, v := range cols {
				if v != nil {
					s := string(v)
					row[i] = &s
				}
			}
		case codec.ReadyForQuery:
			if failed == nil && row == nil {
				failed = errors.New("no row")
			}
			return row, failed
		}
	}
}
