package e2e

import (
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"testing"
	"time"
)

// A message type a logged-in client may not send (not a frontend message at all, or a password message after
// the login) is answered by pgshard as Postgres answers it, FATAL 08P01, and the connection is closed; it never
// reaches a server, whose session it would end, and the pool stays usable.
func TestInvalidMessageTypeIsRefused(t *testing.T) {
	t.Parallel()
	e := startEnv(t, envOpts{size: 1})
	ctx := Ctx(t, time.Minute)
	for _, typ := range []byte{'Z', 'p', 0} {
		r := e.rawLogin(t)
		msg := []byte{typ, 0, 0, 0, 0}
		binary.BigEndian.PutUint32(msg[1:], 4)
		if _, err := r.Write(msg); err != nil {
			t.Fatal(err)
		}
		got, err := r.receiveUntil(t, 5*time.Second, isReady)
		if len(got) != 1 || !strings.HasPrefix(got[0], "ErrorResponse(FATAL 08P01 invalid frontend message type") {
			t.Fatalf("message type %q: got %v, %v; want one FATAL 08P01", typ, got, err)
		}
		if err == nil || !isEOF(err) && !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("message type %q: the connection was not closed after the FATAL: %v", typ, err)
		}
	}
	c := e.connect(t, ctx)
	var n int
	if err := c.QueryRow(ctx, "SELECT 7").Scan(&n); err != nil || n != 7 {
		t.Fatalf("a client after the refused messages: %d %v", n, err)
	}
	if n := e.pg.QueryString(t, "postgres", "SELECT count(*) FROM pg_stat_activity WHERE usename = 'app' AND backend_type = 'client backend'"); n != "2" {
		t.Fatalf("server backends: %s, want the one of each pool (users trusted and app): none was ended", n)
	}
}
