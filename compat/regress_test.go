package compat

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pgshard/pgshard/internal/pgbin"
	"github.com/pgshard/pgshard/internal/pgtest"
)

// runTimeout bounds one pg_regress run. A direct run takes about a minute on 2 cores; a run through pgshard that
// is still going after this is hung (a test waiting on a connection that never answers), and is killed: the tests
// it did not finish count as failed.
const runTimeout = 5 * time.Minute

// TestRegress runs the regression tests directly (subtest direct), then through pgshard in each pooling mode
// (subtests session, session-fresh: session mode with pool.server_reuse false, and transaction), and fails when a test that passes directly fails through pgshard without
// being listed in expected-failures.txt. One mode alone: -run 'TestRegress/(direct|transaction)'. Each run has a
// cluster of its own, stopped at the end of its subtest.
func TestRegress(t *testing.T) {
	if os.Getenv("PGSHARD_COMPAT") == "" {
		t.Skip("the compatibility suite runs only with PGSHARD_COMPAT=1 (make compat)")
	}
	f, err := os.Open("expected-failures.txt")
	if err != nil {
		t.Fatal(err)
	}
	exp, err := ParseExpectations(f)
	f.Close()
	if err != nil {
		t.Fatalf("expected-failures.txt: %v", err)
	}

	out := outputDir(t)
	fmt.Printf("compat: output in %s\n", out)
	input := prepareInput(t, out)
	pgRegress := pgRegressPath(t)
	bin := pgshardBinary(t, t.TempDir())

	var direct Results
	t.Run("direct", func(t *testing.T) { direct = runRegress(t, pgRegress, input, out, "direct", "") })
	var comps []Comparison
	for _, mode := range []string{"session", modeSessionFresh, "transaction"} {
		t.Run(mode, func(t *testing.T) {
			if direct == nil {
				t.Skipf("needs the direct run to compare with: -run 'TestRegress/(direct|%s)'", mode)
			}
			proxied := runRegress(t, pgRegress, input, out, mode, bin)
			comps = append(comps, Compare(mode, direct, proxied, exp))
		})
	}
	if !Report(os.Stdout, comps, exp, out) {
		t.Errorf("tests that pass directly fail through pgshard and are not in compat/expected-failures.txt (see above)")
	}
	fmt.Printf("\ncompat: diffs, pg_regress output and logs of each run in %s/<mode>/\n", out)
}

// outputDir is $PGSHARD_COMPAT_OUT or a new directory in the temp dir. It is kept after the run (it holds the
// diffs). The user postgres must reach it: the tests make the server read files under input/ and write files
// under <mode>/results/.
func outputDir(t *testing.T) string {
	dir := os.Getenv("PGSHARD_COMPAT_OUT")
	var err error
	if dir == "" {
		dir, err = os.MkdirTemp("", "pgshard-compat-")
	} else {
		err = os.MkdirAll(dir, 0o755)
	}
	if err == nil {
		dir, err = filepath.Abs(dir)
	}
	if err == nil {
		err = os.Chmod(dir, 0o755)
	}
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// prepareInput copies the regression tests from the cache of scripts/ensure-regress.sh into out/input: the cache
// lives in the home directory, which the server (running as the user postgres) may not read.
func prepareInput(t *testing.T, out string) string {
	cmd := exec.Command("bash", "../scripts/ensure-regress.sh")
	cmd.Stderr = os.Stderr
	b, err := cmd.Output()
	if err != nil {
		t.Fatalf("scripts/ensure-regress.sh: %v", err)
	}
	cache := strings.TrimSpace(string(b))
	input := filepath.Join(out, "input")
	if err := os.RemoveAll(input); err != nil {
		t.Fatal(err)
	}
	if b, err := exec.Command("cp", "-r", cache, input).CombinedOutput(); err != nil {
		t.Fatalf("copying %s: %v\n%s", cache, err, b)
	}
	if b, err := exec.Command("chmod", "-R", "a+rX", input).CombinedOutput(); err != nil {
		t.Fatalf("chmod %s: %v\n%s", input, err, b)
	}
	return input
}

// pgRegressPath finds pg_regress where Debian's postgresql-client puts it, next to the server's pgxs.
func pgRegressPath(t *testing.T) string {
	binDir, err := pgbin.Dir()
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(filepath.Dir(binDir), "lib", "pgxs", "src", "test", "regress", "pg_regress")
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("pg_regress not found at %s (Debian's postgresql-client-<major> ships it): %v", p, err)
	}
	return p
}

// runRegress runs the parallel schedule against a fresh cluster, through pgshard in mode when bin is set
// (directly otherwise), with its output in out/name, and returns the outcome of each test.
func runRegress(t *testing.T, pgRegress, input, out, name, bin string) Results {
	dir := filepath.Join(out, name)
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	// results/ is written by pg_regress (as us) and by the server's COPY ... TO (as postgres).
	if err := os.MkdirAll(filepath.Join(dir, "results"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(dir, "results"), 0o777); err != nil {
		t.Fatal(err)
	}

	// Every statement in the server log, with its backend's pid (pgtest's log_line_prefix): what pgshard sent to
	// which server connection is what explains most diffs.
	cluster := pgtest.Start(t, pgtest.Options{Settings: map[string]string{"log_statement": "all"}})
	createRegressionDB(t, cluster)
	port := cluster.Port
	var p *proxy
	if bin != "" {
		p = startProxy(t, bin, dir, name, cluster)
		port = p.port
	}

	start := time.Now()
	err := pgRegressRun(pgRegress, input, dir, port)
	elapsed := time.Since(start).Round(time.Second)
	copyFile(cluster.LogFile, filepath.Join(dir, "postgres.log"))
	// pgshard's CPU time tells a slow run of pgshard's own from one slowed by the machine's other load.
	cpu := ""
	if p != nil {
		p.stop()
		if st := p.cmd.ProcessState; st != nil {
			cpu = fmt.Sprintf(", pgshard used %v of CPU", (st.UserTime() + st.SystemTime()).Round(100*time.Millisecond))
		}
	}

	// Its output, not regression.out: pg_regress removes that file when all tests pass.
	f, ferr := os.Open(filepath.Join(dir, "pg_regress.log"))
	if ferr != nil {
		t.Fatal(ferr)
	}
	res, perr := ParseResults(f)
	f.Close()
	if perr != nil || len(res) == 0 {
		t.Fatalf("%s: no test results from pg_regress (%v, %v); its output:\n%s", name, err, perr, tailFile(filepath.Join(dir, "pg_regress.log")))
	}
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) || exitErr != nil && exitErr.ExitCode() != 1 {
		// 1 is "some tests failed"; anything else (a timeout, exit 2) is worth a line, yet the results count.
		fmt.Printf("compat: %s: pg_regress: %v\n", name, err)
	}
	fmt.Printf("compat: %-13s %3d of %3d tests passed in %v%s\n", name, len(res.Passed()), len(res), elapsed, cpu)
	return res
}

// createRegressionDB makes the database as pg_regress makes it when it does not --use-existing (create_database
// in pg_regress.c): from template0, with the settings the expected outputs assume.
func createRegressionDB(t *testing.T, c *pgtest.Cluster) {
	c.Exec(t, "postgres", "CREATE DATABASE regression TEMPLATE=template0")
	for _, set := range []string{"lc_messages TO 'C'", "lc_monetary TO 'C'", "lc_numeric TO 'C'", "lc_time TO 'C'",
		"bytea_output TO 'hex'", "timezone_abbreviations TO 'Default'"} {
		c.Exec(t, "postgres", "ALTER DATABASE regression SET "+set)
	}
}

// pgRegressRun runs pg_regress as `make installcheck-parallel` does, against 127.0.0.1:port, in its own process
// group so that a timeout kills its psql children too.
func pgRegressRun(pgRegress, input, dir string, port int) error {
	binDir, err := pgbin.Dir()
	if err != nil {
		return err
	}
	cmd := exec.Command(pgRegress,
		"--use-existing",
		"--bindir="+binDir,
		"--inputdir="+input,
		"--outputdir="+dir,
		"--dlpath="+filepath.Join(input, "lib"),
		"--schedule="+filepath.Join(input, "parallel_schedule"),
		"--max-concurrent-tests=20",
		"--host=127.0.0.1",
		"--port="+strconv.Itoa(port),
		"--user="+pgtest.Superuser,
		"--dbname=regression",
	)
	return runLogged(cmd, dir)
}

// runLogged runs cmd in dir, its output in dir/pg_regress.log, in its own process group so that a timeout
// (runTimeout) kills its psql or isolationtester children too.
func runLogged(cmd *exec.Cmd, dir string) error {
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	cmd.Dir = dir
	cmd.Env = regressEnv()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	log, err := os.Create(filepath.Join(dir, "pg_regress.log"))
	if err != nil {
		return err
	}
	defer log.Close()
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // the process group we made: pg_regress and its psqls
		<-done
		return fmt.Errorf("killed after %v", runTimeout)
	}
}

// regressEnv is our environment without PG* variables (a developer's PGOPTIONS or PGDATABASE would change the
// tests' outputs); pg_regress sets the ones the tests need (PGTZ, PGDATESTYLE, PGOPTIONS, ...).
func regressEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PG") {
			env = append(env, kv)
		}
	}
	return env
}

func copyFile(from, to string) {
	if b, err := os.ReadFile(from); err == nil {
		_ = os.WriteFile(to, b, 0o644)
	}
}

// tailFile returns the last 30 lines of a file, for failure messages.
func tailFile(path string) string {
	b, _ := os.ReadFile(path)
	lines := bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n"))
	if len(lines) > 30 {
		lines = lines[len(lines)-30:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}
