package loop

import (
	"errors"
	"net"
	"os"
	"time"

	"github.com/panjf2000/gnet/v2"
	"golang.org/x/sys/unix"

	"github.com/pgshard/pgshard/tlsio"
)

// parkPoll is how often a parked connection checks whether the other side has drained.
const parkPoll = 2 * time.Millisecond

// parking stops reading from a connection without closing its socket. gnet reads every readable socket into
// memory and has no way to pause, so a proxy that must not buffer without bound (a slow client reading a
// large result, a fast client sending COPY data to a slow server) takes the connection out of its loop: the
// descriptor is duplicated, gnet's connection is closed (which drops only gnet's descriptor), and the
// socket is enrolled again once the other side has drained. While parked the kernel's socket buffer fills
// and TCP flow control slows the sender. Bytes gnet had read but pgshard had not used yet wait in stash.
type parking struct {
	parked bool
	fd     int
	stash  []byte
	// wake, while parked, brings the connection back now if its ready condition holds (instead of at the
	// next poll); it reports whether it did.
	wake func() bool
}

// reopen travels with a parked connection enrolled back into its loop.
type reopen struct {
	cl *client
	s  *server
}

// input returns the bytes to work on: the stash, if any, then what gnet holds (moved into the stash so that
// consume has one place to drop from).
func (p *parking) input(c conn) []byte {
	if len(p.stash) == 0 {
		buf, _ := c.Peek(-1)
		return buf
	}
	p.keep(c)
	return p.stash
}

// keep moves what gnet read and pgshard has not used into the stash, where it waits at its own size while
// pgshard is not ready for it. Left in gnet, it would be copied whole at each Peek once gnet's ring wraps,
// and the ring would grow by doubling and go back to gnet's pool at that size when the connection closes, for
// another connection to keep.
func (p *parking) keep(c conn) {
	if c.InboundBuffered() == 0 {
		return
	}
	buf, _ := c.Peek(-1)
	p.stash = append(p.stash, buf...)
	_, _ = c.Discard(len(buf))
}

// head returns the first n bytes that input returned (input moved them into the stash, if there is one).
func (p *parking) head(c conn, n int) []byte {
	if len(p.stash) > 0 {
		return p.stash[:n]
	}
	b, _ := c.Peek(n)
	return b
}

// consume drops n bytes that input returned and that are now used.
func (p *parking) consume(c conn, n int) {
	if len(p.stash) == 0 {
		_, _ = c.Discard(n)
		return
	}
	p.stash = p.stash[n:] // the array goes when the stash is empty, or when keep outgrows it
	if len(p.stash) == 0 {
		p.stash = nil
	}
}

// park takes c out of ls's loop. It must not be called while c has bytes waiting to be written (gnet would
// flush or drop them on close), so callers check OutboundBuffered first. ready, run on the loop every
// parkPoll, says when to come back; then e enrolls the socket again with ctx.
func (p *parking) park(e *Engine, ls *loopState, c conn, ctx *reopen, ready func() bool) bool {
	fd, err := socket(c).Dup()
	if err != nil {
		return false
	}
	if _, ok := c.(*tlsio.Conn); !ok {
		// Closing gnet's connection drops what it read and we did not use; a TLS connection's plaintext is its
		// tlsio.Conn's, which stays.
		p.keep(c)
	}
	p.parked, p.fd = true, fd
	ls.closeConn(c)
	var check func()
	p.wake = func() bool {
		if !p.parked || p.fd != fd || !ready() {
			return false
		}
		check()
		return true
	}
	check = func() {
		if !p.parked || p.fd != fd {
			return // closed while parked
		}
		if peerGone(fd) {
			// The other end closed while parked: gnet, which no longer watches the socket, cannot say so,
			// and ready may never hold again (a client that stopped reading and left).
			ctx.lost(errPeerGone)
			return
		}
		if !ready() {
			time.AfterFunc(parkPoll, func() { _ = ls.execute(check) })
			return
		}
		p.fd = -1 // the descriptor is the enrolling goroutine's now; reopened sees whether it is still wanted
		go func() {
			f := os.NewFile(uintptr(fd), "parked")
			nc, err := net.FileConn(f)
			f.Close()
			if err == nil {
				err = e.enroll(ls, nc, ctx)
			}
			if err != nil {
				_ = ls.execute(func() { ctx.lost(err) })
			}
		}()
	}
	time.AfterFunc(parkPoll, func() { _ = ls.execute(check) })
	return true
}

var errPeerGone = errors.New("the connection was closed by the other end while pgshard was not reading it")

// peerGone says whether the other end of socket fd has closed (or reset) it.
func peerGone(fd int) bool {
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLRDHUP}}
	n, err := unix.Poll(fds, 0)
	return err == nil && n > 0 && fds[0].Revents&(unix.POLLRDHUP|unix.POLLHUP|unix.POLLERR) != 0
}

// unparked records that the socket is back in the loop as c.
func (p *parking) unparked() {
	p.parked, p.fd, p.wake = false, -1, nil
}

// unparkedOrGone says when a client parked because its server s was parked comes back.
func (s *server) unparkedOrGone() bool {
	return s.gone() || !s.park.parked
}

// closeParked closes the socket of a parked connection, which gnet no longer knows about. A socket on its way
// back into the loop is closed by reopened instead.
func (p *parking) closeParked() {
	if p.parked && p.fd >= 0 {
		_ = unix.Close(p.fd)
	}
	p.parked, p.fd, p.wake, p.stash = false, -1, nil, nil
}

// lost runs when a parked socket could not be enrolled again.
func (r *reopen) lost(err error) {
	if r.cl != nil {
		r.cl.park.closeParked()
		r.cl.onClose()
	}
	if r.s != nil {
		r.s.park.closeParked()
		r.s.lost(err)
	}
}

// reopened runs on the loop when a parked connection is back.
func (e *Engine) reopened(c gnet.Conn, r *reopen) {
	c.SetContext(nil)
	switch {
	case r.cl != nil:
		cl := r.cl
		if cl.state == clientClosed {
			_ = cl.ls.el.Close(c)
			return
		}
		cl.park.unparked()
		cl.c = c
		if cl.tls != nil {
			cl.tls.Rebind(c)
			cl.c = cl.tls
		}
		c.SetContext(cl)
		for _, s := range cl.srvs {
			if s != nil && !s.gone() && !s.park.parked && s.client == cl && cl.state != clientClosed {
				s.onTraffic() // anything the server said while the client was parked
			}
		}
		if cl.state != clientClosed {
			cl.onTraffic()
		}
	case r.s != nil:
		s := r.s
		s.park.unparked()
		if s.gone() {
			_ = s.ls.el.Close(c)
			return
		}
		s.c = c
		if s.tls != nil {
			s.tls.Rebind(c)
			s.c = s.tls
		}
		c.SetContext(s)
		if len(s.out) > 0 { // queued while it was parked
			s.ls.unflushed = append(s.ls.unflushed, s)
		}
		s.onTraffic()
		if cl := s.client; cl != nil && !cl.park.parked && cl.state == clientReady {
			cl.forward() // what the client sent while the server was parked
			cl.flush()
		}
	}
}

// drainTime is how long a connection refused for an oversized message is read and dropped before closing.
const drainTime = 2 * time.Second

// draining is a refused client's connection that is read and dropped until until.
type draining struct {
	until time.Time
	shut  bool
}

// drain reads and drops what c's client still sends, for drainTime, and half-closes c once what was written
// to it is out.
func (ls *loopState) drain(c conn) {
	sock := socket(c)
	_, _ = sock.Discard(-1)
	d := &draining{until: time.Now().Add(drainTime)}
	sock.SetContext(d)
	ls.draining[sock] = d
	d.halfClose(sock)
}

// halfClose shuts the write side once the error is out, so the client reads it and then EOF.
func (d *draining) halfClose(c gnet.Conn) {
	if !d.shut && c.OutboundBuffered() == 0 {
		d.shut = true
		_ = unix.Shutdown(c.Fd(), unix.SHUT_WR)
	}
}
