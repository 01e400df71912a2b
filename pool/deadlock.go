package pool

import "time"

// Deadlocks between pools.
//
// A client whose transaction spans shards holds a connection of each shard's pool it has used, and may have to
// wait for a connection of another. When every connection of that pool is held by clients that are themselves
// queued for a connection, each holding what another waits for, none of them can go on: no connection will come
// back to any of those pools, and each Postgres server sees only a session idle in a transaction, so neither its
// deadlock detector nor a lock timeout helps. Only checkout_timeout would end it, for every client involved.
//
// The wait is a deadlock when a set S of queued waiters is closed: for each waiter in S, every connection of the
// pool it waits for is held by a member of S, waiting on its client (nothing left to answer, so it cannot come back
// by itself), and the pool has no idle connection and no slot left. Deadlocked finds the largest such set, by
// starting from every queued waiter and dropping, until nothing changes, those whose pool has a connection that a
// non-member holds (or is idle, or being dialed): that connection can come back, so the waiter can be served.

// Wait describes one client, for Deadlocked: the pool it is queued for (nil when it is not queued), when it
// started to wait, and the connections it holds whose server waits on it, one entry per connection.
type Wait struct {
	Waits *Pool
	Since time.Time
	Holds []*Pool
}

// Deadlocked returns the indexes in waits of the clients that wait in a deadlock (none when there is none). The
// snapshot waits is taken client by client while the pools go on: a set that looks closed in it was closed when
// it was taken only if every member still waits as it did, which the caller checks before acting (the same
// waiters, with the same Since, in a later snapshot).
func Deadlocked(waits []Wait) []int {
	in := make([]bool, len(waits))
	slots := map[*Pool]int{} // open, dialing and idle connections of each pool with a member waiting for it
	for i, w := range waits {
		if w.Waits == nil {
			continue
		}
		if _, ok := slots[w.Waits]; !ok {
			st := w.Waits.Stats()
			if st.Total < w.Waits.set.Size || st.Idle > 0 {
				slots[w.Waits] = -1 // a connection is free or a slot is left: its waiters are served
				continue
			}
			slots[w.Waits] = st.Total
		}
		in[i] = slots[w.Waits] > 0
	}
	for changed := true; changed; {
		changed = false
		held := map[*Pool]int{}
		for i, w := range waits {
			if in[i] {
				for _, p := range w.Holds {
					held[p]++
				}
			}
		}
		for i, w := range waits {
			if in[i] && held[w.Waits] < slots[w.Waits] {
				in[i], changed = false, true
			}
		}
	}
	var out []int
	for i := range in {
		if in[i] {
			out = append(out, i)
		}
	}
	return out
}

// Queued reports whether w is in this pool's queue now (not yet handed a connection or a slot).
func (p *Pool) Queued(w *Waiter) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return w.queued
}

// OldestWait returns when the longest-queued waiter of the pool started to wait, or zero when none waits.
func (p *Pool) OldestWait() time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	var oldest time.Time
	for l := range p.queue {
		if h := p.queue[l].head; h != nil && (oldest.IsZero() || h.Since.Before(oldest)) {
			oldest = h.Since
		}
	}
	return oldest
}
