package route

import (
	"math/bits"
	"strconv"
	"strings"
)

// Explain routes sql as a simple Query of a session with no routing settings would be, and says why: the
// decision, and the plan behind it (Plan.String). The admin console's SHOW ROUTE prints both.
func (r *Router) Explain(sql string) (Decision, *Plan) {
	return r.Query(sql, NoSession), r.Prepare(sql)
}

// String says what the decision is: where the statement runs, and what pgshard does on the way.
func (d Decision) String() string {
	if d.Err != nil {
		return "refused: " + d.Err.Code + " " + d.Err.Message
	}
	var parts []string
	switch {
	case d.Any:
		parts = append(parts, "any one shard")
	case len(d.Split) > 0:
		var pieces []string
		for _, p := range d.Split {
			pieces = append(pieces, "shard "+strconv.Itoa(p.Shard)+": "+p.SQL)
		}
		parts = append(parts, "split by row: "+strings.Join(pieces, "; "))
	default:
		parts = append(parts, shardList(d.Shards))
	}
	if d.Scatter {
		parts = append(parts, "no shard key decides (a scatter, which pgshard.cross_shard may refuse)")
	}
	if d.Write {
		parts = append(parts, "writes")
	}
	if d.Mirror {
		parts = append(parts, "the same on each shard (one shard's row count reported)")
	}
	if d.Merge != nil {
		parts = append(parts, "rows merged by pgshard")
	}
	if d.CopyOut != nil {
		parts = append(parts, "COPY outputs concatenated")
	}
	if d.Copy != nil {
		parts = append(parts, "COPY rows split by "+d.Copy.Column)
	}
	if d.Gather != nil {
		parts = append(parts, "coordinator step: each shard first runs "+d.Gather.SQL+
			"; then one shard runs the statement over the gathered rows (no merge computes it: "+d.Gather.Why+")")
	}
	return strings.Join(parts, ", ")
}

// shardList is "shard 0" or "shards 0, 2".
func shardList(mask uint64) string {
	var ids []string
	for m := mask; m != 0; m &= m - 1 {
		ids = append(ids, strconv.Itoa(bits.TrailingZeros64(m)))
	}
	if len(ids) == 1 {
		return "shard " + ids[0]
	}
	return "shards " + strings.Join(ids, ", ")
}

// String says what the planner learned of the statement, in words: what decides its shards, what refuses it,
// and how its rows are merged. Values are named by where they come from (the statement's literals, $n
// parameters), never by value: one plan serves every statement of its shape.
func (p *Plan) String() string {
	var parts []string
	switch p.kind {
	case planSession:
		parts = append(parts, "session or transaction command: any shard (the shards of the transaction when one is open)")
	case planUnknown:
		parts = append(parts, "not parsed: any shard, whose error the client gets")
	}
	if p.hard != nil {
		parts = append(parts, "always refused: "+p.hard.Message)
	}
	if p.soft != nil {
		parts = append(parts, "refused unless a /* pgshard: shard=N */ or key= hint, or pgshard.shard, names the shard: "+p.soft.Message)
	}
	if p.keyQuery != "" {
		parts = append(parts, "INSERT without a column list: the key's position among the columns is asked of a shard first")
	}
	switch {
	case p.coordinate != nil:
		parts = append(parts, "on more than one shard, answered by the coordinator step: "+p.coordinate.refusal.Message)
	case p.multi != nil:
		parts = append(parts, "refused on more than one shard: "+p.multi.Message)
	}
	if p.all {
		parts = append(parts, "every shard (DDL, or a write of replicated tables)")
	}
	if len(p.rows) > 0 {
		var keys []string
		for _, v := range p.rows {
			keys = append(keys, p.valList([]planVal{v}))
		}
		parts = append(parts, "INSERT rows go to the shards of their "+keyName(p.rowMapper.Table(), p.rowMapper.Column())+
			" ("+strings.Join(keys, ", ")+")")
	}
	for _, c := range p.classes {
		parts = append(parts, p.classString(c))
	}
	if p.kind == planRoute && !p.all && len(p.rows) == 0 && len(p.classes) == 0 && p.copy == nil && p.hard == nil {
		parts = append(parts, "no sharded table: any one shard")
	}
	if p.copy != nil {
		parts = append(parts, "COPY into sharded "+p.copy.Table+": every shard, rows split by "+p.copy.Column)
	}
	if p.merge != nil {
		parts = append(parts, p.merge.String())
	}
	if p.shardSQL != "" {
		parts = append(parts, "the shards run: "+p.shardSQL)
	}
	return strings.Join(parts, "; ")
}

// classString names the tables of a class (equal keys) and the conditions on their key.
func (p *Plan) classString(c planClass) string {
	var tables []string
	for _, m := range c.mappers {
		tables = append(tables, keyName(m.Table(), m.Column()))
	}
	s := strings.Join(tables, " = ")
	if c.cn == 0 {
		return s + " not constrained: every shard"
	}
	var conds []string
	for k := c.c0; k < c.c0+c.cn; k++ {
		cd := p.conds[k]
		conds = append(conds, p.valList(p.vals[cd.v0:cd.v0+cd.vn]))
	}
	return s + " = " + strings.Join(conds, " and = ") + ": the shards of those values"
}

// keyName is table.column, or the column alone for an entry that covers every table with it.
func keyName(table, column string) string {
	if table == "" {
		return column
	}
	return table + "." + column
}

// valList names the values vs by where they come from.
func (p *Plan) valList(vs []planVal) string {
	var out []string
	for _, v := range vs {
		switch v.kind {
		case valSlot:
			out = append(out, "literal "+p.literal(v.n))
		case valNegSlot:
			out = append(out, "literal -"+p.literal(v.n))
		case valParam:
			out = append(out, "$"+strconv.Itoa(int(v.n)+1))
		case valNull:
			out = append(out, "NULL")
		case valTrue:
			out = append(out, "true")
		}
	}
	if len(out) > 1 {
		return "one of (" + strings.Join(out, ", ") + ")"
	}
	return strings.Join(out, "")
}

// literal is literal slot n as the statement spells it, or #n when the plan has no text (Query plans keep
// none).
func (p *Plan) literal(n int32) string {
	if p.sql != "" && int(n) < len(p.lits) {
		r := p.lits[n]
		return p.sql[r[0]:r[1]]
	}
	return "#" + strconv.Itoa(int(n)+1)
}

// String says how the shards' rows are merged.
func (mp *mergePlan) String() string {
	var what []string
	if mp.agg {
		what = append(what, "aggregates finished by pgshard")
	}
	if len(mp.order) > 0 {
		what = append(what, "sorted on "+strconv.Itoa(len(mp.order))+" key(s)")
	}
	if mp.distinct || len(mp.distOn) > 0 {
		what = append(what, "DISTINCT")
	}
	if mp.limit.kind != 0 || mp.limitAll {
		what = append(what, "LIMIT")
	}
	if mp.offset.kind != 0 {
		what = append(what, "OFFSET")
	}
	if mp.hidden > 0 {
		what = append(what, strconv.Itoa(mp.hidden)+" hidden column(s) added")
	}
	if len(what) == 0 {
		return "rows of several shards concatenated"
	}
	return "rows of several shards merged: " + strings.Join(what, ", ")
}
