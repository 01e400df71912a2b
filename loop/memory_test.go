package loop

import "testing"

// The janitor collects once per quiet spell that follows a change (clients came or went, memory was
// allocated), never while things change, and not again while nothing does.
func TestJanitorCollectsOncePerQuietSpell(t *testing.T) {
	j := newJanitor()
	runs := 0
	j.released = func() { runs++ }
	var keep [][]byte
	step := func(clients int64, allocate bool, want int) {
		t.Helper()
		if allocate {
			keep = append(keep, make([]byte, 4<<20))
		}
		j.check(clients)
		if runs != want {
			t.Fatalf("after check(%d, allocate %v): %d collections, want %d", clients, allocate, runs, want)
		}
	}
	step(5, false, 0) // clients came
	step(5, false, 1) // quiet: collect
	step(5, false, 1) // still quiet: once is enough
	step(2, false, 1) // clients left
	step(2, false, 2)
	step(2, true, 2) // allocating: busy
	step(2, true, 2)
	step(2, false, 3)
	_ = keep
}
