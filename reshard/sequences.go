package reshard

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/pgshard/pgshard/config"
)

// Sequences of sharded tables, one per shard.
//
// A sharded table's ids often come from a sequence (serial, identity, a DEFAULT nextval): each shard has its
// own copy of it, and a nextval through pgshard runs on whichever shard its statement goes to. Left alone,
// every copy counts 1, 2, 3 ... and two shards hand out the same ids. Interleaved, the copies never meet: on
// a database of N shards, shard i's copy counts by N and hands out the values that are i modulo N, starting
// above the largest value any copy handed out so far (with a margin for nextvals running meanwhile).
// `pgshard sequences` interleaves (or, with --check, reports); a reshard interleaves the new shards at its
// cutover, for their number. Sequences of replicated and unlisted tables are left alone: their rows are the
// same on every shard, written by the same statements in the same order.

// SequenceOptions is what `pgshard sequences` is asked to do.
type SequenceOptions struct {
	ConfigPath     string
	Database       string
	User, Password string    // the role on the shards, as for Options
	Check          bool      // report only
	Out            io.Writer // the report (os.Stdout when nil)
}

// interleaveMargin is how far above the largest value seen interleaved sequences start, so that nextvals
// running while pgshard reads and sets the sequences do not hand out a value twice.
const interleaveMargin = 1000

// shardedSequence is a sequence that a column of a sharded table takes its values from.
type shardedSequence struct {
	name   string // schema-qualified and quoted
	column string // table.column, for the report
}

// Sequences interleaves (or checks) the sequences of o.Database's sharded tables.
func Sequences(ctx context.Context, o SequenceOptions) error {
	out := o.Out
	if out == nil {
		out = os.Stdout
	}
	cfg, err := config.Load(o.ConfigPath)
	if err != nil {
		return err
	}
	db := cfg.Database(o.Database)
	if db == nil {
		return fmt.Errorf("database %q is not in %s", o.Database, o.ConfigPath)
	}
	p := &plan{opt: Options{User: o.User, Password: o.Password}, cfg: cfg}
	eps, err := p.endpoints(db)
	if err != nil {
		return err
	}
	seqs, err := shardedSequences(ctx, eps[0], db)
	if err != nil {
		return err
	}
	if len(seqs) == 0 {
		fmt.Fprintf(out, "database %s: no sharded table takes values from a sequence\n", db.Name)
		return nil
	}
	if o.Check {
		return checkInterleaved(ctx, eps, seqs, out)
	}
	top, err := highest(ctx, eps, seqs)
	if err != nil {
		return err
	}
	if err := interleave(ctx, eps, seqs, top); err != nil {
		return err
	}
	for _, s := range seqs {
		fmt.Fprintf(out, "%s (%s): interleaved over %d shards\n", s.name, s.column, len(eps))
	}
	return nil
}

// shardedSequences lists, from one shard's catalog, the sequences owned by a column of a table db shards (by
// name, or by a column rule the table has the column of; not a replicated one).
func shardedSequences(ctx context.Context, e endpoint, db *config.Database) ([]shardedSequence, error) {
	c, err := connect(ctx, e)
	if err != nil {
		return nil, err
	}
	defer c.Close(ctx)
	var ruleCols []string
	for _, t := range db.ShardedTables {
		if t.Table == "" {
			ruleCols = append(ruleCols, t.Column)
		}
	}
	rows, err := c.Query(ctx, `SELECT quote_ident(sn.nspname) || '.' || quote_ident(s.relname), tn.nspname, t.relname, a.attname,
  EXISTS (SELECT 1 FROM pg_catalog.pg_attribute k WHERE k.attrelid = t.oid AND k.attname = ANY($1) AND NOT k.attisdropped)
FROM pg_catalog.pg_depend d
JOIN pg_catalog.pg_class s ON s.oid = d.objid AND s.relkind = 'S'
JOIN pg_catalog.pg_namespace sn ON sn.oid = s.relnamespace
JOIN pg_catalog.pg_class t ON t.oid = d.refobjid
JOIN pg_catalog.pg_namespace tn ON tn.oid = t.relnamespace
JOIN pg_catalog.pg_attribute a ON a.attrelid = t.oid AND a.attnum = d.refobjsubid
WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.refclassid = 'pg_catalog.pg_class'::regclass
  AND d.deptype IN ('a', 'i') AND sn.nspname <> '`+stateSchema+`'
ORDER BY 1`, ruleCols)
	if err != nil {
		return nil, fmt.Errorf("shard %d: listing sequences: %w", e.idx, err)
	}
	defer rows.Close()
	var out []shardedSequence
	for rows.Next() {
		var seq, schema, table, column string
		var hasRuleCol bool
		if err := rows.Scan(&seq, &schema, &table, &column, &hasRuleCol); err != nil {
			return nil, err
		}
		if tableSharded(db, schema, table, hasRuleCol) {
			out = append(out, shardedSequence{name: seq, column: table + "." + column})
		}
	}
	return out, rows.Err()
}

// tableSharded says whether db shards table (in schema): listed by name in sharded_tables, or not listed as
// replicated while it has the column of a sharded_tables rule without table:.
func tableSharded(db *config.Database, schema, table string, hasRuleCol bool) bool {
	named := func(n string) bool { return n == table || n == schema+"."+table }
	for _, r := range db.ReplicatedTables {
		if named(r) {
			return false
		}
	}
	for _, t := range db.ShardedTables {
		if t.Table != "" && named(t.Table) {
			return true
		}
	}
	return hasRuleCol
}

// seqState is one shard's copy of a sequence.
type seqState struct {
	last      int64 // the largest value it handed out (0: none)
	increment int64
	next      int64 // what its nextval gives next
}

// readSequences reads the copies of seqs on shard e, over one connection.
func readSequences(ctx context.Context, e endpoint, seqs []shardedSequence) ([]seqState, error) {
	c, err := connect(ctx, e)
	if err != nil {
		return nil, err
	}
	defer c.Close(ctx)
	out := make([]seqState, len(seqs))
	for i, s := range seqs {
		st := &out[i]
		var last int64
		var called bool
		err = c.QueryRow(ctx, `SELECT s.last_value, s.is_called, q.increment_by FROM `+s.name+` s, pg_catalog.pg_sequences q
WHERE quote_ident(q.schemaname) || '.' || quote_ident(q.sequencename) = $1`, s.name).Scan(&last, &called, &st.increment)
		if err != nil {
			return nil, fmt.Errorf("shard %d: reading sequence %s: %w", e.idx, s.name, err)
		}
		st.next = last
		if called {
			st.last, st.next = last, last+st.increment
		} else if last > 1 {
			st.last = last - 1
		}
	}
	return out, nil
}

// highest returns, for each sequence, the largest value any of its copies on eps handed out. A sequence that
// counts down is refused: interleaving it is left to the operator.
func highest(ctx context.Context, eps []endpoint, seqs []shardedSequence) ([]int64, error) {
	top := make([]int64, len(seqs))
	for _, e := range eps {
		states, err := readSequences(ctx, e, seqs)
		if err != nil {
			return nil, err
		}
		for i, st := range states {
			if st.increment < 0 {
				return nil, fmt.Errorf("sequence %s counts down: interleave it by hand (INCREMENT BY -%d on each shard)", seqs[i].name, len(eps))
			}
			top[i] = max(top[i], st.last)
		}
	}
	return top, nil
}

// interleave sets each sequence on the shards eps (shard i of N = len(eps)) to count by N from the smallest
// value above its top (the largest any copy handed out) plus interleaveMargin that is i modulo N.
func interleave(ctx context.Context, eps []endpoint, seqs []shardedSequence, top []int64) error {
	n := int64(len(eps))
	for i, e := range eps {
		c, err := connect(ctx, e)
		if err != nil {
			return err
		}
		for j, s := range seqs {
			v := firstAbove(top[j]+interleaveMargin, int64(i), n)
			_, err = c.Exec(ctx, fmt.Sprintf("ALTER SEQUENCE %s INCREMENT BY %d", s.name, n))
			if err == nil {
				_, err = c.Exec(ctx, "SELECT pg_catalog.setval($1::regclass, $2, false)", s.name, v)
			}
			if err != nil {
				c.Close(ctx)
				return fmt.Errorf("shard %d: interleaving sequence %s: %w", e.idx, s.name, err)
			}
		}
		c.Close(ctx)
	}
	return nil
}

// firstAbove is the smallest value above base that is i modulo n.
func firstAbove(base, i, n int64) int64 {
	return base + 1 + ((i-(base+1))%n+n)%n
}

// checkInterleaved reports, for each sequence, whether every shard's copy is interleaved.
func checkInterleaved(ctx context.Context, eps []endpoint, seqs []shardedSequence, out io.Writer) error {
	n := int64(len(eps))
	var bad []string
	wrong := make([][]string, len(seqs))
	for i, e := range eps {
		states, err := readSequences(ctx, e, seqs)
		if err != nil {
			return err
		}
		for j, st := range states {
			if n > 1 && (st.increment != n || ((st.next%n)+n)%n != int64(i)) {
				wrong[j] = append(wrong[j], fmt.Sprintf("shard %d counts by %d, next %d", i, st.increment, st.next))
			}
		}
	}
	for j, s := range seqs {
		if len(wrong[j]) == 0 {
			fmt.Fprintf(out, "%s (%s): interleaved over %d shards\n", s.name, s.column, n)
			continue
		}
		fmt.Fprintf(out, "%s (%s): NOT interleaved: %s\n", s.name, s.column, strings.Join(wrong[j], "; "))
		bad = append(bad, s.name)
	}
	if len(bad) > 0 {
		return errors.New("some sequences of sharded tables can hand out the same value on two shards: run pgshard sequences without --check")
	}
	return nil
}
