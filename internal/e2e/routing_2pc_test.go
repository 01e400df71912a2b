package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgproto3"
)

// Two-phase commit (two_phase_commit: true on database app). The shards log every statement, so the tests
// see the PREPARE TRANSACTION and COMMIT PREPARED pgshard sends; what is committed is read on each shard
// directly.

// twoPhaseDDL is created on every shard: a sharded table (tenant_id) whose unique constraint is checked at
// commit, so that PREPARE TRANSACTION fails on one shard; and one whose commit takes 2 s.
const twoPhaseDDL = `
CREATE TABLE tenant_notes (tenant_id integer NOT NULL, note text NOT NULL,
  CONSTRAINT note_unique UNIQUE (note) DEFERRABLE INITIALLY DEFERRED);
CREATE TABLE tenant_slow (tenant_id integer NOT NULL);
CREATE FUNCTION slow_commit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(2); RETURN NULL; END $$;
CREATE CONSTRAINT TRIGGER slow AFTER INSERT ON tenant_slow DEFERRABLE INITIALLY DEFERRED
  FOR EACH ROW EXECUTE FUNCTION slow_commit();
`

func startTwoPhase(t *testing.T, settings [2]map[string]string) (*shardedEnv, string) {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), "2pc.log")
	for i := range settings {
		if settings[i] == nil {
			settings[i] = map[string]string{}
		}
		settings[i]["log_statement"] = "all"
	}
	e := startShardedWith(t, layoutTwoClusters, shardedOpts{
		appKeys:  "    two_phase_commit: true\n",
		topKeys:  "two_phase_log: " + logPath + "\n",
		settings: settings,
	})
	for _, s := range e.shards {
		s.exec(t, twoPhaseDDL)
	}
	return e, logPath
}

// reset2PC empties the tables the two-phase tests write.
func (e *shardedEnv) reset2PC(t *testing.T) {
	t.Helper()
	e.reset(t)
	for _, s := range e.shards {
		s.exec(t, "TRUNCATE tenant_notes, tenant_slow")
	}
}

// statements counts the statements starting with prefix that the shards logged.
func (e *shardedEnv) statements(t *testing.T, prefix string) int {
	t.Helper()
	n := 0
	for _, s := range e.shards {
		b, err := os.ReadFile(s.Cluster.LogFile)
		if err != nil {
			t.Fatal(err)
		}
		n += strings.Count(string(b), "statement: "+prefix)
	}
	return n
}

// prepared lists the prepared transactions on shard s.
func (s *shardRef) prepared(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, r := range s.rows(t, "SELECT gid FROM pg_prepared_xacts WHERE database = current_database() ORDER BY gid") {
		out = append(out, r[0])
	}
	return out
}

func (e *shardedEnv) countRows(t *testing.T, table string) [2]string {
	t.Helper()
	return [2]string{e.shards[0].value(t, "SELECT count(*) FROM "+table), e.shards[1].value(t, "SELECT count(*) FROM "+table)}
}

func TestTwoPhaseCommit(t *testing.T) {
	t.Parallel()
	e, _ := startTwoPhase(t, [2]map[string]string{})
	ctx := Ctx(t, 5*time.Minute)
	insert := func(k int64) string { return fmt.Sprintf("INSERT INTO accounts (aid) VALUES (%d)", k) }
	placed := func(t *testing.T, what string, keys map[int64]int) {
		t.Helper()
		want := map[string]int{}
		for k, s := range keys {
			want[strconv.FormatInt(k, 10)] = s
		}
		e.checkPlacement(t, what, "accounts", "aid::text", want)
	}
	mustExec := func(t *testing.T, c *pgx.Conn, sql string, args ...any) {
		t.Helper()
		if _, err := c.Exec(ctx, sql, args...); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}

	t.Run("multi-shard write commits on every shard", func(t *testing.T) {
		e.reset2PC(t)
		ks := e.accountKeys(t, 20000, 3)
		prepares, commits := e.statements(t, "PREPARE TRANSACTION 'pgshard_"), e.statements(t, "COMMIT PREPARED 'pgshard_")
		c := e.connect(t, ctx, pgx.QueryExecModeCacheStatement)
		tx, err := c.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		mustExec(t, tx.Conn(), "INSERT INTO accounts (aid) VALUES ($1)", ks[0][0])
		mustExec(t, tx.Conn(), "INSERT INTO accounts (aid) VALUES ($1)", ks[1][0])
		if err := tx.Commit(ctx); err != nil {
			t.Fatalf("COMMIT: %v", err)
		}
		placed(t, "after a two-phase COMMIT", map[int64]int{ks[0][0]: 0, ks[1][0]: 1})
		if p, cp := e.statements(t, "PREPARE TRANSACTION 'pgshard_")-prepares, e.statements(t, "COMMIT PREPARED 'pgshard_")-commits; p != 2 || cp != 2 {
			t.Errorf("the shards ran %d PREPARE TRANSACTION and %d COMMIT PREPARED, want 2 and 2", p, cp)
		}

		// The extended protocol, and a query pipelined after the COMMIT, which sees the committed rows.
		pc := c.PgConn()
		got := exchange(t, ctx, pc, 2, msgs(extended("BEGIN"), extended(insert(ks[0][1])), extended(insert(ks[1][1])), extended("COMMIT"), syncMsg,
			[]pgproto3.FrontendMessage{&pgproto3.Query{String: fmt.Sprintf("SELECT aid FROM accounts WHERE aid IN (%d, %d) AND aid = %d", ks[0][1], ks[1][1], ks[1][1])}})...)
		want := []string{"ParseComplete", "BindComplete", "NoData", "CommandComplete(BEGIN)",
			"ParseComplete", "BindComplete", "NoData", "CommandComplete(INSERT 0 1)",
			"ParseComplete", "BindComplete", "NoData", "CommandComplete(INSERT 0 1)",
			"ParseComplete", "BindComplete", "NoData", "CommandComplete(COMMIT)", "ReadyForQuery(I)",
			"RowDescription", fmt.Sprintf("DataRow[%d]", ks[1][1]), "CommandComplete(SELECT 1)", "ReadyForQuery(I)"}
		expectAnswers(t, "extended two-phase COMMIT, then a query in the same write", got, want)
		placed(t, "after an extended two-phase COMMIT", map[int64]int{ks[0][0]: 0, ks[1][0]: 1, ks[0][1]: 0, ks[1][1]: 1})

		// A simple COMMIT with the next statement in the same write.
		expectAnswers(t, "BEGIN and INSERTs", exchange(t, ctx, pc, 3, &pgproto3.Query{String: "BEGIN"}, &pgproto3.Query{String: insert(ks[1][2])},
			&pgproto3.Query{String: insert(ks[0][2])}), []string{"CommandComplete(BEGIN)", "ReadyForQuery(T)",
			"CommandComplete(INSERT 0 1)", "ReadyForQuery(T)", "CommandComplete(INSERT 0 1)", "ReadyForQuery(T)"})
		expectAnswers(t, "COMMIT and a read in one write", exchange(t, ctx, pc, 2, &pgproto3.Query{String: "COMMIT"},
			&pgproto3.Query{String: fmt.Sprintf("SELECT aid FROM accounts WHERE aid = %d", ks[0][2])}),
			[]string{"CommandComplete(COMMIT)", "ReadyForQuery(I)", "RowDescription", fmt.Sprintf("DataRow[%d]", ks[0][2]), "CommandComplete(SELECT 1)", "ReadyForQuery(I)"})
		if p := e.statements(t, "PREPARE TRANSACTION 'pgshard_") - prepares; p != 6 {
			t.Errorf("%d PREPARE TRANSACTION in all, want 6", p)
		}
		e.serversClean(t)
	})

	t.Run("one writer commits without PREPARE", func(t *testing.T) {
		e.reset2PC(t)
		ks := e.accountKeys(t, 20100, 1)
		e.seedAccounts(t, ks[1][0])
		prepares := e.statements(t, "PREPARE TRANSACTION")
		c := e.connect(t, ctx, pgx.QueryExecModeCacheStatement)
		tx, err := c.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		mustExec(t, tx.Conn(), "INSERT INTO accounts (aid) VALUES ($1)", ks[0][0])
		var n int
		if err := tx.QueryRow(ctx, "SELECT count(*) FROM accounts WHERE aid = $1", ks[1][0]).Scan(&n); err != nil || n != 1 {
			t.Fatalf("read on the other shard: %d, %v", n, err)
		}
		if err := tx.Commit(ctx); err != nil {
			t.Fatalf("COMMIT: %v", err)
		}
		placed(t, "after a transaction that wrote on one shard", map[int64]int{ks[0][0]: 0, ks[1][0]: 1})
		if p := e.statements(t, "PREPARE TRANSACTION") - prepares; p != 0 {
			t.Errorf("%d PREPARE TRANSACTION for a transaction that wrote on one shard, want none", p)
		}
		e.serversClean(t)
	})

	t.Run("a failed PREPARE rolls back every shard", func(t *testing.T) {
		tk := e.tenantKeys(t, 100, 3)
		ks := e.accountKeys(t, 20200, 2)
		for bad := range 2 {
			for _, extendedCommit := range []bool{false, true} {
				e.reset2PC(t)
				c := e.connect(t, ctx, pgx.QueryExecModeCacheStatement)
				mustExec(t, c, "BEGIN")
				// Two notes alike on shard bad: its unique constraint fails at PREPARE TRANSACTION.
				mustExec(t, c, "INSERT INTO tenant_notes (tenant_id, note) VALUES ($1, 'same')", tk[bad][0])
				mustExec(t, c, "INSERT INTO tenant_notes (tenant_id, note) VALUES ($1, 'same')", tk[bad][1])
				mustExec(t, c, "INSERT INTO tenant_notes (tenant_id, note) VALUES ($1, 'other')", tk[1-bad][0])
				mustExec(t, c, "INSERT INTO accounts (aid) VALUES ($1)", ks[0][0])
				mustExec(t, c, "INSERT INTO accounts (aid) VALUES ($1)", ks[1][0])
				var err error
				if extendedCommit {
					got := exchange(t, ctx, c.PgConn(), 1, msgs(extended("COMMIT"), syncMsg)...)
					if len(got) != 5 || !strings.HasPrefix(got[3], "ErrorResponse(ERROR 23505 duplicate key value violates unique constraint \"note_unique\"") ||
						got[4] != "ReadyForQuery(I)" {
						t.Errorf("extended COMMIT, constraint failing on shard %d: got %q, want ParseComplete, BindComplete, NoData, ErrorResponse 23505, ReadyForQuery(I)", bad, got)
					}
				} else {
					_, err = c.Exec(ctx, "COMMIT")
					if pe := pgError(err); pe == nil || pe.Code != "23505" || pe.ConstraintName != "note_unique" {
						t.Errorf("COMMIT, constraint failing on shard %d: %v, want the shard's 23505 on note_unique", bad, err)
					}
				}
				if s := c.PgConn().TxStatus(); s != 'I' {
					t.Errorf("transaction status after the failed COMMIT: %c, want I", s)
				}
				if n := e.countRows(t, "tenant_notes"); n != [2]string{"0", "0"} {
					t.Errorf("tenant_notes rows after the failed COMMIT: %v, want none", n)
				}
				placed(t, "after the failed two-phase COMMIT", map[int64]int{})
				e.serversClean(t)
				// The connection goes on.
				mustExec(t, c, "BEGIN")
				mustExec(t, c, "INSERT INTO accounts (aid) VALUES ($1)", ks[0][1])
				mustExec(t, c, "INSERT INTO accounts (aid) VALUES ($1)", ks[1][1])
				mustExec(t, c, "COMMIT")
				placed(t, "after the next transaction", map[int64]int{ks[0][1]: 0, ks[1][1]: 1})
			}
		}
	})

	t.Run("COMMIT AND CHAIN is refused", func(t *testing.T) {
		e.reset2PC(t)
		ks := e.accountKeys(t, 20300, 1)
		c := e.connect(t, ctx, pgx.QueryExecModeCacheStatement)
		mustExec(t, c, "BEGIN")
		mustExec(t, c, "INSERT INTO accounts (aid) VALUES ($1)", ks[0][0])
		mustExec(t, c, "INSERT INTO accounts (aid) VALUES ($1)", ks[1][0])
		_, err := c.Exec(ctx, "COMMIT AND CHAIN")
		if pe := pgError(err); pe == nil || pe.Code != "0A000" {
			t.Errorf("COMMIT AND CHAIN of a two-phase transaction: %v, want SQLSTATE 0A000", err)
		}
		if s := c.PgConn().TxStatus(); s != 'I' {
			t.Errorf("transaction status after the refusal: %c, want I", s)
		}
		placed(t, "after the refused COMMIT AND CHAIN", map[int64]int{})
		e.serversClean(t)
	})

	t.Run("a client gone mid-commit leaves nothing prepared", func(t *testing.T) {
		e.reset2PC(t)
		tk := e.tenantKeys(t, 200, 1)
		ks := e.accountKeys(t, 20400, 1)
		c := e.connect(t, ctx, pgx.QueryExecModeCacheStatement)
		mustExec(t, c, "BEGIN")
		mustExec(t, c, "INSERT INTO accounts (aid) VALUES ($1)", ks[0][0])
		mustExec(t, c, "INSERT INTO tenant_slow (tenant_id) VALUES ($1)", tk[1][0]) // its PREPARE takes 2 s
		fe := c.PgConn().Frontend()
		fe.Send(&pgproto3.Query{String: "COMMIT"})
		if err := fe.Flush(); err != nil {
			t.Fatal(err)
		}
		if !waitFor(5*time.Second, func() bool { return len(e.shards[0].prepared(t)) == 1 }) {
			t.Fatalf("shard 0 never showed the prepared transaction (%v)", e.shards[0].prepared(t))
		}
		_ = c.PgConn().Conn().Close() // the client goes away while shard 1 still prepares
		if !waitFor(30*time.Second, func() bool {
			return len(e.shards[0].prepared(t)) == 0 && len(e.shards[1].prepared(t)) == 0
		}) {
			t.Errorf("prepared transactions left: shard 0 %v, shard 1 %v", e.shards[0].prepared(t), e.shards[1].prepared(t))
		}
		placed(t, "after the client left mid-commit", map[int64]int{})
		if n := e.countRows(t, "tenant_slow"); n != [2]string{"0", "0"} {
			t.Errorf("tenant_slow rows: %v, want none", n)
		}
		e.serversClean(t)
	})

	// crash runs a two-phase commit through a second pgshard on the same shards with its own log, stopped
	// by failpoint, kills it there, restarts it, and returns the keys written (one per shard).
	crash := func(t *testing.T, failpoint string, from int64) [2]int64 {
		e.reset2PC(t)
		ks := e.accountKeys(t, from, 1)
		logPath := filepath.Join(t.TempDir(), "crash-2pc.log")
		i := strings.Index(e.config, "\n")
		cfg := "two_phase_log: " + logPath + e.config[i:]
		p := StartProxyEnv(t, cfg, "PGSHARD_FAILPOINT="+failpoint)
		pcfg, err := pgx.ParseConfig(p.DSN("app", "app", "secret"))
		if err != nil {
			t.Fatal(err)
		}
		c, err := pgx.ConnectConfig(ctx, pcfg)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close(context.Background())
		mustExec(t, c, "BEGIN")
		mustExec(t, c, "INSERT INTO accounts (aid) VALUES ($1)", ks[0][0])
		mustExec(t, c, "INSERT INTO accounts (aid) VALUES ($1)", ks[1][0])
		committed := make(chan error, 1)
		go func() { _, err := c.Exec(ctx, "COMMIT"); committed <- err }()
		if !waitFor(10*time.Second, func() bool { return strings.Contains(p.Log(), "failpoint reached") }) {
			t.Fatalf("pgshard never reached failpoint %s:\n%s", failpoint, p.Log())
		}
		gids := [2][]string{e.shards[0].prepared(t), e.shards[1].prepared(t)}
		if len(gids[0]) != 1 || len(gids[1]) != 1 || !strings.HasPrefix(gids[0][0], "pgshard_") ||
			gids[0][0] != strings.TrimSuffix(gids[1][0], "_1")+"_0" {
			t.Fatalf("at the failpoint the shards hold prepared transactions %v, want one pgshard_..._<shard> on each, of the same transaction", gids)
		}
		placed(t, "at the failpoint", map[int64]int{})
		p.Kill()
		if err := <-committed; err == nil {
			t.Errorf("COMMIT through the killed pgshard succeeded")
		}
		// The restarted pgshard finishes the prepared transactions before it listens.
		p = StartProxy(t, cfg)
		for _, s := range e.shards {
			if g := s.prepared(t); len(g) != 0 {
				t.Errorf("shard %d still holds prepared transactions %v after the restart", s.Index, g)
			}
		}
		if !strings.Contains(p.Log(), "finished prepared transactions") {
			t.Errorf("the restarted pgshard did not log what it finished:\n%s", p.Log())
		}
		p.Stop(t, 10*time.Second)
		return [2]int64{ks[0][0], ks[1][0]}
	}

	t.Run("killed after the decision: committed at restart", func(t *testing.T) {
		k := crash(t, "2pc-after-decision", 20500)
		placed(t, "after the restart", map[int64]int{k[0]: 0, k[1]: 1})
	})

	t.Run("killed before the decision: rolled back at restart", func(t *testing.T) {
		crash(t, "2pc-before-decision", 20600)
		placed(t, "after the restart", map[int64]int{})
	})
}

// TestTwoPhaseCommitDisabled: a shard with max_prepared_transactions = 0.
func TestTwoPhaseCommitDisabled(t *testing.T) {
	t.Parallel()
	e, _ := startTwoPhase(t, [2]map[string]string{nil, {"max_prepared_transactions": "0"}})
	ctx := Ctx(t, 2*time.Minute)
	if !strings.Contains(e.proxy.Log(), "max_prepared_transactions > 0") {
		t.Errorf("no warning at start about max_prepared_transactions = 0 on shard 1:\n%s", e.proxy.Log())
	}
	ks := e.accountKeys(t, 21000, 2)
	c := e.connect(t, ctx, pgx.QueryExecModeCacheStatement)
	if _, err := c.Exec(ctx, "BEGIN"); err != nil {
		t.Fatal(err)
	}
	for s := range 2 {
		if _, err := c.Exec(ctx, "INSERT INTO accounts (aid) VALUES ($1)", ks[s][0]); err != nil {
			t.Fatal(err)
		}
	}
	_, err := c.Exec(ctx, "COMMIT")
	if pe := pgError(err); pe == nil || pe.Code != "55000" || !strings.Contains(pe.Message, "max_prepared_transactions") {
		t.Errorf("COMMIT with a shard without prepared transactions: %v, want 55000 naming max_prepared_transactions", err)
	}
	e.checkPlacement(t, "after the refused COMMIT", "accounts", "aid::text", map[string]int{})
	e.serversClean(t)
	// A transaction that writes on one shard still commits.
	if _, err := c.Exec(ctx, "INSERT INTO accounts (aid) VALUES ($1)", ks[1][1]); err != nil {
		t.Fatal(err)
	}
	e.checkPlacement(t, "after a one-shard write", "accounts", "aid::text", map[string]int{strconv.FormatInt(ks[1][1], 10): 1})
}
