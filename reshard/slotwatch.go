package reshard

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// A run's logical slots make the sources keep their WAL from the copy's snapshot on: while the copy runs (the
// slots are read only once it is done), and while the streaming falls behind. On a large table, or with a
// destination that stalls, that WAL can fill a source's disk, and a full disk stops the source. So the run
// watches what each of its slots retains (pg_current_wal_lsn() - restart_lsn) from the moment it may have
// slots, shows the sum in its progress and SHOW RESHARD, and stops itself with an error that names the slot,
// the figure and the bound before any slot retains more than Options.MaxSlotWAL: a run stopped that way can be
// run again (the copy is redone only where it was not finished) or undone with --abort, which drops the slots.

// slotWatchEvery is how often the slots' retained WAL is read.
const slotWatchEvery = 500 * time.Millisecond

// watchSlots reads the retained WAL of the run's slots until ctx ends, and calls stop with the reason when a
// slot retains more than the bound. A source it cannot reach is tried again at the next round (the run itself
// reports a source that is down).
func (p *plan) watchSlots(ctx context.Context, prog *progress, stop func(error)) {
	conns := make([]*pgx.Conn, len(p.sources))
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.Close(context.Background())
			}
		}
	}()
	tick := time.NewTicker(slotWatchEvery)
	defer tick.Stop()
	for {
		var total int64
		for i, e := range p.sources {
			if conns[i] == nil {
				c, err := connect(ctx, e)
				if err != nil {
					continue
				}
				conns[i] = c
			}
			var retained int64
			err := conns[i].QueryRow(ctx, `SELECT coalesce(sum(pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)), 0)::bigint
				FROM pg_replication_slots WHERE slot_name = $1`, p.slotName(e.idx)).Scan(&retained)
			if err != nil {
				conns[i].Close(context.Background())
				conns[i] = nil
				continue
			}
			total += retained
			if p.opt.MaxSlotWAL > 0 && retained > p.opt.MaxSlotWAL {
				prog.retained.Store(total)
				stop(fmt.Errorf("stopped: replication slot %s on source shard %d retains %s of WAL, more than "+
					"--max-slot-wal %s, which would fill the source's disk; the copy or the streaming is too slow for "+
					"the writes: run again (with a higher --max-slot-wal once the disk has room), or undo with --abort, "+
					"which drops the slot", p.slotName(e.idx), e.idx, sizeText(retained), sizeText(p.opt.MaxSlotWAL)))
				return
			}
		}
		prog.retained.Store(total)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// sizeText writes a byte count as Postgres's pg_size_pretty would, roughly: "12 MB".
func sizeText(n int64) string {
	for _, u := range []struct {
		unit  string
		bytes int64
	}{{"GB", 1 << 30}, {"MB", 1 << 20}, {"kB", 1 << 10}} {
		if n >= 10*u.bytes {
			return fmt.Sprintf("%d %s", n/u.bytes, u.unit)
		}
	}
	return fmt.Sprintf("%d bytes", n)
}
