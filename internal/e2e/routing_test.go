package e2e

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// The routing suite: every statement goes through pgshard to database app (two shards); each test then checks
// which shard served it, from `(SELECT n FROM shard_marker)` in the statement's result, from the command tag,
// or by reading every shard directly. Expected owners come from Postgres's own hash partitioning (the shadow
// tables, see routing_env_test.go).

// routingTests run one after another on one environment; each empties the tables first.
var routingTests = []struct {
	name string
	fn   func(*testing.T, *shardedEnv)
}{
	{"InsertsRouteByKey", testInsertsRouteByKey},
	{"MultiRowInsert", testMultiRowInsert},
	{"KeyedStatements", testKeyedStatements},
	{"KeylessSelect", testKeylessSelect},
	{"Refusals", testRefusals},
	{"ReplicatedTable", testReplicatedTable},
	{"NoTable", testNoTable},
	{"Overrides", testOverrides},
	{"CrossShardGuard", testCrossShardGuard},
	{"InsertWithoutColumnList", testInsertWithoutColumnList},
	{"Sequences", testSequences},
	{"Transactions", testTransactions},
	{"Pipeline", testPipeline},
	{"TransactionEnd", testTransactionEnd},
}

// TestRouting runs the routing suite with each shard on a cluster of its own, then pgbench through pgshard.
func TestRouting(t *testing.T) {
	t.Parallel()
	e := startSharded(t, layoutTwoClusters)
	for _, rt := range routingTests {
		t.Run(rt.name, func(t *testing.T) { rt.fn(t, e) })
	}
	t.Run("Pgbench", func(t *testing.T) { testPgbench(t, e) })
}

// TestRoutingOneCluster runs the routing suite with both shards as two databases of one cluster.
func TestRoutingOneCluster(t *testing.T) {
	t.Parallel()
	e := startSharded(t, layoutOneCluster)
	for _, rt := range routingTests {
		t.Run(rt.name, func(t *testing.T) { rt.fn(t, e) })
	}
}

// ---- helpers shared by the routing tests ----

// stmtTimeout bounds each statement the helpers below run through pgshard: a statement that hangs fails its
// check (and pgx closes the connection, so the rest of that subtest fails fast) instead of using up the
// subtest's whole context.
const stmtTimeout = 15 * time.Second

// queryTag runs sql and returns its rows in text form and its command tag.
func queryTag(ctx context.Context, c *pgx.Conn, sql string, args ...any) ([][]string, string, error) {
	ctx, cancel := context.WithTimeout(ctx, stmtTimeout)
	defer cancel()
	rows, err := c.Query(ctx, sql, args...)
	if err != nil {
		return nil, "", err
	}
	got, err := collectStrings(rows)
	return got, rows.CommandTag().String(), err
}

// expectRows checks that sql returns exactly the rows want ("v1|v2|..."), compared as sets.
func expectRows(t *testing.T, ctx context.Context, c *pgx.Conn, what string, want []string, sql string, args ...any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, stmtTimeout)
	defer cancel()
	got, err := queryStrings(ctx, c, sql, args...)
	if err != nil {
		t.Errorf("%s: %s: %v", what, sql, err)
		return
	}
	g, w := sortedRows(got), slices.Sorted(slices.Values(want))
	if !slices.Equal(g, w) {
		t.Errorf("%s: %s\n  got  %q\n  want %q", what, oneLine(sql), g, w)
	}
}

// expectOrderedRows is expectRows where the order matters.
func expectOrderedRows(t *testing.T, ctx context.Context, c *pgx.Conn, what string, want []string, sql string, args ...any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, stmtTimeout)
	defer cancel()
	got, err := queryStrings(ctx, c, sql, args...)
	if err != nil {
		t.Errorf("%s: %s: %v", what, sql, err)
		return
	}
	g := make([]string, len(got))
	for i, r := range got {
		g[i] = strings.Join(r, "|")
	}
	if !slices.Equal(g, want) {
		t.Errorf("%s: %s\n  got  %q\n  want %q (in this order)", what, oneLine(sql), g, want)
	}
}

// expectTag checks that sql succeeds with command tag want.
func expectTag(t *testing.T, ctx context.Context, c *pgx.Conn, what, want, sql string, args ...any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, stmtTimeout)
	defer cancel()
	tag, err := c.Exec(ctx, sql, args...)
	if err != nil {
		t.Errorf("%s: %s: %v", what, oneLine(sql), err)
		return
	}
	if tag.String() != want {
		t.Errorf("%s: %s: command tag %q, want %q", what, oneLine(sql), tag, want)
	}
}

// expectCode checks that sql fails with SQLSTATE code (and that the connection still answers afterwards).
func expectCode(t *testing.T, ctx context.Context, c *pgx.Conn, what, code, sql string, args ...any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, stmtTimeout)
	defer cancel()
	rows, err := queryStrings(ctx, c, sql, args...)
	switch pe := pgError(err); {
	case err == nil:
		t.Errorf("%s: %s: succeeded with %q, want SQLSTATE %s", what, oneLine(sql), sortedRows(rows), code)
	case pe == nil || pe.Code != code:
		t.Errorf("%s: %s: error %v, want SQLSTATE %s", what, oneLine(sql), err, code)
	}
	var one int
	if err := c.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil {
		t.Fatalf("%s: the connection does not answer SELECT 1 after the refusal: %v", what, err)
	}
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 160 {
		s = s[:160] + "..."
	}
	return s
}

func i64s(ks ...int64) []string {
	out := make([]string, len(ks))
	for i, k := range ks {
		out[i] = strconv.FormatInt(k, 10)
	}
	return out
}

// keyMarker renders the row "key|shard" that `SELECT key, (SELECT n FROM shard_marker)` yields.
func keyMarker(k any, shard int) string { return fmt.Sprintf("%v|%d", k, shard) }

// sqlLiteral quotes s as an SQL string literal; strings with a backslash or a control character use the
// escape string form (E'...'), the others the standard form.
func sqlLiteral(s string) string {
	if !strings.ContainsAny(s, "\\\n\t\r") {
		return "'" + strings.ReplaceAll(s, "'", "''") + "'"
	}
	r := strings.NewReplacer(`\`, `\\`, "'", `\'`, "\n", `\n`, "\t", `\t`, "\r", `\r`)
	return "E'" + r.Replace(s) + "'"
}

func int8Binary(k int64) []byte { return binary.BigEndian.AppendUint64(nil, uint64(k)) }

// accountKeyMix returns n distinct bigint keys: the extremes, small numbers, and large ones of both signs.
func accountKeyMix(n int) []int64 {
	special := []int64{0, 1, -1, 42, math.MaxInt64, math.MinInt64, math.MaxInt32, math.MinInt32, 1 << 32, -(1 << 40), math.MaxInt64 - 1, math.MinInt64 + 1}
	seen := map[int64]bool{}
	var out []int64
	add := func(k int64) {
		if !seen[k] && len(out) < n {
			seen[k] = true
			out = append(out, k)
		}
	}
	for _, k := range special {
		add(k)
	}
	for i := int64(0); len(out) < n; i++ {
		if i%2 == 0 {
			add(i*7_777_777_777 - 3_000_000_000_000)
		} else {
			add(i + 100)
		}
	}
	return out
}

// ---- 1. inserts route by key ----

func testInsertsRouteByKey(t *testing.T, e *shardedEnv) {
	t.Run("bigint", func(t *testing.T) {
		e.reset(t)
		ctx := Ctx(t, 2*time.Minute)
		keys := accountKeyMix(1000)
		txt := i64s(keys...)
		own := e.owners(t, "shadow_acc", txt)
		simple := e.connect(t, ctx, pgx.QueryExecModeSimpleProtocol)
		ext := e.connect(t, ctx, pgx.QueryExecModeCacheStatement)
		const ins = "INSERT INTO accounts (aid, abalance) VALUES ($1, $2)"
		methods := []string{"simple protocol, literals", "extended, binary int8", "extended, text parameters",
			"extended, unnamed statement without parameter types (text)", "extended, binary parameters without types"}
		for i, k := range keys {
			var tag pgconn.CommandTag
			var err error
			// The methods take turns, so each meets keys of both shards.
			switch i % len(methods) {
			case 0:
				tag, err = simple.Exec(ctx, fmt.Sprintf("INSERT INTO accounts (aid, abalance) VALUES (%d, %d)", k, i))
			case 1:
				tag, err = ext.Exec(ctx, ins, k, i)
			case 2:
				tag, err = ext.Exec(ctx, ins, strconv.FormatInt(k, 10), strconv.Itoa(i))
			case 3:
				tag, err = ext.Exec(ctx, ins, pgx.QueryExecModeExec, k, i)
			case 4:
				r := ext.PgConn().ExecParams(ctx, ins, [][]byte{int8Binary(k), binary.BigEndian.AppendUint32(nil, uint32(i))},
					nil, []int16{1, 1}, nil).Read()
				tag, err = r.CommandTag, r.Err
			}
			if err != nil {
				t.Fatalf("insert of key %d (%s): %v", k, methods[i%len(methods)], err)
			}
			if tag.String() != "INSERT 0 1" {
				t.Fatalf("insert of key %d (%s): command tag %q, want INSERT 0 1", k, methods[i%len(methods)], tag)
			}
		}
		want := map[string]int{}
		for i, k := range txt {
			want[k] = own[i]
		}
		e.checkPlacement(t, "accounts.aid (bigint, 1000 single-row INSERTs)", "accounts", "aid::text", want)
		// Each row holds the abalance sent with its key (no statement got another one's values).
		for _, s := range e.shards {
			if bad := s.value(t, "SELECT count(*) FROM accounts a JOIN unnest($1::text[]) WITH ORDINALITY u(k, o) ON a.aid = u.k::bigint WHERE a.abalance <> u.o - 1", txt); bad != "0" {
				t.Errorf("shard %d: %s rows hold another row's abalance", s.Index, bad)
			}
		}
	})

	t.Run("text", func(t *testing.T) {
		e.reset(t)
		ctx := Ctx(t, time.Minute)
		names := []string{"alice", "O'Brien", `say "hi"`, "Ünïcödé", "日本語テキスト", "emoji 🎉", `back\slash`, "",
			" lead and trail ", "tab\there", "line\nbreak", "a;b", "--not a comment", "/* nor this */", "$1", "?",
			"null", "Z", "z", "''", strings.Repeat("long ", 200)}
		for i := 0; len(names) < 240; i++ {
			names = append(names, fmt.Sprintf("user-%04d", i))
		}
		own := e.owners(t, "shadow_users", names)
		simple := e.connect(t, ctx, pgx.QueryExecModeSimpleProtocol)
		ext := e.connect(t, ctx, pgx.QueryExecModeCacheStatement)
		const ins = "INSERT INTO users (name, note) VALUES ($1, $2)"
		for i, name := range names {
			var err error
			switch i % 4 {
			case 0:
				_, err = simple.Exec(ctx, fmt.Sprintf("INSERT INTO users (name, note) VALUES (%s, 'simple')", sqlLiteral(name)))
			case 1:
				_, err = ext.Exec(ctx, ins, name, "extended text")
			case 2:
				_, err = ext.Exec(ctx, ins, pgx.QueryExecModeExec, name, "unnamed, untyped")
			case 3:
				err = ext.PgConn().ExecParams(ctx, ins, [][]byte{[]byte(name), []byte("binary")}, []uint32{25, 25}, []int16{1, 1}, nil).Read().Err
			}
			if err != nil {
				t.Fatalf("insert of name %q: %v", name, err)
			}
		}
		want := map[string]int{}
		for i, n := range names {
			want[n] = own[i]
		}
		e.checkPlacement(t, "users.name (text)", "users", "name", want)
	})

	t.Run("uuid", func(t *testing.T) {
		e.reset(t)
		ctx := Ctx(t, time.Minute)
		rng := rand.New(rand.NewPCG(7, 11))
		var ids [][16]byte
		var txt []string
		for range 200 {
			var u [16]byte
			binary.BigEndian.PutUint64(u[:8], rng.Uint64())
			binary.BigEndian.PutUint64(u[8:], rng.Uint64())
			u[6] = u[6]&0x0f | 0x40
			u[8] = u[8]&0x3f | 0x80
			ids = append(ids, u)
			txt = append(txt, formatValue(u))
		}
		ids = append(ids, [16]byte{}, [16]byte{0: 0xff, 15: 0xff})
		txt = append(txt, formatValue(ids[200]), formatValue(ids[201]))
		own := e.owners(t, "shadow_dev", txt)
		simple := e.connect(t, ctx, pgx.QueryExecModeSimpleProtocol)
		ext := e.connect(t, ctx, pgx.QueryExecModeCacheStatement)
		const ins = "INSERT INTO devices (id, label) VALUES ($1, $2)"
		for i, u := range ids {
			var err error
			switch i % 4 {
			case 0:
				lit := txt[i]
				if i%8 == 0 { // Postgres's other input forms of a uuid
					lit = "{" + strings.ToUpper(lit) + "}"
				}
				_, err = simple.Exec(ctx, fmt.Sprintf("INSERT INTO devices (id, label) VALUES ('%s', 'simple')", lit))
			case 1:
				_, err = ext.Exec(ctx, ins, u, "binary") // [16]byte: binary uuid
			case 2:
				_, err = ext.Exec(ctx, ins, txt[i], "text")
			case 3:
				err = ext.PgConn().ExecParams(ctx, ins, [][]byte{u[:], []byte("binary, untyped")}, nil, []int16{1, 0}, nil).Read().Err
			}
			if err != nil {
				t.Fatalf("insert of uuid %s: %v", txt[i], err)
			}
		}
		want := map[string]int{}
		for i, k := range txt {
			want[k] = own[i]
		}
		e.checkPlacement(t, "devices.id (uuid)", "devices", "id::text", want)
	})

	t.Run("column-only entry tenant_id", func(t *testing.T) {
		e.reset(t)
		ctx := Ctx(t, time.Minute)
		var tenants []string
		for k := -60; k < 60; k++ {
			tenants = append(tenants, strconv.Itoa(k*1000+k))
		}
		tenants = append(tenants, strconv.Itoa(math.MaxInt32), strconv.Itoa(math.MinInt32))
		own := e.owners(t, "shadow_tenant", tenants)
		simple := e.connect(t, ctx, pgx.QueryExecModeSimpleProtocol)
		ext := e.connect(t, ctx, pgx.QueryExecModeCacheStatement)
		for i, k := range tenants {
			var err error
			if i%2 == 0 {
				_, err = simple.Exec(ctx, fmt.Sprintf("INSERT INTO orders (tenant_id, item) VALUES (%s, 'x')", k))
			} else {
				n, _ := strconv.Atoi(k)
				_, err = ext.Exec(ctx, "INSERT INTO orders (item, tenant_id) VALUES ($1, $2)", "x", int32(n))
			}
			if err != nil {
				t.Fatalf("insert of tenant_id %s: %v", k, err)
			}
		}
		want := map[string]int{}
		for i, k := range tenants {
			want[k] = own[i]
		}
		e.checkPlacement(t, "orders.tenant_id (integer, column-only entry)", "orders", "tenant_id::text", want)
	})

	t.Run("list mapping", func(t *testing.T) {
		e.reset(t)
		ctx := Ctx(t, time.Minute)
		simple := e.connect(t, ctx, pgx.QueryExecModeSimpleProtocol)
		ext := e.connect(t, ctx, pgx.QueryExecModeCacheStatement)
		// The list is the config's {0: [eu, uk], 1: [us]}.
		want := map[string]int{}
		for i, region := range []string{"eu", "uk", "us", "eu", "us", "uk", "us", "eu"} {
			var err error
			if i%2 == 0 {
				_, err = simple.Exec(ctx, fmt.Sprintf("INSERT INTO events (id, region) VALUES (%d, '%s')", i, region))
			} else {
				_, err = ext.Exec(ctx, "INSERT INTO events (id, region) VALUES ($1, $2)", i, region)
			}
			if err != nil {
				t.Fatalf("insert of event %d in %s: %v", i, region, err)
			}
			want[fmt.Sprintf("%s/%d", region, i)] = map[string]int{"eu": 0, "uk": 0, "us": 1}[region]
		}
		e.checkPlacement(t, "events.region (list)", "events", "region || '/' || id", want)
	})
}

// ---- 2. multi-row INSERT over both shards ----

func testMultiRowInsert(t *testing.T, e *shardedEnv) {
	e.reset(t)
	ctx := Ctx(t, time.Minute)
	ks := e.accountKeys(t, 100, 10)
	want := map[string]int{}
	expect := func(keys ...int64) []string {
		var out []string
		for _, k := range keys {
			s := e.owner(t, "shadow_acc", strconv.FormatInt(k, 10))
			want[strconv.FormatInt(k, 10)] = s
			out = append(out, fmt.Sprintf("%d|%d|%d", k, k%1000, s))
		}
		return out
	}
	check := func(what string, keys []int64, sql string, args ...any) {
		t.Helper()
		c := e.connect(t, ctx, pgx.QueryExecModeCacheStatement)
		rows, tag, err := queryTag(ctx, c, sql, args...)
		if err != nil {
			t.Errorf("%s: %v", what, err)
			return
		}
		w := expect(keys...)
		if g := sortedRows(rows); !slices.Equal(g, slices.Sorted(slices.Values(w))) {
			t.Errorf("%s: RETURNING aid, abalance, shard gave\n  %q\n want\n  %q", what, g, slices.Sorted(slices.Values(w)))
		}
		if wt := fmt.Sprintf("INSERT 0 %d", len(keys)); tag != wt {
			t.Errorf("%s: command tag %q, want %q", what, tag, wt)
		}
	}
	values := func(keys []int64) string {
		var parts []string
		for _, k := range keys {
			parts = append(parts, fmt.Sprintf("(%d, %d)", k, k%1000))
		}
		return strings.Join(parts, ", ")
	}
	const ret = " RETURNING aid, abalance, (SELECT n FROM shard_marker)"

	both := []int64{ks[0][0], ks[1][0], ks[0][1], ks[1][1], ks[1][2], ks[0][2]}
	check("simple protocol, rows of both shards", both,
		"INSERT INTO accounts (aid, abalance) VALUES "+values(both)+ret, pgx.QueryExecModeSimpleProtocol)

	// With parameters, rows of both shards are split as in the simple protocol: each shard gets its rows'
	// INSERT, its $n numbered anew (a named statement, and the unnamed one).
	params := func(mode pgx.QueryExecMode, keys []int64) (string, []any) {
		args := []any{mode}
		var ph []string
		for i, k := range keys {
			args = append(args, k, k%1000)
			ph = append(ph, fmt.Sprintf("($%d, $%d)", 2*i+1, 2*i+2))
		}
		return "INSERT INTO accounts (aid, abalance) VALUES " + strings.Join(ph, ", ") + ret, args
	}
	named := []int64{ks[1][8], ks[0][8], ks[0][5]}
	sql, args := params(pgx.QueryExecModeCacheStatement, named)
	check("extended protocol, parameters, rows of both shards, named statement", named, sql, args...)
	unnamed := []int64{ks[0][9], ks[1][9], ks[1][5]}
	sql, args = params(pgx.QueryExecModeExec, unnamed)
	check("extended protocol, parameters, rows of both shards, unnamed statement", unnamed, sql, args...)
	onOneShard := []int64{ks[1][3], ks[1][4]}
	check("extended protocol, parameters, rows of shard 1 only", onOneShard,
		"INSERT INTO accounts (aid, abalance) VALUES ($1, $2), ($3, $4)"+ret, onOneShard[0], onOneShard[0]%1000, onOneShard[1], onOneShard[1]%1000)

	one := []int64{ks[1][6], ks[1][7]}
	check("simple protocol, rows of shard 1 only", one,
		"INSERT INTO accounts (aid, abalance) VALUES "+values(one)+ret, pgx.QueryExecModeSimpleProtocol)

	e.checkPlacement(t, "accounts after the multi-row INSERTs", "accounts", "aid::text", want)

	// Text keys, in the column order name-last.
	var names []string
	for i := range 8 {
		names = append(names, fmt.Sprintf("multi 'row' %d", i))
	}
	own := e.owners(t, "shadow_users", names)
	var lits, wantRows []string
	wantUsers := map[string]int{}
	for i, n := range names {
		lits = append(lits, fmt.Sprintf("('note %d', %s)", i, sqlLiteral(n)))
		wantRows = append(wantRows, keyMarker(n, own[i]))
		wantUsers[n] = own[i]
	}
	c := e.connect(t, ctx, pgx.QueryExecModeSimpleProtocol)
	expectRows(t, ctx, c, "multi-row INSERT of text keys", wantRows,
		"INSERT INTO users (note, name) VALUES "+strings.Join(lits, ", ")+" RETURNING name, (SELECT n FROM shard_marker)")
	e.checkPlacement(t, "users after the multi-row INSERT", "users", "name", wantUsers)
}

// ---- 3. statements with the key: only the owning shard(s) serve ----

// testKeyedStatements seeds rows directly on the shard Postgres names, and "decoys" of some keys on the other
// shard (a row with the same key where it does not belong): a statement that pins its key's shard never sees the
// decoy, one sent to both shards or to the wrong one does (an extra row, a wrong marker, a command tag of 2).
func testKeyedStatements(t *testing.T, e *shardedEnv) {
	e.reset(t)
	ctx := Ctx(t, time.Minute)
	ks := e.accountKeys(t, 1000, 4)
	a0, b0, c0, d0 := ks[0][0], ks[0][1], ks[0][2], ks[0][3]
	a1, b1, c1, d1 := ks[1][0], ks[1][1], ks[1][2], ks[1][3]
	own := map[int64]int{a0: 0, b0: 0, c0: 0, d0: 0, a1: 1, b1: 1, c1: 1, d1: 1}
	for k, s := range own {
		e.shards[s].exec(t, "INSERT INTO accounts (aid, bid, filler) VALUES ($1, $2, 'home')", k, 1+s)
	}
	decoyed := []int64{a0, b0, a1, b1} // c and d keys are only at home: for statements meant for both shards
	for _, k := range decoyed {
		e.shards[1-own[k]].exec(t, "INSERT INTO accounts (aid, bid, filler, abalance) VALUES ($1, 1, 'decoy', 1000)", k)
	}
	for _, s := range e.shards {
		s.exec(t, "INSERT INTO branches VALUES (1, 'one'), (2, 'two')")
	}
	km := func(k int64) string { return keyMarker(k, own[k]) }

	simple := e.connect(t, ctx, pgx.QueryExecModeSimpleProtocol)
	ext := e.connect(t, ctx, pgx.QueryExecModeCacheStatement)

	t.Run("SELECT", func(t *testing.T) {
		for _, k := range decoyed {
			expectRows(t, ctx, simple, "aid = literal", []string{km(k)},
				fmt.Sprintf("SELECT aid, (SELECT n FROM shard_marker) FROM accounts WHERE aid = %d", k))
			expectRows(t, ctx, ext, "aid = $1 (binary)", []string{km(k)},
				"SELECT aid, (SELECT n FROM shard_marker) FROM accounts WHERE aid = $1", k)
			expectRows(t, ctx, ext, "aid = $1 (text)", []string{km(k)},
				"SELECT aid, (SELECT n FROM shard_marker) FROM accounts WHERE aid = $1", strconv.FormatInt(k, 10))
			expectRows(t, ctx, ext, "alias and schema", []string{km(k)},
				"SELECT a.aid, (SELECT n FROM shard_marker) FROM public.accounts AS a WHERE a.aid = $1", k)
			expectRows(t, ctx, simple, "alias, schema, other clauses", []string{km(k)},
				fmt.Sprintf("SELECT a.aid, (SELECT n FROM shard_marker) FROM public.accounts a WHERE a.filler = 'home' AND a.aid = %d", k))
			bname := map[int]string{0: "one", 1: "two"}[own[k]]
			expectRows(t, ctx, ext, "joined with replicated branches", []string{fmt.Sprintf("%d|%s|%d", k, bname, own[k])},
				"SELECT a.aid, b.bname, (SELECT n FROM shard_marker) FROM accounts a JOIN branches b ON b.bid = a.bid WHERE a.aid = $1", k)
		}
		expectRows(t, ctx, simple, "IN, one shard", []string{km(a1), km(b1)},
			fmt.Sprintf("SELECT aid, (SELECT n FROM shard_marker) FROM accounts WHERE aid IN (%d, %d)", a1, b1))
		expectRows(t, ctx, ext, "IN with parameters, one shard", []string{km(a0), km(b0)},
			"SELECT aid, (SELECT n FROM shard_marker) FROM accounts WHERE aid IN ($1, $2)", a0, b0)
		expectRows(t, ctx, simple, "IN, two shards", []string{km(c0), km(c1)},
			fmt.Sprintf("SELECT aid, (SELECT n FROM shard_marker) FROM accounts WHERE aid IN (%d, %d)", c0, c1))
		expectRows(t, ctx, ext, "IN with parameters, two shards", []string{km(c0), km(d0), km(d1)},
			"SELECT aid, (SELECT n FROM shard_marker) FROM accounts WHERE aid IN ($1, $2, $3)", c0, d0, d1)
	})

	t.Run("UPDATE", func(t *testing.T) {
		expectRows(t, ctx, ext, "UPDATE aid = $1 RETURNING", []string{km(a1)},
			"UPDATE accounts SET abalance = abalance + 10 WHERE aid = $1 RETURNING aid, (SELECT n FROM shard_marker)", a1)
		expectRows(t, ctx, simple, "UPDATE with alias and schema RETURNING", []string{km(a0)},
			fmt.Sprintf("UPDATE public.accounts AS a SET abalance = 5 WHERE a.aid = %d RETURNING a.aid, (SELECT n FROM shard_marker)", a0))
		expectTag(t, ctx, ext, "UPDATE aid = $1", "UPDATE 1", "UPDATE accounts SET filler = 'touched' WHERE aid = $1", b1)
		expectTag(t, ctx, simple, "UPDATE aid = literal", "UPDATE 1", fmt.Sprintf("UPDATE accounts SET filler = 'touched' WHERE aid = %d", b0))
		expectRows(t, ctx, ext, "UPDATE ... FROM replicated branches", []string{fmt.Sprintf("two|%d", own[a1])},
			"UPDATE accounts a SET filler = b.bname FROM branches b WHERE b.bid = a.bid AND a.aid = $1 RETURNING a.filler, (SELECT n FROM shard_marker)", a1)
		expectRows(t, ctx, simple, "UPDATE IN, two shards", []string{km(c0), km(c1)},
			fmt.Sprintf("UPDATE accounts SET abalance = abalance + 1 WHERE aid IN (%d, %d) RETURNING aid, (SELECT n FROM shard_marker)", c0, c1))
		expectTag(t, ctx, ext, "UPDATE IN with parameters, two shards", "UPDATE 2",
			"UPDATE accounts SET abalance = abalance + 1 WHERE aid IN ($1, $2)", d0, d1)
		// Read back directly: the home rows changed, the decoys did not.
		for _, c := range []struct {
			k    int64
			want string
		}{{a1, "10|two"}, {a0, "5|home"}, {b1, "0|touched"}, {b0, "0|touched"}, {c0, "1|home"}, {c1, "1|home"}, {d0, "1|home"}, {d1, "1|home"}} {
			if got := e.shards[own[c.k]].rows(t, "SELECT abalance || '|' || filler FROM accounts WHERE aid = $1", c.k); len(got) != 1 || got[0][0] != c.want {
				t.Errorf("key %d on its shard %d after the UPDATEs: %v, want %s", c.k, own[c.k], got, c.want)
			}
		}
		for _, k := range decoyed {
			if got := e.shards[1-own[k]].value(t, "SELECT abalance || '|' || filler FROM accounts WHERE aid = $1", k); got != "1000|decoy" {
				t.Errorf("the decoy of key %d on shard %d was changed: %s (an UPDATE went to a shard that does not own the key)", k, 1-own[k], got)
			}
		}
	})

	t.Run("DELETE", func(t *testing.T) {
		expectRows(t, ctx, simple, "DELETE aid = literal RETURNING", []string{km(b0)},
			fmt.Sprintf("DELETE FROM accounts WHERE aid = %d RETURNING aid, (SELECT n FROM shard_marker)", b0))
		expectTag(t, ctx, ext, "DELETE with alias and schema", "DELETE 1", "DELETE FROM public.accounts AS a WHERE a.aid = $1", a1)
		expectTag(t, ctx, ext, "DELETE IN with parameters, two shards", "DELETE 2", "DELETE FROM accounts WHERE aid IN ($1, $2)", d0, d1)
		for _, k := range []int64{b0, a1, d0, d1} {
			if n := e.shards[own[k]].value(t, "SELECT count(*) FROM accounts WHERE aid = $1", k); n != "0" {
				t.Errorf("key %d is still on its shard %d after DELETE", k, own[k])
			}
		}
		for _, k := range decoyed {
			if n := e.shards[1-own[k]].value(t, "SELECT count(*) FROM accounts WHERE aid = $1 AND filler = 'decoy'", k); n != "1" {
				t.Errorf("the decoy of key %d on shard %d was deleted (a DELETE went to a shard that does not own the key)", k, 1-own[k])
			}
		}
	})

	t.Run("other key types", func(t *testing.T) {
		// text, uuid, integer (column-only entry) and list keys, each at home and as a decoy on the other shard.
		name := "O'Brien"
		uid := [16]byte{0x12, 0x34, 15: 0x99}
		uidText := formatValue(uid)
		const tenant = 4242
		nameShard := e.owner(t, "shadow_users", name)
		uidShard := e.owner(t, "shadow_dev", uidText)
		tenantShard := e.owner(t, "shadow_tenant", strconv.Itoa(tenant))
		for _, s := range e.shards {
			s.exec(t, "INSERT INTO users (name) VALUES ($1)", name)
			s.exec(t, "INSERT INTO devices (id) VALUES ($1)", uidText)
			s.exec(t, "INSERT INTO orders (tenant_id, item) VALUES ($1, 'x')", tenant)
			s.exec(t, "INSERT INTO events (id, region) VALUES (1, 'us'), (2, 'uk')")
		}
		expectRows(t, ctx, simple, "users.name = literal", []string{keyMarker(name, nameShard)},
			"SELECT name, (SELECT n FROM shard_marker) FROM users WHERE name = 'O''Brien'")
		expectRows(t, ctx, ext, "users.name = $1", []string{keyMarker(name, nameShard)},
			"SELECT name, (SELECT n FROM shard_marker) FROM users WHERE name = $1", name)
		expectRows(t, ctx, ext, "devices.id = $1 (binary uuid)", []string{keyMarker(uidText, uidShard)},
			"SELECT id::text, (SELECT n FROM shard_marker) FROM devices WHERE id = $1", uid)
		expectRows(t, ctx, simple, "devices.id = literal", []string{keyMarker(uidText, uidShard)},
			"SELECT id::text, (SELECT n FROM shard_marker) FROM devices WHERE id = '"+strings.ToUpper(uidText)+"'")
		expectRows(t, ctx, ext, "orders.tenant_id = $1", []string{keyMarker(tenant, tenantShard)},
			"SELECT tenant_id, (SELECT n FROM shard_marker) FROM orders WHERE tenant_id = $1", tenant)
		expectRows(t, ctx, simple, "events.region = 'us' (list)", []string{"1|1"},
			"SELECT id, (SELECT n FROM shard_marker) FROM events WHERE region = 'us'")
		expectRows(t, ctx, ext, "events.region = $1 (list)", []string{"2|0"},
			"SELECT id, (SELECT n FROM shard_marker) FROM events WHERE region = $1", "uk")
	})
}

// ---- 4. SELECT without the key ----

func testKeylessSelect(t *testing.T, e *shardedEnv) {
	e.reset(t)
	ctx := Ctx(t, time.Minute)
	ks := e.accountKeys(t, 2000, 5)
	e.seedAccounts(t, append(slices.Clone(ks[0]), ks[1]...)...)
	var all, allAids []string
	for s := range ks {
		for _, k := range ks[s] {
			all = append(all, keyMarker(k, s))
			allAids = append(allAids, strconv.FormatInt(k, 10))
		}
	}
	simple := e.connect(t, ctx, pgx.QueryExecModeSimpleProtocol)
	ext := e.connect(t, ctx, pgx.QueryExecModeCacheStatement)
	for _, c := range []struct {
		name string
		conn *pgx.Conn
	}{{"simple", simple}, {"extended", ext}} {
		t.Run(c.name, func(t *testing.T) {
			expectRows(t, ctx, c.conn, "no key: rows of both shards", all, "SELECT aid, (SELECT n FROM shard_marker) FROM accounts")
			expectRows(t, ctx, c.conn, "no key, a filter on another column", allAids, "SELECT aid FROM accounts WHERE abalance = 0 AND filler IS NULL")
			expectRows(t, ctx, c.conn, "no key, no row anywhere", nil, "SELECT aid FROM accounts WHERE abalance = -1")

			// Without the key: merged across the shards.
			sortedAids := i64s(slices.Sorted(slices.Values(append(slices.Clone(ks[0]), ks[1]...)))...)
			expectOrderedRows(t, ctx, c.conn, "ORDER BY without the key", sortedAids, "SELECT aid FROM accounts ORDER BY aid")
			expectOrderedRows(t, ctx, c.conn, "ORDER BY DESC, LIMIT and OFFSET without the key",
				[]string{sortedAids[7], sortedAids[6], sortedAids[5]}, "SELECT aid FROM accounts ORDER BY aid DESC LIMIT $1 OFFSET 2", 3)
			expectOrderedRows(t, ctx, c.conn, "ORDER BY a column not selected", sortedAids[:4],
				"SELECT aid FROM accounts ORDER BY -aid DESC LIMIT 4")
			expectTag(t, ctx, c.conn, "LIMIT without the key", "SELECT 3", "SELECT aid FROM accounts LIMIT 3")
			expectRows(t, ctx, c.conn, "count(*) without the key", []string{"10"}, "SELECT count(*) FROM accounts")
			expectRows(t, ctx, c.conn, "aggregates without the key", []string{"10|55|1|0|true"},
				"SELECT count(aid), sum(bid + 4), min(bid), max(abalance), bool_and(filler IS NULL) FROM accounts")
			if res, err := c.conn.PgConn().Exec(ctx, "SELECT avg(bid + 4), avg(bid::float8) FROM accounts").ReadAll(); err != nil ||
				len(res) != 1 || len(res[0].Rows) != 1 || string(res[0].Rows[0][0]) != "5.5000000000000000" || string(res[0].Rows[0][1]) != "1.5" {
				t.Errorf("avg without the key: %v %v, want 5.5000000000000000 and 1.5", res, err)
			}
			expectRows(t, ctx, c.conn, "GROUP BY and HAVING without the key", []string{"1|5", "2|5"},
				"SELECT bid, count(*) FROM accounts GROUP BY bid HAVING count(*) > 4 ORDER BY 1")
			expectRows(t, ctx, c.conn, "HAVING that no group passes", nil,
				"SELECT bid, count(*) FROM accounts GROUP BY bid HAVING count(*) > 5")
			expectRows(t, ctx, c.conn, "count(DISTINCT) without the key (the coordinator step)", []string{"2"},
				"SELECT count(DISTINCT bid) FROM accounts")
			checkCopyOut(t, ctx, c.conn, sortedAids)

			// The same shapes work when the key pins one shard (all keys on shard 1).
			three := []int64{ks[1][2], ks[1][0], ks[1][1]}
			expectOrderedRows(t, ctx, c.conn, "ORDER BY with keys of one shard", i64s(slices.Sorted(slices.Values(three))...),
				fmt.Sprintf("SELECT aid FROM accounts WHERE aid IN (%d, %d, %d) ORDER BY aid", three[0], three[1], three[2]))
			expectRows(t, ctx, c.conn, "LIMIT with the key", []string{keyMarker(ks[1][3], 1)},
				fmt.Sprintf("SELECT aid, (SELECT n FROM shard_marker) FROM accounts WHERE aid = %d LIMIT 1", ks[1][3]))
			expectRows(t, ctx, c.conn, "count(*) with keys of one shard", []string{"2|1"},
				fmt.Sprintf("SELECT count(*), (SELECT n FROM shard_marker) FROM accounts WHERE aid IN (%d, %d)", ks[1][0], ks[1][4]))
			expectRows(t, ctx, c.conn, "count(*) with the key", []string{"1"},
				fmt.Sprintf("SELECT count(*) FROM accounts WHERE aid = %d", ks[0][1]))
		})
	}
}

// ---- 5. refused statements ----

func testRefusals(t *testing.T, e *shardedEnv) {
	e.reset(t)
	ctx := Ctx(t, time.Minute)
	ks := e.accountKeys(t, 5000, 2)
	k := ks[0][0] // on shard 0, where everything went before routing: a wrongly accepted UPDATE shows
	e.seedAccounts(t, k)
	simple := e.connect(t, ctx, pgx.QueryExecModeSimpleProtocol)
	ext := e.connect(t, ctx, pgx.QueryExecModeCacheStatement)

	expectCode(t, ctx, simple, "UPDATE that changes the key", "0A000", fmt.Sprintf("UPDATE accounts SET aid = aid + 1 WHERE aid = %d", k))
	expectCode(t, ctx, ext, "UPDATE that sets the key from a parameter", "0A000", "UPDATE accounts SET aid = $1 WHERE aid = $2", ks[1][0], k)
	expectCode(t, ctx, ext, "UPDATE that sets the key among other columns", "0A000",
		"UPDATE accounts SET abalance = 1, aid = $1 WHERE aid = $2", ks[0][1], k)
	expectCode(t, ctx, simple, "UPDATE that changes a list key", "0A000", "UPDATE events SET region = 'us' WHERE region = 'eu'")
	want := map[string]int{strconv.FormatInt(k, 10): 0}
	e.checkPlacement(t, "accounts after refused key changes", "accounts", "aid::text", want)
	if got := e.shards[0].rows(t, "SELECT aid, abalance FROM accounts"); len(got) != 1 || got[0][0] != strconv.FormatInt(k, 10) || got[0][1] != "0" {
		t.Errorf("refused UPDATEs changed the row: shard 0 holds %v, want [[%d 0]]", got, k)
	}

	expectCode(t, ctx, simple, "INSERT of a region in no list", "22023", "INSERT INTO events (id, region) VALUES (1, 'fr')")
	expectCode(t, ctx, ext, "INSERT of a region in no list, parameter", "22023", "INSERT INTO events (id, region) VALUES ($1, $2)", 2, "xx")
	expectCode(t, ctx, simple, "INSERT of a region in no list (values are case-sensitive)", "22023", "INSERT INTO events (id, region) VALUES (3, 'EU')")
	e.checkPlacement(t, "events after refused INSERTs", "events", "region || '/' || id", map[string]int{})
}

// ---- 6. replicated table ----

func testReplicatedTable(t *testing.T, e *shardedEnv) {
	e.reset(t)
	ctx := Ctx(t, time.Minute)
	simple := e.connect(t, ctx, pgx.QueryExecModeSimpleProtocol)
	ext := e.connect(t, ctx, pgx.QueryExecModeCacheStatement)
	onEvery := func(what string, want ...string) {
		t.Helper()
		for _, s := range e.shards {
			got := s.rows(t, "SELECT bid || ':' || bname FROM branches ORDER BY bid")
			var g []string
			for _, r := range got {
				g = append(g, r[0])
			}
			if !slices.Equal(g, want) {
				t.Errorf("%s: branches on shard %d directly: %q, want %q", what, s.Index, g, want)
			}
		}
	}
	// A replicated table holds one logical row per row of each shard: tags count it once.
	expectTag(t, ctx, simple, "INSERT into replicated branches", "INSERT 0 1", "INSERT INTO branches (bid, bname) VALUES (10, 'ten')")
	expectTag(t, ctx, ext, "INSERT into replicated branches with parameters", "INSERT 0 1", "INSERT INTO branches (bid, bname) VALUES ($1, $2)", 11, "eleven")
	expectTag(t, ctx, simple, "multi-row INSERT into replicated branches", "INSERT 0 2", "INSERT INTO branches VALUES (12, 'twelve'), (13, 'thirteen')")
	onEvery("after INSERTs", "10:ten", "11:eleven", "12:twelve", "13:thirteen")
	expectTag(t, ctx, ext, "UPDATE of replicated branches", "UPDATE 1", "UPDATE branches SET bname = $1 WHERE bid = $2", "TEN", 10)
	expectTag(t, ctx, simple, "DELETE from replicated branches", "DELETE 1", "DELETE FROM branches WHERE bid = 12")
	onEvery("after UPDATE and DELETE", "10:TEN", "11:eleven", "13:thirteen")

	// Reads are served by one shard: no row twice, and shapes that need a merge across shards work.
	for i := range 4 {
		c := []*pgx.Conn{simple, ext}[i%2]
		rows, err := queryStrings(ctx, c, "SELECT bid, bname, (SELECT n FROM shard_marker) FROM branches ORDER BY bid")
		if err != nil {
			t.Fatalf("read of branches: %v", err)
		}
		var g []string
		shards := map[string]bool{}
		for _, r := range rows {
			g = append(g, r[0]+":"+r[1])
			shards[r[2]] = true
		}
		if !slices.Equal(g, []string{"10:TEN", "11:eleven", "13:thirteen"}) || len(shards) != 1 {
			t.Errorf("read of branches through pgshard: %q (from shards %v), want the 3 rows once, from one shard", rows, shards)
		}
	}
	expectRows(t, ctx, ext, "count(*) of replicated branches", []string{"3"}, "SELECT count(*) FROM branches")
	expectRows(t, ctx, simple, "LIMIT on replicated branches", []string{"11"}, "SELECT bid FROM branches ORDER BY bid LIMIT 1 OFFSET 1")
}

// ---- 7. statements without a table ----

func testNoTable(t *testing.T, e *shardedEnv) {
	ctx := Ctx(t, time.Minute)
	version := e.shards[0].value(t, "SHOW server_version")
	dbs := []string{e.shards[0].DB, e.shards[1].DB}
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeCacheStatement} {
		c := e.connect(t, ctx, mode)
		expectRows(t, ctx, c, "SELECT 1", []string{"1"}, "SELECT 1")
		var now time.Time
		if err := c.QueryRow(ctx, "SELECT now()").Scan(&now); err != nil || time.Since(now).Abs() > time.Minute {
			t.Errorf("SELECT now() (%v): %v, %v", mode, now, err)
		}
		expectRows(t, ctx, c, "SHOW server_version", []string{version}, "SHOW server_version")
		expectRows(t, ctx, c, "catalog query", []string{"accounts", "branches"},
			"SELECT relname::text FROM pg_catalog.pg_class WHERE relname IN ('accounts', 'branches') AND relkind = 'r'")
		expectRows(t, ctx, c, "count(*) over a catalog (one shard)", []string{"1"},
			"SELECT count(*) FROM pg_catalog.pg_class WHERE relname = 'accounts'")
		expectRows(t, ctx, c, "information_schema", []string{"shard_marker"},
			"SELECT table_name::text FROM information_schema.tables WHERE table_name = 'shard_marker'")
		expectRows(t, ctx, c, "a parameter and no table", []string{"42"}, "SELECT $1::int + 1", 41)
		var db string
		if err := c.QueryRow(ctx, "SELECT current_database()").Scan(&db); err != nil || !slices.Contains(dbs, db) {
			t.Errorf("SELECT current_database() (%v): %q, %v; want one of %v", mode, db, err, dbs)
		}
	}
}

// checkCopyOut reads COPY accounts TO STDOUT through pgshard in CSV with a header and in binary: the shards'
// outputs concatenated into one file (one header line; one binary file header and trailer) with every row.
func checkCopyOut(t *testing.T, ctx context.Context, c *pgx.Conn, aids []string) {
	t.Helper()
	var csv bytes.Buffer
	if _, err := c.PgConn().CopyTo(ctx, &csv, "COPY accounts (aid) TO STDOUT WITH (FORMAT csv, HEADER)"); err != nil {
		t.Errorf("COPY TO csv: %v", err)
		return
	}
	lines := strings.Split(strings.TrimSuffix(csv.String(), "\n"), "\n")
	if len(lines) == 0 || lines[0] != "aid" || !slices.Equal(slices.Sorted(slices.Values(lines[1:])), slices.Sorted(slices.Values(aids))) {
		t.Errorf("COPY TO csv with header: got %q, want one header line then %q", lines, aids)
	}
	var bin bytes.Buffer
	if _, err := c.PgConn().CopyTo(ctx, &bin, "COPY accounts (aid) TO STDOUT (FORMAT binary)"); err != nil {
		t.Errorf("COPY TO binary: %v", err)
		return
	}
	b := bin.Bytes()
	const sig = "PGCOPY\n\xff\r\n\x00"
	if !bytes.HasPrefix(b, []byte(sig)) || len(b) < 21 {
		t.Errorf("COPY TO binary: no file header: % x", b[:min(len(b), 24)])
		return
	}
	b = b[19:]
	var got []string
	for len(b) >= 2 {
		n := int(int16(binary.BigEndian.Uint16(b)))
		b = b[2:]
		if n == -1 {
			break
		}
		if n != 1 || len(b) < 12 {
			t.Errorf("COPY TO binary: tuple with %d fields, %d bytes left", n, len(b))
			return
		}
		got = append(got, strconv.FormatInt(int64(binary.BigEndian.Uint64(b[4:12])), 10))
		b = b[12:]
	}
	if len(b) != 0 || !slices.Equal(slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(aids))) {
		t.Errorf("COPY TO binary: rows %q and %d bytes after the trailer, want %q", got, len(b), aids)
	}
}
