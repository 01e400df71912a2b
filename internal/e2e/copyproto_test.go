package e2e

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
)

// The edges of COPY FROM STDIN in the protocol, answered through pgshard as Postgres answers them, message for
// message: a Sync sent with the statement that turns out to be a COPY is ignored by the server (libpq sends
// Execute and Sync, then the data, then CopyDone and Sync), so pgshard must not wait for its answer (it used to:
// its next extended query found the answers one off and the connection was dropped as lost); a message other
// than the COPY's data in the middle of it ends the session (Postgres 15 says the protocol synchronization was
// lost; pgshard's sharded COPY used to wait forever); after an error, a COPY up to the Sync is ignored.
func TestCopyProtocolLikePostgres(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("starts Postgres")
	}
	pg := startFuzzShards(t)
	type target struct {
		name string
		dsn  string
	}
	targets := []target{{"postgres", pg.DSN("app_0", "app", "secret")}}
	for _, mode := range []string{"transaction", "session"} {
		cfg := fuzzConfig(mode, pg)
		p := StartProxy(t, strings.Replace(cfg, "size: 3", "size: 1", 1))
		for _, db := range []string{"plain", "sharded"} {
			targets = append(targets, target{mode + "/" + db, p.DSN(db, "trusted", "")})
		}
	}
	extended := func(sql string) []pgproto3.FrontendMessage {
		return []pgproto3.FrontendMessage{&pgproto3.Parse{Query: sql}, &pgproto3.Bind{}, &pgproto3.Describe{ObjectType: 'P'},
			&pgproto3.Execute{}, &pgproto3.Sync{}}
	}
	data := &pgproto3.CopyData{Data: []byte("5\tx\n")}
	// Into a sharded table pgshard takes COPY only as a Query: through Bind it is refused, and the client's data
	// and Syncs are then answered as Postgres answers them after a failed Bind.
	refused := func(n int) string {
		return "ParseComplete ErrorResponse(ERROR 0A000 COPY FROM STDIN into sharded table fuzz through the extended query protocol is not supported) " +
			"ReadyForQuery(I) ReadyForQuery(I) ParseComplete BindComplete RowDescription DataRow[" + strconv.Itoa(n) + "] CommandComplete(SELECT 1) ReadyForQuery(I)"
	}
	cases := []struct {
		name    string
		msgs    []pgproto3.FrontendMessage
		sharded string // what a sharded database answers, when not what Postgres does
	}{
		{"extended COPY, then an extended query", append(append(extended("COPY fuzz FROM STDIN"), data, &pgproto3.CopyDone{}, &pgproto3.Sync{}),
			extended("SELECT 1")...), refused(1)},
		{"extended COPY failed by the client", append(append(extended("COPY fuzz FROM STDIN"), data, &pgproto3.CopyFail{Message: "no"}, &pgproto3.Sync{}),
			extended("SELECT 2")...), refused(2)},
		{"a Query in the middle of COPY's data", []pgproto3.FrontendMessage{&pgproto3.Query{String: "COPY fuzz FROM STDIN"}, &pgproto3.Sync{},
			&pgproto3.Query{String: "SELECT 3"}}, ""},
		// After an error the server ignores everything up to Sync, a COPY too. (A sharded COPY that waited for the
		// error's answer was left half set up, and its catalog query went in front of the Sync: silence.)
		// A COPY one shard takes whole (SET pgshard.shard names it) passes through, its data with it, and what
		// interrupts it ends the session as Postgres ends it. (In session mode, where the client holds the
		// server of each shard it used, its data went to another one, and the client waited forever.)
		{"a COPY one shard takes", []pgproto3.FrontendMessage{&pgproto3.Query{String: "SELECT 1"}, &pgproto3.Query{String: "SELECT 2"},
			&pgproto3.Query{String: "SET pgshard.shard = 1"}, &pgproto3.Query{String: "COPY fuzz FROM STDIN"}, data, &pgproto3.CopyDone{}}, ""},
		{"a Query in the middle of the data of a COPY one shard takes", []pgproto3.FrontendMessage{&pgproto3.Query{String: "SELECT 1"},
			&pgproto3.Query{String: "SELECT 2"}, &pgproto3.Query{String: "SET pgshard.shard = 1"},
			&pgproto3.Query{String: "COPY fuzz FROM STDIN"}, &pgproto3.Flush{}, &pgproto3.Sync{}, &pgproto3.Query{String: "SELECT 7"}}, ""},
		// What follows the end of a COPY into a sharded table is answered after the COPY's CommandComplete, which
		// pgshard gives once every shard committed the transaction it ran the COPY in. (A Bind of an unknown
		// statement was refused before it, and the client then waited forever.)
		{"a Bind of an unknown statement after a COPY", []pgproto3.FrontendMessage{&pgproto3.Query{String: "COPY fuzz FROM STDIN"},
			data, &pgproto3.CopyDone{}, &pgproto3.Bind{PreparedStatement: "s2"}, &pgproto3.Sync{}, &pgproto3.Query{String: "SELECT 8"}}, ""},
		{"a Describe and a Close of neither a statement nor a portal", []pgproto3.FrontendMessage{&pgproto3.Describe{ObjectType: 'X'},
			&pgproto3.Sync{}, &pgproto3.Close{ObjectType: 'Y'}, &pgproto3.Sync{}, &pgproto3.Query{String: "SELECT 6"}}, ""},
		{"a COPY after an error, before Sync", []pgproto3.FrontendMessage{&pgproto3.Execute{Portal: "nosuch"},
			&pgproto3.Query{String: "SHOW ALL"}, &pgproto3.Query{String: "COPY fuzz FROM STDIN"}, data, &pgproto3.Sync{},
			&pgproto3.Query{String: "SELECT 5"}}, ""},
	}
	ctx := Ctx(t, 2*time.Minute)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var want string
			for _, tg := range targets {
				got, err := transcript(ctx, tg.dsn, c.msgs)
				if err != nil {
					t.Fatalf("%s: %v", tg.name, err)
				}
				if tg.name == "postgres" {
					want = got
					continue
				}
				want := want
				if strings.HasSuffix(tg.name, "/sharded") && c.sharded != "" {
					want = c.sharded
				}
				if got != want {
					t.Errorf("through pgshard, %s:\n got  %s\n want %s", tg.name, got, want)
				}
			}
			// The pools (size 1) are whole: the server connection went back clean.
			for _, tg := range targets[1:] {
				if got, err := transcript(ctx, tg.dsn, []pgproto3.FrontendMessage{&pgproto3.Query{String: "SELECT 4"}}); err != nil ||
					!strings.Contains(got, "DataRow[4]") {
					t.Errorf("%s: a new client after the case: %s %v", tg.name, got, err)
				}
			}
		})
	}
}

// transcript logs in to dsn, sends msgs and a last query in one write, and describes what comes back until the
// last query's answer (left out) or the end of the connection.
func transcript(ctx context.Context, dsn string, msgs []pgproto3.FrontendMessage) (string, error) {
	pc, err := pgconn.Connect(ctx, dsn)
	if err != nil {
		return "", err
	}
	hc, err := pc.Hijack()
	if err != nil {
		return "", err
	}
	conn := hc.Conn
	defer conn.Close()
	fe := pgproto3.NewFrontend(conn, conn)
	for _, m := range msgs {
		fe.Send(m)
	}
	fe.Send(&pgproto3.Query{String: "SELECT 'transcript ends'"})
	if err := fe.Flush(); err != nil {
		return "", err
	}
	var got []string
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		m, err := fe.Receive()
		if err != nil {
			if !isEOF(err) {
				return strings.Join(got, " "), fmt.Errorf("receive: %w", err)
			}
			return strings.Join(append(got, "EOF"), " "), nil
		}
		got = append(got, describe(m))
		if n := len(got); n >= 4 && got[n-3] == "DataRow[transcript ends]" && got[n-1] == "ReadyForQuery(I)" {
			return strings.Join(got[:n-4], " "), nil
		}
	}
}
