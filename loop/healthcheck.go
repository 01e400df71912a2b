package loop

import (
	"time"

	"github.com/pgshard/pgshard/codec"
	"github.com/pgshard/pgshard/pool"
)

// Health checks of idle server connections.
//
// A server connection that sat in its pool for pool.health_check_interval may have died without a word: a
// server restarted behind a load balancer, a firewall that dropped an idle flow, a host gone with no RST. The
// sweep takes each such connection out of its pool (pool.Unchecked) and sends it an empty query, the cheapest
// statement Postgres answers (EmptyQueryResponse, ReadyForQuery); the connection is detached meanwhile, so no
// client gets it. Its answer puts it back in the pool (idleNow, as after a reset). A connection lost during the
// check is closed like any lost one, and one that has not answered within limits.server_connect_timeout is
// closed by a later sweep; either way its host, when it is a replica, is banned for pool.ban_time, and when it
// is the primary of a database that follows its primary, the failover checks run at once. A client never waits
// for a check: it gets another idle connection, or a new one.

// healthCheck sends s, taken idle from its pool, an empty query; its answer releases it.
func (s *server) healthCheck(now time.Time) {
	s.setState(serverDetached)
	if s.ls.checking == nil {
		s.ls.checking = map[*server]time.Time{}
	}
	s.ls.checking[s] = now
	s.send(codec.AppendQuery(s.ls.synth[:0], ""))
	s.expects.push(expectOwn(keepNothing))
}

// checkIdleServers runs on ls at each sweep: it checks the idle connections of p that are due (healthCheck).
func (ls *loopState) checkIdleServers(p *pool.Pool, now time.Time) {
	ls.expired = p.Unchecked(ls.idx, now, ls.expired[:0])
	for _, pc := range ls.expired {
		pc.Handle.(*server).healthCheck(now)
	}
}

// failSilentChecks closes the servers of ls whose health check has gone unanswered past timeout.
func (e *Engine) failSilentChecks(ls *loopState, now time.Time, timeout time.Duration) {
	for s, sent := range ls.checking {
		if now.Sub(sent) < timeout {
			continue
		}
		delete(ls.checking, s)
		p := s.pc.Pool()
		e.log.Warn("health check: an idle server connection did not answer; closed", "pool", p.Name, "after", timeout.String())
		e.serverFailed(p)
		s.closeExpected()
	}
}

// checkAnswered forgets s's health check, answered or lost.
func (s *server) checkAnswered() { delete(s.ls.checking, s) }

// serverFailed acts on a connection of p that failed without closing on purpose: the host of a replica's pool
// is banned, and a primary that a database follows is looked at now.
func (e *Engine) serverFailed(p *pool.Pool) {
	switch h := p.Host.(type) {
	case *replica:
		e.banReplica(h, "a connection was lost", "pool", p.Name)
	case *database:
		if h.followsPrimary {
			e.kickChecks() // the primary may be gone: the shard's new transactions should wait for the next
		}
	}
}
