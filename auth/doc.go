// Package auth owns the password-authentication logic pgshard needs on both
// of its faces: as a server checking its own clients, and as a client logging
// in to Postgres. It implements SCRAM-SHA-256 (RFC 5802/7677) and
// SCRAM-SHA-256-PLUS, bound to the TLS session with tls-server-end-point
// (RFC 5929), on both faces; logging in with the keys a client's login proved
// instead of a password (Keys); Postgres's md5 scheme; and it parses and
// produces the SCRAM secret text that Postgres keeps in pg_authid.
//
// It is pure logic: no sockets, no message framing, no configuration. Callers
// hand in the SASL payload bytes of each protocol message and send back what
// they are given, mapping ErrBadPassword to SQLSTATE 28P01 and ErrProtocol to
// 08P01.
package auth
