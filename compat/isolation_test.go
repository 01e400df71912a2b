package compat

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/pgshard/pgshard/internal/pgtest"
)

// TestIsolation runs Postgres's isolation tests (pg_isolation_regress with isolation_schedule: concurrent
// sessions, each a connection of its own, whose locks and waits the tester follows by their backend's pid)
// directly and through pgshard in session mode, with the rule of TestRegress and its own expectations file,
// expected-failures-isolation.txt. Transaction mode cannot run them: a session's statements may run on different
// backends, so the tester cannot tell which one waits.
func TestIsolation(t *testing.T) {
	if os.Getenv("PGSHARD_COMPAT") == "" {
		t.Skip("the compatibility suite runs only with PGSHARD_COMPAT=1 (make compat)")
	}
	exp := loadExpectations(t, "expected-failures-isolation.txt")
	out := outputDir(t)
	input := filepath.Join(prepareInput(t, out), "isolation")
	tester := isolationRegressPath(t)
	bin := pgshardBinary(t, out)

	var direct Results
	var comps []Comparison
	for _, mode := range []string{"direct", "session"} {
		t.Run(mode, func(t *testing.T) {
			dir := filepath.Join(out, "isolation-"+mode)
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
			err := isolationRun(tester, input, dir, port)
			res := readResults(t, dir, "isolation "+mode, err)
			fmt.Printf("compat: isolation %-8s %3d of %3d tests passed in %v\n", mode, len(res.Passed()), len(res),
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
	fmt.Printf("\ncompat: Postgres's isolation tests (output of each run: %s/isolation-<mode>/)\n", out)
	if !Report(os.Stdout, comps, exp, out) {
		t.Errorf("isolation tests that pass directly fail through pgshard and are not in compat/expected-failures-isolation.txt (see above)")
	}
}

// isolationRegressPath finds pg_isolation_regress (and isolationtester beside it) where Debian's
// postgresql-client puts them.
func isolationRegressPath(t *testing.T) string {
	binDir, err := pgtest.BinDir()
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(filepath.Dir(binDir), "lib", "pgxs", "src", "test", "isolation", "pg_isolation_regress")
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("pg_isolation_regress not found at %s (Debian's postgresql-client-<major> ships it): %v", p, err)
	}
	return p
}

// isolationRun runs the isolation schedule against 127.0.0.1:port as installcheck does.
func isolationRun(tester, input, dir string, port int) error {
	return runLogged(exec.Command(tester,
		"--use-existing",
		"--inputdir="+input,
		"--outputdir="+dir,
		"--schedule="+filepath.Join(input, "isolation_schedule"),
		"--host=127.0.0.1",
		"--port="+strconv.Itoa(port),
		"--user="+pgtest.Superuser,
		"--dbname=regression",
	), dir)
}

// readResults parses the pg_regress.log of a run in dir.
func readResults(t *testing.T, dir, name string, runErr error) Results {
	f, err := os.Open(filepath.Join(dir, "pg_regress.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	res, perr := ParseResults(f)
	if perr != nil || len(res) == 0 {
		t.Fatalf("%s: no test results (%v, %v); its output:\n%s", name, runErr, perr, tailFile(filepath.Join(dir, "pg_regress.log")))
	}
	return res
}
