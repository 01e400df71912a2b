// Package benchkit holds what the benchmark commands under bench/cmd share: reading a process's memory and the
// machine's load from /proc, stopping a Postgres cluster they started, finding the checkout, medians and the
// number formats of their tables, and what the machine is (CPU model, memory, kernel).
package benchkit
