package e2e

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/pgshard/pgshard/internal/pgtest"
)

// The wire fuzzer drives the real binary, in front of real Postgres, with generated frontend message sequences:
// valid ones, and truncated, reordered, out-of-state, corrupted and oversized ones, on a plain pooled database and
// on a sharded one, in transaction and in session mode. After each sequence it asks the connection a question
// (Sync, then a query); pgshard must answer it, or have closed the connection after an ErrorResponse, never fall
// silent and never answer with an internal error. Every few cases a fresh client checks that it is served and
// that the server connection it got is clean (no transaction, settings, temporary tables, cursors, LISTENs or SQL
// prepared statements left by a fuzzing client). At the end pgshard's memory must be near where it started, and no
// server backend may be left inside a transaction.
//
// PGSHARD_WIREFUZZ_TIME sets how long it runs (30s by default; `make fuzz` runs it longer), PGSHARD_WIREFUZZ_SEED
// replays a run (its seed is logged), and with PGSHARD_WIREFUZZ_CASE one case of it alone.

const wireFuzzConfig = `
listen: "127.0.0.1:%PORT%"
pool:
  mode: %MODE%
  size: 3
  checkout_timeout: 5s
limits:
  client_startup_timeout: 3s
  max_message_size: 1MB
users:
  - name: trusted
    auth_method: trust
    server_user: app
    server_password: secret
databases:
  - name: plain
    shards:
      - primary: "postgres://127.0.0.1:%PGPORT%/app_0"
  - name: sharded
    shards:
      - primary: "postgres://127.0.0.1:%PGPORT%/app_0"
      - primary: "postgres://127.0.0.1:%PGPORT%/app_1"
    sharded_tables:
      - table: fuzz
        column: k
        type: integer
`

// startFuzzShards starts the cluster wireFuzzConfig serves: databases app_0 and app_1, each with table fuzz.
func startFuzzShards(t *testing.T) *pgtest.Cluster {
	t.Helper()
	pg := pgtest.Start(t, pgtest.Options{Databases: []string{"app_0", "app_1"}, DatabaseOwner: "app",
		Users: []pgtest.UserSpec{{Name: "app", Password: "secret"}}})
	for _, db := range []string{"app_0", "app_1"} {
		pg.Exec(t, db, "CREATE TABLE fuzz (k int, v text); ALTER TABLE fuzz OWNER TO app")
	}
	return pg
}

// fuzzConfig is wireFuzzConfig in pool mode mode, in front of pg.
func fuzzConfig(mode string, pg *pgtest.Cluster) string {
	return strings.NewReplacer("%MODE%", mode, "%PGPORT%", strconv.Itoa(pg.Port)).Replace(wireFuzzConfig)
}

// fuzzSQL are the statements the fuzzer sends, in Query and Parse messages: the session features pgshard tracks
// (settings, transactions, SQL PREPARE, COPY, temporary tables, cursors, LISTEN) and errors. None blocks on a lock
// or sleeps: silence past the timeout is always a bug.
var fuzzSQL = []string{
	"SELECT 1", "SELECT $1::int", "SELECT $1::text, $2::int", "SELECT k, v FROM fuzz WHERE k = $1",
	"SELECT * FROM fuzz", "SELECT count(*) FROM fuzz", "INSERT INTO fuzz VALUES ($1, 'x')", "INSERT INTO fuzz VALUES (1, 'a'), (2, 'b')",
	"UPDATE fuzz SET v = 'y' WHERE k = 2", "DELETE FROM fuzz WHERE k = 3",
	"BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT a", "ROLLBACK TO SAVEPOINT a", "START TRANSACTION READ ONLY",
	"SET search_path TO pg_catalog, public", "SET statement_timeout = 1", "SET application_name = 'fuzz'",
	"SET LOCAL DateStyle = 'German'", "RESET ALL", "SET TIME ZONE 'UTC'", "SELECT set_config('work_mem', '8MB', false)",
	"PREPARE p AS SELECT 1", "EXECUTE p", "DEALLOCATE p", "DEALLOCATE ALL", "PREPARE q(int) AS SELECT $1",
	"COPY fuzz FROM STDIN", "COPY fuzz TO STDOUT", "COPY (SELECT 1) TO STDOUT (FORMAT binary)",
	"CREATE TEMP TABLE tmp (a int)", "DISCARD ALL", "DISCARD TEMP", "LISTEN chan", "UNLISTEN *", "NOTIFY chan",
	"DECLARE c CURSOR WITH HOLD FOR SELECT 1", "FETCH c", "CLOSE c", "SET pgshard.shard = 1", "SET pgshard.shard = 9",
	"SELEKT", "", ";", "SELECT 1; SELECT 2", "SELECT 1/0", "SELECT repeat('x', 100000)", "SHOW ALL",
	"SELECT pg_backend_pid()", "SELECT $1", "DO $$BEGIN RAISE NOTICE 'n'; END$$",
}

var fuzzNames = []string{"", "", "s1", "s2", "nosuch", "pgshard_1", strings.Repeat("n", 80)}

// fuzzEnd is how a generated sequence leaves the connection.
type fuzzEnd int

const (
	endAsk       fuzzEnd = iota // pgshard must answer the question that follows
	endTerminate                // the sequence sent Terminate: pgshard closes
	endPartial                  // the last message is incomplete: pgshard waits for the rest; the fuzzer closes
	endRefused                  // a message pgshard must refuse outright (too long, a bad length): it closes
)

type fuzzCase struct {
	startup []byte // raw bytes instead of a normal login; nil for the normal one
	// startupEnds: the fuzzed startup cannot log in, or may be incomplete: pgshard may close the connection
	// or wait for the rest; it must not answer with an internal error
	startupEnds bool
	msgs        [][]byte
	desc        []string
	end         fuzzEnd
}

func (c *fuzzCase) add(desc string, msg []byte) {
	c.msgs = append(c.msgs, msg)
	c.desc = append(c.desc, desc)
}

func fuzzMessage(typ byte, body []byte) []byte {
	m := []byte{typ, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(m[1:], uint32(4+len(body)))
	return append(m, body...)
}

func cstr(b []byte, s string) []byte { return append(append(b, s...), 0) }

func pick[T any](r *rand.Rand, xs []T) T { return xs[r.IntN(len(xs))] }

func randomBytes(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// validMessage is a well-formed frontend message of a random kind, with random (often wrong) contents.
func validMessage(r *rand.Rand) (string, []byte) {
	switch r.IntN(14) {
	case 0, 1, 2:
		sql := pick(r, fuzzSQL)
		return "Query " + strconv.Quote(sql), fuzzMessage('Q', cstr(nil, sql))
	case 3, 4:
		name, sql := pick(r, fuzzNames), pick(r, fuzzSQL)
		b := cstr(cstr(nil, name), sql)
		n := r.IntN(3)
		b = binary.BigEndian.AppendUint16(b, uint16(n))
		for i := 0; i < n; i++ {
			b = binary.BigEndian.AppendUint32(b, pick(r, []uint32{0, 23, 25, 869, 1009, 424242}))
		}
		return fmt.Sprintf("Parse %q %q", name, sql), fuzzMessage('P', b)
	case 5, 6:
		portal, name := pick(r, []string{"", "", "p1"}), pick(r, fuzzNames)
		b := cstr(cstr(nil, portal), name)
		nf := r.IntN(3)
		b = binary.BigEndian.AppendUint16(b, uint16(nf))
		for i := 0; i < nf; i++ {
			b = binary.BigEndian.AppendUint16(b, uint16(r.IntN(3)))
		}
		np := r.IntN(3)
		b = binary.BigEndian.AppendUint16(b, uint16(np))
		for i := 0; i < np; i++ {
			switch r.IntN(4) {
			case 0:
				b = binary.BigEndian.AppendUint32(b, 0xFFFFFFFF) // NULL
			case 1:
				b = binary.BigEndian.AppendUint32(b, 4)
				b = binary.BigEndian.AppendUint32(b, r.Uint32()%100)
			default:
				v := strconv.Itoa(r.IntN(10))
				b = binary.BigEndian.AppendUint32(b, uint32(len(v)))
				b = append(b, v...)
			}
		}
		nr := r.IntN(2)
		b = binary.BigEndian.AppendUint16(b, uint16(nr))
		for i := 0; i < nr; i++ {
			b = binary.BigEndian.AppendUint16(b, uint16(r.IntN(2)))
		}
		return fmt.Sprintf("Bind portal %q statement %q (%d params)", portal, name, np), fuzzMessage('B', b)
	case 7:
		kind, name := pick(r, []byte{'S', 'P', 'X'}), pick(r, fuzzNames)
		return fmt.Sprintf("Describe %c %q", kind, name), fuzzMessage('D', cstr([]byte{kind}, name))
	case 8:
		portal := pick(r, []string{"", "p1"})
		return fmt.Sprintf("Execute %q", portal), fuzzMessage('E', binary.BigEndian.AppendUint32(cstr(nil, portal), uint32(r.IntN(3))))
	case 9:
		return "Sync", fuzzMessage('S', nil)
	case 10:
		return "Flush", fuzzMessage('H', nil)
	case 11:
		kind, name := pick(r, []byte{'S', 'P'}), pick(r, fuzzNames)
		return fmt.Sprintf("Close %c %q", kind, name), fuzzMessage('C', cstr([]byte{kind}, name))
	case 12:
		switch r.IntN(3) {
		case 0:
			return "CopyData", fuzzMessage('d', []byte(strconv.Itoa(r.IntN(100))+"\tv\n"))
		case 1:
			return "CopyDone", fuzzMessage('c', nil)
		}
		return "CopyFail", fuzzMessage('f', cstr(nil, "fuzz"))
	}
	// FunctionCall of a random function oid with no arguments.
	b := binary.BigEndian.AppendUint32(nil, pick(r, []uint32{1598, 0, 99999}))
	b = binary.BigEndian.AppendUint16(b, 0)
	b = binary.BigEndian.AppendUint16(b, 0)
	return "FunctionCall", fuzzMessage('F', binary.BigEndian.AppendUint16(b, 0))
}

// genCase makes one case: a login (usually a normal one) and up to 12 messages, the last of which may end it.
func genCase(r *rand.Rand) fuzzCase {
	var c fuzzCase
	if r.IntN(8) == 0 {
		c.startup, c.startupEnds = fuzzStartup(r)
	}
	n := 1 + r.IntN(12)
	for i := 0; i < n; i++ {
		desc, msg := validMessage(r)
		switch r.IntN(20) {
		case 0: // an unknown or wrong-phase message type with a valid length
			typ := pick(r, []byte{0, 'Z', 'T', 'p', 'A', 'z', 0xFF})
			c.add(fmt.Sprintf("type %q", typ), fuzzMessage(typ, randomBytes(r, r.IntN(20))))
			c.end = endRefused
			return c
		case 1: // the body's bytes flipped, its length kept
			body := append([]byte(nil), msg[5:]...)
			for j := 0; j < 1+r.IntN(3) && len(body) > 0; j++ {
				body[r.IntN(len(body))] = byte(r.Uint32())
			}
			c.add("corrupted "+desc, fuzzMessage(msg[0], body))
		case 2: // a length below the header's own 4 bytes, or past max_message_size
			bad := append([]byte(nil), msg...)
			binary.BigEndian.PutUint32(bad[1:], pick(r, []uint32{0, 3, 2 << 20, 0x7FFFFFFF}))
			c.add("bad length "+desc, bad)
			c.end = endRefused
			return c
		case 3: // cut short: the rest never comes
			c.add("truncated "+desc, msg[:r.IntN(len(msg))])
			c.end = endPartial
			return c
		case 4:
			c.add("Terminate", fuzzMessage('X', nil))
			c.end = endTerminate
			return c
		default:
			c.add(desc, msg)
		}
	}
	return c
}

// fuzzStartup is a startup packet of a random flavour: valid with odd parameters, or broken (ends: it cannot,
// or need not, log in).
func fuzzStartup(r *rand.Rand) (packets []byte, ends bool) {
	packet := func(code uint32, body []byte) []byte {
		b := binary.BigEndian.AppendUint32(nil, uint32(8+len(body)))
		return append(binary.BigEndian.AppendUint32(b, code), body...)
	}
	params := func(kv ...string) []byte {
		var b []byte
		for _, s := range kv {
			b = cstr(b, s)
		}
		return append(b, 0)
	}
	db := pick(r, []string{"plain", "sharded", "nodb", "pgshard"})
	switch r.IntN(8) {
	case 0:
		return packet(196608, params("user", "trusted", "database", db, "options", "-c search_path=pg_catalog -c statement_timeout=5")), false
	case 1:
		return packet(196608, params("user", "trusted", "database", db, "application_name", string(randomBytes(r, 10)), "DateStyle", "SQL, DMY")), false
	case 2:
		return packet(196609, params("user", "trusted", "database", db, "_pq_.fuzz", "1")), false
	case 3:
		return append(packet(80877103, nil), packet(196608, params("user", "trusted", "database", db))...), false // SSLRequest first
	case 4:
		return packet(80877102, randomBytes(r, 8)), true // CancelRequest for a process that does not exist
	case 5:
		return packet(196608, params("database", db)), true // no user
	case 6:
		return packet(196608, append(params("user", "trusted"), randomBytes(r, r.IntN(30))...)), true
	}
	return randomBytes(r, 4+r.IntN(40)), true
}

// fuzzTarget is one proxy and database to send cases to.
type fuzzTarget struct {
	mode  string
	proxy *Proxy
	db    string
}

// runCase sends c to t and checks pgshard's answer. It returns a description of what went wrong, or "".
func runCase(t *testing.T, tg fuzzTarget, c fuzzCase, r *rand.Rand) string {
	nc, err := net.DialTimeout("tcp", tg.proxy.Addr(), 5*time.Second)
	if err != nil {
		return "dial: " + err.Error()
	}
	defer nc.Close()
	conn := nc.(*net.TCPConn)
	fe := pgproto3.NewFrontend(conn, conn)
	_ = conn.SetDeadline(time.Now().Add(15 * time.Second))

	// Log in; a fuzzed startup may be refused, which ends the case.
	if c.startup == nil {
		fe.Send(&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersionNumber,
			Parameters: map[string]string{"user": "trusted", "database": tg.db}})
		if err := fe.Flush(); err != nil {
			return "startup: " + err.Error()
		}
	} else if _, err := conn.Write(c.startup); err != nil {
		return "" // refused before it was all written
	}
	if c.startupEnds {
		return drain(conn, fe)
	}
	if len(c.startup) >= 8 && binary.BigEndian.Uint32(c.startup[4:8]) == 80877103 { // SSLRequest first
		if b := make([]byte, 1); func() bool { _, err := conn.Read(b); return err != nil || b[0] != 'N' }() {
			return "SSLRequest not answered 'N'"
		}
	}
login:
	for {
		m, err := fe.Receive()
		if err != nil {
			return "login: " + err.Error()
		}
		switch m := m.(type) {
		case *pgproto3.ErrorResponse:
			if pgshardInternal(m) {
				return "login: internal error: " + m.Message
			}
			if c.startup == nil {
				return "login refused: " + m.Code + " " + m.Message
			}
			return expectClose(fe, false) // an unknown database, say
		case *pgproto3.AuthenticationSASL:
			return "" // the console's database asks for a password the fuzzer does not have
		case *pgproto3.ReadyForQuery:
			break login
		}
	}

	// The sequence, in a few writes split at random points.
	stream := bytes.Join(c.msgs, nil)
	for len(stream) > 0 {
		n := len(stream)
		if r.IntN(3) == 0 {
			n = 1 + r.IntN(n)
		}
		if _, err := conn.Write(stream[:n]); err != nil {
			// pgshard closed the connection while we wrote: it must have said why first.
			return expectClose(fe, true)
		}
		stream = stream[n:]
	}
	_ = conn.SetDeadline(time.Now().Add(15 * time.Second))
	switch c.end {
	case endPartial:
		return drain(conn, fe)
	case endTerminate:
		return expectClose(fe, false)
	case endRefused:
		return expectClose(fe, true)
	}

	// The question: whatever state the sequence left (an extended batch, a failed transaction, COPY, a tiny
	// statement_timeout), a Sync, a ROLLBACK, a SET and a query are answered. Each ReadyForQuery that comes
	// without the answer yet (it may be one of the sequence's own) sends the question again, a few times.
	_ = conn.SetDeadline(time.Now().Add(15 * time.Second))
	fe.Send(&pgproto3.Sync{})
	ask := func() {
		for _, q := range []string{"ROLLBACK", "SET statement_timeout = 0", "SELECT 'fuzz-alive'"} {
			fe.Send(&pgproto3.Query{String: q})
		}
		_ = fe.Flush()
	}
	ask()
	asked, alive := 1, false
	for {
		m, err := fe.Receive()
		switch {
		case err != nil && isEOF(err):
			return "" // closed after an error (a FATAL, relayed or pgshard's, came first; see below)
		case err != nil && isTimeout(err):
			return "silence: no answer to Sync and a query within 15 s"
		case err != nil:
			return "receive: " + err.Error()
		}
		switch m := m.(type) {
		case *pgproto3.ErrorResponse:
			if pgshardInternal(m) {
				return "internal error: " + m.Message
			}
		case *pgproto3.DataRow:
			alive = alive || len(m.Values) == 1 && string(m.Values[0]) == "fuzz-alive"
		case *pgproto3.CopyInResponse:
			fe.Send(&pgproto3.CopyFail{Message: "fuzz"})
			_ = fe.Flush()
		case *pgproto3.ReadyForQuery:
			if alive {
				return ""
			}
			if asked < 4 {
				ask()
				asked++
			}
		}
	}
}

// expectClose reads until pgshard closes the connection; refused says that it must say why first (an
// ErrorResponse).
func expectClose(fe *pgproto3.Frontend, refused bool) string {
	sawError := false
	for {
		m, err := fe.Receive()
		if err != nil {
			switch {
			case isEOF(err):
				if refused && !sawError {
					return "closed without an ErrorResponse"
				}
				return ""
			case isTimeout(err):
				return "silence: the connection was not closed within 15 s"
			}
			return "receive: " + err.Error()
		}
		if e, ok := m.(*pgproto3.ErrorResponse); ok {
			if pgshardInternal(e) {
				return "internal error: " + e.Message
			}
			sawError = true
		}
	}
}

// drain reads what pgshard says within a moment, when it may be waiting for more bytes (it cannot tell a
// message cut short from a slow one): no internal error. The fuzzer then closes. (It does not half-close to
// see what pgshard does with the bytes it has: gnet ends a connection at the first EOF, so pgshard drops what a
// client sent and then half-closed before it was forwarded; Postgres would answer it.)
func drain(conn net.Conn, fe *pgproto3.Frontend) string {
	_ = conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	for {
		m, err := fe.Receive()
		if err != nil {
			return ""
		}
		if e, ok := m.(*pgproto3.ErrorResponse); ok && pgshardInternal(e) {
			return "internal error: " + e.Message
		}
	}
}

// pgshardInternal is pgshard's answer to a panic it survived (Postgres's own XX000 errors, such as a cache
// lookup of a type oid that does not exist, are fine).
func pgshardInternal(e *pgproto3.ErrorResponse) bool {
	return e.Code == "XX000" && strings.HasPrefix(e.Message, "pgshard")
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// canary is a fresh client: it must be served, on a server connection in the state a new session has.
func canary(ctx context.Context, tg fuzzTarget) error {
	c, err := pgx.Connect(ctx, tg.proxy.DSN(tg.db, "trusted", ""))
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer c.Close(ctx)
	var state string
	err = c.QueryRow(ctx, `SELECT concat_ws(' | ', now() = statement_timestamp(), current_setting('search_path'),
		current_setting('statement_timeout'), current_setting('DateStyle'), current_setting('TimeZone') = current_setting('log_timezone'),
		current_setting('work_mem'), current_setting('transaction_read_only'),
		(SELECT count(*) FROM pg_class WHERE relnamespace = pg_my_temp_schema()), (SELECT count(*) FROM pg_cursors),
		(SELECT count(*) FROM pg_listening_channels()), (SELECT count(*) FROM pg_prepared_statements WHERE name !~ '^pgshard_'))`,
		pgx.QueryExecModeSimpleProtocol).Scan(&state)
	if err != nil {
		return fmt.Errorf("query: %w", err)
	}
	if want := `t | "$user", public | 0 | ISO, MDY | t | 4MB | off | 0 | 0 | 0 | 0`; state != want {
		return fmt.Errorf("a new client's server connection is not clean:\n got  %s\n want %s\n(fresh transaction | search_path | statement_timeout | DateStyle | TimeZone default | work_mem | read only | temp tables | cursors | LISTENs | SQL prepared statements)", state, want)
	}
	return nil
}

func TestWireFuzz(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("starts Postgres")
	}
	d := 30 * time.Second
	if s := os.Getenv("PGSHARD_WIREFUZZ_TIME"); s != "" {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			t.Fatalf("PGSHARD_WIREFUZZ_TIME: %v", err)
		}
	}
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("PGSHARD_WIREFUZZ_SEED"); s != "" {
		seed, _ = strconv.ParseUint(s, 10, 64)
	}
	t.Logf("seed %d (PGSHARD_WIREFUZZ_SEED=%d replays this run), %v", seed, seed, d)

	pg := startFuzzShards(t)
	var targets []fuzzTarget
	proxies := map[string]*Proxy{}
	for _, mode := range []string{"transaction", "session"} {
		cfg := fuzzConfig(mode, pg)
		p := StartProxy(t, cfg)
		proxies[mode] = p
		for _, db := range []string{"plain", "sharded"} {
			targets = append(targets, fuzzTarget{mode: mode, proxy: p, db: db})
		}
	}
	ctx := Ctx(t, d+5*time.Minute)
	for _, tg := range targets {
		if err := canary(ctx, tg); err != nil {
			t.Fatalf("before fuzzing, %s mode, database %s: %v", tg.mode, tg.db, err)
		}
	}
	before := map[string]int{}
	for mode, p := range proxies {
		before[mode], _ = p.rssKB(t)
	}

	only := -1 // PGSHARD_WIREFUZZ_CASE: run that case of the seed alone
	if s := os.Getenv("PGSHARD_WIREFUZZ_CASE"); s != "" {
		only, _ = strconv.Atoi(s)
	}
	deadline := time.Now().Add(d)
	cases := 0
	for ; time.Now().Before(deadline) && (only < 0 || cases <= only); cases++ {
		if only >= 0 && cases != only {
			continue
		}
		r := rand.New(rand.NewPCG(seed, uint64(cases))) // each case its own stream, so that one can be replayed alone
		tg := pick(r, targets)
		c := genCase(r)
		if problem := runCase(t, tg, c, r); problem != "" {
			t.Fatalf("case %d, %s mode, database %s: %s (PGSHARD_WIREFUZZ_SEED=%d PGSHARD_WIREFUZZ_CASE=%d replays it alone)\nstartup %q\nsent:\n  %s",
				cases, tg.mode, tg.db, problem, seed, cases, c.startup, strings.Join(c.desc, "\n  "))
		}
		if cases%25 == 24 {
			if err := canary(ctx, tg); err != nil {
				t.Fatalf("after case %d, %s mode, database %s: %v\nlast case sent:\n  %s", cases, tg.mode, tg.db, err, strings.Join(c.desc, "\n  "))
			}
		}
	}
	t.Logf("%d cases", cases)

	// Settled: every server backend idle outside a transaction, memory near its start.
	var busy string
	if !waitFor(10*time.Second, func() bool {
		busy = pg.QueryString(t, "postgres", `SELECT coalesce(string_agg(state || ': ' || query, '; '), '') FROM pg_stat_activity
			WHERE usename = 'app' AND state <> 'idle'`)
		return busy == ""
	}) {
		t.Errorf("server backends not idle after the fuzzing: %s", busy)
	}
	for _, tg := range targets {
		if err := canary(ctx, tg); err != nil {
			t.Errorf("after fuzzing, %s mode, database %s: %v", tg.mode, tg.db, err)
		}
	}
	for mode, p := range proxies {
		rss, _ := p.rssKB(t)
		t.Logf("%s mode: RSS %d -> %d MB", mode, before[mode]>>10, rss>>10)
		if rss-before[mode] > 64<<10 {
			t.Errorf("%s mode: pgshard's RSS grew by %d MB over the fuzzing", mode, (rss-before[mode])>>10)
		}
		if strings.Contains(p.Log(), "internal error") {
			t.Errorf("%s mode: pgshard logged an internal error (a panic it survived)", mode)
		}
	}
}
