package codec

import (
	"strings"
	"testing"
)

func TestTraceLine(t *testing.T) {
	for _, tc := range []struct {
		msg        []byte
		fromClient bool
		want       string
	}{
		{AppendQuery(nil, "SELECT 1"), true, `Query "SELECT 1" (13 bytes)`},
		{AppendParse(nil, "s1", "SELECT $1", []uint32{23}), true, `Parse "s1" "SELECT $1" 1 types`},
		{AppendBind(nil, "", "s1", nil, [][]byte{[]byte("secret")}, nil), true, `Bind "" "s1" 1 params`},
		{AppendDescribe(nil, TargetPortal, ""), true, `Describe P ""`},
		{AppendExecute(nil, "", 0), true, `Execute "" 0`},
		{AppendEmpty(nil, Sync), true, "Sync (4 bytes)"},
		{AppendEmpty(nil, 'p'), true, "PasswordMessage"},
		{AppendDataRowText(nil, []string{"secret"}, nil), false, "DataRow 1 columns"},
		{AppendCommandComplete(nil, "SELECT 1"), false, `CommandComplete "SELECT 1"`},
		{AppendErrorResponse(nil, NewError("42601", "syntax error")), false, `ErrorResponse ERROR 42601 "syntax error"`},
		{AppendReadyForQuery(nil, 'T'), false, "ReadyForQuery T (5 bytes)"},
		{AppendEmpty(nil, ParseComplete), false, "ParseComplete"},
		{AppendQuery(nil, strings.Repeat("x", 300)), true, `..."... (305 bytes)`},
	} {
		got := TraceLine(tc.msg, tc.fromClient)
		want := strings.TrimPrefix(tc.want, "...")
		if !strings.Contains(got, want) {
			t.Errorf("TraceLine(%q) = %q, want it to contain %q", tc.msg[0], got, want)
		}
		if strings.Contains(got, "secret") {
			t.Errorf("TraceLine(%q) = %q shows a value", tc.msg[0], got)
		}
	}
}

// FuzzTraceLine: any bytes describe without a panic.
func FuzzTraceLine(f *testing.F) {
	f.Add(AppendQuery(nil, "SELECT 1"), true)
	f.Add(AppendErrorResponse(nil, NewError("42601", "x")), false)
	f.Add([]byte{'D', 0, 0, 0, 6, 0xff, 0xff}, false)
	f.Fuzz(func(t *testing.T, msg []byte, fromClient bool) {
		_ = TraceLine(msg, fromClient)
	})
}
