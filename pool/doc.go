// Package pool keeps the server connections of one (database, user, shard, role): it decides whether a
// checkout gets an idle connection on the caller's event loop, must dial a new one, may take an idle one from
// another loop, or waits in the FIFO queue; it enforces the global size limit and hands connections back to
// waiters on check-in. It also dials and authenticates new server connections (Dial), blocking, off the loops.
//
// The pool knows nothing of sockets or SQL: a Conn carries an opaque Handle that the loop package owns, and
// a loop is just an index. That keeps the bookkeeping testable without a network.
package pool
