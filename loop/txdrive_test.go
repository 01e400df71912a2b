package loop

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/panjf2000/gnet/v2"

	"github.com/pgshard/pgshard/codec"
	"github.com/pgshard/pgshard/pool"
	"github.com/pgshard/pgshard/twopc"
)

// sink is a connection that keeps what is written to it; any other use panics (the embedded interface is nil).
type sink struct {
	gnet.Conn
	out []byte
}

func (c *sink) Write(b []byte) (int, error) { c.out = append(c.out, b...); return len(b), nil }
func (c *sink) OutboundBuffered() int       { return 0 }

// sent is what s was sent, once the callback the test stands for has returned (outbox.go).
func sent(s *server) []byte {
	s.ls.flushServers()
	return s.c.(*sink).out
}

// twoShardTx makes a client of a two-shard database with two_phase_commit, in a transaction that wrote on both
// shards, with a server of each (no sockets: they write into sinks).
func twoShardTx(t *testing.T) (*client, [2]*server) {
	t.Helper()
	e := testEngine(t, `
two_phase_log: `+filepath.Join(t.TempDir(), "2pc.log")+`
users: [{name: app, password: secret}]
databases:
  - name: app
    two_phase_commit: true
    shards: [{primary: "postgres://127.0.0.1:5432/app_0"}, {primary: "postgres://127.0.0.1:5432/app_1"}]
    sharded_tables: [{table: t, column: id, type: bigint}]
`)
	var err error
	if e.tpc, err = twopc.Open(e.cfg.TwoPhaseLog); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.tpc.Close() })
	ls := &loopState{}
	cl := &client{e: e, ls: ls, c: &sink{}, state: clientReady, srvs: make([]*server, 2), dbName: "app",
		user: e.cat.Load().users["app"], db: e.cat.Load().dbs["app"]}
	var srvs [2]*server
	for i := range srvs {
		p := pool.New("app/app/"+string(rune('0'+i)), pool.Settings{Size: 1}, 1)
		s := &server{e: e, ls: ls, c: &sink{}, backend: &pool.Backend{Params: map[string]string{}}, status: codec.TxActive, shard: i}
		s.pc = p.NewConn(0, s, timeZero)
		cl.srvs[i], s.client, s.state = s, cl, serverActive
		srvs[i] = s
	}
	cl.sh.txOpen, cl.sh.txShards, cl.sh.writes = true, 3, 3
	return cl, srvs
}

// answerDrive feeds s the answer of Postgres to one of the drive's statements.
func answerDrive(t *testing.T, s *server, tag string, status byte) {
	t.Helper()
	receive(t, s, codec.AppendReadyForQuery(codec.AppendCommandComplete(nil, tag), status))
}

func TestTwoPhaseCommitNeedsEveryPrepareAnswered(t *testing.T) {
	cl, srvs := twoShardTx(t)
	// Shard 1's connection is gone by the time the COMMIT comes (a write to it failed and closed it): its part of
	// the transaction is rolled back by Postgres, so shard 0's must not commit.
	srvs[1].state = serverGone
	d := cl.startDrive(txCommand{kind: txEnd})
	if d.step != stepPrepare || d.gid == "" {
		t.Fatalf("step %v, gid %q: want PREPARE TRANSACTION sent", d.step, d.gid)
	}
	answerDrive(t, srvs[0], "PREPARE TRANSACTION", codec.TxIdle)
	cl.e.failpoint = failpointBeforeDecision // should it decide, it halts there (the log's writer has no loop here)
	d.advance()
	if d.step != stepAbort {
		t.Fatalf("step %v after shard 0 alone prepared: want the abort", d.step)
	}
	if undone := cl.e.tpc.Undone(); len(undone) != 0 {
		t.Fatalf("commit decided for %v with shard 1's PREPARE never answered", undone)
	}
	if got := string(sent(srvs[0])); !strings.Contains(got, "PREPARE TRANSACTION") || !strings.Contains(got, "ROLLBACK PREPARED") {
		t.Fatalf("shard 0 was sent %q: want its PREPARE rolled back", got)
	}
}

func TestCommitPreparedKeepsTheDecisionUntilEveryShardAnswered(t *testing.T) {
	cl, srvs := twoShardTx(t)
	d := cl.startDrive(txCommand{kind: txEnd})
	answerDrive(t, srvs[0], "PREPARE TRANSACTION", codec.TxIdle)
	answerDrive(t, srvs[1], "PREPARE TRANSACTION", codec.TxIdle)
	// The decision, as the log's writer would hand it back to the loop.
	done := make(chan error, 1)
	cl.e.tpc.Commit(d.gid, func(err error) { done <- err })
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	d.step = stepDecide
	srvs[1].state = serverGone // lost between the decision and COMMIT PREPARED
	d.decided(nil)
	answerDrive(t, srvs[0], "COMMIT PREPARED", codec.TxIdle)
	d.advance()
	if !cl.e.tpc.Decided(d.gid) {
		t.Fatal("the commit decision was dropped while shard 1's part is still prepared: the sweeper would roll it back")
	}
}
