package loop

import (
	"context"
	"net"
	"os"
	"time"

	"github.com/panjf2000/gnet/v2"

	"github.com/pgshard/pgshard/codec"
	"github.com/pgshard/pgshard/pool"
	"github.com/pgshard/pgshard/tlsio"
)

// The shell. Most of loop/ is the session core: state machines that read a connection's bytes and queue
// bytes to write, seeing each connection only as a conn. The shell is the part that speaks gnet: the
// callbacks that feed the core (engine.go), and what it asks of the event loop and the sockets: closing,
// running a function on a loop (execute), dialling and enrolling server connections and moving them between
// loops (this file), parking a socket (park.go), TLS handshakes (tls.go). Only these four files import gnet
// (TestOnlyTheShellSpeaksGnet): the core's tests drive it with fake connections and no event loop.

// conn is a connection as the session core sees it: the bytes read and not yet used, and a way to write.
// gnet's connections are conns, and so is a *tlsio.Conn over one (its plaintext).
type conn interface {
	Peek(n int) ([]byte, error)
	Discard(n int) (int, error)
	InboundBuffered() int
	OutboundBuffered() int
	Write(b []byte) (int, error)
}

// socket is the gnet connection under c (under its TLS layer, if any): what the loop closes, parks or moves.
func socket(c conn) gnet.Conn { return tlsio.Socket(c.(gnet.Conn)) }

// closeConn closes c in its loop; gnet runs OnClose at once.
func (ls *loopState) closeConn(c conn) { _ = ls.el.Close(socket(c)) }

// execute runs f on ls's loop as a callback of its own.
func (ls *loopState) execute(f func()) error {
	return ls.el.Execute(context.Background(), runnable(func() {
		ls.enter()
		defer ls.leave()
		f()
	}))
}

// serverOpen travels with a connection enrolled into a loop: a new one from dial, or one moving loops.
type serverOpen struct {
	s  *server        // set when moving
	nc *newServerConn // set when new
	cl *client        // the client it is for, if it still wants it
}

type newServerConn struct {
	p       *pool.Pool
	target  pool.Target
	backend *pool.Backend
	tls     *tlsio.Session // the connection's TLS session, detached; nil in plaintext
}

// dial makes a new server connection for p in loop ls, for client cl (which may be gone by then). A slot is
// already counted in the pool.
func (e *Engine) dial(p *pool.Pool, ls *loopState, cl *client) {
	t := e.targetOf(cl.db, cl.user, p.Shard, p.Replica)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), e.cfg.Limits.ServerConnectTimeout)
		defer cancel()
		nc, b, err := pool.Dial(ctx, t)
		if err == nil {
			open := &newServerConn{p: p, target: t, backend: b}
			if ts, ok := nc.(*tlsio.Session); ok {
				ts.Detach()
				nc, open.tls = ts.Socket(), ts
			}
			err = e.enroll(ls, nc, &serverOpen{nc: open, cl: cl})
		}
		if err != nil {
			e.log.Warn("server connection failed", "pool", p.Name, "server", t.Address, "err", err)
			_ = ls.execute(func() { e.dialFailed(p, cl, err) })
		}
	}()
}

// enroll registers an established connection in ls's loop; OnOpen then calls serverOpened. Blocking: call it
// off the loops.
func (e *Engine) enroll(ls *loopState, nc net.Conn, ctx any) error {
	ch, err := ls.el.Enroll(gnet.NewContext(context.Background(), ctx), nc)
	if err != nil {
		nc.Close()
		return err
	}
	res := <-ch
	return res.Err
}

// serverOpened runs in the loop a server connection was enrolled into.
func (e *Engine) serverOpened(c gnet.Conn, so *serverOpen) {
	ls := e.loopOf(c)
	s := so.s
	if s == nil {
		s = &server{e: e, target: so.nc.target, backend: so.nc.backend, status: codec.TxIdle, shard: so.nc.p.Shard}
		s.stmts.max = e.cfg.Pool.MaxPreparedStatements
		s.sqlNames.max = e.cfg.Pool.MaxPreparedStatements
		s.pc = so.nc.p.NewConn(ls.idx, s, time.Now())
		if so.nc.tls != nil {
			s.tls = so.nc.tls.Over(c)
		}
	}
	s.ls, s.c = ls, c
	if s.tls != nil {
		s.tls.Rebind(c) // a moved connection is the new loop's now
		s.c = s.tls
	}
	s.pc.Loop = ls.idx
	c.SetContext(s)
	ls.servers[s] = struct{}{}
	if cl := so.cl; cl != nil && cl.state != clientClosed && cl.ls == ls {
		cl.gotServer(s)
		return
	}
	s.release()
}

// moveTo moves an idle server to another loop for client cl: the socket is duplicated and enrolled there,
// and closing it here then drops only this loop's descriptor. onOwnLoop says the caller runs on s's loop.
func (s *server) moveTo(to *loopState, cl *client, onOwnLoop bool) {
	run := func() {
		if s.gone() {
			// It closed while idle (onClose gave its slot back): the client checks out afresh.
			s.e.retryCheckout(cl)
			return
		}
		fd, err := socket(s.c).Dup()
		if err != nil {
			s.closeExpected()
			s.e.retryCheckout(cl)
			return
		}
		s.setState(serverMoving)
		delete(s.ls.servers, s)
		s.ls.closeConn(s.c)
		go func() {
			f := os.NewFile(uintptr(fd), "server")
			nc, err := net.FileConn(f)
			f.Close()
			if err == nil {
				err = s.e.enroll(to, nc, &serverOpen{s: s, cl: cl})
			}
			if err != nil {
				s.setState(serverGone)
				s.e.log.Warn("moving a server connection between loops failed", "pool", s.pc.Pool().Name, "err", err)
				s.e.slotFreed(s.pc.Pool())
				s.e.retryCheckout(cl)
			}
		}()
	}
	if onOwnLoop {
		run()
		return
	}
	_ = s.ls.execute(run)
}
