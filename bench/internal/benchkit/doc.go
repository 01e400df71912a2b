// Package benchkit holds what the benchmark commands under bench/cmd share: their run directory and the sweep
// of what killed runs left, starting and stopping the servers they measure (pgshard, PgBouncer) and a Postgres
// cluster, reading a process's memory and CPU time and the machine's load from /proc, the versions and the
// files of their reports, finding the checkout, medians and the number formats of their tables, and what the
// machine is (CPU model, memory, kernel).
package benchkit
