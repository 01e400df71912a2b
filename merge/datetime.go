package merge

import "math"

// Dates and times in text form, as Postgres writes them with DateStyle ISO:
//
//	date         2024-01-02, 0044-03-15 BC, infinity, -infinity
//	time         03:04:05, 03:04:05.123456, 24:00:00
//	timestamp    2024-01-02 03:04:05.123456, 12345-01-01 00:00:00, 0001-01-01 00:00:00 BC
//	timestamptz  2024-01-02 03:04:05+01, ...-03:30, ...+00:19:32 BC (the session TimeZone's offset)
//
// They read into the numbers of the binary forms: days (date) and microseconds (time, timestamps) since
// 2000-01-01, timestamptz normalized to UTC; infinities as the binary forms' extremes.

const (
	usPerSecond = 1_000_000
	usPerDay    = 86400 * usPerSecond
	// pgEpochDays is 2000-01-01 in days since 1970-01-01.
	pgEpochDays = 10957
)

// daysFromCivil returns the days since 1970-01-01 of a proleptic Gregorian date (astronomical year: 1 BC is 0).
func daysFromCivil(y, m, d int64) int64 {
	if m <= 2 {
		y--
	}
	era := y / 400
	if y < 0 && y%400 != 0 {
		era--
	}
	yoe := y - era*400
	mp := (m + 9) % 12
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return era*146097 + doe - 719468
}

func isLeap(y int64) bool { return y%4 == 0 && (y%100 != 0 || y%400 == 0) }

func daysInMonth(y, m int64) int64 {
	switch m {
	case 2:
		if isLeap(y) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// textScanner reads fixed-shape fields off a value.
type textScanner struct {
	b  []byte
	ok bool
}

// num reads 1 to max digits (min at least).
func (s *textScanner) num(min, max int) int64 {
	var n int64
	i := 0
	for i < len(s.b) && i < max && isDigit(s.b[i]) {
		n = n*10 + int64(s.b[i]-'0')
		i++
	}
	if i < min {
		s.ok = false
	}
	s.b = s.b[i:]
	return n
}

func (s *textScanner) lit(c byte) bool {
	if len(s.b) > 0 && s.b[0] == c {
		s.b = s.b[1:]
		return true
	}
	return false
}

func (s *textScanner) want(c byte) {
	if !s.lit(c) {
		s.ok = false
	}
}

func eqFold(v []byte, s string) bool {
	if len(v) != len(s) {
		return false
	}
	for i := range v {
		c := v[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}

// era reads an optional trailing " BC" / " AD" and reports BC.
func (s *textScanner) era() bool {
	if len(s.b) >= 3 && s.b[0] == ' ' {
		switch {
		case eqFold(s.b[1:3], "bc"):
			s.b = s.b[3:]
			return true
		case eqFold(s.b[1:3], "ad"):
			s.b = s.b[3:]
		}
	}
	return false
}

// date reads Y-MM-DD and returns the year (not yet era-adjusted), month and day.
func (s *textScanner) date() (y, m, d int64) {
	y = s.num(1, 9)
	s.want('-')
	m = s.num(1, 2)
	s.want('-')
	d = s.num(1, 2)
	return
}

// dayNumber checks a date and returns its days since 2000-01-01.
func dayNumber(y, m, d int64, bc bool) (int64, bool) {
	if y == 0 || m < 1 || m > 12 || d < 1 {
		return 0, false
	}
	if bc {
		y = 1 - y
	}
	if d > daysInMonth(y, m) {
		return 0, false
	}
	return daysFromCivil(y, m, d) - pgEpochDays, true
}

// clock reads HH:MM[:SS[.ffffff]] and returns microseconds since midnight (rounded to the microsecond).
func (s *textScanner) clock() int64 {
	h := s.num(1, 2)
	s.want(':')
	mi := s.num(2, 2)
	var sec, frac int64
	if s.lit(':') {
		sec = s.num(2, 2)
		if s.lit('.') {
			digits := 0
			for len(s.b) > 0 && isDigit(s.b[0]) {
				c := int64(s.b[0] - '0')
				switch {
				case digits < 6:
					frac = frac*10 + c
				case digits == 6 && c >= 5:
					frac++ // round half up at the microsecond, as Postgres does
				}
				digits++
				s.b = s.b[1:]
			}
			for ; digits < 6; digits++ {
				frac *= 10
			}
		}
	}
	if h > 24 || mi > 59 || sec > 60 || (h == 24 && (mi != 0 || sec != 0 || frac != 0)) {
		s.ok = false
	}
	return ((h*60+mi)*60+sec)*usPerSecond + frac
}

// offset reads an optional UTC offset (+HH, +HH:MM, +HH:MM:SS, +HHMM, Z) in seconds east of UTC.
func (s *textScanner) offset() int64 {
	if s.lit('Z') || s.lit('z') {
		return 0
	}
	if len(s.b) == 0 || (s.b[0] != '+' && s.b[0] != '-') {
		return 0
	}
	neg := s.b[0] == '-'
	s.b = s.b[1:]
	var h, m, sec int64
	if len(s.b) >= 4 && isDigit(s.b[0]) && isDigit(s.b[1]) && isDigit(s.b[2]) && isDigit(s.b[3]) {
		h = s.num(2, 2)
		m = s.num(2, 2)
	} else {
		h = s.num(1, 2)
		if s.lit(':') {
			m = s.num(2, 2)
			if s.lit(':') {
				sec = s.num(2, 2)
			}
		}
	}
	if h > 15 || m > 59 || sec > 59 {
		s.ok = false
	}
	off := (h*60+m)*60 + sec
	if neg {
		off = -off
	}
	return off
}

// parseDateText reads a date: days since 2000-01-01 (the binary form's int32 extremes for the infinities).
func parseDateText(v []byte) (int64, bool) {
	v = trimSpace(v)
	switch {
	case eqFold(v, "infinity") || eqFold(v, "+infinity"):
		return math.MaxInt32, true
	case eqFold(v, "-infinity"):
		return math.MinInt32, true
	}
	s := textScanner{b: v, ok: true}
	y, m, d := s.date()
	bc := s.era()
	if !s.ok || len(s.b) != 0 {
		return 0, false
	}
	days, ok := dayNumber(y, m, d, bc)
	if !ok || days < math.MinInt32+1 || days > math.MaxInt32-1 {
		return 0, false
	}
	return days, true
}

// parseTimeText reads a time of day in microseconds.
func parseTimeText(v []byte) (int64, bool) {
	s := textScanner{b: trimSpace(v), ok: true}
	t := s.clock()
	return t, s.ok && len(s.b) == 0
}

// parseTimestampText reads a timestamp (tz: timestamptz, normalized to UTC by its offset) in microseconds since
// 2000-01-01 (the binary form's int64 extremes for the infinities). A timestamp without time zone ignores an
// offset, as timestamp_in does; a timestamptz without one is read as UTC.
func parseTimestampText(v []byte, tz bool) (int64, bool) {
	v = trimSpace(v)
	switch {
	case eqFold(v, "infinity") || eqFold(v, "+infinity"):
		return math.MaxInt64, true
	case eqFold(v, "-infinity"):
		return math.MinInt64, true
	}
	s := textScanner{b: v, ok: true}
	y, m, d := s.date()
	var tod, off int64
	if len(s.b) >= 2 && (s.b[0] == ' ' || s.b[0] == 'T') && isDigit(s.b[1]) {
		s.b = s.b[1:]
		tod = s.clock()
		off = s.offset()
	}
	bc := s.era()
	if !s.ok || len(s.b) != 0 {
		return 0, false
	}
	days, ok := dayNumber(y, m, d, bc)
	if !ok {
		return 0, false
	}
	// Postgres's range: 4714-11-24 BC .. 294276-12-31; checking it also keeps the arithmetic in range.
	if days < -2451545 || days > 106751982 {
		return 0, false
	}
	t := days*usPerDay + tod
	if tz {
		t -= off * usPerSecond
	}
	return t, true
}
