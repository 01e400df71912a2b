package lex

import "strings"

// Access is what a read/write split needs to know of a query string.
type Access struct {
	// Read: every statement surely only reads, so that the string may run on a replica: a SELECT, VALUES,
	// TABLE, SHOW or WITH that does not
	//   - lock rows (FOR UPDATE, FOR NO KEY UPDATE, FOR SHARE, FOR KEY SHARE),
	//   - write (SELECT ... INTO, a WITH holding INSERT, UPDATE, DELETE or MERGE),
	//   - or call a function that writes, takes a lock or needs a primary (writeFunc);
	// or a BEGIN or START TRANSACTION that says READ ONLY, or the COMMIT, END, ROLLBACK or ABORT of a
	// transaction (which a replica runs as well as a primary).
	Read bool
	// Role is a /* pgshard: role=primary */ or role=replica comment's: where the client wants the string to
	// run, whatever it does. "" when there is none (or a pgshard comment is malformed: the string is then no
	// read either).
	Role string
}

// ReadAccess classifies sql, one or more statements, for a read/write split. It decides from words, not from a
// parse, and says no read whenever it is unsure: a column named update sends its SELECT to the primary, which
// is always right. A function of the user's that writes is not known here; such a SELECT fails on a replica
// (25006), and a role=primary comment or the session's pgshard.role sends it to the primary.
func ReadAccess(sql string) Access {
	var l Lexer
	l.KeepComments = true
	l.Reset(sql)
	src := l.src
	var a Access
	hints := Hints{Shard: -1}
	read, statements := true, 0
	var s readStmt
	for {
		t := l.Next()
		switch t.Kind {
		case EOF:
			read = read && s.end() && statements > 0 && l.Err() == nil
			return Access{Read: read, Role: a.Role}
		case Comment:
			if err := readHint(src, t, &hints); err != nil {
				return Access{}
			}
			a.Role = hints.Role
			continue
		case Punct:
			if src[t.Start] == ';' {
				read = read && s.end()
				s = readStmt{}
				continue
			}
		}
		if read && !s.next(src, t) {
			read = false
		}
		if s.first == 1 {
			statements++
		}
	}
}

// readStmt follows one statement of a query string, token by token, for ReadAccess.
type readStmt struct {
	first     int  // tokens seen, up to 2
	begin     bool // a BEGIN or START TRANSACTION: it must say READ ONLY
	readOnly  bool // it did
	afterFor  bool // the last word was FOR
	afterRead bool // the last word was READ
	buf       [64]byte
}

// word returns t's name: an unquoted one folded to lower case in s.buf (its first len(s.buf) bytes: longer
// names matter only by their prefix here), a quoted one as it is.
func (s *readStmt) word(src string, t Token) []byte {
	if t.Kind == QuotedIdent {
		return []byte(Unquote(src, t))
	}
	w := src[t.Start:t.End]
	n := copy(s.buf[:], w)
	for i := range n {
		s.buf[i] = lowerTable[s.buf[i]]
	}
	return s.buf[:n]
}

// next takes the statement's next token (no comment); false when the statement is no read.
func (s *readStmt) next(src string, t Token) bool {
	if s.first == 0 && t.Kind == Punct && src[t.Start] == '(' {
		return true // (SELECT ...) UNION ...: the first word is inside
	}
	if s.first < 2 {
		s.first++
	}
	if t.Kind != Ident && t.Kind != QuotedIdent {
		s.afterFor, s.afterRead = false, false
		return s.first > 1
	}
	word := s.word(src, t)
	if s.first == 1 {
		switch string(word) {
		case "select", "values", "table", "show", "with", "commit", "end", "rollback", "abort":
			return true
		case "begin", "start":
			s.begin = true
			return true
		}
		return false
	}
	if t.Kind == Ident {
		w := string(word) // short and not kept: the compiler copies it to the stack
		switch {
		case s.afterFor && (w == "update" || w == "share" || w == "no" || w == "key"):
			return false
		case s.afterRead && w == "only":
			s.readOnly = true
		}
		s.afterFor, s.afterRead = w == "for", w == "read"
		switch w {
		case "insert", "update", "delete", "merge", "into", "prepared":
			return false
		}
	}
	return !writeFunc(word)
}

// end says whether the statement, now complete, was a read: a BEGIN must have said READ ONLY.
func (s *readStmt) end() bool { return !s.begin || s.readOnly }

// writeFunc reports the built-in functions a replica cannot run, or whose effect belongs on the primary: they
// write (sequences, large objects, NOTIFY, replication slots, WAL), take locks or assign a transaction id, change
// the session, or act on other sessions.
func writeFunc(name []byte) bool {
	switch string(name) {
	case "nextval", "setval", "currval", "lastval", "pg_notify", "set_config", "txid_current", "pg_current_xact_id",
		"pg_export_snapshot", "pg_cancel_backend", "pg_terminate_backend", "pg_reload_conf", "pg_promote",
		"pg_switch_wal", "pg_create_restore_point", "pg_drop_replication_slot", "pg_logical_emit_message":
		return true
	}
	for _, prefix := range [...]string{"pg_advisory_", "pg_try_advisory_", "lo_", "pg_create_", "pg_current_wal",
		"pg_replication_origin_", "pg_wal_replay_", "pg_stat_reset", "dblink"} {
		if len(name) >= len(prefix) && string(name[:len(prefix)]) == prefix {
			return true
		}
	}
	return false
}

// PlainBegin reports a BEGIN or START TRANSACTION without options or comments, alone in sql: a transaction
// whose access its next statement may still set (SET TRANSACTION READ ONLY), so that a read/write split can
// hold it back until then.
func PlainBegin(sql string) bool {
	w, ok := statementWords(sql, 3)
	if !ok {
		return false
	}
	switch strings.Join(w, " ") {
	case "begin", "begin work", "begin transaction", "start transaction":
		return true
	}
	return false
}

// SetsReadOnly reports a SET TRANSACTION that makes the transaction READ ONLY, alone in sql (other modes,
// an isolation level or DEFERRABLE, may come with it).
func SetsReadOnly(sql string) bool {
	w, ok := statementWords(sql, 16)
	if !ok || len(w) < 4 || w[0] != "set" || w[1] != "transaction" {
		return false
	}
	for i := 2; i+1 < len(w); i++ {
		if w[i] == "read" && w[i+1] == "only" {
			return true
		}
	}
	return false
}

// statementWords returns the words (lower case) of the one statement in sql, up to max of them, and the
// punctuation commas of a mode list skipped; false when sql holds more than one statement, a comment, any
// other token, or more words.
func statementWords(sql string, max int) ([]string, bool) {
	var l Lexer
	l.KeepComments = true
	l.Reset(sql)
	var words []string
	ended := false
	for t := l.Next(); t.Kind != EOF; t = l.Next() {
		switch {
		case ended:
			return nil, false
		case t.Kind == Ident && len(words) < max:
			words = append(words, strings.ToLower(sql[t.Start:t.End]))
		case t.Kind == Punct && sql[t.Start] == ';':
			ended = true
		case t.Kind == Punct && sql[t.Start] == ',':
		default:
			return nil, false
		}
	}
	return words, l.Err() == nil && len(words) > 0
}
