package main

import (
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/pgshard/pgshard/config"
	"github.com/pgshard/pgshard/route/shard"
)

const hashUsage = `usage:
  pgshard hash --shards N --type T VALUE...
  pgshard hash --config config.yaml [--database DB] --table TABLE [--column COL] VALUE...

Prints the shard each key value goes to. With --shards and --type: Postgres hash partitioning over N
shards (shard i holds what the partition FOR VALUES WITH (MODULUS N, REMAINDER i) would). With --config:
the table's mapping in config.yaml (--column picks an entry that covers every table with that column).
Flags and values may come in any order; "--" ends the flags.
`

// hash is `pgshard hash`: the shard of key values. Exit status 2 for bad usage or a value that is not a
// valid key (each such value is reported on stderr; the others are still printed).
func hash(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("hash", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, hashUsage) }
	shards := fs.Int("shards", 0, "number of shards (with --type)")
	typ := fs.String("type", "", "key type: smallint, integer, bigint, text, varchar or uuid")
	path := fs.String("config", "", "config file (instead of --shards and --type)")
	dbName := fs.String("database", "", "database of the config (may be left out when there is one)")
	table := fs.String("table", "", "sharded table of the config")
	column := fs.String("column", "", "shard key column, for an entry that covers every table with it")
	flags, values := splitArgs(fs, args)
	if err := fs.Parse(flags); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	values = append(values, fs.Args()...)
	if len(values) == 0 {
		fmt.Fprintf(stderr, "pgshard hash: no values given\n\n%s", hashUsage)
		return 2
	}
	var m *shard.Mapper
	var err error
	if *path != "" {
		if *shards != 0 || *typ != "" {
			fmt.Fprintf(stderr, "pgshard hash: --config takes the shards and type from the file: leave out --shards and --type\n")
			return 2
		}
		m, err = configMapper(*path, *dbName, *table, *column)
	} else {
		if *dbName != "" || *table != "" || *column != "" {
			fmt.Fprintf(stderr, "pgshard hash: --database, --table and --column go with --config\n")
			return 2
		}
		if *shards < 1 || *typ == "" {
			fmt.Fprintf(stderr, "pgshard hash: give --shards N (at least 1) and --type, or --config\n\n%s", hashUsage)
			return 2
		}
		m, err = shard.NewMapper(&config.ShardedTable{Column: "key", Type: *typ, Mapping: config.MappingHash}, *shards)
	}
	if err != nil {
		fmt.Fprintf(stderr, "pgshard hash: %v\n", err)
		return 2
	}
	status := 0
	for _, v := range values {
		s, perr := m.ShardText([]byte(v))
		if perr != nil {
			fmt.Fprintf(stderr, "pgshard hash: %s (SQLSTATE %s)\n", perr.Message, perr.Code)
			status = 2
			continue
		}
		shown := v
		if m.Type() == shard.Text {
			shown = "'" + strings.ReplaceAll(v, "'", "''") + "'" // so that '' and ' a' show
		}
		if m.Mapping() != config.MappingHash {
			fmt.Fprintf(stdout, "%s -> shard %d\n", shown, s)
			continue
		}
		h, _ := m.HashText([]byte(v))
		fmt.Fprintf(stdout, "%s -> shard %d (hash 0x%016x)\n", shown, s, h)
	}
	return status
}

// splitArgs separates the flags of fs (which may come before, between or after the values) from the
// values, so that negative numbers need no "--": an argument starting with "-" that names no flag of fs is
// a value. Everything after "--" is a value.
func splitArgs(fs *flag.FlagSet, args []string) (flags, values []string) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return flags, append(values, args[i+1:]...)
		}
		name := strings.TrimLeft(a, "-")
		name, _, hasValue := strings.Cut(name, "=")
		if !strings.HasPrefix(a, "-") || (fs.Lookup(name) == nil && name != "h" && name != "help") {
			values = append(values, a)
			continue
		}
		flags = append(flags, a)
		if !hasValue && fs.Lookup(name) != nil && i+1 < len(args) {
			i++
			flags = append(flags, args[i])
		}
	}
	return flags, values
}

// configMapper is the mapper of a table's sharded_tables entry in a config file.
func configMapper(path, dbName, table, column string) (*shard.Mapper, error) {
	cfg, err := config.Load(path)
	if err != nil {
		return nil, err
	}
	var db *config.Database
	switch {
	case dbName != "":
		if db = cfg.Database(dbName); db == nil {
			return nil, fmt.Errorf("%s has no database %q", path, dbName)
		}
	case len(cfg.Databases) == 1:
		db = &cfg.Databases[0]
	default:
		names := make([]string, len(cfg.Databases))
		for i, d := range cfg.Databases {
			names[i] = d.Name
		}
		return nil, fmt.Errorf("%s has several databases: pick one with --database (%s)", path, strings.Join(names, ", "))
	}
	if table == "" && column == "" {
		return nil, fmt.Errorf("give --table (or --column)")
	}
	var entry *config.ShardedTable
	for i, t := range db.ShardedTables {
		if table != "" && t.Table == table && (column == "" || t.Column == column) {
			entry = &db.ShardedTables[i]
			break
		}
	}
	if entry == nil {
		// An entry without a table covers every table that has its column.
		var wide []string
		for i, t := range db.ShardedTables {
			if t.Table != "" {
				continue
			}
			wide = append(wide, t.Column)
			if t.Column == column {
				entry = &db.ShardedTables[i]
			}
		}
		if entry == nil && column == "" && len(wide) == 1 {
			for i, t := range db.ShardedTables {
				if t.Table == "" {
					entry = &db.ShardedTables[i]
				}
			}
		}
		if entry == nil {
			what := fmt.Sprintf("table %q", table)
			if table == "" {
				what = fmt.Sprintf("column %q", column)
			}
			msg := fmt.Sprintf("database %q of %s does not shard %s", db.Name, path, what)
			if len(wide) > 0 {
				msg += fmt.Sprintf(" (entries for every table with a column: %s; pick one with --column)", strings.Join(wide, ", "))
			}
			return nil, fmt.Errorf("%s", msg)
		}
	}
	return shard.NewMapper(entry, len(db.Shards))
}
