package main

import (
	"context"
	"fmt"
	"math"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// DataSetup describes the source database the runs copy; it goes into the report.
type DataSetup struct {
	Rows         int64   `json:"accounts_rows"`
	TableBytes   int64   `json:"accounts_bytes"`      // pg_relation_size(accounts) after the fill: the heap alone
	IndexBytes   int64   `json:"accounts_pkey_bytes"` // its primary key
	BytesPerRow  float64 `json:"bytes_per_row"`
	SetupSeconds float64 `json:"setup_seconds"`
}

// sourceSchema: a pgbench_accounts-like table sharded by aid, and the history table the write load inserts into
// (its primary key holds aid, as the reshard asks of a sharded table).
const sourceSchema = `
CREATE TABLE accounts (aid bigint NOT NULL, bid integer NOT NULL, abalance integer NOT NULL, filler char(84));
CREATE TABLE history (hid bigserial, aid bigint NOT NULL, delta integer NOT NULL, mtime timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (hid, aid));
`

// sampleRows are inserted first to learn the table's bytes per row.
const sampleRows = 100000

// insertSQL fills accounts rows first..last as pgbench -i does: 100,000 accounts per branch, balance 0, the filler
// blank (char(84) pads it to 84 spaces).
func insertSQL(first, last int64) string {
	return fmt.Sprintf(`INSERT INTO accounts (aid, bid, abalance, filler)
SELECT g, ((g - 1) / 100000 + 1)::integer, 0, '' FROM generate_series(%d::bigint, %d::bigint) g`, first, last)
}

// rowsFor is how many rows make a heap of size bytes at bytesPerRow.
func rowsFor(size int64, bytesPerRow float64) int64 {
	return int64(math.Ceil(float64(size) / bytesPerRow))
}

// fillSource makes the tables on the source database and fills accounts up to size bytes of heap
// (pg_relation_size), in as many parallel INSERT ... SELECT generate_series as there are cores; then the primary
// key, VACUUM (FREEZE, ANALYZE) so that no run pays for setting hint bits, and a checkpoint.
func (e *Env) fillSource(ctx context.Context, size int64, logf func(string, ...any)) (*DataSetup, error) {
	start := time.Now()
	conn, err := pgx.Connect(ctx, e.dsn(srcDB))
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, sourceSchema); err != nil {
		return nil, err
	}
	if _, err := conn.Exec(ctx, insertSQL(1, sampleRows)); err != nil {
		return nil, err
	}
	var sample int64
	if err := conn.QueryRow(ctx, "SELECT pg_relation_size('accounts')").Scan(&sample); err != nil {
		return nil, err
	}
	bpr := float64(sample) / sampleRows
	total := max(rowsFor(size, bpr), sampleRows)
	logf("filling accounts with %d rows (%.1f bytes a row in the heap) on %d connections", total, bpr, runtime.NumCPU())

	parts := int64(max(runtime.NumCPU(), 1))
	per := (total - sampleRows + parts - 1) / parts
	var wg sync.WaitGroup
	errs := make([]error, parts)
	for i := range parts {
		first := sampleRows + 1 + i*per
		last := min(first+per-1, total)
		if first > last {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := pgx.Connect(ctx, e.dsn(srcDB))
			if err != nil {
				errs[i] = err
				return
			}
			defer c.Close(context.Background())
			_, errs[i] = c.Exec(ctx, insertSQL(first, last))
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, fmt.Errorf("filling accounts: %w", err)
		}
	}
	logf("%d rows in %.0fs; primary key, VACUUM (FREEZE, ANALYZE), CHECKPOINT", total, time.Since(start).Seconds())
	for _, sql := range []string{
		"ALTER TABLE accounts ADD PRIMARY KEY (aid)",
		"VACUUM (FREEZE, ANALYZE) accounts, history",
	} {
		if _, err := conn.Exec(ctx, sql); err != nil {
			return nil, fmt.Errorf("%s: %w", sql, err)
		}
	}
	if err := e.checkpoint(ctx); err != nil {
		return nil, err
	}
	d := &DataSetup{}
	err = conn.QueryRow(ctx, "SELECT count(*), pg_relation_size('accounts'), pg_relation_size('accounts_pkey') FROM accounts").
		Scan(&d.Rows, &d.TableBytes, &d.IndexBytes)
	if err != nil {
		return nil, err
	}
	if d.Rows != total {
		return nil, fmt.Errorf("accounts holds %d rows, want %d", d.Rows, total)
	}
	d.BytesPerRow = float64(d.TableBytes) / float64(d.Rows)
	d.SetupSeconds = time.Since(start).Seconds()
	return d, nil
}

// parseSize reads a size as postgresql.conf does: a number of bytes, or with kB, MB, GB, TB (powers of 1024; the
// IEC spellings KiB... mean the same; any case).
func parseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	digits := len(t) - len(strings.TrimLeft(t, "0123456789"))
	units := map[string]int64{"": 1, "b": 1, "kb": 1 << 10, "kib": 1 << 10, "mb": 1 << 20, "mib": 1 << 20,
		"gb": 1 << 30, "gib": 1 << 30, "tb": 1 << 40, "tib": 1 << 40}
	unit, ok := units[strings.ToLower(strings.TrimSpace(t[digits:]))]
	if digits == 0 || !ok {
		return 0, fmt.Errorf("invalid size %q (bytes, or a number with kB, MB or GB, e.g. 2GB)", s)
	}
	n, err := strconv.ParseInt(t[:digits], 10, 64)
	if err != nil || n <= 0 || n > math.MaxInt64/unit {
		return 0, fmt.Errorf("invalid size %q", s)
	}
	return n * unit, nil
}
