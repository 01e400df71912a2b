package loop

import (
	"errors"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pgshard/pgshard/codec"
	"github.com/pgshard/pgshard/config"
	"github.com/pgshard/pgshard/pool"
)

// Following the primary (role: auto).
//
// The config of a database with role auto lists, for each shard, the host pgshard starts with as its primary
// and the others as replicas; which one really is the primary is asked of them. The replica checks
// (replicalag.go) ask every host of such a shard, each round, whether it is in recovery and, when it is not, on
// which timeline it writes. The primary is the host not in recovery on the highest timeline, the current one
// on a tie: a replica promoted (by Patroni, repmgr, pg_ctl promote) starts a new timeline, so writes follow it
// even while the old primary still runs, and a host that merely answers without being in recovery (a
// misconfigured entry) does not take the writes from the one that has them.
//
// A new primary replaces the database as a RELOAD would (switchPrimary): a database whose config lists the new
// primary first is published, the old one is retired (its idle servers closed, the others when their clients
// let go of them), and its clients move to the new one at their next transaction. Transactions running on the
// old primary end with its error; nothing is replayed. A later RELOAD keeps the primaries found (primariesOf).
//
// Between the loss of a primary and the promotion of another, the shard has no primary: a connection to it
// that failed (serverDown), or a check that found it down or in recovery, marks it lost (primaryDown). Its new
// transactions then wait in pgshard (heldByFailover) instead of failing, as during a PAUSE, for up to
// pool.failover_buffer_timeout: they go on when a check finds a primary again, the old one back or a new one,
// and fail with 08006 past the timeout. While a shard has no primary the checks run every failoverCheckEvery,
// and a connection lost or refused runs one at once, so that writes resume within a fraction of a second of a
// promotion. Reads that go to replicas are not held.

// failoverCheckEvery is how often the checks run while a shard of a database with role auto has no primary.
const failoverCheckEvery = 100 * time.Millisecond

// hostCheckSQL asks a host whether it is in recovery, how far its WAL goes (replayed, in recovery; written,
// otherwise), how old the last transaction it replayed is, and the timeline it writes on (the first eight
// hex digits of its current WAL file's name) when it is not in recovery.
const hostCheckSQL = "SELECT pg_is_in_recovery()::text, " +
	"(CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END)::text, " +
	"extract(epoch from now() - pg_last_xact_replay_timestamp())::float8::text, " +
	"CASE WHEN pg_is_in_recovery() THEN NULL ELSE substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8) END"

// probe is what a check found of one host.
type probe struct {
	err        error
	inRecovery bool
	lsn        *string // its WAL position: replayed in recovery, written otherwise
	age        *string // seconds since the last transaction it replayed committed (NULL when it replayed none)
	timeline   uint64  // when not in recovery
}

// probeOf reads hostCheckSQL's row.
func probeOf(row []*string, err error) probe {
	if err == nil && (len(row) != 4 || row[0] == nil) {
		err = errors.New("the check query returned an unexpected row")
	}
	if err != nil {
		return probe{err: err}
	}
	p := probe{inRecovery: *row[0] == "true", lsn: row[1], age: row[2]}
	if row[3] != nil {
		p.timeline, _ = strconv.ParseUint(*row[3], 16, 32)
	}
	return p
}

// followPrimary works out from the probes of a shard's hosts (the primary's first) which is its primary, and
// acts on it: a new primary replaces d (true: d is retired), the current one found again ends a failover,
// none at all starts one.
func (e *Engine) followPrimary(d *database, shard int, probes []probe) (replaced bool) {
	best := -1
	for i, p := range probes {
		if p.err == nil && !p.inRecovery && (best < 0 || p.timeline > probes[best].timeline) {
			best = i
		}
	}
	cur := probes[0]
	switch {
	case best == 0:
		if d.primaryLost[shard].Swap(0) != 0 {
			e.log.Info("failover: the primary answers again; held transactions go on", "database", d.db.Name, "shard", shard,
				"primary", hostOf(d.db.Shards[shard].Primary))
			e.wakeHeld()
		}
	case best > 0:
		return e.switchPrimary(d, shard, best)
	case cur.err == nil:
		e.primaryDown(d, shard, "it is in recovery, and no other host is a primary")
	case serverDown(cur.err):
		e.primaryDown(d, shard, cur.err.Error())
	default:
		e.log.Warn("failover check: the primary did not answer", "database", d.db.Name, "shard", shard, "err", cur.err)
	}
	return false
}

// primaryDown marks shard of d as without a primary, unless it is already: its new transactions wait for one.
// Clients queued for a connection to it are held back too, and the checks run at once.
func (e *Engine) primaryDown(d *database, shard int, why string) {
	if !d.primaryLost[shard].CompareAndSwap(0, time.Now().UnixNano()) {
		return
	}
	e.log.Warn("failover: the shard has no primary; its new transactions wait for one", "database", d.db.Name, "shard", shard,
		"primary", hostOf(d.db.Shards[shard].Primary), "reason", why, "for at most", e.cfg.Pool.FailoverBufferTimeout.String())
	e.kickChecks()
	go e.forEachLoop(func(ls *loopState) { // not on a loop: dialFailed calls this on one
		for cl := range ls.clients {
			if cl.waiting && cl.db == d && cl.pool.Replica == 0 && cl.pool.Shard == shard {
				cl.holdIfQueued(heldByFailover)
			}
		}
	})
}

// holdForFailover holds back a client whose connection to the primary of pool p could not be made because the
// shard has no primary: false when it was not waiting for p, or holds other servers (a transaction under way
// gets the error).
func (cl *client) holdForFailover(p *pool.Pool) bool {
	if cl.state == clientClosed || !cl.waiting || cl.held != notHeld || cl.pool != p || cl.attachedMask() != 0 {
		return false
	}
	cl.waiting = false
	cl.holdBack(heldByFailover)
	return true
}

// switchPrimary makes host to (a replica's index, 1-based) the primary of shard of d: a database listing it
// first replaces d, as a RELOAD would. False when d was replaced meanwhile.
func (e *Engine) switchPrimary(d *database, shard, to int) bool {
	e.reloadMu.Lock()
	defer e.reloadMu.Unlock()
	cat := e.cat.Load()
	if cat.dbs[d.db.Name] != d {
		return false
	}
	nd, err := newDatabase(withPrimary(d.db, shard, to))
	if err != nil {
		e.log.Error("failover: the new primary cannot be used", "database", d.db.Name, "shard", shard, "err", err)
		return false
	}
	next := *cat
	next.dbs = maps.Clone(cat.dbs)
	next.dbs[d.db.Name] = nd
	e.cat.Store(&next)
	retired := e.retireDatabase(d)
	lost := d.primaryLost[shard].Load()
	e.log.Warn("failover: a new primary; the shard's transactions go to it", "database", d.db.Name, "shard", shard,
		"primary", hostOf(nd.db.Shards[shard].Primary), "was", hostOf(d.db.Shards[shard].Primary))
	if lost != 0 {
		e.log.Info("failover: the shard was without a primary", "database", d.db.Name, "shard", shard,
			"for", time.Since(time.Unix(0, lost)).Round(time.Millisecond).String())
	}
	e.published(&next, retired)
	e.wakeHeld()
	return true
}

// withPrimary is a copy of d whose shard has its replica to (1-based) as primary, and the primary as that
// replica.
func withPrimary(d *config.Database, shard, to int) *config.Database {
	nd := *d
	nd.Shards = slices.Clone(d.Shards)
	sh := &nd.Shards[shard]
	sh.Replicas = slices.Clone(sh.Replicas)
	sh.Primary, sh.Replicas[to-1] = sh.Replicas[to-1], sh.Primary
	return &nd
}

// primariesOf is d (a database with role auto that a RELOAD changed) with the primaries prev found, where d
// still lists them as replicas of the same shard.
func primariesOf(prev *database, d *config.Database) *config.Database {
	for shard := range min(len(d.Shards), len(prev.db.Shards)) {
		cur := hostOf(prev.db.Shards[shard].Primary)
		for i, r := range d.Shards[shard].Replicas {
			if hostOf(r) == cur && hostOf(d.Shards[shard].Primary) != cur {
				d = withPrimary(d, shard, i+1)
				break
			}
		}
	}
	return d
}

// hostOf names a server as the logs and SHOW POOLS do: host:port (or the socket), and its database.
func hostOf(s config.Server) string {
	_, addr := s.Addr()
	return addr + "/" + s.Database
}

// serverDown says whether err, from a connection to a server, means the server is not there to serve: no
// answer (refused, reset, timed out) or a refusal of class 08, or 57P01-57P03 (shutting down, starting up,
// crashed), rather than a login or a limit that refused it (which failover cannot mend).
func serverDown(err error) bool {
	var pe *codec.Error
	if !errors.As(err, &pe) {
		return true
	}
	return strings.HasPrefix(pe.Code, "08") || pe.Code == "57P01" || pe.Code == "57P02" || pe.Code == "57P03"
}

// noPrimary is the error of a client that waited failover_buffer_timeout for its shard's primary.
func noPrimary(db string, shard int, waited time.Duration) *codec.Error {
	return codec.NewFatal(codec.SQLStateConnectionFailure, "no primary for shard "+strconv.Itoa(shard)+" of database \""+db+
		"\" after waiting "+waited.String()+" for a failover").
		WithHint("pgshard follows the primary (role: auto): promote a replica, or bring the primary back; pool.failover_buffer_timeout bounds the wait")
}

// kickChecks has the replica checks run now, not at their next interval.
func (e *Engine) kickChecks() {
	select {
	case e.checkNow <- struct{}{}:
	default:
	}
}
