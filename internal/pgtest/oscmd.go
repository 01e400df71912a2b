package pgtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
)

// asRoot reports whether Postgres commands must run as the operating-system user postgres.
func asRoot() bool { return os.Geteuid() == 0 }

// postgresIDs returns the uid and gid of the operating-system user postgres.
func postgresIDs() (uid, gid int, err error) {
	u, err := user.Lookup("postgres")
	if err != nil {
		return 0, 0, fmt.Errorf("pgtest: running as root, but there is no user postgres to run Postgres as "+
			"(run scripts/ensure-postgres.sh; the distribution's package creates it): %w", err)
	}
	uid, err = strconv.Atoi(u.Uid)
	if err != nil {
		return 0, 0, err
	}
	gid, err = strconv.Atoi(u.Gid)
	return uid, gid, err
}

// chownToPostgres hands path (not recursively) to the user postgres when running as root; otherwise it does
// nothing.
func chownToPostgres(paths ...string) error {
	if !asRoot() {
		return nil
	}
	uid, gid, err := postgresIDs()
	if err != nil {
		return err
	}
	for _, p := range paths {
		if err := os.Chown(p, uid, gid); err != nil {
			return err
		}
	}
	return nil
}

// pgCommand builds the command that runs a Postgres program (a path) with args: directly, or through
// `runuser -u postgres --` when running as root. Its environment has no PG* variables (so a developer's PGPORT or
// PGDATA cannot steer it), a C locale, and its working directory is "/" so that a cwd the user postgres may not
// enter makes no warnings.
func pgCommand(ctx context.Context, program string, args ...string) (*exec.Cmd, error) {
	name := program
	if asRoot() {
		if _, _, err := postgresIDs(); err != nil {
			return nil, err
		}
		runuser, err := exec.LookPath("runuser")
		if err != nil {
			for _, p := range []string{"/usr/sbin/runuser", "/sbin/runuser", "/usr/bin/runuser"} {
				if _, serr := os.Stat(p); serr == nil {
					runuser, err = p, nil
					break
				}
			}
		}
		if err != nil {
			return nil, errors.New("pgtest: running as root needs runuser (util-linux) to run Postgres as user postgres")
		}
		args = append([]string{"-u", "postgres", "--", program}, args...)
		name = runuser
	}
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = "/"
	cmd.Env = commandEnv()
	return cmd, nil
}

func commandEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "PG") || strings.HasPrefix(k, "LC_") || k == "LANG" || k == "LANGUAGE" {
			continue
		}
		if asRoot() && k == "HOME" {
			continue
		}
		env = append(env, kv)
	}
	env = append(env, "LC_ALL=C", "LANG=C")
	if asRoot() {
		env = append(env, "HOME="+os.TempDir())
	}
	return env
}

// runPG runs a Postgres program and returns an error holding its output when it fails.
func runPG(ctx context.Context, program string, args ...string) (string, error) {
	cmd, err := pgCommand(ctx, program, args...)
	if err != nil {
		return "", err
	}
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	err = cmd.Run()
	if err != nil {
		return out.String(), fmt.Errorf("%s %s: %w\n%s", filepath.Base(program), strings.Join(args, " "), err,
			strings.TrimSpace(out.String()))
	}
	return out.String(), nil
}

// postgresCanWrite checks that the user postgres can reach and write dir (all its parents must be traversable).
func postgresCanWrite(ctx context.Context, dir string) error {
	if !asRoot() {
		return nil
	}
	cmd, err := pgCommand(ctx, "test", "-w", dir, "-a", "-x", dir)
	if err != nil {
		return err
	}
	if cmd.Run() != nil {
		return fmt.Errorf("pgtest: the user postgres cannot write %s (is a parent directory closed to others? "+
			"`chmod o+x` it or put the directory elsewhere)", dir)
	}
	return nil
}

// tail returns the last n lines of a file, for error messages.
func tail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	defer f.Close()
	const max = 64 << 10
	if st, err := f.Stat(); err == nil && st.Size() > max {
		_, _ = f.Seek(st.Size()-max, io.SeekStart)
	}
	b, _ := io.ReadAll(f)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
