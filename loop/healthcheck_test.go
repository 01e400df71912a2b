package loop

import (
	"testing"
	"time"

	"github.com/pgshard/pgshard/codec"
	"github.com/pgshard/pgshard/pool"
)

// oneReplicaEngine is an engine over database app, a primary and one replica, with the settings top (a pool:
// line, a limits: line).
func oneReplicaEngine(t *testing.T, top string) *Engine {
	return testEngine(t, top+`
users: [{name: trusted, auth_method: trust}]
databases:
  - name: app
    shards:
      - primary: "postgres://127.0.0.1:5432/app_0"
        replicas: ["postgres://127.0.0.1:5433/app_0"]
`)
}

// healthCheckEvery1ms is the pool: line of the health check tests: idle connections are checked after 1 ms.
const healthCheckEvery1ms = "pool: {health_check_interval: 1ms}\n"

// idleReplicaServer opens a server of the pool of database app's first replica on a new loop of e, idle in its
// pool, and lets 5 ms pass (past the 1 ms health check interval or idle timeout of the tests' configs).
func idleReplicaServer(t *testing.T, e *Engine) (*server, *pool.Pool, *replica) {
	ls := newTestLoop(e)
	cat := e.cat.Load()
	p := e.readPoolsFor(cat.dbs["app"], cat.users["trusted"])[0][0]
	s := openServer(t, ls, p, nil)
	if s.state != serverIdle || p.Stats().Idle != 1 {
		t.Fatalf("state %v, %d idle; want idle, 1", s.state, p.Stats().Idle)
	}
	time.Sleep(5 * time.Millisecond)
	return s, p, cat.dbs["app"].replicas[0][0]
}

func TestIdleServerIsCheckedThenPooledAgain(t *testing.T) {
	e := oneReplicaEngine(t, healthCheckEvery1ms)
	s, p, r := idleReplicaServer(t, e)
	e.sweep(s.ls)
	if s.state != serverDetached || p.Stats().Idle != 0 {
		t.Fatalf("state %v, %d idle; want detached (its check in flight), 0", s.state, p.Stats().Idle)
	}
	if q := queries(t, s.c.(*fakeConn).take()); len(q) != 1 || q[0] != "" {
		t.Fatalf("the server was sent %q, want one empty query", q)
	}
	answerWith(s, codec.AppendReadyForQuery(codec.AppendEmptyQueryResponse(nil), codec.TxIdle))
	if s.state != serverIdle || p.Stats().Idle != 1 || len(s.ls.checking) != 0 || r.inBan(time.Now()) {
		t.Fatalf("state %v, %d idle, %d checks in flight, banned %v; want idle, 1, 0, not banned",
			s.state, p.Stats().Idle, len(s.ls.checking), r.inBan(time.Now()))
	}
}

func TestServerLostDuringItsHealthCheckBansItsReplica(t *testing.T) {
	e := oneReplicaEngine(t, healthCheckEvery1ms)
	s, p, r := idleReplicaServer(t, e)
	e.sweep(s.ls)
	s.ls.closeConn(s.c) // the server was gone: the check's write or read fails
	if s.state != serverGone || p.Stats().Total != 0 || len(s.ls.checking) != 0 || !r.inBan(time.Now()) {
		t.Fatalf("state %v, %d in the pool, %d checks in flight, banned %v; want gone, 0, 0, banned",
			s.state, p.Stats().Total, len(s.ls.checking), r.inBan(time.Now()))
	}
}

func TestUnansweredHealthCheckClosesTheServer(t *testing.T) {
	e := oneReplicaEngine(t, healthCheckEvery1ms+"limits: {server_connect_timeout: 2ms}\n")
	s, p, r := idleReplicaServer(t, e)
	e.sweep(s.ls)
	e.sweep(s.ls)
	if s.state != serverDetached {
		t.Fatalf("state %v, want detached: the check has its timeout to answer", s.state)
	}
	time.Sleep(5 * time.Millisecond)
	e.sweep(s.ls)
	if s.state != serverGone || p.Stats().Total != 0 || !r.inBan(time.Now()) {
		t.Fatalf("state %v, %d in the pool, banned %v; want gone, 0, banned", s.state, p.Stats().Total, r.inBan(time.Now()))
	}
}
