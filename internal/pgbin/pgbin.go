package pgbin

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Dir finds the directory holding the Postgres server programs (initdb, pg_ctl, postgres). It looks, in order,
// at $PGTEST_BINDIR, at the directory of the initdb found on PATH (following symlinks), and at the newest
// /usr/lib/postgresql/<version>/bin.
func Dir() (string, error) {
	if d := os.Getenv("PGTEST_BINDIR"); d != "" {
		if hasServerPrograms(d) {
			return filepath.Abs(d)
		}
		return "", fmt.Errorf("PGTEST_BINDIR=%s does not hold initdb, pg_ctl and postgres", d)
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		var dirs []string
		if r, err := filepath.EvalSymlinks(p); err == nil {
			dirs = append(dirs, filepath.Dir(r))
		}
		dirs = append(dirs, filepath.Dir(p))
		for _, d := range dirs {
			if hasServerPrograms(d) {
				return filepath.Abs(d)
			}
		}
	}
	for _, d := range debianBinDirs() {
		if hasServerPrograms(d) {
			return d, nil
		}
	}
	return "", errors.New("Postgres not found (no initdb on PATH nor in /usr/lib/postgresql/*/bin); " +
		"run scripts/ensure-postgres.sh to install it, or set PGTEST_BINDIR to the directory holding initdb")
}

// debianBinDirs lists /usr/lib/postgresql/*/bin, newest major version first.
func debianBinDirs() []string {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	version := func(d string) []int {
		var v []int
		for _, part := range strings.Split(filepath.Base(filepath.Dir(d)), ".") {
			n, err := strconv.Atoi(part)
			if err != nil {
				n = -1
			}
			v = append(v, n)
		}
		return v
	}
	slices.SortFunc(dirs, func(a, b string) int { return slices.Compare(version(b), version(a)) })
	return dirs
}

func hasServerPrograms(dir string) bool {
	for _, name := range []string{"initdb", "pg_ctl", "postgres"} {
		st, err := os.Stat(filepath.Join(dir, name))
		if err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
			return false
		}
	}
	return true
}
