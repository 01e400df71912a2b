package e2e

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/jackc/pgx/v5/pgtype"
)

// TestProtocol drives the simple and extended query protocols through the proxy in transaction mode. The
// subtests share one cluster and proxy; each uses connections of its own.
func TestProtocol(t *testing.T) {
	t.Parallel()
	e := startEnv(t, envOpts{})
	ctx := Ctx(t, 90*time.Second)

	t.Run("multi-statement simple query", func(t *testing.T) {
		pc := pgconnect(t, ctx, e.pgconnConfig(t))
		res, err := pc.Exec(ctx, "SELECT 1 AS a; SELECT 'x' AS b, 'y' AS c; VALUES (4), (5), (6)").ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		if len(res) != 3 {
			t.Fatalf("got %d results, want 3", len(res))
		}
		want := []struct {
			tag  string
			rows [][]string
		}{
			{"SELECT 1", [][]string{{"1"}}},
			{"SELECT 1", [][]string{{"x", "y"}}},
			{"SELECT 3", [][]string{{"4"}, {"5"}, {"6"}}},
		}
		for i, w := range want {
			if got := res[i].CommandTag.String(); got != w.tag {
				t.Errorf("result %d: tag %q, want %q", i, got, w.tag)
			}
			if got := textRows(res[i].Rows); fmt.Sprint(got) != fmt.Sprint(w.rows) {
				t.Errorf("result %d: rows %v, want %v", i, got, w.rows)
			}
		}

		// An error stops the rest of the string, and the implicit transaction rolls back what ran before it.
		if _, err := pc.Exec(ctx, "CREATE TABLE multi_t (id int)").ReadAll(); err != nil {
			t.Fatal(err)
		}
		res, err = pc.Exec(ctx, "INSERT INTO multi_t VALUES (1); SELECT 1/0; INSERT INTO multi_t VALUES (2)").ReadAll()
		wantCode(t, "multi-statement with division by zero", err, "22012")
		if len(res) != 1 || res[0].CommandTag.String() != "INSERT 0 1" {
			t.Errorf("got %d results, want only the INSERT's before the error", len(res))
		}
		if n := e.pg.QueryString(t, "app_0", "SELECT count(*) FROM multi_t"); n != "0" {
			t.Errorf("multi_t has %s rows after the failed string, want 0 (implicit transaction rolled back)", n)
		}
		if pc.TxStatus() != 'I' {
			t.Errorf("transaction status %q after the error, want I", pc.TxStatus())
		}
		res, err = pc.Exec(ctx, "SELECT 'still usable'").ReadAll()
		if err != nil || len(res) != 1 || string(res[0].Rows[0][0]) != "still usable" {
			t.Fatalf("query after the error: %v %v", res, err)
		}
	})

	t.Run("empty query", func(t *testing.T) {
		pc := pgconnect(t, ctx, e.pgconnConfig(t))
		for _, q := range []string{"", "   ", ";", "-- just a comment"} {
			res, err := pc.Exec(ctx, q).ReadAll()
			if err != nil {
				t.Fatalf("simple query %q: %v", q, err)
			}
			for _, r := range res {
				if r.Err != nil || len(r.Rows) != 0 {
					t.Fatalf("simple query %q: result %+v", q, r)
				}
			}
		}
		// Extended protocol: Parse of "" then Execute gives EmptyQueryResponse.
		if _, err := pc.ExecParams(ctx, "", nil, nil, nil, nil).Close(); err != nil {
			t.Fatalf("extended empty query: %v", err)
		}
		r := e.rawLogin(t)
		r.send(t, &pgproto3.Query{String: ""})
		got, err := r.receiveUntil(t, 10*time.Second, isReady)
		if err != nil || fmt.Sprint(got) != "[EmptyQueryResponse ReadyForQuery(I)]" {
			t.Fatalf("raw empty query: got %v %v, want [EmptyQueryResponse ReadyForQuery(I)]", got, err)
		}
		res, err := pc.Exec(ctx, "SELECT 7").ReadAll()
		if err != nil || string(res[0].Rows[0][0]) != "7" {
			t.Fatalf("query after empty ones: %v %v", res, err)
		}
	})

	t.Run("notice", func(t *testing.T) {
		var mu sync.Mutex
		var notices []*pgconn.Notice
		cfg := e.pgconnConfig(t)
		cfg.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) {
			mu.Lock()
			defer mu.Unlock()
			notices = append(notices, n)
		}
		pc := pgconnect(t, ctx, cfg)
		_, err := pc.Exec(ctx, `DO $$ BEGIN RAISE NOTICE 'hello %', 42; RAISE WARNING 'careful' USING HINT = 'a hint'; END $$`).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		defer mu.Unlock()
		if len(notices) != 2 {
			t.Fatalf("got %d notices, want 2: %+v", len(notices), notices)
		}
		if n := notices[0]; n.Severity != "NOTICE" || n.Message != "hello 42" || n.Code != "00000" {
			t.Errorf("first notice %+v, want NOTICE 00000 'hello 42'", n)
		}
		if n := notices[1]; n.Severity != "WARNING" || n.Message != "careful" || n.Hint != "a hint" {
			t.Errorf("second notice %+v, want WARNING 'careful' with hint", n)
		}
	})

	t.Run("batch with an error in the middle", func(t *testing.T) {
		c := e.connectMode(t, ctx, pgx.QueryExecModeExec)
		if _, err := c.Exec(ctx, "CREATE TABLE batch_t (id int PRIMARY KEY)"); err != nil {
			t.Fatal(err)
		}
		b := &pgx.Batch{}
		b.Queue("INSERT INTO batch_t VALUES (1)")
		b.Queue("SELECT 10 / $1::int", 0)
		b.Queue("INSERT INTO batch_t VALUES (2)")
		b.Queue("SELECT 4")
		br := c.SendBatch(ctx, b)
		if _, err := br.Exec(); err != nil {
			t.Fatalf("first query of the batch: %v", err)
		}
		_, err := br.Exec()
		wantCode(t, "second query of the batch", err, "22012")
		if _, err := br.Exec(); err == nil {
			t.Error("third query of the batch succeeded; it should be skipped after the error (until Sync)")
		}
		var four int
		if err := br.QueryRow().Scan(&four); err == nil {
			t.Error("fourth query of the batch succeeded; it should be skipped after the error (until Sync)")
		}
		wantCode(t, "closing the batch", br.Close(), "22012")
		// The batch was one implicit transaction: the first INSERT is rolled back too.
		if n := e.pg.QueryString(t, "app_0", "SELECT count(*) FROM batch_t"); n != "0" {
			t.Errorf("batch_t has %s rows, want 0", n)
		}
		// The connection is usable after the Sync; a good batch then works in one go.
		b = &pgx.Batch{}
		for i := 1; i <= 5; i++ {
			b.Queue("INSERT INTO batch_t VALUES ($1)", i)
		}
		b.Queue("SELECT count(*) FROM batch_t")
		br = c.SendBatch(ctx, b)
		for i := 1; i <= 5; i++ {
			if _, err := br.Exec(); err != nil {
				t.Fatalf("insert %d of the second batch: %v", i, err)
			}
		}
		var n int
		if err := br.QueryRow().Scan(&n); err != nil || n != 5 {
			t.Fatalf("count in the second batch: %d %v, want 5", n, err)
		}
		if err := br.Close(); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("pipeline with several syncs", func(t *testing.T) {
		pc := pgconnect(t, ctx, e.pgconnConfig(t))
		if _, err := pc.Exec(ctx, "CREATE TABLE pipe_t (id int)").ReadAll(); err != nil {
			t.Fatal(err)
		}
		p := pc.StartPipeline(ctx)
		p.SendQueryParams("INSERT INTO pipe_t VALUES ($1)", [][]byte{[]byte("1")}, nil, nil, nil)
		p.SendPipelineSync()
		p.SendQueryParams("SELECT 1 / 0", nil, nil, nil, nil)
		p.SendQueryParams("INSERT INTO pipe_t VALUES (2)", nil, nil, nil, nil)
		p.SendPipelineSync()
		p.SendQueryParams("INSERT INTO pipe_t VALUES (3)", nil, nil, nil, nil)
		p.SendQueryParams("SELECT count(*), sum(id) FROM pipe_t", nil, nil, nil, nil)
		p.SendPipelineSync()
		if err := p.Flush(); err != nil {
			t.Fatal(err)
		}
		var got []string
		for {
			r, err := p.GetResults()
			if err != nil {
				got = append(got, "error "+pgCode(err))
				continue
			}
			if r == nil {
				break
			}
			switch r := r.(type) {
			case *pgconn.ResultReader:
				res := r.Read()
				if res.Err != nil {
					got = append(got, "error "+pgCode(res.Err))
				} else {
					got = append(got, fmt.Sprintf("%s %v", res.CommandTag, textRows(res.Rows)))
				}
			case *pgconn.PipelineSync:
				got = append(got, "sync")
			default:
				got = append(got, fmt.Sprintf("%T", r))
			}
			if len(got) > 20 {
				break
			}
		}
		if err := p.Close(); err != nil {
			t.Fatalf("closing the pipeline: %v", err)
		}
		want := "[INSERT 0 1 [] sync error 22012 sync INSERT 0 1 [] SELECT 1 [[2 4]] sync]"
		if fmt.Sprint(got) != want {
			t.Fatalf("pipeline results\n got %v\nwant %s", got, want)
		}
		if n := e.pg.QueryString(t, "app_0", "SELECT string_agg(id::text, ',' ORDER BY id) FROM pipe_t"); n != "1,3" {
			t.Errorf("pipe_t holds %s, want 1,3", n)
		}
	})

	t.Run("unnamed statements and portals", func(t *testing.T) {
		r := e.rawLogin(t)
		// Unnamed statement, unnamed portal fetched two rows at a time, all before one Sync.
		r.send(t,
			&pgproto3.Parse{Query: "SELECT g FROM generate_series(1, 5) g WHERE g >= $1", ParameterOIDs: []uint32{23}},
			&pgproto3.Describe{ObjectType: 'S'},
			&pgproto3.Bind{Parameters: [][]byte{[]byte("1")}},
			&pgproto3.Describe{ObjectType: 'P'},
			&pgproto3.Execute{MaxRows: 2},
			&pgproto3.Execute{MaxRows: 2},
			&pgproto3.Execute{},
			&pgproto3.Close{ObjectType: 'P'},
			&pgproto3.Close{ObjectType: 'S'},
			&pgproto3.Sync{})
		got, err := r.receiveUntil(t, 10*time.Second, isReady)
		if err != nil {
			t.Fatalf("%v (got %v)", err, got)
		}
		want := "[ParseComplete ParameterDescription RowDescription BindComplete RowDescription DataRow[1] DataRow[2] " +
			"PortalSuspended DataRow[3] DataRow[4] PortalSuspended DataRow[5] CommandComplete(SELECT 1) " +
			"CloseComplete CloseComplete ReadyForQuery(I)]"
		if fmt.Sprint(got) != want {
			t.Fatalf("unnamed portal\n got %v\nwant %s", got, want)
		}

		// In a transaction a named portal lives across Syncs: the proxy must keep the same server.
		r.send(t, &pgproto3.Query{String: "BEGIN"})
		if _, err := r.receiveUntil(t, 10*time.Second, isReady); err != nil {
			t.Fatal(err)
		}
		r.send(t,
			&pgproto3.Parse{Query: "SELECT g FROM generate_series(1, 3) g"},
			&pgproto3.Bind{DestinationPortal: "p1"},
			&pgproto3.Execute{Portal: "p1", MaxRows: 2},
			&pgproto3.Sync{})
		got, err = r.receiveUntil(t, 10*time.Second, isReady)
		if err != nil || fmt.Sprint(got) != "[ParseComplete BindComplete DataRow[1] DataRow[2] PortalSuspended ReadyForQuery(T)]" {
			t.Fatalf("named portal, first part: %v %v", got, err)
		}
		r.send(t, &pgproto3.Execute{Portal: "p1"}, &pgproto3.Sync{})
		got, err = r.receiveUntil(t, 10*time.Second, isReady)
		if err != nil || fmt.Sprint(got) != "[DataRow[3] CommandComplete(SELECT 1) ReadyForQuery(T)]" {
			t.Fatalf("named portal, second part: %v %v", got, err)
		}
		// The unnamed statement too survives Syncs inside the transaction.
		r.send(t, &pgproto3.Bind{}, &pgproto3.Execute{}, &pgproto3.Sync{})
		got, err = r.receiveUntil(t, 10*time.Second, isReady)
		if err != nil || fmt.Sprint(got) != "[BindComplete DataRow[1] DataRow[2] DataRow[3] CommandComplete(SELECT 3) ReadyForQuery(T)]" {
			t.Fatalf("unnamed statement reused in the transaction: %v %v", got, err)
		}
		r.send(t, &pgproto3.Query{String: "COMMIT"})
		got, err = r.receiveUntil(t, 10*time.Second, isReady)
		if err != nil || got[len(got)-1] != "ReadyForQuery(I)" {
			t.Fatalf("COMMIT: %v %v", got, err)
		}

		// pgconn's unnamed prepare and execute, inside a transaction.
		pc := pgconnect(t, ctx, e.pgconnConfig(t))
		if _, err := pc.Exec(ctx, "BEGIN").ReadAll(); err != nil {
			t.Fatal(err)
		}
		sd, err := pc.Prepare(ctx, "", "SELECT $1::int8 * 3", nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(sd.ParamOIDs) != 1 || sd.ParamOIDs[0] != pgtype.Int8OID || len(sd.Fields) != 1 {
			t.Fatalf("statement description %+v", sd)
		}
		for _, v := range []string{"5", "7"} {
			res := pc.ExecPrepared(ctx, "", [][]byte{[]byte(v)}, nil, nil).Read()
			if res.Err != nil {
				t.Fatal(res.Err)
			}
			if got := string(res.Rows[0][0]); got != map[string]string{"5": "15", "7": "21"}[v] {
				t.Fatalf("unnamed statement with %s gave %s", v, got)
			}
		}
		if _, err := pc.Exec(ctx, "COMMIT").ReadAll(); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("binary parameters and results", func(t *testing.T) {
		pc := pgconnect(t, ctx, e.pgconnConfig(t))
		m := pgtype.NewMap()
		var num pgtype.Numeric
		if err := num.Scan("-12345678901234567890.000000000123456789"); err != nil {
			t.Fatal(err)
		}
		ts := time.Date(2024, 2, 29, 23, 59, 59, 123456000, time.UTC)
		blob := make([]byte, 256)
		for i := range blob {
			blob[i] = byte(i)
		}
		enc := func(oid uint32, v any) []byte {
			b, err := m.Encode(oid, pgtype.BinaryFormatCode, v, nil)
			if err != nil {
				t.Fatal(err)
			}
			return b
		}
		params := [][]byte{enc(pgtype.Int8OID, int64(math.MinInt64)), enc(pgtype.ByteaOID, blob),
			enc(pgtype.NumericOID, num), enc(pgtype.TimestamptzOID, ts)}
		sum := md5.Sum(blob)
		res := pc.ExecParams(ctx, `SELECT $1::int8, $2::bytea, $3::numeric, $4::timestamptz,
				$1 = -9223372036854775808, length($2), md5($2), $3::text, $4 = '2024-02-29 23:59:59.123456+00'`,
			params, []uint32{pgtype.Int8OID, pgtype.ByteaOID, pgtype.NumericOID, pgtype.TimestamptzOID},
			[]int16{pgtype.BinaryFormatCode}, []int16{pgtype.BinaryFormatCode}).Read()
		if res.Err != nil {
			t.Fatal(res.Err)
		}
		if len(res.Rows) != 1 {
			t.Fatalf("%d rows", len(res.Rows))
		}
		for i, f := range res.FieldDescriptions {
			if f.Format != pgtype.BinaryFormatCode {
				t.Errorf("column %d (%s) came back in format %d, want binary", i, f.Name, f.Format)
			}
		}
		row := res.Rows[0]
		var (
			gotInt   int64
			gotBlob  []byte
			gotNum   pgtype.Numeric
			gotTS    time.Time
			intEq    bool
			blobLen  int32
			blobMD5  string
			numText  string
			tsEq     bool
			scanErrs []error
		)
		scan := func(oid uint32, src []byte, dst any) {
			scanErrs = append(scanErrs, m.Scan(oid, pgtype.BinaryFormatCode, src, dst))
		}
		scan(pgtype.Int8OID, row[0], &gotInt)
		scan(pgtype.ByteaOID, row[1], &gotBlob)
		scan(pgtype.NumericOID, row[2], &gotNum)
		scan(pgtype.TimestamptzOID, row[3], &gotTS)
		scan(pgtype.BoolOID, row[4], &intEq)
		scan(pgtype.Int4OID, row[5], &blobLen)
		scan(pgtype.TextOID, row[6], &blobMD5)
		scan(pgtype.TextOID, row[7], &numText)
		scan(pgtype.BoolOID, row[8], &tsEq)
		for _, err := range scanErrs {
			if err != nil {
				t.Fatal(err)
			}
		}
		if gotInt != math.MinInt64 || !intEq {
			t.Errorf("int8: got %d (server equal: %v)", gotInt, intEq)
		}
		if !bytes.Equal(gotBlob, blob) || blobLen != 256 || blobMD5 != hex.EncodeToString(sum[:]) {
			t.Errorf("bytea: got %d bytes, server saw length %d md5 %s", len(gotBlob), blobLen, blobMD5)
		}
		if v, _ := gotNum.Value(); v != "-12345678901234567890.000000000123456789" || numText != "-12345678901234567890.000000000123456789" {
			t.Errorf("numeric: got %v, server saw %s", v, numText)
		}
		if !gotTS.Equal(ts) || !tsEq {
			t.Errorf("timestamptz: got %v (server equal: %v), want %v", gotTS, tsEq, ts)
		}

		// The same through pgx's high-level API, which picks binary formats itself once it knows the types.
		c := e.connectMode(t, ctx, pgx.QueryExecModeCacheDescribe)
		var (
			i8 int64
			bb []byte
			nn pgtype.Numeric
			tt time.Time
		)
		rows, err := c.Query(ctx, "SELECT $1::int8, $2::bytea, $3::numeric, $4::timestamptz", int64(math.MaxInt64), blob, num, ts)
		if err != nil {
			t.Fatal(err)
		}
		for i, f := range rows.FieldDescriptions() {
			if f.Format != pgtype.BinaryFormatCode {
				t.Errorf("pgx: column %d came back in format %d, want binary", i, f.Format)
			}
		}
		if !rows.Next() {
			t.Fatalf("no row: %v", rows.Err())
		}
		if err := rows.Scan(&i8, &bb, &nn, &tt); err != nil {
			t.Fatal(err)
		}
		rows.Close()
		if v, _ := nn.Value(); i8 != math.MaxInt64 || !bytes.Equal(bb, blob) || v != "-12345678901234567890.000000000123456789" || !tt.Equal(ts) {
			t.Errorf("pgx round trip: %d %x %v %v", i8, bb, v, tt)
		}
	})

	t.Run("large values", func(t *testing.T) {
		const outLen = 5 << 20
		for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeExec} {
			c := e.connectMode(t, ctx, mode)
			var s string
			if err := c.QueryRow(ctx, fmt.Sprintf("SELECT repeat('ab', %d)", outLen/2)).Scan(&s); err != nil {
				t.Fatalf("%v: 5 MB value out: %v", mode, err)
			}
			if len(s) != outLen || s != strings.Repeat("ab", outLen/2) {
				t.Fatalf("%v: 5 MB value out: got %d bytes", mode, len(s))
			}
			// The stream after the large message is intact.
			var n int
			if err := c.QueryRow(ctx, "SELECT 99").Scan(&n); err != nil || n != 99 {
				t.Fatalf("%v: query after the large value: %d %v", mode, n, err)
			}
		}

		c := e.connectMode(t, ctx, pgx.QueryExecModeCacheDescribe)
		in := make([]byte, 500<<10)
		for i := range in {
			in[i] = 'a' + byte(i*7%26)
		}
		sum := md5.Sum(in)
		var n int
		var h string
		if err := c.QueryRow(ctx, "SELECT length($1::text), md5($1::text)", string(in)).Scan(&n, &h); err != nil {
			t.Fatalf("500 KB text parameter: %v", err)
		}
		if n != len(in) || h != hex.EncodeToString(sum[:]) {
			t.Fatalf("500 KB text parameter: server saw %d bytes, md5 %s", n, h)
		}
		if err := c.QueryRow(ctx, "SELECT length($1::bytea), md5($1::bytea)", in).Scan(&n, &h); err != nil {
			t.Fatalf("500 KB bytea parameter: %v", err)
		}
		if n != len(in) || h != hex.EncodeToString(sum[:]) {
			t.Fatalf("500 KB bytea parameter: server saw %d bytes, md5 %s", n, h)
		}
	})

	t.Run("failed transaction", func(t *testing.T) {
		c := e.connectMode(t, ctx, pgx.QueryExecModeExec)
		if _, err := c.Exec(ctx, "BEGIN"); err != nil {
			t.Fatal(err)
		}
		_, err := c.Exec(ctx, "SELECT 1/0")
		wantCode(t, "division by zero in a transaction", err, "22012")
		_, err = c.Exec(ctx, "SELECT 1")
		wantCode(t, "query in the failed transaction", err, "25P02")
		if st := c.PgConn().TxStatus(); st != 'E' {
			t.Errorf("transaction status %q, want E", st)
		}
		if _, err := c.Exec(ctx, "ROLLBACK"); err != nil {
			t.Fatal(err)
		}
		var n int
		if err := c.QueryRow(ctx, "SELECT 8").Scan(&n); err != nil || n != 8 {
			t.Fatalf("after ROLLBACK: %d %v", n, err)
		}
	})

	t.Run("copy", func(t *testing.T) {
		c := e.connectMode(t, ctx, pgx.QueryExecModeExec)
		if _, err := c.Exec(ctx, "CREATE TABLE items (id int8 PRIMARY KEY, name text, price numeric)"); err != nil {
			t.Fatal(err)
		}
		const nrows = 10000
		n, err := c.CopyFrom(ctx, pgx.Identifier{"items"}, []string{"id", "name", "price"},
			pgx.CopyFromSlice(nrows, func(i int) ([]any, error) {
				return []any{int64(i + 1), fmt.Sprintf("item %d\twith tab", i+1), fmt.Sprintf("%d.25", i)}, nil
			}))
		if err != nil {
			t.Fatalf("pgx CopyFrom: %v", err)
		}
		if n != nrows {
			t.Fatalf("pgx CopyFrom copied %d rows, want %d", n, nrows)
		}
		if got := e.pg.QueryString(t, "app_0", "SELECT count(*) || ' ' || sum(id) || ' ' || sum(price) FROM items"); got != "10000 50005000 49997500.00" {
			t.Errorf("items on the cluster: %s", got)
		}

		pc := c.PgConn()
		var text strings.Builder
		for i := 0; i < 1000; i++ {
			fmt.Fprintf(&text, "%d\tname\\t%d\t\\N\n", 100000+i, i)
		}
		tag, err := pc.CopyFrom(ctx, strings.NewReader(text.String()), "COPY items FROM STDIN")
		if err != nil {
			t.Fatalf("pgconn CopyFrom (text): %v", err)
		}
		if tag.RowsAffected() != 1000 || tag.String() != "COPY 1000" {
			t.Fatalf("pgconn CopyFrom tag %q", tag)
		}
		if got := e.pg.QueryString(t, "app_0", "SELECT count(*) FROM items WHERE price IS NULL AND name LIKE 'name\t%'"); got != "1000" {
			t.Errorf("text COPY rows on the cluster: %s, want 1000", got)
		}

		// Bad data: the COPY fails as a whole, and the connection goes on.
		_, err = pc.CopyFrom(ctx, strings.NewReader("1\tx\t1\nnot-a-number\ty\t2\n"), "COPY items FROM STDIN")
		wantCode(t, "COPY with bad data", err, "22P02")
		if got := e.pg.QueryString(t, "app_0", "SELECT count(*) FROM items"); got != "11000" {
			t.Errorf("items after the failed COPY: %s, want 11000", got)
		}

		// The client aborts its COPY (CopyFail): the server reports it, nothing is loaded, the connection goes on.
		_, err = pc.CopyFrom(ctx, io.MultiReader(strings.NewReader("200000\tz\t1\n"), failingReader{}), "COPY items FROM STDIN")
		wantCode(t, "COPY aborted by the client", err, "57014")
		if got := e.pg.QueryString(t, "app_0", "SELECT count(*) FROM items"); got != "11000" {
			t.Errorf("items after the aborted COPY: %s, want 11000", got)
		}

		var out bytes.Buffer
		tag, err = pc.CopyTo(ctx, &out, "COPY (SELECT id, name, price FROM items ORDER BY id) TO STDOUT")
		if err != nil {
			t.Fatalf("CopyTo: %v", err)
		}
		lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
		if tag.RowsAffected() != 11000 || len(lines) != 11000 {
			t.Fatalf("CopyTo: tag %q, %d lines, want 11000", tag, len(lines))
		}
		if lines[0] != "1\titem 1\\twith tab\t0.25" || lines[10999] != "100999\tname\\t999\t\\N" {
			t.Errorf("CopyTo: first line %q, last %q", lines[0], lines[10999])
		}
		out.Reset()
		tag, err = pc.CopyTo(ctx, &out, "COPY items TO STDOUT (FORMAT csv, HEADER)")
		if err != nil || tag.RowsAffected() != 11000 || strings.Count(out.String(), "\n") != 11001 {
			t.Fatalf("CopyTo csv: %q %v, %d lines", tag, err, strings.Count(out.String(), "\n"))
		}
		var cnt int
		if err := c.QueryRow(ctx, "SELECT count(*) FROM items").Scan(&cnt); err != nil || cnt != 11000 {
			t.Fatalf("query after COPY: %d %v", cnt, err)
		}
	})
}

// failingReader fails, making pgconn abort a COPY FROM STDIN with CopyFail.
type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("the client gives up") }

// textRows turns raw rows into strings.
func textRows(rows [][][]byte) [][]string {
	out := make([][]string, len(rows))
	for i, r := range rows {
		out[i] = make([]string, len(r))
		for j, v := range r {
			out[i][j] = string(v)
		}
	}
	return out
}

// TestMessageTooLarge sends a parameter larger than limits.max_message_size (1MB in the test config): the
// client gets 08P01 and its connection is closed; the proxy keeps serving others. The refusal races with the
// client still writing its message, so it is tried on several connections: each must see the error.
func TestMessageTooLarge(t *testing.T) {
	t.Parallel()
	e := startEnv(t, envOpts{size: 1})
	ctx := Ctx(t, 60*time.Second)
	// CacheDescribe sends the bytea parameter in binary: the Bind message is the parameter's size plus a little.
	c := e.connectMode(t, ctx, pgx.QueryExecModeCacheDescribe)
	var n int
	if err := c.QueryRow(ctx, "SELECT length($1::bytea)", make([]byte, 900<<10)).Scan(&n); err != nil || n != 900<<10 {
		t.Fatalf("900 KB parameter (under the limit): %d %v", n, err)
	}
	// 2 MB mostly fits in the sockets' buffers, so pgx has written it all when the proxy refuses it; 16 MB does
	// not, so the proxy refuses it while pgx is still writing.
	var failures []string
	attempts := 0
	for _, size := range []int{2 << 20, 2 << 20, 2 << 20, 2 << 20, 2 << 20, 2 << 20, 2 << 20, 2 << 20, 16 << 20, 16 << 20} {
		attempts++
		c := e.connectMode(t, ctx, pgx.QueryExecModeCacheDescribe)
		err := c.QueryRow(ctx, "SELECT length($1::bytea)", make([]byte, size)).Scan(&n)
		if pe := pgError(err); pe == nil || pe.Code != "08P01" || pe.Severity != "FATAL" {
			failures = append(failures, fmt.Sprintf("%d MB: %v", size>>20, err))
		}
		if !waitFor(2*time.Second, c.IsClosed) {
			failures = append(failures, fmt.Sprintf("%d MB: the connection is still open after the refusal", size>>20))
		}
	}
	if len(failures) > 0 {
		t.Errorf("%d of %d clients sending a message over max_message_size did not get a FATAL 08P01:\n%s",
			len(failures), attempts, strings.Join(failures, "\n"))
	}
	c2 := e.connectMode(t, ctx, pgx.QueryExecModeExec)
	if err := c2.QueryRow(ctx, "SELECT 1").Scan(&n); err != nil {
		t.Fatalf("another client after the refusals: %v", err)
	}
	if err := c.QueryRow(ctx, "SELECT 2").Scan(&n); err != nil || n != 2 {
		t.Fatalf("the first client after the others' refusals: %d %v", n, err)
	}
}

// TestCancel cancels a long query through the proxy with pgx's CancelRequest; the query fails with 57014
// within a few seconds and both the connection and the pool stay usable. A CancelRequest with a wrong key
// cancels nothing.
func TestCancel(t *testing.T) {
	t.Parallel()
	e := startEnv(t, envOpts{size: 1})
	ctx := Ctx(t, 60*time.Second)
	cfg, err := pgx.ParseConfig(e.dsn("app", "secret"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.DefaultQueryExecMode = pgx.QueryExecModeExec
	cfg.BuildContextWatcherHandler = cancelRequestHandler
	c, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())

	qctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	start := time.Now()
	_, err = c.Exec(qctx, "SELECT pg_sleep(30)")
	cancel()
	elapsed := time.Since(start)
	wantCode(t, "canceled pg_sleep", err, "57014")
	if elapsed > 3*time.Second {
		t.Errorf("the canceled query returned after %v, want within ~3s", elapsed)
	}
	if c.IsClosed() {
		t.Fatal("the connection was closed by the cancel")
	}
	var n int
	if err := c.QueryRow(ctx, "SELECT 5").Scan(&n); err != nil || n != 5 {
		t.Fatalf("same connection after the cancel: %d %v", n, err)
	}
	if got := e.pg.QueryString(t, "postgres", "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(30)%' AND state = 'active'"); got != "0" {
		t.Errorf("%s backends still run pg_sleep(30) after the cancel", got)
	}
	c2 := e.connectMode(t, ctx, pgx.QueryExecModeExec)
	if err := c2.QueryRow(ctx, "SELECT 6").Scan(&n); err != nil || n != 6 {
		t.Fatalf("another client on the size-1 pool after the cancel: %d %v", n, err)
	}

	// A CancelRequest with the right pid and a wrong key must not cancel anything.
	done := make(chan error, 1)
	go func() {
		_, err := c.Exec(ctx, "SELECT pg_sleep(1.5)")
		done <- err
	}()
	if !waitFor(5*time.Second, func() bool {
		return e.pg.QueryString(t, "postgres", "SELECT count(*) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(1.5)' AND state = 'active'") == "1"
	}) {
		t.Fatal("pg_sleep(1.5) did not show up as active")
	}
	key := append([]byte(nil), c.PgConn().SecretKey()...)
	for i := range key {
		key[i] ^= 0xff
	}
	sendCancel(t, e, c.PgConn().PID(), key)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("query with a wrong-key CancelRequest sent for it: %v, want success", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("pg_sleep(1.5) did not return")
	}
}

// sendCancel sends a CancelRequest to the proxy on a connection of its own.
func sendCancel(t *testing.T, e *env, pid uint32, key []byte) {
	t.Helper()
	r := e.dialRaw(t)
	buf, err := (&pgproto3.CancelRequest{ProcessID: pid, SecretKey: key}).Encode(nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Write(buf); err != nil {
		t.Fatal(err)
	}
	// The proxy closes a cancel connection without an answer.
	if _, _, err := readAllUntilEOF(r, 5*time.Second); err != nil && !isEOF(err) {
		t.Logf("cancel connection ended with %v", err)
	}
}

// TestTerminateInTransaction closes a client (Terminate) in the middle of a transaction: its work is rolled
// back and the server connection goes back to the pool idle, not idle in transaction.
func TestTerminateInTransaction(t *testing.T) {
	t.Parallel()
	e := startEnv(t, envOpts{size: 1})
	ctx := Ctx(t, 60*time.Second)
	c := e.connectMode(t, ctx, pgx.QueryExecModeExec)
	if _, err := c.Exec(ctx, "CREATE TABLE term_t (id int)"); err != nil {
		t.Fatal(err)
	}
	var pid int
	if err := c.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pid); err != nil {
		t.Fatal(err)
	}
	tx, err := c.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "INSERT INTO term_t VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	if got := e.backendStates(t); fmt.Sprint(got) != "[idle in transaction]" {
		t.Fatalf("backends of app during the transaction: %v", got)
	}
	if err := c.Close(ctx); err != nil {
		t.Fatal(err)
	}
	var states []string
	if !waitFor(2*time.Second, func() bool {
		states = e.backendStates(t)
		return fmt.Sprint(states) == "[idle]"
	}) {
		t.Fatalf("backends of app after the client left: %v, want one idle", states)
	}
	if got := e.pg.QueryString(t, "postgres", "SELECT pid FROM pg_stat_activity WHERE usename = 'app'"); got != fmt.Sprint(pid) {
		t.Errorf("the idle backend is pid %s, want the same server connection %d back in the pool", got, pid)
	}
	if n := e.pg.QueryString(t, "app_0", "SELECT count(*) FROM term_t"); n != "0" {
		t.Errorf("term_t has %s rows: the abandoned transaction was committed", n)
	}
	c2 := e.connectMode(t, ctx, pgx.QueryExecModeExec)
	var st string
	if err := c2.QueryRow(ctx, "SELECT count(*)::text FROM term_t").Scan(&st); err != nil || st != "0" {
		t.Fatalf("next client: %q %v", st, err)
	}
}

// TestServerDiesMidQuery kills the backend serving a client's query: the client gets an error at once (the
// server's 57P01 or the proxy's 08006), and the pool makes a new server connection for the next client.
func TestServerDiesMidQuery(t *testing.T) {
	t.Parallel()
	e := startEnv(t, envOpts{size: 1})
	ctx := Ctx(t, 60*time.Second)
	c := e.connectMode(t, ctx, pgx.QueryExecModeExec)
	done := make(chan error, 1)
	go func() {
		_, err := c.Exec(ctx, "SELECT pg_sleep(30)")
		done <- err
	}()
	var pid string
	if !waitFor(5*time.Second, func() bool {
		rows := e.pg.QueryStrings(t, "postgres", "SELECT pid FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(30)' AND state = 'active'")
		if len(rows) == 1 {
			pid = rows[0][0]
		}
		return pid != ""
	}) {
		t.Fatal("pg_sleep(30) did not show up as active")
	}
	killed := time.Now()
	if got := e.pg.QueryString(t, "postgres", "SELECT pg_terminate_backend("+pid+")"); got != "t" {
		t.Fatalf("pg_terminate_backend: %s", got)
	}
	select {
	case err := <-done:
		if d := time.Since(killed); d > 3*time.Second {
			t.Errorf("the client learned of the dead server after %v", d)
		}
		wantCode(t, "query on a killed server", err, "57P01", "08006")
	case <-time.After(10 * time.Second):
		t.Fatal("the client got no error 10s after its server was killed")
	}
	c2 := e.connectMode(t, ctx, pgx.QueryExecModeExec)
	var newPid string
	if err := c2.QueryRow(ctx, "SELECT pg_backend_pid()::text").Scan(&newPid); err != nil {
		t.Fatalf("new client after the server died: %v", err)
	}
	if newPid == pid {
		t.Errorf("served by the killed backend %s", pid)
	}
}

// TestStartupTimeout: a connection that sends nothing gets a FATAL 08P01 after client_startup_timeout (2s) and
// is closed.
func TestStartupTimeout(t *testing.T) {
	t.Parallel()
	e := startEnv(t, envOpts{})
	check := func(t *testing.T, r *rawConn) {
		t.Helper()
		data, took, err := readAllUntilEOF(r, 8*time.Second)
		if !isEOF(err) {
			t.Fatalf("the connection was not closed: %v after %v (read %q)", err, took, data)
		}
		if took < 1500*time.Millisecond || took > 3500*time.Millisecond {
			t.Errorf("closed after %v, want about 2s", took)
		}
		msgs, err := decodeBackend(data)
		if err != nil {
			t.Fatalf("decoding %q: %v", data, err)
		}
		var last string
		if len(msgs) > 0 {
			last = describe(msgs[len(msgs)-1])
		}
		if !strings.HasPrefix(last, "ErrorResponse(FATAL 08P01 ") {
			t.Fatalf("got %d messages ending with %q, want a FATAL 08P01 ErrorResponse", len(msgs), last)
		}
	}
	t.Run("silent", func(t *testing.T) {
		t.Parallel()
		check(t, e.dialRaw(t))
	})
	t.Run("no password", func(t *testing.T) {
		t.Parallel()
		// The startup packet comes, the SCRAM answer never does.
		r := e.dialRaw(t)
		r.send(t, &startupApp)
		check(t, r)
	})
}

// TestSlowClientBoundedMemory: a client that asks for 300 MB and does not read must not make the proxy buffer
// the result (limits.client_outbound_buffer, 8 MB by default, bounds it); once the client reads, the result
// arrives whole.
func TestSlowClientBoundedMemory(t *testing.T) {
	t.Parallel()
	e := startEnv(t, envOpts{size: 1})
	const rows, rowSize = 300, 1 << 20
	r := e.rawLogin(t)
	rssBefore, _ := e.proxy.rssKB(t)
	r.send(t, &pgproto3.Query{String: fmt.Sprintf("SELECT repeat('x', %d) FROM generate_series(1, %d)", rowSize, rows)})
	time.Sleep(2 * time.Second) // the client reads nothing; the server has long produced the result
	rssStalled, _ := e.proxy.rssKB(t)

	_ = r.SetReadDeadline(time.Now().Add(30 * time.Second))
	n := 0
	var tail []string
	for {
		m, err := r.fe.Receive()
		if err != nil {
			t.Fatalf("after %d rows: %v", n, err)
		}
		if d, ok := m.(*pgproto3.DataRow); ok {
			if len(d.Values) != 1 || len(d.Values[0]) != rowSize {
				t.Fatalf("row %d has a value of %d bytes", n, len(d.Values[0]))
			}
			n++
			continue
		}
		tail = append(tail, describe(m))
		if isReady(m) {
			break
		}
	}
	_, peak := e.proxy.rssKB(t)
	t.Logf("proxy RSS: %d kB before, %d kB while the client stalled, peak %d kB", rssBefore, rssStalled, peak)
	if n != rows || fmt.Sprint(tail) != "[RowDescription CommandComplete(SELECT 300) ReadyForQuery(I)]" {
		t.Errorf("got %d rows and %v", n, tail)
	}
	if peak-rssBefore > 96<<10 {
		t.Errorf("the proxy's memory grew by %d MB for one slow client of a %d MB result (peak RSS %d MB)",
			(peak-rssBefore)>>10, rows*rowSize>>20, peak>>10)
	}
}
