package pgtest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// ownerFile, in a temporary cluster directory, holds the pid of the process that made it, so that a later process
// can remove the clusters of a test run that was killed before its cleanups ran.
const ownerFile = "pgtest.owner"

// tempBase is the directory for temporary clusters: os.TempDir(), or /tmp when running as root and the user
// postgres could not reach os.TempDir().
func tempBase() string {
	base := os.TempDir()
	if !asRoot() {
		return base
	}
	for d := base; ; d = filepath.Dir(d) {
		st, err := os.Stat(d)
		if err != nil || st.Mode().Perm()&0o001 == 0 {
			return "/tmp"
		}
		if d == filepath.Dir(d) {
			return base
		}
	}
}

// newTempDir makes a 0755 directory under tempBase, owned by postgres when running as root, with an owner file.
func newTempDir() (string, error) {
	dir, err := os.MkdirTemp(tempBase(), "pgtest-")
	if err != nil {
		return "", fmt.Errorf("pgtest: %w", err)
	}
	owner := filepath.Join(dir, ownerFile)
	err = os.Chmod(dir, 0o755)
	if err == nil {
		err = os.WriteFile(owner, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644)
	}
	if err == nil {
		err = chownToPostgres(dir, owner)
	}
	if err != nil {
		_ = os.RemoveAll(dir)
		return "", fmt.Errorf("pgtest: %w", err)
	}
	return dir, nil
}

var sweepOnce sync.Once

// sweepStale removes temporary clusters whose owner process is gone (a test binary killed before its cleanups),
// stopping their servers first. Only directories made by newTempDir (with an owner file) are touched.
func sweepStale(ctx context.Context, binDir string) {
	entries, err := os.ReadDir(tempBase())
	if err != nil {
		return
	}
	for _, e := range entries {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), "pgtest-") {
			continue
		}
		dir := filepath.Join(tempBase(), e.Name())
		b, err := os.ReadFile(filepath.Join(dir, ownerFile))
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || pid <= 0 || processAlive(pid) {
			continue
		}
		data := filepath.Join(dir, "data")
		if _, err := os.Stat(filepath.Join(data, "postmaster.pid")); err == nil {
			_, _ = runPG(ctx, filepath.Join(binDir, "pg_ctl"), "stop", "-D", data, "-m", "immediate", "-w", "-t", "30", "-s")
		}
		// Should the stop have failed, the server notices its lock file is gone and shuts itself down.
		_ = os.RemoveAll(dir)
	}
}

func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

var (
	templateMu    sync.Mutex
	templateReady = map[string]string{}
)

// templateDir returns a directory whose data/ is a fresh initdb for binDir, made once per machine (and user) and
// shared by all later processes: copying it is ~20× faster than running initdb.
func templateDir(ctx context.Context, binDir string) (string, error) {
	templateMu.Lock()
	defer templateMu.Unlock()
	if d, ok := templateReady[binDir]; ok {
		return d, nil
	}
	st, err := os.Stat(filepath.Join(binDir, "postgres"))
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(fmt.Appendf(nil, "%s\x00%d\x00%d\x00%d\x00v1", binDir, st.Size(), st.ModTime().UnixNano(), os.Geteuid()))
	final := filepath.Join(tempBase(), "pgtest-template-"+hex.EncodeToString(sum[:6]))
	if !templateValid(final) {
		if _, err := os.Stat(final); err == nil {
			// Broken (say, half cleaned by a tmp reaper): move it out of the way.
			trash := fmt.Sprintf("%s.broken-%d", final, os.Getpid())
			if os.Rename(final, trash) == nil {
				_ = os.RemoveAll(trash)
			}
		}
		tmp, err := newTempDir() // has an owner file: swept if this process dies half-way
		if err != nil {
			return "", err
		}
		c := &Cluster{DataDir: filepath.Join(tmp, "data"), BinDir: binDir}
		if err := c.initdb(ctx, true); err != nil {
			_ = os.RemoveAll(tmp)
			return "", err
		}
		_ = os.Remove(filepath.Join(tmp, ownerFile))
		if err := os.Rename(tmp, final); err != nil {
			_ = os.RemoveAll(tmp)
			if !templateValid(final) { // lost a race to another process: fine when its template is complete
				return "", err
			}
		}
	}
	templateReady[binDir] = final
	return final, nil
}

func templateValid(dir string) bool {
	for _, f := range []string{"data/PG_VERSION", "data/global/pg_control", "data/base/1/PG_VERSION", "data/postgresql.conf"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			return false
		}
	}
	return true
}
