// Package loop is pgshard's network engine: gnet v2 event loops (one per core) that accept clients and hold
// the server connections, each dialed into the loop of the client that asked for it, so one transaction's
// bytes never cross threads. It runs the session state machines that tie codec, auth, route, pool and merge
// together, the timers, cancel forwarding, graceful shutdown, and the admin console's actions.
//
// Rule of the house: nothing blocks inside a gnet callback. Dials, server handshakes, TLS handshakes and
// auth_query lookups run on goroutines and come back with EventLoop().Execute or by enrolling the finished
// connection into the loop.
//
// # Shell and core
//
// The session core (most files) sees a connection only as a conn: bytes read, bytes to write. The shell is
// what speaks gnet, and only its files import it (TestOnlyTheShellSpeaksGnet): engine.go's callbacks, which
// feed the core, and shell.go, park.go and tls.go, which close, park, dial, enroll and move sockets and run
// functions on a loop. So the core's tests drive it with fake connections, without sockets or Postgres.
//
// # Map
//
//   - engine.go: the Engine, its catalog of databases and users (swapped whole by RELOAD), the gnet callbacks.
//   - shell.go: conn, and the shell's services to the core: closeConn, execute, dialling, enrolling and
//     moving server connections between loops.
//   - Client lifecycle: startup.go (startup packet, SSLRequest, authentication), tls.go (the
//     TLS handshake off the loop), authquery.go (auth_query lookups), admission.go (the login limits),
//     client.go (the client connection and its clientState: reading, forwarding,
//     checkout, closing), timeouts.go (its clock).
//   - One shard, pass-through: client.go's forwardUnsharded and message (what each message sent asks the
//     server for, queued as expectations), answer.go (each server message matched to its expectation:
//     forwarded, hidden or answered by pgshard), server.go (the server connection: reading, idle, reset).
//   - Several shards: shards.go (routing each message with route.Router, sending with sendOpts), fanout.go
//     (one statement's answers from several shards merged into one), copyin.go (COPY FROM STDIN split by
//     row), txend.go (COMMIT and ROLLBACK of a transaction on several shards), txdrive.go (pgshard's own
//     statements that end it, step by step: PREPARE TRANSACTION, COMMIT PREPARED), twopc.go (the decision log
//     and the recovery sweep), cancel.go (cancelling shards whose rows are no longer needed).
//   - Session state that must follow a client from one server connection to the next: session.go (settings,
//     pins, replay), prepared.go (named statements shared across clients, the expectation queue, splice),
//     sqlprepare.go (SQL-level PREPARE and EXECUTE).
//   - Flow control: park.go (a server not read while its client cannot take more, and the other way round),
//     outbox.go (what is sent to a server is queued and written once, when the loop's callback returns).
//   - Replicas: replicas.go (the read/write split: which pool a unit of work goes to, bans, read-your-writes),
//     replicalag.go (the replica checks: replay positions, lag).
//   - Pool-wide: deadlock.go (cross-pool deadlocks), pause.go (PAUSE, RESUME), reload.go (RELOAD),
//     memory.go (returning memory after bursts), admin.go (the console's SHOW commands).
//
// # A Query, from socket to socket
//
// A client's bytes wake its loop in Engine.OnTraffic, which hands them to client.onTraffic. For a database
// of one shard, client.forward checks out a server connection when the client has none (Pool.Checkout; a
// waiting client keeps its bytes in gnet's buffer), and forwardUnsharded frames each message (codec), and
// client.message queues what the server will answer (an expectation per message; for a Query, the settings and
// pins it changes) while the bytes go to the server's outbox, renamed or completed only where pgshard must (a
// splice copies nothing otherwise), to be written in one write when the callback returns. The server's answer
// wakes the same loop: server.onTraffic frames it and answer pops each message's expectation, deciding what
// the client sees; the bytes go to the client in one write, behind any reply pgshard made itself and held for
// them (client.answersComing).
// At ReadyForQuery the server is idle (idleNow): in transaction mode it goes back to the pool, or straight to
// a client waiting on this loop. For a sharded database, forwardSharded asks route for the shards of each
// message first, and a statement on several shards goes out to each of them, its answers merged by the
// fan-out before the client sees one answer.
package loop
