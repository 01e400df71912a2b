// Package admin is pgshard's admin console and metrics. The console is the database "pgshard" (PgBouncer's is
// "pgbouncer"): an admin connects with psql and types SHOW POOLS, SHOW CLIENTS, SHOW SERVERS, SHOW STATS,
// SHOW DATABASES, SHOW CONFIG, SHOW RESHARD, SHOW VERSION, PAUSE, RESUME, RELOAD or SHUTDOWN. The same figures
// are served to Prometheus on metrics_listen at /metrics.
//
// The package parses and renders; it reads and acts on the proxy's state through the Source interface, which
// the loop package implements, so it knows nothing of sockets. PAUSE, which answers only once the database's
// transactions are over, is run by the loop package itself.
package admin
