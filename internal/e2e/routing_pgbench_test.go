package e2e

import (
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// ---- 11. pgbench through pgshard on database bench ----
//
// Database bench has two shards (bench_0, bench_1): pgbench_accounts sharded by aid (integer, hash),
// pgbench_branches, pgbench_tellers and pgbench_history replicated. `pgbench -i -s 1` creates and fills the
// tables through pgshard, then the default TPC-B script runs with 4 clients. Each TPC-B transaction updates one
// account (on its shard) and, on every shard, one teller, one branch and a new history row. So afterwards:
//   - every account is on the shard Postgres's hash partitioning names, 100000 in all;
//   - both shards hold the same history (the same rows, 4 x 200 of them), tellers and branches;
//   - on each shard, every account's abalance is the sum of the history deltas of that account (history is
//     complete on each shard), so the abalances of both shards together sum to sum(delta);
//   - on each shard, sum(tbalance) = sum(bbalance) = sum(delta).

func testPgbench(t *testing.T, e *shardedEnv) {
	if len(e.bench) != 2 {
		t.Fatalf("the environment (%v) has no bench database", e.layout)
	}
	pgbench := pgTool(t, "pgbench")
	ctx := Ctx(t, 4*time.Minute)
	conn := []string{"-h", "127.0.0.1", "-p", strconv.Itoa(e.proxy.Port), "-U", "app"}
	out, err := runTool(ctx, "secret", pgbench, append(append([]string{"-i", "-s", "1"}, conn...), "bench")...)
	if err != nil {
		t.Fatalf("pgbench -i -s 1 through pgshard: %v\n%s", err, out)
	}

	// After -i: tables on both shards, accounts each where Postgres puts them, the small tables complete.
	for _, s := range e.bench {
		if got := s.value(t, `SELECT count(*) FROM unnest(ARRAY['pgbench_accounts', 'pgbench_branches', 'pgbench_tellers',
  'pgbench_history']) AS n WHERE to_regclass(n) IS NULL`); got != "0" {
			t.Fatalf("after pgbench -i through pgshard, %s of pgbench's 4 tables are missing on shard %d (DDL must reach every shard)", got, s.Index)
		}
	}
	checkBenchAccounts(t, e, "after pgbench -i")
	for _, s := range e.bench {
		if got := s.value(t, "SELECT (SELECT count(*) FROM pgbench_branches) || '/' || (SELECT count(*) FROM pgbench_tellers) || '/' || (SELECT count(*) FROM pgbench_history)"); got != "1/10/0" {
			t.Errorf("after pgbench -i, shard %d holds branches/tellers/history %s, want 1/10/0 (replicated tables complete on every shard)", s.Index, got)
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	out, err = runTool(ctx, "secret", pgbench, append(append([]string{"-c", "4", "-j", "2", "-t", "200"}, conn...), "bench")...)
	if err != nil {
		t.Fatalf("pgbench -c 4 -j 2 -t 200 through pgshard: %v\n%s", err, out)
	}
	if m := regexp.MustCompile(`number of transactions actually processed: (\d+)/(\d+)`).FindStringSubmatch(out); m == nil || m[1] != "800" || m[2] != "800" {
		t.Errorf("pgbench did not process 800 of 800 transactions:\n%s", out)
	}
	if m := regexp.MustCompile(`number of failed transactions: (\d+)`).FindStringSubmatch(out); m != nil && m[1] != "0" {
		t.Errorf("pgbench reports %s failed transactions:\n%s", m[1], out)
	}
	checkBenchAccounts(t, e, "after the TPC-B run")
	checkTPCB(t, e, 800)
}

// checkBenchAccounts checks that pgbench_accounts holds 100000 rows over both bench shards, each on the shard
// Postgres's hash partitioning (shadow_bench) names.
func checkBenchAccounts(t *testing.T, e *shardedEnv, when string) {
	t.Helper()
	total := 0
	for _, s := range e.bench {
		n, err := strconv.Atoi(s.value(t, "SELECT count(*) FROM pgbench_accounts"))
		if err != nil {
			t.Fatal(err)
		}
		total += n
		misplaced := s.value(t, `SELECT count(*) || ' ' || coalesce(string_agg(aid::text, ' ') FILTER (WHERE r <= 5), '')
FROM (SELECT aid, row_number() OVER (ORDER BY aid) AS r FROM pgbench_accounts
      WHERE NOT satisfies_hash_partition('shadow_bench'::regclass, 2, $1, aid)) m`, s.Index)
		if count, first, _ := strings.Cut(misplaced, " "); count != "0" {
			t.Errorf("%s: %s of the %d pgbench_accounts rows of shard %d belong on the other shard (e.g. aid %s)",
				when, count, n, s.Index, first)
		}
	}
	if total != 100000 {
		t.Errorf("%s: pgbench_accounts holds %d rows over both shards, want 100000", when, total)
	}
}

// checkTPCB checks the invariants of a TPC-B run of n transactions with replicated history, tellers and branches
// (see above).
func checkTPCB(t *testing.T, e *shardedEnv, n int) {
	t.Helper()
	const (
		historySQL  = "SELECT tid, bid, aid, delta, count(*) FROM pgbench_history GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4"
		tellersSQL  = "SELECT tid, bid, tbalance FROM pgbench_tellers ORDER BY tid"
		branchesSQL = "SELECT bid, bbalance FROM pgbench_branches ORDER BY bid"
	)
	for _, q := range []string{historySQL, tellersSQL, branchesSQL} {
		a, b := e.bench[0].rows(t, q), e.bench[1].rows(t, q)
		if ra, rb := sortedRows(a), sortedRows(b); len(ra) == 0 || !slices.Equal(ra, rb) {
			t.Errorf("the replicated table differs between the shards (or is empty): %s\n  shard 0: %d rows\n  shard 1: %d rows", q, len(a), len(b))
		}
	}
	var sumAbalance int64
	var sumDelta [2]int64
	for _, s := range e.bench {
		if got := s.value(t, "SELECT count(*) FROM pgbench_history"); got != strconv.Itoa(n) {
			t.Errorf("shard %d holds %s history rows, want %d (each transaction inserts one, on every shard)", s.Index, got, n)
		}
		sums := s.rows(t, `SELECT coalesce((SELECT sum(delta) FROM pgbench_history), 0),
  (SELECT sum(tbalance) FROM pgbench_tellers), (SELECT sum(bbalance) FROM pgbench_branches),
  (SELECT sum(abalance) FROM pgbench_accounts)`)[0]
		v := make([]int64, len(sums))
		for i, x := range sums {
			var err error
			if v[i], err = strconv.ParseInt(x, 10, 64); err != nil {
				t.Fatalf("shard %d: sums %v: %v", s.Index, sums, err)
			}
		}
		sumDelta[s.Index] = v[0]
		sumAbalance += v[3]
		if v[1] != v[0] || v[2] != v[0] {
			t.Errorf("shard %d: sum(delta) %d, sum(tbalance) %d, sum(bbalance) %d: want all equal", s.Index, v[0], v[1], v[2])
		}
		// Every account of this shard holds exactly the deltas the (complete) history records for it.
		if bad := s.value(t, `SELECT count(*) FROM pgbench_accounts a
LEFT JOIN (SELECT aid, sum(delta) AS d FROM pgbench_history GROUP BY aid) h USING (aid)
WHERE a.abalance <> coalesce(h.d, 0)`); bad != "0" {
			t.Errorf("shard %d: %s accounts' abalance differs from the sum of their history deltas", s.Index, bad)
		}
		// And every history row's account is on the shard that owns it: the sum of the deltas of the accounts
		// this shard owns equals the sum of its abalances.
		if got := s.value(t, `SELECT coalesce(sum(delta), 0) = (SELECT sum(abalance) FROM pgbench_accounts) FROM pgbench_history
WHERE satisfies_hash_partition('shadow_bench'::regclass, 2, $1, aid)`, s.Index); got != "true" {
			t.Errorf("shard %d: the deltas of the accounts it owns do not add up to its abalances", s.Index)
		}
	}
	if sumDelta[0] != sumDelta[1] || sumAbalance != sumDelta[0] {
		t.Errorf("sum(abalance) over both shards %d, sum(delta) of history on shard 0 %d and on shard 1 %d: want all equal",
			sumAbalance, sumDelta[0], sumDelta[1])
	}
}
