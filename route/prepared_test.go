package route

import (
	"slices"
	"strconv"
	"testing"

	"github.com/pgshard/pgshard/codec"
)

func text(vals ...string) Params {
	p := Params{}
	for _, v := range vals {
		p.Values = append(p.Values, []byte(v))
	}
	return p
}

func TestBind(t *testing.T) {
	s := mustSchema(t, testDB())
	e := newExpander(t, s)
	r := NewRouter(s, 100)
	k := func(shard int) string { return strconv.FormatInt(e.pos[shard][0], 10) }
	uuid := "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"
	uuidBin := []byte{0xa0, 0xee, 0xbc, 0x99, 0x9c, 0x0b, 0x4e, 0xf8, 0xbb, 0x6d, 0x6b, 0xb9, 0xbd, 0x38, 0x0a, 0x11}
	cases := []struct {
		name   string
		sql    string
		params Params
		want   want
	}{
		{"text param", "SELECT * FROM accounts WHERE aid = $1", text(k(1)), on(1)},
		{"other value", "SELECT * FROM accounts WHERE aid = $1", text(k(3)), on(3)},
		{"binary param", "SELECT * FROM accounts WHERE aid = $1", Params{Values: [][]byte{int8Bin(e.pos[2][0])}, Formats: []int16{1}}, on(2)},
		{"formats one per value", "SELECT * FROM accounts WHERE bid = $1 AND aid = $2", Params{Values: [][]byte{[]byte("x"), int8Bin(e.pos[0][0])}, Formats: []int16{0, 1}}, on(0)},
		{"cast param", "SELECT * FROM accounts WHERE aid = $1::bigint", text(k(2)), on(2)},
		{"second param", "UPDATE accounts SET abalance = abalance + $1 WHERE aid = $2", text("5", k(0)), writeOn(0)},
		{"NULL param", "SELECT * FROM accounts WHERE aid = $1", Params{Values: [][]byte{nil}}, anyShard()},
		{"missing param", "SELECT * FROM accounts WHERE aid = $2", text(k(1)), allShards()},
		{"IN params", "SELECT * FROM accounts WHERE aid IN ($1, $2)", text(k(1), k(3)), on(1, 3)},
		{"= ANY param", "SELECT * FROM accounts WHERE aid = ANY($1)", text("{1,2}"), allShards()},
		{"param and literal", "SELECT * FROM accounts WHERE aid = $1 AND aid = " + k(1), text(k(1)), on(1)},
		{"ORDER BY with key", "SELECT * FROM accounts WHERE aid = $1 ORDER BY abalance LIMIT $2", text(k(2), "10"), on(2)},
		{"ORDER BY with IN", "SELECT * FROM accounts WHERE aid IN ($1, $2) ORDER BY abalance", text(k(2), k(1)), on(1, 2)},
		{"ORDER BY with IN on one shard", "SELECT * FROM accounts WHERE aid IN ($1, $2) ORDER BY abalance", text(k(2), strconv.FormatInt(e.pos[2][1], 10)), on(2)},
		{"bad value", "SELECT * FROM accounts WHERE aid = $1", text("x"), refused(codec.SQLStateInvalidTextRepresentation, "")},
		{"uuid text", "SELECT * FROM devices WHERE id = $1", text(uuid), want{shards: shardOfText(t, s, "devices", uuid)}},
		{"uuid binary", "SELECT * FROM devices WHERE id = $1", Params{Values: [][]byte{uuidBin}, Formats: []int16{1}}, want{shards: shardOfText(t, s, "devices", uuid)}},
		{"text key", "SELECT * FROM users WHERE name = $1", text("o'brien"), want{shards: shardOfText(t, s, "users", "o'brien")}},
		{"insert", "INSERT INTO accounts (aid, abalance) VALUES ($1, $2)", text(k(3), "0"), writeOn(3)},
		{"insert rows of one shard", "INSERT INTO accounts (aid) VALUES ($1), ($2)", text(k(3), strconv.FormatInt(e.pos[3][1], 10)), writeOn(3)},
		{"insert rows of several shards", "INSERT INTO accounts (aid) VALUES ($1), ($2)", text(k(3), k(0)),
			writeOn(0, 3)}, // split: TestBindSplitsRowsOfSeveralShards
		{"insert NULL key", "INSERT INTO accounts (aid) VALUES ($1)", Params{Values: [][]byte{nil}}, want{any: true, write: true}},
		{"hint in the statement", "/* pgshard: shard=1 */ SELECT * FROM accounts WHERE aid = $1", text(k(2)), on(1)},
		{"bad hint in the statement", "/* pgshard: shard= */ SELECT 1", Params{}, refused(badValue, "malformed pgshard comment")},
		{"two statements", "SELECT 1; SELECT 2", Params{}, anyShard()},
		{"syntax error", "SELEC $1", text("1"), anyShard()},
		{"BEGIN", "BEGIN", Params{}, anyShard()},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := r.Prepare(c.sql)
			c.want.check(t, c.sql, r.Bind(p, c.params, NoSession))
			// Another router (another loop) binding the same plan decides the same.
			c.want.check(t, c.sql+" (other router)", NewRouter(s, 1).Bind(p, c.params, NoSession))
			if p2 := r.Prepare(c.sql); p2 != p {
				t.Errorf("Prepare of the same text gave another plan")
			}
		})
	}
	if d := r.Bind(nil, Params{}, NoSession); !d.Any {
		t.Errorf("Bind(nil) = %s", describe(d))
	}
	// Session settings apply to Bind too.
	p := r.Prepare("SELECT * FROM accounts")
	on(2).check(t, "session shard", r.Bind(p, Params{}, Session{Shard: 2}))
	on(1).check(t, "session key", r.Bind(p, Params{}, Session{Shard: -1, Key: k(1), HasKey: true}))
}

func TestPrepareKeepsItsText(t *testing.T) {
	s := mustSchema(t, testDB())
	e := newExpander(t, s)
	r := NewRouter(s, 100)
	// The caller's text may live in a buffer that is reused: the plan must have its own copy.
	buf := []byte(e.sql("SELECT * FROM accounts WHERE aid = {k1}"))
	p := r.Prepare(string(buf))
	for i := range buf {
		buf[i] = ' '
	}
	on(1).check(t, "after the buffer changed", r.Bind(p, Params{}, NoSession))
}

func TestSplitInsert(t *testing.T) {
	s := mustSchema(t, testDB())
	e := newExpander(t, s)
	r := NewRouter(s, 100)
	cases := []struct {
		sql    string
		pieces map[int]string
	}{
		{
			"INSERT INTO accounts (aid, abalance) VALUES ({k1}, 1), ({k2}, 2), ({K1}, 3)",
			map[int]string{
				1: "INSERT INTO accounts (aid, abalance) VALUES ({k1}, 1), ({K1}, 3)",
				2: "INSERT INTO accounts (aid, abalance) VALUES ({k2}, 2)",
			},
		},
		{
			"/* c */ INSERT INTO accounts (aid, note) VALUES\n  ({k0}, 'a (b), c'),\n  ({k3}, $$)$$) ON CONFLICT (aid) DO UPDATE SET note = excluded.note RETURNING aid, (note);",
			map[int]string{
				0: "/* c */ INSERT INTO accounts (aid, note) VALUES\n  ({k0}, 'a (b), c') ON CONFLICT (aid) DO UPDATE SET note = excluded.note RETURNING aid, (note);",
				3: "/* c */ INSERT INTO accounts (aid, note) VALUES\n  ({k3}, $$)$$) ON CONFLICT (aid) DO UPDATE SET note = excluded.note RETURNING aid, (note);",
			},
		},
		{
			"WITH x AS (SELECT 1) INSERT INTO accounts (aid, t) VALUES ({k2}, (SELECT 1)), ({k3}, now())",
			map[int]string{
				2: "WITH x AS (SELECT 1) INSERT INTO accounts (aid, t) VALUES ({k2}, (SELECT 1))",
				3: "WITH x AS (SELECT 1) INSERT INTO accounts (aid, t) VALUES ({k3}, now())",
			},
		},
		{
			"INSERT INTO accounts (aid) VALUES (NULL), ({k3}), ({k2})",
			map[int]string{
				2: "INSERT INTO accounts (aid) VALUES (NULL), ({k2})",
				3: "INSERT INTO accounts (aid) VALUES ({k3})",
			},
		},
		{
			"insert into accounts(aid)values({k0}),({k1}),({k2}),({k3})",
			map[int]string{
				0: "insert into accounts(aid)values({k0})",
				1: "insert into accounts(aid)values({k1})",
				2: "insert into accounts(aid)values({k2})",
				3: "insert into accounts(aid)values({k3})",
			},
		},
	}
	for _, c := range cases {
		sql := e.sql(c.sql)
		for round := 0; round < 2; round++ { // a miss, then a hit
			d := r.Query(sql, NoSession)
			if d.Err != nil || d.Any || !d.Write {
				t.Fatalf("%s: %s", sql, describe(d))
			}
			var m uint64
			for sh := range c.pieces {
				m |= 1 << uint(sh)
			}
			if d.Shards != m || len(d.Split) != len(c.pieces) {
				t.Errorf("%s: got %s", sql, describe(d))
				continue
			}
			for _, p := range sortedPieces(d) {
				if want := e.sql(c.pieces[p.Shard]); p.SQL != want {
					t.Errorf("piece %d of %s:\n got %s\nwant %s", p.Shard, sql, p.SQL, want)
				}
				// Each piece is valid SQL and routes to its own shard alone.
				d2 := NewRouter(s, 10).Query(p.SQL, NoSession)
				if d2.Err != nil || d2.Shards != 1<<uint(p.Shard) || len(d2.Split) != 0 {
					t.Errorf("piece %d %q routes to %s", p.Shard, p.SQL, describe(d2))
				}
			}
		}
	}
}

// A Bind of a multi-row INSERT whose rows belong to several shards is split as a Query's: one INSERT per
// shard, its $n numbered from $1, and the Bind's values each piece takes.
func TestBindSplitsRowsOfSeveralShards(t *testing.T) {
	s := mustSchema(t, testDB())
	e := newExpander(t, s)
	r := NewRouter(s, 100)
	k := func(shard int) string { return strconv.FormatInt(e.pos[shard][0], 10) }
	p := r.Prepare("INSERT INTO accounts (aid, abalance) VALUES ($1, $3), ($2, $3) ON CONFLICT (aid) DO UPDATE SET abalance = $4 RETURNING aid, $5::text")
	d := r.Bind(p, Params{Values: [][]byte{[]byte(k(3)), []byte(k(0)), []byte("7"), []byte("8"), []byte("x")}}, NoSession)
	if d.Err != nil || d.Shards != 1<<3|1<<0 || len(d.Split) != 2 {
		t.Fatalf("%+v, want split over shards 0 and 3", d)
	}
	want := map[int]Piece{
		0: {SQL: "INSERT INTO accounts (aid, abalance) VALUES ($1, $2) ON CONFLICT (aid) DO UPDATE SET abalance = $3 RETURNING aid, $4::text", Params: []int{1, 2, 3, 4}},
		3: {SQL: "INSERT INTO accounts (aid, abalance) VALUES ($1, $2) ON CONFLICT (aid) DO UPDATE SET abalance = $3 RETURNING aid, $4::text", Params: []int{0, 2, 3, 4}},
	}
	for _, pc := range d.Split {
		w := want[pc.Shard]
		if pc.SQL != w.SQL || !slices.Equal(pc.Params, w.Params) {
			t.Errorf("shard %d: %q %v, want %q %v", pc.Shard, pc.SQL, pc.Params, w.SQL, w.Params)
		}
	}
	// A $n in a string or a comment is not a parameter.
	if got, params := renumber("INSERT INTO t VALUES ($7, '$3', $$ $2 $$) /* $1 */ RETURNING $7"); got != "INSERT INTO t VALUES ($1, '$3', $$ $2 $$) /* $1 */ RETURNING $1" || !slices.Equal(params, []int{6}) {
		t.Errorf("renumber: %q %v", got, params)
	}
}
