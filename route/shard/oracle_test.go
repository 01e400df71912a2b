package shard

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgshard/pgshard/config"
	"github.com/pgshard/pgshard/internal/pgtest"
)

// oracleModuli are the shard counts checked against Postgres's own hash partitioning.
var oracleModuli = []int{2, 3, 4, 5, 8}

// oracleValues fills the table vals_<name>(k) with the values a type is checked on.
var oracleValues = []struct {
	name, typ string
	fill      string
}{
	// Every smallint there is.
	{"int2", "smallint", `INSERT INTO vals_int2 SELECT generate_series(-32768, 32767)`},
	{"int4", "integer", `
		INSERT INTO vals_int4 SELECT generate_series(-3000, 3000);
		INSERT INTO vals_int4 SELECT -2147483648 + i FROM generate_series(0, 500) i;
		INSERT INTO vals_int4 SELECT 2147483647 - i FROM generate_series(0, 500) i;
		INSERT INTO vals_int4 SELECT v + d FROM unnest(ARRAY[-32769, 32768, -65536, 65536, -16777216, 16777216]) v,
			generate_series(-5, 5) d;
		INSERT INTO vals_int4 SELECT ('x' || substr(md5('int4' || i), 1, 8))::bit(32)::integer FROM generate_series(1, 5000) i`},
	{"int8", "bigint", `
		INSERT INTO vals_int8 SELECT generate_series(-3000, 3000);
		INSERT INTO vals_int8 SELECT -9223372036854775808 + i FROM generate_series(0, 300) i;
		INSERT INTO vals_int8 SELECT 9223372036854775807 - i FROM generate_series(0, 300) i;
		INSERT INTO vals_int8 SELECT v + d FROM unnest(ARRAY[-2147483648, 2147483647, -4294967296, 4294967296,
			-32768, 32767, 1099511627776, -1099511627776]::bigint[]) v, generate_series(-20, 20) d;
		INSERT INTO vals_int8 SELECT ('x' || md5('int8' || i))::bit(64)::bigint FROM generate_series(1, 5000) i;
		INSERT INTO vals_int8 SELECT ('x' || md5('int8s' || i))::bit(64)::bigint >> (i % 63) FROM generate_series(1, 2000) i`},
	{"text", "text", textFill("text")},
	{"varchar", "varchar", textFill("varchar")},
	{"uuid", "uuid", `
		INSERT INTO vals_uuid SELECT gen_random_uuid() FROM generate_series(1, 5000);
		INSERT INTO vals_uuid SELECT md5('uuid' || i)::uuid FROM generate_series(1, 2000) i;
		INSERT INTO vals_uuid VALUES ('00000000-0000-0000-0000-000000000000'), ('ffffffff-ffff-ffff-ffff-ffffffffffff'),
			('a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11')`},
}

// textFill gives text keys of every length from 0 to past several 12-byte blocks, ASCII and not.
func textFill(table string) string {
	return strings.ReplaceAll(`
		INSERT INTO vals_T VALUES (''), (' '), ('a'), ('A'), ('é'), ('日本語'), ('🐘'), ('fr'), ('O''Brien'), (E'tab\there'),
			(E'new\nline'), ('naïve café'), ('ß'), ('Ω≈ç√'), (repeat('x', 1000)), (repeat('ü', 333)),
			('abc'), ('hello world!'), ('a0eebc99');
		INSERT INTO vals_T SELECT substr(md5('a' || i), 1, i % 33) FROM generate_series(1, 3000) i;
		INSERT INTO vals_T SELECT substr(repeat(md5('b' || i), 4), 1, i % 120) FROM generate_series(1, 2000) i;
		INSERT INTO vals_T SELECT substr(repeat('é日ü🐘a', 10), 1 + i % 7, i % 31) FROM generate_series(1, 1000) i;
		INSERT INTO vals_T SELECT chr(i) FROM generate_series(1, 2000) i WHERE i NOT BETWEEN 55296 AND 57343;
		INSERT INTO vals_T SELECT i::text FROM generate_series(-500, 500) i`, "vals_T", "vals_"+table)
}

// TestHashMatchesPostgres checks, for every key type, that ShardText and ShardBinary put each value on the
// shard Postgres's hash partitioning puts it in, for several moduli, and that the Hash functions give the
// 64-bit hash Postgres's own extended hash functions give.
func TestHashMatchesPostgres(t *testing.T) {
	c := pgtest.Start(t, pgtest.Options{})
	conn := c.Connect(t, "postgres", pgtest.Superuser, "")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var version string
	if err := conn.QueryRow(ctx, "SHOW server_version").Scan(&version); err != nil {
		t.Fatal(err)
	}
	t.Logf("Postgres %s", version)
	var encoding string
	if err := conn.QueryRow(ctx, "SHOW server_encoding").Scan(&encoding); err != nil {
		t.Fatal(err)
	}
	if encoding != "UTF8" {
		t.Fatalf("server_encoding is %s, the test needs UTF8", encoding)
	}
	exec := func(sql string) {
		t.Helper()
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	for _, tc := range oracleValues {
		t.Run(tc.name, func(t *testing.T) {
			exec(fmt.Sprintf("CREATE TABLE vals_%s (k %s NOT NULL)", tc.name, tc.typ))
			exec(tc.fill)
			for _, n := range oracleModuli {
				tbl := fmt.Sprintf("h_%s_%d", tc.name, n)
				exec(fmt.Sprintf("CREATE TABLE %s (k %s) PARTITION BY HASH (k)", tbl, tc.typ))
				for i := 0; i < n; i++ {
					exec(fmt.Sprintf("CREATE TABLE %s_p%d PARTITION OF %s FOR VALUES WITH (MODULUS %d, REMAINDER %d)", tbl, i, tbl, n, i))
				}
				exec(fmt.Sprintf("INSERT INTO %s SELECT k FROM vals_%s", tbl, tc.name))
			}
			compared := 0
			for _, n := range oracleModuli {
				compared += checkPartitions(ctx, t, conn, tc.name, tc.typ, n)
			}
			checkRawHashes(ctx, t, conn, tc.name, tc.typ)
			t.Logf("%s: %d values, %d (value, modulus) placements agree with Postgres in text and binary form",
				tc.typ, compared/len(oracleModuli), compared)
		})
	}
}

// checkPartitions reads back every row of h_<name>_<n> with the partition Postgres chose, and maps its key
// in text and in binary form. It returns the number of rows compared.
func checkPartitions(ctx context.Context, t *testing.T, conn *pgx.Conn, name, typ string, n int) int {
	t.Helper()
	tbl := fmt.Sprintf("h_%s_%d", name, n)
	m, err := NewMapper(&config.ShardedTable{Table: tbl, Column: "k", Type: typ, Mapping: config.MappingHash}, n)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := conn.Query(ctx, fmt.Sprintf("SELECT k, k::text, tableoid::regclass::text FROM %s", tbl),
		pgx.QueryResultFormats{pgx.BinaryFormatCode, pgx.TextFormatCode, pgx.TextFormatCode})
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	count, bad := 0, 0
	for rows.Next() {
		raw := rows.RawValues()
		bin, text, part := raw[0], raw[1], string(raw[2])
		want, err := strconv.Atoi(part[strings.LastIndex(part, "_p")+2:])
		if err != nil {
			t.Fatalf("partition %q: %v", part, err)
		}
		count++
		got, perr := m.ShardText(text)
		if perr != nil || got != want {
			bad++
			if bad <= 10 {
				t.Errorf("%s %q, modulus %d: ShardText gives shard %d (%v), Postgres put it in remainder %d", typ, text, n, got, perr, want)
			}
		}
		got, perr = m.ShardBinary(bin)
		if perr != nil || got != want {
			bad++
			if bad <= 10 {
				t.Errorf("%s %q (binary %x), modulus %d: ShardBinary gives shard %d (%v), Postgres put it in remainder %d", typ, text, bin, n, got, perr, want)
			}
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if bad > 0 {
		t.Errorf("%s modulus %d: %d disagreements in %d rows", typ, n, bad, count)
	}
	if count < 1000 {
		t.Errorf("%s modulus %d: only %d rows", typ, n, count)
	}
	return count
}

// checkRawHashes compares the Hash functions with Postgres's extended hash functions on all 64 bits.
func checkRawHashes(ctx context.Context, t *testing.T, conn *pgx.Conn, name, typ string) {
	t.Helper()
	fn := map[string]string{"smallint": "hashint2extended", "integer": "hashint4extended", "bigint": "hashint8extended",
		"text": "hashtextextended", "varchar": "hashtextextended", "uuid": "uuid_hash_extended"}[typ]
	seed := int64(partitionSeed)
	rows, err := conn.Query(ctx, fmt.Sprintf("SELECT k::text, %s(k, $1) FROM vals_%s", fn, name), seed)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	typK, _ := ParseType(typ)
	bad := 0
	for rows.Next() {
		var k string
		var h int64
		if err := rows.Scan(&k, &h); err != nil {
			t.Fatal(err)
		}
		var got uint64
		switch {
		case typK.IsInt():
			v, _ := strconv.ParseInt(k, 10, 64)
			got = HashInt(typK, v)
		case typK == UUID:
			u, _ := parseUUID([]byte(k))
			got = HashUUID(u)
		default:
			got = HashBytes([]byte(k))
		}
		if want := uint64(h) + combineConst; got != want {
			bad++
			if bad <= 5 {
				t.Errorf("%s(%q): Postgres %#x (combined %#x), we %#x", fn, k, uint64(h), want, got)
			}
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
}

// oddInputs are integer literals in forms Postgres's input functions accept or refuse.
var oddInputs = []string{
	"0", "-0", "+0", "007", "-007", " 42", "42 ", "\t42\n", " \r\n\v\f-42 ", "+42", "--42", "+-42", "- 42", "4 2",
	"", " ", "-", "+", "abc", "42abc", "0x", "0x1F", "0X1f", "-0x80", "0o17", "0O17", "0b101", "0B101", "0b2",
	"1_000", "1__000", "_1000", "1000_", "0x_1F", "0x1F_", "0b_1", "1e3", "1.0", "١٢", "4\u00a02",
	"32767", "32768", "-32768", "-32769", "2147483647", "2147483648", "-2147483648", "-2147483649",
	"9223372036854775807", "9223372036854775808", "-9223372036854775808", "-9223372036854775809",
	"99999999999999999999999", "0000000000000000000000000000001", "99999999999999999999x", "0x7FFFFFFFFFFFFFFF",
	"0x8000000000000000", "-0x8000000000000000", "0x7FFF", "0x8000", "-0x8000",
}

// oddUUIDs are uuid literals in forms uuid_in accepts or refuses.
var oddUUIDs = []string{
	"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11", "{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}",
	"a0eebc999c0b4ef8bb6d6bb9bd380a11", "a0ee-bc99-9c0b-4ef8-bb6d-6bb9-bd38-0a11", "{a0eebc999c0b4ef8bb6d6bb9bd380a11}",
	"a0eebc99-9c0b4ef8-bb6d6bb9-bd380a11", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a111",
	"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11-", "-a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "a0eebc99--9c0b-4ef8-bb6d-6bb9bd380a11",
	"a0eeb-c99-9c0b-4ef8-bb6d-6bb9bd380a11", "{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}",
	" a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11 ", "g0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
	"", "{}", "00000000-0000-0000-0000-000000000000",
}

// pg16Syntax tells whether s uses integer syntax new in Postgres 16 (prefixes, underscores), which older
// servers refuse and we accept.
func pg16Syntax(s string) bool {
	l := strings.ToLower(s)
	return strings.Contains(l, "_") || strings.Contains(l, "0x") || strings.Contains(l, "0o") || strings.Contains(l, "0b")
}

// TestInputMatchesPostgres checks that ShardText reads odd integer and uuid literals as Postgres does: the
// same value (so the same shard) when Postgres accepts one, the same SQLSTATE when it refuses it.
func TestInputMatchesPostgres(t *testing.T) {
	c := pgtest.Start(t, pgtest.Options{})
	conn := c.Connect(t, "postgres", pgtest.Superuser, "")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var num int
	if err := conn.QueryRow(ctx, "SELECT current_setting('server_version_num')::int").Scan(&num); err != nil {
		t.Fatal(err)
	}
	check := func(typ, in string) {
		t.Helper()
		m, err := NewMapper(&config.ShardedTable{Table: "t", Column: "k", Type: typ, Mapping: config.MappingHash}, 7)
		if err != nil {
			t.Fatal(err)
		}
		var canonical string
		pgErr := conn.QueryRow(ctx, fmt.Sprintf("SELECT $1::text::%s::text", typ), in).Scan(&canonical)
		got, ourErr := m.ShardText([]byte(in))
		if pgErr != nil {
			var code string
			if e, ok := pgErr.(interface{ SQLState() string }); ok {
				code = e.SQLState()
			} else {
				t.Fatalf("%s %q: %v", typ, in, pgErr)
			}
			if num < 160000 && pg16Syntax(in) {
				return // Postgres 16 syntax this older server does not know: we read it as Postgres 16 does
			}
			if ourErr == nil {
				t.Errorf("%s %q: Postgres refuses it (%s, %v), we map it to shard %d", typ, in, code, pgErr, got)
			} else if ourErr.Code != code {
				t.Errorf("%s %q: Postgres refuses it with %s (%v), we with %s (%s)", typ, in, code, pgErr, ourErr.Code, ourErr.Message)
			}
			return
		}
		if ourErr != nil {
			t.Errorf("%s %q: Postgres reads %q, we refuse it: %v", typ, in, canonical, ourErr)
			return
		}
		want, wantErr := m.ShardText([]byte(canonical))
		if wantErr != nil || got != want {
			t.Errorf("%s %q: Postgres reads %q (shard %d), we map it to shard %d", typ, in, canonical, want, got)
		}
	}
	for _, typ := range []string{"smallint", "integer", "bigint"} {
		for _, in := range oddInputs {
			check(typ, in)
		}
	}
	for _, in := range oddUUIDs {
		check("uuid", in)
	}
}
