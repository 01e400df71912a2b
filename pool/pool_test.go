package pool

import (
	"testing"
	"time"
)

func newTestPool(size int) *Pool {
	return New("db/user/shard0", Settings{Size: size, CheckoutTimeout: time.Second, IdleTimeout: time.Minute, Lifetime: time.Hour, CrossLoopAfter: time.Millisecond}, 2)
}

func TestCheckoutDialsUpToSizeThenWaits(t *testing.T) {
	p := newTestPool(2)
	t0 := time.Unix(1000, 0)
	var w [3]Waiter
	for i := range w {
		w[i] = Waiter{Loop: 0, Since: t0}
	}
	if _, out := p.Checkout(&w[0]); out != MustDial {
		t.Fatalf("first checkout: %v, want MustDial", out)
	}
	if _, out := p.Checkout(&w[1]); out != MustDial {
		t.Fatalf("second checkout: %v, want MustDial", out)
	}
	if _, out := p.Checkout(&w[2]); out != Waiting {
		t.Fatalf("third checkout: %v, want Waiting (pool size 2)", out)
	}
	if st := p.Stats(); st.Total != 2 || st.Waiting != 1 || st.Idle != 0 {
		t.Fatalf("stats %+v", st)
	}
	c := p.NewConn(0, "server-a", t0)
	if got := p.Checkin(c, t0.Add(time.Millisecond)); got != &w[2] {
		t.Fatalf("check-in handed the connection to %p, want the waiter %p", got, &w[2])
	}
	if st := p.Stats(); st.Waiting != 0 || st.MaxWait != time.Millisecond {
		t.Fatalf("stats after hand-off %+v", st)
	}
	// Nobody waits: the connection becomes idle and the next checkout on its loop gets it.
	if got := p.Checkin(c, t0); got != nil {
		t.Fatalf("check-in with no waiter returned %p", got)
	}
	if got, out := p.Checkout(&w[0]); out != Ready || got != c {
		t.Fatalf("checkout after check-in: %v %v", got, out)
	}
}

func TestWaitersAreFIFO(t *testing.T) {
	p := newTestPool(1)
	t0 := time.Unix(1000, 0)
	first := Waiter{Loop: 0, Since: t0}
	p.Checkout(&first) // dials the only slot
	ws := make([]Waiter, 4)
	for i := range ws {
		ws[i] = Waiter{Loop: 0, Since: t0.Add(time.Duration(i) * time.Microsecond)}
		if _, out := p.Checkout(&ws[i]); out != Waiting {
			t.Fatalf("waiter %d: %v", i, out)
		}
	}
	c := p.NewConn(0, nil, t0)
	for i := range ws {
		if got := p.Checkin(c, t0); got != &ws[i] {
			t.Fatalf("hand-off %d went to the wrong waiter", i)
		}
	}
}

func TestCheckinPrefersOwnLoopUnlessOtherWaitedLonger(t *testing.T) {
	p := newTestPool(1)
	t0 := time.Unix(1000, 0)
	p.Checkout(&Waiter{Loop: 0, Since: t0})
	other := Waiter{Loop: 1, Since: t0}
	local := Waiter{Loop: 0, Since: t0.Add(500 * time.Microsecond)}
	p.Checkout(&other)
	p.Checkout(&local)
	c := p.NewConn(0, nil, t0)
	// The other loop's waiter is older, but by less than CrossLoopAfter (1ms): moving loops is not worth it.
	if got := p.Checkin(c, t0); got != &local {
		t.Fatal("a waiter on the connection's own loop should win within CrossLoopAfter")
	}
	late := Waiter{Loop: 0, Since: t0.Add(5 * time.Millisecond)}
	p.Checkout(&late)
	if got := p.Checkin(c, t0); got != &other {
		t.Fatal("a waiter that waited CrossLoopAfter longer on another loop should win")
	}
	if st := p.Stats(); st.CrossLoop != 1 {
		t.Fatalf("cross-loop count %d, want 1", st.CrossLoop)
	}
}

func TestIdleOnOtherLoopIsTakenBeforeWaiting(t *testing.T) {
	p := newTestPool(1)
	t0 := time.Unix(1000, 0)
	p.Checkout(&Waiter{Loop: 1, Since: t0})
	c := p.NewConn(1, nil, t0)
	p.Checkin(c, t0)
	if got, out := p.Checkout(&Waiter{Loop: 0, Since: t0}); out != OtherLoop || got != c {
		t.Fatalf("got %v %v, want the idle connection of loop 1", got, out)
	}
}

func TestCancelAndRemove(t *testing.T) {
	p := newTestPool(1)
	t0 := time.Unix(1000, 0)
	p.Checkout(&Waiter{Loop: 0, Since: t0})
	a := Waiter{Loop: 0, Since: t0}
	b := Waiter{Loop: 1, Since: t0.Add(time.Microsecond)}
	p.Checkout(&a)
	p.Checkout(&b)
	if !p.Cancel(&a, true) {
		t.Fatal("cancel of a queued waiter failed")
	}
	if p.Cancel(&a, true) {
		t.Fatal("a waiter cannot be cancelled twice")
	}
	// The connection is lost: its slot goes to the remaining waiter, which must dial.
	if got := p.Remove(t0); got != &b {
		t.Fatal("the freed slot should go to the waiter")
	}
	if st := p.Stats(); st.Total != 1 || st.Waiting != 0 || st.Timeouts != 1 {
		t.Fatalf("stats %+v", st)
	}
	if got := p.DialFailed(t0); got != nil {
		t.Fatal("no waiter left")
	}
	if st := p.Stats(); st.Total != 0 || st.DialFailures != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestExpired(t *testing.T) {
	p := newTestPool(3)
	t0 := time.Unix(1000, 0)
	for i := 0; i < 3; i++ {
		p.Checkout(&Waiter{Loop: 0, Since: t0})
	}
	young := p.NewConn(0, "young", t0)
	old := p.NewConn(0, "old", t0.Add(-2*time.Hour))
	idle := p.NewConn(0, "idle", t0)
	p.Checkin(old, t0)
	p.Checkin(idle, t0.Add(-2*time.Minute))
	p.Checkin(young, t0)
	got := p.Expired(0, t0, nil)
	if len(got) != 2 {
		t.Fatalf("expired %d connections, want 2", len(got))
	}
	for _, c := range got {
		if c.Handle == "young" {
			t.Fatal("a young, recently used connection expired")
		}
	}
	if st := p.Stats(); st.Idle != 1 {
		t.Fatalf("idle %d, want 1", st.Idle)
	}
	if !p.TakeIdle(young) || p.TakeIdle(young) {
		t.Fatal("TakeIdle should take the idle connection once")
	}
}

func TestUnchecked(t *testing.T) {
	p := New("t", Settings{Size: 2, CheckoutTimeout: time.Second, CheckAfter: 30 * time.Second}, 1)
	t0 := time.Unix(1000, 0)
	for range 2 {
		p.Checkout(&Waiter{Loop: 0, Since: t0})
	}
	quiet, busy := p.NewConn(0, "quiet", t0), p.NewConn(0, "busy", t0)
	p.Checkin(quiet, t0.Add(-31*time.Second))
	p.Checkin(busy, t0.Add(-time.Second))
	if got := p.Unchecked(0, t0, nil); len(got) != 1 || got[0] != quiet {
		t.Fatalf("unchecked %v, want the connection idle past CheckAfter", got)
	}
	if st := p.Stats(); st.Idle != 1 {
		t.Fatalf("idle %d, want 1 (the one being checked is out of the pool)", st.Idle)
	}
	p.Checkin(quiet, t0) // its check passed
	if got := p.Unchecked(0, t0.Add(time.Second), nil); len(got) != 0 {
		t.Fatalf("unchecked %d right after a check, want 0", len(got))
	}
}

func TestRetireAndDrain(t *testing.T) {
	p := New("t", Settings{Size: 3, CheckoutTimeout: time.Second}, 2)
	now := time.Now()
	var conns []*Conn
	for i := 0; i < 3; i++ {
		w := &Waiter{Loop: i % 2, Since: now}
		if _, out := p.Checkout(w); out != MustDial {
			t.Fatalf("checkout %d: %v, want MustDial", i, out)
		}
		conns = append(conns, p.NewConn(i%2, i, now))
	}
	for _, c := range conns {
		if w := p.Checkin(c, now); w != nil {
			t.Fatal("a waiter appeared")
		}
	}
	if p.Retired() {
		t.Fatal("retired before Retire")
	}
	p.Retire()
	if !p.Retired() {
		t.Fatal("not retired after Retire")
	}
	got := p.Drain(0, nil)
	if len(got) != 2 || p.Stats().Idle != 1 {
		t.Fatalf("Drain(0) took %d, %d idle left; want 2 and 1", len(got), p.Stats().Idle)
	}
	got = p.Drain(1, got[:0])
	if len(got) != 1 || p.Stats().Idle != 0 {
		t.Fatalf("Drain(1) took %d, %d idle left; want 1 and 0", len(got), p.Stats().Idle)
	}
	// Drained connections still hold their slots until removed.
	if st := p.Stats(); st.Total != 3 {
		t.Fatalf("total %d, want 3", st.Total)
	}
}
