package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/pgshard/pgshard/internal/pgtest"
)

// COPY FROM STDIN of a million rows in each format through pgshard into three shards. The rows are generated
// as they are sent (never all in memory); afterwards each shard is read directly: its row count and key sum
// must be what Postgres's own hash partitioning gives for the generated keys (computed by Postgres from the
// same formula with satisfies_hash_partition, not by pgshard's hash code), no row may belong to another shard,
// and the values (escapes, quotes, NULLs) must have arrived intact, checked by sums over all rows and by an
// exact comparison of every 1009th row.

const copyShards = 3

// copyBigRows is how many rows each format copies.
const copyBigRows = 1_000_000

const copyConfig = `
listen: "127.0.0.1:%PORT%"
shutdown_timeout: 5s
pool:
  mode: transaction
  size: 4
  checkout_timeout: 10s
users:
  - name: app
    password: secret
databases:
  - name: cp
    shards:
      - primary: "postgres://127.0.0.1:%P%/cp_0"
      - primary: "postgres://127.0.0.1:%P%/cp_1"
      - primary: "postgres://127.0.0.1:%P%/cp_2"
    sharded_tables:
      - table: t
        column: k
        type: bigint
`

// copySchema is on every shard. The key is the third column, so that the text COPY (no column list) needs the
// catalog to find it. t_hash is the oracle: satisfies_hash_partition(t_hash, 3, r, k) says whether key k
// belongs to shard r. The CHECK lets a test make one row fail on one shard.
const copySchema = `
CREATE UNLOGGED TABLE t (i integer NOT NULL, v text, k bigint NOT NULL, n integer CHECK (n IS DISTINCT FROM 12345));
CREATE TABLE t_hash (k bigint) PARTITION BY HASH (k);
`

// copyKey is row i's key: distinct, negative and positive, spread over the whole bigint hash space. The SQL
// form is copyKeySQL.
func copyKey(i int) int64 { return int64(i)*2654435761 - 1_000_000_000_000_000 }

const copyKeySQL = "(i::bigint * 2654435761 - 1000000000000000)"

// copyValues are the values of v, by i mod len: escapes of the text format, CSV quotes, the delimiter, the
// NULL markers of both formats as data, the empty string, CR, LF, non-ASCII.
var copyValues = []string{
	"plain", "tab\there", "new\nline", `back\slash`, `\N`, "", `quote"and|pipe,comma`, "ünïcødé\r", "NUL", `\.`,
}

// copyRow is row i: v is nil every 11th row, n every 5th.
func copyRow(i int) (k int64, v *string, n *int32) {
	k = copyKey(i)
	if i%11 != 0 {
		s := copyValues[i%len(copyValues)]
		if i%3 == 0 {
			s += strconv.Itoa(i)
		}
		v = &s
	}
	if i%5 != 0 {
		x := int32(i%1000 - 500)
		n = &x
	}
	return k, v, n
}

// copyTotals are sums over all rows, compared with the shards' after a COPY.
type copyTotals struct {
	rows, vCount, vBytes, nCount, nSum int64
}

func copyTotalsOf(rows int) copyTotals {
	var t copyTotals
	for i := range rows {
		_, v, n := copyRow(i)
		t.rows++
		if v != nil {
			t.vCount++
			t.vBytes += int64(len(*v))
		}
		if n != nil {
			t.nCount++
			t.nSum += int64(*n)
		}
	}
	return t
}

// copyReader streams rows [0, rows) in one of the text formats, row by row as it is read. bad, when >= 0, is a
// row whose n violates t's CHECK.
type copyReader struct {
	format string // text | csv
	i      int
	rows   int
	bad    int
	buf    []byte
	header bool
}

func (r *copyReader) Read(p []byte) (int, error) {
	for len(r.buf) < len(p) && r.i < r.rows {
		r.buf = r.appendRow(r.buf, r.i)
		r.i++
	}
	if len(r.buf) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.buf)
	r.buf = r.buf[:copy(r.buf, r.buf[n:])]
	return n, nil
}

// appendRow renders row i. Text: columns i, v, k, n (the table's order), backslash escapes, \N for NULL, and
// every 101st key with its first character escaped (octal, or \x2d for the minus sign). CSV (columns v, k, i,
// n; delimiter |, NULL 'NUL', a header line): quoted where needed and every third field besides, every
// seventh key quoted.
func (r *copyReader) appendRow(b []byte, i int) []byte {
	k, v, n := copyRow(i)
	if i == r.bad {
		bad := int32(12345)
		n = &bad
	}
	key := strconv.FormatInt(k, 10)
	if r.format == "text" {
		b = strconv.AppendInt(b, int64(i), 10)
		b = append(b, '\t')
		if v == nil {
			b = append(b, `\N`...)
		} else {
			b = appendTextEscaped(b, *v)
		}
		b = append(b, '\t')
		if i%101 == 0 {
			if key[0] == '-' {
				b = append(b, `\x2d`...)
			} else {
				b = fmt.Appendf(b, `\%03o`, key[0])
			}
			b = append(b, key[1:]...)
		} else {
			b = append(b, key...)
		}
		b = append(b, '\t')
		if n == nil {
			b = append(b, `\N`...)
		} else {
			b = strconv.AppendInt(b, int64(*n), 10)
		}
		return append(b, '\n')
	}
	if !r.header {
		r.header = true
		b = append(b, "v|k|i|n\n"...)
	}
	if v == nil {
		b = append(b, "NUL"...)
	} else {
		b = appendCSVField(b, *v, i%3 == 0)
	}
	b = append(b, '|')
	b = appendCSVField(b, key, i%7 == 0)
	b = append(b, '|')
	b = strconv.AppendInt(b, int64(i), 10)
	b = append(b, '|')
	if n == nil {
		b = append(b, "NUL"...)
	} else {
		b = strconv.AppendInt(b, int64(*n), 10)
	}
	return append(b, '\n')
}

func appendTextEscaped(b []byte, s string) []byte {
	for j := 0; j < len(s); j++ {
		switch c := s[j]; c {
		case '\\':
			b = append(b, `\\`...)
		case '\t':
			b = append(b, `\t`...)
		case '\n':
			b = append(b, `\n`...)
		case '\r':
			b = append(b, `\r`...)
		default:
			b = append(b, c)
		}
	}
	return b
}

// appendCSVField appends s as a CSV field (delimiter |): quoted when force, when it holds the delimiter, a quote
// or a line break, when it is empty or the NULL marker (which unquoted would mean NULL... or, for "", the
// empty string: quoting it is harmless), or when it starts with \. (the end marker).
func appendCSVField(b []byte, s string, force bool) []byte {
	if !force && s != "" && s != "NUL" && !strings.ContainsAny(s, "|\"\r\n") && !strings.HasPrefix(s, `\.`) {
		return append(b, s...)
	}
	b = append(b, '"')
	b = append(b, strings.ReplaceAll(s, `"`, `""`)...)
	return append(b, '"')
}

type copyEnv struct {
	proxy   *Proxy
	cluster *pgtest.Cluster
	shards  []*shardRef
	// want[r] is the number and key sum of the first copyBigRows rows owned by shard r, by Postgres.
	want [copyShards]struct {
		count int64
		sum   string
	}
}

func startCopyEnv(t *testing.T) *copyEnv {
	t.Helper()
	ctx := Ctx(t, 2*time.Minute)
	dbs := make([]string, copyShards)
	for i := range dbs {
		dbs[i] = fmt.Sprintf("cp_%d", i)
	}
	c := pgtest.Start(t, pgtest.Options{Databases: dbs, DatabaseOwner: "app",
		Users: []pgtest.UserSpec{{Name: "app", Password: "secret"}}})
	e := &copyEnv{cluster: c}
	for i, db := range dbs {
		c.Exec(t, "postgres", fmt.Sprintf("ALTER DATABASE %s SET lock_timeout = '10s'", db))
		s := &shardRef{Index: i, Cluster: c, DB: db, DSN: c.DSN(db, "app", "secret")}
		conn, err := pgx.Connect(ctx, s.DSN)
		if err != nil {
			t.Fatalf("shard %d: %v", i, err)
		}
		t.Cleanup(func() { _ = conn.Close(context.Background()) })
		s.conn = conn
		s.exec(t, copySchema)
		e.shards = append(e.shards, s)
	}
	e.proxy = StartProxy(t, strings.ReplaceAll(copyConfig, "%P%", strconv.Itoa(c.Port)))

	// The oracle: which shard Postgres's hash partitioning gives each generated key.
	rows := e.shards[0].rows(t, fmt.Sprintf(`SELECT r, count(*), sum(k)::text
FROM (SELECT %s AS k FROM generate_series(0, %d) i) s, generate_series(0, %d) r
WHERE satisfies_hash_partition('t_hash'::regclass, %d, r, k) GROUP BY r ORDER BY r`,
		copyKeySQL, copyBigRows-1, copyShards-1, copyShards))
	if len(rows) != copyShards {
		t.Fatalf("oracle: %v", rows)
	}
	var sum int64
	for r, row := range rows {
		n, _ := strconv.ParseInt(row[1], 10, 64)
		e.want[r].count, e.want[r].sum = n, row[2]
		sum += n
	}
	if sum != copyBigRows {
		t.Fatalf("oracle: %d keys in all, want %d", sum, copyBigRows)
	}
	return e
}

func (e *copyEnv) connect(t *testing.T, ctx context.Context) *pgx.Conn {
	t.Helper()
	c, err := pgx.Connect(ctx, e.proxy.DSN("cp", "app", "secret"))
	if err != nil {
		t.Fatalf("connect through pgshard: %v", err)
	}
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	return c
}

func (e *copyEnv) truncate(t *testing.T) {
	t.Helper()
	for _, s := range e.shards {
		s.exec(t, "TRUNCATE t")
	}
}

// counts is the number of rows of t on each shard.
func (e *copyEnv) counts(t *testing.T) []int64 {
	t.Helper()
	out := make([]int64, len(e.shards))
	for i, s := range e.shards {
		out[i], _ = strconv.ParseInt(s.value(t, "SELECT count(*) FROM t"), 10, 64)
	}
	return out
}

// check reads every shard after a COPY of rows [0, copyBigRows).
func (e *copyEnv) check(t *testing.T, format string) {
	t.Helper()
	var got copyTotals
	for r, s := range e.shards {
		row := s.rows(t, fmt.Sprintf(`SELECT count(*), coalesce(sum(k), 0)::text,
  count(*) FILTER (WHERE NOT satisfies_hash_partition('t_hash'::regclass, %d, %d, k)),
  count(v), coalesce(sum(octet_length(v)), 0), count(n), coalesce(sum(n), 0)
FROM t`, copyShards, r))[0]
		var v [7]int64
		for j, x := range row {
			if j != 1 {
				v[j], _ = strconv.ParseInt(x, 10, 64)
			}
		}
		if v[0] != e.want[r].count || row[1] != e.want[r].sum {
			t.Errorf("%s: shard %d holds %d rows with key sum %s, want the %d rows (key sum %s) Postgres's hash partitioning gives it",
				format, r, v[0], row[1], e.want[r].count, e.want[r].sum)
		}
		if v[2] != 0 {
			t.Errorf("%s: %d rows on shard %d belong to another shard", format, v[2], r)
		}
		got.rows += v[0]
		got.vCount += v[3]
		got.vBytes += v[4]
		got.nCount += v[5]
		got.nSum += v[6]
	}
	if want := copyTotalsOf(copyBigRows); got != want {
		t.Errorf("%s: over all shards rows, count(v), sum(octet_length(v)), count(n), sum(n) = %+v, want %+v", format, got, want)
	}
	// Every 1009th row, exactly.
	var rows []string
	for _, s := range e.shards {
		for _, r := range s.rows(t, "SELECT i, coalesce(quote_literal(v), 'NULL'), k, coalesce(n::text, 'NULL') FROM t WHERE i % 1009 = 0") {
			rows = append(rows, strings.Join(r, "|"))
		}
	}
	var want []string
	for i := 0; i < copyBigRows; i += 1009 {
		k, v, n := copyRow(i)
		vs, ns := "NULL", "NULL"
		if v != nil {
			vs = quoteLiteralPG(*v)
		}
		if n != nil {
			ns = strconv.Itoa(int(*n))
		}
		want = append(want, fmt.Sprintf("%d|%s|%d|%s", i, vs, k, ns))
	}
	slices.Sort(rows)
	slices.Sort(want)
	if !slices.Equal(rows, want) {
		for j := 0; j < min(len(rows), len(want)); j++ {
			if rows[j] != want[j] {
				t.Errorf("%s: sampled rows differ, first: got %q, want %q (%d and %d rows)", format, rows[j], want[j], len(rows), len(want))
				return
			}
		}
		t.Errorf("%s: %d sampled rows, want %d", format, len(rows), len(want))
	}
}

// quoteLiteralPG is Postgres's quote_literal: E'...' with doubled backslashes when s has a backslash.
func quoteLiteralPG(s string) string {
	q := "'" + strings.ReplaceAll(s, "'", "''") + "'"
	if strings.Contains(s, `\`) {
		return "E" + strings.ReplaceAll(q, `\`, `\\`)
	}
	return q
}

// TestCopyMillionRows copies a million rows in text, CSV and binary through pgshard into three shards, then
// checks a COPY that fails on one shard leaves no row anywhere.
func TestCopyMillionRows(t *testing.T) {
	t.Parallel()
	e := startCopyEnv(t)
	ctx := Ctx(t, 3*time.Minute)
	c := e.connect(t, ctx)

	t.Run("Text", func(t *testing.T) {
		e.truncate(t)
		start := time.Now()
		tag, err := c.PgConn().CopyFrom(ctx, &copyReader{format: "text", rows: copyBigRows, bad: -1}, "COPY t FROM STDIN")
		if err != nil || tag.String() != "COPY "+strconv.Itoa(copyBigRows) {
			t.Fatalf("COPY text: %q, %v", tag, err)
		}
		t.Logf("text: %d rows in %v", copyBigRows, time.Since(start).Round(time.Millisecond))
		e.check(t, "text")
	})
	t.Run("CSV", func(t *testing.T) {
		e.truncate(t)
		start := time.Now()
		tag, err := c.PgConn().CopyFrom(ctx, &copyReader{format: "csv", rows: copyBigRows, bad: -1},
			`COPY t (v, k, i, n) FROM STDIN WITH (FORMAT csv, HEADER true, DELIMITER '|', NULL 'NUL')`)
		if err != nil || tag.String() != "COPY "+strconv.Itoa(copyBigRows) {
			t.Fatalf("COPY csv: %q, %v", tag, err)
		}
		t.Logf("csv: %d rows in %v", copyBigRows, time.Since(start).Round(time.Millisecond))
		e.check(t, "csv")
	})
	t.Run("Binary", func(t *testing.T) {
		e.truncate(t)
		start := time.Now()
		i := 0
		n, err := c.CopyFrom(ctx, pgx.Identifier{"t"}, []string{"k", "n", "i", "v"}, pgx.CopyFromFunc(func() ([]any, error) {
			if i == copyBigRows {
				return nil, nil
			}
			k, v, nv := copyRow(i)
			i++
			return []any{k, nv, int32(i - 1), v}, nil
		}))
		if err != nil || n != copyBigRows {
			t.Fatalf("COPY binary: %d rows, %v", n, err)
		}
		t.Logf("binary: %d rows in %v", copyBigRows, time.Since(start).Round(time.Millisecond))
		e.check(t, "binary")
	})
	t.Run("ErrorOnOneShard", func(t *testing.T) {
		testCopyErrorOnOneShard(t, e, c)
	})
}

// testCopyErrorOnOneShard: one row in the middle of a COPY violates a CHECK on its shard. The client gets that
// error once, no shard keeps a row, and the connection goes on.
func testCopyErrorOnOneShard(t *testing.T, e *copyEnv, c *pgx.Conn) {
	ctx := Ctx(t, time.Minute)
	const rows, bad = 200_000, 100_000
	empty := func(what string) {
		t.Helper()
		if got := e.counts(t); slices.ContainsFunc(got, func(n int64) bool { return n != 0 }) {
			t.Errorf("%s: rows per shard %v, want none anywhere", what, got)
		}
	}
	e.truncate(t)

	// pgx: on the error it stops sending and ends the COPY with CopyDone, which must not commit the other
	// shards' rows.
	_, err := c.PgConn().CopyFrom(ctx, &copyReader{format: "text", rows: rows, bad: bad}, "COPY t FROM STDIN")
	wantCode(t, "COPY with a bad row", err, "23514")
	empty("after a COPY failing on one shard")
	var cnt int64
	if err := c.QueryRow(ctx, "SELECT count(*) FROM t").Scan(&cnt); err != nil || cnt != 0 {
		t.Fatalf("SELECT count(*) through pgshard after the failed COPY: %d, %v", cnt, err)
	}

	// The client gives up (CopyFail): nothing anywhere either.
	_, err = c.PgConn().CopyFrom(ctx, io.MultiReader(&copyReader{format: "text", rows: rows, bad: -1}, failingReader{}), "COPY t FROM STDIN")
	wantCode(t, "COPY aborted by the client", err, "57014")
	empty("after a COPY the client aborted")

	// In a transaction block: the transaction fails, ROLLBACK leaves nothing.
	if _, err := c.Exec(ctx, "BEGIN"); err != nil {
		t.Fatal(err)
	}
	_, err = c.PgConn().CopyFrom(ctx, &copyReader{format: "text", rows: rows, bad: bad}, "COPY t FROM STDIN")
	wantCode(t, "COPY with a bad row in a transaction", err, "23514")
	if _, err := c.Exec(ctx, "ROLLBACK"); err != nil {
		t.Fatalf("ROLLBACK: %v", err)
	}
	empty("after a failed COPY in a transaction and ROLLBACK")

	// The protocol as the client sees it: the whole data, then CopyDone, without reading in between; one
	// ErrorResponse, then ReadyForQuery. (A pgx connection logs in; its socket is then taken over.)
	pc := e.connect(t, ctx).PgConn()
	hj, err := pc.Hijack()
	if err != nil {
		t.Fatal(err)
	}
	nc := hj.Conn
	defer nc.Close()
	fe := pgproto3.NewFrontend(nc, nc)
	fe.Send(&pgproto3.Query{String: "COPY t FROM STDIN"})
	if err := fe.Flush(); err != nil {
		t.Fatal(err)
	}
	_ = nc.SetReadDeadline(time.Now().Add(30 * time.Second))
	if m, err := fe.Receive(); err != nil {
		t.Fatal(err)
	} else if _, ok := m.(*pgproto3.CopyInResponse); !ok {
		t.Fatalf("raw COPY: got %s, want CopyInResponse", describe(m))
	}
	var data bytes.Buffer
	_, _ = io.Copy(&data, &copyReader{format: "text", rows: rows, bad: bad})
	_ = nc.SetWriteDeadline(time.Now().Add(30 * time.Second))
	for b := data.Bytes(); len(b) > 0; {
		n := min(len(b), 64<<10)
		fe.Send(&pgproto3.CopyData{Data: b[:n]})
		if err := fe.Flush(); err != nil {
			t.Fatalf("sending COPY data: %v", err)
		}
		b = b[n:]
	}
	fe.Send(&pgproto3.CopyDone{})
	if err := fe.Flush(); err != nil {
		t.Fatal(err)
	}
	var got []string
	for {
		m, err := fe.Receive()
		if err != nil {
			t.Fatalf("raw COPY: %v after %v", err, got)
		}
		got = append(got, describe(m))
		if isReady(m) {
			break
		}
	}
	if len(got) != 2 || !strings.HasPrefix(got[0], "ErrorResponse(ERROR 23514 ") || got[1] != "ReadyForQuery(I)" {
		t.Errorf("raw COPY with a bad row: got %q, want one ErrorResponse 23514 and ReadyForQuery(I)", got)
	}
	empty("after the raw COPY")
	fe.Send(&pgproto3.Query{String: "SELECT count(*) FROM t"})
	_ = fe.Flush()
	got = got[:0]
	for {
		m, err := fe.Receive()
		if err != nil {
			t.Fatalf("query after the raw COPY: %v after %v", err, got)
		}
		got = append(got, describe(m))
		if isReady(m) {
			break
		}
	}
	if !slices.Contains(got, "DataRow[0]") {
		t.Errorf("SELECT count(*) after the raw COPY: %q", got)
	}

	// And a good COPY on the first connection works.
	tag, err := c.PgConn().CopyFrom(ctx, &copyReader{format: "text", rows: 1000, bad: -1}, "COPY t FROM STDIN")
	if err != nil || tag.String() != "COPY 1000" {
		t.Fatalf("COPY after the failures: %q, %v", tag, err)
	}
}
