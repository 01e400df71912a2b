package codec

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// HeaderLen is the size of a regular message header: one type byte and a 4-byte length that counts itself.
const HeaderLen = 5

// DefaultMaxMessageSize bounds one message when the caller has no limit of its own.
const DefaultMaxMessageSize = 64 << 20

// ErrMessageTooLarge reports a declared length above the caller's limit; the proxy answers 08P01 and closes.
var ErrMessageTooLarge = errors.New("message too large")

// ErrBadLength reports a declared length that cannot be right (below the length field's own size).
var ErrBadLength = errors.New("invalid message length")

// Message is one framed message. Body aliases the buffer it was read from.
type Message struct {
	Type byte
	Body []byte
}

// ReadMessage frames the first message in buf. It returns the message and the number of bytes it spans; n is 0
// (and err nil) when buf does not yet hold the whole message. The body is a sub-slice of buf, not a copy.
func ReadMessage(buf []byte, maxSize int) (m Message, n int, err error) {
	if len(buf) < HeaderLen {
		return Message{}, 0, nil
	}
	length := int(binary.BigEndian.Uint32(buf[1:5]))
	if length < 4 {
		return Message{}, 0, fmt.Errorf("%w: %d for message type %q", ErrBadLength, length, buf[0])
	}
	if maxSize > 0 && length > maxSize {
		return Message{}, 0, fmt.Errorf("%w: %d bytes for message type %q (limit %d)", ErrMessageTooLarge, length, buf[0], maxSize)
	}
	total := length + 1
	if len(buf) < total {
		return Message{}, 0, nil
	}
	return Message{Type: buf[0], Body: buf[HeaderLen:total:total]}, total, nil
}

// MessageLen returns the full size of the message starting at buf, or 0 when the header is incomplete.
func MessageLen(buf []byte) int {
	if len(buf) < HeaderLen {
		return 0
	}
	return int(binary.BigEndian.Uint32(buf[1:5])) + 1
}

// ReadStartupPacket frames a startup-phase packet (no type byte: a 4-byte length then the body). n is 0 when
// incomplete. Startup packets are small; maxSize guards against a client claiming gigabytes before auth.
func ReadStartupPacket(buf []byte, maxSize int) (body []byte, n int, err error) {
	if len(buf) < 4 {
		return nil, 0, nil
	}
	length := int(binary.BigEndian.Uint32(buf[0:4]))
	if length < 8 {
		return nil, 0, fmt.Errorf("%w: startup packet of %d bytes", ErrBadLength, length)
	}
	if maxSize > 0 && length > maxSize {
		return nil, 0, fmt.Errorf("%w: startup packet of %d bytes (limit %d)", ErrMessageTooLarge, length, maxSize)
	}
	if len(buf) < length {
		return nil, 0, nil
	}
	return buf[4:length:length], length, nil
}
