package codec

import (
	"bytes"
	"errors"
	"testing"
)

// testStream is a realistic mix of backend messages: an extended-query round trip returning rows.
func testStream() (stream []byte, types []byte, bodies [][]byte) {
	add := func(b []byte) {
		types = append(types, b[0])
		bodies = append(bodies, b[HeaderLen:])
		stream = append(stream, b...)
	}
	add(AppendEmpty(nil, ParseComplete))
	add(AppendEmpty(nil, BindComplete))
	add(AppendRowDescription(nil, []FieldDescription{{Name: []byte("id"), TypeOID: 20, TypeSize: 8, TypeModifier: -1}}))
	for i := 0; i < 5; i++ {
		add(AppendDataRow(nil, [][]byte{[]byte("12345"), nil, {}}))
	}
	add(AppendCommandComplete(nil, "SELECT 5"))
	add(AppendNoticeResponse(nil, &Error{Severity: "NOTICE", Code: "00000", Message: "hi"}))
	add(AppendReadyForQuery(nil, TxIdle))
	return stream, types, bodies
}

func TestReadMessageSeveralInOneBuffer(t *testing.T) {
	stream, types, bodies := testStream()
	buf, i := stream, 0
	for len(buf) > 0 {
		m, n, err := ReadMessage(buf, DefaultMaxMessageSize)
		if err != nil || n == 0 {
			t.Fatalf("message %d: n=%d err=%v", i, n, err)
		}
		if m.Type != types[i] || !bytes.Equal(m.Body, bodies[i]) || n != HeaderLen+len(bodies[i]) {
			t.Fatalf("message %d: %q %q n=%d", i, m.Type, m.Body, n)
		}
		if MessageLen(buf) != n {
			t.Errorf("MessageLen = %d, want %d", MessageLen(buf), n)
		}
		buf = buf[n:]
		i++
	}
	if i != len(types) {
		t.Fatalf("read %d messages, want %d", i, len(types))
	}
}

// TestReadMessageEveryPrefix: a prefix of a valid stream yields exactly the messages it holds whole, then n=0.
func TestReadMessageEveryPrefix(t *testing.T) {
	stream, types, bodies := testStream()
	ends := make([]int, len(types)) // end offset of each message
	off := 0
	for i, b := range bodies {
		off += HeaderLen + len(b)
		ends[i] = off
	}
	for l := 0; l <= len(stream); l++ {
		buf := append([]byte(nil), stream[:l]...) // exact length: reading past it would panic
		whole := 0
		for whole < len(ends) && ends[whole] <= l {
			whole++
		}
		got := 0
		for {
			m, n, err := ReadMessage(buf, DefaultMaxMessageSize)
			if err != nil {
				t.Fatalf("prefix %d: %v", l, err)
			}
			if n == 0 {
				if m.Type != 0 || m.Body != nil {
					t.Fatalf("prefix %d: incomplete read returned a message", l)
				}
				break
			}
			if m.Type != types[got] || !bytes.Equal(m.Body, bodies[got]) {
				t.Fatalf("prefix %d: message %d wrong", l, got)
			}
			buf = buf[n:]
			got++
		}
		if got != whole {
			t.Fatalf("prefix %d: read %d messages, want %d", l, got, whole)
		}
	}
}

func TestReadMessageBadLengths(t *testing.T) {
	for _, l := range []uint32{0, 1, 3} {
		buf := []byte{'Q', byte(l >> 24), byte(l >> 16), byte(l >> 8), byte(l)}
		if _, n, err := ReadMessage(buf, 100); !errors.Is(err, ErrBadLength) || n != 0 {
			t.Errorf("length %d: n=%d err=%v", l, n, err)
		}
	}
	// Length 4 is an empty body.
	if m, n, err := ReadMessage([]byte{'S', 0, 0, 0, 4}, 100); err != nil || n != 5 || m.Type != 'S' || len(m.Body) != 0 {
		t.Errorf("empty body: %v %d %v", m, n, err)
	}
	// Too large is refused as soon as the header is in, before the body arrives.
	if _, n, err := ReadMessage([]byte{'D', 0, 0, 0x10, 0x01}, 4096); !errors.Is(err, ErrMessageTooLarge) || n != 0 {
		t.Errorf("too large: n=%d err=%v", n, err)
	}
	if _, n, err := ReadMessage([]byte{'D', 0xff, 0xff, 0xff, 0xff}, DefaultMaxMessageSize); !errors.Is(err, ErrMessageTooLarge) || n != 0 {
		t.Errorf("4 GiB: n=%d err=%v", n, err)
	}
	// Exactly the limit is allowed.
	buf := AppendCopyData(nil, make([]byte, 96))
	if _, n, err := ReadMessage(buf, 100); err != nil || n != len(buf) {
		t.Errorf("at limit: n=%d err=%v", n, err)
	}
	if _, _, err := ReadMessage(buf, 99); !errors.Is(err, ErrMessageTooLarge) {
		t.Errorf("one over limit: %v", err)
	}
}

// TestReadMessageAliases: the body is a view of the buffer whose capacity ends with the message, so appending to
// it cannot overwrite the next message.
func TestReadMessageAliases(t *testing.T) {
	buf := append(AppendQuery(nil, "select 1"), AppendEmpty(nil, Sync)...)
	m, _, err := ReadMessage(buf, 0)
	must(t, err)
	buf[HeaderLen] = 'S'
	if m.Body[0] != 'S' {
		t.Error("body is a copy")
	}
	if cap(m.Body) != len(m.Body) {
		t.Errorf("cap %d > len %d", cap(m.Body), len(m.Body))
	}
	_ = append(m.Body, 'x')
	if buf[len(buf)-5] != Sync {
		t.Error("append to a body overwrote the next message")
	}
}

func TestReadStartupPacket(t *testing.T) {
	pkt := AppendStartupMessage(nil, ProtocolVersion30, "user", "u", "database", "d")
	stream := append(append([]byte(nil), pkt...), AppendRequestCode(nil, SSLRequestCode)...)
	for l := 0; l < len(pkt); l++ {
		if body, n, err := ReadStartupPacket(append([]byte(nil), stream[:l]...), 1000); body != nil || n != 0 || err != nil {
			t.Fatalf("prefix %d: %q %d %v", l, body, n, err)
		}
	}
	body, n, err := ReadStartupPacket(stream, 1000)
	if err != nil || n != len(pkt) || !bytes.Equal(body, pkt[4:]) || cap(body) != len(body) {
		t.Fatalf("whole: %q %d %v", body, n, err)
	}
	body, n, err = ReadStartupPacket(stream[n:], 1000)
	if err != nil || n != 8 || len(body) != 4 {
		t.Fatalf("second: %q %d %v", body, n, err)
	}
	for _, l := range []byte{0, 4, 7} {
		if _, _, err := ReadStartupPacket([]byte{0, 0, 0, l, 0, 0, 0, 0}, 1000); !errors.Is(err, ErrBadLength) {
			t.Errorf("length %d: %v", l, err)
		}
	}
	if _, _, err := ReadStartupPacket([]byte{0, 0, 0x27, 0x11}, 10000); !errors.Is(err, ErrMessageTooLarge) {
		t.Errorf("too large: %v", err)
	}
}
