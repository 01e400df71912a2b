package codec

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
)

// decoder is one of our decoders with the encoder that inverts it, used by the malformed-input tests and the fuzz
// targets. rt decodes a body and re-encodes what it read as a whole message.
type decoder struct {
	name string
	typ  byte
	rt   func(body []byte) ([]byte, error)
	// exact: re-encoding gives back the very bytes decoded (the decoder reads every byte and nothing is optional).
	exact bool
	// noTruncate: every strict prefix of a valid body is rejected. noTrailing: an extra byte is rejected.
	noTruncate, noTrailing bool
}

func emptyDecoder(name string, typ byte) decoder {
	return decoder{name: name, typ: typ, exact: true, noTrailing: true, rt: func(b []byte) ([]byte, error) {
		if err := ParseEmpty(b); err != nil {
			return nil, err
		}
		return AppendEmpty(nil, typ), nil
	}}
}

func rawDecoder(name string, typ byte) decoder {
	return decoder{name: name, typ: typ, exact: true, rt: func(b []byte) ([]byte, error) {
		start := 0
		out := StartMessage(nil, typ)
		return FinishMessage(append(out, b...), start), nil
	}}
}

var frontendDecoders = []decoder{
	{name: "Bind", typ: Bind, exact: true, noTruncate: true, noTrailing: true, rt: func(b []byte) ([]byte, error) {
		m, err := ParseBind(b)
		if err != nil {
			return nil, err
		}
		return AppendBind(nil, m.Portal, m.Statement, m.ParamFormats.Append(nil), m.AppendParams(nil), m.ResultFormats.Append(nil)), nil
	}},
	{name: "Parse", typ: Parse, exact: true, noTruncate: true, noTrailing: true, rt: func(b []byte) ([]byte, error) {
		m, err := ParseParse(b)
		if err != nil {
			return nil, err
		}
		return AppendParse(nil, m.Name, m.Query, m.ParamTypes.Append(nil)), nil
	}},
	{name: "Describe", typ: Describe, exact: true, noTruncate: true, noTrailing: true, rt: func(b []byte) ([]byte, error) {
		m, err := ParseDescribe(b)
		if err != nil {
			return nil, err
		}
		return AppendDescribe(nil, m.Target, m.Name), nil
	}},
	{name: "Close", typ: Close, exact: true, noTruncate: true, noTrailing: true, rt: func(b []byte) ([]byte, error) {
		m, err := ParseClose(b)
		if err != nil {
			return nil, err
		}
		return AppendClose(nil, m.Target, m.Name), nil
	}},
	{name: "Execute", typ: Execute, exact: true, noTruncate: true, noTrailing: true, rt: func(b []byte) ([]byte, error) {
		m, err := ParseExecute(b)
		if err != nil {
			return nil, err
		}
		return AppendExecute(nil, m.Portal, m.MaxRows), nil
	}},
	{name: "CopyFail", typ: CopyFail, exact: true, noTruncate: true, noTrailing: true, rt: func(b []byte) ([]byte, error) {
		s, err := ParseCopyFail(b)
		if err != nil {
			return nil, err
		}
		return AppendCopyFail(nil, s), nil
	}},
	{name: "FunctionCall", typ: FunctionCall, exact: true, noTruncate: true, noTrailing: true, rt: func(b []byte) ([]byte, error) {
		m, err := ParseFunctionCall(b)
		if err != nil {
			return nil, err
		}
		return AppendFunctionCall(nil, m.Function, m.ArgFormats.Append(nil), m.AppendArgs(nil), m.ResultFormat), nil
	}},
	{name: "Query", typ: Query, noTruncate: true, rt: func(b []byte) ([]byte, error) {
		s, err := ParseQuery(b)
		if err != nil {
			return nil, err
		}
		return AppendQuery(nil, string(s)), nil
	}},
	{name: "PasswordMessage", typ: PasswordMessage, noTruncate: true, rt: func(b []byte) ([]byte, error) {
		s, err := ParsePassword(b)
		if err != nil {
			return nil, err
		}
		return AppendPassword(nil, s), nil
	}},
	{name: "SASLInitialResponse", typ: PasswordMessage, noTruncate: true, noTrailing: true, rt: func(b []byte) ([]byte, error) {
		mech, data, err := ParseSASLInitialResponse(b)
		if err != nil {
			return nil, err
		}
		return AppendSASLInitialResponse(nil, mech, data), nil
	}},
	rawDecoder("SASLResponse", PasswordMessage),
	rawDecoder("CopyData", CopyData),
	emptyDecoder("Sync", Sync),
	emptyDecoder("Flush", Flush),
	emptyDecoder("Terminate", Terminate),
	emptyDecoder("CopyDone", CopyDone),
}

var backendDecoders = []decoder{
	{name: "RowDescription", typ: RowDescription, exact: true, noTruncate: true, noTrailing: true, rt: func(b []byte) ([]byte, error) {
		m, err := ParseRowDescription(b)
		if err != nil {
			return nil, err
		}
		return AppendRowDescription(nil, m.Fields(nil)), nil
	}},
	{name: "DataRow", typ: DataRow, exact: true, noTruncate: true, noTrailing: true, rt: func(b []byte) ([]byte, error) {
		m, err := ParseDataRow(b)
		if err != nil {
			return nil, err
		}
		cols, err := m.Columns(nil)
		if err != nil {
			return nil, err
		}
		// The iterator must agree with Columns.
		it, i := m.Iter(), 0
		for ; it.Next(); i++ {
			if v := it.Value(); (v == nil) != (cols[i] == nil) || !bytes.Equal(v, cols[i]) {
				return nil, fmt.Errorf("Iter column %d differs from Columns", i)
			}
		}
		if it.Err() != nil || i != len(cols) {
			return nil, fmt.Errorf("Iter: %d columns, err %v; Columns: %d", i, it.Err(), len(cols))
		}
		return AppendDataRow(nil, cols), nil
	}},
	{name: "CommandComplete", typ: CommandComplete, exact: true, noTruncate: true, noTrailing: true, rt: func(b []byte) ([]byte, error) {
		s, err := ParseCommandComplete(b)
		if err != nil {
			return nil, err
		}
		return AppendCommandComplete(nil, string(s)), nil
	}},
	copyResponseDecoder("CopyInResponse", CopyInResponse, AppendCopyInResponse),
	copyResponseDecoder("CopyOutResponse", CopyOutResponse, AppendCopyOutResponse),
	copyResponseDecoder("CopyBothResponse", CopyBothResponse, AppendCopyBothResponse),
	{name: "NotificationResponse", typ: NotificationResponse, exact: true, noTruncate: true, noTrailing: true, rt: func(b []byte) ([]byte, error) {
		m, err := ParseNotification(b)
		if err != nil {
			return nil, err
		}
		return AppendNotification(nil, m.PID, m.Channel, m.Payload), nil
	}},
	{name: "ParameterDescription", typ: ParameterDescription, exact: true, noTruncate: true, noTrailing: true, rt: func(b []byte) ([]byte, error) {
		o, err := ParseParameterDescription(b)
		if err != nil {
			return nil, err
		}
		return AppendParameterDescription(nil, o.Append(nil)), nil
	}},
	{name: "FunctionCallResponse", typ: FunctionCallResponse, exact: true, noTruncate: true, noTrailing: true, rt: func(b []byte) ([]byte, error) {
		v, err := ParseFunctionCallResponse(b)
		if err != nil {
			return nil, err
		}
		return AppendFunctionCallResponse(nil, v), nil
	}},
	{name: "NegotiateProtocolVersion", typ: NegotiateProtocolVersion, exact: true, noTruncate: true, noTrailing: true, rt: func(b []byte) ([]byte, error) {
		m, err := ParseNegotiateProtocolVersion(b)
		if err != nil {
			return nil, err
		}
		var opts []string
		for _, o := range m.Options(nil) {
			opts = append(opts, string(o))
		}
		if len(opts) != m.NumOptions() {
			return nil, fmt.Errorf("Options gave %d of %d", len(opts), m.NumOptions())
		}
		return AppendNegotiateProtocolVersion(nil, m.Version, opts...), nil
	}},
	{name: "ReadyForQuery", typ: ReadyForQuery, exact: true, noTruncate: true, noTrailing: true, rt: func(b []byte) ([]byte, error) {
		s, err := ParseReadyForQuery(b)
		if err != nil {
			return nil, err
		}
		return AppendReadyForQuery(nil, s), nil
	}},
	{name: "BackendKeyData", typ: BackendKeyData, exact: true, rt: func(b []byte) ([]byte, error) {
		pid, key, err := ParseBackendKeyData(b)
		if err != nil {
			return nil, err
		}
		return AppendBackendKeyData(nil, pid, key), nil
	}},
	{name: "ParameterStatus", typ: ParameterStatus, noTruncate: true, rt: func(b []byte) ([]byte, error) {
		n, v, err := ParseParameterStatus(b)
		if err != nil {
			return nil, err
		}
		return AppendParameterStatus(nil, n, v), nil
	}},
	{name: "Authentication", typ: Authentication, exact: true, rt: func(b []byte) ([]byte, error) {
		code, data, err := ParseAuthentication(b)
		if err != nil {
			return nil, err
		}
		return AppendAuthentication(nil, code, data), nil
	}},
	{name: "AuthenticationSASL", typ: Authentication, rt: func(b []byte) ([]byte, error) {
		code, data, err := ParseAuthentication(b)
		if err != nil {
			return nil, err
		}
		if code != AuthSASL {
			return nil, fmt.Errorf("code %d", code)
		}
		mechs, err := ParseSASLMechanisms(data)
		if err != nil {
			return nil, err
		}
		return AppendAuthSASL(nil, mechs...), nil
	}},
	errorDecoder("ErrorResponse", ErrorResponse, AppendErrorResponse),
	errorDecoder("NoticeResponse", NoticeResponse, AppendNoticeResponse),
	rawDecoder("CopyData", CopyData),
	emptyDecoder("EmptyQueryResponse", EmptyQueryResponse),
	emptyDecoder("ParseComplete", ParseComplete),
	emptyDecoder("BindComplete", BindComplete),
	emptyDecoder("CloseComplete", CloseComplete),
	emptyDecoder("NoData", NoData),
	emptyDecoder("PortalSuspended", PortalSuspended),
	emptyDecoder("CopyDone", CopyDone),
}

func copyResponseDecoder(name string, typ byte, enc func([]byte, int8, []int16) []byte) decoder {
	return decoder{name: name, typ: typ, exact: true, noTruncate: true, noTrailing: true, rt: func(b []byte) ([]byte, error) {
		m, err := ParseCopyResponse(b)
		if err != nil {
			return nil, err
		}
		return enc(nil, m.Format, m.ColumnFormats.Append(nil)), nil
	}}
}

func errorDecoder(name string, typ byte, enc func([]byte, *Error) []byte) decoder {
	return decoder{name: name, typ: typ, noTruncate: true, rt: func(b []byte) ([]byte, error) {
		e, err := ParseError(b)
		if err != nil {
			return nil, err
		}
		return enc(nil, e), nil
	}}
}

// decoderFor finds the decoder of an oracle case by the first part of its name.
func decoderFor(t *testing.T, decoders []decoder, caseName string) decoder {
	t.Helper()
	name, _, _ := strings.Cut(caseName, "/")
	switch name {
	case "GSSResponse":
		name = "SASLResponse"
	case "CopyResponse":
		switch {
		case strings.HasPrefix(caseName, "CopyResponse/G"):
			name = "CopyInResponse"
		case strings.HasPrefix(caseName, "CopyResponse/H"):
			name = "CopyOutResponse"
		default:
			name = "CopyBothResponse"
		}
	case "Authentication":
		if caseName == "Authentication/SASL" {
			name = "AuthenticationSASL"
		}
	}
	for _, d := range decoders {
		if d.name == name {
			return d
		}
	}
	t.Fatalf("no decoder for %s", caseName)
	return decoder{}
}

// checkStable decodes body with d; when it decodes, re-encoding must give one whole message of d's type that
// decodes to the same re-encoding (and, for exact decoders, the very input).
func checkStable(t *testing.T, d decoder, body []byte) {
	t.Helper()
	out, err := d.rt(body)
	if err != nil {
		return
	}
	m, n, err := ReadMessage(out, 0)
	if err != nil || n != len(out) || m.Type != d.typ {
		t.Fatalf("%s: re-encoding %q does not frame: n=%d err=%v", d.name, out, n, err)
	}
	if d.exact && !bytes.Equal(m.Body, body) {
		t.Fatalf("%s: decode+encode changed the body\n in  %q\n out %q", d.name, body, m.Body)
	}
	out2, err := d.rt(m.Body)
	if err != nil {
		t.Fatalf("%s: cannot decode our own encoding %q: %v", d.name, out, err)
	}
	if !bytes.Equal(out, out2) {
		t.Fatalf("%s: not stable\n 1st %q\n 2nd %q", d.name, out, out2)
	}
}
