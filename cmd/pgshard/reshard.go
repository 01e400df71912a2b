package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"

	"github.com/pgshard/pgshard/reshard"
)

// reshardCmd runs `pgshard reshard`; the work is in package reshard.
func reshardCmd(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("reshard", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o reshard.Options
	fs.StringVar(&o.ConfigPath, "config", "config.yaml", "the proxy's config file (rewritten at the cutover; the old one is kept as <file>.before-reshard)")
	fs.StringVar(&o.Database, "database", "", "the database to reshard")
	fs.StringVar(&o.ToPath, "to", "", "YAML file with the new `shards:` (and optionally `sharded_tables:`)")
	fs.StringVar(&o.StateDir, "state-dir", "", "progress file and lock (default reshard-<database> next to the config)")
	fs.IntVar(&o.Workers, "workers", 4, "parallel copy streams")
	chunk := fs.Int64("chunk-mb", 256, "tables larger than this many MB are copied in ranges of about this size")
	fs.StringVar(&o.User, "user", "", "role on the shards (default: the shard URL's user, else the first user's server_user)")
	fs.StringVar(&o.PgBin, "pg-bin", "", "directory of pg_dump and psql")
	fs.StringVar(&o.AdminAddr, "admin-addr", "", "the proxy's address for its admin console (default: listen from the config)")
	fs.StringVar(&o.AdminPassword, "admin-password", "", "admin console password when the config holds a hash (or $PGSHARD_ADMIN_PASSWORD)")
	fs.DurationVar(&o.MinStreaming, "min-streaming", 0, "stream changes at least this long before the cutover")
	maxLag := fs.Int64("max-lag-kb", 1024, "start the cutover once every source's replication lag is below this many kB")
	maxSlotWAL := fs.Int64("max-slot-wal-mb", 16<<10, "stop the run before one of its replication slots makes a source keep more than this many MB of WAL")
	fs.DurationVar(&o.PauseTimeout, "pause-timeout", 0, "how long PAUSE may wait for running transactions (default 30s)")
	fs.BoolVar(&o.Abort, "abort", false, "remove what a failed run left behind (slots, publications, the destination's copied tables)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	o.ChunkBytes = *chunk << 20
	o.MaxLag = *maxLag << 10
	o.MaxSlotWAL = *maxSlotWAL << 20
	o.Password = os.Getenv("PGPASSWORD")
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if path := os.Getenv("PGSHARD_CPUPROFILE"); path != "" {
		// For the benchmarks (bench/cmd/reshard-bench -cpuprofile-dir): a CPU profile of the whole run, for go tool pprof.
		f, err := os.Create(path)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(stderr, "pgshard reshard: PGSHARD_CPUPROFILE:", err)
			return 1
		}
		defer func() { pprof.StopCPUProfile(); f.Close() }()
	}
	if err := reshard.Run(ctx, o); err != nil {
		if errors.Is(err, context.Canceled) {
			fmt.Fprintln(stderr, "pgshard reshard: interrupted; run the same command again to continue, or with --abort to undo")
			return 1
		}
		fmt.Fprintln(stderr, "pgshard reshard:", err)
		return 1
	}
	return 0
}

// sequencesCmd runs `pgshard sequences`: see reshard.Sequences.
func sequencesCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("sequences", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := reshard.SequenceOptions{Out: stdout, Password: os.Getenv("PGPASSWORD")}
	fs.StringVar(&o.ConfigPath, "config", defaultConfig(), "the proxy's config file")
	fs.StringVar(&o.Database, "database", "", "the sharded database")
	fs.StringVar(&o.User, "user", "", "role on the shards (default: the shard URL's user, else the first user's server_user)")
	fs.BoolVar(&o.Check, "check", false, "only report whether each sequence is interleaved (exit 1 when one is not)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := reshard.Sequences(ctx, o); err != nil {
		fmt.Fprintln(stderr, "pgshard sequences:", err)
		return 1
	}
	return 0
}
