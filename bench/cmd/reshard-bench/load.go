package main

import (
	"context"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// LoadStats is what the write load did during one run.
type LoadStats struct {
	Clients      int     `json:"clients"`
	RatePerSec   int     `json:"target_tx_per_sec_per_client"`
	Seconds      float64 `json:"seconds"`
	Commits      int64   `json:"commits"`
	Failures     int64   `json:"failures"`
	FirstError   string  `json:"first_error,omitempty"`
	DeltaSum     int64   `json:"committed_delta_sum"` // what the committed transactions added to sum(abalance)
	P50Ms        float64 `json:"latency_p50_ms"`
	P99Ms        float64 `json:"latency_p99_ms"`
	MaxMs        float64 `json:"latency_max_ms"` // the longest transaction: the write pause as a client sees it
	MaxAtSeconds float64 `json:"latency_max_at_seconds"`
}

// load is a light write load through pgshard: clients each running, at a fixed rate, a transaction that adds a
// random delta to one account's balance and records it in history, as pgbench's TPC-B-like script does.
type load struct {
	stop    chan struct{}
	wg      sync.WaitGroup
	started time.Time

	mu    sync.Mutex
	st    LoadStats
	lats  []time.Duration
	maxAt time.Time
}

// startLoad connects the clients (an error when one cannot connect) and starts them.
func startLoad(ctx context.Context, dsn string, clients, rate int, accounts int64) (*load, error) {
	l := &load{stop: make(chan struct{}), started: time.Now()}
	l.st.Clients, l.st.RatePerSec = clients, rate
	var conns []*pgx.Conn
	for range clients {
		c, err := pgx.Connect(ctx, dsn)
		if err != nil {
			for _, c := range conns {
				c.Close(context.Background())
			}
			return nil, err
		}
		conns = append(conns, c)
	}
	for w, c := range conns {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			defer c.Close(context.Background())
			l.client(ctx, c, uint64(w), rate, accounts)
		}()
	}
	return l, nil
}

func (l *load) client(ctx context.Context, c *pgx.Conn, seed uint64, rate int, accounts int64) {
	r := rand.New(rand.NewPCG(seed, uint64(time.Now().UnixNano())))
	tick := time.NewTicker(time.Second / time.Duration(max(rate, 1)))
	defer tick.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-ctx.Done():
			return
		case <-tick.C: // a stalled transaction drops ticks: no burst after a pause
		}
		aid := r.Int64N(accounts) + 1
		delta := int32(r.IntN(1001) - 500)
		t0 := time.Now()
		err := pgx.BeginFunc(ctx, c, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, "UPDATE accounts SET abalance = abalance + $1 WHERE aid = $2", delta, aid); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, "INSERT INTO history (aid, delta) VALUES ($1, $2)", aid, delta)
			return err
		})
		lat := time.Since(t0)
		l.mu.Lock()
		if err != nil {
			l.st.Failures++
			if l.st.FirstError == "" {
				l.st.FirstError = err.Error()
			}
		} else {
			l.st.Commits++
			l.st.DeltaSum += int64(delta)
			l.lats = append(l.lats, lat)
			if ms := float64(lat.Microseconds()) / 1000; ms > l.st.MaxMs {
				l.st.MaxMs, l.maxAt = ms, t0
			}
		}
		l.mu.Unlock()
	}
}

// finish stops the clients and returns what they did.
func (l *load) finish() LoadStats {
	close(l.stop)
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	st := l.st
	st.Seconds = time.Since(l.started).Seconds()
	if !l.maxAt.IsZero() {
		st.MaxAtSeconds = l.maxAt.Sub(l.started).Seconds()
	}
	st.P50Ms, st.P99Ms = percentileMs(l.lats, 0.50), percentileMs(l.lats, 0.99)
	return st
}

// percentileMs is the q-quantile of d in milliseconds (nearest rank; 0 for none).
func percentileMs(d []time.Duration, q float64) float64 {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	i := int(q*float64(len(s))+0.5) - 1
	i = min(max(i, 0), len(s)-1)
	return float64(s[i].Microseconds()) / 1000
}
