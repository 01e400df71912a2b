package compat

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pgshard/pgshard/internal/pgtest"
)

// libpqModule is the driver whose own test suite runs through pgshard: its Go module holds its _test.go files,
// and they read the PG* variables to find the server.
const libpqModule = "github.com/lib/pq@v1.10.9"

// TestLibPQ runs lib/pq's test suite directly against a fresh cluster and then through pgshard in each pooling
// mode, with the same rule as TestRegress: a test that passes directly and fails through pgshard must be listed,
// in expected-failures-libpq.txt (as libpq/<TestName>; go test's output of each run is in <out>/libpq-<mode>/).
func TestLibPQ(t *testing.T) {
	if os.Getenv("PGSHARD_COMPAT") == "" {
		t.Skip("the compatibility suite runs only with PGSHARD_COMPAT=1 (make compat)")
	}
	exp := loadExpectations(t, "expected-failures-libpq.txt")
	out := outputDir(t)
	src := libpqSource(t, filepath.Join(out, "libpq-src"))
	bin := pgshardBinary(t, out)

	comps := compareModes(t, "libpq", bin, out, []string{"session", "transaction"}, exp, func(dir string, port int) Results {
		return runLibPQ(t, src, dir, port)
	})
	fmt.Printf("\ncompat: lib/pq's own tests (go test -v output of each run: %s/libpq-<mode>/go-test.log)\n", out)
	if !Report(os.Stdout, comps, exp, out) {
		t.Errorf("lib/pq tests that pass directly fail through pgshard and are not in compat/expected-failures-libpq.txt (see above)")
	}
}

// compareModes runs a suite (run, against 127.0.0.1:port with its output in dir) directly and then through
// pgshard in each of modes, each run on a fresh cluster with its output in out/<suite>-<mode>, and compares every
// mode's results with the direct run's.
func compareModes(t *testing.T, suite, bin, out string, modes []string, exp Expectations, run func(dir string, port int) Results) []Comparison {
	var direct Results
	var comps []Comparison
	for _, mode := range append([]string{"direct"}, modes...) {
		t.Run(mode, func(t *testing.T) {
			dir := filepath.Join(out, suite+"-"+mode)
			if err := os.RemoveAll(dir); err != nil {
				t.Fatal(err)
			}
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			cluster := pgtest.Start(t, pgtest.Options{})
			createRegressionDB(t, cluster)
			port := cluster.Port
			if mode != "direct" {
				port = startProxy(t, bin, dir, mode, cluster).port
			}
			start := time.Now()
			res := run(dir, port)
			fmt.Printf("compat: %s %-11s %3d of %3d tests passed in %v\n", suite, mode, len(res.Passed()), len(res),
				time.Since(start).Round(time.Second))
			if mode == "direct" {
				direct = res
				return
			}
			if direct == nil {
				t.Skip("needs the direct run to compare with")
			}
			comps = append(comps, Compare(mode, direct, res, exp))
		})
	}
	return comps
}

// loadExpectations reads an expected-failures file.
func loadExpectations(t *testing.T, name string) Expectations {
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	exp, err := ParseExpectations(f)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return exp
}

// libpqSource downloads the module (the Go module proxy is reachable here) and copies it to dir, writable, so
// that its tests can be built and run there.
func libpqSource(t *testing.T, dir string) string {
	cmd := exec.Command("go", "mod", "download", "-json", libpqModule)
	b, err := cmd.Output()
	if err != nil {
		t.Fatalf("go mod download %s: %v", libpqModule, err)
	}
	var mod struct{ Dir string }
	if err := json.Unmarshal(b, &mod); err != nil || mod.Dir == "" {
		t.Fatalf("go mod download %s: no directory in %s", libpqModule, b)
	}
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if b, err := exec.Command("cp", "-r", mod.Dir, dir).CombinedOutput(); err != nil {
		t.Fatalf("copying %s: %v\n%s", mod.Dir, err, b)
	}
	if b, err := exec.Command("chmod", "-R", "u+w", dir).CombinedOutput(); err != nil {
		t.Fatalf("chmod %s: %v\n%s", dir, err, b)
	}
	return dir
}

// runLibPQ runs the suite in src against 127.0.0.1:port as the superuser, its output in dir/go-test.log.
func runLibPQ(t *testing.T, src, dir string, port int) Results {
	cmd := exec.Command("go", "test", "-count=1", "-v", "-timeout", "3m", ".")
	cmd.Dir = src
	cmd.Env = append(regressEnv(), "PGHOST=127.0.0.1", "PGPORT="+strconv.Itoa(port), "PGUSER="+pgtest.Superuser,
		"PGDATABASE=regression", "PGSSLMODE=disable", "PGCONNECT_TIMEOUT=10")
	log, err := os.Create(filepath.Join(dir, "go-test.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	cmd.Stdout, cmd.Stderr = log, log
	start := time.Now()
	runErr := cmd.Run() // fails when any test fails: the results say which
	if _, err := log.Seek(0, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	res, err := parseGoTest(log)
	if err != nil || len(res) == 0 {
		t.Fatalf("no test results from lib/pq's suite after %v (%v, %v); its output:\n%s", time.Since(start), runErr, err,
			tailFile(filepath.Join(dir, "go-test.log")))
	}
	return res
}

// goTestLine matches go test -v's verdict on a top-level test; skipped tests count as neither.
var goTestLine = regexp.MustCompile(`^--- (PASS|FAIL): (\S+)`)

// parseGoTest reads go test -v output into results named libpq/<TestName>.
func parseGoTest(r io.Reader) (Results, error) {
	res := Results{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if m := goTestLine.FindStringSubmatch(strings.TrimRight(sc.Text(), "\r")); m != nil {
			res["libpq/"+m[2]] = m[1] == "PASS"
		}
	}
	return res, sc.Err()
}
