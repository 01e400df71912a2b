package e2e

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
)

// ---- 11. the end of a multi-shard transaction in the extended protocol ----
//
// These tests speak the protocol message by message on a pgx connection (pgx sends COMMIT as a simple query
// when it has no arguments), and compare what the client sees with what one Postgres answers.

// exchange writes msgs to pc in one write and returns the answers (see describe) up to the readies-th
// ReadyForQuery.
func exchange(t *testing.T, ctx context.Context, pc *pgconn.PgConn, readies int, msgs ...pgproto3.FrontendMessage) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, stmtTimeout)
	defer cancel()
	fe := pc.Frontend()
	for _, m := range msgs {
		fe.Send(m)
	}
	if err := fe.Flush(); err != nil {
		t.Fatalf("write to pgshard: %v", err)
	}
	var got []string
	for readies > 0 {
		m, err := pc.ReceiveMessage(ctx)
		if err != nil {
			t.Fatalf("after %q: %v", got, err)
		}
		got = append(got, describe(m))
		if isReady(m) {
			readies--
		}
	}
	return got
}

// extended is Parse, Bind, Describe (portal), Execute of sql on the unnamed statement and portal.
func extended(sql string, args ...string) []pgproto3.FrontendMessage {
	var params [][]byte
	for _, a := range args {
		params = append(params, []byte(a))
	}
	return []pgproto3.FrontendMessage{
		&pgproto3.Parse{Query: sql},
		&pgproto3.Bind{Parameters: params},
		&pgproto3.Describe{ObjectType: 'P'},
		&pgproto3.Execute{},
	}
}

func msgs(parts ...[]pgproto3.FrontendMessage) []pgproto3.FrontendMessage {
	var out []pgproto3.FrontendMessage
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

var syncMsg = []pgproto3.FrontendMessage{&pgproto3.Sync{}}

// expectAnswers compares what the client got with what Postgres answers.
func expectAnswers(t *testing.T, what string, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("%s:\n got  %q\n want %q", what, got, want)
	}
}

// serversClean waits until every server connection pgshard holds on every shard is idle (no transaction left
// open, nothing running) and no prepared transaction is left, and fails the test otherwise.
func (e *shardedEnv) serversClean(t *testing.T) {
	t.Helper()
	for _, s := range e.shards {
		var busy, prepared string
		ok := waitFor(5*time.Second, func() bool {
			busy = s.value(t, "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'pgshard' AND state <> 'idle'")
			prepared = s.value(t, "SELECT count(*) FROM pg_prepared_xacts WHERE database = current_database()")
			return busy == "0" && prepared == "0"
		})
		if !ok {
			states := s.rows(t, "SELECT coalesce(state, ''), left(query, 60) FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'pgshard'")
			t.Errorf("shard %d: %s server connections of pgshard are not idle (%v), %s prepared transactions are left", s.Index, busy, states, prepared)
		}
	}
}

func testTransactionEnd(t *testing.T, e *shardedEnv) {
	ctx := Ctx(t, 3*time.Minute)
	placed := func(t *testing.T, what string, keys map[int64]int) {
		t.Helper()
		want := map[string]int{}
		for k, s := range keys {
			want[strconv.FormatInt(k, 10)] = s
		}
		e.checkPlacement(t, what, "accounts", "aid::text", want)
	}
	insert := func(k int64) string { return fmt.Sprintf("INSERT INTO accounts (aid) VALUES (%d)", k) }
	// failedTx opens a transaction, writes key ok0 on shard 0 and ok1 on shard 1 (simple protocol) and then
	// makes it fail on shard bad with a duplicate of the key written there.
	failedTx := func(t *testing.T, pc *pgconn.PgConn, ok0, ok1 int64, bad int) {
		t.Helper()
		expectAnswers(t, "BEGIN", exchange(t, ctx, pc, 1, &pgproto3.Query{String: "BEGIN"}),
			[]string{"CommandComplete(BEGIN)", "ReadyForQuery(T)"})
		for _, k := range []int64{ok0, ok1} {
			expectAnswers(t, "INSERT in the transaction", exchange(t, ctx, pc, 1, &pgproto3.Query{String: insert(k)}),
				[]string{"CommandComplete(INSERT 0 1)", "ReadyForQuery(T)"})
		}
		dup := []int64{ok0, ok1}[bad]
		got := exchange(t, ctx, pc, 1, msgs(extended("INSERT INTO accounts (aid) VALUES ($1)", strconv.FormatInt(dup, 10)), syncMsg)...)
		if len(got) != 5 || !strings.HasPrefix(got[3], "ErrorResponse(ERROR 23505") || got[4] != "ReadyForQuery(E)" {
			t.Fatalf("duplicate key on shard %d: got %q, want ParseComplete, BindComplete, NoData, ErrorResponse 23505, ReadyForQuery(E)", bad, got)
		}
	}

	t.Run("extended COMMIT of a failed multi-shard transaction", func(t *testing.T) {
		e.reset(t)
		ks := e.accountKeys(t, 12000, 1)
		c := e.connect(t, ctx, pgx.QueryExecModeCacheStatement)
		pc := c.PgConn()
		ends := []struct {
			name string
			msgs []pgproto3.FrontendMessage
			want []string
		}{
			{"COMMIT (Parse, Bind, Describe, Execute, Sync)", msgs(extended("COMMIT"), syncMsg),
				[]string{"ParseComplete", "BindComplete", "NoData", "CommandComplete(ROLLBACK)", "ReadyForQuery(I)"}},
			{"end; (Parse, Bind, Execute, Sync)", []pgproto3.FrontendMessage{&pgproto3.Parse{Query: "end;"}, &pgproto3.Bind{}, &pgproto3.Execute{}, &pgproto3.Sync{}},
				[]string{"ParseComplete", "BindComplete", "CommandComplete(ROLLBACK)", "ReadyForQuery(I)"}},
			{"named prepared COMMIT WORK", []pgproto3.FrontendMessage{&pgproto3.Parse{Name: "fin", Query: "COMMIT WORK"}, &pgproto3.Sync{},
				&pgproto3.Bind{PreparedStatement: "fin"}, &pgproto3.Execute{}, &pgproto3.Close{ObjectType: 'S', Name: "fin"}, &pgproto3.Sync{}},
				[]string{"ParseComplete", "ReadyForQuery(E)", "BindComplete", "CommandComplete(ROLLBACK)", "CloseComplete", "ReadyForQuery(I)"}},
		}
		for i, end := range ends {
			for bad := range 2 {
				failedTx(t, pc, ks[0][0], ks[1][0], bad)
				readies := 0
				for _, m := range end.msgs {
					if _, ok := m.(*pgproto3.Sync); ok {
						readies++
					}
				}
				expectAnswers(t, fmt.Sprintf("%s of a transaction failed on shard %d", end.name, bad), exchange(t, ctx, pc, readies, end.msgs...), end.want)
				placed(t, fmt.Sprintf("after %s of a transaction failed on shard %d (end %d)", end.name, bad, i), map[int64]int{})
			}
		}
		e.serversClean(t)
		// The connection goes on normally: a multi-shard transaction ended by an extended COMMIT commits.
		expectAnswers(t, "BEGIN, two INSERTs, COMMIT (extended)", exchange(t, ctx, pc, 1, msgs(
			extended("BEGIN"), extended(insert(ks[0][0])), extended(insert(ks[1][0])), extended("COMMIT"), syncMsg)...),
			[]string{"ParseComplete", "BindComplete", "NoData", "CommandComplete(BEGIN)",
				"ParseComplete", "BindComplete", "NoData", "CommandComplete(INSERT 0 1)",
				"ParseComplete", "BindComplete", "NoData", "CommandComplete(INSERT 0 1)",
				"ParseComplete", "BindComplete", "NoData", "CommandComplete(COMMIT)", "ReadyForQuery(I)"})
		placed(t, "after an extended multi-shard COMMIT", map[int64]int{ks[0][0]: 0, ks[1][0]: 1})
		e.serversClean(t)
	})

	t.Run("COMMIT AND CHAIN of a failed multi-shard transaction", func(t *testing.T) {
		e.reset(t)
		ks := e.accountKeys(t, 12100, 2)
		c := e.connect(t, ctx, pgx.QueryExecModeCacheStatement)
		pc := c.PgConn()
		for _, end := range [][]pgproto3.FrontendMessage{{&pgproto3.Query{String: "COMMIT AND CHAIN"}}, msgs(extended("commit transaction and chain"), syncMsg)} {
			failedTx(t, pc, ks[0][0], ks[1][0], 1)
			got := exchange(t, ctx, pc, 1, end...)
			if len(got) < 2 || got[len(got)-2] != "CommandComplete(ROLLBACK)" || got[len(got)-1] != "ReadyForQuery(T)" {
				t.Errorf("COMMIT AND CHAIN of a failed transaction: got %q, want ... CommandComplete(ROLLBACK), ReadyForQuery(T) (rolled back, a new transaction begun)", got)
			}
			// The chained transaction spans both shards and works.
			for _, k := range []int64{ks[0][1], ks[1][1]} {
				expectAnswers(t, "INSERT in the chained transaction", exchange(t, ctx, pc, 1, &pgproto3.Query{String: insert(k)}),
					[]string{"CommandComplete(INSERT 0 1)", "ReadyForQuery(T)"})
			}
			expectAnswers(t, "ROLLBACK of the chained transaction", exchange(t, ctx, pc, 1, &pgproto3.Query{String: "ROLLBACK"}),
				[]string{"CommandComplete(ROLLBACK)", "ReadyForQuery(I)"})
			placed(t, "after COMMIT AND CHAIN of a failed transaction and ROLLBACK", map[int64]int{})
		}
		e.serversClean(t)
	})

	t.Run("error in a pipeline before its COMMIT", func(t *testing.T) {
		e.reset(t)
		ks := e.accountKeys(t, 12200, 1)
		c := e.connect(t, ctx, pgx.QueryExecModeCacheStatement)
		pc := c.PgConn()
		for bad := range 2 {
			// BEGIN and the write on shard bad come first; then one pipeline: a write on the other shard, a
			// duplicate on shard bad, COMMIT. Postgres skips what follows an error up to Sync: the COMMIT never
			// runs, the transaction is failed.
			expectAnswers(t, "BEGIN", exchange(t, ctx, pc, 1, &pgproto3.Query{String: "BEGIN"}),
				[]string{"CommandComplete(BEGIN)", "ReadyForQuery(T)"})
			mine, other := ks[bad][0], ks[1-bad][0]
			expectAnswers(t, "INSERT", exchange(t, ctx, pc, 1, &pgproto3.Query{String: insert(mine)}),
				[]string{"CommandComplete(INSERT 0 1)", "ReadyForQuery(T)"})
			got := exchange(t, ctx, pc, 1, msgs(extended(insert(other)), extended(insert(mine)), extended("COMMIT"), syncMsg)...)
			want := []string{"ParseComplete", "BindComplete", "NoData", "CommandComplete(INSERT 0 1)", "ParseComplete", "BindComplete", "NoData"}
			if len(got) != len(want)+2 || !slices.Equal(got[:len(want)], want) || !strings.HasPrefix(got[len(want)], "ErrorResponse(ERROR 23505") ||
				got[len(want)+1] != "ReadyForQuery(E)" {
				t.Errorf("pipeline with an error before COMMIT: got %q, want %q, ErrorResponse 23505, ReadyForQuery(E)", got, want)
			}
			placed(t, "after a pipeline whose COMMIT followed an error", map[int64]int{})
			expectAnswers(t, "ROLLBACK", exchange(t, ctx, pc, 1, &pgproto3.Query{String: "ROLLBACK"}),
				[]string{"CommandComplete(ROLLBACK)", "ReadyForQuery(I)"})
			placed(t, "after the ROLLBACK", map[int64]int{})
		}
		e.serversClean(t)
	})

	t.Run("COMMIT of a held-back transaction", func(t *testing.T) {
		c := e.connect(t, ctx, pgx.QueryExecModeCacheStatement)
		pc := c.PgConn()
		// BEGIN is held back and nothing ran on a server: COMMIT is answered as Postgres would, without the
		// warning a server outside a transaction gives.
		for _, end := range []struct{ sql, tag, status string }{
			{"COMMIT", "COMMIT", "I"}, {"ROLLBACK", "ROLLBACK", "I"}, {"COMMIT AND CHAIN", "COMMIT", "T"}, {"ABORT AND CHAIN", "ROLLBACK", "T"},
		} {
			if pc.TxStatus() == 'I' {
				expectAnswers(t, "BEGIN", exchange(t, ctx, pc, 1, &pgproto3.Query{String: "BEGIN"}), []string{"CommandComplete(BEGIN)", "ReadyForQuery(T)"})
			}
			expectAnswers(t, "extended "+end.sql+" of a held-back transaction", exchange(t, ctx, pc, 1, msgs(extended(end.sql), syncMsg)...),
				[]string{"ParseComplete", "BindComplete", "NoData", "CommandComplete(" + end.tag + ")", "ReadyForQuery(" + end.status + ")"})
		}
		expectAnswers(t, "ROLLBACK", exchange(t, ctx, pc, 1, &pgproto3.Query{String: "ROLLBACK"}), []string{"CommandComplete(ROLLBACK)", "ReadyForQuery(I)"})
	})

	t.Run("COMMIT failing on one shard leaves no transaction open", func(t *testing.T) {
		e.reset(t)
		for _, s := range e.shards {
			s.exec(t, "DROP TABLE IF EXISTS tenant_notes; CREATE TABLE tenant_notes (tenant_id integer NOT NULL, note text NOT NULL, CONSTRAINT note_unique UNIQUE (note) DEFERRABLE INITIALLY DEFERRED)")
		}
		tk := e.tenantKeys(t, 300, 2)
		ks := e.accountKeys(t, 12400, 1)
		c := e.connect(t, ctx, pgx.QueryExecModeCacheStatement)
		pc := c.PgConn()
		expectAnswers(t, "BEGIN", exchange(t, ctx, pc, 1, &pgproto3.Query{String: "BEGIN"}), []string{"CommandComplete(BEGIN)", "ReadyForQuery(T)"})
		for _, q := range []string{
			fmt.Sprintf("INSERT INTO tenant_notes (tenant_id, note) VALUES (%d, 'same')", tk[0][0]),
			fmt.Sprintf("INSERT INTO tenant_notes (tenant_id, note) VALUES (%d, 'same')", tk[0][1]),
			insert(ks[1][0]),
		} {
			expectAnswers(t, q, exchange(t, ctx, pc, 1, &pgproto3.Query{String: q}), []string{"CommandComplete(INSERT 0 1)", "ReadyForQuery(T)"})
		}
		// Without two-phase commit the other shard commits (see the README); no shard may stay in the
		// transaction.
		got := exchange(t, ctx, pc, 1, &pgproto3.Query{String: "COMMIT"})
		if len(got) != 2 || !strings.HasPrefix(got[0], "ErrorResponse(ERROR 23505") || got[1] != "ReadyForQuery(I)" {
			t.Errorf("COMMIT failing on shard 0: got %q, want ErrorResponse 23505, ReadyForQuery(I)", got)
		}
		e.serversClean(t)
		e.reset(t)
		expectAnswers(t, "the next transaction on both shards", exchange(t, ctx, pc, 4, &pgproto3.Query{String: "BEGIN"},
			&pgproto3.Query{String: insert(ks[0][0])}, &pgproto3.Query{String: insert(ks[1][0])}, &pgproto3.Query{String: "COMMIT"}),
			[]string{"CommandComplete(BEGIN)", "ReadyForQuery(T)", "CommandComplete(INSERT 0 1)", "ReadyForQuery(T)",
				"CommandComplete(INSERT 0 1)", "ReadyForQuery(T)", "CommandComplete(COMMIT)", "ReadyForQuery(I)"})
		placed(t, "after the next transaction", map[int64]int{ks[0][0]: 0, ks[1][0]: 1})
	})

	t.Run("extended BEGIN", func(t *testing.T) {
		e.reset(t)
		ks := e.accountKeys(t, 12300, 3)
		c := e.connect(t, ctx, pgx.QueryExecModeCacheStatement)
		pc := c.PgConn()
		ok := []string{"ParseComplete", "BindComplete", "NoData", "CommandComplete(INSERT 0 1)"}
		begin := []string{"ParseComplete", "BindComplete", "NoData", "CommandComplete(BEGIN)"}
		// One pipeline opens the transaction and writes on both shards; ROLLBACK undoes both.
		for _, order := range [][2]int{{0, 1}, {1, 0}} {
			expectAnswers(t, "extended BEGIN and INSERTs on two shards", exchange(t, ctx, pc, 1, msgs(
				extended("BEGIN"), extended(insert(ks[order[0]][0])), extended(insert(ks[order[1]][0])), syncMsg)...),
				append(append(append(slices.Clone(begin), ok...), ok...), "ReadyForQuery(T)"))
			expectAnswers(t, "extended ROLLBACK", exchange(t, ctx, pc, 1, msgs(extended("ROLLBACK"), syncMsg)...),
				[]string{"ParseComplete", "BindComplete", "NoData", "CommandComplete(ROLLBACK)", "ReadyForQuery(I)"})
			placed(t, "after extended BEGIN, INSERTs on both shards, ROLLBACK", map[int64]int{})
		}
		// Each statement synced on its own, then an error: COMMIT rolls back on both shards.
		expectAnswers(t, "extended BEGIN", exchange(t, ctx, pc, 1, msgs(extended("START TRANSACTION ISOLATION LEVEL REPEATABLE READ"), syncMsg)...),
			[]string{"ParseComplete", "BindComplete", "NoData", "CommandComplete(START TRANSACTION)", "ReadyForQuery(T)"})
		for _, k := range []int64{ks[0][1], ks[1][1]} {
			expectAnswers(t, "INSERT", exchange(t, ctx, pc, 1, msgs(extended(insert(k)), syncMsg)...), append(slices.Clone(ok), "ReadyForQuery(T)"))
		}
		expectAnswers(t, "isolation level of the shards' transactions", exchange(t, ctx, pc, 1, &pgproto3.Query{String: "SHOW transaction_isolation"}),
			[]string{"RowDescription", "DataRow[repeatable read]", "CommandComplete(SHOW)", "ReadyForQuery(T)"})
		got := exchange(t, ctx, pc, 1, msgs(extended(insert(ks[1][1])), syncMsg)...)
		if len(got) != 5 || !strings.HasPrefix(got[3], "ErrorResponse(ERROR 23505") || got[4] != "ReadyForQuery(E)" {
			t.Fatalf("duplicate key: got %q", got)
		}
		expectAnswers(t, "extended COMMIT of the failed transaction", exchange(t, ctx, pc, 1, msgs(extended("COMMIT"), syncMsg)...),
			[]string{"ParseComplete", "BindComplete", "NoData", "CommandComplete(ROLLBACK)", "ReadyForQuery(I)"})
		placed(t, "after a failed transaction opened by an extended BEGIN", map[int64]int{})
		// And a healthy one commits on both.
		expectAnswers(t, "extended BEGIN, INSERTs, COMMIT", exchange(t, ctx, pc, 1, msgs(
			extended("BEGIN"), extended(insert(ks[0][2])), extended(insert(ks[1][2])), extended("COMMIT"), syncMsg)...),
			append(append(append(append(slices.Clone(begin), ok...), ok...),
				"ParseComplete", "BindComplete", "NoData", "CommandComplete(COMMIT)"), "ReadyForQuery(I)"))
		placed(t, "after extended BEGIN, INSERTs on both shards, COMMIT", map[int64]int{ks[0][2]: 0, ks[1][2]: 1})
		e.serversClean(t)
	})
}

// tenantKeys returns n integer tenant ids owned by each shard.
func (e *shardedEnv) tenantKeys(t *testing.T, from, n int) [2][]int {
	t.Helper()
	var cand []string
	for k := from; len(cand) < 40*n+40; k++ {
		cand = append(cand, strconv.Itoa(k))
	}
	var out [2][]int
	for i, s := range e.owners(t, "shadow_tenant", cand) {
		if len(out[s]) < n {
			k, _ := strconv.Atoi(cand[i])
			out[s] = append(out[s], k)
		}
	}
	return out
}
