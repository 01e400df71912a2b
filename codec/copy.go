package codec

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strconv"
	"unicode/utf8"
)

// SQLStateBadCopyFileFormat is bad_copy_file_format: COPY data that neither the splitter nor Postgres can read.
const SQLStateBadCopyFileFormat = "22P04"

// CopyFormat is the FORMAT option of a COPY.
type CopyFormat uint8

// The COPY formats.
const (
	CopyText CopyFormat = iota
	CopyCSV
	CopyBinary
)

// CopyOptions are the options of a COPY ... FROM STDIN that decide how its data splits into rows and fields.
// The zero value is FORMAT text with Postgres's defaults.
type CopyOptions struct {
	Format    CopyFormat
	Delimiter byte   // DELIMITER; 0 means the format's default ('\t' text, ',' CSV)
	Quote     byte   // QUOTE (CSV); 0 means '"'
	Escape    byte   // ESCAPE (CSV); 0 means the same as Quote
	Null      string // NULL; "" means the format's default (`\N` text, unquoted empty CSV) unless NullSet
	NullSet   bool   // Null is given, so that NULL '' can be said in text format
	Header    bool   // HEADER (true or MATCH), text and CSV: the first line is a header

	// ForceNull and ForceNotNull say that FORCE_NULL / FORCE_NOT_NULL (CSV) name the key column.
	ForceNull, ForceNotNull bool

	// ServerVersion is the shards' server_version_num (e.g. 170004); 0 means a version before 18. From 18 on,
	// `\.` is data in CSV, and in text format it must be alone on its line.
	ServerVersion int

	// MaxRowSize bounds the bytes of one row (or the header) kept while it spans CopyData messages; a longer one
	// is an error 54000. 0 means no bound.
	MaxRowSize int

	// Table and KeyColumn name the table and the key column in error messages; both may be empty.
	Table, KeyColumn string
}

// CopyHandler receives the pieces a CopySplitter cuts. The slices are valid only during the call: they point into
// the chunk given to Write or into the splitter's buffer for a row that spanned chunks. An error a method returns
// stops the splitter and is returned by Write (or Close) as is.
type CopyHandler interface {
	// CopyHeader receives the header, once, before any row: the header line (text and CSV with HEADER, with its
	// line end) or the binary file header (signature, flags, extension area). Every shard needs it.
	CopyHeader(header []byte) error
	// CopyRow receives one row: its bytes as they must be forwarded (with its line end in text and CSV; the
	// whole tuple in binary), and the key field's value: de-escaped (text), de-quoted (CSV) or raw (binary),
	// or isNull for a NULL key.
	CopyRow(row, key []byte, isNull bool) error
	// CopyEnd receives the end-of-data marker: the `\.` line (text; CSV before Postgres 18), or the binary
	// trailer. Postgres ignores whatever follows a `\.` line up to CopyDone; the splitter drops it too. Data after
	// the binary trailer is an error.
	CopyEnd(marker []byte) error
}

// CopySplitter cuts the data stream of a COPY FROM STDIN into rows and reads one field of each row, the shard key,
// following Postgres's own reader (copyfromparse.c): in text format a backslash escapes the next byte, a line
// end among them; in CSV a line end inside quotes is data; the line end (\n, \r\n or \r) is the one the first
// line uses. The stream may be cut anywhere: a row that spans CopyData messages is carried over in a buffer of
// the splitter, and the common case (a row inside one message) neither copies nor allocates.
//
// The bytes forwarded (header, rows, end marker) concatenate to the input, but for what follows an end marker.
// The bytes are scanned as ASCII-compatible: a client_encoding whose multibyte characters may hold a backslash
// or a quote byte (SJIS, BIG5, GBK, UHC, GB18030) must be refused before a COPY is split.
type CopySplitter struct {
	format                  CopyFormat
	key                     int
	delim, quote, escape    byte
	hasEscape               bool // CSV: ESCAPE differs from QUOTE
	csvMarker               bool // CSV: a `\.` line ends the data (servers before 18)
	markerAlone             bool // text: `\.` must be alone on its line (18 and later)
	null                    string
	nullBytes               []byte
	forceNull, forceNotNull bool
	maxRow                  int
	table, keyColumn        string

	phase copyPhase
	eol   eolType
	line  int64 // lines (text, CSV) or tuples (binary) finished before the current one
	rows  int64
	err   error

	carry  []byte // the row (or header) read so far when it spans chunks
	keyBuf []byte // de-escaped key

	// Text and CSV: the state of the line reader inside the current row.
	st        scanState
	inQuote   bool // CSV: inside quotes
	lastEsc   bool // CSV: the previous byte inside quotes was a lone ESCAPE
	backslash bool // text: the row holds a backslash
	quoted    bool // CSV: the row holds a quote
	marker    int  // offset of the `\.` that ends the data in the row, or -1
	term      int  // length of the line end of the finished row
	qlines    int64

	// Binary: the unit (header or tuple) being read.
	boff    int // bytes of it parsed so far
	bleft   int // fields still to read; -1 for the trailer
	bfield  int // fields read
	bkeyOff int
	bkeyLen int // -1: NULL
	bext    int // header extension length
}

type copyPhase uint8

const (
	phaseHeader copyPhase = iota // the header comes next
	phaseRows
	phaseEnded // after the end marker
)

type eolType uint8

const (
	eolUnknown eolType = iota
	eolNL
	eolCR
	eolCRNL
)

type scanState uint8

const (
	scNormal    scanState = iota
	scEscape              // text: after a backslash, the next byte is data (or the '.' of `\.`)
	scCR                  // after a line-ending \r, waiting to see whether \n follows
	scMarkBS              // CSV: a backslash opened the line
	scMarkDot             // after `\.`, waiting for the line end
	scMarkDotCR           // after `\.` and \r when lines end with \r\n, waiting for \n
)

// copySignature opens a binary COPY stream.
const copySignature = "PGCOPY\n\377\r\n\x00"

const binHeaderLen = len(copySignature) + 8 // signature, flags, extension length

// NewCopySplitter returns a splitter for a COPY with options opt whose shard key is field keyField (0-based, in
// the order of the COPY's column list). A negative keyField reads no field: rows are cut, key is nil.
func NewCopySplitter(opt CopyOptions, keyField int) *CopySplitter {
	s := &CopySplitter{
		format:       opt.Format,
		key:          keyField,
		delim:        opt.Delimiter,
		quote:        opt.Quote,
		escape:       opt.Escape,
		null:         opt.Null,
		forceNull:    opt.ForceNull,
		forceNotNull: opt.ForceNotNull,
		maxRow:       opt.MaxRowSize,
		table:        opt.Table,
		keyColumn:    opt.KeyColumn,
		marker:       -1,
	}
	pg18 := opt.ServerVersion >= 180000
	switch opt.Format {
	case CopyCSV:
		if s.delim == 0 {
			s.delim = ','
		}
		if s.quote == 0 {
			s.quote = '"'
		}
		if s.escape == 0 {
			s.escape = s.quote
		}
		s.hasEscape = s.escape != s.quote
		s.csvMarker = !pg18
	case CopyBinary:
	default:
		s.format = CopyText
		if s.delim == 0 {
			s.delim = '\t'
		}
		if s.null == "" && !opt.NullSet {
			s.null = `\N`
		}
		s.markerAlone = pg18
	}
	s.nullBytes = []byte(s.null)
	if !opt.Header && s.format != CopyBinary {
		s.phase = phaseRows
	}
	return s
}

// Rows returns how many rows the splitter has handed to CopyRow.
func (s *CopySplitter) Rows() int64 { return s.rows }

// Ended tells whether the end-of-data marker (the `\.` line or the binary trailer) has been read.
func (s *CopySplitter) Ended() bool { return s.phase == phaseEnded }

// Write consumes the next chunk of the stream (a CopyData payload), handing h the header, every row it finishes
// and the end marker, in order. Malformed data is a *Error with SQLSTATE 22P04 (bad_copy_file_format) that names
// the line (or, in binary, the tuple) like Postgres does; after an error every call returns it again.
func (s *CopySplitter) Write(chunk []byte, h CopyHandler) error {
	if s.err != nil {
		return s.err
	}
	if s.format == CopyBinary {
		return s.writeBinary(chunk, h)
	}
	if s.phase == phaseEnded {
		return nil // Postgres, too, ignores what follows `\.`
	}
	p := chunk
	if len(s.carry) > 0 {
		n, err := s.scan(p)
		if err != nil {
			return s.fail(err)
		}
		if n < 0 {
			return s.keep(p)
		}
		if err := s.keep(p[:n]); err != nil {
			return err
		}
		if err := s.emitLine(s.carry, h); err != nil {
			return s.fail(err)
		}
		s.dropCarry()
		p = p[n:]
	}
	for len(p) > 0 && s.phase != phaseEnded {
		n, err := s.scan(p)
		if err != nil {
			return s.fail(err)
		}
		if n < 0 {
			return s.keep(p)
		}
		if err := s.emitLine(p[:n], h); err != nil {
			return s.fail(err)
		}
		p = p[n:]
	}
	return nil
}

// Close ends the stream (the client sent CopyDone). A last text or CSV line without a line end is a row, as in
// Postgres; anything else left unfinished (a binary tuple or header, an open CSV quote, a `\.` without its line
// end in text format) is an error.
func (s *CopySplitter) Close(h CopyHandler) error {
	if s.err != nil {
		return s.err
	}
	if s.format == CopyBinary {
		if s.phase == phaseHeader {
			return s.fail(s.binHeaderEOF())
		}
		if len(s.carry) > 0 {
			if s.boff == 0 { // not even the field count: Postgres would end here, but the byte would be lost
				s.line++
			}
			return s.fail(s.binErrorf("unexpected EOF in COPY data"))
		}
		return nil
	}
	if s.phase == phaseEnded || len(s.carry) == 0 {
		return nil
	}
	if err := s.scanEOF(); err != nil {
		return s.fail(err)
	}
	if err := s.emitLine(s.carry, h); err != nil {
		return s.fail(err)
	}
	s.carry = s.carry[:0]
	return nil
}

func (s *CopySplitter) fail(err error) error {
	s.err = err
	return err
}

// keep appends b to the row carried over to the next chunk.
func (s *CopySplitter) keep(b []byte) error {
	if s.maxRow > 0 && len(s.carry)+len(b) > s.maxRow {
		return s.fail(s.tooLong())
	}
	s.carry = append(s.carry, b...)
	return nil
}

// dropCarry empties the carry-over buffer after its row is handed over; a buffer a huge row grew is let go.
func (s *CopySplitter) dropCarry() {
	if cap(s.carry) > 1<<20 {
		s.carry = nil
		return
	}
	s.carry = s.carry[:0]
}

func (s *CopySplitter) tooLong() *Error {
	e := NewError(SQLStateProgramLimitExceeded, "COPY row is longer than "+strconv.Itoa(s.maxRow)+" bytes")
	e.Where = s.where(s.line+1, nil)
	return e.WithHint("Raise the proxy's limit on the size of a COPY row, or load this table directly.")
}

// scan reads b, the continuation of the current row (whose first len(s.carry) bytes came earlier). It returns how
// many bytes of b complete the row (s.term and s.marker say how it ended), or -1 when the row goes on past b.
func (s *CopySplitter) scan(b []byte) (int, error) {
	if s.format == CopyCSV {
		return s.scanCSV(b)
	}
	return s.scanText(b)
}

func (s *CopySplitter) scanText(b []byte) (int, error) {
	i, nl := 0, -1 // nl: the first \n at or after i (len(b) when none); stale when below i
	for i < len(b) {
		switch s.st {
		case scNormal:
			if nl < i {
				if nl = bytes.IndexByte(b[i:], '\n'); nl < 0 {
					nl = len(b)
				} else {
					nl += i
				}
			}
			seg := b[i:nl]
			lim := bytes.IndexByte(seg, '\\')
			if lim < 0 {
				lim = len(seg)
			}
			if k := bytes.IndexByte(seg[:lim], '\r'); k >= 0 {
				lim = k
			}
			i += lim
			if i == len(b) {
				continue
			}
			c := b[i]
			i++
			switch c {
			case '\n':
				if s.eol == eolCR || s.eol == eolCRNL {
					return 0, s.newlineError()
				}
				s.eol = eolNL
				s.term = 1
				return i, nil
			case '\r':
				switch s.eol {
				case eolNL:
					return 0, s.crError()
				case eolCR:
					s.term = 1
					return i, nil
				}
				s.st = scCR
			default: // backslash
				s.backslash = true
				s.st = scEscape
			}
		case scEscape:
			if b[i] == '.' {
				s.marker = len(s.carry) + i - 1
				s.st = scMarkDot
			} else {
				s.st = scNormal
			}
			i++
		case scCR:
			n, err := s.afterCR(b[i])
			return i + n, err
		case scMarkDot:
			c := b[i]
			i++
			if s.eol == eolCRNL {
				if c == '\r' {
					s.st = scMarkDotCR
					continue
				}
				if c == '\n' {
					return 0, s.markerStyleError()
				}
				return 0, s.markerCorrupt()
			}
			if c != '\r' && c != '\n' {
				return 0, s.markerCorrupt()
			}
			if s.eol == eolNL && c != '\n' || s.eol == eolCR && c != '\r' {
				return 0, s.markerStyleError()
			}
			return i, s.markerEnd()
		case scMarkDotCR:
			c := b[i]
			i++
			if c != '\r' && c != '\n' {
				return 0, s.markerCorrupt()
			}
			if c != '\n' {
				return 0, s.markerStyleError()
			}
			return i, s.markerEnd()
		}
	}
	return -1, nil
}

// afterCR decides, from the byte c after a line-ending \r, whether the line ends with \r\n (it returns 1: c is
// part of the line end) or with \r alone (it returns 0: c begins the next line).
func (s *CopySplitter) afterCR(c byte) (int, error) {
	if c == '\n' {
		s.eol = eolCRNL
		s.term = 2
		return 1, nil
	}
	if s.eol == eolCRNL {
		return 0, s.crError()
	}
	s.eol = eolCR
	s.term = 1
	return 0, nil
}

func (s *CopySplitter) scanCSV(b []byte) (int, error) {
	i, nl := 0, -1
	for i < len(b) {
		switch s.st {
		case scNormal:
			if s.inQuote {
				i = s.skipQuoted(b, i)
				continue
			}
			if i == 0 && len(s.carry) == 0 && b[0] == '\\' && s.csvMarker {
				// A backslash opens the line: maybe `\.`. (A QUOTE of '\\' opens a quote first, as in Postgres.)
				if s.quote == '\\' {
					s.inQuote, s.quoted = true, true
				}
				s.st = scMarkBS
				i++
				continue
			}
			if nl < i {
				if nl = bytes.IndexByte(b[i:], '\n'); nl < 0 {
					nl = len(b)
				} else {
					nl += i
				}
			}
			seg := b[i:nl]
			lim := bytes.IndexByte(seg, s.quote)
			if lim < 0 {
				lim = len(seg)
			}
			if k := bytes.IndexByte(seg[:lim], '\r'); k >= 0 {
				lim = k
			}
			i += lim
			if i == len(b) {
				continue
			}
			c := b[i]
			i++
			if n, err := s.csvByte(c); n != 0 || err != nil {
				return i, err
			}
		case scCR:
			n, err := s.afterCR(b[i])
			return i + n, err
		case scMarkBS:
			if b[i] == '.' {
				s.marker = 0
				s.st = scMarkDot
				i++
			} else {
				s.st = scNormal // the backslash was data; read b[i] as usual
			}
		case scMarkDot:
			c := b[i]
			if s.eol == eolCRNL {
				if c == '\r' {
					s.st = scMarkDotCR
					i++
					continue
				}
				if err := s.notMarker(false); err != nil {
					return 0, err
				}
				continue
			}
			if c != '\r' && c != '\n' {
				if err := s.notMarker(false); err != nil {
					return 0, err
				}
				continue
			}
			if s.eol == eolNL && c != '\n' || s.eol == eolCR && c != '\r' {
				return 0, s.markerStyleError()
			}
			return i + 1, s.markerEnd()
		case scMarkDotCR:
			c := b[i]
			if c == '\n' {
				return i + 1, s.markerEnd()
			}
			if c == '\r' {
				return 0, s.markerStyleError()
			}
			if err := s.notMarker(true); err != nil {
				return 0, err
			}
		}
	}
	return -1, nil
}

// csvByte reads a QUOTE, \n or \r outside quotes in CSV. It returns 1 when c ends the row.
func (s *CopySplitter) csvByte(c byte) (int, error) {
	if c == s.quote { // before the line ends: a QUOTE of \n or \r quotes, as in Postgres
		s.inQuote, s.quoted = true, true
		return 0, nil
	}
	switch c {
	case '\n':
		if s.eol == eolCR || s.eol == eolCRNL {
			return 0, s.newlineError()
		}
		s.eol = eolNL
		s.term = 1
		return 1, nil
	case '\r':
		switch s.eol {
		case eolNL:
			return 0, s.crError()
		case eolCR:
			s.term = 1
			return 1, nil
		}
		s.st = scCR
	}
	return 0, nil
}

// notMarker is Postgres's "not the end of copy" in CSV: the `\.` (and the \r after it) that opened the line is
// data after all; read them again as data.
func (s *CopySplitter) notMarker(cr bool) error {
	s.st = scNormal
	s.marker = -1
	s.quotedByte('.')
	if !cr {
		return nil
	}
	if s.inQuote {
		s.quotedByte('\r')
		return nil
	}
	_, err := s.csvByte('\r') // lines end with \r\n here: waits for the \n in scCR, or starts a quote
	return err
}

// quotedByte reads one byte of CSV data (outside or inside quotes) the slow way.
func (s *CopySplitter) quotedByte(c byte) {
	if !s.inQuote {
		if c == s.quote {
			s.inQuote, s.quoted = true, true
		}
		return
	}
	if s.hasEscape && c == s.escape {
		s.lastEsc = !s.lastEsc
		return
	}
	if c == s.quote && !s.lastEsc {
		s.inQuote = false
	}
	s.lastEsc = false
	if c == s.quotedLineEnd() {
		s.qlines++
	}
}

// quotedLineEnd is the byte Postgres counts as a new line inside quotes (for the line numbers of messages).
func (s *CopySplitter) quotedLineEnd() byte {
	if s.eol == eolNL {
		return '\n'
	}
	return '\r'
}

// skipQuoted reads b from i inside CSV quotes up to and including the closing quote (or to the end of b).
func (s *CopySplitter) skipQuoted(b []byte, i int) int {
	if s.hasEscape && s.lastEsc {
		s.quotedByte(b[i])
		return i + 1
	}
	seg := b[i:]
	lim := bytes.IndexByte(seg, s.quote)
	if lim < 0 {
		lim = len(seg)
	}
	if s.hasEscape {
		if k := bytes.IndexByte(seg[:lim], s.escape); k >= 0 {
			lim = k
		}
	}
	s.qlines += int64(bytes.Count(seg[:lim], []byte{s.quotedLineEnd()}))
	i += lim
	if i == len(b) {
		return i
	}
	if b[i] == s.quote {
		s.inQuote = false
	} else {
		s.lastEsc = true
	}
	return i + 1
}

// scanEOF ends the row in s.carry at the end of the stream, as Postgres reads a last line without a line end.
func (s *CopySplitter) scanEOF() error {
	s.term = 0
	switch s.st {
	case scCR:
		if s.eol == eolCRNL {
			return s.crError()
		}
		s.eol = eolCR
		s.term = 1
	case scMarkDot, scMarkDotCR:
		if s.format == CopyText {
			return s.markerCorrupt()
		}
		if err := s.notMarker(s.st == scMarkDotCR); err != nil {
			return err
		}
		return s.scanEOF()
	}
	if s.inQuote {
		return s.lineErrorf(s.carry, "unterminated CSV quoted field")
	}
	return nil
}

// markerEnd checks the `\.` line that ends the data: from Postgres 18 on, no data may precede it on its line.
func (s *CopySplitter) markerEnd() error {
	if s.markerAlone && s.marker > 0 {
		return s.scanErrorf("", "end-of-copy marker is not alone on its line")
	}
	s.term = 0
	return nil
}

// emitLine hands h the line (or the data and the `\.` marker) the scan just finished.
func (s *CopySplitter) emitLine(b []byte, h CopyHandler) error {
	data, mark := b, []byte(nil)
	if s.marker >= 0 {
		data, mark = b[:s.marker], b[s.marker:]
	}
	line := s.line + 1 + s.qlines
	if len(data) > 0 || mark == nil {
		if s.phase == phaseHeader {
			s.phase = phaseRows
			if err := h.CopyHeader(data); err != nil {
				return err
			}
		} else {
			key, isNull, err := s.lineKey(data[:len(data)-s.term])
			if err != nil {
				return err
			}
			s.rows++
			if err := h.CopyRow(data, key, isNull); err != nil {
				return err
			}
		}
	}
	s.line = line
	s.st, s.inQuote, s.lastEsc, s.backslash, s.quoted = scNormal, false, false, false, false
	s.marker, s.term, s.qlines = -1, 0, 0
	if mark != nil {
		s.phase = phaseEnded
		return h.CopyEnd(mark)
	}
	return nil
}

// lineKey reads the key field of a line (without its line end).
func (s *CopySplitter) lineKey(line []byte) ([]byte, bool, error) {
	if s.key < 0 {
		return nil, false, nil
	}
	if s.format == CopyCSV {
		return s.csvKey(line)
	}
	return s.textKey(line)
}

func (s *CopySplitter) textKey(line []byte) ([]byte, bool, error) {
	start := 0
	for f := 0; ; f++ {
		end, next := len(line), -1
		if !s.backslash {
			if k := bytes.IndexByte(line[start:], s.delim); k >= 0 {
				end, next = start+k, start+k+1
			}
		} else {
			end, next = textFieldEnd(line, start, s.delim)
		}
		if f == s.key {
			raw := line[start:end]
			if string(raw) == s.null {
				return nil, true, nil
			}
			if !s.backslash || bytes.IndexByte(raw, '\\') < 0 {
				return raw, false, nil
			}
			s.keyBuf = unescapeCopyText(s.keyBuf[:0], raw)
			return s.keyBuf, false, nil
		}
		if next < 0 {
			return nil, false, s.missingKey(line)
		}
		start = next
	}
}

// textFieldEnd finds the end of the text-format field that starts at line[start]: the delimiter (next is the
// start of the following field) or the end of the line (next is -1). A backslash escapes the next byte; a
// backslash that ends the line is left out of the field, as in Postgres.
func textFieldEnd(line []byte, start int, delim byte) (end, next int) {
	for i := start; i < len(line); i++ {
		switch line[i] {
		case delim:
			return i, i + 1
		case '\\':
			if i+1 == len(line) {
				return i, -1
			}
			i++
		}
	}
	return len(line), -1
}

// unescapeCopyText appends the value of a text-format field (raw, as it was sent) to dst: \b \f \n \r \t \v,
// up to three octal digits, \x and one or two hex digits; a backslash before any other byte stands for that byte.
func unescapeCopyText(dst, raw []byte) []byte {
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c != '\\' {
			dst = append(dst, c)
			continue
		}
		i++
		if i == len(raw) {
			break
		}
		c = raw[i]
		switch c {
		case '0', '1', '2', '3', '4', '5', '6', '7':
			v := c - '0'
			for k := 0; k < 2 && i+1 < len(raw) && raw[i+1] >= '0' && raw[i+1] <= '7'; k++ {
				i++
				v = v<<3 + raw[i] - '0'
			}
			c = v
		case 'x':
			if i+1 < len(raw) && isHexDigit(raw[i+1]) {
				i++
				v := hexValue(raw[i])
				if i+1 < len(raw) && isHexDigit(raw[i+1]) {
					i++
					v = v<<4 + hexValue(raw[i])
				}
				c = v
			}
		case 'b':
			c = '\b'
		case 'f':
			c = '\f'
		case 'n':
			c = '\n'
		case 'r':
			c = '\r'
		case 't':
			c = '\t'
		case 'v':
			c = '\v'
		}
		dst = append(dst, c)
	}
	return dst
}

func isHexDigit(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func hexValue(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c >= 'a':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}

func (s *CopySplitter) csvKey(line []byte) ([]byte, bool, error) {
	var key []byte
	var isNull bool
	if !s.quoted {
		start := 0
		for f := 0; ; f++ {
			k := bytes.IndexByte(line[start:], s.delim)
			if f == s.key {
				if k < 0 {
					key = line[start:]
				} else {
					key = line[start : start+k]
				}
				isNull = string(key) == s.null
				break
			}
			if k < 0 {
				return nil, false, s.missingKey(line)
			}
			start += k + 1
		}
	} else {
		var err error
		if key, isNull, err = s.csvQuotedKey(line); err != nil {
			return nil, false, err
		}
	}
	switch {
	case isNull && s.forceNotNull:
		return s.nullBytes, false, nil
	case isNull:
		return nil, true, nil
	case s.forceNull && string(key) == s.null:
		return nil, true, nil
	}
	return key, false, nil
}

// csvQuotedKey reads the key field of a CSV line that holds quotes, the way Postgres's CopyReadAttributesCSV does.
func (s *CopySplitter) csvQuotedKey(line []byte) ([]byte, bool, error) {
	pos := 0
	for f := 0; ; f++ {
		start, sawQuote, foundDelim, out := pos, false, false, f == s.key
		s.keyBuf = s.keyBuf[:0]
	field:
		for {
			for { // outside quotes
				if pos >= len(line) {
					break field
				}
				c := line[pos]
				pos++
				if c == s.delim {
					foundDelim = true
					break field
				}
				if c == s.quote {
					sawQuote = true
					break
				}
				if out {
					s.keyBuf = append(s.keyBuf, c)
				}
			}
			for { // inside quotes
				if pos >= len(line) {
					return nil, false, s.lineErrorf(line, "unterminated CSV quoted field")
				}
				c := line[pos]
				pos++
				if c == s.escape && pos < len(line) {
					if nc := line[pos]; nc == s.escape || nc == s.quote {
						if out {
							s.keyBuf = append(s.keyBuf, nc)
						}
						pos++
						continue
					}
				}
				if c == s.quote {
					break
				}
				if out {
					s.keyBuf = append(s.keyBuf, c)
				}
			}
		}
		if out {
			end := pos
			if foundDelim {
				end--
			}
			if !sawQuote && string(line[start:end]) == s.null {
				return nil, true, nil
			}
			return s.keyBuf, false, nil
		}
		if !foundDelim {
			return nil, false, s.missingKey(line)
		}
	}
}

func (s *CopySplitter) writeBinary(p []byte, h CopyHandler) error {
	if len(s.carry) > 0 {
		for {
			need, err := s.binParse(s.carry)
			if err != nil {
				return s.fail(err)
			}
			if need == 0 {
				break
			}
			if len(p) == 0 {
				return nil
			}
			take := min(need, len(p))
			if err := s.keep(p[:take]); err != nil {
				return err
			}
			p = p[take:]
		}
		if err := s.binEmit(s.carry, h); err != nil {
			return s.fail(err)
		}
		s.dropCarry()
	}
	for len(p) > 0 {
		if s.phase == phaseEnded {
			return s.fail(s.binErrorf("received copy data after EOF marker"))
		}
		need, err := s.binParse(p)
		if err != nil {
			return s.fail(err)
		}
		if need > 0 {
			return s.keep(p)
		}
		n := s.boff
		if err := s.binEmit(p[:n], h); err != nil {
			return s.fail(err)
		}
		p = p[n:]
	}
	return nil
}

// binParse reads the unit (the file header or a tuple) that b begins, from s.boff on. It returns 0 when the unit
// is whole (it is then b[:s.boff]), else how many more bytes it needs at least.
func (s *CopySplitter) binParse(b []byte) (int, error) {
	if s.phase == phaseHeader {
		return s.binHeader(b)
	}
	if s.boff == 0 {
		if len(b) < 2 {
			return 2 - len(b), nil
		}
		s.line++
		n := int(int16(binary.BigEndian.Uint16(b)))
		s.boff, s.bfield, s.bkeyOff, s.bkeyLen = 2, 0, 0, -1
		if n == -1 {
			s.bleft = -1
			return 0, nil
		}
		if n < 0 || n <= s.key {
			return 0, s.binErrorf("row field count is %d, expected at least %d", n, max(s.key+1, 0))
		}
		s.bleft = n
	}
	for s.bleft > 0 {
		if len(b) < s.boff+4 {
			return s.boff + 4 - len(b), nil
		}
		n := int(int32(binary.BigEndian.Uint32(b[s.boff:])))
		if n < -1 {
			return 0, s.binErrorf("invalid field size")
		}
		end := s.boff + 4 + max(n, 0)
		if s.maxRow > 0 && end > s.maxRow {
			return 0, s.tooLong()
		}
		if len(b) < end {
			return end - len(b), nil
		}
		if s.bfield == s.key {
			s.bkeyOff, s.bkeyLen = s.boff+4, n
		}
		s.boff = end
		s.bfield++
		s.bleft--
	}
	return 0, nil
}

func (s *CopySplitter) binHeader(b []byte) (int, error) {
	if s.boff == 0 {
		n := min(len(b), len(copySignature))
		if string(b[:n]) != copySignature[:n] {
			return 0, s.binErrorf("COPY file signature not recognized")
		}
		if len(b) >= len(copySignature)+4 {
			flags := binary.BigEndian.Uint32(b[len(copySignature):])
			if flags&(1<<16) != 0 {
				return 0, s.binErrorf("invalid COPY file header (WITH OIDS)")
			}
			if flags>>17 != 0 {
				return 0, s.binErrorf("unrecognized critical flags in COPY file header")
			}
		}
		if len(b) < binHeaderLen {
			return binHeaderLen - len(b), nil
		}
		ext := int(int32(binary.BigEndian.Uint32(b[len(copySignature)+4:])))
		if ext < 0 {
			return 0, s.binErrorf("invalid COPY file header (missing length)")
		}
		if s.maxRow > 0 && binHeaderLen+ext > s.maxRow {
			return 0, s.tooLong()
		}
		s.boff, s.bext = binHeaderLen, ext
	}
	end := binHeaderLen + s.bext
	if len(b) < end {
		return end - len(b), nil
	}
	s.boff = end
	return 0, nil
}

// binHeaderEOF is the error for a stream that ends inside the binary file header.
func (s *CopySplitter) binHeaderEOF() error {
	switch n := len(s.carry); {
	case n < len(copySignature):
		return s.binErrorf("COPY file signature not recognized")
	case n < len(copySignature)+4:
		return s.binErrorf("invalid COPY file header (missing flags)")
	case n < binHeaderLen:
		return s.binErrorf("invalid COPY file header (missing length)")
	}
	return s.binErrorf("invalid COPY file header (wrong length)")
}

func (s *CopySplitter) binEmit(b []byte, h CopyHandler) error {
	s.boff = 0
	switch {
	case s.phase == phaseHeader:
		s.phase = phaseRows
		return h.CopyHeader(b)
	case s.bleft < 0:
		s.phase = phaseEnded
		return h.CopyEnd(b)
	case s.bkeyLen < 0:
		s.rows++
		return h.CopyRow(b, nil, s.key >= 0)
	default:
		s.rows++
		return h.CopyRow(b, b[s.bkeyOff:s.bkeyOff+s.bkeyLen], false)
	}
}

// Errors. Their Where is Postgres's context line: "COPY t, line 3", with the line's text (up to 100 bytes) when
// the line was read whole.

func (s *CopySplitter) binErrorf(format string, args ...any) *Error {
	e := NewError(SQLStateBadCopyFileFormat, fmt.Sprintf(format, args...))
	if s.phase != phaseHeader {
		e.Where = s.where(s.line, nil)
	}
	return e
}

// scanErrorf is an error found while reading a line, before it is whole.
func (s *CopySplitter) scanErrorf(hint, format string, args ...any) *Error {
	e := NewError(SQLStateBadCopyFileFormat, fmt.Sprintf(format, args...))
	e.Where = s.where(s.line+1+s.qlines, nil)
	e.Hint = hint
	return e
}

// lineErrorf is an error in a whole line.
func (s *CopySplitter) lineErrorf(line []byte, format string, args ...any) *Error {
	e := NewError(SQLStateBadCopyFileFormat, fmt.Sprintf(format, args...))
	e.Where = s.where(s.line+1+s.qlines, line)
	return e
}

func (s *CopySplitter) missingKey(line []byte) *Error {
	if s.keyColumn != "" {
		return s.lineErrorf(line, "missing data for column %q", s.keyColumn)
	}
	return s.lineErrorf(line, "missing data for column %d", s.key+1)
}

func (s *CopySplitter) where(line int64, text []byte) string {
	w := "COPY "
	if s.table != "" {
		w += s.table + ", "
	}
	w += "line " + strconv.FormatInt(line, 10)
	if text != nil {
		const maxShown = 100 // Postgres's MAX_COPY_DATA_DISPLAY
		shown, more := text, ""
		if len(shown) > maxShown {
			n := maxShown
			for n > 0 && !utf8.RuneStart(shown[n]) {
				n--
			}
			shown, more = shown[:n], "..."
		}
		w += `: "` + string(shown) + more + `"`
	}
	return w
}

func (s *CopySplitter) newlineError() *Error {
	if s.format == CopyCSV {
		return s.scanErrorf("Use quoted CSV field to represent newline.", "unquoted newline found in data")
	}
	return s.scanErrorf(`Use "\n" to represent newline.`, "literal newline found in data")
}

func (s *CopySplitter) crError() *Error {
	if s.format == CopyCSV {
		return s.scanErrorf("Use quoted CSV field to represent carriage return.", "unquoted carriage return found in data")
	}
	return s.scanErrorf(`Use "\r" to represent carriage return.`, "literal carriage return found in data")
}

func (s *CopySplitter) markerStyleError() *Error {
	return s.scanErrorf("", "end-of-copy marker does not match previous newline style")
}

func (s *CopySplitter) markerCorrupt() *Error {
	if s.markerAlone {
		return s.scanErrorf("", "end-of-copy marker is not alone on its line")
	}
	return s.scanErrorf("", "end-of-copy marker corrupt")
}
