package lex

import "strings"

// IsRead reports whether sql, one or more statements, surely only reads, so that a read/write split may send it
// to a replica: every statement is a SELECT, VALUES, TABLE, SHOW or WITH, and none
//   - locks rows (FOR UPDATE, FOR NO KEY UPDATE, FOR SHARE, FOR KEY SHARE),
//   - writes (SELECT ... INTO, a WITH holding INSERT, UPDATE, DELETE or MERGE),
//   - or calls a function that writes, takes a lock or needs a primary (writeFunc).
//
// It decides from words, not from a parse, and says false whenever it is unsure: a column named update sends
// its SELECT to the primary, which is always right. A function of the user's that writes is not known here; such
// a SELECT fails on a replica (25006) and is sent to the primary with a routing override.
func IsRead(sql string) bool {
	var l Lexer
	l.Reset(sql)
	src := l.src
	statements := 0
	atStart, afterFor := true, false
	for {
		t := l.Next()
		switch t.Kind {
		case EOF:
			return statements > 0 && l.Err() == nil
		case Punct:
			afterFor = false
			if src[t.Start] == ';' {
				atStart = true
			}
			continue
		case Ident, QuotedIdent:
		default:
			if atStart {
				return false
			}
			afterFor = false
			continue
		}
		word := Unquote(src, t) // folded to lower case when unquoted
		if atStart {
			switch word {
			case "select", "values", "table", "show", "with":
				statements++
				atStart = false
				continue
			}
			return false
		}
		if afterFor && t.Kind == Ident {
			switch word {
			case "update", "share", "no", "key":
				return false
			}
		}
		afterFor = t.Kind == Ident && word == "for"
		if t.Kind == Ident {
			switch word {
			case "insert", "update", "delete", "merge", "into":
				return false
			}
		}
		if writeFunc(word) {
			return false
		}
	}
}

// writeFunc reports the built-in functions a replica cannot run, or whose effect belongs on the primary: they
// write (sequences, large objects, NOTIFY, replication slots, WAL), take locks or assign a transaction id, change
// the session, or act on other sessions.
func writeFunc(name string) bool {
	switch name {
	case "nextval", "setval", "currval", "lastval", "pg_notify", "set_config", "txid_current", "pg_current_xact_id",
		"pg_export_snapshot", "pg_cancel_backend", "pg_terminate_backend", "pg_reload_conf", "pg_promote",
		"pg_switch_wal", "pg_create_restore_point", "pg_drop_replication_slot", "pg_logical_emit_message":
		return true
	}
	for _, prefix := range [...]string{"pg_advisory_", "pg_try_advisory_", "lo_", "pg_create_", "pg_current_wal",
		"pg_replication_origin_", "pg_wal_replay_", "pg_stat_reset", "dblink"} {
		if strings.HasPrefix(name, prefix) {
			return true
		}
	}
	return false
}
