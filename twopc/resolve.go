package twopc

import (
	"context"
	"errors"
	"strconv"

	"github.com/pgshard/pgshard/codec"
	"github.com/pgshard/pgshard/pool"
)

// Report is what Resolve found and did on one server.
type Report struct {
	MaxPrepared int      // max_prepared_transactions of the server
	Committed   []string // prepared transactions it committed (the log had their commit decision)
	RolledBack  []string // and rolled back (no decision)
	// Foreign are prepared transactions named like pgshard's but not of this log: another pgshard's, or
	// this one's from before its log was lost. They are left alone.
	Foreign []string
}

// Resolve connects to t and finishes the prepared transactions of this log's instance that t's role owns
// in t's database, except those of this boot that inFlight (Log.InFlight, taken before) says a commit in
// flight still owns: committed when the log decided so, rolled back otherwise. One that is gone by the time
// Resolve finishes it (someone else did) is not reported.
func Resolve(ctx context.Context, l *Log, t pool.Target, inFlight func(gid string) bool) (Report, error) {
	var rep Report
	c, err := dial(ctx, t)
	if err != nil {
		return rep, err
	}
	defer c.close()
	rows, err := c.query(ctx, "SELECT current_setting('max_prepared_transactions')")
	if err != nil {
		return rep, err
	}
	if len(rows) == 1 && len(rows[0]) == 1 {
		rep.MaxPrepared, _ = strconv.Atoi(rows[0][0])
	}
	rows, err = c.query(ctx, `SELECT gid FROM pg_catalog.pg_prepared_xacts WHERE database = current_database() AND owner = current_user AND gid LIKE 'pgshard\_%' ORDER BY prepared`)
	if err != nil {
		return rep, err
	}
	for _, r := range rows {
		gid := r[0]
		tx, ours := l.Transaction(gid)
		switch {
		case !ours:
			rep.Foreign = append(rep.Foreign, gid)
			continue
		case inFlight != nil && inFlight(tx):
			continue
		}
		commit := l.Decided(tx)
		if done, err := finish(ctx, c, gid, commit); err != nil || !done {
			if err != nil {
				return rep, err
			}
			continue
		}
		if commit {
			rep.Committed = append(rep.Committed, gid)
		} else {
			rep.RolledBack = append(rep.RolledBack, gid)
		}
	}
	return rep, nil
}

// finish commits or rolls back the prepared transaction gid; one that does not exist (any more) is no error,
// but not done either.
func finish(ctx context.Context, c *conn, gid string, commit bool) (done bool, err error) {
	verb := "ROLLBACK PREPARED "
	if commit {
		verb = "COMMIT PREPARED "
	}
	_, err = c.query(ctx, verb+Literal(gid))
	var pe *codec.Error
	if errors.As(err, &pe) && pe.Code == codec.SQLStateUndefinedObject {
		return false, nil
	}
	return err == nil, err
}

// Literal quotes gid for SQL (pgshard's identifiers have no quote, but nothing found on a server is trusted).
func Literal(gid string) string {
	out := make([]byte, 0, len(gid)+2)
	out = append(out, '\'')
	for i := 0; i < len(gid); i++ {
		if gid[i] == '\'' {
			out = append(out, '\'')
		}
		out = append(out, gid[i])
	}
	return string(append(out, '\''))
}
