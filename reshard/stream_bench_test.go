package reshard

import (
	"context"
	"encoding/binary"
	"strconv"
	"testing"

	"github.com/pgshard/pgshard/config"
	"github.com/pgshard/pgshard/route/shard"
)

// pgoutput (protocol 1) messages for the benchmark's synthetic stream.
type pgout []byte

func (b pgout) str(s string) pgout { return append(append(b, s...), 0) }
func (b pgout) u16(v int) pgout    { return binary.BigEndian.AppendUint16(b, uint16(v)) }
func (b pgout) u32(v int) pgout    { return binary.BigEndian.AppendUint32(b, uint32(v)) }
func (b pgout) u64(v uint64) pgout { return binary.BigEndian.AppendUint64(b, v) }
func (b pgout) tuple(vals ...string) pgout {
	b = b.u16(len(vals))
	for _, v := range vals {
		b = append(b, 't')
		b = b.u32(len(v))
		b = append(b, v...)
	}
	return b
}

func relationMsg(id int, name string, cols ...string) []byte {
	b := pgout{'R'}.u32(id).str("public").str(name)
	b = append(b, 'd')
	b = b.u16(len(cols))
	for i, c := range cols {
		flags := byte(0)
		if i == 0 || (name == "history" && i == 1) {
			flags = 1
		}
		b = append(b, flags)
		b = b.str(c).u32(25).u32(-1 & 0x7fffffff)
	}
	return b
}

// BenchmarkStreamerDispatch decodes and dispatches a pgbench-like source transaction (BEGIN, an UPDATE of
// accounts, an INSERT into history, COMMIT) to 4 destinations' appliers, whose channels are drained.
func BenchmarkStreamerDispatch(b *testing.B) {
	m, err := shard.NewMapper(&config.ShardedTable{Column: "aid", Type: "bigint", Mapping: config.MappingHash}, 4)
	if err != nil {
		b.Fatal(err)
	}
	accounts := &table{schema: "public", name: "accounts", key: 0, newMapper: m, identity: []int{0},
		columns: []column{{name: "aid"}, {name: "bid"}, {name: "abalance"}, {name: "filler"}}}
	history := &table{schema: "public", name: "history", key: 1, newMapper: m, identity: []int{0, 1},
		columns: []column{{name: "hid"}, {name: "aid"}, {name: "delta"}, {name: "note"}, {name: "mtime"}}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var appliers []*applier
	for range 4 {
		a := &applier{err: make(chan error, 1)}
		benchChannel(ctx, a)
		appliers = append(appliers, a)
	}
	s := newStreamer(&plan{}, endpoint{}, "bench", []*table{accounts, history}, appliers, nil)
	for _, msg := range [][]byte{
		relationMsg(1, "accounts", "aid", "bid", "abalance", "filler"),
		relationMsg(2, "history", "hid", "aid", "delta", "note", "mtime"),
	} {
		if err := s.handle(ctx, msg); err != nil {
			b.Fatal(err)
		}
	}
	filler := string(make([]byte, 80))
	var txs [][][]byte
	for i := range 1024 {
		lsn := uint64(1000 + 1000*i)
		aid := strconv.Itoa(i*7919%20000 + 1)
		txs = append(txs, [][]byte{
			pgout{'B'}.u64(lsn).u64(0).u32(i),
			append(pgout{'U'}.u32(1), 'N').tuple(aid, "3", strconv.Itoa(i), filler),
			append(pgout{'I'}.u32(2), 'N').tuple(strconv.Itoa(i), aid, "-17", "nnnnnnnnnnnnnnnnnnnnnnnnn", "2026-11-24 20:00:00+00"),
			pgout{'C', 0}.u64(lsn).u64(lsn + 100).u64(0),
		})
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		for _, msg := range txs[i%len(txs)] {
			if err := s.handle(ctx, msg); err != nil {
				b.Fatal(err)
			}
		}
	}
}
