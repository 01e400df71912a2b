package loop

import (
	"sort"
	"strings"

	"github.com/pgshard/pgshard/codec"
	"github.com/pgshard/pgshard/route/lex"
)

// Session state. A client's SET, RESET and startup parameters are its own: pgshard keeps them per client and,
// when the client's server connection holds other settings, sends the SET/RESET statements that make them
// equal before the client's next message, and waits for their answer: a replay that fails ends the session
// (FATAL) rather than letting the client's statement run in a session state it did not ask for. The server
// connection differs when the client gets one from the pool (transaction mode: every transaction; session
// mode: once, where this is how the startup parameters reach the server, which pgshard logged in to with its
// own), and after a RESET, RESET ALL or DISCARD ALL, which on the server return to the values pgshard logged in
// with rather than the client's startup values. A SET counts once the server confirmed it (its
// CommandComplete), so a failed SET is not replayed. SET LOCAL lasts a transaction and needs nothing. A replay
// is the client's own SET statement as it wrote it (every form: SET ROLE, SET TIME ZONE INTERVAL ..., quoting
// and all), which a server of the same pool accepts as this one did, or set_config() for a startup parameter,
// which takes the value as the startup packet does.
//
// Features that live in a server session and cannot move — session advisory locks, LISTEN, temporary tables,
// cursors WITH HOLD, SET SESSION AUTHORIZATION — pin the client to its server connection until they are
// released or the client leaves; the server is then reset with DISCARD ALL before another client gets it.

// settingChange is a SET or RESET of one client statement, applied when the server confirms it.
type settingChange struct {
	name    string // "" with resetAll
	replay  string // the statement that sets it again; "" for a RESET
	all     bool   // RESET ALL or DISCARD ALL
	discard bool   // DISCARD ALL, which resets the role too (RESET ALL leaves it)
}

// replayStartup is how a startup parameter is set again: set_config reads the value as the startup packet
// (and postgresql.conf) does, lists included, where SET would need SQL syntax.
func replayStartup(name, value string) string {
	return "SELECT pg_catalog.set_config(" + quoteLiteral(name) + ", " + quoteLiteral(value) + ", false)"
}

func quoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// sqlName writes a parameter name for SET or RESET: as it is when it is a plain (possibly dotted) name, else
// quoted, so that no name can change the statement around it.
func sqlName(s string) string {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || c == '.' || (c >= 'a' && c <= 'z') || (i > 0 && (c >= '0' && c <= '9' || c == '$'))) {
			return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
		}
	}
	return s
}

// startupSettings turns the startup parameters a server should get into the client's initial settings.
func startupSettings(params []codec.Param) map[string]string {
	m := map[string]string{}
	eachStartupSetting(params, func(name, value string) { m[name] = replayStartup(name, value) })
	if _, ok := m["application_name"]; !ok {
		// Postgres gives a client that names no application an empty one, not the name pgshard logs in with.
		m["application_name"] = replayStartup("application_name", "")
	}
	return m
}

// pgshardStartup returns pgshard's own settings among the startup parameters, with their values as sent.
func pgshardStartup(params []codec.Param) map[string]string {
	var m map[string]string
	eachStartupSetting(params, func(name, value string) {
		if pgshardSetting(name) {
			if m == nil {
				m = map[string]string{}
			}
			m[name] = value
		}
	})
	return m
}

// eachStartupSetting calls f with each setting the startup parameters give, its name in lower case: those
// of options (-c name=value) first, then those given on their own, which so win, as in Postgres. user,
// database and replication are the connection's own, and _pq_. names are protocol options.
func eachStartupSetting(params []codec.Param, f func(name, value string)) {
	for _, p := range params {
		if p.Name == "options" {
			for name, value := range parseOptions(p.Value) {
				f(name, value)
			}
		}
	}
	for _, p := range params {
		switch {
		case p.Name == "user", p.Name == "database", p.Name == "replication", p.Name == "options",
			strings.HasPrefix(p.Name, "_pq_."):
		default:
			f(strings.ToLower(p.Name), p.Value)
		}
	}
}

// parseOptions reads "-c name=value --name=value" from the options startup parameter (backslash escapes a
// space, as libpq does).
func parseOptions(s string) map[string]string {
	var words []string
	var cur strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\' && i+1 < len(s):
			i++
			cur.WriteByte(s[i])
		case c == ' ' || c == '\t':
			if cur.Len() > 0 {
				words = append(words, cur.String())
				cur.Reset()
			}
		default:
			cur.WriteByte(c)
		}
	}
	if cur.Len() > 0 {
		words = append(words, cur.String())
	}
	out := map[string]string{}
	for i := 0; i < len(words); i++ {
		w := words[i]
		switch {
		case w == "-c" && i+1 < len(words):
			i++
			w = words[i]
		case strings.HasPrefix(w, "-c"):
			w = w[2:]
		case strings.HasPrefix(w, "--"):
			w = w[2:]
		default:
			continue
		}
		if k, v, ok := strings.Cut(w, "="); ok {
			out[strings.ToLower(strings.ReplaceAll(k, "-", "_"))] = v
		}
	}
	return out
}

// effects is what a statement (or several) does to the session, worked out once per query or per prepared
// statement: setting changes to apply once the server confirms them, and what pins or unpins the client.
type effects struct {
	changes     []settingChange
	locks       int  // session advisory locks taken minus released
	unlockAll   bool // pg_advisory_unlock_all
	listen      bool
	unlistenAll bool
	temp        bool
	discardTemp bool // DISCARD TEMP or ALL
	hold        bool // DECLARE ... WITH HOLD
	discardAll  bool

	setConfig        bool // set_config(name, value, false): a setting pgshard cannot know the value of
	sessionAuth      bool // SET SESSION AUTHORIZATION to a role
	sessionAuthReset bool // back to the login role: RESET SESSION AUTHORIZATION, SET ... DEFAULT, DISCARD ALL (not RESET ALL)
}

// effectsOf classifies a query; nil when it does nothing pgshard tracks. Most queries are ruled out by one
// pass over their bytes, before any string is made of them.
func effectsOf(q []byte) *effects {
	if !lex.MayTouchSession(q) {
		return nil
	}
	sql := string(q)
	fx := &effects{}
	for _, r := range lex.Split(sql, nil) {
		st := lex.Classify(sql[r[0]:r[1]])
		switch st.Kind {
		case lex.StmtSet:
			switch {
			case st.Local || st.Value == "":
				// SET LOCAL ends with the transaction; SET name FROM CURRENT keeps the value the client has.
			case st.Name == "session_authorization":
				// Pinned rather than replayed; it also resets the role (RESET ROLE), as the server does.
				fx.changes = append(fx.changes, settingChange{name: "role"})
				fx.sessionAuth = !strings.EqualFold(st.Value, "default")
				fx.sessionAuthReset = !fx.sessionAuth
			default:
				// The client's own statement, which this server just accepted, sets the same value on another.
				fx.changes = append(fx.changes, settingChange{name: st.Name, replay: sql[r[0]:r[1]]})
			}
		case lex.StmtReset:
			switch st.Name {
			case "all":
				fx.changes = append(fx.changes, settingChange{all: true})
			case "session_authorization":
				fx.changes = append(fx.changes, settingChange{name: "role"})
				fx.sessionAuthReset = true
			default:
				fx.changes = append(fx.changes, settingChange{name: st.Name})
			}
		case lex.StmtDiscard:
			switch st.Name {
			case "all":
				fx.changes = append(fx.changes, settingChange{all: true, discard: true})
				fx.discardAll, fx.discardTemp, fx.unlockAll, fx.unlistenAll = true, true, true, true
				fx.sessionAuthReset = true
			case "temp":
				fx.discardTemp = true
			}
		case lex.StmtListen:
			fx.listen = true
		case lex.StmtUnlisten:
			fx.unlistenAll = fx.unlistenAll || st.Name == "*"
		case lex.StmtCreateTemp:
			fx.temp = true
		case lex.StmtDeclare:
			fx.hold = fx.hold || st.Hold
		}
		switch {
		case st.UnlockAll:
			fx.unlockAll, fx.locks = true, 0
		case st.SessionLock:
			fx.locks++
		case st.SessionUnlock:
			fx.locks--
		}
	}
	fx.setConfig = lex.SetsConfigForSession(sql)
	if len(fx.changes) == 0 && fx.locks == 0 && !(fx.setConfig || fx.unlockAll || fx.listen || fx.unlistenAll || fx.temp ||
		fx.discardTemp || fx.hold || fx.discardAll || fx.sessionAuth || fx.sessionAuthReset) {
		return nil
	}
	return fx
}

// applyPins updates the reasons the client keeps its server connection, as the statement is sent.
func (cl *client) applyPins(fx *effects) {
	p := &cl.pins
	if fx.unlockAll {
		p.locks = 0
	}
	p.locks = max(0, p.locks+fx.locks)
	// Each pin: released by the statement, then taken by it (a release comes first: LISTEN after UNLISTEN * in
	// one query string pins).
	p.listen = p.listen && !fx.unlistenAll || fx.listen
	p.temp = p.temp && !fx.discardTemp || fx.temp
	p.cursor = p.cursor && !fx.discardAll || fx.hold
	p.setConfig = p.setConfig && !fx.discardAll || fx.setConfig
	p.sessionAuth = p.sessionAuth && !fx.sessionAuthReset || fx.sessionAuth
}

// pins are the reasons a client keeps its server connection between transactions.
type pins struct {
	locks  int  // session advisory locks taken and not released (pg_try_advisory_lock counts even when it fails)
	listen bool // LISTEN without UNLISTEN *
	temp   bool // temporary objects
	cursor bool // a cursor WITH HOLD

	sessionAuth bool // SET SESSION AUTHORIZATION: the session's user, which only a superuser could set again
	setConfig   bool // set_config() of a session setting, whose value the statement computes
}

func (p pins) any() bool {
	return p.locks > 0 || p.listen || p.temp || p.cursor || p.sessionAuth || p.setConfig
}

// confirm applies a setting change the server confirmed (its CommandComplete), to what pgshard knows of the
// client's settings and of the server's. The server then holds the client's settings except where a RESET
// gave it its own default: the next checkout compares the two and sets what differs.
func (cl *client) confirm(s *server, ch settingChange) {
	cl.beginProvisional(s)
	switch {
	case ch.all:
		role, clientHas := cl.settings["role"]
		serverRole, serverHas := s.settings["role"]
		cl.settings = cloneSettings(cl.defaults)
		s.settings = map[string]string{}
		if !ch.discard { // RESET ALL leaves the role as it is (Postgres marks it GUC_NO_RESET_ALL)
			if clientHas {
				cl.settings["role"] = role
			}
			if serverHas {
				s.settings["role"] = serverRole
			}
		}
	case ch.replay == "":
		if v, ok := cl.defaults[ch.name]; ok {
			cl.setSetting(ch.name, v)
		} else {
			delete(cl.settings, ch.name)
		}
		delete(s.settings, ch.name)
	default:
		replay := ch.replay
		if name, value, ok := s.reported(ch.name); ok {
			// A parameter the server reports: its value, not the client's words, which may change only a part
			// of it (SET datestyle TO ymd keeps the output style). The new value comes in a ParameterStatus
			// before the ReadyForQuery (reportedChange); none comes when the value did not change.
			replay = replayStartup(name, value)
		}
		cl.setSetting(ch.name, replay)
		if s.settings == nil {
			s.settings = map[string]string{}
		}
		s.settings[ch.name] = replay
	}
	cl.settingsVer++
	s.syncedTo = nil
	cl.needSync = cl.rt == nil // a RESET gave the server its own value, not the client's startup value
}

// reported returns the value of a parameter the server reports in ParameterStatus (DateStyle, TimeZone,
// application_name, ...), by its name in any case.
func (s *server) reported(name string) (string, string, bool) {
	for n, v := range s.backend.Params {
		if strings.EqualFold(n, name) {
			return n, v, true
		}
	}
	return "", "", false
}

// reportedChange follows a ParameterStatus of the client's own statements: a parameter the server holds for
// the client (it SET it) is replayed with the server's new value, however the client changed it.
func (cl *client) reportedChange(s *server, name, value string) {
	key := strings.ToLower(name)
	if replay, ok := s.settings[key]; ok && cl.settings[key] == replay {
		replay = replayStartup(name, value)
		cl.settings[key], s.settings[key] = replay, replay
		cl.settingsVer++
		s.syncedVer = cl.settingsVer
	}
}

// A SET is undone when its transaction rolls back: BEGIN; SET ...; ROLLBACK, or a query string whose later
// statement fails (its implicit transaction). So the changes a server confirms are provisional until the
// transaction ends: beginProvisional keeps the settings from before the first one (the maps are copied once,
// so that the changes go to new maps), and transactionEnded keeps or restores them once the server is idle
// again. A ROLLBACK TO SAVEPOINT undoes nothing here: without the savepoint's name pgshard cannot tell which
// changes it took back (README, known limitations).
type provisional struct {
	active         bool
	client, server map[string]string // the settings before the transaction's first change
}

func (cl *client) beginProvisional(s *server) {
	if cl.tx.active || cl.rt != nil {
		return
	}
	cl.tx = provisional{active: true, client: cl.settings, server: s.settings}
	cl.settings = cloneSettings(cl.settings)
	s.settings = cloneSettings(s.settings)
}

// transactionEnded runs on a ReadyForQuery saying the server is outside a transaction block: the changes of the
// transaction that ended count if it committed, and are undone if it rolled back.
func (cl *client) transactionEnded(s *server, rolledBack bool) {
	if !cl.tx.active {
		return
	}
	if rolledBack {
		cl.settings, s.settings = cl.tx.client, cl.tx.server
		cl.settingsVer++
		s.syncedTo = nil
	}
	cl.tx = provisional{}
}

func (cl *client) setSetting(name, replay string) {
	if cl.settings == nil {
		cl.settings = map[string]string{}
	}
	cl.settings[name] = replay
}

func cloneSettings(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// settingsDiff returns the statements that give s the client's settings: the client's own (sets), and the
// RESETs of what an earlier client left on s (cleanup). Nil when s has them; it then counts them as given (the
// caller sends them).
func (s *server) settingsDiff(cl *client) (sets, cleanup []string) {
	if s.syncedTo == cl && s.syncedVer == cl.settingsVer {
		return nil, nil
	}
	for name, replay := range cl.settings {
		if s.settings[name] != replay {
			sets = append(sets, replay)
		}
	}
	for name := range s.settings {
		if _, ok := cl.settings[name]; !ok {
			cleanup = append(cleanup, "RESET "+resetTarget(name))
		}
	}
	s.syncedTo, s.syncedVer = cl, cl.settingsVer
	if len(sets)+len(cleanup) == 0 {
		return nil, nil
	}
	sort.Strings(sets) // a stable order keeps the statements comparable in logs
	sort.Strings(cleanup)
	s.settings = cloneSettings(cl.settings)
	return sets, cleanup
}

// syncSettings puts in front of the client's first message on a freshly checked-out server (sharded databases)
// the statements that give the server the client's settings, when they differ.
func (s *server) syncSettings(cl *client, sp *splice, at int) {
	if sets, cleanup := s.settingsDiff(cl); sets != nil || cleanup != nil {
		sp.insert(at, codec.AppendQuery(s.ls.synth[:0], strings.Join(append(cleanup, sets...), "; ")))
		s.expects.push(expectOwn(keepNothing))
	}
}

// replaySettings sends the statements that give an idle server the client's settings, when they differ, and
// reports whether it did: the client's messages then wait until the server has answered (replayDone), so that
// none of them runs if the replay fails. The cleanup of what an earlier client left goes first, on its own.
func (s *server) replaySettings(cl *client) bool {
	sets, cleanup := s.settingsDiff(cl)
	if sets == nil && cleanup == nil {
		return false
	}
	b := s.ls.synth[:0]
	if cleanup != nil {
		b = codec.AppendQuery(b, strings.Join(cleanup, "; "))
		s.expects.push(expectation{answers: reqQuery, handling: own, keep: keepReplay, cleanup: true})
	}
	if sets != nil {
		b = codec.AppendQuery(b, strings.Join(sets, "; "))
		s.expects.push(expectOwn(keepReplay))
	}
	s.unnamedOwner = nil // a simple query drops the unnamed statement
	s.send(b)
	return true
}

// replayDone runs when the server has answered a replay of the client's settings. The client's messages go on;
// or, when the cleanup of an earlier client's settings failed (a custom setting a LOAD removed since), the
// server is closed and the client gets another; or, when the client's own settings failed, the session ends
// with the server's error (its state can no longer be what the client set) and the server is closed.
func (s *server) replayDone(cl *client) {
	failed, cleanup := s.replayErr, s.replayCleanupFailed
	s.replayErr, s.replayCleanupFailed = nil, false
	if failed == nil {
		cl.forward()
		cl.flush()
		return
	}
	cl.detachServer(s)
	s.closeExpected()
	if cleanup {
		if cl.acquire() {
			cl.forward()
		}
		cl.flush()
		return
	}
	failed.Severity = "FATAL"
	failed.Message = "pgshard could not give a server connection this session's settings: " + failed.Message
	failed.Hint = "a setting this session made (SET, or a startup parameter) no longer applies on the server, e.g. a role it SET was dropped; reconnect"
	cl.fatal(failed)
}

func resetTarget(name string) string {
	if name == "role" {
		return "ROLE"
	}
	return sqlName(name)
}
