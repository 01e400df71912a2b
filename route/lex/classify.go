package lex

import "math/bits"

// StmtKind is what a statement does to session state, as far as transaction pooling must know.
type StmtKind uint8

const (
	StmtOther      StmtKind = iota
	StmtBegin               // BEGIN, START TRANSACTION
	StmtCommit              // COMMIT, END (COMMIT PREPARED is StmtOther)
	StmtRollback            // ROLLBACK, ABORT (ROLLBACK TO SAVEPOINT and ROLLBACK PREPARED are StmtOther)
	StmtSet                 // SET [SESSION|LOCAL] ...; see Stmt.Name and Stmt.Value
	StmtReset               // RESET name | RESET ALL (Name "all")
	StmtPrepare             // PREPARE name [(types)] AS body
	StmtExecute             // EXECUTE name [(args)]
	StmtDeallocate          // DEALLOCATE [PREPARE] name | ALL (Name "all")
	StmtDiscard             // DISCARD ALL|PLANS|SEQUENCES|TEMP|TEMPORARY (Name "all", "plans", "sequences", "temp")
	StmtListen              // LISTEN channel
	StmtUnlisten            // UNLISTEN channel | * (Name "*")
	StmtDeclare             // DECLARE name ... CURSOR [WITH HOLD] FOR ...
	StmtCreateTemp          // CREATE [OR REPLACE] [GLOBAL|LOCAL] TEMP|TEMPORARY [RECURSIVE] TABLE|VIEW|SEQUENCE, CREATE ... pg_temp.name, SELECT ... INTO TEMP t
	StmtShow                // SHOW name
	StmtSavepoint           // SAVEPOINT name
	StmtRelease             // RELEASE [SAVEPOINT] name
	StmtRollbackTo          // ROLLBACK|ABORT [WORK|TRANSACTION] TO [SAVEPOINT] name
)

var stmtKindNames = [...]string{"Other", "Begin", "Commit", "Rollback", "Set", "Reset", "Prepare", "Execute",
	"Deallocate", "Discard", "Listen", "Unlisten", "Declare", "CreateTemp", "Show", "Savepoint", "Release", "RollbackTo"}

func (k StmtKind) String() string {
	if int(k) < len(stmtKindNames) {
		return stmtKindNames[k]
	}
	return "StmtKind(?)"
}

// Stmt is the classification of one statement. Names are identifiers as Postgres reads them (unquoted ones
// folded to lower case, quoted ones unescaped); strings are substrings of the input unless folding or unescaping
// had to build a new one.
type Stmt struct {
	Kind StmtKind
	// Name: the setting for StmtSet/StmtReset/StmtShow (SET TIME ZONE is "timezone", SET SCHEMA "search_path",
	// SET NAMES "client_encoding", SET ROLE "role", SET SESSION AUTHORIZATION "session_authorization", SET XML
	// OPTION "xmloption", RESET/SHOW TRANSACTION ISOLATION LEVEL "transaction_isolation", dotted names joined
	// with '.'); the statement name for StmtPrepare/StmtExecute/StmtDeallocate ("all" for DEALLOCATE ALL); the
	// cursor for StmtDeclare; the channel for StmtListen/StmtUnlisten; what is discarded for StmtDiscard; the
	// savepoint for StmtSavepoint, StmtRelease and StmtRollbackTo.
	Name string
	// Value (StmtSet): the value as the client wrote it, from its first token to the end of the statement
	// (trailing comments and ';' excluded), e.g. "'UTC'", "public, \"$user\"", "DEFAULT"; replay it as
	// SET <Name> TO <Value>. SET TIME ZONE LOCAL gives "DEFAULT", SET NAMES without a value "DEFAULT". Empty for
	// SET name FROM CURRENT, which has nothing to replay.
	Value string
	Local bool // SET LOCAL
	Hold  bool // DECLARE ... WITH HOLD
	Chain bool // COMMIT/ROLLBACK AND CHAIN: a new transaction starts at once
	// NameRange is the byte range of the name token (StmtPrepare, StmtExecute, StmtDeallocate: for rewriting
	// it; the ALL token for DEALLOCATE ALL).
	NameRange [2]int
	// Body (StmtPrepare) is the byte range of the statement after AS, from its first token (or comment) to the
	// end of its last one, ';' excluded. TypesRange is the range of "(...)" when the types are given, else zero.
	Body, TypesRange [2]int
	// SessionLock: a session-level advisory lock function is called anywhere in the statement
	// (pg_advisory_lock, pg_advisory_lock_shared, pg_try_advisory_lock, pg_try_advisory_lock_shared; the _xact_
	// variants are not session-level). SessionUnlock: pg_advisory_unlock, pg_advisory_unlock_shared or
	// pg_advisory_unlock_all is called; UnlockAll: pg_advisory_unlock_all is.
	SessionLock   bool
	SessionUnlock bool
	UnlockAll     bool
}

const headSize = 16

// Classify classifies one statement (a range from Split, or the text of an extended-protocol Parse). When sql
// holds several statements, the kind and its details come from the first one, while advisory lock calls are
// looked for in all of them.
func Classify(sql string) Stmt {
	// The words a lock call or a SELECT ... INTO TEMP must contain: without them most statements are decided by
	// their first word.
	return classify(sql, scanWords(sql))
}

// mayContain says which of the words that Classify looks for beyond a statement's first ones a statement may
// contain: a false one it does not.
type mayContain struct {
	advisory bool // "advisory": it may call a session-level advisory lock function
	temp     bool // "temp": it may be a SELECT ... INTO TEMP
}

// classify is Classify told which words sql may contain.
func classify(sql string, words mayContain) Stmt {
	advisory, temp := words.advisory, words.temp
	var st Stmt
	var l Lexer
	l.KeepComments = true
	l.Reset(sql)
	src := l.src

	var head [headSize]Token
	nh := 0             // tokens in head
	idx := 0            // non-comment tokens of the first statement seen
	depth := 0          // parentheses
	done := false       // past the first top-level ';'
	last, lastC := 0, 0 // end of the statement's last token, without and with comments
	var pendingLock uint8
	// PREPARE
	asSeen, wantBody := false, false
	typesStart, typesEnd := -1, -1
	bodyStart := -1
	// DECLARE
	cursorFor, withSeen := false, false
	// SELECT ... INTO TEMP name
	into := 0

	var mode uint8        // what the first word asks to track: 'p' PREPARE, 'd' DECLARE, 's' SELECT
	var firstBuf [12]byte // the first token, lower-cased, when it is a keyword-sized Ident
	firstLen := 0
	for {
		t := l.Next()
		if t.Kind == EOF {
			break
		}
		if t.Kind == Comment {
			if !done {
				if wantBody {
					bodyStart, wantBody = int(t.Start), false
				}
				lastC = int(t.End)
			}
			continue
		}
		// Advisory locks, in every statement.
		if advisory {
			if pendingLock != 0 && t.Kind == Punct && src[t.Start] == '(' {
				st.SessionLock = st.SessionLock || pendingLock == lockTake
				st.SessionUnlock = st.SessionUnlock || pendingLock >= lockRelease
				st.UnlockAll = st.UnlockAll || pendingLock == lockReleaseAll
			}
			pendingLock = 0
			if t.Kind == Ident || t.Kind == QuotedIdent {
				pendingLock = lockFunc(src, t)
			}
		}
		if done {
			continue
		}
		if t.Kind == Punct {
			switch src[t.Start] {
			case '(':
				depth++
			case ')':
				depth--
			case ';':
				if depth <= 0 {
					done = true
					continue
				}
			}
		}
		if nh < headSize {
			head[nh] = t
			nh++
		}
		if idx == 0 {
			firstLen = lowerWord(&firstBuf, src, t)
			switch string(firstBuf[:firstLen]) {
			case "prepare":
				mode = 'p'
			case "declare":
				mode = 'd'
			case "select":
				mode = 's'
				if !advisory && !temp {
					return st // neither a lock call nor SELECT ... INTO TEMP
				}
			case "begin", "start", "commit", "end", "rollback", "abort", "set", "reset", "show", "execute", "savepoint", "release",
				"deallocate", "discard", "listen", "unlisten", "create":
			default:
				if !advisory {
					return st // nothing in this statement is classified beyond its first word
				}
			}
		}
		last, lastC = int(t.End), int(t.End)
		if wantBody {
			bodyStart, wantBody = int(t.Start), false
		}
		switch mode {
		case 'p':
			if idx == 2 && t.Kind == Punct && src[t.Start] == '(' {
				typesStart = int(t.Start)
			}
			if typesStart >= 0 && typesEnd < 0 && depth == 0 && t.Kind == Punct && src[t.Start] == ')' {
				typesEnd = int(t.End)
			}
			if idx >= 2 && depth == 0 && !asSeen && isKw(src, t, "as") {
				asSeen, wantBody = true, true
			}
		case 'd':
			if idx >= 2 && depth == 0 && !cursorFor {
				switch {
				case isKw(src, t, "for"):
					cursorFor = true
				case withSeen && isKw(src, t, "hold"):
					st.Hold = true
				}
				withSeen = isKw(src, t, "with")
			}
		case 's':
			if depth != 0 || into == 3 {
				break
			}
			switch into {
			case 0:
				if isKw(src, t, "into") {
					into = 1
				}
			case 1:
				switch {
				case isKw(src, t, "global"), isKw(src, t, "local"):
				case isKw(src, t, "temp"), isKw(src, t, "temporary"):
					into = 2
				default:
					into = 0
				}
			case 2:
				if t.Kind == QuotedIdent || t.Kind == Ident && !isKw(src, t, "from") {
					into = 3
				} else {
					into = 0
				}
			}
		}
		idx++
	}
	if nh == 0 {
		return st
	}
	h := head[:nh]
	kw := func(i int, w string) bool { return i < len(h) && IsKeyword(src, h[i], w) }
	// value returns the text from token i to the end of the statement.
	value := func(i int) string {
		if i >= len(h) || int(h[i].Start) >= last {
			return ""
		}
		return src[h[i].Start:last]
	}
	first := string(firstBuf[:firstLen])
	switch first {
	case "begin":
		st.Kind = StmtBegin
	case "start":
		if kw(1, "transaction") {
			st.Kind = StmtBegin
		}
	case "commit", "end":
		if kw(1, "prepared") && first == "commit" {
			break
		}
		st.Kind = StmtCommit
		st.Chain = chained(h, src)
	case "rollback", "abort":
		i := 1
		if kw(i, "work") || kw(i, "transaction") {
			i++
		}
		if kw(i, "to") {
			if kw(i+1, "savepoint") {
				i++
			}
			if name, ok := nameAt(src, h, i+1); ok {
				st.Kind, st.Name = StmtRollbackTo, name
			}
			break
		}
		if kw(1, "prepared") && first == "rollback" {
			break
		}
		st.Kind = StmtRollback
		st.Chain = chained(h, src)
	case "set":
		classifySet(&st, src, h, value)
	case "savepoint", "release":
		i := 1
		if first == "release" && kw(i, "savepoint") {
			i++
		}
		if name, ok := nameAt(src, h, i); ok {
			st.Kind, st.Name = StmtSavepoint, name
			if first == "release" {
				st.Kind = StmtRelease
			}
		}
	case "reset", "show":
		name, _, ok := settingName(src, h, 1)
		if !ok {
			break
		}
		st.Kind, st.Name = StmtReset, name
		if first == "show" {
			st.Kind = StmtShow
		}
	case "prepare":
		if kw(1, "transaction") && len(h) > 2 && h[2].Kind == String {
			break // PREPARE TRANSACTION 'gid'
		}
		name, ok := nameAt(src, h, 1)
		if !ok || !asSeen || bodyStart < 0 {
			break
		}
		st.Kind, st.Name = StmtPrepare, name
		st.NameRange = [2]int{int(h[1].Start), int(h[1].End)}
		st.Body = [2]int{bodyStart, lastC}
		if typesStart >= 0 && typesEnd >= 0 {
			st.TypesRange = [2]int{typesStart, typesEnd}
		}
	case "execute":
		if name, ok := nameAt(src, h, 1); ok {
			st.Kind, st.Name = StmtExecute, name
			st.NameRange = [2]int{int(h[1].Start), int(h[1].End)}
		}
	case "deallocate":
		i := 1
		if kw(i, "prepare") {
			i++
		}
		if kw(i, "all") {
			st.Kind, st.Name = StmtDeallocate, "all"
			st.NameRange = [2]int{int(h[i].Start), int(h[i].End)}
		} else if name, ok := nameAt(src, h, i); ok {
			st.Kind, st.Name = StmtDeallocate, name
			st.NameRange = [2]int{int(h[i].Start), int(h[i].End)}
		}
	case "discard":
		for _, w := range [...]string{"all", "plans", "sequences", "temp", "temporary"} {
			if kw(1, w) {
				st.Kind, st.Name = StmtDiscard, w
			}
		}
		if st.Name == "temporary" {
			st.Name = "temp"
		}
	case "listen":
		if name, ok := nameAt(src, h, 1); ok {
			st.Kind, st.Name = StmtListen, name
		}
	case "unlisten":
		if len(h) > 1 && h[1].Kind == Op && src[h[1].Start:h[1].End] == "*" {
			st.Kind, st.Name = StmtUnlisten, "*"
		} else if name, ok := nameAt(src, h, 1); ok {
			st.Kind, st.Name = StmtUnlisten, name
		}
	case "declare":
		if name, ok := nameAt(src, h, 1); ok {
			st.Kind, st.Name = StmtDeclare, name
		}
	case "create":
		i := 1
		if kw(i, "or") && kw(i+1, "replace") {
			i += 2
		}
		if kw(i, "global") || kw(i, "local") {
			i++
		}
		if !kw(i, "temp") && !kw(i, "temporary") {
			// CREATE TABLE pg_temp.t (...) also creates a temporary object.
			for j := i; j+1 < len(h); j++ {
				if h[j].Kind == Punct && src[h[j].Start] == '(' || kw(j, "as") {
					break
				}
				if kw(j, "pg_temp") && h[j+1].Kind == Punct && src[h[j+1].Start:h[j+1].End] == "." {
					st.Kind = StmtCreateTemp
					break
				}
			}
			break
		}
		i++
		if kw(i, "recursive") {
			i++
		}
		if kw(i, "table") || kw(i, "view") || kw(i, "sequence") {
			st.Kind = StmtCreateTemp
		}
	case "select":
		if into == 3 {
			st.Kind = StmtCreateTemp
		}
	}
	if st.Kind != StmtDeclare {
		st.Hold = false
	}
	return st
}

// scanWords reports whether s contains "advisory" and "temp", ignoring ASCII case. It looks for their rarer
// letters (v, m) eight bytes at a time.
func scanWords(s string) (words mayContain) {
	const (
		ones  = 0x0101010101010101
		highs = 0x8080808080808080
		lower = 0x2020202020202020
		vs    = 'v' * ones
		ms    = 'm' * ones
	)
	i := 2
	for ; i+8 <= len(s); i += 8 {
		_ = s[i+7]
		w := uint64(s[i]) | uint64(s[i+1])<<8 | uint64(s[i+2])<<16 | uint64(s[i+3])<<24 |
			uint64(s[i+4])<<32 | uint64(s[i+5])<<40 | uint64(s[i+6])<<48 | uint64(s[i+7])<<56
		w |= lower
		v, m := w^vs, w^ms
		// The high bit of each byte that is (or, after such a byte, may be) a v, V, m or M.
		for hits := ((v-ones)&^v | (m-ones)&^m) & highs; hits != 0; hits &= hits - 1 {
			scanWord(s, i+bits.TrailingZeros64(hits)/8, &words)
		}
	}
	for ; i+2 <= len(s); i++ {
		scanWord(s, i, &words)
	}
	return words
}

// scanWord checks for "advisory" around a v and for "temp" around an m at s[i].
func scanWord(s string, i int, words *mayContain) {
	switch charClassWord[s[i]] {
	case 'v':
		if i+6 <= len(s) && equalFoldLower(s[i-2:i+6], "advisory") {
			words.advisory = true
		}
	case 'm':
		if i+2 <= len(s) && equalFoldLower(s[i-2:i+2], "temp") {
			words.temp = true
		}
	}
}

var charClassWord = [256]byte{'v': 'v', 'V': 'v', 'm': 'm', 'M': 'm'}

// isKw is IsKeyword for tokens known to lie in src; the length test inlines, so most tokens cost no call.
func isKw(src string, t Token, kw string) bool {
	return t.Kind == Ident && int(t.End-t.Start) == len(kw) && equalFoldLower(src[t.Start:t.End], kw)
}

// lowerWord writes the Ident t lower-cased into buf and returns its length, or 0 when t is no Ident or is
// longer than buf.
func lowerWord(buf *[12]byte, src string, t Token) int {
	n := int(t.End - t.Start)
	if t.Kind != Ident || n > len(buf) {
		return 0
	}
	w := src[t.Start:t.End]
	for i := 0; i < n && i < len(w); i++ {
		buf[i] = lowerTable[w[i]]
	}
	return n
}

// chained reports AND CHAIN (not AND NO CHAIN) in a COMMIT or ROLLBACK.
func chained(h []Token, src string) bool {
	for i := 1; i+1 < len(h); i++ {
		if IsKeyword(src, h[i], "and") {
			return IsKeyword(src, h[i+1], "chain")
		}
	}
	return false
}

func classifySet(st *Stmt, src string, h []Token, value func(int) string) {
	kw := func(i int, w string) bool { return i < len(h) && IsKeyword(src, h[i], w) }
	i := 1
	if kw(i, "local") {
		st.Local = true
		i++
	} else if kw(i, "session") && !kw(i+1, "authorization") && !kw(i+1, "characteristics") {
		i++
	}
	var name string
	v := -1 // index of the value's first token
	switch {
	case kw(i, "transaction"), kw(i, "constraints"), kw(i, "session") && kw(i+1, "characteristics"):
		st.Local = false
		return
	case kw(i, "session") && kw(i+1, "authorization"):
		name, v = "session_authorization", i+2
	case kw(i, "time") && kw(i+1, "zone"):
		name, v = "timezone", i+2
	case kw(i, "xml") && kw(i+1, "option"):
		name, v = "xmloption", i+2
	case kw(i, "schema"):
		name, v = "search_path", i+1
	case kw(i, "names"):
		name, v = "client_encoding", i+1
	case kw(i, "role"):
		name, v = "role", i+1
	default:
		n, j, ok := settingName(src, h, i)
		if !ok {
			st.Local = false
			return
		}
		name = n
		switch {
		case j < len(h) && h[j].Kind == Op && src[h[j].Start:h[j].End] == "=", kw(j, "to"):
			v = j + 1
		case kw(j, "from") && kw(j+1, "current"):
			st.Kind, st.Name = StmtSet, name
			return
		default:
			st.Local = false
			return
		}
	}
	val := value(v)
	switch {
	case val == "" && name == "client_encoding":
		val = "DEFAULT"
	case val == "":
		st.Local = false
		return
	case name == "timezone" && equalFoldLower(val, "local"):
		val = "DEFAULT"
	}
	st.Kind, st.Name, st.Value = StmtSet, name, val
}

// nameAt returns the identifier at h[i] (folded or unquoted).
func nameAt(src string, h []Token, i int) (string, bool) {
	if i >= len(h) || (h[i].Kind != Ident && h[i].Kind != QuotedIdent) {
		return "", false
	}
	return Unquote(src, h[i]), true
}

// settingName reads a configuration parameter name at h[i] for SET, RESET and SHOW: a possibly dotted name, ALL,
// or one of the multi-word spellings. It returns the name and the index after it.
func settingName(src string, h []Token, i int) (string, int, bool) {
	kw := func(i int, w string) bool { return i < len(h) && IsKeyword(src, h[i], w) }
	switch {
	case kw(i, "time") && kw(i+1, "zone"):
		return "timezone", i + 2, true
	case kw(i, "session") && kw(i+1, "authorization"):
		return "session_authorization", i + 2, true
	case kw(i, "transaction") && kw(i+1, "isolation") && kw(i+2, "level"):
		return "transaction_isolation", i + 3, true
	case kw(i, "xml") && kw(i+1, "option"):
		return "xmloption", i + 2, true
	}
	name, ok := nameAt(src, h, i)
	if !ok {
		return "", i, false
	}
	j := i + 1
	plain := h[i].Kind == Ident
	for j+1 < len(h) && h[j].Kind == Punct && src[h[j].Start:h[j].End] == "." &&
		(h[j+1].Kind == Ident || h[j+1].Kind == QuotedIdent) {
		plain = plain && h[j+1].Kind == Ident && h[j].Start == h[j-1].End && h[j+1].Start == h[j].End
		j += 2
	}
	if j == i+1 {
		return name, j, true
	}
	if plain {
		return foldIdent(src[h[i].Start:h[j-1].End]), j, true
	}
	b := make([]byte, 0, 64)
	for k := i; k < j; k += 2 {
		if k > i {
			b = append(b, '.')
		}
		b = append(b, Unquote(src, h[k])...)
	}
	return string(b), j, true
}

// Advisory lock function classes.
const (
	lockTake       = 1
	lockRelease    = 2
	lockReleaseAll = 3
)

// lockFunc reports whether the identifier t names a session-level advisory lock function.
func lockFunc(src string, t Token) uint8 {
	s := src[t.Start:t.End]
	quoted := t.Kind == QuotedIdent
	if quoted {
		if len(s) < 2 || s[0] != '"' || s[len(s)-1] != '"' {
			return 0
		}
		s = s[1 : len(s)-1]
	}
	if len(s) < len("pg_advisory_lock") || len(s) > len("pg_try_advisory_lock_shared") {
		return 0
	}
	var buf [32]byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !quoted && c-'A' < 26 {
			c += 'a' - 'A'
		}
		buf[i] = c
	}
	switch string(buf[:len(s)]) {
	case "pg_advisory_lock", "pg_advisory_lock_shared", "pg_try_advisory_lock", "pg_try_advisory_lock_shared":
		return lockTake
	case "pg_advisory_unlock", "pg_advisory_unlock_shared":
		return lockRelease
	case "pg_advisory_unlock_all":
		return lockReleaseAll
	}
	return 0
}
