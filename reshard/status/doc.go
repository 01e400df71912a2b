// Package status is the progress file a running `pgshard reshard` keeps up to date and the proxy's admin
// console reads for SHOW RESHARD. It is its own package so that the proxy can read the file without linking
// the resharding tool (pgx, pglogrepl) into every loop test binary.
package status
