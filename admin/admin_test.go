package admin

import (
	"bytes"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/pgshard/pgshard/codec"
	"github.com/pgshard/pgshard/reshard/status"
)

func TestParse(t *testing.T) {
	cases := []struct {
		sql  string
		want Command
	}{
		{"show pools", Command{Verb: "SHOW", Object: "POOLS"}},
		{"  SHOW Databases ; ", Command{Verb: "SHOW", Object: "DATABASES"}},
		{"show reshard;", Command{Verb: "SHOW", Object: "RESHARD"}},
		{"SHUTDOWN", Command{Verb: "SHUTDOWN"}},
		{"reload;", Command{Verb: "RELOAD"}},
		{"PAUSE", Command{Verb: "PAUSE"}},
		{"pause app", Command{Verb: "PAUSE", Arg: "app"}},
		{"PAUSE App;", Command{Verb: "PAUSE", Arg: "App"}}, // names are taken as written
		{`pause "my ""db"""`, Command{Verb: "PAUSE", Arg: `my "db"`}},
		{"RESUME", Command{Verb: "RESUME"}},
		{"resume\tapp", Command{Verb: "RESUME", Arg: "app"}},
		{"show bans", Command{Verb: "SHOW", Object: "BANS"}},
		{"ban 10.0.0.2:5432", Command{Verb: "BAN", Arg: "10.0.0.2:5432"}},
		{"UNBAN 10.0.0.2:5432;", Command{Verb: "UNBAN", Arg: "10.0.0.2:5432"}},
		{"", Command{}},
		{" ; ", Command{}},
		{"show route app SELECT * FROM t WHERE id = 1;", Command{Verb: "SHOW", Object: "ROUTE", Arg: "app", SQL: "SELECT * FROM t WHERE id = 1"}},
		{"SHOW ROUTE \"my db\"\n  select  'a  b'", Command{Verb: "SHOW", Object: "ROUTE", Arg: "my db", SQL: "select  'a  b'"}},
	}
	for _, tc := range cases {
		got, err := Parse(tc.sql)
		if err != nil {
			t.Errorf("Parse(%q): %v", tc.sql, err)
			continue
		}
		if got != tc.want {
			t.Errorf("Parse(%q) = %+v, want %+v", tc.sql, got, tc.want)
		}
	}
}

func TestParseRefusals(t *testing.T) {
	cases := []struct{ sql, msg, hint string }{
		{"SHOW NOTHING", "unknown admin command", "PAUSE [database]"},
		{"SELECT 1", "unknown admin command", "RELOAD"},
		{"SHOW", "unknown admin command", "SHOW RESHARD"},
		{"PAUSE a b", "takes at most one database", "name one database"},
		{"RESUME a b", "takes at most one database", ""},
		{"RELOAD now", "takes no argument", ""},
		{"SHUTDOWN now", "takes no argument", ""},
		{`PAUSE "app`, "unterminated quoted name", "quote"},
		{"SHOW ROUTE app", "needs a database and a statement", "SHOW ROUTE app SELECT"},
		{"SHOW ROUTE", "needs a database and a statement", ""},
		{"BAN", "takes one replica", "host:port"},
		{"UNBAN a b", "takes one replica", ""},
	}
	for _, tc := range cases {
		_, err := Parse(tc.sql)
		if err == nil {
			t.Errorf("Parse(%q) accepted", tc.sql)
			continue
		}
		if err.Code != codec.SQLStateSyntaxError || err.Severity != "ERROR" || !strings.Contains(err.Message, tc.msg) ||
			!strings.Contains(err.Hint, tc.hint) {
			t.Errorf("Parse(%q) = %+v, want 42601 %q with a hint naming %q", tc.sql, err, tc.msg, tc.hint)
		}
	}
}

func TestOffLoop(t *testing.T) {
	for sql, want := range map[string]bool{"SHOW CLIENTS": true, "SHOW SERVERS": true, "SHOW RESHARD": true, "RELOAD": true,
		"SHOW POOLS": false, "PAUSE app": false, "RESUME": false, "SHOW DATABASES": false} {
		c, err := Parse(sql)
		if err != nil {
			t.Fatal(err)
		}
		if c.OffLoop() != want {
			t.Errorf("%s: OffLoop = %v, want %v", sql, !want, want)
		}
	}
}

// fakeSource is a Source with canned answers.
type fakeSource struct {
	dbs          []DatabaseInfo
	runs         []*status.Status
	runsErr      error
	resumed      []string
	resumeNotice string
	resumeErr    *codec.Error
	notices      []string
	reloadErr    *codec.Error
	banned       bool
}

func (f *fakeSource) Version() string                    { return "test" }
func (f *fakeSource) Pools() []PoolInfo                  { return nil }
func (f *fakeSource) Clients() []ClientInfo              { return nil }
func (f *fakeSource) Servers() []ServerInfo              { return nil }
func (f *fakeSource) Databases() []DatabaseInfo          { return f.dbs }
func (f *fakeSource) Config() [][2]string                { return nil }
func (f *fakeSource) RequestShutdown()                   {}
func (f *fakeSource) Reshard() ([]*status.Status, error) { return f.runs, f.runsErr }
func (f *fakeSource) Replicas() []ReplicaInfo {
	return []ReplicaInfo{
		{Database: "app", Shard: 0, Host: "10.0.0.2:5432", State: "banned", Until: time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC), Reason: "connection refused"},
		{Database: "app", Shard: 0, Host: "10.0.0.3:5432", State: "lagging", LagBytes: 1 << 20, Lag: 1500 * time.Millisecond},
	}
}

func (f *fakeSource) Ban(host string, ban bool) *codec.Error {
	if host != "10.0.0.2:5432" {
		return codec.NewError(codec.SQLStateUndefinedObject, "no replica "+host)
	}
	f.banned = ban
	return nil
}

func (f *fakeSource) Route(db, sql string) (string, string, *codec.Error) {
	return "route of " + db, "plan of " + sql, nil
}
func (f *fakeSource) Resume(db string) (string, *codec.Error) {
	f.resumed = append(f.resumed, db)
	return f.resumeNotice, f.resumeErr
}
func (f *fakeSource) Reload() ([]string, *codec.Error) { return f.notices, f.reloadErr }

// run parses sql, runs it on src and decodes the answer.
func run(t *testing.T, src Source, sql string) []pgproto3.BackendMessage {
	t.Helper()
	c, perr := Parse(sql)
	if perr != nil {
		t.Fatal(perr)
	}
	out := Run(nil, c, src)
	fe := pgproto3.NewFrontend(bytes.NewReader(out), nil)
	var msgs []pgproto3.BackendMessage
	for {
		m, err := fe.Receive()
		if err != nil {
			return msgs
		}
		switch m := m.(type) {
		case *pgproto3.DataRow:
			c := &pgproto3.DataRow{}
			for _, v := range m.Values {
				c.Values = append(c.Values, append([]byte(nil), v...))
			}
			msgs = append(msgs, c)
		case *pgproto3.RowDescription:
			c := &pgproto3.RowDescription{}
			for _, f := range m.Fields {
				c.Fields = append(c.Fields, pgproto3.FieldDescription{Name: append([]byte(nil), f.Name...)})
			}
			msgs = append(msgs, c)
		case *pgproto3.ErrorResponse:
			c := *m
			msgs = append(msgs, &c)
		case *pgproto3.NoticeResponse:
			c := *m
			msgs = append(msgs, &c)
		case *pgproto3.CommandComplete:
			msgs = append(msgs, &pgproto3.CommandComplete{CommandTag: append([]byte(nil), m.CommandTag...)})
		default:
			msgs = append(msgs, m)
		}
	}
}

// rows renders the DataRows of msgs as "a|b|c" and checks the columns and the command tag.
func rows(t *testing.T, msgs []pgproto3.BackendMessage, cols []string, tag string) []string {
	t.Helper()
	var out []string
	for i, m := range msgs {
		switch m := m.(type) {
		case *pgproto3.RowDescription:
			var names []string
			for _, f := range m.Fields {
				names = append(names, string(f.Name))
			}
			if strings.Join(names, ",") != strings.Join(cols, ",") {
				t.Errorf("columns %q, want %q", names, cols)
			}
		case *pgproto3.DataRow:
			var vals []string
			for _, v := range m.Values {
				vals = append(vals, string(v))
			}
			out = append(out, strings.Join(vals, "|"))
		case *pgproto3.CommandComplete:
			if string(m.CommandTag) != tag || i != len(msgs)-1 {
				t.Errorf("command tag %q at %d of %d, want %q last", m.CommandTag, i, len(msgs), tag)
			}
		default:
			t.Errorf("unexpected %T", m)
		}
	}
	return out
}

func TestShowDatabases(t *testing.T) {
	src := &fakeSource{dbs: []DatabaseInfo{
		{Name: "app", Primaries: []string{"postgres://h:5432/app_0", "postgres://h:5433/app_1"}, PoolSize: 20, PoolMode: "transaction", PauseState: "paused"},
		{Name: "other", Primaries: []string{"postgres://h:5432/other"}, PoolSize: 20, PoolMode: "transaction"},
		{Name: "third", Primaries: []string{"postgres://h:5432/third"}, PoolSize: 20, PoolMode: "transaction", PauseState: "pausing"},
	}}
	got := rows(t, run(t, src, "SHOW DATABASES"), []string{"name", "shard", "primary", "pool_size", "pool_mode", "paused", "pause_state"}, "SHOW")
	want := []string{
		"app|0|postgres://h:5432/app_0|20|transaction|1|paused",
		"app|1|postgres://h:5433/app_1|20|transaction|1|paused",
		"other|0|postgres://h:5432/other|20|transaction|0|",
		"third|0|postgres://h:5432/third|20|transaction|1|pausing",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("SHOW DATABASES:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestShowReshard(t *testing.T) {
	upd := time.Date(2026, 11, 24, 15, 30, 5, 0, time.UTC)
	src := &fakeSource{runs: []*status.Status{
		{Database: "app", From: 1, To: 2, Phase: status.PhaseStreaming, Updated: upd, LagBytes: 4096, LagSeconds: 0.25, Applied: 77, RetainedWAL: 1 << 20,
			Tables: []status.Table{
				{Name: "accounts", Kind: "sharded", RowsCopied: 1000, RowsTotal: 1200, RowsPerSec: 512.25, ETASeconds: 0.4, Done: true},
				{Name: "branches", Kind: "replicated", RowsCopied: 3, RowsTotal: 3},
			}},
		{Database: "other", From: 2, To: 4, Phase: status.PhaseFailed, Updated: upd, PauseMS: 12.5, Error: "shard 3 unreachable"},
	}}
	cols := []string{"database", "phase", "from_shards", "to_shards", "table", "kind", "rows_copied", "rows_estimate", "rows_per_sec",
		"mb_per_sec", "eta_seconds", "done", "lag_bytes", "lag_seconds", "changes_applied", "retained_wal_bytes", "write_pause_ms", "updated", "error"}
	got := rows(t, run(t, src, "SHOW RESHARD"), cols, "SHOW")
	want := []string{
		"app|streaming|1|2|accounts|sharded|1000|1200|512.2|0.00|0|true|4096|0.250|77|1048576|0.0|2026-11-24 15:30:05|",
		"app|streaming|1|2|branches|replicated|3|3|0.0|0.00|0|false|4096|0.250|77|1048576|0.0|2026-11-24 15:30:05|",
		"other|failed|2|4|||0|0|0.0|0.00|0|false|0|0.000|0|0|12.5|2026-11-24 15:30:05|shard 3 unreachable",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("SHOW RESHARD:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	src = &fakeSource{runsErr: errors.New("reshard-app/status.json: unexpected end of JSON input")}
	msgs := run(t, src, "SHOW RESHARD")
	if len(msgs) != 1 {
		t.Fatalf("SHOW RESHARD with a bad file: %d messages, want one ErrorResponse", len(msgs))
	}
	if e, ok := msgs[0].(*pgproto3.ErrorResponse); !ok || e.Code != codec.SQLStateConfigFileError || !strings.Contains(e.Message, "status.json") {
		t.Errorf("SHOW RESHARD with a bad file: %+v", msgs[0])
	}
}

func TestResumeAndReload(t *testing.T) {
	src := &fakeSource{}
	if got := rows(t, run(t, src, "RESUME app"), nil, "RESUME"); len(got) != 0 {
		t.Errorf("RESUME rows %q", got)
	}
	run(t, src, "RESUME")
	if strings.Join(src.resumed, ",") != "app," {
		t.Errorf("resumed %q, want app then all", src.resumed)
	}
	src.resumeNotice = `database "app" is not paused`
	msgs := run(t, src, "RESUME app")
	if n, ok := msgs[0].(*pgproto3.NoticeResponse); len(msgs) != 2 || !ok || !strings.Contains(n.Message, "not paused") {
		t.Errorf("RESUME of a database that is not paused: %+v, want a NOTICE and RESUME", msgs)
	}
	src.resumeNotice = ""
	src.resumeErr = codec.NewError(codec.SQLStateInvalidCatalogName, `database "x" does not exist`)
	msgs = run(t, src, "RESUME x")
	if e, ok := msgs[0].(*pgproto3.ErrorResponse); len(msgs) != 1 || !ok || e.Code != "3D000" {
		t.Errorf("RESUME x: %+v", msgs)
	}

	src = &fakeSource{notices: []string{"listen changed: restart pgshard to apply it"}}
	msgs = run(t, src, "RELOAD")
	if len(msgs) != 2 {
		t.Fatalf("RELOAD: %d messages, want a NOTICE and CommandComplete", len(msgs))
	}
	if n, ok := msgs[0].(*pgproto3.NoticeResponse); !ok || n.Severity != "NOTICE" || !strings.Contains(n.Message, "listen") {
		t.Errorf("RELOAD notice: %+v", msgs[0])
	}
	if c, ok := msgs[1].(*pgproto3.CommandComplete); !ok || string(c.CommandTag) != "RELOAD" {
		t.Errorf("RELOAD: %+v", msgs[1])
	}
	src.reloadErr = codec.NewError(codec.SQLStateConfigFileError, "config.yaml line 3: unknown key")
	msgs = run(t, src, "RELOAD")
	if e, ok := msgs[len(msgs)-1].(*pgproto3.ErrorResponse); !ok || e.Code != "F0000" {
		t.Errorf("RELOAD of a bad file: %+v", msgs)
	}
}

func TestBans(t *testing.T) {
	src := &fakeSource{}
	got := rows(t, run(t, src, "SHOW BANS"), []string{"database", "shard", "host", "banned_until", "reason"}, "SHOW")
	if len(got) != 1 || got[0] != "app|0|10.0.0.2:5432|2026-12-07 12:00:00|connection refused" {
		t.Errorf("SHOW BANS: %q", got)
	}
	got = rows(t, run(t, src, "SHOW REPLICAS"), []string{"database", "shard", "host", "state", "lag_bytes", "lag_seconds"}, "SHOW")
	if len(got) != 2 || got[1] != "app|0|10.0.0.3:5432|lagging|1048576|1.500" {
		t.Errorf("SHOW REPLICAS: %q", got)
	}
	run(t, src, "BAN 10.0.0.2:5432")
	if !src.banned {
		t.Error("BAN did not ban")
	}
	run(t, src, "UNBAN 10.0.0.2:5432")
	if src.banned {
		t.Error("UNBAN did not unban")
	}
	msgs := run(t, src, "BAN 10.9.9.9:1")
	if e, ok := msgs[0].(*pgproto3.ErrorResponse); len(msgs) != 1 || !ok || e.Code != "42704" {
		t.Errorf("BAN of an unknown host: %+v", msgs)
	}
}

func TestShowHelpListsEveryCommand(t *testing.T) {
	got := rows(t, run(t, &fakeSource{}, "SHOW HELP"), []string{"command"}, "SHOW")
	for _, c := range []string{"PAUSE [database]", "RESUME [database]", "RELOAD", "SHOW RESHARD", "SHUTDOWN"} {
		found := false
		for _, g := range got {
			found = found || g == c
		}
		if !found {
			t.Errorf("SHOW HELP lacks %q: %q", c, got)
		}
	}
}

func TestMetricsPaused(t *testing.T) {
	var b strings.Builder
	WriteMetrics(&b, nil, []DatabaseInfo{{Name: "app", PauseState: "paused"}, {Name: "other"}}, 3)
	for _, want := range []string{`pgshard_database_paused{database="app"} 1`, `pgshard_database_paused{database="other"} 0`, "pgshard_clients 3"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("metrics lack %q:\n%s", want, b.String())
		}
	}
}

func TestProcessMetrics(t *testing.T) {
	var b strings.Builder
	writeProcessMetrics(&b)
	for _, want := range []string{"go_goroutines ", "go_memstats_mallocs_total ", "process_open_fds ", "process_resident_memory_bytes "} {
		i := strings.Index(b.String(), "\n"+want)
		if i < 0 {
			t.Fatalf("metrics lack %q:\n%s", want, b.String())
		}
		line := b.String()[i+1+len(want):]
		if v, err := strconv.ParseInt(line[:strings.IndexByte(line, '\n')], 10, 64); err != nil || v <= 0 {
			t.Errorf("%s = %q", want, line[:strings.IndexByte(line, '\n')])
		}
	}
}
