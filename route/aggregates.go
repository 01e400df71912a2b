package route

import pg "github.com/pganalyze/pg_query_go/v6"

// aggregates are the names of Postgres's built-in aggregate functions (Postgres 17, "Aggregate Functions"
// and "Hypothetical-Set Aggregate Functions"). pg_query cannot tell an aggregate from another function call,
// so a call by one of these names (unqualified or in pg_catalog) counts as an aggregate. User-defined
// aggregates are not known; calls with aggregate syntax (count(*), DISTINCT, ORDER BY inside the call,
// FILTER, WITHIN GROUP) count whatever their name.
var aggregates = map[string]bool{
	"any_value": true, "array_agg": true, "avg": true, "bit_and": true, "bit_or": true, "bit_xor": true,
	"bool_and": true, "bool_or": true, "count": true, "every": true, "json_agg": true, "json_agg_strict": true,
	"json_object_agg": true, "json_object_agg_strict": true, "json_object_agg_unique": true,
	"json_object_agg_unique_strict": true, "jsonb_agg": true, "jsonb_agg_strict": true, "jsonb_object_agg": true,
	"jsonb_object_agg_strict": true, "jsonb_object_agg_unique": true, "jsonb_object_agg_unique_strict": true,
	"max": true, "min": true, "range_agg": true, "range_intersect_agg": true, "string_agg": true, "sum": true,
	"xmlagg": true,
	// statistics
	"corr": true, "covar_pop": true, "covar_samp": true, "regr_avgx": true, "regr_avgy": true, "regr_count": true,
	"regr_intercept": true, "regr_r2": true, "regr_slope": true, "regr_sxx": true, "regr_sxy": true,
	"regr_syy": true, "stddev": true, "stddev_pop": true, "stddev_samp": true, "variance": true, "var_pop": true,
	"var_samp": true,
	// ordered-set and hypothetical-set (also window functions under OVER)
	"mode": true, "percentile_cont": true, "percentile_disc": true, "rank": true, "dense_rank": true,
	"percent_rank": true, "cume_dist": true,
	// GROUPING() only appears with GROUP BY
	"grouping": true,
}

// isAggregate reports whether a function name (as pg_query gives it: [schema,] name) is a built-in aggregate.
func isAggregate(name []*pg.Node) bool {
	switch len(name) {
	case 1:
	case 2:
		if name[0].GetString_().GetSval() != "pg_catalog" {
			return false
		}
	default:
		return false
	}
	return aggregates[name[len(name)-1].GetString_().GetSval()]
}

// funcName is the last part of a function name.
func funcName(name []*pg.Node) string {
	if len(name) == 0 {
		return "?"
	}
	return name[len(name)-1].GetString_().GetSval()
}
