// Package tlsio runs a TLS session over an event loop. crypto/tls reads and writes a net.Conn and blocks; an event
// loop must not. So a Session starts on the blocking socket (the handshake and, for a server connection, the
// login run off the loops, as net.Conn) and is then detached: from then on crypto/tls reads only the bytes the loop
// hands it and its writes are kept for the loop to send. Conn is the loop's view of such a connection: a
// gnet.Conn whose Peek, Discard and InboundBuffered see the plaintext and whose Write encrypts.
//
// A read with nothing left says "would block" with an error that is temporary, which crypto/tls leaves its
// state intact for (a record cut short is completed by the next bytes), so no goroutine and no extra system
// call is needed per message.
package tlsio
