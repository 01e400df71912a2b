// Package benchkit holds what the benchmark commands under bench/cmd share: reading a process's memory and CPU
// time, the machine's load and busy time from /proc, stopping a Postgres cluster they started, finding the
// checkout, medians and the number formats of their tables, and what the machine is (CPU model, memory, kernel).
package benchkit
