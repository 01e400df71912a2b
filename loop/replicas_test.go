package loop

import (
	"testing"
	"time"

	"github.com/pgshard/pgshard/codec"
	"github.com/pgshard/pgshard/pool"
)

// replicaClient is a client logged in to database app, whose shard has replicas r1 (weight 1) and r2 (weight
// 3), with the database settings more.
func replicaClient(t *testing.T, more string) *client {
	e := testEngine(t, `
users: [{name: trusted, auth_method: trust}]
databases:
  - name: app
`+more+`
    shards:
      - primary: "postgres://127.0.0.1:5432/app_0"
        replicas: ["postgres://127.0.0.1:5433/app_0", {url: "postgres://127.0.0.1:5434/app_0", weight: 3}]
`)
	cat := e.cat.Load()
	e.rememberParams(e.paramsKey(cat.dbs["app"], cat.users["trusted"]), map[string]string{"server_version": "17.2"})
	cl := newTestClient(t, e)
	clientSends(cl, startupBytes("trusted", "app"))
	if cl.state != clientReady || len(cl.readPools) != 1 || len(cl.readPools[0]) != 2 {
		t.Fatalf("state %v, read pools %v; want ready, two replicas", cl.state, cl.readPools)
	}
	return cl
}

// picks counts the pools readPool picks in n reads: "primary", "r1", "r2".
func picks(cl *client, n int) map[string]int {
	got := map[string]int{}
	for range n {
		p := cl.readPool(0)
		name := "primary"
		if p.Replica > 0 {
			name = "r" + string(rune('0'+p.Replica))
		}
		got[name]++
	}
	return got
}

func TestReadsGoToTheReplicasByWeight(t *testing.T) {
	cl := replicaClient(t, "")
	if got := picks(cl, 400); got["r1"] != 100 || got["r2"] != 300 {
		t.Fatalf("picks %v, want r1 100, r2 300 (weights 1 and 3)", got)
	}
	cl = replicaClient(t, "    read_write_split: replicas_and_primary\n")
	if got := picks(cl, 500); got["r1"] != 100 || got["r2"] != 300 || got["primary"] != 100 {
		t.Fatalf("picks %v, want r1 100, r2 300, primary 100", got)
	}
}

func TestReadsLeaveOutBannedLaggingAndBehindReplicas(t *testing.T) {
	cl := replicaClient(t, "")
	r1, r2 := cl.db.replicas[0][0], cl.db.replicas[0][1]
	cl.e.ban(r2, time.Now(), "test")
	if got := picks(cl, 10); got["r1"] != 10 {
		t.Fatalf("with r2 banned: picks %v, want r1 only", got)
	}
	r1.lagging.Store(true)
	if got := picks(cl, 10); got["primary"] != 10 {
		t.Fatalf("with r2 banned and r1 lagging: picks %v, want the primary only", got)
	}
	r1.lagging.Store(false)
	r2.bannedUntil.Store(0)
	r1.replayLSN.Store(100)
	r2.replayLSN.Store(200)
	cl.writeLSN = []uint64{150} // read-your-writes: r1 has not replayed the client's write
	if got := picks(cl, 10); got["r2"] != 10 {
		t.Fatalf("with the client's write replayed by r2 only: picks %v, want r2 only", got)
	}
	cl.writeLSN = []uint64{300}
	if got := picks(cl, 10); got["primary"] != 10 {
		t.Fatalf("with the client's write replayed by none: picks %v, want the primary only", got)
	}
}

func TestLeastOutstandingPicksTheLeastBusyReplicaForItsWeight(t *testing.T) {
	cl := replicaClient(t, "    load_balancing: least_outstanding\n")
	busy := func(p *pool.Pool, n int) {
		for range n {
			if _, outcome := p.Checkout(&pool.Waiter{}); outcome != pool.MustDial {
				t.Fatalf("checkout %v", outcome)
			}
		}
	}
	r1, r2 := cl.readPools[0][0], cl.readPools[0][1]
	busy(r1, 1)
	busy(r2, 2) // 2 in use for weight 3: less loaded than r1's 1 for weight 1
	if got := picks(cl, 10); got["r2"] != 10 {
		t.Fatalf("picks %v, want r2 only", got)
	}
	busy(r2, 2) // 4 for weight 3 against 1 for weight 1
	if got := picks(cl, 10); got["r1"] != 10 {
		t.Fatalf("picks %v, want r1 only", got)
	}
}

func TestIdleReplicaServerPastIdleTimeoutIsClosedByTheSweep(t *testing.T) {
	e := oneReplicaEngine(t, "pool: {idle_timeout: 1ms}\n")
	s, p, _ := idleReplicaServer(t, e)
	e.sweep(s.ls)
	if s.state != serverGone || p.Stats().Total != 0 {
		t.Fatalf("state %v, %d in the pool; want gone, 0", s.state, p.Stats().Total)
	}
}

func TestReadWaitsForReplayOnlyWhenAReplicaCanCatchUp(t *testing.T) {
	read := codec.AppendQuery(nil, "SELECT 1")
	waits := func(cl *client) bool { _, wait := cl.poolFor(read); return wait }
	cl := replicaClient(t, "    read_your_writes: session\n    read_your_writes_timeout: 1s\n")
	r1, r2 := cl.db.replicas[0][0], cl.db.replicas[0][1]
	r1.replayLSN.Store(100)
	r2.replayLSN.Store(100)
	cl.writeLSN = []uint64{150}
	if !waits(cl) {
		t.Fatal("a read after a write no replica replayed yet does not wait")
	}
	r2.replayLSN.Store(200)
	if p, wait := cl.poolFor(read); wait || p.Replica != 2 {
		t.Fatalf("with r2 caught up: pool %s, wait %v; want r2 at once", p.Name, wait)
	}
	r2.replayLSN.Store(100)
	cl.e.ban(r1, time.Now(), "test")
	cl.e.ban(r2, time.Now(), "test")
	if waits(cl) {
		t.Fatal("a read waits with every replica banned: none will catch up")
	}
	r1.bannedUntil.Store(0)
	cl.gaveUp = 1
	if waits(cl) {
		t.Fatal("a read waits for a write it gave up waiting for")
	}
	cl = replicaClient(t, "    read_your_writes: session\n    read_your_writes_timeout: 1s\n    read_write_split: replicas_and_primary\n")
	cl.writeLSN = []uint64{150}
	if waits(cl) {
		t.Fatal("with replicas_and_primary a read waits instead of going to the primary")
	}
}

func TestReadsAlternatingBetweenShardsTakeEachShardsReplicasInTurn(t *testing.T) {
	e := testEngine(t, `
users: [{name: trusted, auth_method: trust}]
databases:
  - name: app
    shards:
      - primary: "postgres://127.0.0.1:5432/app_0"
        replicas: ["postgres://127.0.0.1:5433/app_0", "postgres://127.0.0.1:5434/app_0"]
      - primary: "postgres://127.0.0.1:5432/app_1"
        replicas: ["postgres://127.0.0.1:5433/app_1", "postgres://127.0.0.1:5434/app_1"]
    sharded_tables: [{table: t, column: id, type: bigint}]
`)
	cat := e.cat.Load()
	e.rememberParams(e.paramsKey(cat.dbs["app"], cat.users["trusted"]), map[string]string{"server_version": "17.2"})
	cl := newTestClient(t, e)
	clientSends(cl, startupBytes("trusted", "app"))
	if cl.state != clientReady || len(cl.readPools) != 2 {
		t.Fatalf("state %v, read pools %v; want ready, two shards' replicas", cl.state, cl.readPools)
	}
	got := map[string]int{}
	for range 4 {
		for shard := range 2 {
			got[cl.readPool(shard).Name]++
		}
	}
	for _, p := range append(cl.readPools[0], cl.readPools[1]...) {
		if got[p.Name] != 2 {
			t.Fatalf("picks %v, want each shard's two replicas twice", got)
		}
	}
}
