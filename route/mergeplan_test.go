package route

import (
	"fmt"
	"strings"
	"testing"

	"github.com/pgshard/pgshard/merge"
)

// mergeCase is a cross-shard SELECT and what the shards must run and how the proxy merges.
type mergeCase struct {
	sql   string
	shard string // the statement the shards run ("" = the client's)
	spec  string // fmtSpec of the spec for a shard row of ncols columns
	ncols int
	args  merge.Args
}

// fmtSpec writes a spec compactly: values (agg:col[/col2]), visible count, order, group, flags.
func fmtSpec(s *merge.Spec) string {
	var b strings.Builder
	aggs := []string{"", "count", "sum", "min", "max", "avg", "bool_and", "bool_or", "string_agg", "array_agg"}
	for i, v := range s.Values {
		if i == s.Visible {
			b.WriteString("|")
		} else if i > 0 {
			b.WriteString(" ")
		}
		if v.Agg != merge.AggNone {
			b.WriteString(aggs[v.Agg] + ":")
		}
		fmt.Fprint(&b, v.Col)
		if v.Agg == merge.AggAvg || v.Agg == merge.AggStringAgg {
			fmt.Fprintf(&b, "/%d", v.Col2)
		}
		if v.Name != "" {
			b.WriteString("=" + v.Name)
		}
	}
	if len(s.Order) > 0 {
		b.WriteString(" order")
		for _, k := range s.Order {
			fmt.Fprintf(&b, " %d", k.Value)
			if k.Desc {
				b.WriteString("d")
			}
			if k.NullsFirst {
				b.WriteString("n")
			}
		}
	}
	if s.Aggregate {
		fmt.Fprintf(&b, " group%v", s.Group)
	}
	if s.Having != nil {
		b.WriteString(" having")
	}
	if s.Distinct {
		b.WriteString(" distinct")
	}
	if len(s.DistinctOn) > 0 {
		fmt.Fprintf(&b, " on%v", s.DistinctOn)
	}
	if s.Limit {
		b.WriteString(" limit")
	}
	if s.Offset {
		b.WriteString(" offset")
	}
	return b.String()
}

func TestMergePlans(t *testing.T) {
	r := NewRouter(mustSchema(t, testDB()), 0)
	cases := []mergeCase{
		{sql: "SELECT aid, abalance FROM accounts ORDER BY abalance DESC, aid", ncols: 2,
			spec: "0 1 order 1dn 0", args: merge.Args{Limit: -1}},
		{sql: "SELECT aid FROM accounts ORDER BY abalance LIMIT 10", ncols: 2,
			shard: "SELECT aid, abalance FROM accounts ORDER BY abalance LIMIT 10",
			spec:  "0|1 order 1 limit", args: merge.Args{Limit: 10}},
		{sql: "SELECT * FROM accounts ORDER BY 2 DESC NULLS LAST LIMIT 5 OFFSET 10", ncols: 4,
			shard: "SELECT * FROM accounts ORDER BY 2 DESC NULLS LAST LIMIT ((5)::bigint + (10)::bigint) ",
			spec:  "0 1 2 3 order 1d limit offset", args: merge.Args{Limit: 5, Offset: 10}},
		{sql: "SELECT * FROM accounts ORDER BY filler OFFSET 3", ncols: 5,
			shard: "SELECT *, filler FROM accounts ORDER BY filler ",
			spec:  "0 1 2 3|4 order 4 offset", args: merge.Args{Limit: -1, Offset: 3}},
		{sql: "SELECT count(*), sum(abalance), avg(abalance) AS a FROM accounts", ncols: 4,
			shard: "SELECT count(*), sum(abalance), sum(abalance) AS a, count(abalance) FROM accounts",
			spec:  "count:0 sum:1 avg:2/3 group[]", args: merge.Args{Limit: -1}},
		{sql: "SELECT bid, count(*) FROM accounts GROUP BY bid HAVING count(*) > 3 ORDER BY 2 DESC, bid LIMIT 5",
			shard: "SELECT bid, count(*) FROM accounts GROUP BY bid HAVING (count(*) > 3) IS NULL OR true ORDER BY 2 DESC, bid ", ncols: 2,
			spec: "0 count:1 order 1dn 0 group[0] having limit", args: merge.Args{Limit: 5, Consts: [][]byte{[]byte("3")}, ConstFormats: []int16{0}}},
		{sql: "SELECT bid FROM accounts GROUP BY bid, filler ORDER BY max(abalance)", ncols: 3,
			shard: "SELECT bid, filler, max(abalance) FROM accounts GROUP BY bid, filler ORDER BY max(abalance)",
			spec:  "0|max:2 order 1 group[0 1]", args: merge.Args{Limit: -1}},
		{sql: "SELECT string_agg(filler, ', ') FROM accounts", ncols: 2,
			shard: "SELECT string_agg(filler, ', '), ', ' FROM accounts",
			spec:  "string_agg:0/1 group[]", args: merge.Args{Limit: -1}},
		{sql: "SELECT DISTINCT bid FROM accounts ORDER BY bid LIMIT $1", ncols: 1,
			spec: "0 order 0 distinct limit", args: merge.Args{Limit: -1}},
		{sql: "SELECT DISTINCT ON (bid) bid, aid FROM accounts ORDER BY bid, aid DESC", ncols: 2,
			spec: "0 1 order 0 1dn on[0]", args: merge.Args{Limit: -1}},
	}
	for _, c := range cases {
		d := r.Query(c.sql, NoSession)
		if d.Err != nil {
			t.Errorf("%s: %v", c.sql, d.Err)
			continue
		}
		if d.Merge == nil {
			t.Errorf("%s: no merge (shards %b)", c.sql, d.Shards)
			continue
		}
		if d.Merge.SQL != c.shard {
			t.Errorf("%s:\n shard SQL %q\n want      %q", c.sql, d.Merge.SQL, c.shard)
		}
		if got := fmtSpec(d.Merge.Spec(c.ncols)); got != c.spec {
			t.Errorf("%s:\n spec %q\n want %q", c.sql, got, c.spec)
		}
		if fmt.Sprint(d.Merge.Args) != fmt.Sprint(c.args) {
			t.Errorf("%s: args %v, want %v", c.sql, d.Merge.Args, c.args)
		}
	}
}

// The shapes no merge computes go to the coordinator step, which knows why.
func TestMergeRefusals(t *testing.T) {
	r := NewRouter(mustSchema(t, testDB()), 0)
	for sql, want := range map[string]string{
		"SELECT count(DISTINCT bid) FROM accounts":                                   "count(DISTINCT ...)",
		"SELECT string_agg(filler, ',' ORDER BY aid) FROM accounts":                  "string_agg(... ORDER BY ...)",
		"SELECT sum(abalance) * 2 FROM accounts":                                     "an expression over an aggregate",
		"SELECT aid, row_number() OVER () FROM accounts":                             "window functions",
		"SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY abalance) FROM accounts": "WITHIN GROUP",
		"SELECT stddev(abalance) FROM accounts":                                      "stddev()",
		"SELECT aid FROM accounts ORDER BY aid LIMIT 1 + 1":                          "LIMIT or OFFSET given by an expression",
		"SELECT * FROM (SELECT aid FROM accounts ORDER BY aid LIMIT 3) s":            "ORDER BY and LIMIT",
	} {
		d := r.Query(sql, NoSession)
		if d.Gather == nil || !strings.Contains(d.Gather.Why, want) {
			t.Errorf("%s: %+v, want the coordinator step for %q", sql, d, want)
		}
	}
}
