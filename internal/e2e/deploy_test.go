package e2e

import (
	"encoding/json"
	"errors"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// What running pgshard in a container needs: logs a platform can collect.

// TestLogFormatJSON: log_format json writes one JSON object a line to stderr.
func TestLogFormatJSON(t *testing.T) {
	t.Parallel()
	p := StartProxy(t, `listen: "127.0.0.1:%PORT%"
log_format: json
users: [{name: app, password: secret}]
databases: [{name: app, shards: [{primary: "postgres://127.0.0.1:1/app"}]}]
`)
	p.Stop(t, 10*time.Second)
	lines := strings.Split(strings.TrimSpace(p.Log()), "\n")
	for _, l := range lines {
		var rec map[string]any
		if err := json.Unmarshal([]byte(l), &rec); err != nil || rec["msg"] == nil || rec["level"] == nil {
			t.Fatalf("not a JSON log record: %q (%v)", l, err)
		}
	}
	if !strings.Contains(p.Log(), `"msg":"listening"`) {
		t.Fatalf("no listening record in %q", p.Log())
	}
}

// TestPing: `pgshard ping` (a container's health check) exits 0 while the proxy serves, 1 once it is gone.
func TestPing(t *testing.T) {
	t.Parallel()
	p := StartProxy(t, `listen: "127.0.0.1:%PORT%"
users: [{name: app, password: secret}]
databases: [{name: app, shards: [{primary: "postgres://127.0.0.1:1/app"}]}]
`)
	ping := func() (string, error) {
		out, err := exec.Command(Binary(t), "ping", "--config", p.ConfigPath, "--timeout", "2s").CombinedOutput()
		return string(out), err
	}
	if out, err := ping(); err != nil || !strings.Contains(out, "ok") {
		t.Fatalf("ping of a running pgshard: %v: %s", err, out)
	}
	p.Stop(t, 10*time.Second)
	if out, err := ping(); err == nil {
		t.Fatalf("ping of a stopped pgshard succeeded: %s", out)
	}
}

// TestImage: `make image`'s script builds the container image (a static binary on an empty base) with podman or
// docker, and the binary in the image's own filesystem runs. Skipped when neither can build here (.ci/run
// installs podman so that CI runs it).
func TestImage(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("builds a static binary and an image")
	}
	script, err := filepath.Abs("../../scripts/image.sh")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("bash", script, "--check", "pgshard:e2e-test")
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if errors.As(err, &exit) && exit.ExitCode() == 3 {
		t.Skipf("no podman and no docker engine on this machine: %s", strings.TrimSpace(string(out)))
	}
	if err != nil || !strings.Contains(string(out), "pgshard 0.1.0") {
		t.Fatalf("scripts/image.sh --check: %v\n%s", err, out)
	}
}

// TestLogWire: with log_wire, pgshard logs each message a client and pgshard exchange, a line each, with
// statement texts but never parameter or row values.
func TestLogWire(t *testing.T) {
	t.Parallel()
	e := startEnv(t, envOpts{size: 1, top: []string{"log_wire: true"}})
	ctx := Ctx(t, time.Minute)
	c := e.connect(t, ctx)
	var got string
	if err := c.QueryRow(ctx, "SELECT $1::text", "hush-value").Scan(&got); err != nil || got != "hush-value" {
		t.Fatalf("%q %v", got, err)
	}
	wants := []string{`from=client msg="Parse \"`, `SELECT $1::text`, `from=client msg="Bind `,
		`from=pgshard msg="DataRow 1 columns`, `from=pgshard msg="ReadyForQuery I`}
	// The log comes through a pipe: its last lines may arrive a moment after the answer.
	var log string
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		log = e.proxy.Log()
		if !slices.ContainsFunc(wants, func(w string) bool { return !strings.Contains(log, w) }) || time.Now().After(deadline) {
			break
		}
	}
	for _, want := range wants {
		if !strings.Contains(log, want) {
			t.Errorf("the log lacks %q", want)
		}
	}
	if strings.Contains(log, "hush-value") {
		t.Error("the wire trace shows a parameter or row value")
	}
}
