// Package codec is the Postgres frontend/backend protocol 3.0 (and the 3.2 cancel key form): framing over a
// byte slice without copying, typed read-only views of messages, encoders that append to a caller's buffer,
// SQLSTATE codes and error fields, and the untyped startup-phase packets (StartupMessage, SSLRequest,
// GSSENCRequest, CancelRequest).
//
// Naming: the byte constants (Bind, DataRow, ...) are message types; ParseX decodes the body of message X (what
// ReadMessage returns in Message.Body) into a value or a view named XMessage; AppendX appends message X to a
// caller's buffer. Decoders never panic on input: malformed bodies give errors wrapping ErrShortMessage,
// ErrMissingNUL, ErrBadLength or ErrBadValue, which the proxy answers with 08P01.
//
// It does no I/O and imports no other package of pgshard, so every other package can share it and its
// decoders can be fuzzed in isolation. Views alias the input slice: copy what must outlive the buffer.
package codec
