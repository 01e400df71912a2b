package loop

import (
	"bufio"
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pgshard/pgshard/codec"
	"github.com/pgshard/pgshard/pool"
)

// The replica checks.
//
// Every replica_check_interval a goroutine asks every host of each shard whose reads go to replicas, or whose
// database follows its primary (failover.go), how it is (hostCheckSQL: in recovery or not, how far its WAL
// goes, how old its last replayed transaction is, its timeline), all hosts of a shard at once, over
// connections of its own that it keeps open, logged in as the first user of users:. A replica further behind
// the primary's WAL than max_replica_lag (time) or max_replica_lag_bytes takes no reads until a later check
// finds it caught up; one that does not answer is banned like one whose connection failed. The replay
// positions also serve read-your-writes: a client that wrote reads only from replicas that have replayed its
// write (readPool).
//
// The time behind is 0 when the replica has replayed all the primary's WAL, else the age of the last
// transaction it replayed: after a long quiet spell a write may make a replica look old for one check, which
// costs its reads one interval at most.

// watchReplicas starts the checks of the replicas of databases whose reads go to them, and of the hosts of
// databases that follow their primary (failover.go); stop ends them.
func (e *Engine) watchReplicas() (stop func()) {
	done, finished := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(finished)
		conns := &checkConns{m: map[string]*checkConn{}}
		defer conns.closeAll()
		interval := e.cfg.Pool.ReplicaCheckInterval
		next := time.NewTimer(interval)
		defer next.Stop()
		for {
			select {
			case <-done:
				return
			case <-next.C:
			case <-e.checkNow:
			}
			wait := interval
			primaryLost, readsWait := e.checkReplicas(conns), e.replayWaits.Load() > 0
			if primaryLost || readsWait {
				wait = min(wait, failoverCheckEvery)
			}
			if readsWait {
				e.wakeHeld() // reads waiting for a replica to replay their writes look again
			}
			next.Reset(wait)
		}
	}()
	return func() { close(done); <-finished }
}

// checkReplicas runs one round of checks, and says whether a shard has no primary.
func (e *Engine) checkReplicas(conns *checkConns) (primaryLost bool) {
	cat := e.cat.Load()
	if len(cat.cfg.Users) == 0 {
		return false
	}
	u := cat.users[cat.cfg.Users[0].Name]
	for _, d := range cat.dbs {
		if !e.splitsReads(d) && !d.followsPrimary {
			continue
		}
		for shard, reps := range d.replicas {
			if len(reps) == 0 && !d.followsPrimary {
				continue // nothing to compare its primary with
			}
			probes := e.probeShard(conns, d, u, shard)
			if d.followsPrimary && e.followPrimary(d, shard, probes) {
				break // d was replaced: the next round checks the new one
			}
			primaryLost = primaryLost || d.primaryLost[shard].Load() != 0
			e.noteLags(d, shard, probes)
		}
	}
	return primaryLost
}

// probeShard asks every host of shard of d, the primary first, at once, how it is (hostCheckSQL).
func (e *Engine) probeShard(conns *checkConns, d *database, u *user, shard int) []probe {
	probes := make([]probe, 1+len(d.replicas[shard]))
	var wg sync.WaitGroup
	for i := range probes {
		wg.Go(func() { probes[i] = probeOf(e.checkQuery(conns, e.targetOf(d, u, shard, i), hostCheckSQL)) })
	}
	wg.Wait()
	return probes
}

// noteLags keeps what the probes of a shard found of its replicas, as lag behind its primary's WAL, or as a ban
// for one that did not answer, or (role auto) does not replay the primary's WAL.
func (e *Engine) noteLags(d *database, shard int, probes []probe) {
	if !e.splitsReads(d) {
		return
	}
	primary := probes[0]
	if primary.err != nil || primary.inRecovery {
		if !d.followsPrimary { // followPrimary said what it found
			e.log.Warn("replica check: the primary did not answer", "database", d.db.Name, "shard", shard, "err", primary.err)
		}
		return
	}
	primaryLSN, ok := lsnColumn(primary.lsn)
	if !ok {
		return
	}
	for i, r := range d.replicas[shard] {
		switch p := probes[i+1]; {
		case p.err != nil:
			e.banReplica(r, "the replica check failed", "database", d.db.Name, "shard", shard, "err", p.err)
		case !p.inRecovery && d.followsPrimary:
			e.banReplica(r, "it is not in recovery: it does not replay the primary's WAL", "database", d.db.Name, "shard", shard)
		case !p.inRecovery:
			e.noteLag(d, shard, r, primaryLSN, nil, nil) // listed as a replica: a primary has nothing to replay
		default:
			e.noteLag(d, shard, r, primaryLSN, p.lsn, p.age)
		}
	}
}

// noteLag keeps what a check found of replica r (its replay position, and the age of its last replayed
// transaction, either NULL when it replayed nothing) and takes it out of the reads, or back, as its lag says.
func (e *Engine) noteLag(d *database, shard int, r *replica, primaryLSN uint64, replayed, age *string) {
	replay, ok := lsnColumn(replayed)
	if !ok {
		replay = primaryLSN
	}
	lagBytes := uint64(0)
	if primaryLSN > replay {
		lagBytes = primaryLSN - replay
	}
	lag := time.Duration(0)
	if lagBytes > 0 && age != nil {
		if secs, err := strconv.ParseFloat(*age, 64); err == nil && secs > 0 {
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

// checkConns are the check connections kept between rounds, by server. A connection in use is out of the
// map, so that two checks at once never share one.
type checkConns struct {
	mu sync.Mutex
	m  map[string]*checkConn
}

func (cs *checkConns) take(key string) *checkConn {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	c := cs.m[key]
	delete(cs.m, key)
	return c
}

func (cs *checkConns) put(key string, c *checkConn) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if cs.m[key] != nil {
		c.close() // another check made one meanwhile
		return
	}
	cs.m[key] = c
}

func (cs *checkConns) closeAll() {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	for _, c := range cs.m {
		c.close()
	}
}

// checkQuery runs sql, which returns one row, on the server of t, over the check connection to it (made when
// there is none), and returns the row's values (nil for NULL). A connection that failed is closed and
// forgotten.
func (e *Engine) checkQuery(conns *checkConns, t pool.Target, sql string) ([]*string, error) {
	key := t.Network + "|" + t.Address + "|" + t.Database
	ctx, cancel := context.WithTimeout(context.Background(), e.cfg.Limits.ServerConnectTimeout)
	defer cancel()
	c := conns.take(key)
	if c == nil {
		nc, _, err := pool.Dial(ctx, t)
		if err != nil {
			return nil, err
		}
		c = &checkConn{nc: nc, r: bufio.NewReader(nc)}
	}
	row, err := c.query(ctx, sql)
	if err != nil {
		c.close()
		return nil, err
	}
	conns.put(key, c)
	return row, nil
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
