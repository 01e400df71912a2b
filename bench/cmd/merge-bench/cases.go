package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// The two targets every case runs against, in this order within a repetition.
const (
	Direct  = "direct"
	Pgshard = "pgshard"
)

// Case names.
const (
	caseLimit   = "limit"
	caseScan    = "scan"
	caseOrdered = "ordered"
	caseCopy    = "copy"
	// The coordinator step (docs/cross-shard.md): every row gathered, then a filter pushed to the shards.
	caseCoordinated = "coordinated"
	caseCoordFilter = "coordinated-filtered"
)

var allCases = []string{caseLimit, caseScan, caseOrdered, caseCopy, caseCoordinated, caseCoordFilter}

const (
	limitSQL   = "SELECT id, k, v FROM items ORDER BY k LIMIT 100"
	scanSQL    = "SELECT id, k, v FROM items"
	orderedSQL = "SELECT id, k, v FROM items ORDER BY id"
	copySQL    = "COPY items_copy (id, k, v) FROM STDIN"
	limitRows  = 100

	coordinatedSQL = "SELECT count(DISTINCT k), round(avg(k), 3), max(id) - min(id), stddev(length(v)) FROM items"
	coordFilterSQL = "SELECT count(DISTINCT k), round(avg(k), 3), max(id) - min(id) FROM items WHERE k < 30000"
)

// Run is one execution of a case against one target.
type Run struct {
	Target   string  `json:"target"`
	Rep      int     `json:"rep"` // 0: the discarded warm-up
	Seconds  float64 `json:"seconds"`
	Queries  int     `json:"queries,omitempty"` // case a: queries in this run (Seconds is their sum)
	Rows     int64   `json:"rows"`
	Bytes    int64   `json:"bytes"` // reads: bytes the client received on the wire; COPY: the COPY data sent
	Error    string  `json:"error,omitempty"`
	SQLState string  `json:"sqlstate,omitempty"`
	Wrong    string  `json:"wrong,omitempty"` // the result was wrong: what was wrong
	// pgshard's VmHWM after this run: its peak RSS since the case started.
	PeakRSSKB int64 `json:"pgshard_peak_rss_kb,omitempty"`
}

// target is a place the cases connect to: the reference database directly, or database app through pgshard.
type target struct {
	name     string
	dsn      func() string
	conn     *pgx.Conn
	received atomic.Int64 // bytes read from the server over every connection of this target
}

// countingConn counts the bytes read from the server.
type countingConn struct {
	net.Conn
	n *atomic.Int64
}

func (c countingConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.n.Add(int64(n))
	return n, err
}

// connection returns the target's connection, (re)connecting when there is none or it broke. pgx runs with its
// defaults (statement cache, binary results for the types it knows), as an application would.
func (t *target) connection(ctx context.Context) (*pgx.Conn, error) {
	if t.conn != nil && !t.conn.IsClosed() {
		return t.conn, nil
	}
	cfg, err := pgx.ParseConfig(t.dsn())
	if err != nil {
		return nil, err
	}
	cfg.ConnectTimeout = 30 * time.Second
	d := &net.Dialer{KeepAlive: 5 * time.Minute}
	cfg.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return countingConn{Conn: c, n: &t.received}, nil
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	t.conn = conn
	return conn, nil
}

func (t *target) close() {
	if t.conn != nil {
		_ = t.conn.Close(context.Background())
		t.conn = nil
	}
}

// endRows closes rows and records the run's time and the bytes t received since b0; false, with the error
// recorded, when the rows failed.
func (r *Run) endRows(rows pgx.Rows, t *target, b0 int64, t0 time.Time) bool {
	rows.Close()
	r.Seconds = time.Since(t0).Seconds()
	r.Bytes = t.received.Load() - b0
	if err := rows.Err(); err != nil {
		r.fail(err)
		return false
	}
	return true
}

// fail records err in the run, with its SQLSTATE when it is a server error.
func (r *Run) fail(err error) {
	r.Error = err.Error()
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		r.SQLState = pe.Code
	}
}

// runLimit runs limitSQL queries times in a row. want, when not nil, is the k column the reference returned:
// through pgshard the k values must be the same (the ids of equal k values may come in another order).
func runLimit(ctx context.Context, t *target, conn *pgx.Conn, queries int, want []int32) (Run, []int32) {
	run := Run{Queries: queries}
	b0 := t.received.Load()
	var first []int32
	var total time.Duration
	for q := range queries {
		ks := make([]int32, 0, limitRows)
		t0 := time.Now()
		rows, err := conn.Query(ctx, limitSQL)
		if err != nil {
			run.fail(err)
			return run, nil
		}
		for rows.Next() {
			var id int64
			var k int32
			var v string
			if err := rows.Scan(&id, &k, &v); err != nil {
				rows.Close()
				run.fail(err)
				return run, nil
			}
			ks = append(ks, k)
		}
		rows.Close()
		total += time.Since(t0)
		if err := rows.Err(); err != nil {
			run.fail(err)
			return run, nil
		}
		run.Rows += int64(len(ks))
		if q == 0 {
			first = ks
		}
		if run.Wrong == "" {
			run.Wrong = checkLimit(ks, want)
		}
	}
	run.Seconds = total.Seconds()
	run.Bytes = t.received.Load() - b0
	return run, first
}

// checkLimit says what is wrong with the k column of an ORDER BY k LIMIT 100 ("" when nothing is).
func checkLimit(ks, want []int32) string {
	if want != nil && len(ks) != len(want) {
		return fmt.Sprintf("%d rows, the reference returns %d", len(ks), len(want))
	}
	if want == nil && len(ks) != limitRows {
		return fmt.Sprintf("%d rows, want %d", len(ks), limitRows)
	}
	for i := 1; i < len(ks); i++ {
		if ks[i] < ks[i-1] {
			return fmt.Sprintf("not ordered by k: row %d has k = %d after k = %d", i+1, ks[i], ks[i-1])
		}
	}
	for i := range want {
		if ks[i] != want[i] {
			return fmt.Sprintf("row %d has k = %d, the reference's has k = %d", i+1, ks[i], want[i])
		}
	}
	return ""
}

// runScan streams sql (scanSQL or orderedSQL) to the end. It decodes only id: the rows must be ids 1..total,
// each once (count and sum), and with ordered in that order.
func runScan(ctx context.Context, t *target, conn *pgx.Conn, sql string, total int64, ordered bool) Run {
	var run Run
	b0 := t.received.Load()
	t0 := time.Now()
	rows, err := conn.Query(ctx, sql)
	if err != nil {
		run.fail(err)
		return run
	}
	var sum int64
	format := int16(-1)
	wrongAt := ""
	for rows.Next() {
		if format < 0 {
			format = rows.FieldDescriptions()[0].Format
		}
		raw := rows.RawValues()
		id, err := decodeInt8(raw[0], format)
		if err != nil {
			rows.Close()
			run.fail(err)
			return run
		}
		run.Rows++
		sum += id
		if ordered && wrongAt == "" && id != run.Rows {
			wrongAt = fmt.Sprintf("not ordered by id: row %d has id %d", run.Rows, id)
		}
	}
	if !run.endRows(rows, t, b0, t0) {
		return run
	}
	switch want := total * (total + 1) / 2; {
	case run.Rows != total:
		run.Wrong = fmt.Sprintf("%d rows, want %d", run.Rows, total)
	case sum != want:
		run.Wrong = fmt.Sprintf("the ids sum to %d, want %d (ids missing or repeated)", sum, want)
	case wrongAt != "":
		run.Wrong = wrongAt
	}
	return run
}

// decodeInt8 reads a bigint column value in the text (0) or binary (1) format.
func decodeInt8(b []byte, format int16) (int64, error) {
	if b == nil {
		return 0, errors.New("id is NULL")
	}
	if format == 1 {
		if len(b) != 8 {
			return 0, fmt.Errorf("binary bigint of %d bytes", len(b))
		}
		return int64(binary.BigEndian.Uint64(b)), nil
	}
	return strconv.ParseInt(string(b), 10, 64)
}

// runCopy sends data (text-format COPY rows) with COPY items_copy FROM STDIN and checks the row count of the
// command tag.
func runCopy(ctx context.Context, conn *pgx.Conn, data []byte, rows int64) Run {
	run := Run{Bytes: int64(len(data))}
	t0 := time.Now()
	tag, err := conn.PgConn().CopyFrom(ctx, bytes.NewReader(data), copySQL)
	run.Seconds = time.Since(t0).Seconds()
	if err != nil {
		run.fail(err)
		return run
	}
	run.Rows = tag.RowsAffected()
	if run.Rows != rows {
		run.Wrong = fmt.Sprintf("COPY %d in the command tag, want %d", run.Rows, rows)
	}
	return run
}

// runAnswer runs sql, whose answer is a few rows, and compares them, as text, with want: the reference's
// answer, which the direct run sets when want is empty.
func runAnswer(ctx context.Context, t *target, conn *pgx.Conn, sql string, want *[]string) Run {
	var run Run
	b0 := t.received.Load()
	t0 := time.Now()
	rows, err := conn.Query(ctx, sql, pgx.QueryResultFormats{pgx.TextFormatCode})
	if err != nil {
		run.fail(err)
		return run
	}
	var got []string
	for rows.Next() {
		var line []string
		for _, v := range rows.RawValues() {
			line = append(line, string(v))
		}
		got = append(got, strings.Join(line, "|"))
	}
	if !run.endRows(rows, t, b0, t0) {
		return run
	}
	run.Rows = int64(len(got))
	switch {
	case *want == nil && t.name == Direct:
		*want = got
	case !slices.Equal(got, *want):
		run.Wrong = fmt.Sprintf("answer %q, the reference's is %q", got, *want)
	}
	return run
}
