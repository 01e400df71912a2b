package codec

import (
	"encoding/binary"
	"errors"
	"testing"
)

// TestValidBodiesRoundTrip runs every oracle message through the decoder table: it decodes, re-encodes to the same
// bytes (exact decoders), and truncating it or appending a byte is refused where the message format allows to tell.
func TestValidBodiesRoundTrip(t *testing.T) {
	for _, dir := range []struct {
		cases    []oracleCase
		decoders []decoder
	}{{frontendCases(), frontendDecoders}, {backendCases(), backendDecoders}} {
		for _, c := range dir.cases {
			t.Run(c.name, func(t *testing.T) {
				d := decoderFor(t, dir.decoders, c.name)
				body := frameOne(t, c.ours).Body
				out, err := d.rt(body)
				if err != nil {
					t.Fatalf("%s cannot decode a valid body: %v", d.name, err)
				}
				if d.exact && string(out) != string(c.ours) {
					t.Fatalf("%s re-encoded %q as %q", d.name, c.ours, out)
				}
				checkStable(t, d, body)
				if d.noTruncate {
					step := 1
					if len(body) > 4096 {
						step = len(body)/1024 + 1 // sample big bodies; the ends are always tried
					}
					for l := 0; l < len(body); l++ {
						if l%step != 0 && l > 64 && l < len(body)-64 {
							continue
						}
						short := append([]byte(nil), body[:l]...)
						if _, err := d.rt(short); err == nil {
							t.Fatalf("%s accepted the body cut to %d of %d bytes", d.name, l, len(body))
						}
					}
				}
				if d.noTrailing {
					for _, extra := range []byte{0, 'x'} {
						long := append(append([]byte(nil), body...), extra)
						if _, err := d.rt(long); err == nil {
							t.Fatalf("%s accepted a trailing %q", d.name, extra)
						}
					}
				}
			})
		}
	}
}

// TestMalformedErrors checks which error a malformed body gets.
func TestMalformedErrors(t *testing.T) {
	u16 := func(v int) []byte { return binary.BigEndian.AppendUint16(nil, uint16(v)) }
	i32 := func(v int32) []byte { return binary.BigEndian.AppendUint32(nil, uint32(v)) }
	cat := func(parts ...[]byte) []byte {
		var b []byte
		for _, p := range parts {
			b = append(b, p...)
		}
		return b
	}
	bind := func(b []byte) error { _, err := ParseBind(b); return err }
	dataRow := func(b []byte) error {
		m, err := ParseDataRow(b)
		if err == nil {
			_, err = m.Columns(nil)
		}
		return err
	}
	dataRowIter := func(b []byte) error {
		m, err := ParseDataRow(b)
		if err != nil {
			return err
		}
		it := m.Iter()
		for it.Next() {
		}
		return it.Err()
	}
	cases := []struct {
		name   string
		decode func([]byte) error
		body   []byte
		want   error
	}{
		{"Bind no portal NUL", bind, []byte("portal"), ErrMissingNUL},
		{"Bind no statement NUL", bind, []byte("p\x00stmt"), ErrMissingNUL},
		{"Bind hostile param count", bind, cat([]byte("\x00\x00"), u16(0), u16(32767), []byte{0, 0}), ErrShortMessage},
		{"Bind hostile format count", bind, cat([]byte("\x00\x00"), u16(65535), []byte{0, 0}), ErrShortMessage},
		{"Bind value past end", bind, cat([]byte("\x00\x00"), u16(0), u16(1), i32(10), []byte("abc")), ErrShortMessage},
		{"Bind NULL length -2", bind, cat([]byte("\x00\x00"), u16(0), u16(1), i32(-2), u16(0)), ErrBadValue},
		{"Bind 2 formats for 3 params", bind, cat([]byte("\x00\x00"), u16(2), u16(0), u16(1), u16(3), i32(-1), i32(-1), i32(-1), u16(0)), ErrBadValue},
		{"Bind no result formats", bind, cat([]byte("\x00\x00"), u16(0), u16(0)), ErrShortMessage},
		{"Bind trailing", bind, cat([]byte("\x00\x00"), u16(0), u16(0), u16(0), []byte{1}), ErrBadLength},
		{"Parse hostile OID count", func(b []byte) error { _, err := ParseParse(b); return err }, cat([]byte("s\x00q\x00"), u16(65535), i32(0)), ErrShortMessage},
		{"Describe bad target", func(b []byte) error { _, err := ParseDescribe(b); return err }, []byte("Xname\x00"), ErrBadValue},
		{"Close bad target", func(b []byte) error { _, err := ParseClose(b); return err }, []byte("s\x00"), ErrBadValue},
		{"Close empty", func(b []byte) error { _, err := ParseClose(b); return err }, nil, ErrShortMessage},
		{"Execute short", func(b []byte) error { _, err := ParseExecute(b); return err }, []byte("p\x00\x00\x00"), ErrShortMessage},
		{"FunctionCall hostile args", func(b []byte) error { _, err := ParseFunctionCall(b); return err }, cat(i32(1), u16(0), u16(65535), i32(-1)), ErrShortMessage},
		{"RowDescription hostile count", func(b []byte) error { _, err := ParseRowDescription(b); return err }, cat(u16(32767), []byte("a\x00")), ErrShortMessage},
		{"RowDescription field short", func(b []byte) error { _, err := ParseRowDescription(b); return err }, cat(u16(1), []byte("a\x00"), make([]byte, 17)), ErrShortMessage},
		{"RowDescription name no NUL", func(b []byte) error { _, err := ParseRowDescription(b); return err }, cat(u16(1), []byte("abcdefghijklmnopqrstu")), ErrMissingNUL},
		{"DataRow hostile count", dataRow, cat(u16(32767), i32(-1)), ErrShortMessage},
		{"DataRow no count", dataRow, []byte{0}, ErrShortMessage},
		{"DataRow value past end", dataRow, cat(u16(1), i32(5), []byte("abcd")), ErrShortMessage},
		{"DataRow negative length", dataRow, cat(u16(1), i32(-7)), ErrBadValue},
		{"DataRow trailing", dataRow, cat(u16(1), i32(1), []byte("ab")), ErrBadLength},
		{"DataRow iter trailing", dataRowIter, cat(u16(1), i32(1), []byte("ab")), ErrBadLength},
		{"DataRow iter past end", dataRowIter, cat(u16(2), i32(1), []byte("a"), i32(9), []byte("x")), ErrShortMessage},
		{"CommandComplete no NUL", func(b []byte) error { _, err := ParseCommandComplete(b); return err }, []byte("SELECT 1"), ErrMissingNUL},
		{"CopyResponse odd", func(b []byte) error { _, err := ParseCopyResponse(b); return err }, cat([]byte{0}, u16(2), u16(0)), ErrShortMessage},
		{"Notification no payload", func(b []byte) error { _, err := ParseNotification(b); return err }, cat(i32(1), []byte("chan\x00pay")), ErrMissingNUL},
		{"ParameterDescription hostile", func(b []byte) error { _, err := ParseParameterDescription(b); return err }, cat(u16(65535), i32(23)), ErrShortMessage},
		{"FunctionCallResponse past end", func(b []byte) error { _, err := ParseFunctionCallResponse(b); return err }, cat(i32(3), []byte("ab")), ErrShortMessage},
		{"FunctionCallResponse trailing NULL", func(b []byte) error { _, err := ParseFunctionCallResponse(b); return err }, cat(i32(-1), []byte("ab")), ErrBadLength},
		{"NegotiateProtocolVersion hostile", func(b []byte) error { _, err := ParseNegotiateProtocolVersion(b); return err }, cat(i32(0x30000), i32(-1), []byte("a\x00")), ErrShortMessage},
		{"NegotiateProtocolVersion no NUL", func(b []byte) error { _, err := ParseNegotiateProtocolVersion(b); return err }, cat(i32(0x30000), i32(2), []byte("a\x00bb")), ErrMissingNUL},
		{"ReadyForQuery status", func(b []byte) error { _, err := ParseReadyForQuery(b); return err }, []byte("X"), ErrBadValue},
		{"ReadyForQuery long", func(b []byte) error { _, err := ParseReadyForQuery(b); return err }, []byte("II"), ErrBadLength},
		{"Sync with body", ParseEmpty, []byte{0}, ErrBadLength},
	}
	for _, c := range cases {
		err := c.decode(c.body)
		if !errors.Is(err, c.want) {
			t.Errorf("%s: err = %v, want %v", c.name, err, c.want)
		}
	}
}

// TestHostileCountsDoNotAllocate: a count that the body cannot hold is refused before anything is allocated.
func TestHostileCountsDoNotAllocate(t *testing.T) {
	body := []byte{0, 0, 0, 0, 0x7f, 0xff, 0, 0, 0, 0} // Bind: "", "", 0 formats, 32767 params, 4 bytes
	dr := []byte{0xff, 0xff, 0, 0, 0, 1, 'x', 0, 0, 0}
	rd := []byte{0xff, 0xff, 'a', 0, 1, 2, 3, 4, 5, 6}
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := ParseBind(body); err == nil {
			t.Fatal("accepted")
		}
		if _, err := ParseDataRow(dr); err == nil {
			t.Fatal("accepted")
		}
		if _, err := ParseRowDescription(rd); err == nil {
			t.Fatal("accepted")
		}
	})
	// The three errors carry context (fmt.Errorf), a handful of allocations; 32767 entries would be far more.
	if allocs > 12 {
		t.Errorf("%v allocations per hostile decode", allocs)
	}
}

// TestZeroAllocs guards the allocation-free hot paths the benchmarks measure.
func TestZeroAllocs(t *testing.T) {
	row := AppendDataRow(nil, [][]byte{[]byte("1"), nil, []byte("hello"), {}})
	bind := AppendBind(nil, "", "s1", []int16{1}, [][]byte{{0, 0, 0, 1}, []byte("x"), nil}, []int16{1})
	rowDesc := AppendRowDescription(nil, []FieldDescription{{Name: []byte("a"), TypeOID: 23}, {Name: []byte("b"), TypeOID: 25}})
	parse := AppendParse(nil, "s1", "select $1", []uint32{23})
	e := NewError(SQLStateProtocolViolation, "invalid message")
	dst := make([]byte, 0, 4096)
	cols := make([][]byte, 0, 8)
	fields := make([]FieldDescription, 0, 8)
	values := [][]byte{[]byte("1"), nil, []byte("hello")}
	checks := map[string]func(){
		"ReadMessage+DataRow.Columns": func() {
			m, _, _ := ReadMessage(row, 0)
			r, _ := ParseDataRow(m.Body)
			cols, _ = r.Columns(cols)
		},
		"DataRow.Iter": func() {
			r, _ := ParseDataRow(row[HeaderLen:])
			it := r.Iter()
			for it.Next() {
			}
		},
		"ParseBind+Params": func() {
			m, _ := ParseBind(bind[HeaderLen:])
			it := m.Params()
			for it.Next() {
			}
			_ = m.Param(1)
		},
		"ParseParse":          func() { _, _ = ParseParse(parse[HeaderLen:]) },
		"RowDescription":      func() { m, _ := ParseRowDescription(rowDesc[HeaderLen:]); fields = m.Fields(fields[:0]) },
		"AppendDataRow":       func() { dst = AppendDataRow(dst[:0], values) },
		"AppendQuery":         func() { dst = AppendQuery(dst[:0], "select 1") },
		"AppendErrorResponse": func() { dst = AppendErrorResponse(dst[:0], e) },
		"AppendBind":          func() { dst = AppendBind(dst[:0], "", []byte("s1"), nil, values, nil) },
		"AppendParse":         func() { dst = AppendParse(dst[:0], []byte("s1"), "select $1", nil) },
		"AppendRowDescription": func() {
			dst = AppendRowDescription(dst[:0], fields)
		},
	}
	for name, f := range checks {
		if a := testing.AllocsPerRun(100, f); a != 0 {
			t.Errorf("%s: %v allocs per run", name, a)
		}
	}
}
