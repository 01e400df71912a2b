package e2e

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgshard/pgshard/internal/pgtest"
)

// procKB reads a "VmXXX:   123 kB" line of /proc/<pid>/status.
func procKB(t *testing.T, pid int, field string) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, field+":") {
			f := strings.Fields(line)
			n, _ := strconv.Atoi(f[1])
			return n
		}
	}
	t.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}

// A client that reads a 200 MB result slowly must not make the proxy hold the result: past
// limits.client_outbound_buffer the proxy stops reading from the server.
func TestSlowReaderDoesNotGrowProxyMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Postgres")
	}
	pg := pgtest.Start(t, pgtest.Options{Databases: []string{"app_0"}, DatabaseOwner: "app",
		Users: []pgtest.UserSpec{{Name: "app", Password: "secret"}}})
	p := StartProxy(t, fmt.Sprintf(`
listen: "127.0.0.1:%%PORT%%"
limits: {client_outbound_buffer: 1MB}
pool: {size: 2}
users: [{name: app, password: secret}]
databases: [{name: app, shards: [{primary: "postgres://127.0.0.1:%d/app_0"}]}]
`, pg.Port))
	ctx := Ctx(t, 2*time.Minute)
	c, err := pgx.Connect(ctx, p.DSN("app", "app", "secret"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	pid := p.cmd.Process.Pid
	before := procKB(t, pid, "VmRSS")

	const rowsWanted, width = 200000, 1000
	rows, err := c.Query(ctx, "SELECT i, repeat('x', $1) FROM generate_series(1, $2) i", width, rowsWanted)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	peak := 0
	for rows.Next() {
		n++
		if n%2000 == 0 {
			time.Sleep(20 * time.Millisecond) // a slow reader: ~100 MB/s at most
			peak = max(peak, procKB(t, pid, "VmRSS"))
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if n != rowsWanted {
		t.Fatalf("got %d rows, want %d", n, rowsWanted)
	}
	growth := (peak - before) / 1024
	t.Logf("proxy RSS before %d MB, peak while streaming %d MB", before/1024, peak/1024)
	if growth > 64 {
		t.Fatalf("proxy RSS grew by %d MB while a slow client read a %d MB result; want < 64 MB", growth, rowsWanted*width>>20)
	}
	// The connection is still good afterwards.
	var one int
	if err := c.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil || one != 1 {
		t.Fatalf("after the stream: %v %d", err, one)
	}
}
