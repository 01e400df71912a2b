// Package loop is pgshard's network engine: gnet v2 event loops (one per core) that accept clients and hold
// the server connections, each dialed into the loop of the client that asked for it, so one transaction's
// bytes never cross threads. It runs the session state machine (startup, authentication, idle, in a
// transaction, waiting for a server, closing) that ties codec, auth and pool together, the timers (startup,
// checkout, server idle and lifetime), cancel-key forwarding, the cancelling of shards a cross-shard
// statement no longer needs (cancel.go), graceful shutdown, and the admin console's actions on them: PAUSE and
// RESUME (pause.go) and RELOAD (reload.go).
//
// Rule of the house: nothing blocks inside a gnet callback. Dials and server handshakes run on goroutines and
// come back with EventLoop().Execute or by enrolling the finished connection into the loop.
package loop
