// Package twopc holds what pgshard's two-phase commit needs outside the event loops: the decision log (a
// file of commit decisions, appended and fsynced before any shard is told to commit, compacted at start),
// the identifiers of pgshard's prepared transactions, and a small synchronous client that finds and
// finishes the prepared transactions pgshard left on a shard (at start, and when a commit could not finish
// in the loop). It is its own package because it does blocking I/O, which the loop package must never do.
//
// A transaction identifier is pgshard_<instance>_<boot>_<n>: the instance is drawn once when the log is
// created and kept in it, the boot counts the starts of pgshard on that log, n counts the transactions of
// one boot. So identifiers never repeat, and a pgshard only ever finishes its own.
package twopc
