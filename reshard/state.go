package reshard

import (
	"context"
	"fmt"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
)

// The durable state of a run lives on each destination shard, in schema pgshard_reshard, so that it commits
// with the data it describes: state holds the phases finished on that shard, progress the end LSN of the
// last source transaction applied there, per source shard.
const (
	stateSchema = "pgshard_reshard"
	stateDDL    = `CREATE SCHEMA pgshard_reshard;
CREATE TABLE pgshard_reshard.state (key text PRIMARY KEY, value text NOT NULL);
CREATE TABLE pgshard_reshard.progress (source int PRIMARY KEY, lsn pg_lsn NOT NULL);
`
	// Keys of pgshard_reshard.state.
	doneSchema  = "schema"  // pre-data applied
	doneCopy    = "copy"    // every table copied; progress holds the slots' consistent points
	doneIndexes = "indexes" // post-data applied
)

// destState is what one destination shard says of the run.
type destState struct {
	exists   bool // the pgshard_reshard schema is there
	done     map[string]bool
	progress map[int]pglogrepl.LSN
}

func readDestState(ctx context.Context, conn *pgx.Conn) (destState, error) {
	st := destState{done: map[string]bool{}, progress: map[int]pglogrepl.LSN{}}
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)`, stateSchema).Scan(&st.exists); err != nil || !st.exists {
		return st, err
	}
	rows, err := conn.Query(ctx, `SELECT key FROM pgshard_reshard.state`)
	if err != nil {
		return st, err
	}
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			return st, err
		}
		st.done[k] = true
	}
	if err := rows.Err(); err != nil {
		return st, err
	}
	rows, err = conn.Query(ctx, `SELECT source, lsn::text FROM pgshard_reshard.progress`)
	if err != nil {
		return st, err
	}
	for rows.Next() {
		var src int
		var s string
		if err := rows.Scan(&src, &s); err != nil {
			return st, err
		}
		lsn, err := pglogrepl.ParseLSN(s)
		if err != nil {
			return st, err
		}
		st.progress[src] = lsn
	}
	return st, rows.Err()
}

// markDone is the statement that records a finished phase; it runs in the phase's own transaction.
func markDone(key string) string {
	return fmt.Sprintf("INSERT INTO pgshard_reshard.state VALUES ('%s', now()::text) ON CONFLICT (key) DO UPDATE SET value = excluded.value;\n", key)
}
