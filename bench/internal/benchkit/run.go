package benchkit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// WorkDir makes a run's directory named prefix* (under /tmp when root, as TMPDIR may sit where the user postgres
// cannot go) with ownerFile naming this process, so that SweepStale in a later run can clean up after a killed one.
func WorkDir(prefix, ownerFile string) (string, error) {
	base := os.TempDir()
	if os.Geteuid() == 0 {
		base = "/tmp"
	}
	dir, err := os.MkdirTemp(base, prefix)
	if err != nil {
		return "", err
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, ownerFile), []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		return "", err
	}
	return dir, nil
}

// SweepStale cleans up after runs killed before their own clean-up: for every <tmp>/prefix* directory whose
// ownerFile names a process that is gone, it kills the processes named in its pidFiles (when that pid still runs
// with the directory on its command line), stops its Postgres (data in pg/data; only when binDir is known) and
// removes the directory.
func SweepStale(prefix, ownerFile string, pidFiles []string, binDir string, log func(string, ...any)) {
	dirs, _ := filepath.Glob(filepath.Join("/tmp", prefix+"*"))
	if d := os.TempDir(); d != "/tmp" {
		more, _ := filepath.Glob(filepath.Join(d, prefix+"*"))
		dirs = append(dirs, more...)
	}
	for _, dir := range dirs {
		b, err := os.ReadFile(filepath.Join(dir, ownerFile))
		if err != nil {
			continue
		}
		owner, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || owner <= 0 || ProcessAlive(owner) {
			continue
		}
		for _, name := range pidFiles {
			b, err := os.ReadFile(filepath.Join(dir, name))
			if err != nil {
				continue
			}
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 0 {
				if cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); err == nil &&
					bytes.Contains(cmdline, []byte(dir)) {
					_ = syscall.Kill(pid, syscall.SIGKILL)
				}
			}
		}
		data := filepath.Join(dir, "pg", "data")
		if _, err := os.Stat(filepath.Join(data, "postmaster.pid")); err == nil && binDir != "" {
			StopCluster(binDir, data)
		}
		log("removed %s, left behind by a killed run (pid %d)", dir, owner)
		_ = os.RemoveAll(dir)
	}
}

// Proc is a server a bench started (pgshard, PgBouncer). Its pid is the program's own (no wrapper in between), so
// /proc/<pid> is its.
type Proc struct {
	Name    string
	Port    int
	LogPath string
	cmd     *exec.Cmd
	done    chan struct{}
	err     error
}

// Start runs cmd (path, arguments, environment and credentials set by the caller) with its output appended to
// logPath, in its own process group (a Ctrl-C reaches only the harness, which stops it after cutting the run
// short) and sent SIGTERM should the harness die; writes its pid to pidFile (for SweepStale) and waits until port
// accepts connections.
func Start(cmd *exec.Cmd, name string, port int, logPath, pidFile string) (*Proc, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer logf.Close() // the child has its own descriptor
	cmd.Stdout, cmd.Stderr = logf, logf
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig, cmd.SysProcAttr.Setpgid = syscall.SIGTERM, true
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &Proc{Name: name, Port: port, LogPath: logPath, cmd: cmd, done: make(chan struct{})}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	_ = os.WriteFile(pidFile, []byte(strconv.Itoa(p.Pid())+"\n"), 0o644)

	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return p, nil
		}
		if !p.Alive() {
			time.Sleep(50 * time.Millisecond) // let the last log lines reach the file
			return nil, errors.New(p.ExitErr())
		}
		if time.Now().After(deadline) {
			p.Stop()
			return nil, fmt.Errorf("%s does not listen on %s after 20 s: %v\n%s", name, addr, err, TailFile(logPath, 15))
		}
	}
}

// Pid is the process id.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Alive reports whether the process still runs.
func (p *Proc) Alive() bool {
	if p == nil {
		return false
	}
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// ExitErr says how the process ended, with the end of its log.
func (p *Proc) ExitErr() string {
	return fmt.Sprintf("%s exited (%v); its log ends with:\n%s", p.Name, p.err, TailFile(p.LogPath, 15))
}

// Stop sends SIGTERM to the process (by pid), SIGKILL when it has not exited 10 s later.
func (p *Proc) Stop() {
	if !p.Alive() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// PgshardBinary returns the absolute path of the pgshard binary to measure: path, or when empty bin/pgshard after
// `make build` in the checkout root.
func PgshardBinary(ctx context.Context, root, path string, logf func(string, ...any)) (string, error) {
	if path == "" {
		logf("building pgshard (make build)")
		cmd := exec.CommandContext(ctx, "make", "build")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			return "", fmt.Errorf("make build: %w\n%s", err, out)
		}
		path = filepath.Join(root, "bin", "pgshard")
	}
	return filepath.Abs(path)
}

// SaveReport writes rep as JSON and md as Markdown to dir/<name>-<UTC time of started>.{json,md} (dir "" means
// bench/results of the checkout) and returns that path without its extension.
func SaveReport(dir, name string, started time.Time, rep any, md string) (string, error) {
	if dir == "" {
		root, err := RepoRoot()
		if err != nil {
			return "", err
		}
		dir = filepath.Join(root, "bench", "results")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	base := filepath.Join(dir, name+"-"+started.UTC().Format("20060102T150405Z"))
	js, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(base+".json", append(js, '\n'), 0o644); err != nil {
		return "", err
	}
	return base, os.WriteFile(base+".md", []byte(md), 0o644)
}

// FirstOutputLine runs a program (in dir, at most 30 s) and returns the first line of what it printed, or "" when
// it failed: for the versions in the reports.
func FirstOutputLine(ctx context.Context, dir, name string, args ...string) string {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(FirstLine(string(out)))
}

// PostgresVersion is "PostgreSQL <version>" of the server programs in binDir, or "".
func PostgresVersion(ctx context.Context, binDir string) string {
	return strings.Replace(FirstOutputLine(ctx, "", filepath.Join(binDir, "postgres"), "--version"), "postgres (PostgreSQL)", "PostgreSQL", 1)
}

// PgshardVersion is what `bin version` says (or "pgshard"), with the checkout's commit at root and whether it had
// local changes.
func PgshardVersion(ctx context.Context, root, bin string) string {
	v := ""
	if bin != "" {
		v = FirstOutputLine(ctx, root, bin, "version")
	}
	if v == "" {
		v = "pgshard"
	}
	if commit := FirstOutputLine(ctx, root, "git", "rev-parse", "--short", "HEAD"); commit != "" {
		if FirstOutputLine(ctx, root, "git", "status", "--porcelain", "--untracked-files=no") != "" {
			commit += ", with local changes"
		}
		v += " (" + commit + ")"
	}
	return v
}

// StandIn is a Proc for a server the bench did not start, for tests of code that takes a Proc: it counts as
// running until end is called.
func StandIn(name string, port int) (p *Proc, end func()) {
	p = &Proc{Name: name, Port: port, done: make(chan struct{})}
	return p, func() { close(p.done) }
}
