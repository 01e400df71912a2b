package e2e

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
)

// The data of the differential test (differential_test.go): the same rows go into the reference database
// directly and into the sharded database through pgshard. Every value is generated here in its SQL text form
// (nil is NULL) from a fixed seed, so every run loads the same data.

// diffSchema is created identically on the three shards, the reference and the shuffled reference. Text
// columns use the C collation, so text order is byte order everywhere (as in the proxy's merge).
const diffSchema = `
CREATE TABLE categories (id integer PRIMARY KEY, name text COLLATE "C" NOT NULL, weight numeric);
CREATE TABLE items (
	k    bigint PRIMARY KEY,
	cat  integer,
	i2   smallint,
	i4   integer,
	i8   bigint,
	f4   real,
	f8   double precision,
	n    numeric,
	t    text COLLATE "C",
	v    varchar(24) COLLATE "C",
	b    boolean,
	d    date,
	ts   timestamp,
	tstz timestamptz,
	u    uuid
);
CREATE TABLE notes (
	name   text COLLATE "C" PRIMARY KEY,
	item_k bigint,
	score  integer,
	body   text COLLATE "C",
	f8s    double precision,
	ns     numeric
);
CREATE TABLE hot (k bigint PRIMARY KEY, grp text COLLATE "C", x integer, amount numeric);
CREATE TABLE empty_items (k bigint PRIMARY KEY, x integer, f8 double precision, n numeric, t text COLLATE "C", d date, b boolean);
`

// Column lists of the tables, in diffSchema's order (the generated rows follow them).
var (
	itemsCols      = []string{"k", "cat", "i2", "i4", "i8", "f4", "f8", "n", "t", "v", "b", "d", "ts", "tstz", "u"}
	notesCols      = []string{"name", "item_k", "score", "body", "f8s", "ns"}
	hotCols        = []string{"k", "grp", "x", "amount"}
	categoriesCols = []string{"id", "name", "weight"}
)

// diffFixedKeys are items keys every run has (the queries name them): the first rows of items.
var diffFixedKeys = []int64{0, 1, -1, 7, 42, 1000, 123456789, -987654321, math.MaxInt64, math.MinInt64,
	math.MaxInt32, math.MinInt32, 1 << 40}

// diffWords are text values: mixed case, digits, spaces, the empty string; many ties. No commas or
// semicolons: string_agg's results are compared after splitting at the delimiter.
var diffWords = []string{"", " ", "a", "A", "aa", "aA", "Aa", "ab", "b", "B", "apple", "Apple", "APPLE",
	"apple pie", "apple  pie", " apple", "apple ", "banana", "Banana", "cherry", "0", "00", "1", "10", "2", "9",
	"99", "a1", "a10", "a2", "Zebra", "zebra", "_under", "~tilde", "x-y", "x y", "mixed Case 42", "ZZZ", "zzz"}

// diffNumerics are numeric values of varied scales; 1.5 and 1.50, 0 and 0.00, 100 and 100.000 are equal
// values with different text. The extremes are unique, so min(n) and max(n) have one possible text.
var diffNumerics = []string{"0", "0.00", "1.5", "1.50", "2.125", "-2.125", "-1.5", "100", "100.000", "0.0001",
	"-0.0001", "3.14159", "42", "-42.42", "1000000.5", "7", "7", "-3", "0.5", "12.75"}

const (
	diffNumMax = "123456789012345678901234567890.123456789"
	diffNumMin = "-98765432109876543210.5"
)

// diffData is everything the test loads.
type diffData struct {
	categories [][]*string
	items      [][]*string
	notes      [][]*string
	hot        [][]*string
}

func sp(s string) *string { return &s }

// genItems makes n items rows (the fixed keys first) from rng. f4 and f8 are multiples of 0.25 small enough
// that every sum is exact in binary floating point, whatever the order of the additions.
func genItems(rng *rand.Rand, n int) [][]*string {
	seen := map[int64]bool{}
	var keys []int64
	for _, k := range diffFixedKeys {
		seen[k] = true
		keys = append(keys, k)
	}
	for len(keys) < n {
		var k int64
		switch rng.IntN(4) {
		case 0:
			k = rng.Int64N(5000) - 2500
		case 1:
			k = rng.Int64N(1_000_000_000)
		case 2:
			k = -rng.Int64N(1 << 50)
		default:
			k = rng.Int64()
		}
		if !seen[k] {
			seen[k] = true
			keys = append(keys, k)
		}
	}

	uuids := make([]string, 120)
	for i := range uuids {
		var b [16]byte
		for j := range b {
			b[j] = byte(rng.IntN(256))
		}
		b[6] = b[6]&0x0f | 0x40
		b[8] = b[8]&0x3f | 0x80
		uuids[i] = fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
	}
	// Timestamps from a pool, so that they tie; some with microseconds.
	tsPool := make([]string, 150)
	tstzPool := make([]string, 150)
	for i := range tsPool {
		sec := rng.Int64N(2 * 365 * 86400)
		us := ""
		if rng.IntN(3) == 0 {
			us = fmt.Sprintf(".%06d", rng.IntN(1_000_000))
		}
		base := time2024(sec)
		tsPool[i] = base + us
		offs := []string{"+00", "+02", "-05", "+05:30", "-11"}
		tstzPool[i] = base + us + offs[rng.IntN(len(offs))]
	}
	tsPool = append(tsPool, "infinity", "-infinity", "1999-12-31 23:59:59.999999")
	tstzPool = append(tstzPool, "infinity", "2000-01-01 00:00:00+00")
	datePool := []string{"1999-12-31", "2000-02-29", "0044-03-15 BC", "infinity", "-infinity"}

	null := func(p int) bool { return rng.IntN(100) < p }
	pick := func(pool []string) *string { return sp(pool[rng.IntN(len(pool))]) }
	rows := make([][]*string, 0, n)
	for i, k := range keys {
		r := make([]*string, len(itemsCols))
		r[0] = sp(strconv.FormatInt(k, 10))
		r[1] = sp(strconv.Itoa(1 + rng.IntN(8))) // categories 1..6 exist; 7 and 8 do not
		switch x := rng.IntN(50); {
		case x == 0:
			r[2] = sp("32767")
		case x == 1:
			r[2] = sp("-32768")
		default:
			r[2] = sp(strconv.Itoa(rng.IntN(7) - 3))
		}
		switch x := rng.IntN(60); {
		case x == 0:
			r[3] = sp("2147483647")
		case x == 1:
			r[3] = sp("-2147483648")
		default:
			r[3] = sp(strconv.Itoa(rng.IntN(101) - 50))
		}
		switch x := rng.IntN(40); {
		case x == 0:
			r[4] = sp(strconv.FormatInt(math.MaxInt64-int64(rng.IntN(3)), 10))
		case x == 1:
			r[4] = sp(strconv.FormatInt(math.MinInt64+int64(rng.IntN(3)), 10))
		default:
			r[4] = sp(strconv.FormatInt((rng.Int64N(41)-20)*1_000_000_000_000, 10))
		}
		r[5] = sp(quarter(rng.Int64N(401) - 200))
		if rng.IntN(30) == 0 {
			r[6] = sp(quarter(rng.Int64N(8_000_000_000_000) - 4_000_000_000_000))
		} else {
			r[6] = sp(quarter(rng.Int64N(2001) - 1000))
		}
		r[7] = pick(diffNumerics)
		r[8] = pick(diffWords)
		r[9] = pick(diffWords)
		r[10] = sp(strconv.FormatBool(rng.IntN(2) == 0))
		if rng.IntN(40) == 0 {
			r[11] = pick(datePool)
		} else {
			r[11] = sp(date2024(rng.IntN(730)))
		}
		r[12] = pick(tsPool)
		r[13] = pick(tstzPool)
		r[14] = pick(uuids)
		// NULLs in every column but the key: ~8% each, and a few rows with nothing but the key.
		allNull := i > len(diffFixedKeys) && rng.IntN(100) == 0
		for c := 1; c < len(r); c++ {
			if allNull || null(8) {
				r[c] = nil
			}
		}
		rows = append(rows, r)
	}
	// The numeric extremes, once each, on rows that are not the first.
	rows[len(rows)/3][7] = sp(diffNumMax)
	rows[2*len(rows)/3][7] = sp(diffNumMin)
	return rows
}

// quarter renders q/4 exactly.
func quarter(q int64) string { return strconv.FormatFloat(float64(q)/4, 'f', -1, 64) }

func date2024(day int) string {
	y, m, d := 2024, 1, 1+day
	for {
		dim := []int{31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31}[m-1]
		if y != 2024 && m == 2 {
			dim = 28
		}
		if d <= dim {
			break
		}
		d -= dim
		m++
		if m > 12 {
			m, y = 1, y+1
		}
	}
	return fmt.Sprintf("%04d-%02d-%02d", y, m, d)
}

func time2024(sec int64) string {
	day := int(sec / 86400)
	s := sec % 86400
	return fmt.Sprintf("%s %02d:%02d:%02d", date2024(day), s/3600, s/60%60, s%60)
}

// genNotes makes n notes rows: a text key of mixed shapes, a reference to an items key (or to none), and a
// double precision and a numeric column with NaN and infinities.
func genNotes(rng *rand.Rand, n int, items [][]*string) [][]*string {
	names := []string{"", " ", "a", "A", "Z", "z", "0", "00", "10", "9", "apple", "Apple", "x y"}
	seen := map[string]bool{}
	for _, s := range names {
		seen[s] = true
	}
	for i := 0; len(names) < n; i++ {
		w := diffWords[rng.IntN(len(diffWords))]
		var s string
		switch rng.IntN(3) {
		case 0:
			s = fmt.Sprintf("%s-%d", w, i)
		case 1:
			s = fmt.Sprintf("Note %04d", rng.IntN(10000))
		default:
			s = strconv.Itoa(rng.IntN(100000))
		}
		if !seen[s] {
			seen[s] = true
			names = append(names, s)
		}
	}
	specials := []string{"NaN", "Infinity", "-Infinity"}
	rows := make([][]*string, 0, n)
	for _, name := range names {
		r := make([]*string, len(notesCols))
		r[0] = sp(name)
		switch x := rng.IntN(10); {
		case x == 0:
			r[1] = sp("555555555555") // no such item
		case x == 1:
			r[1] = nil
		default:
			r[1] = items[rng.IntN(len(items))][0]
		}
		if rng.IntN(10) > 0 {
			r[2] = sp(strconv.Itoa(rng.IntN(21) - 10))
		}
		if rng.IntN(10) > 0 {
			r[3] = sp(diffWords[rng.IntN(len(diffWords))])
		}
		switch x := rng.IntN(40); {
		case x < 3:
			r[4] = sp(specials[x])
		case x < 6:
			r[4] = nil
		default:
			r[4] = sp(strconv.FormatFloat(float64(rng.IntN(201)-100)/2, 'f', -1, 64))
		}
		switch x := rng.IntN(40); {
		case x == 0:
			r[5] = sp("NaN")
		case x < 4:
			r[5] = nil
		default:
			r[5] = sp(diffNumerics[rng.IntN(len(diffNumerics))])
		}
		rows = append(rows, r)
	}
	return rows
}

// genHot makes a hot row for each of keys (the caller picks keys that all belong to one shard).
func genHot(rng *rand.Rand, keys []int64) [][]*string {
	grps := []string{"x", "y", "Z", ""}
	rows := make([][]*string, 0, len(keys))
	for _, k := range keys {
		r := []*string{sp(strconv.FormatInt(k, 10)), sp(grps[rng.IntN(len(grps))]), sp(strconv.Itoa(rng.IntN(11) - 5)),
			sp(diffNumerics[rng.IntN(len(diffNumerics))])}
		for c := 1; c < len(r); c++ {
			if rng.IntN(10) == 0 {
				r[c] = nil
			}
		}
		rows = append(rows, r)
	}
	return rows
}

func genCategories() [][]*string {
	return [][]*string{
		{sp("1"), sp("Books"), sp("1.5")},
		{sp("2"), sp("books"), sp("2.50")},
		{sp("3"), sp("Garden"), nil},
		{sp("4"), sp("toys"), sp("-1")},
		{sp("5"), sp(""), sp("0")},
		{sp("6"), sp("Zeta"), sp("100.125")},
	}
}

// copyText renders rows in COPY's text format (tab-separated, \N for NULL). The generated values hold no
// tab, newline or backslash.
func copyText(rows [][]*string) string {
	var b strings.Builder
	for _, r := range rows {
		for i, v := range r {
			if i > 0 {
				b.WriteByte('\t')
			}
			if v == nil {
				b.WriteString(`\N`)
			} else {
				b.WriteString(*v)
			}
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// insertSQL renders one multi-row INSERT of rows into table with quoted literals (NULL for nil), without a
// column list when cols is nil.
func insertSQL(table string, cols []string, rows [][]*string) string {
	var b strings.Builder
	if cols == nil {
		fmt.Fprintf(&b, "INSERT INTO %s VALUES ", table)
	} else {
		fmt.Fprintf(&b, "INSERT INTO %s (%s) VALUES ", table, strings.Join(cols, ", "))
	}
	for i, r := range rows {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteByte('(')
		for j, v := range r {
			if j > 0 {
				b.WriteString(", ")
			}
			if v == nil {
				b.WriteString("NULL")
			} else {
				b.WriteString(sqlLiteral(*v))
			}
		}
		b.WriteByte(')')
	}
	return b.String()
}

// reversed returns rows in reverse order (the shuffled reference loads them so).
func reversed(rows [][]*string) [][]*string {
	out := slices.Clone(rows)
	slices.Reverse(out)
	return out
}
