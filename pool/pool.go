package pool

import (
	"sync"
	"sync/atomic"
	"time"
)

// Settings are the limits of one pool.
type Settings struct {
	Size            int
	CheckoutTimeout time.Duration
	IdleTimeout     time.Duration // 0: never
	Lifetime        time.Duration // 0: never
	CheckAfter      time.Duration // idle this long, a connection is checked before more use (Unchecked); 0: never
	// CrossLoopAfter is how much longer a waiter on another loop must have waited than the oldest one on the
	// check-in's loop before it gets the connection (moving a connection between loops costs a few syscalls).
	CrossLoopAfter time.Duration
}

// Conn is one server connection as the pool sees it.
type Conn struct {
	Loop     int       // index of the event loop the connection is registered in
	Created  time.Time // for Lifetime
	LastUsed time.Time // set on check-in, for IdleTimeout
	Handle   any       // owned by the loop package

	pool *Pool
}

// Pool returns the pool the connection belongs to.
func (c *Conn) Pool() *Pool { return c.pool }

// Waiter is a client waiting for a connection. Embed it in the client's state: queueing allocates nothing.
type Waiter struct {
	Loop   int
	Since  time.Time
	Handle any // owned by the loop package

	queued     bool
	prev, next *Waiter
}

// Outcome says what a Checkout decided.
type Outcome int

const (
	Ready     Outcome = iota // an idle connection on the caller's loop
	OtherLoop                // an idle connection registered in another loop: move it to the caller's
	MustDial                 // a slot is reserved: dial a new connection (then Add it, or DialFailed)
	Waiting                  // the waiter is queued; Checkin or Remove will hand it a connection or a slot
)

// Stats is a snapshot of a pool's counters, for SHOW POOLS and metrics.
type Stats struct {
	Total, Idle, Waiting   int
	Checkouts, Waits       int64
	CrossLoop, Dials       int64
	DialFailures, Timeouts int64
	WaitTime               time.Duration
	MaxWait                time.Duration
}

// Pool is the shared state of one pool. All methods are safe for concurrent use from any loop.
type Pool struct {
	Name  string
	Shard int // the shard its connections serve, for the loop's routing (the pool itself does not care)
	// Replica is 0 for a pool of the shard's primary, n for its n-th replica (the loop's read/write split).
	Replica int
	Host    any // what the loop keeps of the server the pool connects to
	set     Settings

	mu    sync.Mutex
	total int       // open plus being dialed
	idle  [][]*Conn // per loop, a stack: the most recently used is reused first
	queue []waitList

	checkouts, waits, crossLoop, dials, dialFailures, timeouts atomic.Int64
	waitNanos, maxWaitNanos                                    atomic.Int64
	retired                                                    atomic.Bool
}

type waitList struct {
	head, tail *Waiter
	n          int
}

// New makes a pool for loops event loops.
func New(name string, set Settings, loops int) *Pool {
	if set.CrossLoopAfter == 0 {
		set.CrossLoopAfter = 2 * time.Millisecond
	}
	return &Pool{Name: name, set: set, idle: make([][]*Conn, loops), queue: make([]waitList, loops)}
}

// Role is "primary" or "replica".
func (p *Pool) Role() string {
	if p.Replica > 0 {
		return "replica"
	}
	return "primary"
}

// InUse is the number of the pool's connections that are not idle: in use, or being dialed.
func (p *Pool) InUse() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := p.total
	for l := range p.idle {
		n -= len(p.idle[l])
	}
	return n
}

// Settings returns the pool's limits.
func (p *Pool) Settings() Settings { return p.set }

// Checkout decides how w gets a connection. With Ready or OtherLoop the connection is returned.
func (p *Pool) Checkout(w *Waiter) (*Conn, Outcome) {
	p.checkouts.Add(1)
	p.mu.Lock()
	if c := p.popIdle(w.Loop); c != nil {
		p.mu.Unlock()
		return c, Ready
	}
	if p.total < p.set.Size {
		p.total++
		p.mu.Unlock()
		p.dials.Add(1)
		return nil, MustDial
	}
	for l := range p.idle {
		if c := p.popIdle(l); c != nil {
			p.mu.Unlock()
			p.crossLoop.Add(1)
			return c, OtherLoop
		}
	}
	p.enqueue(w)
	p.mu.Unlock()
	p.waits.Add(1)
	return nil, Waiting
}

func (p *Pool) popIdle(loop int) *Conn {
	s := p.idle[loop]
	if len(s) == 0 {
		return nil
	}
	c := s[len(s)-1]
	s[len(s)-1] = nil
	p.idle[loop] = s[:len(s)-1]
	return c
}

func (p *Pool) enqueue(w *Waiter) {
	q := &p.queue[w.Loop]
	w.queued, w.prev, w.next = true, q.tail, nil
	if q.tail != nil {
		q.tail.next = w
	} else {
		q.head = w
	}
	q.tail = w
	q.n++
}

func (p *Pool) unlink(w *Waiter) {
	q := &p.queue[w.Loop]
	if w.prev != nil {
		w.prev.next = w.next
	} else {
		q.head = w.next
	}
	if w.next != nil {
		w.next.prev = w.prev
	} else {
		q.tail = w.prev
	}
	w.queued, w.prev, w.next = false, nil, nil
	q.n--
}

// nextWaiter picks who gets a connection freed on loop: the oldest waiter of that loop, unless a waiter on
// another loop has waited CrossLoopAfter longer. Called with mu held; dequeues the waiter.
func (p *Pool) nextWaiter(loop int) *Waiter {
	local := p.queue[loop].head
	var oldest *Waiter
	for l := range p.queue {
		if h := p.queue[l].head; h != nil && (oldest == nil || h.Since.Before(oldest.Since)) {
			oldest = h
		}
	}
	w := local
	if w == nil || (oldest != local && local.Since.Sub(oldest.Since) > p.set.CrossLoopAfter) {
		w = oldest
	}
	if w != nil {
		p.unlink(w)
	}
	return w
}

func (p *Pool) noteWait(w *Waiter, now time.Time) {
	d := now.Sub(w.Since)
	p.waitNanos.Add(int64(d))
	for {
		m := p.maxWaitNanos.Load()
		if int64(d) <= m || p.maxWaitNanos.CompareAndSwap(m, int64(d)) {
			return
		}
	}
}

// Checkin returns a clean, idle connection. When a client waits, it gets c and is returned: the caller hands c
// to it (moving c to the waiter's loop when it differs). Otherwise c becomes idle.
func (p *Pool) Checkin(c *Conn, now time.Time) *Waiter {
	p.mu.Lock()
	if w := p.nextWaiter(c.Loop); w != nil {
		p.mu.Unlock()
		p.noteWait(w, now)
		if w.Loop != c.Loop {
			p.crossLoop.Add(1)
		}
		return w
	}
	c.LastUsed = now
	p.idle[c.Loop] = append(p.idle[c.Loop], c)
	p.mu.Unlock()
	return nil
}

// NewConn wraps a connection that a MustDial produced (the slot is already counted).
func (p *Pool) NewConn(loop int, handle any, now time.Time) *Conn {
	return &Conn{Loop: loop, Created: now, LastUsed: now, Handle: handle, pool: p}
}

// Remove forgets a connection that was closed (broken, expired, or dirty) while checked out. When a client
// waits, the freed slot goes to it: the caller must dial for the returned waiter.
func (p *Pool) Remove(now time.Time) *Waiter {
	return p.freeSlot(now)
}

// DialFailed gives back the slot of a MustDial whose dial failed. Like Remove, it may return a waiter that
// should now dial (it will likely fail the same way and get the error itself, which is what we want: a
// waiter learns of a down server at once instead of waiting out checkout_timeout).
func (p *Pool) DialFailed(now time.Time) *Waiter {
	p.dialFailures.Add(1)
	return p.freeSlot(now)
}

func (p *Pool) freeSlot(now time.Time) *Waiter {
	p.mu.Lock()
	p.total--
	var w *Waiter
	for l := range p.queue {
		if h := p.queue[l].head; h != nil && (w == nil || h.Since.Before(w.Since)) {
			w = h
		}
	}
	if w != nil {
		p.unlink(w)
		p.total++
		p.dials.Add(1)
	}
	p.mu.Unlock()
	if w != nil {
		p.noteWait(w, now)
	}
	return w
}

// Cancel takes w out of the queue (client gone or checkout timed out). False means w was already handed a
// connection or a slot that is on its way to it.
func (p *Pool) Cancel(w *Waiter, timedOut bool) bool {
	p.mu.Lock()
	ok := w.queued
	if ok {
		p.unlink(w)
	}
	p.mu.Unlock()
	if ok && timedOut {
		p.timeouts.Add(1)
	}
	return ok
}

// Expired takes from loop's idle stack the connections past IdleTimeout or Lifetime; the caller closes each
// and calls Remove.
func (p *Pool) Expired(loop int, now time.Time, dst []*Conn) []*Conn {
	return p.takeIdleIf(loop, dst, func(c *Conn) bool {
		return (p.set.IdleTimeout > 0 && now.Sub(c.LastUsed) >= p.set.IdleTimeout) ||
			(p.set.Lifetime > 0 && now.Sub(c.Created) >= p.set.Lifetime)
	})
}

// Unchecked takes from loop's idle stack the connections idle for CheckAfter or longer; the caller checks each
// and checks it back in (Checkin), or closes it and calls Remove.
func (p *Pool) Unchecked(loop int, now time.Time, dst []*Conn) []*Conn {
	if p.set.CheckAfter <= 0 {
		return dst
	}
	return p.takeIdleIf(loop, dst, func(c *Conn) bool { return now.Sub(c.LastUsed) >= p.set.CheckAfter })
}

// takeIdleIf takes from loop's idle stack the connections take says to, appended to dst.
func (p *Pool) takeIdleIf(loop int, dst []*Conn, take func(*Conn) bool) []*Conn {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.idle[loop]
	kept := s[:0]
	for _, c := range s {
		if take(c) {
			dst = append(dst, c)
			continue
		}
		kept = append(kept, c)
	}
	for i := len(kept); i < len(s); i++ {
		s[i] = nil
	}
	p.idle[loop] = kept
	return dst
}

// Retire marks a pool that a reload replaced. The pool goes on working for the clients that still use it
// (they finish their transactions); its owner closes its connections as they come back instead of checking
// them in (Retired), and takes its idle ones with Drain.
func (p *Pool) Retire() { p.retired.Store(true) }

// Retired reports whether Retire was called.
func (p *Pool) Retired() bool { return p.retired.Load() }

// Drain takes every idle connection of loop's stack; the caller closes each and calls Remove.
func (p *Pool) Drain(loop int, dst []*Conn) []*Conn {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.idle[loop]
	dst = append(dst, s...)
	clear(s)
	p.idle[loop] = s[:0]
	return dst
}

// TakeIdle removes c from its loop's idle stack (it closed while idle). False when c was not idle.
func (p *Pool) TakeIdle(c *Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.idle[c.Loop]
	for i, x := range s {
		if x == c {
			copy(s[i:], s[i+1:])
			s[len(s)-1] = nil
			p.idle[c.Loop] = s[:len(s)-1]
			return true
		}
	}
	return false
}

// Stats returns a snapshot of the pool's counters.
func (p *Pool) Stats() Stats {
	p.mu.Lock()
	s := Stats{Total: p.total}
	for l := range p.idle {
		s.Idle += len(p.idle[l])
		s.Waiting += p.queue[l].n
	}
	p.mu.Unlock()
	s.Checkouts, s.Waits = p.checkouts.Load(), p.waits.Load()
	s.CrossLoop, s.Dials = p.crossLoop.Load(), p.dials.Load()
	s.DialFailures, s.Timeouts = p.dialFailures.Load(), p.timeouts.Load()
	s.WaitTime, s.MaxWait = time.Duration(p.waitNanos.Load()), time.Duration(p.maxWaitNanos.Load())
	return s
}
