package compat

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/pgshard/pgshard/internal/pgbin"
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

	comps := compareModes(t, "isolation", bin, out, []string{"session"}, exp, func(dir string, port int) Results {
		return readResults(t, dir, "isolation", isolationRun(tester, input, dir, port))
	})
	fmt.Printf("\ncompat: Postgres's isolation tests (output of each run: %s/isolation-<mode>/)\n", out)
	if !Report(os.Stdout, comps, exp, out) {
		t.Errorf("isolation tests that pass directly fail through pgshard and are not in compat/expected-failures-isolation.txt (see above)")
	}
}

// isolationRegressPath finds pg_isolation_regress (and isolationtester beside it) where Debian's
// postgresql-client puts them.
func isolationRegressPath(t *testing.T) string {
	binDir, err := pgbin.Dir()
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
