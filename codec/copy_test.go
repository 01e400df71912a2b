package codec

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgshard/pgshard/internal/pgtest"
)

// copyEvent is one call a CopySplitter made: 'H' header, 'R' row, 'E' end marker.
type copyEvent struct {
	kind byte
	data string
	key  string
	null bool
}

func (e copyEvent) String() string {
	if e.kind == 'R' {
		if e.null {
			return fmt.Sprintf("R%q key=NULL", e.data)
		}
		return fmt.Sprintf("R%q key=%q", e.data, e.key)
	}
	return fmt.Sprintf("%c%q", e.kind, e.data)
}

// copyRecorder is a CopyHandler that keeps copies of what it gets.
type copyRecorder struct{ events []copyEvent }

func (r *copyRecorder) CopyHeader(b []byte) error {
	r.events = append(r.events, copyEvent{kind: 'H', data: string(b)})
	return nil
}

func (r *copyRecorder) CopyRow(row, key []byte, isNull bool) error {
	if isNull && key != nil {
		return errors.New("NULL key with a value")
	}
	r.events = append(r.events, copyEvent{kind: 'R', data: string(row), key: string(key), null: isNull})
	return nil
}

func (r *copyRecorder) CopyEnd(b []byte) error {
	r.events = append(r.events, copyEvent{kind: 'E', data: string(b)})
	return nil
}

// splitCopy runs a splitter over in, cut before each offset in cuts (ascending), then closes it.
func splitCopy(opt CopyOptions, key int, in []byte, cuts []int) ([]copyEvent, error) {
	s := NewCopySplitter(opt, key)
	r := &copyRecorder{}
	prev := 0
	for _, c := range append(cuts, len(in)) {
		if c < prev || c > len(in) {
			continue
		}
		// A chunk of its own, so that reading past it shows (under -race or the fuzzer's bounds checks).
		chunk := append([]byte(nil), in[prev:c]...)
		if err := s.Write(chunk, r); err != nil {
			return r.events, err
		}
		prev = c
	}
	if err := s.Close(r); err != nil {
		return r.events, err
	}
	var rows int64
	for _, e := range r.events {
		if e.kind == 'R' {
			rows++
		}
	}
	if s.Rows() != rows {
		return r.events, fmt.Errorf("Rows() = %d, handed %d", s.Rows(), rows)
	}
	return r.events, nil
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		s := e.Code + " " + e.Message
		if e.Where != "" {
			s += " [" + e.Where + "]"
		}
		return s
	}
	return err.Error()
}

// checkConcat checks that the bytes handed over concatenate to the input: all of it, or (after an end marker) a
// prefix of it.
func checkConcat(t *testing.T, in []byte, evs []copyEvent, err error) {
	t.Helper()
	var all []byte
	ended := false
	for _, e := range evs {
		all = append(all, e.data...)
		ended = ended || e.kind == 'E'
	}
	if err != nil || ended {
		if !bytes.HasPrefix(in, all) {
			t.Fatalf("handed bytes are not a prefix of the input:\n in  %q\n out %q", in, all)
		}
		return
	}
	if !bytes.Equal(in, all) {
		t.Fatalf("handed bytes differ from the input:\n in  %q\n out %q", in, all)
	}
}

// --- The reference: a whole-buffer, byte-at-a-time reading of Postgres's COPY FROM (copyfromparse.c). ---

type refLine struct {
	start, contentEnd, next int // next: where the following line starts
	eof                     bool
	marker                  int // start of `\.`, or -1
}

func refSplit(opt CopyOptions, key int, in []byte) ([]copyEvent, error) {
	s := NewCopySplitter(opt, key) // for the resolved options and the error helpers only
	if opt.Format == CopyBinary {
		return refBinary(s, key, in)
	}
	csv := opt.Format == CopyCSV
	at := func(i int) byte {
		if i < len(in) {
			return in[i]
		}
		return 0
	}
	var evs []copyEvent
	var lineno int64
	header := opt.Header
	eol := eolUnknown
	pos := 0
	fail := func(line int64, text []byte, hint, msg string) ([]copyEvent, error) {
		e := NewError(SQLStateBadCopyFileFormat, msg)
		e.Where = s.where(line, text)
		e.Hint = hint
		return evs, e
	}
	for {
		lineno++
		l := refLine{start: pos, marker: -1}
		i := pos
		inQuote, lastEsc, first := false, false, true
		markerCorrupt := "end-of-copy marker corrupt"
		if s.markerAlone {
			markerCorrupt = "end-of-copy marker is not alone on its line"
		}
		crMsg, crHint := "literal carriage return found in data", `Use "\r" to represent carriage return.`
		nlMsg, nlHint := "literal newline found in data", `Use "\n" to represent newline.`
		if csv {
			crMsg, crHint = "unquoted carriage return found in data", "Use quoted CSV field to represent carriage return."
			nlMsg, nlHint = "unquoted newline found in data", "Use quoted CSV field to represent newline."
		}
		for {
			if i >= len(in) {
				l.contentEnd, l.next, l.eof = len(in), len(in), true
				break
			}
			prev := i
			c := in[i]
			i++
			if csv {
				if inQuote && s.hasEscape && c == s.escape {
					lastEsc = !lastEsc
				}
				if c == s.quote && !lastEsc {
					inQuote = !inQuote
				}
				if !(s.hasEscape && c == s.escape) {
					lastEsc = false
				}
				lc := byte('\r')
				if eol == eolNL {
					lc = '\n'
				}
				if inQuote && c == lc {
					lineno++
				}
			}
			if c == '\r' && (!csv || !inQuote) {
				if eol == eolUnknown || eol == eolCRNL {
					if at(i) == '\n' {
						i++
						eol = eolCRNL
					} else {
						if eol == eolCRNL {
							return fail(lineno, nil, crHint, crMsg)
						}
						eol = eolCR
					}
				} else if eol == eolNL {
					return fail(lineno, nil, crHint, crMsg)
				}
				l.contentEnd, l.next = prev, i
				break
			}
			if c == '\n' && (!csv || !inQuote) {
				if eol == eolCR || eol == eolCRNL {
					return fail(lineno, nil, nlHint, nlMsg)
				}
				eol = eolNL
				l.contentEnd, l.next = prev, i
				break
			}
			if c == '\\' && (!csv || first && s.csvMarker) {
				if i >= len(in) {
					l.contentEnd, l.next, l.eof = len(in), len(in), true
					break
				}
				if in[i] == '.' {
					i++
					notEnd := false
					if eol == eolCRNL {
						c2 := at(i)
						i++
						if c2 == '\n' {
							if !csv {
								return fail(lineno, nil, "", "end-of-copy marker does not match previous newline style")
							}
							notEnd = true
						} else if c2 != '\r' {
							if !csv {
								return fail(lineno, nil, "", markerCorrupt)
							}
							notEnd = true
						}
					}
					if !notEnd {
						c2 := at(i)
						i++
						if c2 != '\r' && c2 != '\n' {
							if !csv {
								return fail(lineno, nil, "", markerCorrupt)
							}
							notEnd = true
						} else if eol == eolNL && c2 != '\n' || eol == eolCRNL && c2 != '\n' || eol == eolCR && c2 != '\r' {
							return fail(lineno, nil, "", "end-of-copy marker does not match previous newline style")
						}
					}
					if notEnd {
						i = prev + 1
						first = false
						continue
					}
					if s.markerAlone && prev > l.start {
						return fail(lineno, nil, "", "end-of-copy marker is not alone on its line")
					}
					l.contentEnd, l.next, l.eof, l.marker = prev, i, true, prev
					break
				} else if !csv {
					i++
				}
			}
			first = false
		}
		if l.eof && l.marker < 0 && inQuote {
			return fail(lineno, in[l.start:l.contentEnd], "", "unterminated CSV quoted field")
		}
		pos = l.next
		dataEnd := l.next
		if l.marker >= 0 {
			dataEnd = l.marker
		}
		if l.eof && l.contentEnd == l.start && dataEnd == l.start {
			// nothing on the last line
		} else if header {
			evs = append(evs, copyEvent{kind: 'H', data: string(in[l.start:dataEnd])})
		} else {
			content := in[l.start:l.contentEnd]
			var fields []refField
			var unterminated int
			if csv {
				fields, unterminated = refCSVFields(s, content)
			} else {
				fields = refTextFields(s, content)
				unterminated = -1
			}
			if key >= 0 {
				if unterminated >= 0 && unterminated <= key {
					return fail(lineno, content, "", "unterminated CSV quoted field")
				}
				if len(fields) <= key {
					msg := fmt.Sprintf("missing data for column %d", key+1)
					if opt.KeyColumn != "" {
						msg = fmt.Sprintf("missing data for column %q", opt.KeyColumn)
					}
					return fail(lineno, content, "", msg)
				}
			}
			ev := copyEvent{kind: 'R', data: string(in[l.start:dataEnd])}
			if key >= 0 {
				f := fields[key]
				if csv && f.null && opt.ForceNotNull {
					f = refField{value: s.null}
				} else if csv && !f.null && opt.ForceNull && f.value == s.null {
					f = refField{null: true}
				}
				ev.key, ev.null = f.value, f.null
			}
			evs = append(evs, ev)
		}
		header = false
		if l.marker >= 0 {
			evs = append(evs, copyEvent{kind: 'E', data: string(in[l.marker:l.next])})
			return evs, nil
		}
		if l.eof {
			return evs, nil
		}
	}
}

type refField struct {
	value string
	null  bool
}

func refTextFields(s *CopySplitter, line []byte) []refField {
	var fields []refField
	i := 0
	for {
		start := i
		var out []byte
		found := false
		end := i
		for {
			end = i
			if i >= len(line) {
				break
			}
			c := line[i]
			i++
			if c == s.delim {
				found = true
				break
			}
			if c == '\\' {
				if i >= len(line) {
					break
				}
				c = line[i]
				i++
				switch {
				case c >= '0' && c <= '7':
					v := int(c - '0')
					if i < len(line) && line[i] >= '0' && line[i] <= '7' {
						v = v*8 + int(line[i]-'0')
						i++
						if i < len(line) && line[i] >= '0' && line[i] <= '7' {
							v = v*8 + int(line[i]-'0')
							i++
						}
					}
					c = byte(v)
				case c == 'x':
					if i < len(line) && strings.IndexByte("0123456789abcdefABCDEF", line[i]) >= 0 {
						v := strings.IndexByte("0123456789abcdef", line[i]|0x20)
						i++
						if i < len(line) && strings.IndexByte("0123456789abcdefABCDEF", line[i]) >= 0 {
							v = v*16 + strings.IndexByte("0123456789abcdef", line[i]|0x20)
							i++
						}
						c = byte(v)
					}
				case c == 'b':
					c = '\b'
				case c == 'f':
					c = '\f'
				case c == 'n':
					c = '\n'
				case c == 'r':
					c = '\r'
				case c == 't':
					c = '\t'
				case c == 'v':
					c = '\v'
				}
			}
			out = append(out, c)
		}
		if string(line[start:end]) == s.null {
			fields = append(fields, refField{null: true})
		} else {
			fields = append(fields, refField{value: string(out)})
		}
		if !found {
			return fields
		}
	}
}

// refCSVFields parses a CSV line into fields; unterminated is the field whose quote is left open, or -1.
func refCSVFields(s *CopySplitter, line []byte) (fields []refField, unterminated int) {
	i := 0
	for {
		start := i
		var out []byte
		sawQuote, found := false, false
		end := i
	field:
		for {
			for {
				end = i
				if i >= len(line) {
					break field
				}
				c := line[i]
				i++
				if c == s.delim {
					found = true
					break field
				}
				if c == s.quote {
					sawQuote = true
					break
				}
				out = append(out, c)
			}
			for {
				if i >= len(line) {
					return fields, len(fields)
				}
				c := line[i]
				i++
				if c == s.escape && i < len(line) && (line[i] == s.escape || line[i] == s.quote) {
					out = append(out, line[i])
					i++
					continue
				}
				if c == s.quote {
					break
				}
				out = append(out, c)
			}
		}
		if !sawQuote && string(line[start:end]) == s.null {
			fields = append(fields, refField{null: true})
		} else {
			fields = append(fields, refField{value: string(out)})
		}
		if !found {
			return fields, -1
		}
	}
}

func refBinary(s *CopySplitter, key int, in []byte) ([]copyEvent, error) {
	var evs []copyEvent
	var line int64
	fail := func(msg string, withLine bool) ([]copyEvent, error) {
		e := NewError(SQLStateBadCopyFileFormat, msg)
		if withLine {
			e.Where = s.where(line, nil)
		}
		return evs, e
	}
	if len(in) < 11 || string(in[:11]) != copySignature {
		return fail("COPY file signature not recognized", false)
	}
	if len(in) < 15 {
		return fail("invalid COPY file header (missing flags)", false)
	}
	flags := binary.BigEndian.Uint32(in[11:])
	if flags&(1<<16) != 0 {
		return fail("invalid COPY file header (WITH OIDS)", false)
	}
	if flags>>17 != 0 {
		return fail("unrecognized critical flags in COPY file header", false)
	}
	if len(in) < 19 {
		return fail("invalid COPY file header (missing length)", false)
	}
	ext := int32(binary.BigEndian.Uint32(in[15:]))
	if ext < 0 {
		return fail("invalid COPY file header (missing length)", false)
	}
	if int64(len(in)) < 19+int64(ext) {
		return fail("invalid COPY file header (wrong length)", false)
	}
	pos := 19 + int(ext)
	evs = append(evs, copyEvent{kind: 'H', data: string(in[:pos])})
	for pos < len(in) {
		line++
		start := pos
		if len(in)-pos < 2 {
			return fail("unexpected EOF in COPY data", true)
		}
		n := int16(binary.BigEndian.Uint16(in[pos:]))
		pos += 2
		if n == -1 {
			evs = append(evs, copyEvent{kind: 'E', data: string(in[start:pos])})
			if pos < len(in) {
				return fail("received copy data after EOF marker", true)
			}
			return evs, nil
		}
		if n < 0 || int(n) <= key {
			return fail(fmt.Sprintf("row field count is %d, expected at least %d", n, max(key+1, 0)), true)
		}
		ev := copyEvent{kind: 'R', null: key >= 0}
		for f := 0; f < int(n); f++ {
			if len(in)-pos < 4 {
				return fail("unexpected EOF in COPY data", true)
			}
			l := int32(binary.BigEndian.Uint32(in[pos:]))
			pos += 4
			if l < -1 {
				return fail("invalid field size", true)
			}
			if l == -1 {
				continue
			}
			if int64(len(in)-pos) < int64(l) {
				return fail("unexpected EOF in COPY data", true)
			}
			if f == key {
				ev.key, ev.null = string(in[pos:pos+int(l)]), false
			}
			pos += int(l)
		}
		ev.data = string(in[start:pos])
		evs = append(evs, ev)
	}
	return evs, nil
}

// --- Samples ---

// binTuple encodes a binary COPY tuple; a nil field is NULL.
func binTuple(fields ...[]byte) []byte {
	b := binary.BigEndian.AppendUint16(nil, uint16(len(fields)))
	for _, f := range fields {
		if f == nil {
			b = binary.BigEndian.AppendUint32(b, 0xFFFFFFFF)
			continue
		}
		b = binary.BigEndian.AppendUint32(b, uint32(len(f)))
		b = append(b, f...)
	}
	return b
}

func binHeaderBytes(ext string) []byte {
	b := append([]byte(copySignature), 0, 0, 0, 0)
	b = binary.BigEndian.AppendUint32(b, uint32(len(ext)))
	return append(b, ext...)
}

var binTrailer = []byte{0xFF, 0xFF}

func catBytes(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

type copyCase struct {
	name string
	opt  CopyOptions
	key  int
	in   string
	want []copyEvent // nil when err is set: the events before the error are not checked
	err  string      // substring of errText
}

func row(data, key string) copyEvent { return copyEvent{kind: 'R', data: data, key: key} }
func nullRow(data string) copyEvent  { return copyEvent{kind: 'R', data: data, null: true} }
func hdr(data string) copyEvent      { return copyEvent{kind: 'H', data: data} }
func endMark(data string) copyEvent  { return copyEvent{kind: 'E', data: data} }

var (
	textOpt   = CopyOptions{}
	csvOpt    = CopyOptions{Format: CopyCSV}
	binOpt    = CopyOptions{Format: CopyBinary}
	text18Opt = CopyOptions{ServerVersion: 180000}
	csv18Opt  = CopyOptions{Format: CopyCSV, ServerVersion: 180001}
)

var copyCases = []copyCase{
	// Text: fields, escapes, NULL.
	{name: "text/simple", opt: textOpt, key: 1, in: "1\ta\tx\n2\tb\ty\n",
		want: []copyEvent{row("1\ta\tx\n", "a"), row("2\tb\ty\n", "b")}},
	{name: "text/first field", opt: textOpt, key: 0, in: "10\tx\n20\ty\n",
		want: []copyEvent{row("10\tx\n", "10"), row("20\ty\n", "20")}},
	{name: "text/last field", opt: textOpt, key: 2, in: "1\t2\t3\n",
		want: []copyEvent{row("1\t2\t3\n", "3")}},
	{name: "text/null", opt: textOpt, key: 0, in: "\\N\tx\n\\\\N\tx\n\\N2\tx\n",
		want: []copyEvent{nullRow("\\N\tx\n"), row("\\\\N\tx\n", `\N`), row("\\N2\tx\n", "N2")}},
	{name: "text/empty is not null", opt: textOpt, key: 1, in: "1\t\t2\n",
		want: []copyEvent{row("1\t\t2\n", "")}},
	{name: "text/custom null", opt: CopyOptions{Null: "nil"}, key: 0, in: "nil\nnil2\n",
		want: []copyEvent{nullRow("nil\n"), row("nil2\n", "nil2")}},
	{name: "text/null empty string", opt: CopyOptions{NullSet: true}, key: 0, in: "\n\\N\n",
		want: []copyEvent{nullRow("\n"), row("\\N\n", "N")}},
	{name: "text/escapes", opt: textOpt, key: 0,
		in:   "a\\tb\\nc\\\\d\\re\\bf\\fg\\vh\\qi\\\\\n",
		want: []copyEvent{row("a\\tb\\nc\\\\d\\re\\bf\\fg\\vh\\qi\\\\\n", "a\tb\nc\\d\re\bf\fg\vhqi\\")}},
	{name: "text/octal and hex", opt: textOpt, key: 0,
		in:   "\\101\\1011\\08\\7\\x41\\x4a1\\xg\\x\n",
		want: []copyEvent{row("\\101\\1011\\08\\7\\x41\\x4a1\\xg\\x\n", "AA1\x008\x07AJ1xgx")}},
	{name: "text/escaped delimiter", opt: textOpt, key: 1, in: "a\\\tb\tc\n",
		want: []copyEvent{row("a\\\tb\tc\n", "c")}},
	{name: "text/escaped newline continues the row", opt: textOpt, key: 1, in: "a\\\nb\tc\\\nd\n2\te\n",
		want: []copyEvent{row("a\\\nb\tc\\\nd\n", "c\nd"), row("2\te\n", "e")}},
	{name: "text/escaped CR continues the row", opt: textOpt, key: 0, in: "a\\\rb\n",
		want: []copyEvent{row("a\\\rb\n", "a\rb")}},
	{name: "text/custom delimiter", opt: CopyOptions{Delimiter: '|'}, key: 1, in: "1|a\tb|c\n",
		want: []copyEvent{row("1|a\tb|c\n", "a\tb")}},
	{name: "text/empty line", opt: textOpt, key: 0, in: "\n\n",
		want: []copyEvent{row("\n", ""), row("\n", "")}},
	{name: "text/missing field", opt: textOpt, key: 2, in: "1\t2\n1\t2\t3\n", err: "22P04 missing data for column 3 [COPY line 1: \"1\t2\"]"},
	{name: "text/missing field names column", opt: CopyOptions{Table: "t", KeyColumn: "aid"}, key: 1, in: "a\tb\nc\n",
		err: "22P04 missing data for column \"aid\" [COPY t, line 2: \"c\"]"},
	{name: "text/no key field", opt: textOpt, key: -1, in: "a\nb",
		want: []copyEvent{row("a\n", ""), row("b", "")}},
	// Text: line ends.
	{name: "text/crlf", opt: textOpt, key: 0, in: "a\r\nb\r\n",
		want: []copyEvent{row("a\r\n", "a"), row("b\r\n", "b")}},
	{name: "text/cr", opt: textOpt, key: 0, in: "a\rb\r",
		want: []copyEvent{row("a\r", "a"), row("b\r", "b")}},
	{name: "text/cr then lf is an error", opt: textOpt, key: 0, in: "a\rb\n", err: "literal newline found in data [COPY line 2]"},
	{name: "text/lf then cr is an error", opt: textOpt, key: 0, in: "a\nb\rc\n", err: "literal carriage return found in data [COPY line 2]"},
	{name: "text/crlf then lone cr is an error", opt: textOpt, key: 0, in: "a\r\nb\rc\r\n", err: "literal carriage return found in data"},
	{name: "text/crlf then lone cr at the end", opt: textOpt, key: 0, in: "a\r\nb\r", err: "literal carriage return found in data"},
	{name: "text/cr at the end", opt: textOpt, key: 0, in: "a\r",
		want: []copyEvent{row("a\r", "a")}},
	{name: "text/last line without newline", opt: textOpt, key: 1, in: "1\ta\n2\tb",
		want: []copyEvent{row("1\ta\n", "a"), row("2\tb", "b")}},
	{name: "text/backslash at the very end", opt: textOpt, key: 0, in: "a\nb\\",
		want: []copyEvent{row("a\n", "a"), row("b\\", "b")}},
	{name: "text/null with backslash at the end", opt: textOpt, key: 0, in: "\\N\\",
		want: []copyEvent{nullRow("\\N\\")}},
	// Text: the end marker.
	{name: "text/end marker", opt: textOpt, key: 0, in: "a\n\\.\nignored\n",
		want: []copyEvent{row("a\n", "a"), endMark("\\.\n")}},
	{name: "text/end marker crlf", opt: textOpt, key: 0, in: "a\r\n\\.\r\nignored",
		want: []copyEvent{row("a\r\n", "a"), endMark("\\.\r\n")}},
	{name: "text/end marker cr", opt: textOpt, key: 0, in: "a\r\\.\rx",
		want: []copyEvent{row("a\r", "a"), endMark("\\.\r")}},
	{name: "text/end marker first", opt: textOpt, key: 0, in: "\\.\n",
		want: []copyEvent{endMark("\\.\n")}},
	{name: "text/escaped backslash then dot is data", opt: textOpt, key: 0, in: "\\\\.\n",
		want: []copyEvent{row("\\\\.\n", "\\.")}},
	{name: "text/end marker after data (before 18)", opt: textOpt, key: 1, in: "1\tab\\.\nx\n",
		want: []copyEvent{row("1\tab", "ab"), endMark("\\.\n")}},
	{name: "text/end marker after data (18)", opt: text18Opt, key: 1, in: "1\tab\\.\nx\n", err: "end-of-copy marker is not alone on its line"},
	{name: "text/end marker corrupt", opt: textOpt, key: 0, in: "\\.x\n", err: "end-of-copy marker corrupt [COPY line 1]"},
	{name: "text/end marker corrupt (18)", opt: text18Opt, key: 0, in: "\\.x\n", err: "end-of-copy marker is not alone on its line"},
	{name: "text/end marker without newline", opt: textOpt, key: 0, in: "a\n\\.", err: "end-of-copy marker corrupt [COPY line 2]"},
	{name: "text/end marker wrong style", opt: textOpt, key: 0, in: "a\n\\.\r", err: "end-of-copy marker does not match previous newline style"},
	{name: "text/end marker wrong style crlf", opt: textOpt, key: 0, in: "a\r\n\\.\n", err: "end-of-copy marker does not match previous newline style"},
	{name: "text/end marker crlf corrupt", opt: textOpt, key: 0, in: "a\r\n\\.\rx", err: "end-of-copy marker corrupt"},
	// Text: header.
	{name: "text/header", opt: CopyOptions{Header: true}, key: 0, in: "id\tname\n1\ta\n",
		want: []copyEvent{hdr("id\tname\n"), row("1\ta\n", "1")}},
	{name: "text/header only", opt: CopyOptions{Header: true}, key: 3, in: "id",
		want: []copyEvent{hdr("id")}},

	// CSV.
	{name: "csv/simple", opt: csvOpt, key: 1, in: "1,a,x\n2,b,y\n",
		want: []copyEvent{row("1,a,x\n", "a"), row("2,b,y\n", "b")}},
	{name: "csv/quoted", opt: csvOpt, key: 1, in: "1,\"a,b\",x\n2,\"say \"\"hi\"\"\",y\n",
		want: []copyEvent{row("1,\"a,b\",x\n", "a,b"), row("2,\"say \"\"hi\"\"\",y\n", "say \"hi\"")}},
	{name: "csv/newline in quotes", opt: csvOpt, key: 1, in: "1,\"a\nb\r\nc\",x\n2,d\n",
		want: []copyEvent{row("1,\"a\nb\r\nc\",x\n", "a\nb\r\nc"), row("2,d\n", "d")}},
	{name: "csv/null and quoted empty", opt: csvOpt, key: 0, in: ",1\n\"\",2\n",
		want: []copyEvent{nullRow(",1\n"), row("\"\",2\n", "")}},
	{name: "csv/quoted null string is not null", opt: CopyOptions{Format: CopyCSV, Null: "NULL"}, key: 0, in: "NULL\n\"NULL\"\n\n",
		want: []copyEvent{nullRow("NULL\n"), row("\"NULL\"\n", "NULL"), row("\n", "")}},
	{name: "csv/force not null", opt: CopyOptions{Format: CopyCSV, ForceNotNull: true}, key: 0, in: ",1\n",
		want: []copyEvent{row(",1\n", "")}},
	{name: "csv/force null", opt: CopyOptions{Format: CopyCSV, ForceNull: true, Null: "n"}, key: 0, in: "\"n\",1\nn,2\nm,3\n",
		want: []copyEvent{nullRow("\"n\",1\n"), nullRow("n,2\n"), row("m,3\n", "m")}},
	{name: "csv/quote mid-field", opt: csvOpt, key: 0, in: "a\"b,c\"d,e\n",
		want: []copyEvent{row("a\"b,c\"d,e\n", "ab,cd")}},
	{name: "csv/backslash is data", opt: csvOpt, key: 0, in: "a\\,b\n\\N,c\n",
		want: []copyEvent{row("a\\,b\n", "a\\"), row("\\N,c\n", "\\N")}},
	{name: "csv/escape", opt: CopyOptions{Format: CopyCSV, Escape: '\\'}, key: 0, in: "\"a\\\"b\\\\c\\d\",x\n\"\\\\\",y\n",
		want: []copyEvent{row("\"a\\\"b\\\\c\\d\",x\n", "a\"b\\c\\d"), row("\"\\\\\",y\n", "\\")}},
	{name: "csv/escaped quote keeps the quote open", opt: CopyOptions{Format: CopyCSV, Escape: '\\'}, key: 0, in: "\"a\\\"\nb\",x\n",
		want: []copyEvent{row("\"a\\\"\nb\",x\n", "a\"\nb")}},
	{name: "csv/custom quote and delimiter", opt: CopyOptions{Format: CopyCSV, Quote: '\'', Delimiter: ';'}, key: 1, in: "1;'a;''b'\n",
		want: []copyEvent{row("1;'a;''b'\n", "a;'b")}},
	{name: "csv/crlf", opt: csvOpt, key: 0, in: "a\r\n\"b\r\n\"\r\n",
		want: []copyEvent{row("a\r\n", "a"), row("\"b\r\n\"\r\n", "b\r\n")}},
	{name: "csv/unquoted cr", opt: csvOpt, key: 0, in: "a\nb\rc\n", err: "unquoted carriage return found in data"},
	{name: "csv/unterminated quote", opt: csvOpt, key: 0, in: "a\n\"b\nc", err: "unterminated CSV quoted field [COPY line 3: \"\"b\nc\"]"},
	{name: "csv/unterminated quote in the key", opt: CopyOptions{Format: CopyCSV, Escape: '\\'}, key: 0, in: "\"a\"\\\"\n",
		err: "unterminated CSV quoted field"},
	{name: "csv/missing field", opt: csvOpt, key: 1, in: "\"a,b\"\n", err: "missing data for column 2"},
	{name: "csv/header with quotes", opt: CopyOptions{Format: CopyCSV, Header: true}, key: 0, in: "\"i\nd\",x\n1,2\n",
		want: []copyEvent{hdr("\"i\nd\",x\n"), row("1,2\n", "1")}},
	{name: "csv/end marker (before 18)", opt: csvOpt, key: 0, in: "a\n\\.\nb\n",
		want: []copyEvent{row("a\n", "a"), endMark("\\.\n")}},
	{name: "csv/end marker crlf", opt: csvOpt, key: 0, in: "a\r\n\\.\r\nb\r\n",
		want: []copyEvent{row("a\r\n", "a"), endMark("\\.\r\n")}},
	{name: "csv/end marker is data in 18", opt: csv18Opt, key: 0, in: "a\n\\.\nb\n",
		want: []copyEvent{row("a\n", "a"), row("\\.\n", "\\."), row("b\n", "b")}},
	{name: "csv/backslash-dot not alone is data", opt: csvOpt, key: 0, in: "\\.a\n\\.,\\.\n\"\\.\"\n",
		want: []copyEvent{row("\\.a\n", "\\.a"), row("\\.,\\.\n", "\\."), row("\"\\.\"\n", "\\.")}},
	{name: "csv/backslash-dot not first is data", opt: csvOpt, key: 1, in: "a,\\.\n",
		want: []copyEvent{row("a,\\.\n", "\\.")}},
	{name: "csv/backslash-dot at the very end is data", opt: csvOpt, key: 0, in: "a\n\\.",
		want: []copyEvent{row("a\n", "a"), row("\\.", "\\.")}},
	{name: "csv/backslash at the very end", opt: csvOpt, key: 0, in: "a\n\\",
		want: []copyEvent{row("a\n", "a"), row("\\", "\\")}},
	{name: "csv/backslash-dot-lf in crlf is data, then an error", opt: csvOpt, key: 0, in: "a\r\n\\.\nb\r\n", err: "unquoted newline found in data"},
	{name: "csv/end marker wrong style", opt: csvOpt, key: 0, in: "a\n\\.\r", err: "end-of-copy marker does not match previous newline style"},
	{name: "csv/quote is backslash", opt: CopyOptions{Format: CopyCSV, Quote: '\\'}, key: 0, in: "\\.x\\\n\\a\\\n",
		want: []copyEvent{row("\\.x\\\n", ".x"), row("\\a\\\n", "a")}},

	// Binary.
	{name: "binary/simple", opt: binOpt, key: 1,
		in: string(catBytes(binHeaderBytes(""), binTuple([]byte("k1"), []byte("v1")), binTuple([]byte("k2"), nil), binTrailer)),
		want: []copyEvent{hdr(string(binHeaderBytes(""))), row(string(binTuple([]byte("k1"), []byte("v1"))), "v1"),
			nullRow(string(binTuple([]byte("k2"), nil))), endMark("\xff\xff")}},
	{name: "binary/extension and empty key", opt: binOpt, key: 0,
		in:   string(catBytes(binHeaderBytes("ext!"), binTuple([]byte{}, []byte("x")))),
		want: []copyEvent{hdr(string(binHeaderBytes("ext!"))), row(string(binTuple([]byte{}, []byte("x"))), "")}},
	{name: "binary/empty stream", opt: binOpt, key: 0, in: "", err: "22P04 COPY file signature not recognized"},
	{name: "binary/bad signature", opt: binOpt, key: 0, in: "PGCOPY\n\xff\r\n\x01rest-of-it", err: "COPY file signature not recognized"},
	{name: "binary/short header", opt: binOpt, key: 0, in: copySignature + "\x00\x00", err: "invalid COPY file header (missing flags)"},
	{name: "binary/oids", opt: binOpt, key: 0, in: copySignature + "\x00\x01\x00\x00\x00\x00\x00\x00", err: "invalid COPY file header (WITH OIDS)"},
	{name: "binary/critical flags", opt: binOpt, key: 0, in: copySignature + "\x00\x02\x00\x00\x00\x00\x00\x00", err: "unrecognized critical flags"},
	{name: "binary/negative extension", opt: binOpt, key: 0, in: copySignature + "\x00\x00\x00\x00\xff\xff\xff\xff", err: "invalid COPY file header (missing length)"},
	{name: "binary/short extension", opt: binOpt, key: 0, in: copySignature + "\x00\x00\x00\x00\x00\x00\x00\x05abc", err: "invalid COPY file header (wrong length)"},
	{name: "binary/too few fields", opt: binOpt, key: 2,
		in:  string(catBytes(binHeaderBytes(""), binTuple([]byte("a"), []byte("b"), []byte("c")), binTuple([]byte("a"), []byte("b")))),
		err: "row field count is 2, expected at least 3 [COPY line 2]"},
	{name: "binary/bad field size", opt: binOpt, key: 0,
		in: string(catBytes(binHeaderBytes(""), []byte{0, 1, 0xff, 0xff, 0xff, 0xfe})), err: "invalid field size [COPY line 1]"},
	{name: "binary/field past the end", opt: binOpt, key: 0,
		in: string(catBytes(binHeaderBytes(""), []byte{0, 1, 0, 0, 0, 9, 'a'})), err: "unexpected EOF in COPY data [COPY line 1]"},
	{name: "binary/data after trailer", opt: binOpt, key: 0,
		in: string(catBytes(binHeaderBytes(""), binTrailer, []byte{0})), err: "received copy data after EOF marker"},
	{name: "binary/no trailer", opt: binOpt, key: 0,
		in:   string(catBytes(binHeaderBytes(""), binTuple([]byte("a")))),
		want: []copyEvent{hdr(string(binHeaderBytes(""))), row(string(binTuple([]byte("a"))), "a")}},
}

func eventsEqual(a, b []copyEvent) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestCopySplitterCases runs every case whole, cut at every offset, and one byte at a time, and compares with the
// expected events and with the reference.
func TestCopySplitterCases(t *testing.T) {
	for _, c := range copyCases {
		t.Run(c.name, func(t *testing.T) {
			in := []byte(c.in)
			check := func(how string, evs []copyEvent, err error) {
				t.Helper()
				if c.err != "" {
					if err == nil || !strings.Contains(errText(err), c.err) {
						t.Fatalf("%s: error %q, want %q (events %v)", how, errText(err), c.err, evs)
					}
					return
				}
				if err != nil {
					t.Fatalf("%s: %s (events %v)", how, errText(err), evs)
				}
				if !eventsEqual(evs, c.want) {
					t.Fatalf("%s:\n got  %v\n want %v", how, evs, c.want)
				}
				checkConcat(t, in, evs, err)
			}
			evs, err := refSplit(c.opt, c.key, in)
			check("reference", evs, err)
			evs, err = splitCopy(c.opt, c.key, in, nil)
			check("whole", evs, err)
			for i := 0; i <= len(in); i++ {
				evs, err := splitCopy(c.opt, c.key, in, []int{i})
				check(fmt.Sprintf("cut at %d", i), evs, err)
			}
			every := make([]int, len(in))
			for i := range every {
				every[i] = i
			}
			evs, err = splitCopy(c.opt, c.key, in, every)
			check("byte by byte", evs, err)
		})
	}
}

// copySample is a multi-row stream with every kind of row the splitter treats specially.
func copySamples() []struct {
	name string
	opt  CopyOptions
	key  int
	in   []byte
} {
	text := "id\tv\n" + "1\tplain\n" + "2\ttab\\there\n" + "3\tnew\\\nline\n" + "\\N\tnull key\n" +
		"5\t\\\\back\\\\slash\\\\\n" + "6\t\\101\\x42\n" + "7\t\n" + "8\ttrailing"
	csv := "id,v\n" + "1,plain\n" + "\"2\",\"quoted, comma\"\n" + "\"3\n3\",\"new\r\nline\"\n" + ",null key\n" +
		"\"\",empty key\n" + "\"6\"\"\",\"q\"\"uote\"\n" + "\\.x,not the end\n" + "8,last\n" + "\\.\n" + "after the end\n"
	crlf := "1\ta\r\n2\\\r\\\n2\tb\r\n3\tc\r\n"
	bin := catBytes(binHeaderBytes("xx"), binTuple([]byte("1"), []byte("a")), binTuple(nil, []byte("b")),
		binTuple([]byte(strings.Repeat("k", 300)), []byte{}), binTuple([]byte{0, 0, 0, 4}, nil), binTrailer)
	return []struct {
		name string
		opt  CopyOptions
		key  int
		in   []byte
	}{
		{"text", CopyOptions{Header: true}, 0, []byte(text)},
		{"text key 1", CopyOptions{Header: true}, 1, []byte(text)},
		{"csv", CopyOptions{Format: CopyCSV, Header: true}, 0, []byte(csv)},
		{"csv key 1", CopyOptions{Format: CopyCSV, Header: true}, 1, []byte(csv)},
		{"text crlf", CopyOptions{}, 0, []byte(crlf)},
		{"binary", CopyOptions{Format: CopyBinary}, 0, bin},
		{"binary key 1", CopyOptions{Format: CopyBinary}, 1, bin},
	}
}

// TestCopySplitterChunking cuts multi-row samples at every pair of offsets: the events must not depend on the
// cuts, must match the reference, and must concatenate to the input.
func TestCopySplitterChunking(t *testing.T) {
	for _, c := range copySamples() {
		t.Run(c.name, func(t *testing.T) {
			want, err := refSplit(c.opt, c.key, c.in)
			if err != nil {
				t.Fatalf("reference: %s", errText(err))
			}
			whole, err := splitCopy(c.opt, c.key, c.in, nil)
			if err != nil || !eventsEqual(whole, want) {
				t.Fatalf("whole: %s\n got  %v\n want %v", errText(err), whole, want)
			}
			checkConcat(t, c.in, whole, nil)
			step := 1
			if len(c.in) > 200 {
				step = 7 // the binary sample is long: every pair would take too long
			}
			for i := 0; i <= len(c.in); i++ {
				for j := i; j <= len(c.in); j += step {
					evs, err := splitCopy(c.opt, c.key, c.in, []int{i, j})
					if err != nil || !eventsEqual(evs, want) {
						t.Fatalf("cut at %d and %d: %s\n got  %v\n want %v", i, j, errText(err), evs, want)
					}
				}
			}
		})
	}
}

// TestCopySplitterNoAlloc: rows inside a chunk cost no allocation, nor do rows spanning chunks once the carry-over
// buffer has grown.
func TestCopySplitterNoAlloc(t *testing.T) {
	for _, c := range copySamples() {
		if c.opt.Header {
			c.opt.Header = false
		}
		s := NewCopySplitter(c.opt, c.key)
		h := nopCopyHandler{}
		var in []byte
		if c.opt.Format == CopyBinary {
			// Rows only, after a header written once.
			if err := s.Write(binHeaderBytes("xx"), h); err != nil {
				t.Fatal(err)
			}
			in = c.in[len(binHeaderBytes("xx")) : len(c.in)-2]
		} else {
			in = c.in[:bytes.LastIndexByte(c.in, '\n')+1]
			if c.opt.Format == CopyCSV {
				in = in[:bytes.Index(in, []byte("\\.\n"))]
			}
			in = in[bytes.IndexByte(in, '\n')+1:] // no header line
		}
		run := func() {
			if err := s.Write(in, h); err != nil {
				t.Fatal(err)
			}
			for i := 0; i < len(in); i += 5 {
				if err := s.Write(in[i:min(i+5, len(in))], h); err != nil {
					t.Fatal(err)
				}
			}
		}
		run()
		if a := testing.AllocsPerRun(20, run); a != 0 {
			t.Errorf("%s: %v allocations per run", c.name, a)
		}
	}
}

type nopCopyHandler struct{}

func (nopCopyHandler) CopyHeader([]byte) error            { return nil }
func (nopCopyHandler) CopyRow([]byte, []byte, bool) error { return nil }
func (nopCopyHandler) CopyEnd([]byte) error               { return nil }

type failingHandler struct{ nopCopyHandler }

var errStop = errors.New("stop")

func (failingHandler) CopyRow([]byte, []byte, bool) error { return errStop }

// TestCopySplitterErrorsStick: an error (the handler's too) stops the splitter for good.
func TestCopySplitterErrorsStick(t *testing.T) {
	s := NewCopySplitter(CopyOptions{}, 0)
	if err := s.Write([]byte("a\nb\n"), failingHandler{}); err != errStop {
		t.Fatalf("got %v", err)
	}
	if err := s.Write([]byte("c\n"), nopCopyHandler{}); err != errStop {
		t.Fatalf("then %v", err)
	}
	if err := s.Close(nopCopyHandler{}); err != errStop {
		t.Fatalf("close %v", err)
	}
	s = NewCopySplitter(CopyOptions{}, 3)
	err := s.Write([]byte("a\n"), nopCopyHandler{})
	var e *Error
	if !errors.As(err, &e) || e.Code != SQLStateBadCopyFileFormat || e.Severity != "ERROR" {
		t.Fatalf("got %#v", err)
	}
}

func TestCopySplitterMaxRowSize(t *testing.T) {
	opt := CopyOptions{MaxRowSize: 10}
	if _, err := splitCopy(opt, 0, []byte("0123456789\n0123456789012\n"), nil); err != nil {
		t.Fatalf("rows inside a chunk are not bounded: %v", err)
	}
	_, err := splitCopy(opt, 0, []byte("0123456789012\n"), []int{5})
	if !strings.Contains(errText(err), SQLStateProgramLimitExceeded) {
		t.Fatalf("got %v", errText(err))
	}
	bin := catBytes(binHeaderBytes(""), binTuple([]byte("01234567890123456789")))
	_, err = splitCopy(CopyOptions{Format: CopyBinary, MaxRowSize: 20}, 0, bin, []int{len(bin) - 1})
	if !strings.Contains(errText(err), SQLStateProgramLimitExceeded) {
		t.Fatalf("binary: got %v", errText(err))
	}
}

// --- Benchmarks: pgbench_accounts-like rows. ---

const benchCopyRows = 1000

func benchCopyText() []byte {
	var b []byte
	for i := 1; i <= benchCopyRows; i++ {
		b = fmt.Appendf(b, "%d\t%d\t0\t%s\n", i, (i-1)/100000+1, strings.Repeat(" ", 84))
	}
	return b
}

func benchCopyCSV() []byte {
	var b []byte
	for i := 1; i <= benchCopyRows; i++ {
		b = fmt.Appendf(b, "%d,%d,0,%s\n", i, (i-1)/100000+1, strings.Repeat(" ", 84))
	}
	return b
}

// benchCopyBinary is the tuples only, without the file header.
func benchCopyBinary() []byte {
	var b []byte
	for i := 1; i <= benchCopyRows; i++ {
		b = append(b, binTuple(binary.BigEndian.AppendUint32(nil, uint32(i)), binary.BigEndian.AppendUint32(nil, 1),
			binary.BigEndian.AppendUint32(nil, 0), []byte(strings.Repeat(" ", 84)))...)
	}
	return b
}

type countingHandler struct{ rows, keyBytes int }

func (h *countingHandler) CopyHeader([]byte) error { return nil }
func (h *countingHandler) CopyRow(_, key []byte, _ bool) error {
	h.rows++
	h.keyBytes += len(key)
	return nil
}
func (h *countingHandler) CopyEnd([]byte) error { return nil }

// benchCopy splits data in chunks of chunk bytes (0: one chunk per row, as psql sends them; pgx and COPY from a
// file send 64 kB). One splitter reads the stream again and again, so allocs/op shows what rows cost.
func benchCopy(b *testing.B, opt CopyOptions, data []byte, chunk int) {
	var chunks [][]byte
	if chunk == 0 {
		for rest := data; len(rest) > 0; {
			n := bytes.IndexByte(rest, '\n') + 1
			if opt.Format == CopyBinary {
				n = 2 + 4*4 + 4 + 4 + 4 + 84
			}
			chunks, rest = append(chunks, rest[:n]), rest[n:]
		}
	} else {
		for i := 0; i < len(data); i += chunk {
			chunks = append(chunks, data[i:min(i+chunk, len(data))])
		}
	}
	h := &countingHandler{}
	s := NewCopySplitter(opt, 0)
	if opt.Format == CopyBinary {
		if err := s.Write(binHeaderBytes(""), h); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		for _, c := range chunks {
			if err := s.Write(c, h); err != nil {
				b.Fatal(err)
			}
		}
	}
	if h.rows < benchCopyRows {
		b.Fatal(h.rows)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*benchCopyRows), "ns/row")
}

func BenchmarkCopySplitText(b *testing.B) {
	data := benchCopyText()
	b.Run("64k", func(b *testing.B) { benchCopy(b, CopyOptions{}, data, 65536) })
	b.Run("8k", func(b *testing.B) { benchCopy(b, CopyOptions{}, data, 8192) })
	b.Run("row", func(b *testing.B) { benchCopy(b, CopyOptions{}, data, 0) })
	b.Run("100", func(b *testing.B) { benchCopy(b, CopyOptions{}, data, 100) })
}

func BenchmarkCopySplitCSV(b *testing.B) {
	data := benchCopyCSV()
	b.Run("64k", func(b *testing.B) { benchCopy(b, CopyOptions{Format: CopyCSV}, data, 65536) })
	b.Run("8k", func(b *testing.B) { benchCopy(b, CopyOptions{Format: CopyCSV}, data, 8192) })
	b.Run("row", func(b *testing.B) { benchCopy(b, CopyOptions{Format: CopyCSV}, data, 0) })
	b.Run("100", func(b *testing.B) { benchCopy(b, CopyOptions{Format: CopyCSV}, data, 100) })
}

// BenchmarkCopySplitSlowPaths: rows whose key needs de-escaping (text) or de-quoting (CSV), and quoted fields
// with line ends in them.
func BenchmarkCopySplitSlowPaths(b *testing.B) {
	var text, csv []byte
	for i := 1; i <= benchCopyRows; i++ {
		text = fmt.Appendf(text, "key\\\\%d\\t\\x41\\101\t1\t0\t%s\\n%s\n", i, strings.Repeat(" ", 40), strings.Repeat(" ", 40))
		csv = fmt.Appendf(csv, "\"key \"\"%d\"\"\",1,0,\"%s\n%s\"\n", i, strings.Repeat(" ", 40), strings.Repeat(" ", 40))
	}
	b.Run("text escaped", func(b *testing.B) { benchCopy(b, CopyOptions{}, text, 65536) })
	b.Run("csv quoted", func(b *testing.B) { benchCopy(b, CopyOptions{Format: CopyCSV}, csv, 65536) })
}

func BenchmarkCopySplitBinary(b *testing.B) {
	data := benchCopyBinary()
	b.Run("64k", func(b *testing.B) { benchCopy(b, CopyOptions{Format: CopyBinary}, data, 65536) })
	b.Run("8k", func(b *testing.B) { benchCopy(b, CopyOptions{Format: CopyBinary}, data, 8192) })
	b.Run("row", func(b *testing.B) { benchCopy(b, CopyOptions{Format: CopyBinary}, data, 0) })
	b.Run("100", func(b *testing.B) { benchCopy(b, CopyOptions{Format: CopyBinary}, data, 100) })
}

// --- The oracle: real Postgres. ---

// copyOracleValues are nasty key values: every byte the formats escape or quote, and look-alikes of markers.
var copyOracleValues = []*string{
	ptr(""), nil, ptr("plain"), ptr("tab\there"), ptr("new\nline"), ptr("cr\rret"), ptr("crlf\r\n"), ptr(`back\slash`),
	ptr(`\N`), ptr(`\.`), ptr("\\.\n"), ptr(`"quoted"`), ptr("a,b"), ptr("NULL"), ptr(" spaced "), ptr("ünïcödé ✓"),
	ptr(`\x41`), ptr(strings.Repeat("long", 100)), ptr("\x01ctrl\x7f"), ptr(`end\`), ptr("."), ptr(`\`), ptr(`""`),
	ptr("'single'"), ptr("semi;colon|pipe"),
}

func ptr(s string) *string { return &s }

// TestCopySplitterPostgresOracle checks the splitter against Postgres: (1) the keys it reads from what COPY TO
// writes in every format are the values SELECT returns; (2) for hand-made COPY FROM streams, it accepts what
// Postgres accepts, its keys are the values Postgres stores, its errors are Postgres's, and the rows it hands over,
// sent to two tables as two streams (header + their rows + end marker), load the same rows as the whole stream.
func TestCopySplitterPostgresOracle(t *testing.T) {
	c := pgtest.Start(t, pgtest.Options{})
	conn := c.Connect(t, "postgres", pgtest.Superuser, "")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	exec := func(sql string, args ...any) {
		t.Helper()
		if _, err := conn.Exec(ctx, sql, args...); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	var version int
	if err := conn.QueryRow(ctx, "SELECT current_setting('server_version_num')::int").Scan(&version); err != nil {
		t.Fatal(err)
	}
	t.Logf("Postgres %d", version)
	exec("CREATE TABLE src (id int PRIMARY KEY, k text, v text)")
	for i, v := range copyOracleValues {
		exec("INSERT INTO src VALUES ($1, $2, $3)", i, v, fmt.Sprintf("v%d", i))
	}
	rng := rand.New(rand.NewPCG(1, 2))
	cutsFor := func(n int) [][]int {
		every := make([]int, n)
		for i := range every {
			every[i] = i
		}
		random := []int{}
		for i := 0; i < n; i += 1 + rng.IntN(40) {
			random = append(random, i)
		}
		return [][]int{nil, every, random}
	}

	t.Run("COPY TO", func(t *testing.T) {
		for _, tc := range []struct {
			with string
			opt  CopyOptions
		}{
			{"", CopyOptions{}},
			{"(DELIMITER '|', NULL 'nil')", CopyOptions{Delimiter: '|', Null: "nil"}},
			{"(FORMAT text, HEADER)", CopyOptions{Header: true}},
			{"(FORMAT csv)", CopyOptions{Format: CopyCSV}},
			{"(FORMAT csv, HEADER, NULL 'NULL')", CopyOptions{Format: CopyCSV, Header: true, Null: "NULL"}},
			{`(FORMAT csv, QUOTE '''', ESCAPE '\', DELIMITER ';', FORCE_QUOTE *)`,
				CopyOptions{Format: CopyCSV, Quote: '\'', Escape: '\\', Delimiter: ';'}},
			{"(FORMAT binary)", CopyOptions{Format: CopyBinary}},
		} {
			var out bytes.Buffer
			sql := "COPY (SELECT id, k, v FROM src ORDER BY id) TO STDOUT " + tc.with
			if _, err := conn.PgConn().CopyTo(ctx, &out, sql); err != nil {
				t.Fatalf("%s: %v", sql, err)
			}
			var want []copyEvent
			for _, v := range copyOracleValues {
				if v == nil {
					want = append(want, copyEvent{kind: 'R', null: true})
				} else {
					want = append(want, copyEvent{kind: 'R', key: *v})
				}
			}
			for _, cuts := range cutsFor(out.Len()) {
				evs, err := splitCopy(tc.opt, 1, out.Bytes(), cuts)
				if err != nil {
					t.Fatalf("%s: %s", sql, errText(err))
				}
				checkConcat(t, out.Bytes(), evs, nil)
				var got []copyEvent
				for _, e := range evs {
					if e.kind == 'R' {
						got = append(got, copyEvent{kind: 'R', key: e.key, null: e.null})
					}
				}
				if !eventsEqual(got, want) {
					t.Fatalf("%s:\n got  %v\n want %v", sql, got, want)
				}
			}
		}
	})

	t.Run("COPY FROM", func(t *testing.T) {
		exec("CREATE TABLE dst (seq serial, k text, v text)")
		exec("CREATE TABLE shard0 (seq serial, k text, v text)")
		exec("CREATE TABLE shard1 (seq serial, k text, v text)")
		text, csv := CopyOptions{}, CopyOptions{Format: CopyCSV}
		for _, tc := range []struct {
			with string
			opt  CopyOptions
			in   string
		}{
			{"", text, "a\t1\nb\t2\n"},
			{"", text, "a\\\nb\t1\nc\\\rd\t2\n"},
			{"", text, "\\101\\x42\\0101\\x4\\x\\q\t1\n"},
			{"", text, "a\\\tb\tc\n"},
			{"", text, "\\N\t1\n\\\\N\t2\n\tempty\n"},
			{"", text, "a\t1\r\nb\t2\r\n"},
			{"", text, "a\t1\rb\t2\r"},
			{"", text, "a\t1\n\\.\nignored\tx\n"},
			{"", text, "a\t1\r\n\\.\r\n"},
			{"", text, "a\t1\nb\tx\\.\nignored\n"},
			{"", text, "a\t1\nlast\t2"},
			{"", text, "x\ty\\"},
			{"", text, "\\\\.\t1\n"},
			{"(HEADER)", CopyOptions{Header: true}, "k\tv\na\t1\n"},
			{"(DELIMITER '|', NULL 'nil')", CopyOptions{Delimiter: '|', Null: "nil"}, "nil|1\nnil2|a\tb\n"},
			{"", text, "a\t1\rb\t2\n"},
			{"", text, "a\t1\nb\t2\rc\t3\n"},
			{"", text, "a\t1\r\nb\t2\rc\t3\r\n"},
			{"", text, "\\.x\n"},
			{"", text, "a\t1\n\\."},
			{"", text, "a\t1\n\\.\r"},
			{"", text, "a\t1\r\n\\.\n"},
			{"(FORMAT csv)", csv, "a,1\n\"b,c\",2\n"},
			{"(FORMAT csv)", csv, "\"multi\nline\",1\n\"cr\r\nlf\",2\n"},
			{"(FORMAT csv)", csv, ",1\n\"\",2\n"},
			{"(FORMAT csv)", csv, "a,1\n\\.\nignored\n"},
			{"(FORMAT csv)", csv, "a,1\r\n\\.\r\nignored\r\n"},
			{"(FORMAT csv)", csv, "\\.x,1\n\\.,2\n"},
			{"(FORMAT csv)", csv, "a\"b,c\"d,1\n"},
			{"(FORMAT csv)", csv, "a,1\r\n\"b\r\n\",2\r\n"},
			{"(FORMAT csv)", csv, "a,1\nlast,2"},
			{"(FORMAT csv, NULL 'NULL')", CopyOptions{Format: CopyCSV, Null: "NULL"}, "NULL,1\n\"NULL\",2\n,3\n"},
			{`(FORMAT csv, ESCAPE '\')`, CopyOptions{Format: CopyCSV, Escape: '\\'}, "\"a\\\"b\",1\n\"c\\\\\",2\n\"d\\e\",3\n"},
			{`(FORMAT csv, QUOTE '''', DELIMITER ';')`, CopyOptions{Format: CopyCSV, Quote: '\'', Delimiter: ';'}, "'a;''b';1\n"},
			{"(FORMAT csv, NULL 'n', FORCE_NULL (k))", CopyOptions{Format: CopyCSV, Null: "n", ForceNull: true}, "\"n\",1\nn,2\nm,3\n"},
			{"(FORMAT csv, FORCE_NOT_NULL (k))", CopyOptions{Format: CopyCSV, ForceNotNull: true}, ",1\n\"\",2\n"},
			{"(FORMAT csv, HEADER)", CopyOptions{Format: CopyCSV, Header: true}, "\"k\nk\",v\na,1\n"},
			{"(FORMAT csv)", csv, "\"abc,1\n"},
			{"(FORMAT csv)", csv, "a,1\nb,2\rc,3\n"},
			{"(FORMAT csv)", csv, "a,1\n\\.\r"},
			{"(FORMAT binary)", CopyOptions{Format: CopyBinary},
				string(catBytes(binHeaderBytes(""), binTuple([]byte("a"), []byte("1")), binTuple(nil, []byte("2")), binTrailer))},
			{"(FORMAT binary)", CopyOptions{Format: CopyBinary},
				string(catBytes(binHeaderBytes("ext"), binTuple([]byte("a"), []byte("1"))))},
			{"(FORMAT binary)", CopyOptions{Format: CopyBinary}, "PGCOPY\n\xff\r\n\x01"},
			{"(FORMAT binary)", CopyOptions{Format: CopyBinary},
				string(catBytes(binHeaderBytes(""), []byte{0, 2, 0, 0, 0, 5, 'a'}))},
			{"(FORMAT binary)", CopyOptions{Format: CopyBinary},
				string(catBytes(binHeaderBytes(""), binTuple([]byte("a"), []byte("1")), binTrailer, []byte{0}))},
		} {
			name := fmt.Sprintf("%s %q", tc.with, tc.in)
			exec("TRUNCATE dst, shard0, shard1 RESTART IDENTITY")
			tc.opt.ServerVersion = version
			sql := "COPY %s (k, v) FROM STDIN " + tc.with
			_, pgErr := conn.PgConn().CopyFrom(ctx, strings.NewReader(tc.in), fmt.Sprintf(sql, "dst"))
			evs, err := splitCopy(tc.opt, 0, []byte(tc.in), nil)
			if pgErr != nil {
				var pe *pgconn.PgError
				if !errors.As(pgErr, &pe) {
					t.Fatalf("%s: %v", name, pgErr)
				}
				var e *Error
				if !errors.As(err, &e) || e.Code != pe.Code || e.Message != pe.Message {
					t.Errorf("%s: Postgres says %s %s (%s), the splitter %s", name, pe.Code, pe.Message, pe.Where, errText(err))
				} else {
					t.Logf("%s: both say %s %s (%s; we say %s)", name, pe.Code, pe.Message, pe.Where, e.Where)
				}
				continue
			}
			if err != nil {
				t.Errorf("%s: Postgres accepts it, the splitter says %s", name, errText(err))
				continue
			}
			checkConcat(t, []byte(tc.in), evs, nil)
			for _, cuts := range cutsFor(len(tc.in)) {
				if evs2, err := splitCopy(tc.opt, 0, []byte(tc.in), cuts); err != nil || !eventsEqual(evs2, evs) {
					t.Fatalf("%s: cut at %v: %s %v, whole %v", name, cuts, errText(err), evs2, evs)
				}
			}
			var want []copyEvent
			rows, err := conn.Query(ctx, "SELECT k FROM dst ORDER BY seq")
			if err != nil {
				t.Fatal(err)
			}
			for rows.Next() {
				var k *string
				if err := rows.Scan(&k); err != nil {
					t.Fatal(err)
				}
				if k == nil {
					want = append(want, copyEvent{kind: 'R', null: true})
				} else {
					want = append(want, copyEvent{kind: 'R', key: *k})
				}
			}
			if rows.Err() != nil {
				t.Fatal(rows.Err())
			}
			// Route the rows to two tables, each fed a stream of its own.
			var got []copyEvent
			var streams [2][]byte
			for _, e := range evs {
				switch e.kind {
				case 'H', 'E':
					streams[0] = append(streams[0], e.data...)
					streams[1] = append(streams[1], e.data...)
				case 'R':
					got = append(got, copyEvent{kind: 'R', key: e.key, null: e.null})
					shard := 0
					if !e.null {
						shard = len(e.key) % 2
					}
					streams[shard] = append(streams[shard], e.data...)
				}
			}
			if !eventsEqual(got, want) {
				t.Errorf("%s: keys\n got  %v\n Postgres stored %v", name, got, want)
				continue
			}
			for i, s := range streams {
				if _, err := conn.PgConn().CopyFrom(ctx, bytes.NewReader(s), fmt.Sprintf(sql, "shard"+strconv.Itoa(i))); err != nil {
					t.Fatalf("%s: shard %d refuses its stream %q: %v", name, i, s, err)
				}
			}
			var same bool
			err = conn.QueryRow(ctx, `SELECT (SELECT array_agg((k, v) ORDER BY k, v) FROM dst) IS NOT DISTINCT FROM
				(SELECT array_agg((k, v) ORDER BY k, v) FROM (SELECT k, v FROM shard0 UNION ALL SELECT k, v FROM shard1) s)`).Scan(&same)
			if err != nil {
				t.Fatal(err)
			}
			if !same {
				t.Errorf("%s: the shards hold other rows than the whole load", name)
			}
		}
	})
}
