package e2e

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
)

// Memory ceilings, measured on the real binary: what many clients, or clients that hold much, cost pgshard at
// their peak, and that the memory comes back once they are gone.

// settledRSS waits for pgshard's RSS to stop falling and returns it, in kB.
func (p *Proxy) settledRSS(t *testing.T, within time.Duration) int {
	t.Helper()
	last, _ := p.rssKB(t)
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		time.Sleep(500 * time.Millisecond)
		rss, _ := p.rssKB(t)
		if rss >= last-256 {
			return rss
		}
		last = rss
	}
	return last
}

// rssFallsTo waits up to within for pgshard's RSS to fall to at most kB and returns the last one seen.
func (p *Proxy) rssFallsTo(t *testing.T, kB int, within time.Duration) int {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		rss, _ := p.rssKB(t)
		if rss <= kB || time.Now().After(deadline) {
			return rss
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// TestMemoryManyIdleClients: 10,000 logged-in idle clients cost pgshard a bounded amount each, and it is given
// back when they leave.
func TestMemoryManyIdleClients(t *testing.T) {
	t.Parallel()
	const clients = 10000
	e := startEnv(t, envOpts{size: 2, maxClients: clients + 10, limits: []string{"max_pending_logins: 20000"}})
	base := e.proxy.settledRSS(t, 5*time.Second)
	startup := idleStartup(t)
	conns := make([]net.Conn, 0, clients)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := 0; i < clients; i++ {
		c, err := net.DialTimeout("tcp", e.proxy.Addr(), 5*time.Second)
		if err != nil {
			t.Fatalf("client %d: %v", i, err)
		}
		conns = append(conns, c)
		if _, err := c.Write(startup); err != nil {
			t.Fatalf("client %d: %v", i, err)
		}
	}
	// Every one logged in (its ReadyForQuery came).
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failed []string
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < clients; i += 8 {
				b, err := readUntilReady(conns[i], 20*time.Second)
				if err != nil {
					mu.Lock()
					failed = append(failed, fmt.Sprintf("client %d: %v (%q)", i, err, b))
					mu.Unlock()
					return
				}
			}
		}()
	}
	wg.Wait()
	if len(failed) > 0 {
		t.Fatalf("%d clients did not log in: %s", len(failed), failed[0])
	}
	checkIdleCost(t, e.proxy, base, conns, "idle client", 16)
}

// idleStartup is the StartupMessage of the idle-client tests.
func idleStartup(t *testing.T) []byte {
	startup := new(bytes.Buffer)
	fe := pgproto3.NewFrontend(nil, startup)
	fe.Send(&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersionNumber,
		Parameters: map[string]string{"user": "trusted", "database": "app", "application_name": "idle"}})
	if err := fe.Flush(); err != nil {
		t.Fatal(err)
	}
	return startup.Bytes()
}

// checkIdleCost takes pgshard's RSS with the logged-in idle conns against base (before they came), fails when
// one costs more than ceilingKB, closes them and checks that pgshard gives the memory back.
func checkIdleCost(t *testing.T, p *Proxy, base int, conns []net.Conn, what string, ceilingKB int) {
	t.Helper()
	peak, _ := p.rssKB(t)
	perClient := float64(peak-base) * 1024 / float64(len(conns))
	t.Logf("RSS %d MB -> %d MB with %d of them (%.1f kB each)", base>>10, peak>>10, len(conns), perClient/1024)
	if perClient > float64(ceilingKB)*1024 {
		t.Errorf("an %s costs pgshard %.1f kB; the ceiling is %d kB", what, perClient/1024, ceilingKB)
	}
	for _, c := range conns {
		c.Close()
	}
	start := time.Now()
	after := p.rssFallsTo(t, base+(peak-base)/4+(4<<10), 20*time.Second)
	t.Logf("RSS %d MB %v after they left", after>>10, time.Since(start).Round(100*time.Millisecond))
	if after > base+(peak-base)/4+(4<<10) {
		t.Errorf("RSS %d MB 20 s after the clients left, %d MB before they came: not given back", after>>10, base>>10)
	}
}

// readUntilReady reads until a ReadyForQuery message type byte has come at a message boundary.
func readUntilReady(c net.Conn, d time.Duration) ([]byte, error) {
	_ = c.SetReadDeadline(time.Now().Add(d))
	defer c.SetReadDeadline(time.Time{})
	var got []byte
	buf := make([]byte, 4096)
	for {
		n, err := c.Read(buf)
		got = append(got, buf[:n]...)
		if msgs, derr := decodeBackend(got); derr == nil && len(msgs) > 0 {
			if _, ok := msgs[len(msgs)-1].(*pgproto3.ReadyForQuery); ok {
				return got, nil
			}
			if er, ok := msgs[len(msgs)-1].(*pgproto3.ErrorResponse); ok {
				return got, fmt.Errorf("%s %s", er.Code, er.Message)
			}
		}
		if err != nil {
			return got, err
		}
	}
}

// TestMemoryPreparedStatementChurn: five clients in turn each prepare 20,000 distinct 1 kB statements (the
// limit per client is 10,000: past it 53400) and leave; pgshard's memory stays bounded and comes back.
func TestMemoryPreparedStatementChurn(t *testing.T) {
	t.Parallel()
	e := startEnv(t, envOpts{size: 2})
	base := e.proxy.settledRSS(t, 5*time.Second)
	peak := base
	filler := strings.Repeat("x", 1000)
	for round := 0; round < 5; round++ {
		r := e.rawLogin(t)
		refused := 0
		for batch := 0; batch < 20; batch++ {
			for i := 0; i < 1000; i++ {
				n := batch*1000 + i
				r.fe.Send(&pgproto3.Parse{Name: fmt.Sprintf("r%d_%d", round, n), Query: fmt.Sprintf("SELECT %d, '%s'", round*100000+n, filler)})
			}
			r.fe.Send(&pgproto3.Sync{})
			if err := r.fe.Flush(); err != nil {
				t.Fatal(err)
			}
			got, err := r.receiveUntil(t, 30*time.Second, isReady)
			if err != nil {
				t.Fatalf("round %d batch %d: %v", round, batch, err)
			}
			for _, g := range got {
				if strings.HasPrefix(g, "ErrorResponse(ERROR 53400") {
					refused++
				}
			}
		}
		if refused != 10 { // the batches past the client's 10,000 statements, each refused at its first Parse
			t.Errorf("round %d: %d batches refused with 53400, want the 10 past limits.client_prepared_statements", round, refused)
		}
		rss, _ := e.proxy.rssKB(t)
		peak = max(peak, rss)
		r.Close()
	}
	after := e.proxy.rssFallsTo(t, base+40<<10, 20*time.Second)
	t.Logf("RSS %d MB, peak %d MB over 5 rounds of 10,000 statements of 1 kB, %d MB once the clients left", base>>10, peak>>10, after>>10)
	if peak-base > 200<<10 {
		t.Errorf("pgshard grew by %d MB for one client's 10,000 statements at a time", (peak-base)>>10)
	}
	// What stays: the statements no client uses any more, kept for the next client that prepares the same text
	// (at most 10,000 of them) and each server connection's own (pool.max_prepared_statements).
	if after > base+40<<10 {
		t.Errorf("RSS %d MB 20 s after the clients left, %d MB before: the statements were not let go", after>>10, base>>10)
	}
}

// TestMemoryManySlowReaders: 1,000 clients each read a 2 MB result slowly (6 MB/s), in transaction mode with 40
// server connections: pgshard's memory is bounded by the pool, not by the clients or their results, and comes
// back down once they are gone. (At these sizes the kernel's socket buffers hold what a client has not read
// yet; TestSlowReaderDoesNotGrowProxyMemory shows pgshard's own bound, limits.client_outbound_buffer, on a
// result far larger than they are.)
func TestMemoryManySlowReaders(t *testing.T) {
	t.Parallel()
	const clients, rows, width = 1000, 2048, 1000
	e := startEnv(t, envOpts{size: 40, checkout: "120s", maxClients: clients + 10,
		limits: []string{"client_outbound_buffer: 256kB", "max_pending_logins: 2000"}})
	base := e.proxy.settledRSS(t, 5*time.Second)
	var peak int
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
				rss, _ := e.proxy.rssKB(t)
				peak = max(peak, rss)
			}
		}
	}()
	var query bytes.Buffer
	fe := pgproto3.NewFrontend(nil, &query)
	fe.Send(&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersionNumber,
		Parameters: map[string]string{"user": "trusted", "database": "app"}})
	fe.Send(&pgproto3.Query{String: fmt.Sprintf("SELECT repeat('x', %d) FROM generate_series(1, %d)", width, rows)})
	if err := fe.Flush(); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for i := 0; i < clients; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.DialTimeout("tcp", e.proxy.Addr(), 10*time.Second)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			if _, err := c.Write(query.Bytes()); err != nil {
				errs <- err
				return
			}
			// Read 32 kB every 5 ms (6 MB/s), until the result's ReadyForQuery.
			_ = c.SetReadDeadline(time.Now().Add(3 * time.Minute))
			var tail []byte
			buf := make([]byte, 32<<10)
			total := 0
			for {
				n, err := c.Read(buf)
				total += n
				tail = append(tail, buf[:n]...)
				if len(tail) > 64 {
					tail = tail[len(tail)-64:]
				}
				if err != nil {
					errs <- fmt.Errorf("after %d bytes: %w", total, err)
					return
				}
				if len(tail) >= 6 && bytes.Equal(tail[len(tail)-6:], []byte{'Z', 0, 0, 0, 5, 'I'}) && total > rows*width {
					return
				}
				time.Sleep(5 * time.Millisecond)
			}
		}()
	}
	wg.Wait()
	close(stop)
	<-sampled
	close(errs)
	for err := range errs {
		t.Fatalf("a slow reader: %v", err)
	}
	t.Logf("RSS %d MB, peak %d MB with %d clients reading %d kB each slowly", base>>10, peak>>10, clients, rows*width>>10)
	if peak-base > 40<<10 {
		t.Errorf("pgshard grew by %d MB", (peak-base)>>10)
	}
	after := e.proxy.rssFallsTo(t, base+16<<10, 20*time.Second)
	t.Logf("RSS %d MB once they left", after>>10)
	if after > base+16<<10 {
		t.Errorf("RSS %d MB 20 s after the clients left, %d MB before they came", after>>10, base>>10)
	}
}

// TestMemoryIdleTLSClients: what an idle TLS client costs pgshard (its TLS session's buffers on top of a
// plaintext client's), bounded, and given back when they leave.
func TestMemoryIdleTLSClients(t *testing.T) {
	t.Parallel()
	const clients = 1000
	ca := newTestCA(t, t.TempDir(), "mem-")
	e := startEnv(t, envOpts{size: 2, maxClients: clients + 10,
		top: []string{"tls: {mode: require, cert: " + ca.certFile + ", key: " + ca.keyFile + "}"}})
	base := e.proxy.settledRSS(t, 5*time.Second)
	startup := idleStartup(t)
	sslRequest := []byte{0, 0, 0, 8, 4, 210, 22, 47}
	conns := make([]net.Conn, 0, clients)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := 0; i < clients; i++ {
		c, err := net.DialTimeout("tcp", e.proxy.Addr(), 5*time.Second)
		if err != nil {
			t.Fatalf("client %d: %v", i, err)
		}
		answer := make([]byte, 1)
		if _, err := c.Write(sslRequest); err == nil {
			_, err = io.ReadFull(c, answer)
		}
		if err != nil || answer[0] != 'S' {
			t.Fatalf("client %d: SSLRequest answered %q: %v", i, answer, err)
		}
		tc := tls.Client(c, &tls.Config{InsecureSkipVerify: true})
		conns = append(conns, tc)
		if _, err := tc.Write(startup); err != nil {
			t.Fatalf("client %d: %v", i, err)
		}
		if b, err := readUntilReady(tc, 20*time.Second); err != nil {
			t.Fatalf("client %d: %v (%q)", i, err, b)
		}
	}
	checkIdleCost(t, e.proxy, base, conns, "idle TLS client", 64)
}
