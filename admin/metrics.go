package admin

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
)

// MetricsHandler serves the pools' figures in the Prometheus text format.
func MetricsHandler(src Source, clients func() int64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		WriteMetrics(w, src.Pools(), src.Databases(), clients())
		writeReplicaMetrics(w, src.Replicas())
		writeProcessMetrics(w)
	})
}

// writeProcessMetrics writes the process's figures under the names Prometheus's own clients use, so that a
// growing count of goroutines, descriptors or memory shows on the usual dashboards. Linux only for the last two.
func writeProcessMetrics(w io.Writer) {
	fmt.Fprintf(w, "# HELP go_goroutines Goroutines that currently exist.\n# TYPE go_goroutines gauge\ngo_goroutines %d\n", runtime.NumGoroutine())
	// ReadMemStats stops the world for a moment, but its count is exact (runtime/metrics' lags by what each
	// processor has not flushed yet), which the hot-path test needs to tell 0 allocations per transaction from 0.2.
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	fmt.Fprintf(w, "# HELP go_memstats_mallocs_total Heap objects allocated.\n# TYPE go_memstats_mallocs_total counter\ngo_memstats_mallocs_total %d\n", ms.Mallocs)
	if fds, err := os.ReadDir("/proc/self/fd"); err == nil {
		fmt.Fprintf(w, "# HELP process_open_fds Open file descriptors.\n# TYPE process_open_fds gauge\nprocess_open_fds %d\n", len(fds))
	}
	if b, err := os.ReadFile("/proc/self/statm"); err == nil {
		if f := strings.Fields(string(b)); len(f) > 1 {
			if pages, err := strconv.ParseInt(f[1], 10, 64); err == nil {
				fmt.Fprintf(w, "# HELP process_resident_memory_bytes Resident memory size in bytes.\n# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes %d\n",
					pages*int64(os.Getpagesize()))
			}
		}
	}
}

// writeReplicaMetrics writes how far behind its primary each replica is, and whether it takes reads.
func writeReplicaMetrics(w io.Writer, reps []ReplicaInfo) {
	if len(reps) == 0 {
		return
	}
	type metric struct {
		name, help string
		value      func(ReplicaInfo) float64
	}
	for _, m := range []metric{
		{"pgshard_replica_lag_bytes", "WAL bytes of the primary the replica had not replayed at the last check.", func(r ReplicaInfo) float64 { return float64(r.LagBytes) }},
		{"pgshard_replica_lag_seconds", "How far behind its primary the replica was at the last check.", func(r ReplicaInfo) float64 { return r.Lag.Seconds() }},
		{"pgshard_replica_reads", "1 while the replica takes reads, 0 while it is banned or lagging.", func(r ReplicaInfo) float64 {
			if r.State == "ok" {
				return 1
			}
			return 0
		}},
	} {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s gauge\n", m.name, m.help, m.name)
		for _, r := range reps {
			fmt.Fprintf(w, "%s{database=%q,shard=\"%d\",host=%q} %g\n", m.name, r.Database, r.Shard, r.Host, m.value(r))
		}
	}
}

// WriteMetrics writes the Prometheus exposition of the pools, the databases and the client count.
func WriteMetrics(w io.Writer, pools []PoolInfo, dbs []DatabaseInfo, clients int64) {
	fmt.Fprintf(w, "# HELP pgshard_clients Client connections open.\n# TYPE pgshard_clients gauge\npgshard_clients %d\n", clients)
	fmt.Fprintf(w, "# HELP pgshard_database_paused 1 while the database is paused (PAUSE, also while it waits for transactions to end), else 0.\n# TYPE pgshard_database_paused gauge\n")
	for _, d := range dbs {
		paused := 0
		if d.PauseState != "" {
			paused = 1
		}
		fmt.Fprintf(w, "pgshard_database_paused{database=%q} %d\n", d.Name, paused)
	}
	type metric struct {
		name, help, kind string
		value            func(PoolInfo) float64
	}
	metrics := []metric{
		{"pgshard_pool_size", "Configured server connections per pool.", "gauge", func(p PoolInfo) float64 { return float64(p.Size) }},
		{"pgshard_pool_servers_active", "Server connections in use or being dialed.", "gauge", func(p PoolInfo) float64 { return float64(p.Active) }},
		{"pgshard_pool_servers_idle", "Idle server connections.", "gauge", func(p PoolInfo) float64 { return float64(p.Idle) }},
		{"pgshard_pool_clients_waiting", "Clients waiting for a server connection.", "gauge", func(p PoolInfo) float64 { return float64(p.Waiting) }},
		{"pgshard_pool_checkouts_total", "Server connection checkouts.", "counter", func(p PoolInfo) float64 { return float64(p.Checkouts) }},
		{"pgshard_pool_waits_total", "Checkouts that had to wait.", "counter", func(p PoolInfo) float64 { return float64(p.Waits) }},
		{"pgshard_pool_wait_seconds_total", "Time clients spent waiting for a server connection.", "counter", func(p PoolInfo) float64 { return p.WaitTime.Seconds() }},
		{"pgshard_pool_cross_loop_total", "Server connections handed to a client of another event loop.", "counter", func(p PoolInfo) float64 { return float64(p.CrossLoop) }},
		{"pgshard_pool_dials_total", "Server connections dialed.", "counter", func(p PoolInfo) float64 { return float64(p.Dials) }},
		{"pgshard_pool_dial_failures_total", "Server connections that failed to open.", "counter", func(p PoolInfo) float64 { return float64(p.DialFailures) }},
		{"pgshard_pool_checkout_timeouts_total", "Clients that gave up waiting (checkout_timeout).", "counter", func(p PoolInfo) float64 { return float64(p.Timeouts) }},
	}
	for _, m := range metrics {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n", m.name, m.help, m.name, m.kind)
		for _, p := range pools {
			fmt.Fprintf(w, "%s{database=%q,user=%q,shard=\"%d\",role=%q,host=%q} %g\n", m.name, p.Database, p.User, p.Shard, p.Role, p.Host, m.value(p))
		}
	}
}
