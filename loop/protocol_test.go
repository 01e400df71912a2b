package loop

import (
	"testing"

	"github.com/pgshard/pgshard/codec"
)

// The pass-through session on fake connections: what the client sends in, what the server is sent, what the
// client gets back, and what pgshard keeps of it (the expectation queue, statements, settings).

func serverGot(s *server) []byte  { return s.c.(*fakeConn).take() }
func clientGot(cl *client) []byte { return cl.c.(*fakeConn).take() }

func rfq(b []byte, status byte) []byte { return codec.AppendReadyForQuery(b, status) }
func complete(b []byte, tag string) []byte {
	return codec.AppendCommandComplete(b, tag)
}

// parsed has cl prepare sql as name (a Parse and a Sync) on s, which accepts it; what either side was sent
// is taken.
func parsed(cl *client, s *server, name, sql string) {
	clientSends(cl, appendSync(codec.AppendParse(nil, name, sql, nil)))
	serverGot(s)
	answerWith(s, rfq(codec.AppendEmpty(nil, codec.ParseComplete), codec.TxIdle))
	clientGot(cl)
}

func serverError(b []byte, code, msg string) []byte {
	return codec.AppendErrorResponse(b, codec.NewError(code, msg))
}

func TestErrorInABatchSkipsToSync(t *testing.T) {
	cl, s := testPair(t)
	req := codec.AppendParse(nil, "", "SELECT x", nil)
	req = codec.AppendBind(req, "", "", nil, nil, nil)
	req = appendSync(codec.AppendExecute(req, "", 0))
	clientSends(cl, req)
	if got := types(serverGot(s)); got != "PBES" {
		t.Fatalf("server got %q", got)
	}
	// The Parse fails: the server skips the Bind and Execute, and answers the Sync.
	answerWith(s, rfq(serverError(nil, "42703", `column "x" does not exist`), codec.TxIdle))
	if got := types(clientGot(cl)); got != "EZ" {
		t.Fatalf("client got %q, want EZ", got)
	}
	if s.expects.len() != 0 || s.state != serverIdle {
		t.Fatalf("%d expectations left, state %v; want none, idle", s.expects.len(), s.state)
	}
}

func TestNamedParseTheServerRefusedMakesNoStatement(t *testing.T) {
	cl, s := testPair(t)
	clientSends(cl, appendSync(codec.AppendParse(nil, "bad", "SELEC 1", nil)))
	serverGot(s)
	answerWith(s, rfq(serverError(nil, "42601", `syntax error at or near "SELEC"`), codec.TxIdle))
	clientGot(cl)
	if cl.stmts["bad"] != nil {
		t.Fatal("the client still has the statement the server refused")
	}
	clientSends(cl, appendSync(codec.AppendExecute(codec.AppendBind(nil, "", "bad", nil, nil, nil), "", 0)))
	if got := types(serverGot(s)); got != "S" {
		t.Fatalf("server got %q, want only the Sync", got)
	}
	// pgshard's error waits for the server's answer to the Sync, to go out in the same write.
	answerWith(s, codec.AppendReadyForQuery(nil, codec.TxIdle))
	out := clientGot(cl)
	if pe := errorIn(t, out); pe == nil || pe.Code != codec.SQLStateUndefinedPreparedStmt || types(out) != "EZ" {
		t.Fatalf("Bind of the refused statement: client got %q %v, want 26000 from pgshard, then ReadyForQuery", types(out), pe)
	}
}

func TestBindOnAServerWithoutTheStatementPreparesItUnseen(t *testing.T) {
	cl, s := testPair(t)
	parsed(cl, s, "s1", "SELECT 1")
	s.stmts.clear() // as on the next server connection, which never saw it
	clientSends(cl, appendSync(codec.AppendExecute(codec.AppendBind(nil, "", "s1", nil, nil, nil), "", 0)))
	if got := types(serverGot(s)); got != "PBES" {
		t.Fatalf("server got %q, want the Parse in front", got)
	}
	answerWith(s, rfq(complete(codec.AppendEmpty(codec.AppendEmpty(nil, codec.ParseComplete), codec.BindComplete), "SELECT 1"), codec.TxIdle))
	if got := types(clientGot(cl)); got != "2CZ" {
		t.Fatalf("client got %q, want 2CZ (the ParseComplete it did not ask for hidden)", got)
	}
}

func TestCloseOfANamedStatementIsAnsweredByPgshard(t *testing.T) {
	cl, s := testPair(t)
	parsed(cl, s, "s1", "SELECT 1")
	out := clientSends(cl, appendSync(codec.AppendClose(nil, codec.TargetStatement, "s1")))
	if got := types(serverGot(s)); got != "" {
		t.Fatalf("server got %q, want nothing (the shared statement stays for others)", got)
	}
	if got := types(out); got != "3Z" {
		t.Fatalf("client got %q, want 3Z from pgshard", got)
	}
	if cl.stmts["s1"] != nil {
		t.Fatal("the client still has s1")
	}
}

func TestSetOutsideATransactionIsKeptForTheNextServer(t *testing.T) {
	cl, s := testPair(t)
	clientSends(cl, codec.AppendQuery(nil, "SET search_path = app"))
	answerWith(s, rfq(complete(nil, "SET"), codec.TxIdle))
	if got := cl.settings["search_path"]; got == "" {
		t.Fatalf("client settings %v: the SET is not recorded", cl.settings)
	}
}

func TestSetInATransactionThatRollsBackIsUndone(t *testing.T) {
	cl, s := testPair(t)
	clientSends(cl, codec.AppendQuery(nil, "BEGIN; SET search_path = app"))
	answerWith(s, rfq(complete(complete(nil, "BEGIN"), "SET"), codec.TxActive))
	if cl.settings["search_path"] == "" {
		t.Fatal("the SET in the transaction is not seen while it is open")
	}
	clientSends(cl, codec.AppendQuery(nil, "ROLLBACK"))
	answerWith(s, rfq(complete(nil, "ROLLBACK"), codec.TxIdle))
	if got, ok := cl.settings["search_path"]; ok {
		t.Fatalf("search_path %q after ROLLBACK, want the default", got)
	}
}

func TestFailedStatementUndoesTheSetsOfItsQueryString(t *testing.T) {
	cl, s := testPair(t)
	clientSends(cl, codec.AppendQuery(nil, "SET search_path = app; SELECT x"))
	answerWith(s, rfq(serverError(complete(nil, "SET"), "42703", `column "x" does not exist`), codec.TxIdle))
	if got, ok := cl.settings["search_path"]; ok {
		t.Fatalf("search_path %q after the query string failed, want the default", got)
	}
}

func TestSettingsAreReplayedOnAnotherServerUnseen(t *testing.T) {
	cl, s := testPair(t)
	clientSends(cl, codec.AppendQuery(nil, "SET search_path = app"))
	answerWith(s, rfq(complete(nil, "SET"), codec.TxIdle))
	clientGot(cl)
	serverGot(s)
	// The server lost what the client set (a DISCARD ALL by another client's session, say).
	s.settings, s.syncedTo = nil, nil
	clientSends(cl, codec.AppendQuery(nil, "SELECT 1"))
	if got := queries(t, serverGot(s)); len(got) != 1 || got[0] != "SET search_path = app" {
		t.Fatalf("server got %q, want the settings first (the query waits for their answer)", got)
	}
	answerWith(s, rfq(complete(nil, "SET"), codec.TxIdle))
	if got := queries(t, serverGot(s)); len(got) != 1 || got[0] != "SELECT 1" {
		t.Fatalf("server got %q after the replay, want the query", got)
	}
	answerWith(s, rfq(complete(nil, "SELECT 1"), codec.TxIdle))
	if got := types(clientGot(cl)); got != "CZ" {
		t.Fatalf("client got %q, want only its own answer", got)
	}
}

func TestParameterStatusIsPassedOnAndKept(t *testing.T) {
	cl, s := testPair(t)
	clientSends(cl, codec.AppendQuery(nil, "SET application_name = 'x'"))
	answerWith(s, rfq(codec.AppendParameterStatus(complete(nil, "SET"), "application_name", "x"), codec.TxIdle))
	if got := types(clientGot(cl)); got != "CSZ" {
		t.Fatalf("client got %q", got)
	}
	if s.backend.Params["application_name"] != "x" {
		t.Fatalf("server params %v", s.backend.Params)
	}
}

func TestUnknownFrontendMessageIsRefusedNotForwarded(t *testing.T) {
	cl, s := testPair(t)
	out := clientSends(cl, codec.AppendEmpty(nil, '!'))
	if pe := errorIn(t, out); pe == nil || pe.Code != codec.SQLStateProtocolViolation || cl.state != clientClosed {
		t.Fatalf("client got %v, state %v; want 08P01, closed", pe, cl.state)
	}
	if got := serverGot(s); len(got) > 0 {
		t.Fatalf("server was sent %q", types(got))
	}
	if s.state != serverIdle {
		t.Fatalf("server %v, want idle", s.state)
	}
}

func TestTerminateClosesTheClientAndFreesItsServer(t *testing.T) {
	cl, s := testPair(t)
	clientSends(cl, codec.AppendEmpty(nil, codec.Terminate))
	if cl.state != clientClosed || s.state != serverIdle {
		t.Fatalf("client %v, server %v; want closed, idle", cl.state, s.state)
	}
	if got := serverGot(s); len(got) > 0 {
		t.Fatalf("server was sent %q: the client's Terminate is not the server's", types(got))
	}
}

func TestSuspendedPortalAndEmptyQueryEndTheirExecute(t *testing.T) {
	cl, s := testPair(t)
	req := codec.AppendBind(codec.AppendParse(nil, "", "SELECT generate_series(1, 3)", nil), "", "", nil, nil, nil)
	req = codec.AppendExecute(req, "", 1)
	req = appendSync(codec.AppendExecute(req, "", 0))
	clientSends(cl, req)
	serverGot(s)
	resp := codec.AppendEmpty(codec.AppendEmpty(nil, codec.ParseComplete), codec.BindComplete)
	resp = codec.AppendEmpty(codec.AppendDataRowText(resp, []string{"1"}, nil), codec.PortalSuspended)
	resp = complete(codec.AppendDataRowText(codec.AppendDataRowText(resp, []string{"2"}, nil), []string{"3"}, nil), "SELECT 2")
	answerWith(s, rfq(resp, codec.TxIdle))
	if got := types(clientGot(cl)); got != "12DsDDCZ" {
		t.Fatalf("client got %q", got)
	}
	if s.expects.len() != 0 || s.state != serverIdle {
		t.Fatalf("%d expectations left, state %v", s.expects.len(), s.state)
	}
	clientSends(cl, appendSync(codec.AppendExecute(codec.AppendBind(codec.AppendParse(nil, "", "", nil), "", "", nil, nil, nil), "", 0)))
	answerWith(s, rfq(codec.AppendEmptyQueryResponse(codec.AppendEmpty(codec.AppendEmpty(nil, codec.ParseComplete), codec.BindComplete)), codec.TxIdle))
	if got := types(clientGot(cl)); got != "12IZ" || s.state != serverIdle {
		t.Fatalf("client got %q, server %v", got, s.state)
	}
}

func TestNoticesPassThroughWithoutAnsweringAnything(t *testing.T) {
	cl, s := testPair(t)
	clientSends(cl, codec.AppendQuery(nil, "DO $$ BEGIN RAISE NOTICE 'hi'; END $$"))
	notice := codec.AppendNoticeResponse(nil, &codec.Error{Severity: "NOTICE", Code: "00000", Message: "hi"})
	answerWith(s, notice)
	if s.expects.len() != 1 || s.state != serverActive {
		t.Fatalf("after the notice: %d expectations, state %v; want 1, active", s.expects.len(), s.state)
	}
	answerWith(s, rfq(complete(nil, "DO"), codec.TxIdle))
	if got := types(clientGot(cl)); got != "NCZ" {
		t.Fatalf("client got %q", got)
	}
}

func TestFatalFromTheServerEndsTheClientAfterIt(t *testing.T) {
	cl, s := testPair(t)
	clientSends(cl, codec.AppendQuery(nil, "SELECT 1"))
	fatal := codec.AppendErrorResponse(nil, codec.NewFatal("57P01", "terminating connection due to administrator command"))
	answerWith(s, fatal)
	s.ls.closeConn(s.c) // the server closes after its FATAL
	out := clientGot(cl)
	if pe := errorIn(t, out); pe == nil || pe.Code != "57P01" {
		t.Fatalf("client got %v, want the server's own FATAL", pe)
	}
	if types(out) != "E" || cl.state != clientClosed {
		t.Fatalf("client got %q, state %v; want only the server's FATAL, then closed", types(out), cl.state)
	}
}

func TestUnnamedStatementOfAnotherClientOnTheServerIsReplaced(t *testing.T) {
	cl, s := testPair(t)
	parsed(cl, s, "", "SELECT 1")
	s.unnamedOwner = &client{} // another client parsed its own unnamed statement on this connection since
	clientSends(cl, appendSync(codec.AppendExecute(codec.AppendBind(nil, "", "", nil, nil, nil), "", 0)))
	if got := types(serverGot(s)); got != "PBES" {
		t.Fatalf("server got %q, want the client's unnamed Parse in front", got)
	}
	answerWith(s, rfq(complete(codec.AppendEmpty(codec.AppendEmpty(nil, codec.ParseComplete), codec.BindComplete), "SELECT 1"), codec.TxIdle))
	if got := types(clientGot(cl)); got != "2CZ" {
		t.Fatalf("client got %q, want 2CZ", got)
	}
}

// A simple query drops the unnamed statement, on Postgres as through pgshard: a Bind of it after that is the
// server's to refuse, not pgshard's to parse again.
func TestUnnamedStatementDroppedByAQueryIsNotParsedAgain(t *testing.T) {
	cl, s := testPair(t)
	parsed(cl, s, "", "SELECT 1")
	clientSends(cl, codec.AppendQuery(nil, "SELECT 2"))
	answerWith(s, rfq(complete(nil, "SELECT 1"), codec.TxIdle))
	serverGot(s)
	clientSends(cl, appendSync(codec.AppendExecute(codec.AppendBind(nil, "", "", nil, nil, nil), "", 0)))
	if got := types(serverGot(s)); got != "BES" {
		t.Fatalf("server got %q, want the Bind as the client sent it", got)
	}
}

// A Parse the server already holds is answered by pgshard; when the batch goes on to the server and ends in a
// Sync, that ParseComplete waits for the server's answers and goes out in the same write, in front of them.
func TestReplyOfPgshardWaitsForTheServersAnswerToShareItsWrite(t *testing.T) {
	cl, s := testPair(t)
	parsed(cl, s, "s1", "SELECT 1")
	fc := cl.c.(*fakeConn)
	batch := codec.AppendParse(nil, "s1b", "SELECT 1", nil) // the same text: the server holds it
	batch = codec.AppendExecute(codec.AppendBind(batch, "", "s1b", nil, nil, nil), "", 0)
	if got := clientSends(cl, appendSync(batch)); len(got) != 0 {
		t.Fatalf("client got %q before the server answered, want pgshard's ParseComplete held", types(got))
	}
	if got := types(serverGot(s)); got != "BES" {
		t.Fatalf("server got %q, want the Bind, Execute and Sync", got)
	}
	writes := fc.writes
	answerWith(s, rfq(complete(codec.AppendEmpty(nil, codec.BindComplete), "SELECT 0"), codec.TxIdle))
	if got := types(clientGot(cl)); got != "12CZ" || fc.writes != writes+1 {
		t.Fatalf("client got %q in %d writes, want 12CZ in one", got, fc.writes-writes)
	}
	// A batch that does not end in a Sync (the client waits for the ParseComplete itself) is answered at once.
	clientSends(cl, appendSync(codec.AppendParse(nil, "s2", "SELECT 2", nil)))
	serverGot(s)
	answerWith(s, rfq(codec.AppendEmpty(nil, codec.ParseComplete), codec.TxIdle))
	clientGot(cl)
	if got := types(clientSends(cl, codec.AppendEmpty(codec.AppendParse(nil, "s2b", "SELECT 2", nil), codec.Flush))); got != "1" {
		t.Fatalf("Parse and Flush: client got %q at once, want its ParseComplete", got)
	}
}

// After pgshard refused a message, the rest of the batch is skipped up to its Sync, which ends the skipping,
// also when no server is attached and pgshard answers the Sync itself: a Close in it gets no CloseComplete,
// and the client's next query is not skipped (the wire fuzzer's seed 1796667581116143040, case 709).
func TestBatchSkippedToSyncWithoutAServer(t *testing.T) {
	cl, _ := testPair(t)
	cl.skipToSync = true
	batch := appendSync(codec.AppendClose(nil, codec.TargetStatement, "never"))
	if used := cl.answerLocally(batch); used != len(batch) {
		t.Fatalf("used %d of %d bytes", used, len(batch))
	}
	if got := types(cl.out); got != "Z" || cl.skipToSync {
		t.Fatalf("answered %q, still skipping %v: want only ReadyForQuery, and the skip over", got, cl.skipToSync)
	}
}
