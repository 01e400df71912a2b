package loop

import "testing"

// A queue that never empties (a client pipelining without pause) holds an array the size of what is in it,
// not of everything ever pushed, and gives its entries back in order.
func TestExpectQueueThatNeverEmptiesStaysSmall(t *testing.T) {
	var q expectQueue
	next, want := 0, 0
	for i := 0; i < 100; i++ {
		q.push(expectation{copyMsgs: uint64(next)})
		next++
	}
	for round := 0; round < 100_000; round++ {
		q.push(expectation{copyMsgs: uint64(next)})
		next++
		if got := q.front().copyMsgs; got != uint64(want) {
			t.Fatalf("round %d: front is %d, want %d", round, got, want)
		}
		q.pop()
		want++
	}
	if q.len() != 100 {
		t.Fatalf("%d entries, want 100", q.len())
	}
	if c := cap(q.items); c > 400 {
		t.Fatalf("the array holds %d entries for a queue of 100", c)
	}
	for q.len() > 0 {
		if got := q.front().copyMsgs; got != uint64(want) {
			t.Fatalf("front is %d, want %d", got, want)
		}
		q.pop()
		want++
	}
}
