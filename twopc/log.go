package twopc

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
)

// The log is a text file of records, one a line, each ending with the CRC-32 of the rest of its line:
//
//	# comment lines
//	log <instance> <boot> <crc>     the header: who writes here, and how many times pgshard started on it
//	commit <gid> <crc>              the decision to commit gid, fsynced before any shard is told
//	done <gid> <crc>                every shard committed gid (not fsynced: losing it costs a no-op)
//
// A transaction that has no commit record was not decided: whatever is left prepared of it is rolled back.
// A torn or damaged line (a crash while appending) is skipped; its record was never acknowledged, since the
// fsync that would have made it count did not finish. Open rewrites the file with only the decisions still
// to finish (write, fsync, rename, fsync of the directory), so it does not grow across starts.

const logComment = "# pgshard two-phase commit decisions. Do not edit or delete it while prepared transactions of pgshard may exist.\n"

// Log is an open decision log. Its methods are safe for concurrent use.
type Log struct {
	path     string
	instance string
	boot     uint64
	next     atomic.Uint64
	damaged  int

	lock *os.File // held (flock) while the log is open
	f    *os.File // appended to

	flightMu sync.Mutex
	inFlight map[string]bool // gids of this boot whose commit is under way (Begin to End)

	mu        sync.Mutex
	decided   map[string]bool // commit decisions not known done
	closed    bool
	broken    error // a write or fsync failed: the file's state is unknown, nothing more is decided
	reqs      chan request
	writerEnd chan struct{}
}

type request struct {
	op, gid string
	done    func(error) // nil: need not be durable
}

// Open opens (or creates) the log at path, takes its lock (one pgshard per log), reads its decisions,
// counts a new boot and compacts the file.
func Open(path string) (*Log, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	lock, err := os.OpenFile(path+".lock", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		lock.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%s is in use by another pgshard process (two_phase_log must be one per pgshard)", path)
		}
		return nil, fmt.Errorf("locking %s: %w", path+".lock", err)
	}
	l := &Log{path: path, lock: lock, decided: map[string]bool{}}
	if err := l.load(); err != nil {
		lock.Close()
		return nil, err
	}
	l.boot++
	if err := l.rewrite(); err != nil {
		lock.Close()
		return nil, err
	}
	l.f, err = os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		lock.Close()
		return nil, err
	}
	l.reqs = make(chan request, 256)
	l.writerEnd = make(chan struct{})
	go l.writer()
	return l, nil
}

// load reads the file, if there is one.
func (l *Log) load() error {
	data, err := os.ReadFile(l.path)
	if errors.Is(err, os.ErrNotExist) {
		var b [8]byte
		if _, err := rand.Read(b[:]); err != nil {
			return err
		}
		l.instance = hex.EncodeToString(b[:])
		return nil
	}
	if err != nil {
		return err
	}
	commits := map[string]bool{}
	for len(data) > 0 {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			l.damaged++ // torn last line
			break
		}
		line := string(data[:i])
		data = data[i+1:]
		if line == "" || line[0] == '#' {
			continue
		}
		f, ok := checkRecord(line)
		if !ok {
			l.damaged++
			continue
		}
		switch {
		case f[0] == "log" && len(f) == 3 && l.instance == "":
			boot, err := strconv.ParseUint(f[2], 10, 64)
			if err != nil || !validInstance(f[1]) {
				l.damaged++
				continue
			}
			l.instance, l.boot = f[1], boot
		case f[0] == "commit" && len(f) == 2:
			commits[f[1]] = true
		case f[0] == "done" && len(f) == 2:
			delete(commits, f[1])
		default:
			l.damaged++
		}
	}
	if l.instance == "" {
		return fmt.Errorf("%s is not a pgshard two-phase commit log (no valid header); move it away if it is not needed", l.path)
	}
	for gid := range commits {
		if l.Ours(gid) {
			l.decided[gid] = true
		}
	}
	return nil
}

// rewrite replaces the file by one with the header and the decisions not done yet.
func (l *Log) rewrite() error {
	var b []byte
	b = append(b, logComment...)
	b = appendRecord(b, "log", l.instance, strconv.FormatUint(l.boot, 10))
	for gid := range l.decided {
		b = appendRecord(b, "commit", gid)
	}
	tmp := l.path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, l.path); err != nil {
		return err
	}
	return syncDir(filepath.Dir(l.path))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

func appendRecord(b []byte, fields ...string) []byte {
	start := len(b)
	for i, f := range fields {
		if i > 0 {
			b = append(b, ' ')
		}
		b = append(b, f...)
	}
	sum := crc32.ChecksumIEEE(b[start:])
	b = append(b, ' ')
	b = append(b, fmt.Sprintf("%08x", sum)...)
	return append(b, '\n')
}

// checkRecord splits a line into its fields, without the CRC, if the CRC matches.
func checkRecord(line string) ([]string, bool) {
	i := strings.LastIndexByte(line, ' ')
	if i < 0 {
		return nil, false
	}
	sum, err := strconv.ParseUint(line[i+1:], 16, 32)
	if err != nil || uint32(sum) != crc32.ChecksumIEEE([]byte(line[:i])) {
		return nil, false
	}
	f := strings.Fields(line[:i])
	return f, len(f) > 0
}

func validInstance(s string) bool {
	if len(s) != 16 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

// Path is the log's file.
func (l *Log) Path() string { return l.path }

// Damaged is the number of lines Open skipped (a torn last line after a crash is normal).
func (l *Log) Damaged() int { return l.damaged }

// Instance identifies this pgshard's transactions; Boot counts its starts on this log.
func (l *Log) Instance() string { return l.instance }
func (l *Log) Boot() uint64     { return l.boot }

// Prefix is how every transaction identifier of this log begins.
func (l *Log) Prefix() string { return "pgshard_" + l.instance + "_" }

// NewGID returns a transaction identifier never used before on this log.
func (l *Log) NewGID() string {
	return l.Prefix() + strconv.FormatUint(l.boot, 10) + "_" + strconv.FormatUint(l.next.Add(1), 10)
}

// Begin returns a new transaction identifier for a two-phase commit that starts now, in flight until End.
func (l *Log) Begin() string {
	l.flightMu.Lock()
	defer l.flightMu.Unlock()
	gid := l.NewGID()
	if l.inFlight == nil {
		l.inFlight = map[string]bool{}
	}
	l.inFlight[gid] = true
	return gid
}

// End says that the commit of gid is over: it committed or rolled back everywhere, or what is left prepared of
// it is for Resolve to finish.
func (l *Log) End(gid string) {
	l.flightMu.Lock()
	delete(l.inFlight, gid)
	l.flightMu.Unlock()
}

// InFlight returns what Resolve must leave alone: the transactions in flight now, and those begun after now.
// Taken before Resolve lists a server's prepared transactions, it tells those a commit still owns from those
// left behind without a race: a transaction that ends between the listing and the check was in flight at the
// snapshot (a live map read at check time would call it abandoned, and Resolve would roll back a transaction
// that had just committed, and fail, since it is gone). One of this boot, issued before the snapshot and not
// in flight at it, had ended before the listing, so whatever is left prepared of it was left behind.
func (l *Log) InFlight() func(gid string) bool {
	l.flightMu.Lock()
	horizon := l.next.Load()
	live := make(map[string]bool, len(l.inFlight))
	for gid := range l.inFlight {
		live[gid] = true
	}
	l.flightMu.Unlock()
	thisBoot := l.Prefix() + strconv.FormatUint(l.boot, 10) + "_"
	return func(gid string) bool {
		seq, ok := strings.CutPrefix(gid, thisBoot)
		if !ok {
			return false
		}
		n, err := strconv.ParseUint(seq, 10, 64)
		return err == nil && (n > horizon || live[gid])
	}
}

// Ours reports whether gid is a transaction identifier of this log's instance.
func (l *Log) Ours(gid string) bool {
	rest, ok := strings.CutPrefix(gid, l.Prefix())
	if !ok {
		return false
	}
	boot, n, ok := strings.Cut(rest, "_")
	_, err1 := strconv.ParseUint(boot, 10, 64)
	_, err2 := strconv.ParseUint(n, 10, 64)
	return ok && err1 == nil && err2 == nil
}

// ShardGID is the identifier under which shard prepares its part of transaction gid. Each shard's differs:
// prepared transactions' identifiers are unique in a whole Postgres server, and a transaction's shards may be
// databases of one server.
func ShardGID(gid string, shard int) string { return gid + "_" + strconv.Itoa(shard) }

// Transaction returns the transaction a prepared transaction found on a server belongs to (its ShardGID, or the
// bare identifier earlier versions prepared), and whether it is one of this log's instance.
func (l *Log) Transaction(serverGID string) (string, bool) {
	if l.Ours(serverGID) {
		return serverGID, true
	}
	i := strings.LastIndexByte(serverGID, '_')
	if i < 0 {
		return "", false
	}
	if _, err := strconv.ParseUint(serverGID[i+1:], 10, 16); err != nil || !l.Ours(serverGID[:i]) {
		return "", false
	}
	return serverGID[:i], true
}

// ThisBoot reports whether gid (one of ours) was made by this run of pgshard.
func (l *Log) ThisBoot(gid string) bool {
	return strings.HasPrefix(gid, l.Prefix()+strconv.FormatUint(l.boot, 10)+"_")
}

// Decided reports whether gid is to be committed and is not known done.
func (l *Log) Decided(gid string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	_, ok := l.decided[gid]
	return ok
}

// Undone returns the commit decisions not known done.
func (l *Log) Undone() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]string, 0, len(l.decided))
	for gid := range l.decided {
		out = append(out, gid)
	}
	return out
}

// Commit appends the decision to commit gid and makes it durable; done gets the outcome, on the writer's
// goroutine. Decisions arriving together share one fsync.
func (l *Log) Commit(gid string, done func(error)) {
	l.send(request{op: "commit", gid: gid, done: done})
}

// Done records that gid is committed everywhere (not waiting for the disk).
func (l *Log) Done(gid string) {
	l.mu.Lock()
	delete(l.decided, gid)
	l.mu.Unlock()
	l.send(request{op: "done", gid: gid})
}

func (l *Log) send(r request) {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		if r.done != nil {
			r.done(errors.New("the two-phase commit log is closed"))
		}
		return
	}
	// Sending under the lock keeps Close from closing the channel meanwhile; the writer never takes it
	// while it waits for the channel, so this cannot deadlock.
	l.reqs <- r
	l.mu.Unlock()
}

// writer appends what arrives, in batches: one write and, when a decision is among them, one fsync.
func (l *Log) writer() {
	defer close(l.writerEnd)
	var batch []request
	var buf []byte
	for r := range l.reqs {
		batch = append(batch[:0], r)
	more:
		for len(batch) < 1024 {
			select {
			case r, ok := <-l.reqs:
				if !ok {
					break more
				}
				batch = append(batch, r)
			default:
				break more
			}
		}
		buf = buf[:0]
		durable := false
		for _, r := range batch {
			buf = appendRecord(buf, r.op, r.gid)
			durable = durable || r.done != nil
		}
		err := l.broken
		if err == nil {
			if _, err = l.f.Write(buf); err == nil && durable {
				err = l.f.Sync()
			}
			if err != nil {
				err = fmt.Errorf("writing %s: %w", l.path, err)
				l.broken = err
			}
		}
		if err == nil {
			l.mu.Lock()
			for _, r := range batch {
				if r.op == "commit" {
					l.decided[r.gid] = true
				}
			}
			l.mu.Unlock()
		}
		for _, r := range batch {
			if r.done != nil {
				r.done(err)
			}
		}
	}
}

// Close stops the writer once what was sent is written, and releases the lock.
func (l *Log) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	close(l.reqs)
	l.mu.Unlock()
	<-l.writerEnd
	err := l.f.Close()
	l.lock.Close()
	return err
}
