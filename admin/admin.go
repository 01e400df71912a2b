package admin

import (
	"strconv"
	"strings"
	"time"

	"github.com/pgshard/pgshard/codec"
)

// PoolInfo is one pool's state.
type PoolInfo struct {
	Database, User string
	Shard          int
	Role           string // primary | replica
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
}

// ServerInfo is one server connection.
type ServerInfo struct {
	Database, User, Addr, State string
	Shard, Loop                 int
	PID                         uint32
	ConnectedAt                 time.Time
	ClientPID                   uint32 // pgshard pid of the attached client, 0 when idle
}

// Source is what the console reads. Clients and Servers may take a moment (they visit every event loop):
// the console calls them off the loops.
type Source interface {
	Version() string
	Pools() []PoolInfo
	Clients() []ClientInfo
	Servers() []ServerInfo
	Config() [][2]string // key, value (no secrets)
	RequestShutdown()
}

// Command is a parsed console command.
type Command struct {
	Verb, Object string // "SHOW", "POOLS"
}

// NeedsLoops reports whether the command must visit every loop (so must not run inside one).
func (c Command) NeedsLoops() bool {
	return c.Verb == "SHOW" && (c.Object == "CLIENTS" || c.Object == "SERVERS")
}

// Parse reads a console command: one statement, case-insensitive, an optional trailing semicolon.
func Parse(sql string) (Command, *codec.Error) {
	f := strings.Fields(strings.TrimSuffix(strings.TrimSpace(sql), ";"))
	if len(f) == 0 {
		return Command{}, nil
	}
	c := Command{Verb: strings.ToUpper(f[0])}
	if len(f) > 1 {
		c.Object = strings.ToUpper(f[1])
	}
	switch {
	case c.Verb == "SHOW" && len(f) == 2:
		switch c.Object {
		case "POOLS", "STATS", "CLIENTS", "SERVERS", "DATABASES", "CONFIG", "VERSION", "HELP":
			return c, nil
		}
	case c.Verb == "SHUTDOWN" && len(f) == 1:
		return c, nil
	}
	return c, codec.NewError(codec.SQLStateSyntaxError, "unknown admin command: "+strings.TrimSpace(sql)).
		WithHint("the console knows SHOW POOLS, SHOW STATS, SHOW CLIENTS, SHOW SERVERS, SHOW DATABASES, SHOW CONFIG, SHOW VERSION, SHOW HELP and SHUTDOWN")
}

// Run executes c and appends its result messages (RowDescription, DataRows, CommandComplete) to dst.
func Run(dst []byte, c Command, src Source) []byte {
	var t table
	switch c.Verb + " " + c.Object {
	case " ":
		return codec.AppendEmpty(dst, codec.EmptyQueryResponse)
	case "SHUTDOWN ":
		src.RequestShutdown()
		return codec.AppendCommandComplete(dst, "SHUTDOWN")
	case "SHOW VERSION":
		t = table{cols: []string{"version"}, rows: [][]string{{"pgshard " + src.Version()}}}
	case "SHOW HELP":
		t = table{cols: []string{"command"}}
		for _, s := range []string{"SHOW POOLS", "SHOW STATS", "SHOW CLIENTS", "SHOW SERVERS", "SHOW DATABASES", "SHOW CONFIG", "SHOW VERSION", "SHUTDOWN"} {
			t.rows = append(t.rows, []string{s})
		}
	case "SHOW POOLS":
		t = table{cols: []string{"database", "user", "shard", "role", "cl_waiting", "sv_active", "sv_idle", "sv_total", "pool_size", "maxwait_us", "pool_mode"}}
		for _, p := range src.Pools() {
			t.rows = append(t.rows, []string{p.Database, p.User, itoa(p.Shard), p.Role, itoa(p.Waiting), itoa(p.Active), itoa(p.Idle),
				itoa(p.Active + p.Idle), itoa(p.Size), i64(p.MaxWait.Microseconds()), p.Mode})
		}
	case "SHOW STATS":
		t = table{cols: []string{"database", "user", "shard", "role", "total_checkouts", "total_waits", "total_wait_us", "cross_loop", "dials", "dial_failures", "checkout_timeouts"}}
		for _, p := range src.Pools() {
			t.rows = append(t.rows, []string{p.Database, p.User, itoa(p.Shard), p.Role, i64(p.Checkouts), i64(p.Waits),
				i64(p.WaitTime.Microseconds()), i64(p.CrossLoop), i64(p.Dials), i64(p.DialFailures), i64(p.Timeouts)})
		}
	case "SHOW CLIENTS":
		t = table{cols: []string{"database", "user", "addr", "application_name", "state", "connect_time", "loop", "pid", "server_pid"}}
		for _, c := range src.Clients() {
			t.rows = append(t.rows, []string{c.Database, c.User, c.Addr, c.ApplicationName, c.State, stamp(c.ConnectedAt),
				itoa(c.Loop), u32(c.PID), u32(c.ServerPID)})
		}
	case "SHOW SERVERS":
		t = table{cols: []string{"database", "user", "shard", "addr", "state", "connect_time", "loop", "pid", "client_pid"}}
		for _, s := range src.Servers() {
			t.rows = append(t.rows, []string{s.Database, s.User, itoa(s.Shard), s.Addr, s.State, stamp(s.ConnectedAt),
				itoa(s.Loop), u32(s.PID), u32(s.ClientPID)})
		}
	case "SHOW DATABASES":
		t = table{cols: []string{"name", "shard", "primary", "pool_size", "pool_mode"}}
		seen := map[string]bool{}
		for _, p := range src.Pools() {
			k := p.Database + "/" + itoa(p.Shard)
			if !seen[k] {
				seen[k] = true
				t.rows = append(t.rows, []string{p.Database, itoa(p.Shard), p.Role, itoa(p.Size), p.Mode})
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
