package loop

import (
	"bytes"
	"math/bits"
	"strconv"

	"github.com/pgshard/pgshard/codec"
)

// fanout merges the answers of several servers running the same statement (one Query, or one portal from
// Bind to Execute and its Sync) into what one server would have answered: each kind of one-off answer
// (BindComplete, RowDescription, CopyInResponse, ...) once, rows as they arrive, one CommandComplete with the
// shards' counts summed (or, for a statement that did the same on every shard — a replicated table, DDL —
// the first shard's), the first error only (and nothing of the statement after it), one ReadyForQuery.
type fanout struct {
	active   bool
	members  uint64 // the shards taking part
	k        int
	mirror   bool   // every shard did the same thing: report one shard's count, not the sum
	seen     uint32 // one-off answers already passed on, by bit
	errSent  bool
	done     int    // CommandComplete, EmptyQueryResponse or PortalSuspended received
	rows     uint64 // their counts, summed
	tag      []byte // the first CommandComplete's tag
	empty    bool
	suspend  bool
	copyIn   int
	copyDone int
	ready    int
	status   byte
	rowsFrom uint64 // mirror: the shard whose rows are passed on
	later    uint64 // shards a replicated write goes to once the first shard is through
	laterMsg []byte
}

func (g *fanout) start(mask uint64, mirror bool) {
	*g = fanout{active: true, members: mask, k: bits.OnesCount64(mask), mirror: mirror, tag: g.tag[:0], status: codec.TxIdle,
		laterMsg: g.laterMsg[:0]}
}

// onceBit gives the one-off answers their bit in seen.
func onceBit(typ byte) uint32 {
	switch typ {
	case codec.ParseComplete:
		return 1
	case codec.BindComplete:
		return 2
	case codec.CloseComplete:
		return 4
	case codec.ParameterDescription:
		return 8
	case codec.RowDescription:
		return 16
	case codec.NoData:
		return 32
	case codec.CopyOutResponse:
		return 128
	}
	return 0
}

// merge decides what becomes of one server's message msg: pass it on (true), or drop it and pass out instead
// (out may be empty). scratch is where out is built.
func (g *fanout) merge(msg []byte, scratch []byte, shard uint64) (bool, []byte) {
	typ := msg[0]
	switch typ {
	case codec.DataRow, codec.CopyData:
		if g.mirror {
			// Every shard returns the same rows (RETURNING of a replicated write): one shard's are the answer.
			if g.rowsFrom == 0 {
				g.rowsFrom = shard
			}
			return !g.errSent && g.rowsFrom == shard, nil
		}
		return !g.errSent, nil
	case codec.ErrorResponse:
		if g.errSent {
			return false, nil
		}
		g.errSent = true
		return true, nil
	case codec.CommandComplete, codec.EmptyQueryResponse, codec.PortalSuspended:
		g.done++
		switch typ {
		case codec.CommandComplete:
			if tag, err := codec.ParseCommandComplete(msg[codec.HeaderLen:]); err == nil {
				if g.done == 1 || len(g.tag) == 0 {
					g.tag = append(g.tag[:0], tag...)
				}
				if i := bytes.LastIndexByte(tag, ' '); i >= 0 {
					if n, err := strconv.ParseUint(string(tag[i+1:]), 10, 64); err == nil {
						if g.mirror {
							g.rows = max(g.rows, n)
						} else {
							g.rows += n
						}
					}
				}
			}
		case codec.EmptyQueryResponse:
			g.empty = true
		case codec.PortalSuspended:
			g.suspend = true
		}
		if g.done < g.k || g.errSent {
			return false, nil
		}
		switch {
		case g.suspend:
			return false, codec.AppendEmpty(scratch, codec.PortalSuspended)
		case len(g.tag) > 0:
			tag := g.tag
			if i := bytes.LastIndexByte(tag, ' '); i >= 0 {
				if _, err := strconv.ParseUint(string(tag[i+1:]), 10, 64); err == nil {
					tag = strconv.AppendUint(tag[:i+1], g.rows, 10)
				}
			}
			return false, codec.AppendCommandComplete(scratch, string(tag))
		}
		return false, codec.AppendEmpty(scratch, codec.EmptyQueryResponse)
	case codec.CopyInResponse:
		// Passed on once every shard is ready for the data (pgshard's catalog query is answered by then).
		g.copyIn++
		if g.copyIn < g.k || g.errSent {
			return false, nil
		}
		return true, nil
	case codec.CopyDone:
		g.copyDone++
		if g.copyDone < g.k || g.errSent {
			return false, nil
		}
		return false, codec.AppendEmpty(scratch, codec.CopyDone)
	case codec.ReadyForQuery:
		g.ready++
		if len(msg) == 6 {
			switch s := msg[5]; {
			case s == codec.TxFailed, s == codec.TxActive && g.status == codec.TxIdle:
				g.status = s
			}
		}
		if g.ready < g.k {
			return false, nil
		}
		g.active = false
		return false, codec.AppendReadyForQuery(scratch, g.status)
	}
	if b := onceBit(typ); b != 0 {
		if g.seen&b != 0 || g.errSent {
			return false, nil
		}
		g.seen |= b
	}
	return true, nil // notices, parameter status, notifications, ...
}
