package admin

import (
	"strconv"
	"strings"
	"time"

	"github.com/pgshard/pgshard/codec"
	"github.com/pgshard/pgshard/reshard/status"
)

// PoolInfo is one pool's state.
type PoolInfo struct {
	Database, User string
	Shard          int
	Role           string // primary | replica
	Host           string // the server's address: host:port, or the unix socket's path
	Mode           string // transaction | session
	Size           int
	Active, Idle   int // server connections: attached or being dialed / idle in the pool
	Waiting        int // clients waiting for a server connection
	Checkouts      int64
	Waits          int64
	CrossLoop      int64 // server connections handed to a client on another event loop
	Dials          int64
	DialFailures   int64
	Timeouts       int64
	WaitTime       time.Duration
	MaxWait        time.Duration
}

// ClientInfo is one client connection.
type ClientInfo struct {
	Database, User, Addr, ApplicationName, State string
	ConnectedAt                                  time.Time
	Loop                                         int
	PID                                          uint32 // pgshard's own, as the client saw in BackendKeyData
	ServerPID                                    uint32 // the backend serving it now, 0 when none
	TLS                                          string // "TLSv1.3/TLS_AES_128_GCM_SHA256", "" in plaintext
}

// ServerInfo is one server connection.
type ServerInfo struct {
	Database, User, Addr, State string
	Role                        string // primary or replica
	Shard, Loop                 int
	PID                         uint32
	ConnectedAt                 time.Time
	ClientPID                   uint32 // pgshard pid of the attached client, 0 when idle
}

// DatabaseInfo is one configured database.
type DatabaseInfo struct {
	Name       string
	Primaries  []string // shard i's primary, as a URL without its password
	PoolSize   int
	PoolMode   string
	PauseState string // "" (serving), "pausing" (PAUSE waits for transactions to end) or "paused"
}

// Source is what the console reads and acts on. Clients, Servers, Reload and Reshard may take a moment (they
// visit every event loop, or read files): the console calls them off the loops (Command.OffLoop).
type Source interface {
	Version() string
	Pools() []PoolInfo
	Clients() []ClientInfo
	Servers() []ServerInfo
	Databases() []DatabaseInfo
	Config() [][2]string // key, value (no secrets)
	RequestShutdown()
	// Resume ends the pause of database db ("" for RESUME without a name, which ends every pause). RESUME of
	// a database that is not paused does nothing but say so in a notice, so that a tool may always send it.
	Resume(db string) (notice string, err *codec.Error)
	// Reload reads the config file again and applies it; notices say what it did not apply (settings that
	// need a restart). An error means nothing changed.
	Reload() (notices []string, err *codec.Error)
	// Reshard reads the progress files of reshard runs (next to the config file).
	Reshard() ([]*status.Status, error)
	// Route says how database db routes the statement sql (a simple Query with no routing settings): where
	// it runs, and why.
	Route(db, sql string) (decision, plan string, err *codec.Error)
	// Replicas lists the replicas of the databases whose reads go to them; Ban bans the replica at host
	// (host:port, as SHOW POOLS shows it) for ban_time, or ends its ban (ban false). A host no database has as
	// a replica is an error.
	Replicas() []ReplicaInfo
	Ban(host string, ban bool) *codec.Error
}

// ReplicaInfo is one replica: whether it takes reads, and how far behind its primary it is.
type ReplicaInfo struct {
	Database string
	Shard    int
	Host     string
	State    string    // ok, banned (BannedUntil, Reason), lagging
	Until    time.Time // the end of its ban
	Reason   string    // why it was banned
	LagBytes uint64    // WAL bytes the primary has that it has not replayed, at the last check
	Lag      time.Duration
}

// Command is a parsed console command.
type Command struct {
	Verb, Object string // "SHOW", "POOLS"
	Arg          string // the database of PAUSE, RESUME and SHOW ROUTE, as written ("" for all)
	SQL          string // SHOW ROUTE's statement
}

// OffLoop reports whether the command must run off the event loops: it visits every loop, or reads files.
func (c Command) OffLoop() bool {
	switch c.Verb + " " + c.Object {
	case "SHOW CLIENTS", "SHOW SERVERS", "SHOW RESHARD", "RELOAD ":
		return true
	}
	return false
}

// Commands are the console's commands, as SHOW HELP lists them.
var Commands = []string{
	"SHOW POOLS", "SHOW STATS", "SHOW CLIENTS", "SHOW SERVERS", "SHOW DATABASES", "SHOW CONFIG", "SHOW RESHARD",
	"SHOW VERSION", "SHOW ROUTE database statement", "SHOW REPLICAS", "SHOW BANS", "SHOW HELP", "PAUSE [database]", "RESUME [database]",
	"BAN host:port", "UNBAN host:port", "RELOAD", "SHUTDOWN",
}

// Parse reads a console command: one statement, case-insensitive, an optional trailing semicolon. A database
// name is taken as written; double quotes keep spaces and other characters in it ("my db").
func Parse(sql string) (Command, *codec.Error) {
	text := strings.TrimSuffix(strings.TrimSpace(sql), ";")
	if f, rest, ok := leadingWords(text, 3); ok && len(f) >= 2 && strings.EqualFold(f[0], "SHOW") && strings.EqualFold(f[1], "ROUTE") {
		if len(f) < 3 || strings.TrimSpace(rest) == "" {
			return Command{}, codec.NewError(codec.SQLStateSyntaxError, "SHOW ROUTE needs a database and a statement: "+strings.TrimSpace(sql)).
				WithHint("SHOW ROUTE app SELECT * FROM accounts WHERE id = 42")
		}
		return Command{Verb: "SHOW", Object: "ROUTE", Arg: f[2], SQL: strings.TrimSpace(rest)}, nil
	}
	f, ok := words(text)
	if !ok {
		return Command{}, codec.NewError(codec.SQLStateSyntaxError, "unterminated quoted name in admin command: "+strings.TrimSpace(sql)).
			WithHint(`quote a database name as "name", doubling a quote inside it`)
	}
	if len(f) == 0 {
		return Command{}, nil
	}
	c := Command{Verb: strings.ToUpper(f[0])}
	if len(f) > 1 {
		c.Object = strings.ToUpper(f[1])
	}
	switch c.Verb {
	case "SHOW":
		if len(f) == 2 {
			switch c.Object {
			case "POOLS", "STATS", "CLIENTS", "SERVERS", "DATABASES", "CONFIG", "VERSION", "HELP", "RESHARD", "BANS", "REPLICAS":
				return c, nil
			}
		}
	case "SHUTDOWN", "RELOAD":
		if len(f) == 1 {
			return c, nil
		}
		return c, codec.NewError(codec.SQLStateSyntaxError, c.Verb+" takes no argument: "+strings.TrimSpace(sql)).
			WithHint(c.Verb + " applies to the whole pgshard")
	case "BAN", "UNBAN":
		if len(f) == 2 {
			c.Object, c.Arg = "", f[1]
			return c, nil
		}
		return c, codec.NewError(codec.SQLStateSyntaxError, c.Verb+" takes one replica: "+strings.TrimSpace(sql)).
			WithHint(c.Verb + " host:port, as SHOW POOLS shows the replica's host")
	case "PAUSE", "RESUME":
		if len(f) <= 2 {
			c.Object = ""
			if len(f) == 2 {
				c.Arg = f[1]
			}
			return c, nil
		}
		return c, codec.NewError(codec.SQLStateSyntaxError, c.Verb+" takes at most one database: "+strings.TrimSpace(sql)).
			WithHint(c.Verb + " [database]: name one database, or none for all of them")
	}
	return c, codec.NewError(codec.SQLStateSyntaxError, "unknown admin command: "+strings.TrimSpace(sql)).
		WithHint("the console knows " + strings.Join(Commands[:len(Commands)-1], ", ") + " and " + Commands[len(Commands)-1])
}

// words splits s at white space; a double-quoted word may hold anything, a doubled quote standing for one.
// False: a quote is not closed.
func words(s string) ([]string, bool) {
	out, _, ok := leadingWords(s, -1)
	return out, ok
}

// leadingWords is words for the first n words of s (all of them when n < 0), and the rest of s after them.
func leadingWords(s string, n int) ([]string, string, bool) {
	var out []string
	i := 0
	for i < len(s) && len(out) != n {
		switch c := s[i]; {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '"':
			var b strings.Builder
			i++
			for {
				if i >= len(s) {
					return nil, "", false
				}
				if s[i] == '"' {
					if i+1 < len(s) && s[i+1] == '"' {
						b.WriteByte('"')
						i += 2
						continue
					}
					i++
					break
				}
				b.WriteByte(s[i])
				i++
			}
			out = append(out, b.String())
		default:
			j := i
			for j < len(s) && !strings.ContainsRune(" \t\n\r", rune(s[j])) {
				j++
			}
			out = append(out, s[i:j])
			i = j
		}
	}
	return out, s[i:], true
}

// Run executes c and appends its result messages (RowDescription, DataRows, CommandComplete, or NoticeResponses
// and an ErrorResponse) to dst. PAUSE is not run here: it answers only once the database is quiet, which the
// loop package waits for.
func Run(dst []byte, c Command, src Source) []byte {
	var t table
	switch c.Verb + " " + c.Object {
	case " ":
		return codec.AppendEmpty(dst, codec.EmptyQueryResponse)
	case "SHUTDOWN ":
		src.RequestShutdown()
		return codec.AppendCommandComplete(dst, "SHUTDOWN")
	case "PAUSE ":
		return codec.AppendErrorResponse(dst, codec.NewError(codec.SQLStateInternalError, "PAUSE is run by the proxy's event loops, not by admin.Run"))
	case "RESUME ":
		notice, err := src.Resume(c.Arg)
		if err != nil {
			return codec.AppendErrorResponse(dst, err)
		}
		if notice != "" {
			dst = codec.AppendNoticeResponse(dst, &codec.Error{Severity: "NOTICE", Code: "00000", Message: notice})
		}
		return codec.AppendCommandComplete(dst, "RESUME")
	case "BAN ", "UNBAN ":
		if err := src.Ban(c.Arg, c.Verb == "BAN"); err != nil {
			return codec.AppendErrorResponse(dst, err)
		}
		return codec.AppendCommandComplete(dst, c.Verb)
	case "SHOW BANS":
		t = table{cols: []string{"database", "shard", "host", "banned_until", "reason"}}
		for _, r := range src.Replicas() {
			if r.State == "banned" {
				t.rows = append(t.rows, []string{r.Database, itoa(r.Shard), r.Host, stamp(r.Until), r.Reason})
			}
		}
	case "SHOW REPLICAS":
		t = table{cols: []string{"database", "shard", "host", "state", "lag_bytes", "lag_seconds"}}
		for _, r := range src.Replicas() {
			t.rows = append(t.rows, []string{r.Database, itoa(r.Shard), r.Host, r.State, strconv.FormatUint(r.LagBytes, 10),
				float(r.Lag.Seconds(), 3)})
		}
	case "RELOAD ":
		notices, err := src.Reload()
		for _, n := range notices {
			dst = codec.AppendNoticeResponse(dst, &codec.Error{Severity: "NOTICE", Code: "00000", Message: n})
		}
		if err != nil {
			return codec.AppendErrorResponse(dst, err)
		}
		return codec.AppendCommandComplete(dst, "RELOAD")
	case "SHOW VERSION":
		t = table{cols: []string{"version"}, rows: [][]string{{"pgshard " + src.Version()}}}
	case "SHOW ROUTE":
		decision, plan, err := src.Route(c.Arg, c.SQL)
		if err != nil {
			return codec.AppendErrorResponse(dst, err)
		}
		t = table{cols: []string{"database", "decision", "plan"}, rows: [][]string{{c.Arg, decision, plan}}}
	case "SHOW HELP":
		t = table{cols: []string{"command"}}
		for _, s := range Commands {
			t.rows = append(t.rows, []string{s})
		}
	case "SHOW RESHARD":
		runs, err := src.Reshard()
		if err != nil {
			return codec.AppendErrorResponse(dst, codec.NewError(codec.SQLStateConfigFileError, "cannot read the reshard progress files: "+err.Error()).
				WithHint("each reshard-<database> directory next to pgshard's config file holds a status.json that pgshard reshard writes"))
		}
		t = reshardTable(runs)
	case "SHOW POOLS":
		t = table{cols: []string{"database", "user", "shard", "role", "cl_waiting", "sv_active", "sv_idle", "sv_total", "pool_size", "maxwait_us", "pool_mode", "host"}}
		for _, p := range src.Pools() {
			t.rows = append(t.rows, []string{p.Database, p.User, itoa(p.Shard), p.Role, itoa(p.Waiting), itoa(p.Active), itoa(p.Idle),
				itoa(p.Active + p.Idle), itoa(p.Size), i64(p.MaxWait.Microseconds()), p.Mode, p.Host})
		}
	case "SHOW STATS":
		t = table{cols: []string{"database", "user", "shard", "role", "total_checkouts", "total_waits", "total_wait_us", "cross_loop", "dials", "dial_failures", "checkout_timeouts"}}
		for _, p := range src.Pools() {
			t.rows = append(t.rows, []string{p.Database, p.User, itoa(p.Shard), p.Role, i64(p.Checkouts), i64(p.Waits),
				i64(p.WaitTime.Microseconds()), i64(p.CrossLoop), i64(p.Dials), i64(p.DialFailures), i64(p.Timeouts)})
		}
	case "SHOW CLIENTS":
		t = table{cols: []string{"database", "user", "addr", "application_name", "state", "connect_time", "loop", "pid", "server_pid", "tls"}}
		for _, c := range src.Clients() {
			t.rows = append(t.rows, []string{c.Database, c.User, c.Addr, c.ApplicationName, c.State, stamp(c.ConnectedAt),
				itoa(c.Loop), u32(c.PID), u32(c.ServerPID), c.TLS})
		}
	case "SHOW SERVERS":
		t = table{cols: []string{"database", "user", "shard", "addr", "state", "connect_time", "loop", "pid", "client_pid", "role"}}
		for _, s := range src.Servers() {
			t.rows = append(t.rows, []string{s.Database, s.User, itoa(s.Shard), s.Addr, s.State, stamp(s.ConnectedAt),
				itoa(s.Loop), u32(s.PID), u32(s.ClientPID), s.Role})
		}
	case "SHOW DATABASES":
		t = table{cols: []string{"name", "shard", "primary", "pool_size", "pool_mode", "paused", "pause_state"}}
		for _, d := range src.Databases() {
			paused := "0"
			if d.PauseState != "" {
				paused = "1"
			}
			for i, p := range d.Primaries {
				t.rows = append(t.rows, []string{d.Name, itoa(i), p, itoa(d.PoolSize), d.PoolMode, paused, d.PauseState})
			}
		}
	case "SHOW CONFIG":
		t = table{cols: []string{"key", "value"}}
		for _, kv := range src.Config() {
			t.rows = append(t.rows, []string{kv[0], kv[1]})
		}
	}
	return t.append(dst, c.Verb)
}

// reshardTable is SHOW RESHARD: one row per table of each run, one row with no table for a run without any.
func reshardTable(runs []*status.Status) table {
	t := table{cols: []string{"database", "phase", "from_shards", "to_shards", "table", "kind", "rows_copied", "rows_estimate",
		"rows_per_sec", "mb_per_sec", "eta_seconds", "done", "lag_bytes", "lag_seconds", "changes_applied", "retained_wal_bytes", "write_pause_ms",
		"updated", "error"}}
	for _, s := range runs {
		tables := s.Tables
		if len(tables) == 0 {
			tables = []status.Table{{}}
		}
		for _, tb := range tables {
			done := "false"
			if tb.Done {
				done = "true"
			}
			t.rows = append(t.rows, []string{s.Database, s.Phase, itoa(s.From), itoa(s.To), tb.Name, tb.Kind, i64(tb.RowsCopied),
				i64(tb.RowsTotal), float(tb.RowsPerSec, 1), float(tb.MBPerSec, 2), float(tb.ETASeconds, 0), done, i64(s.LagBytes), float(s.LagSeconds, 3),
				i64(s.Applied), i64(s.RetainedWAL), float(s.PauseMS, 1), stamp(s.Updated), s.Error})
		}
	}
	return t
}

type table struct {
	cols []string
	rows [][]string
}

func (t table) append(dst []byte, verb string) []byte {
	dst = codec.AppendRowDescriptionText(dst, t.cols...)
	for _, r := range t.rows {
		dst = codec.AppendDataRowText(dst, r, nil)
	}
	return codec.AppendCommandComplete(dst, verb)
}

func itoa(n int) string        { return strconv.Itoa(n) }
func i64(n int64) string       { return strconv.FormatInt(n, 10) }
func u32(n uint32) string      { return strconv.FormatUint(uint64(n), 10) }
func stamp(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05") }
func float(f float64, prec int) string {
	return strconv.FormatFloat(f, 'f', prec, 64)
}
