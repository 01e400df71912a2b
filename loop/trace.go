package loop

import (
	"github.com/pgshard/pgshard/codec"
)

// wireTrace logs what a client and pgshard say to each other (log_wire), a line a message as libpq's PQtrace
// prints them. A large message pgshard streams to the client arrives in parts: outSkip is what is left of it
// to pass, so that its next part is not read as the start of a message.
type wireTrace struct {
	on      bool
	outSkip int
}

// traceIn logs the client's complete messages in b, which pgshard has handled.
func (cl *client) traceIn(b []byte) {
	for pos := 0; pos+codec.HeaderLen <= len(b); {
		n := codec.MessageLen(b[pos:])
		if n < codec.HeaderLen || pos+n > len(b) {
			return
		}
		cl.e.log.Info("wire", "client", cl.addr, "pid", cl.pid, "from", "client", "msg", codec.TraceLine(b[pos:pos+n], true))
		pos += n
	}
}

// traceOut logs the messages in b, which pgshard writes to the client.
func (cl *client) traceOut(b []byte) {
	t := &cl.wire
	for len(b) > 0 {
		if t.outSkip > 0 {
			n := min(t.outSkip, len(b))
			t.outSkip, b = t.outSkip-n, b[n:]
			continue
		}
		if len(b) < codec.HeaderLen {
			return // a byte answer to an SSLRequest ('N'), or bytes pgshard did not frame
		}
		n := codec.MessageLen(b)
		if n < codec.HeaderLen {
			return
		}
		line := ""
		if n > len(b) {
			line = "(" + string(rune(b[0])) + ", the first part of a large message, streamed)"
			t.outSkip = n - len(b)
			n = len(b)
		} else {
			line = codec.TraceLine(b[:n], false)
		}
		cl.e.log.Info("wire", "client", cl.addr, "pid", cl.pid, "from", "pgshard", "msg", line)
		b = b[n:]
	}
}

// consumeInput drops the first n bytes of the client's input, whose messages pgshard has handled.
func (cl *client) consumeInput(n int) {
	if cl.wire.on {
		cl.traceIn(cl.park.head(cl.c, n))
	}
	cl.park.consume(cl.c, n)
}
