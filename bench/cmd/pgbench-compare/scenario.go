package main

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Scenario is one pgbench workload run through several targets at several client counts.
type Scenario struct {
	Name     string
	Title    string
	About    string
	Select   bool   // -S select-only; false: pgbench's default TPC-B-like script (writes, transactions)
	Mode     string // -M
	Connect  bool   // -C: reconnect per transaction
	Writes   bool   // reset the tables before each case (TRUNCATE history, VACUUM)
	Clients  []int
	Targets  []string
	Duration time.Duration // per run, unless -duration says otherwise
	Skip     string        // not run, and why
	Check    bool          // the foundation issue's pass/fail checks apply
	// Sharded: pgshard serves the two shard databases (pgbench_accounts hash-sharded by aid) while direct and
	// PgBouncer go to the unsharded reference; after the runs, a routing check reads sampled keys back through
	// pgshard.
	Sharded bool
	// TLS: pgshard and PgBouncer serve TLS (a certificate made for the run) and pgbench connects with
	// sslmode=require; Postgres itself has no TLS, so there is no direct target.
	TLS bool
	// Replicas: pgshard's database has two streaming replicas of the cluster (on the same machine), and reads
	// from them; the target pgshard-primary is the same pgshard with read_write_split off.
	Replicas bool
}

// Default per-run durations: the default set keeps runs short so that it fits in 15 minutes on 2 cores; the
// foundation check is one quick scenario and affords 10 s runs.
const (
	matrixDuration     = 5 * time.Second
	foundationDuration = 10 * time.Second
)

var allTargets = []string{Direct, PgBouncer, Pgshard}

func selectOnly(mode string) Scenario {
	return Scenario{
		Name: "select-" + mode, Title: "select-only, -M " + mode,
		About:  "`pgbench -S -M " + mode + "`: one indexed primary-key SELECT per transaction.",
		Select: true, Mode: mode, Clients: []int{1, 16, 64, 256}, Targets: allTargets, Duration: matrixDuration,
	}
}

// shardedSelect is the sharding issue's check: pgbench -S through pgshard over 2 shards against PgBouncer and
// direct connections to one unsharded database with the same data.
func shardedSelect(mode string) Scenario {
	about := "`pgbench -S -M " + mode + "` with pgbench_accounts hash-sharded by aid over 2 shards behind pgshard " +
		"(shard i holds the rows of Postgres's hash partition MODULUS 2, REMAINDER i), against PgBouncer and direct " +
		"connections to one unsharded database with the same data (the reference of the other scenarios). After " +
		"the runs, a routing check reads sampled keys back through pgshard (pgbench does not look at results)."
	return Scenario{
		Name: "sharded-" + mode, Title: "sharded by aid over 2 shards, -M " + mode, About: about,
		Select: true, Mode: mode, Clients: []int{16, 64, 256}, Targets: allTargets, Duration: matrixDuration,
		Sharded: true,
	}
}

// replicasSelect is the replicas issue's scenario: pgbench -S through pgshard reading from two streaming
// replicas, against the same pgshard with read_write_split off (every read on the primary) and PgBouncer.
func replicasSelect(mode string) Scenario {
	about := "`pgbench -S -M " + mode + "` through pgshard over the primary and two streaming replicas of it " +
		"(`pg_basebackup -R`, on the same machine), reads going to the replicas in turn; `pgshard-primary` is the " +
		"same pgshard and config with `read_write_split: off` (every read on the primary: what the read/write " +
		"classification costs), PgBouncer serves the primary alone."
	return Scenario{
		Name: "replicas-" + mode, Title: "reads from 2 replicas, -M " + mode, About: about,
		Select: true, Mode: mode, Clients: []int{32, 256}, Targets: []string{PgBouncer, PgshardPrimary, Pgshard},
		Duration: matrixDuration, Replicas: true,
	}
}

func scenarios() []Scenario {
	return []Scenario{
		selectOnly("simple"),
		selectOnly("extended"),
		selectOnly("prepared"),
		{
			Name: "connect", Title: "connection storm, -C",
			About:  "`pgbench -S -M simple -C`: a new connection (SCRAM authentication included) for every transaction.",
			Select: true, Mode: "simple", Connect: true, Clients: []int{16}, Targets: allTargets, Duration: matrixDuration,
		},
		{
			Name: "tpcb", Title: "TPC-B-like (writes)",
			About: "pgbench's default script: 3 UPDATEs, 1 SELECT, 1 INSERT in a BEGIN/END transaction; tables reset " +
				"(TRUNCATE pgbench_history, VACUUM) before each client count.",
			Mode: "simple", Writes: true, Clients: []int{16}, Targets: allTargets, Duration: matrixDuration,
		},
		shardedSelect("simple"),
		shardedSelect("extended"),
		replicasSelect("simple"),
		replicasSelect("prepared"),
		{
			Name: "tls-select", Title: "TLS to clients, select-only, -M extended",
			About: "`pgbench -S -M extended -c 32` with sslmode=require: TLS 1.3 between pgbench and the proxy " +
				"(plaintext to Postgres), transaction pooling, pool 10.",
			Select: true, Mode: "extended", Clients: []int{32}, Targets: []string{PgBouncer, Pgshard},
			Duration: foundationDuration, TLS: true,
		},
		{
			Name: "tls-connect", Title: "TLS to clients, connection storm, -C",
			About: "`pgbench -S -M simple -C -c 16` with sslmode=require: a TLS handshake and a SCRAM login for every " +
				"transaction.",
			Select: true, Mode: "simple", Connect: true, Clients: []int{16}, Targets: []string{PgBouncer, Pgshard},
			Duration: matrixDuration, TLS: true,
		},
		{
			Name: "foundation-simple", Title: "foundation check, -M simple",
			About: "The foundation issue's check: `pgbench -S -c 32 -j 2`, transaction pooling, pool 10: " +
				"pgshard's TPS at least PgBouncer's and its CPU per transaction at most PgBouncer's.",
			Select: true, Mode: "simple", Clients: []int{32}, Targets: []string{PgBouncer, Pgshard},
			Duration: foundationDuration, Check: true,
		},
		{
			Name: "foundation-extended", Title: "foundation check, -M extended",
			About:  "As foundation-simple, with the extended protocol (Parse/Bind/Execute/Sync, unnamed statements).",
			Select: true, Mode: "extended", Clients: []int{32}, Targets: []string{PgBouncer, Pgshard},
			Duration: foundationDuration, Check: true,
		},
	}
}

// scenarioSets are the names -scenarios accepts besides single scenario names.
var scenarioSets = map[string][]string{
	"default":    {"select-simple", "select-extended", "select-prepared", "connect", "tpcb", "sharded-simple"},
	"foundation": {"foundation-simple", "foundation-extended"},
	"select":     {"select-simple", "select-extended", "select-prepared"},
	"sharded":    {"sharded-simple", "sharded-extended"},
	"tls":        {"tls-select", "tls-connect"},
	"replicas":   {"replicas-simple", "replicas-prepared"},
}

func init() {
	all := append(slices.Clone(scenarioSets["default"]), "sharded-extended")
	all = append(all, scenarioSets["tls"]...)
	all = append(all, scenarioSets["replicas"]...)
	scenarioSets["all"] = append(all, scenarioSets["foundation"]...)
}

// pickScenarios resolves a comma-separated list of set and scenario names and applies the overrides: long adds
// 1000 clients to the select-only scenarios, clients (when not empty) replaces every client list, targets (when
// not empty) keeps only those targets.
func pickScenarios(list string, long bool, clients []int, targets []string) ([]Scenario, error) {
	byName := map[string]Scenario{}
	var names []string
	for _, s := range scenarios() {
		byName[s.Name] = s
		names = append(names, s.Name)
	}
	var out []Scenario
	seen := map[string]bool{}
	for _, item := range strings.Split(list, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		members, ok := scenarioSets[item]
		if !ok {
			members = []string{item}
		}
		for _, name := range members {
			s, ok := byName[name]
			if !ok {
				sets := make([]string, 0, len(scenarioSets))
				for k := range scenarioSets {
					sets = append(sets, k)
				}
				slices.Sort(sets)
				return nil, fmt.Errorf("unknown scenario %q; sets: %s; scenarios: %s", name,
					strings.Join(sets, ", "), strings.Join(names, ", "))
			}
			if seen[name] {
				continue
			}
			seen[name] = true
			if long && s.Select && !s.Connect && !s.Check {
				s.Clients = append(slices.Clone(s.Clients), 1000)
			}
			if len(clients) > 0 {
				s.Clients = clients
			}
			if len(targets) > 0 {
				var keep []string
				for _, t := range s.Targets {
					if slices.Contains(targets, t) {
						keep = append(keep, t)
					}
				}
				s.Targets = keep
			}
			out = append(out, s)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no scenario selected")
	}
	return out, nil
}

func parseInts(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("bad client count %q", f)
		}
		out = append(out, n)
	}
	return out, nil
}

func parseTargets(s string) ([]string, error) {
	var out []string
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if !slices.Contains(allTargets, f) && f != PgshardPrimary {
			return nil, fmt.Errorf("unknown target %q (want %s or %s)", f, strings.Join(allTargets, ", "), PgshardPrimary)
		}
		out = append(out, f)
	}
	return out, nil
}
