package loop

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
)

// janitor gives memory back to the system once the proxy goes quiet. The Go runtime collects garbage only as
// the program allocates (or every two minutes), and returns freed pages gradually; so after a wave of clients
// leaves a quiet proxy (their buffers, sessions and prepared statements are garbage), its RSS would stay at the
// wave's peak for minutes. When nothing has changed for a check (the same number of client connections, less
// than a megabyte allocated) after something did, the janitor collects and returns what it freed (collect): a
// few milliseconds, at a moment when the proxy has nothing else to do. A busy proxy collects on its own and is
// left alone.
type janitor struct {
	samples  []metrics.Sample
	clients  int64
	allocMB  uint64
	changed  bool // something changed since the last collection the janitor ran
	released func()
}

const janitorEvery = 50 // sweeps (sweepInterval each): every 5 s

func newJanitor() *janitor {
	return &janitor{samples: []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}, released: collect}
}

// collect runs two collections, so that what sync.Pools held (gnet's buffers among them) is freed too (a
// pool keeps its objects through one collection), and returns the freed memory to the system.
func collect() {
	runtime.GC()
	debug.FreeOSMemory()
}

// check runs every janitorEvery sweeps with the number of client connections.
func (j *janitor) check(clients int64) {
	metrics.Read(j.samples)
	var mb uint64
	if v := j.samples[0].Value; v.Kind() == metrics.KindUint64 {
		mb = v.Uint64() >> 20
	}
	if clients != j.clients || mb != j.allocMB {
		j.clients, j.allocMB, j.changed = clients, mb, true
		return
	}
	if j.changed {
		j.changed = false
		j.released()
		metrics.Read(j.samples) // the collection's own allocations are not a change
		if v := j.samples[0].Value; v.Kind() == metrics.KindUint64 {
			j.allocMB = v.Uint64() >> 20
		}
	}
}
