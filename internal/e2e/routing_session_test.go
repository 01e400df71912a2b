package e2e

import (
	"fmt"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// ---- 8. routing overrides: pgshard comments and SET pgshard.* ----

func testOverrides(t *testing.T, e *shardedEnv) {
	e.reset(t)
	ctx := Ctx(t, time.Minute)
	// 3 accounts on shard 0 and 5 on shard 1: a keyless read shows which shards served it.
	ks := e.accountKeys(t, 7000, 5)
	e.seedAccounts(t, append(slices.Clone(ks[0][:3]), ks[1]...)...)
	rowsOf := func(shards ...int) []string {
		var out []string
		for _, s := range shards {
			n := map[int]int{0: 3, 1: 5}[s]
			for _, k := range ks[s][:n] {
				out = append(out, keyMarker(k, s))
			}
		}
		return out
	}
	const keyless = "SELECT aid, (SELECT n FROM shard_marker) FROM accounts"

	simple := e.connect(t, ctx, pgx.QueryExecModeSimpleProtocol)
	ext := e.connect(t, ctx, pgx.QueryExecModeCacheStatement)

	t.Run("comment shard", func(t *testing.T) {
		for i := range 3 { // more than once: a round robin cannot pass by luck
			expectRows(t, ctx, simple, "shard=1 hint", []string{"1"}, "/* pgshard: shard=1 */ SELECT n FROM shard_marker")
			expectRows(t, ctx, simple, "shard=0 hint", []string{"0"}, "/* pgshard: shard=0 */ SELECT n FROM shard_marker")
			expectRows(t, ctx, ext, "shard=1 hint, extended", []string{"1|" + strconv.Itoa(i)}, "/* pgshard: shard=1 */ SELECT n, $1::int FROM shard_marker", i)
		}
		expectRows(t, ctx, simple, "line comment hint", []string{"1"}, "-- pgshard: shard=1\nSELECT n FROM shard_marker")
		expectRows(t, ctx, simple, "shard=1 hint on a sharded table without key", rowsOf(1), "/* pgshard: shard=1 */ "+keyless)
		expectRows(t, ctx, ext, "shard=1 hint makes count(*) work", []string{"5"}, "/* pgshard: shard=1 */ SELECT count(*) FROM accounts")
		expectRows(t, ctx, simple, "shard=0 hint makes count(*) work", []string{"3"}, "/* pgshard: shard=0 */ SELECT count(*) FROM accounts")
	})

	t.Run("comment key", func(t *testing.T) {
		// 42 as the key hint: integer keys hash alike as smallint, integer and bigint, so shadow_acc is the oracle.
		k42 := e.owner(t, "shadow_acc", "42")
		other := ks[1-k42][0]
		for range 3 {
			expectRows(t, ctx, simple, "key=42 hint", []string{strconv.Itoa(k42)}, "/* pgshard: key=42 */ SELECT n FROM shard_marker")
			expectRows(t, ctx, simple, fmt.Sprintf("key=%d hint", other), []string{strconv.Itoa(1 - k42)},
				fmt.Sprintf("/* pgshard: key=%d */ SELECT n FROM shard_marker", other))
		}
		expectRows(t, ctx, ext, "key hint on a keyless count(*)", []string{strconv.Itoa(map[int]int{0: 3, 1: 5}[1-k42])},
			fmt.Sprintf("/* pgshard: key=%d */ SELECT count(*) FROM accounts", other))
	})

	t.Run("SET pgshard.shard", func(t *testing.T) {
		c := e.connect(t, ctx, pgx.QueryExecModeSimpleProtocol)
		expectTag(t, ctx, c, "SET pgshard.shard = 1", "SET", "SET pgshard.shard = 1")
		for range 3 {
			expectRows(t, ctx, c, "after SET pgshard.shard = 1", []string{"1"}, "SELECT n FROM shard_marker")
		}
		expectRows(t, ctx, c, "keyless read after SET pgshard.shard = 1", rowsOf(1), keyless)
		expectRows(t, ctx, c, "count(*) after SET pgshard.shard = 1", []string{"5"}, "SELECT count(*) FROM accounts")
		expectRows(t, ctx, c, "extended query after SET pgshard.shard = 1", []string{"1"}, "SELECT n FROM shard_marker WHERE $1::int = 7", pgx.QueryExecModeCacheStatement, 7)
		expectTag(t, ctx, c, "SET pgshard.shard = 0", "SET", "SET pgshard.shard = 0")
		for range 3 {
			expectRows(t, ctx, c, "after SET pgshard.shard = 0", []string{"0"}, "SELECT n FROM shard_marker")
		}
		expectRows(t, ctx, c, "keyless read after SET pgshard.shard = 0", rowsOf(0), keyless)
		expectTag(t, ctx, c, "RESET pgshard.shard", "RESET", "RESET pgshard.shard")
		expectRows(t, ctx, c, "keyless read after RESET pgshard.shard", rowsOf(0, 1), keyless)
	})

	t.Run("SET LOCAL pgshard.shard", func(t *testing.T) {
		c := e.connect(t, ctx, pgx.QueryExecModeSimpleProtocol)
		for _, end := range []string{"COMMIT", "ROLLBACK"} {
			expectTag(t, ctx, c, "BEGIN", "BEGIN", "BEGIN")
			expectTag(t, ctx, c, "SET LOCAL pgshard.shard = 1", "SET", "SET LOCAL pgshard.shard = 1")
			expectRows(t, ctx, c, "inside the transaction with SET LOCAL", []string{"1"}, "SELECT n FROM shard_marker")
			expectRows(t, ctx, c, "count(*) inside the transaction with SET LOCAL", []string{"5"}, "SELECT count(*) FROM accounts")
			expectTag(t, ctx, c, end, end, end)
			expectRows(t, ctx, c, "keyless read after the transaction ("+end+")", rowsOf(0, 1), keyless)
		}
	})

	t.Run("SET pgshard.sharding_key", func(t *testing.T) {
		c := e.connect(t, ctx, pgx.QueryExecModeSimpleProtocol)
		for _, s := range []int{1, 0} {
			k := ks[s][4]
			expectTag(t, ctx, c, "SET pgshard.sharding_key", "SET", fmt.Sprintf("SET pgshard.sharding_key = '%d'", k))
			expectRows(t, ctx, c, fmt.Sprintf("after SET pgshard.sharding_key to a key of shard %d", s), []string{strconv.Itoa(s)}, "SELECT n FROM shard_marker")
		}
		expectTag(t, ctx, c, "RESET pgshard.sharding_key", "RESET", "RESET pgshard.sharding_key")
		expectRows(t, ctx, c, "keyless read after RESET pgshard.sharding_key", rowsOf(0, 1), keyless)
	})

	t.Run("shard out of range", func(t *testing.T) {
		expectCode(t, ctx, simple, "shard=7 hint", "22023", "/* pgshard: shard=7 */ SELECT 1")
		expectCode(t, ctx, ext, "shard=7 hint, extended", "22023", "/* pgshard: shard=7 */ SELECT n FROM shard_marker WHERE $1::int > 0", 1)
		// SET pgshard.shard = 7 is refused either at once or at the next statement that would use it.
		c := e.connect(t, ctx, pgx.QueryExecModeSimpleProtocol)
		_, err := c.Exec(ctx, "SET pgshard.shard = 7")
		if err == nil {
			_, err = queryStrings(ctx, c, "SELECT n FROM shard_marker")
		}
		if pe := pgError(err); pe == nil || pe.Code != "22023" {
			t.Errorf("SET pgshard.shard = 7, then SELECT n FROM shard_marker: %v, want SQLSTATE 22023 from one of them", err)
		}
		_, _ = c.Exec(ctx, "RESET pgshard.shard")
		expectRows(t, ctx, c, "after RESET of a bad pgshard.shard", rowsOf(0, 1), keyless)
	})
}

// ---- 9. transactions ----

func testTransactions(t *testing.T, e *shardedEnv) {
	ctx := Ctx(t, 2*time.Minute)
	// insertMarker inserts key k and returns the shard that ran the INSERT.
	insertMarker := func(t *testing.T, c *pgx.Conn, k int64) (int, error) {
		t.Helper()
		var n int
		err := c.QueryRow(ctx, "INSERT INTO accounts (aid) VALUES ($1) RETURNING (SELECT n FROM shard_marker)", k).Scan(&n)
		return n, err
	}
	mustInsert := func(t *testing.T, c *pgx.Conn, k int64, owner int) {
		t.Helper()
		n, err := insertMarker(t, c, k)
		if err != nil {
			t.Fatalf("INSERT of key %d in the transaction: %v", k, err)
		}
		if n != owner {
			t.Errorf("INSERT of key %d in the transaction ran on shard %d, Postgres's hash partitioning puts it on shard %d", k, n, owner)
		}
	}
	exec := func(t *testing.T, c *pgx.Conn, sql string) {
		t.Helper()
		if _, err := c.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	placed := func(t *testing.T, what string, keys map[int64]int) {
		t.Helper()
		want := map[string]int{}
		for k, s := range keys {
			want[strconv.FormatInt(k, 10)] = s
		}
		e.checkPlacement(t, what, "accounts", "aid::text", want)
	}

	t.Run("sticky single-shard transaction", func(t *testing.T) {
		e.reset(t)
		ks := e.accountKeys(t, 9000, 2)
		for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeCacheStatement} {
			c := e.connect(t, ctx, mode)
			for _, s := range []int{1, 0} {
				k := ks[s][0]
				if mode != pgx.QueryExecModeSimpleProtocol {
					k = ks[s][1]
				}
				// A simple-protocol BEGIN, which pgshard holds back (an extended-protocol one is not held back
				// yet and would open the transaction on whichever shard comes next: see known limitations).
				if _, err := c.PgConn().Exec(ctx, "BEGIN").ReadAll(); err != nil {
					t.Fatal(err)
				}
				mustInsert(t, c, k, s)
				// No key, no table: served by the shard the transaction is on.
				for range 3 {
					expectRows(t, ctx, c, fmt.Sprintf("keyless read after writing on shard %d (%v)", s, mode), []string{strconv.Itoa(s)}, "SELECT n FROM shard_marker")
					expectRows(t, ctx, c, fmt.Sprintf("current_database() after writing on shard %d (%v)", s, mode), []string{e.shards[s].DB}, "SELECT current_database()")
				}
				if n := e.shards[s].value(t, "SELECT count(*) FROM accounts WHERE aid = $1", k); n != "0" {
					t.Errorf("key %d is visible on shard %d before COMMIT (the INSERT was not in a transaction there)", k, s)
				}
				exec(t, c, "COMMIT")
			}
		}
		placed(t, "after single-shard transactions", map[int64]int{ks[0][0]: 0, ks[0][1]: 0, ks[1][0]: 1, ks[1][1]: 1})
	})

	t.Run("multi-shard COMMIT", func(t *testing.T) {
		e.reset(t)
		ks := e.accountKeys(t, 9100, 2)
		c := e.connect(t, ctx, pgx.QueryExecModeCacheStatement)
		tx, err := c.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = tx.Rollback(ctx) }()
		mustInsert(t, tx.Conn(), ks[0][0], 0)
		mustInsert(t, tx.Conn(), ks[1][0], 1)
		mustInsert(t, tx.Conn(), ks[1][1], 1)
		expectRows(t, ctx, tx.Conn(), "own writes on both shards, inside the transaction",
			[]string{keyMarker(ks[0][0], 0), keyMarker(ks[1][0], 1), keyMarker(ks[1][1], 1)},
			"SELECT aid, (SELECT n FROM shard_marker) FROM accounts WHERE aid IN ($1, $2, $3)", ks[0][0], ks[1][0], ks[1][1])
		for s := range e.shards {
			if n := e.shards[s].value(t, "SELECT count(*) FROM accounts"); n != "0" {
				t.Errorf("shard %d shows %s rows before COMMIT", s, n)
			}
		}
		if err := tx.Commit(ctx); err != nil {
			t.Fatalf("COMMIT of a multi-shard transaction: %v", err)
		}
		placed(t, "after a multi-shard COMMIT", map[int64]int{ks[0][0]: 0, ks[1][0]: 1, ks[1][1]: 1})
	})

	t.Run("multi-shard ROLLBACK", func(t *testing.T) {
		e.reset(t)
		ks := e.accountKeys(t, 9200, 2)
		c := e.connect(t, ctx, pgx.QueryExecModeSimpleProtocol)
		exec(t, c, "BEGIN")
		mustInsert(t, c, ks[1][0], 1)
		mustInsert(t, c, ks[0][0], 0)
		expectTag(t, ctx, c, "UPDATE on both shards in the transaction", "UPDATE 2",
			fmt.Sprintf("UPDATE accounts SET abalance = 1 WHERE aid IN (%d, %d)", ks[0][0], ks[1][0]))
		exec(t, c, "ROLLBACK")
		placed(t, "after a multi-shard ROLLBACK", map[int64]int{})
	})

	t.Run("error in a multi-shard transaction", func(t *testing.T) {
		e.reset(t)
		ks := e.accountKeys(t, 9300, 3)
		c := e.connect(t, ctx, pgx.QueryExecModeCacheStatement)
		for _, end := range []string{"ROLLBACK", "COMMIT"} {
			exec(t, c, "BEGIN")
			mustInsert(t, c, ks[0][0], 0)
			mustInsert(t, c, ks[1][0], 1)
			if _, err := insertMarker(t, c, ks[1][0]); pgCode(err) != "23505" {
				t.Fatalf("duplicate key in the transaction: %v, want SQLSTATE 23505", err)
			}
			// The whole transaction is failed now, not only the shard that reported the error.
			if _, err := insertMarker(t, c, ks[0][1]); pgCode(err) != "25P02" {
				t.Errorf("INSERT on the other shard after the error: %v, want SQLSTATE 25P02", err)
			}
			tag, err := c.Exec(ctx, end)
			if err != nil || tag.String() != "ROLLBACK" {
				t.Errorf("%s of the failed transaction: tag %q, %v; want ROLLBACK", end, tag, err)
			}
			placed(t, "after "+end+" of a failed multi-shard transaction", map[int64]int{})
		}
		// The connection goes on normally.
		mustInsert(t, c, ks[1][2], 1)
		placed(t, "after the failed transactions", map[int64]int{ks[1][2]: 1})
	})

	t.Run("SAVEPOINT in a single-shard transaction", func(t *testing.T) {
		e.reset(t)
		ks := e.accountKeys(t, 9400, 4)
		k := ks[1] // all on shard 1
		c := e.connect(t, ctx, pgx.QueryExecModeSimpleProtocol)
		exec(t, c, "BEGIN")
		mustInsert(t, c, k[0], 1)
		exec(t, c, "SAVEPOINT a")
		mustInsert(t, c, k[1], 1)
		exec(t, c, "ROLLBACK TO SAVEPOINT a")
		mustInsert(t, c, k[2], 1)
		exec(t, c, "SAVEPOINT b")
		if _, err := insertMarker(t, c, k[0]); pgCode(err) != "23505" {
			t.Fatalf("duplicate key after SAVEPOINT b: %v, want SQLSTATE 23505", err)
		}
		exec(t, c, "ROLLBACK TO b")
		mustInsert(t, c, k[3], 1)
		exec(t, c, "RELEASE SAVEPOINT a")
		expectRows(t, ctx, c, "keyless read at the end of the transaction", []string{"1"}, "SELECT n FROM shard_marker")
		exec(t, c, "COMMIT")
		placed(t, "after SAVEPOINT / ROLLBACK TO", map[int64]int{k[0]: 1, k[2]: 1, k[3]: 1})
	})

	t.Run("quoted SAVEPOINT on a shard that joins later", func(t *testing.T) {
		e.reset(t)
		ks := e.accountKeys(t, 9450, 2)
		c := e.connect(t, ctx, pgx.QueryExecModeSimpleProtocol)
		exec(t, c, "BEGIN")
		mustInsert(t, c, ks[0][0], 0)
		exec(t, c, `SAVEPOINT "My SP"`)
		mustInsert(t, c, ks[1][0], 1) // shard 1 joins: BEGIN and the savepoint, as the client named it, first
		exec(t, c, `ROLLBACK TO SAVEPOINT "My SP"`)
		exec(t, c, "COMMIT")
		placed(t, "after ROLLBACK TO a quoted savepoint", map[int64]int{ks[0][0]: 0})
	})

	t.Run("transaction in one simple Query", func(t *testing.T) {
		e.reset(t)
		ks := e.accountKeys(t, 9500, 1)
		c := e.connect(t, ctx, pgx.QueryExecModeSimpleProtocol)
		// One string whose statements go to different shards is refused as a whole (known limitation): sent
		// to both shards, each INSERT would land on both.
		expectCode(t, ctx, c, "BEGIN; INSERT; INSERT; COMMIT in one Query", "0A000",
			fmt.Sprintf("BEGIN; INSERT INTO accounts (aid) VALUES (%d); INSERT INTO accounts (aid) VALUES (%d); COMMIT", ks[0][0], ks[1][0]))
		placed(t, "after the refused string", map[int64]int{})
		exec(t, c, fmt.Sprintf("BEGIN; INSERT INTO accounts (aid) VALUES (%d); COMMIT", ks[0][0]))
		placed(t, "after BEGIN; INSERT; COMMIT in one Query", map[int64]int{ks[0][0]: 0})
	})
}

// ---- 10. pipelines ----

func testPipeline(t *testing.T, e *shardedEnv) {
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeCacheStatement, pgx.QueryExecModeExec, pgx.QueryExecModeSimpleProtocol} {
		t.Run(mode.String(), func(t *testing.T) {
			e.reset(t)
			ctx := Ctx(t, time.Minute)
			ks := e.accountKeys(t, 11000, 1)
			k0, k1 := ks[0][0], ks[1][0]
			c := e.connect(t, ctx, mode)
			steps := []struct {
				sql  string
				args []any
				want []string
			}{
				{"INSERT INTO accounts (aid, abalance) VALUES ($1, 1) RETURNING aid, (SELECT n FROM shard_marker)", []any{k0}, []string{keyMarker(k0, 0)}},
				{"INSERT INTO accounts (aid, abalance) VALUES ($1, 1) RETURNING aid, (SELECT n FROM shard_marker)", []any{k1}, []string{keyMarker(k1, 1)}},
				{"SELECT aid, abalance, (SELECT n FROM shard_marker) FROM accounts WHERE aid = $1", []any{k1}, []string{fmt.Sprintf("%d|1|1", k1)}},
				{"UPDATE accounts SET abalance = abalance + 5 WHERE aid = $1 RETURNING aid, abalance, (SELECT n FROM shard_marker)", []any{k0}, []string{fmt.Sprintf("%d|6|0", k0)}},
				{"SELECT 1", nil, []string{"1"}},
				{"SELECT aid, (SELECT n FROM shard_marker) FROM accounts WHERE aid IN ($1, $2)", []any{k0, k1}, []string{keyMarker(k0, 0), keyMarker(k1, 1)}},
				{"DELETE FROM accounts WHERE aid = $1 RETURNING aid, (SELECT n FROM shard_marker)", []any{k1}, []string{keyMarker(k1, 1)}},
				{"SELECT aid, abalance, (SELECT n FROM shard_marker) FROM accounts WHERE aid = $1", []any{k0}, []string{fmt.Sprintf("%d|6|0", k0)}},
			}
			b := &pgx.Batch{}
			for _, s := range steps {
				b.Queue(s.sql, s.args...)
			}
			br := c.SendBatch(ctx, b)
			if mode == pgx.QueryExecModeSimpleProtocol {
				// pgx sends a simple-protocol batch as one multi-statement string: statements for different
				// shards in one string are refused (known limitation).
				_, err := br.Query()
				if pgErr, ok := err.(*pgconn.PgError); !ok || pgErr.Code != "0A000" {
					t.Fatalf("simple-protocol batch over two shards: %v, want SQLSTATE 0A000", err)
				}
				_ = br.Close()
				return
			}
			for i, s := range steps {
				rows, err := br.Query()
				if err != nil {
					t.Fatalf("pipeline step %d (%s): %v", i, oneLine(s.sql), err)
				}
				got, err := collectStrings(rows)
				if err != nil {
					t.Fatalf("pipeline step %d (%s): %v", i, oneLine(s.sql), err)
				}
				if g, w := sortedRows(got), slices.Sorted(slices.Values(s.want)); !slices.Equal(g, w) {
					t.Errorf("pipeline step %d (%s): got %q, want %q", i, oneLine(s.sql), g, w)
				}
			}
			if err := br.Close(); err != nil {
				t.Fatalf("end of the pipeline: %v", err)
			}
			e.checkPlacement(t, "accounts after the pipeline", "accounts", "aid::text", map[string]int{strconv.FormatInt(k0, 10): 0})
			// The connection is in a clean state afterwards.
			var one int
			if err := c.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil {
				t.Fatalf("SELECT 1 after the pipeline: %v", err)
			}
		})
	}
}

// ---- pgshard.cross_shard: the scatter guard ----

func testCrossShardGuard(t *testing.T, e *shardedEnv) {
	e.reset(t)
	ctx := Ctx(t, time.Minute)
	ks := e.accountKeys(t, 9000, 2)
	e.seedAccounts(t, ks[0][0], ks[0][1], ks[1][0], ks[1][1])
	const scatter = "SELECT count(*) FROM accounts"
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeExec, pgx.QueryExecModeCacheStatement} {
		t.Run(mode.String(), func(t *testing.T) {
			cfg, err := pgx.ParseConfig(e.proxy.DSN("app", "app", "secret"))
			if err != nil {
				t.Fatal(err)
			}
			cfg.DefaultQueryExecMode = mode
			var warnings []string
			cfg.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) {
				warnings = append(warnings, n.Severity+" "+n.Code+" "+n.Message)
			}
			c, err := pgx.ConnectConfig(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close(ctx)
			exec := func(sql string, args ...any) error {
				_, err := c.Exec(ctx, sql, args...)
				return err
			}
			if err := exec("SET pgshard.cross_shard = deny"); err != nil {
				t.Fatal(err)
			}
			if err := exec(scatter); pgCode(err) != "0A000" {
				t.Fatalf("a scatter under deny: %v, want 0A000", err)
			}
			// pgshard answers SHOW of its own settings (a simple Query).
			expectRows(t, ctx, c, "SHOW pgshard.cross_shard", []string{"deny"}, "SHOW pgshard.cross_shard", pgx.QueryExecModeSimpleProtocol)
			expectRows(t, ctx, c, "SHOW pgshard.shard unset", []string{""}, "SHOW pgshard.shard", pgx.QueryExecModeSimpleProtocol)
			if err := exec("UPDATE accounts SET abalance = abalance + 1 WHERE bid = 1"); pgCode(err) != "0A000" {
				t.Errorf("a keyless UPDATE under deny: %v, want 0A000", err)
			}
			// What keys decide, and what runs everywhere by nature, still runs.
			expectRows(t, ctx, c, "keyed read under deny", []string{"1"}, "SELECT count(*) FROM accounts WHERE aid = $1", ks[1][0])
			if err := exec("UPDATE branches SET bname = bname"); err != nil {
				t.Errorf("a write to a replicated table under deny: %v", err)
			}
			// A multi-row INSERT split by key (in the simple protocol; a Bind of rows of several shards is
			// refused whatever cross_shard says).
			if mode == pgx.QueryExecModeSimpleProtocol {
				if err := exec(fmt.Sprintf("INSERT INTO accounts (aid) VALUES (%d), (%d) ON CONFLICT DO NOTHING", ks[0][1], ks[1][1])); err != nil {
					t.Errorf("a multi-row INSERT split by key under deny: %v", err)
				}
			}
			expectRows(t, ctx, c, "shard hint under deny", []string{"1"}, "/* pgshard: shard=0 */ SELECT count(*) FROM accounts WHERE aid = $1", ks[0][0])
			if err := exec("SET pgshard.cross_shard = sometimes"); pgCode(err) != "22023" {
				t.Errorf("a bad value: %v, want 22023", err)
			}
			// SET LOCAL lasts until the transaction ends.
			tx, err := c.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := tx.Exec(ctx, "SET LOCAL pgshard.cross_shard = allow"); err != nil {
				t.Fatal(err)
			}
			if _, err := tx.Exec(ctx, scatter); err != nil {
				t.Errorf("a scatter under SET LOCAL allow: %v", err)
			}
			if err := tx.Commit(ctx); err != nil {
				t.Fatal(err)
			}
			if err := exec(scatter); pgCode(err) != "0A000" {
				t.Errorf("after the transaction of SET LOCAL allow: %v, want deny again", err)
			}
			// warn: it runs, with a WARNING first.
			if err := exec("SET pgshard.cross_shard = warn"); err != nil {
				t.Fatal(err)
			}
			warnings = nil
			expectRows(t, ctx, c, "a scatter under warn", []string{"4"}, scatter)
			if len(warnings) != 1 || !strings.HasPrefix(warnings[0], "WARNING 01000 cross-shard statement") {
				t.Errorf("warnings under warn: %q, want one cross-shard WARNING", warnings)
			}
			warnings = nil
			expectRows(t, ctx, c, "a keyed read under warn", []string{"1"}, "SELECT count(*) FROM accounts WHERE aid = $1", ks[0][0])
			if err := exec("RESET pgshard.cross_shard"); err != nil {
				t.Fatal(err)
			}
			expectRows(t, ctx, c, "SHOW after RESET", []string{"allow"}, "SHOW pgshard.cross_shard", pgx.QueryExecModeSimpleProtocol)
			expectRows(t, ctx, c, "a scatter after RESET", []string{"4"}, scatter)
			if len(warnings) != 0 {
				t.Errorf("warnings of a keyed read, or after RESET: %q", warnings)
			}
		})
	}
	// At login: a startup parameter, or -c in options; a bad value is the login's FATAL error, as Postgres's.
	for _, params := range []map[string]string{{"pgshard.cross_shard": "deny"}, {"options": "-c pgshard.cross_shard=deny"}} {
		cfg, err := pgx.ParseConfig(e.proxy.DSN("app", "app", "secret"))
		if err != nil {
			t.Fatal(err)
		}
		cfg.RuntimeParams = params
		c, err := pgx.ConnectConfig(ctx, cfg)
		if err != nil {
			t.Fatalf("login with %v: %v", params, err)
		}
		if _, err := c.Exec(ctx, scatter); pgCode(err) != "0A000" {
			t.Errorf("a scatter after a login with %v: %v, want 0A000", params, err)
		}
		expectRows(t, ctx, c, "SHOW after the login", []string{"deny"}, "SHOW pgshard.cross_shard", pgx.QueryExecModeSimpleProtocol)
		c.Close(ctx)
	}
	cfg, err := pgx.ParseConfig(e.proxy.DSN("app", "app", "secret"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.RuntimeParams = map[string]string{"pgshard.shard": "7"}
	if c, err := pgx.ConnectConfig(ctx, cfg); pgCode(err) != "22023" {
		t.Errorf("login with pgshard.shard=7 (2 shards): %v, want FATAL 22023", err)
		if c != nil {
			c.Close(ctx)
		}
	}
	// The database's default: cross_shard in the config.
	p := StartProxy(t, strings.Replace(e.config, "    replicated_tables: [branches, shard_marker]\n",
		"    replicated_tables: [branches, shard_marker]\n    cross_shard: deny\n", 1))
	c, err := pgx.Connect(ctx, p.DSN("app", "app", "secret"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, scatter); pgCode(err) != "0A000" {
		t.Errorf("a scatter with cross_shard: deny in the config: %v, want 0A000", err)
	}
	if _, err := c.Exec(ctx, "SET pgshard.cross_shard = allow"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Exec(ctx, scatter); err != nil {
		t.Errorf("after SET pgshard.cross_shard = allow: %v", err)
	}
	if _, err := c.Exec(ctx, "RESET pgshard.cross_shard"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Exec(ctx, scatter); pgCode(err) != "0A000" {
		t.Errorf("RESET goes back to the config's deny: %v", err)
	}
}

// ---- INSERT without a column list ----

// pgshard asks a shard where the key is among the table's columns (for each such INSERT), so the rows land where
// their keys say, even after the table's columns moved (a column before the key dropped on the shards).
func testInsertWithoutColumnList(t *testing.T, e *shardedEnv) {
	e.reset(t)
	ctx := Ctx(t, time.Minute)
	ks := e.accountKeys(t, 11000, 4)
	simple := e.connect(t, ctx, pgx.QueryExecModeSimpleProtocol)
	ext := e.connect(t, ctx, pgx.QueryExecModeCacheStatement)
	want := map[string]int{}
	for sh := range 2 {
		// accounts is (aid, bid, abalance, filler): the key first.
		k0, k1, k2 := ks[sh][0], ks[sh][1], ks[sh][2]
		if _, err := simple.Exec(ctx, fmt.Sprintf("INSERT INTO accounts VALUES (%d, 1, 7, 'simple')", k0)); err != nil {
			t.Fatalf("simple INSERT without a column list: %v", err)
		}
		if _, err := ext.Exec(ctx, "INSERT INTO accounts VALUES ($1, 1, 7, 'extended')", k1); err != nil {
			t.Fatalf("extended INSERT without a column list: %v", err)
		}
		// In a transaction, and with RETURNING.
		tx, err := simple.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var got int64
		if err := tx.QueryRow(ctx, fmt.Sprintf("INSERT INTO accounts VALUES (%d) RETURNING aid", k2)).Scan(&got); err != nil || got != k2 {
			t.Fatalf("INSERT ... RETURNING in a transaction: %d %v", got, err)
		}
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		for _, k := range []int64{k0, k1, k2} {
			want[strconv.FormatInt(k, 10)] = sh
		}
	}
	// Rows of both shards in one statement: split, as with a column list.
	if tag, err := simple.Exec(ctx, fmt.Sprintf("INSERT INTO accounts VALUES (%d, 2), (%d, 2)", ks[0][3], ks[1][3])); err != nil || tag.String() != "INSERT 0 2" {
		t.Fatalf("a two-shard INSERT without a column list: %v %v", tag, err)
	}
	want[strconv.FormatInt(ks[0][3], 10)], want[strconv.FormatInt(ks[1][3], 10)] = 0, 1
	e.checkPlacement(t, "accounts.aid (INSERT without a column list)", "accounts", "aid::text", want)
	// In a transaction an error aborted, the INSERT gets Postgres's 25P02 (its catalog query fails first), and
	// the session goes on after the ROLLBACK.
	tx, err := simple.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, fmt.Sprintf("INSERT INTO accounts (aid) VALUES (%d)", ks[0][0])); pgCode(err) != "23505" {
		t.Fatalf("a duplicate key in the transaction: %v", err)
	}
	if _, err := tx.Exec(ctx, fmt.Sprintf("INSERT INTO accounts VALUES (%d)", ks[1][3]+1000003)); pgCode(err) != "25P02" {
		t.Errorf("INSERT without a column list in an aborted transaction: %v, want 25P02", err)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	expectRows(t, ctx, simple, "after the ROLLBACK", []string{"1"}, fmt.Sprintf("SELECT count(*) FROM accounts WHERE aid = %d", ks[0][0]))
	// What Postgres refuses, it refuses: a table that does not exist.
	if _, err := simple.Exec(ctx, "INSERT INTO accounts_nope VALUES (1)"); pgCode(err) != "42P01" {
		t.Errorf("INSERT into a missing table: %v, want 42P01", err)
	}
	// A table the config's column rule counts as sharded by tenant_id, without that column: refused, not
	// written to one shard at random.
	e.tablesOnEveryShard(t, "CREATE TABLE nokey (x int)", "nokey")
	if _, err := simple.Exec(ctx, "INSERT INTO nokey VALUES (1)"); pgCode(err) != "0A000" {
		t.Errorf("INSERT into a table without its key column: %v, want 0A000", err)
	}
	// The key moves when a column before it is dropped on the shards (not through pgshard): pgshard follows
	// it, since it asks for the position each time. moved is sharded by the config's tenant_id column rule.
	e.tablesOnEveryShard(t, "CREATE TABLE moved (a int, tenant_id int, v text)", "moved")
	before, after := ks[0][0], ks[1][0] // keys of shards 0 and 1 (integer keys hash alike as bigint)
	// The value before the key is a key of the other shard: read as the key, it would send the row there.
	if _, err := simple.Exec(ctx, fmt.Sprintf("INSERT INTO moved VALUES (%d, %d, 'before')", after, before)); err != nil {
		t.Fatalf("INSERT with the key second: %v", err)
	}
	e.execAll(t, "ALTER TABLE moved DROP COLUMN a")
	if _, err := ext.Exec(ctx, "INSERT INTO moved VALUES ($1, 'after')", after); err != nil {
		t.Fatalf("INSERT with the key first, after the drop: %v", err)
	}
	e.checkPlacement(t, "moved.tenant_id (INSERT without a column list, a column dropped between)", "moved", "tenant_id::text",
		map[string]int{strconv.FormatInt(before, 10): 0, strconv.FormatInt(after, 10): 1})
}

// ---- ids from sequences: pgshard sequences ----

// The sequences of sharded tables are interleaved over the shards (`pgshard sequences`), so that ids handed out
// on different shards never meet; those of replicated tables are left alone.
func testSequences(t *testing.T, e *shardedEnv) {
	e.reset(t)
	ctx := Ctx(t, time.Minute)
	e.tablesOnEveryShard(t, "CREATE TABLE seqt (id bigserial PRIMARY KEY, tenant_id int, v text); CREATE TABLE seqr (id serial PRIMARY KEY, v text)", "seqt, seqr")
	e.execAll(t, "SELECT nextval('seqt_id_seq') FROM generate_series(1, 5)") // both shards have handed out 1 to 5
	tool := func(args ...string) (string, int) {
		cmd := exec.Command(Binary(t), append([]string{"sequences", "--config", e.proxy.ConfigPath, "--database", "app"}, args...)...)
		out, err := cmd.CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return string(out), code
	}
	if out, code := tool("--check"); code != 1 || !strings.Contains(out, "public.seqt_id_seq (seqt.id): NOT interleaved") || strings.Contains(out, "seqr") {
		t.Fatalf("--check before: exit %d\n%s", code, out)
	}
	if out, code := tool(); code != 0 || !strings.Contains(out, "public.seqt_id_seq (seqt.id): interleaved over 2 shards") {
		t.Fatalf("interleaving: exit %d\n%s", code, out)
	}
	if out, code := tool("--check"); code != 0 {
		t.Fatalf("--check after: exit %d\n%s", code, out)
	}
	// Rows inserted through pgshard on both shards take ids from their shard's copy: none repeats, none is
	// one the shards handed out before.
	c := e.connect(t, ctx, pgx.QueryExecModeSimpleProtocol)
	ks := e.accountKeys(t, 13000, 10)
	seen := map[int64]bool{}
	for i := range 10 {
		for sh := range 2 {
			var id int64
			if err := c.QueryRow(ctx, fmt.Sprintf("INSERT INTO seqt (tenant_id, v) VALUES (%d, 'x') RETURNING id", ks[sh][i])).Scan(&id); err != nil {
				t.Fatal(err)
			}
			if seen[id] || id <= 5 || id%2 != int64(sh) {
				t.Fatalf("shard %d handed out id %d (seen before: %v; shard i's ids are i modulo 2, above 5)", sh, id, seen[id])
			}
			seen[id] = true
		}
	}
	for _, s := range e.shards {
		if inc := s.value(t, "SELECT increment_by FROM pg_sequences WHERE sequencename = 'seqr_id_seq'"); inc != "1" {
			t.Errorf("shard %d: the replicated table's sequence counts by %s, want it left alone", s.Index, inc)
		}
	}
}
