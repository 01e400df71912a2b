package pool

import (
	"slices"
	"testing"
	"time"
)

// open makes a pool of size connections with n of them open and checked out (held by clients).
func open(t *testing.T, name string, size, n int) *Pool {
	t.Helper()
	p := New(name, Settings{Size: size, CheckoutTimeout: time.Minute}, 1)
	for range n {
		if _, o := p.Checkout(&Waiter{Since: time.Now()}); o != MustDial {
			t.Fatalf("checkout: %v", o)
		}
	}
	return p
}

func TestDeadlocked(t *testing.T) {
	now := time.Now()
	t.Run("two clients each hold the last connection the other waits for", func(t *testing.T) {
		p0, p1 := open(t, "s0", 1, 1), open(t, "s1", 1, 1)
		got := Deadlocked([]Wait{{Waits: p1, Since: now, Holds: []*Pool{p0}}, {Waits: p0, Since: now, Holds: []*Pool{p1}}})
		if !slices.Equal(got, []int{0, 1}) {
			t.Fatalf("got %v", got)
		}
	})
	t.Run("a slot is left in the pool waited for", func(t *testing.T) {
		p0, p1 := open(t, "s0", 1, 1), open(t, "s1", 2, 1)
		if got := Deadlocked([]Wait{{Waits: p1, Holds: []*Pool{p0}}, {Waits: p0, Holds: []*Pool{p1}}}); len(got) != 0 {
			t.Fatalf("got %v", got)
		}
	})
	t.Run("a connection of the pool is held by a client that does not wait", func(t *testing.T) {
		p0, p1 := open(t, "s0", 1, 1), open(t, "s1", 2, 2)
		got := Deadlocked([]Wait{{Waits: p1, Holds: []*Pool{p0}}, {Waits: p0, Holds: []*Pool{p1}}, {Holds: []*Pool{p1}}})
		if len(got) != 0 {
			t.Fatalf("got %v", got)
		}
	})
	t.Run("an idle connection in the pool waited for", func(t *testing.T) {
		p0, p1 := open(t, "s0", 1, 1), open(t, "s1", 2, 2)
		p1.Checkin(&Conn{pool: p1}, now)
		if got := Deadlocked([]Wait{{Waits: p1, Holds: []*Pool{p0}}, {Waits: p0, Holds: []*Pool{p1}}}); len(got) != 0 {
			t.Fatalf("got %v", got)
		}
	})
	t.Run("a connection of the pool is held by a waiter that can be served", func(t *testing.T) {
		p0, p1, p2 := open(t, "s0", 2, 2), open(t, "s1", 1, 1), open(t, "s2", 1, 0)
		got := Deadlocked([]Wait{
			{Waits: p1, Holds: []*Pool{p0}},
			{Waits: p0, Holds: []*Pool{p1}},
			{Waits: p2, Holds: []*Pool{p0}}, // p2 has a slot: it goes on and gives p0's connection back
			{Waits: p0},
		})
		if len(got) != 0 {
			t.Fatalf("got %v", got)
		}
	})
	t.Run("three pools in a cycle, with a bystander", func(t *testing.T) {
		p0, p1, p2 := open(t, "s0", 1, 1), open(t, "s1", 1, 1), open(t, "s2", 2, 2)
		got := Deadlocked([]Wait{
			{Waits: p1, Holds: []*Pool{p0, p2}},
			{Waits: p2, Holds: []*Pool{p1}},
			{Waits: p0, Holds: []*Pool{p2}},
			{Waits: p0},
		})
		if !slices.Equal(got, []int{0, 1, 2, 3}) {
			t.Fatalf("got %v", got)
		}
	})
}
