// Package faultproxy is a TCP proxy for tests that puts network faults between pgshard and a shard: added
// latency, a bandwidth cap, connections reset, a black hole (nothing delivered until it ends), and half-open
// connections (the peer gone without a word: nothing delivered ever again, nothing closed). It forwards bytes
// and knows nothing of the Postgres protocol.
package faultproxy
