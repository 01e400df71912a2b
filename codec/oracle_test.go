package codec

import (
	"bytes"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgproto3"
)

// oracleCase is one message, encoded by us and by pgproto3.
type oracleCase struct {
	name     string
	ours     []byte                          // our encoder's output
	pg       pgMsg                           // the same message as pgproto3 sees it
	check    func(t *testing.T, body []byte) // our decoder must read these exact fields
	sameWire bool                            // both encoders must produce identical bytes
	authType uint32                          // for 'p' messages: what pgproto3.Backend must expect
}

func (c oracleCase) run(t *testing.T) {
	t.Helper()
	theirs := pgEncode(t, c.pg)
	if c.sameWire && !bytes.Equal(c.ours, theirs) {
		t.Errorf("our encoding differs from pgproto3's:\n ours   %q\n theirs %q", c.ours, theirs)
	}
	// Ours → pgproto3.
	m := frameOne(t, c.ours)
	if m.Type != theirs[0] {
		t.Fatalf("type %q, pgproto3 says %q", m.Type, theirs[0])
	}
	got := reflect.New(reflect.TypeOf(c.pg).Elem()).Interface().(pgMsg)
	if err := got.Decode(m.Body); err != nil {
		t.Fatalf("pgproto3 cannot decode our encoding %q: %v", c.ours, err)
	}
	if !equalish(got, c.pg) {
		t.Errorf("pgproto3 decodes our encoding as\n %#v\nwant\n %#v", got, c.pg)
	}
	// pgproto3 → ours.
	c.check(t, frameOne(t, theirs).Body)
	c.check(t, m.Body)
}

func bindCase(portal, stmt string, pf []int16, params [][]byte, rf []int16) oracleCase {
	return oracleCase{
		name:     fmt.Sprintf("Bind/%s/%s/%d", portal, stmt, len(params)),
		ours:     AppendBind(nil, portal, []byte(stmt), pf, params, rf),
		pg:       &pgproto3.Bind{DestinationPortal: portal, PreparedStatement: stmt, ParameterFormatCodes: pf, Parameters: params, ResultFormatCodes: rf},
		sameWire: true,
		check: func(t *testing.T, body []byte) {
			m, err := ParseBind(body)
			must(t, err)
			wantText(t, "portal", m.Portal, portal)
			wantText(t, "statement", m.Statement, stmt)
			wantInts(t, "param formats", m.ParamFormats.Append(nil), pf)
			wantInts(t, "result formats", m.ResultFormats.Append(nil), rf)
			if m.NumParams() != len(params) {
				t.Fatalf("NumParams = %d, want %d", m.NumParams(), len(params))
			}
			wantValues(t, "params", m.AppendParams(nil), params)
			var it []([]byte)
			iter := m.Params()
			for iter.Next() {
				it = append(it, iter.Value())
			}
			must(t, iter.Err())
			wantValues(t, "Params()", it, params)
			for i := range params {
				if i > 5 && i < len(params)-2 {
					continue // Param(i) walks; sample the ends
				}
				wantValues(t, "Param(i)", [][]byte{m.Param(i)}, params[i:i+1])
				want := int16(0)
				switch {
				case len(pf) == 1:
					want = pf[0]
				case len(pf) > 1:
					want = pf[i]
				}
				if got := m.ParamFormats.For(i); got != want {
					t.Errorf("ParamFormats.For(%d) = %d, want %d", i, got, want)
				}
			}
		},
	}
}

func parseCase(name, query string, oids []uint32) oracleCase {
	return oracleCase{
		name:     "Parse/" + name,
		ours:     AppendParse(nil, name, query, oids),
		pg:       &pgproto3.Parse{Name: name, Query: query, ParameterOIDs: oids},
		sameWire: true,
		check: func(t *testing.T, body []byte) {
			m, err := ParseParse(body)
			must(t, err)
			wantText(t, "name", m.Name, name)
			wantText(t, "query", m.Query, query)
			wantInts(t, "param types", m.ParamTypes.Append(nil), oids)
			if m.ParamTypes.Len() != len(oids) {
				t.Errorf("ParamTypes.Len = %d", m.ParamTypes.Len())
			}
			for i, o := range oids {
				if m.ParamTypes.At(i) != o {
					t.Errorf("ParamTypes.At(%d) = %d, want %d", i, m.ParamTypes.At(i), o)
				}
			}
		},
	}
}

func describeCase(target byte, name string) oracleCase {
	return oracleCase{
		name:     fmt.Sprintf("Describe/%c/%s", target, name),
		ours:     AppendDescribe(nil, target, name),
		pg:       &pgproto3.Describe{ObjectType: target, Name: name},
		sameWire: true,
		check: func(t *testing.T, body []byte) {
			m, err := ParseDescribe(body)
			must(t, err)
			if m.Target != target {
				t.Errorf("target %q, want %q", m.Target, target)
			}
			wantText(t, "name", m.Name, name)
		},
	}
}

func closeCase(target byte, name string) oracleCase {
	return oracleCase{
		name:     fmt.Sprintf("Close/%c/%s", target, name),
		ours:     AppendClose(nil, target, []byte(name)),
		pg:       &pgproto3.Close{ObjectType: target, Name: name},
		sameWire: true,
		check: func(t *testing.T, body []byte) {
			m, err := ParseClose(body)
			must(t, err)
			if m.Target != target {
				t.Errorf("target %q, want %q", m.Target, target)
			}
			wantText(t, "name", m.Name, name)
		},
	}
}

func executeCase(portal string, maxRows int32) oracleCase {
	return oracleCase{
		name:     fmt.Sprintf("Execute/%s/%d", portal, maxRows),
		ours:     AppendExecute(nil, portal, maxRows),
		pg:       &pgproto3.Execute{Portal: portal, MaxRows: uint32(maxRows)},
		sameWire: true,
		check: func(t *testing.T, body []byte) {
			m, err := ParseExecute(body)
			must(t, err)
			wantText(t, "portal", m.Portal, portal)
			if m.MaxRows != maxRows {
				t.Errorf("max rows %d, want %d", m.MaxRows, maxRows)
			}
		},
	}
}

func functionCallCase(oid uint32, af []int16, args [][]byte, rf int16) oracleCase {
	return oracleCase{
		name:     fmt.Sprintf("FunctionCall/%d/%d", oid, len(args)),
		ours:     AppendFunctionCall(nil, oid, af, args, rf),
		pg:       &pgproto3.FunctionCall{Function: oid, ArgFormatCodes: toUint16s(af), Arguments: args, ResultFormatCode: uint16(rf)},
		sameWire: true,
		check: func(t *testing.T, body []byte) {
			m, err := ParseFunctionCall(body)
			must(t, err)
			if m.Function != oid || m.ResultFormat != rf || m.NumArgs() != len(args) {
				t.Errorf("function %d result format %d args %d, want %d %d %d", m.Function, m.ResultFormat, m.NumArgs(), oid, rf, len(args))
			}
			wantInts(t, "arg formats", m.ArgFormats.Append(nil), af)
			wantValues(t, "args", m.AppendArgs(nil), args)
			var got [][]byte
			it := m.Args()
			for it.Next() {
				got = append(got, it.Value())
			}
			must(t, it.Err())
			wantValues(t, "Args()", got, args)
		},
	}
}

func textCase(name string, ours []byte, pg pgMsg, parse func([]byte) ([]byte, error), want string) oracleCase {
	return oracleCase{name: name, ours: ours, pg: pg, sameWire: true, check: func(t *testing.T, body []byte) {
		got, err := parse(body)
		must(t, err)
		wantText(t, name, got, want)
	}}
}

func emptyCase(name string, typ byte, pg pgMsg) oracleCase {
	return oracleCase{name: name, ours: AppendEmpty(nil, typ), pg: pg, sameWire: true, check: func(t *testing.T, body []byte) {
		must(t, ParseEmpty(body))
	}}
}

func frontendCases() []oracleCase {
	many := make([][]byte, 40000) // more than 32767: counts are unsigned
	for i := range many {
		if i%3 == 0 {
			many[i] = []byte(fmt.Sprint(i))
		} else if i%3 == 1 {
			many[i] = []byte{}
		}
	}
	manyOIDs := make([]uint32, 33000)
	for i := range manyOIDs {
		manyOIDs[i] = uint32(i) * 131071
	}
	return []oracleCase{
		bindCase("", "", nil, nil, nil),
		bindCase("", "s1", []int16{1}, [][]byte{{0, 0, 0, 42}, nil}, []int16{1}),
		bindCase("portal", "stmt_äö", []int16{0, 1, 0}, [][]byte{[]byte("42"), {0, 1, 0, 255}, nil}, []int16{0, 1, 1, 0}),
		bindCase("p", "", nil, [][]byte{[]byte(""), nil, []byte("x")}, nil),
		bindCase("", "big", []int16{0}, many, nil),
		parseCase("", "select 1", nil),
		parseCase("stmt1", "select $1::int, $2, $3, $4", []uint32{23, 25, 0, 4294967295}),
		parseCase("ünïcode", "select 'ünïcode' where a = $1", []uint32{0}),
		parseCase("many", "select", manyOIDs),
		describeCase(TargetStatement, ""),
		describeCase(TargetStatement, "stmt1"),
		describeCase(TargetPortal, "portal"),
		closeCase(TargetStatement, "stmt1"),
		closeCase(TargetPortal, ""),
		executeCase("", 0),
		executeCase("p1", 100),
		executeCase("p2", -1),
		functionCallCase(1598, nil, nil, 0),
		functionCallCase(1598, []int16{1}, [][]byte{[]byte("abc"), nil, {}}, 1),
		functionCallCase(4294967295, []int16{0, 1}, [][]byte{[]byte("x"), {9, 9}}, 0),
		textCase("Query", AppendQuery(nil, "select * from t where a = 'x'; select 2"), &pgproto3.Query{String: "select * from t where a = 'x'; select 2"}, ParseQuery, "select * from t where a = 'x'; select 2"),
		textCase("Query/empty", AppendQuery(nil, ""), &pgproto3.Query{String: ""}, ParseQuery, ""),
		textCase("CopyFail", AppendCopyFail(nil, "client gave up"), &pgproto3.CopyFail{Message: "client gave up"}, ParseCopyFail, "client gave up"),
		textCase("CopyData", AppendCopyData(nil, []byte("1\tx\n")), &pgproto3.CopyData{Data: []byte("1\tx\n")}, func(b []byte) ([]byte, error) { return b, nil }, "1\tx\n"),
		emptyCase("Sync", Sync, &pgproto3.Sync{}),
		emptyCase("Flush", Flush, &pgproto3.Flush{}),
		emptyCase("Terminate", Terminate, &pgproto3.Terminate{}),
		emptyCase("CopyDone", CopyDone, &pgproto3.CopyDone{}),
		{
			name: "PasswordMessage", ours: AppendPassword(nil, "md5abcdef0123"), pg: &pgproto3.PasswordMessage{Password: "md5abcdef0123"},
			sameWire: true, authType: pgproto3.AuthTypeMD5Password,
			check: func(t *testing.T, body []byte) {
				p, err := ParsePassword(body)
				must(t, err)
				if p != "md5abcdef0123" {
					t.Errorf("password %q", p)
				}
			},
		},
		{
			name: "SASLInitialResponse", ours: AppendSASLInitialResponse(nil, "SCRAM-SHA-256", []byte("n,,n=,r=abc")),
			pg: &pgproto3.SASLInitialResponse{AuthMechanism: "SCRAM-SHA-256", Data: []byte("n,,n=,r=abc")}, sameWire: true, authType: pgproto3.AuthTypeSASL,
			check: func(t *testing.T, body []byte) {
				mech, data, err := ParseSASLInitialResponse(body)
				must(t, err)
				if mech != "SCRAM-SHA-256" || string(data) != "n,,n=,r=abc" {
					t.Errorf("got %q %q", mech, data)
				}
			},
		},
		{
			name: "SASLResponse", ours: AppendSASLResponse(nil, []byte("c=biws,r=abc,p=xyz")),
			pg: &pgproto3.SASLResponse{Data: []byte("c=biws,r=abc,p=xyz")}, sameWire: true, authType: pgproto3.AuthTypeSASLContinue,
			check: func(t *testing.T, body []byte) { wantText(t, "data", body, "c=biws,r=abc,p=xyz") },
		},
		{
			name: "GSSResponse", ours: AppendSASLResponse(nil, []byte{1, 2, 0, 3}),
			pg: &pgproto3.GSSResponse{Data: []byte{1, 2, 0, 3}}, sameWire: true, authType: pgproto3.AuthTypeGSS,
			check: func(t *testing.T, body []byte) { wantText(t, "data", body, "\x01\x02\x00\x03") },
		},
	}
}

func TestFrontendMessagesOracle(t *testing.T) {
	for _, c := range frontendCases() {
		t.Run(c.name, c.run)
	}
}

// TestFrontendStreamOracle sends all our frontend messages as one stream to pgproto3.Backend.
func TestFrontendStreamOracle(t *testing.T) {
	cases := frontendCases()
	var stream []byte
	for _, c := range cases {
		stream = append(stream, c.ours...)
	}
	be := pgproto3.NewBackend(bytes.NewReader(stream), io.Discard)
	be.SetMaxBodyLen(1 << 20)
	for _, c := range cases {
		if c.authType != 0 {
			must(t, be.SetAuthType(c.authType))
		}
		got, err := be.Receive()
		if err != nil {
			t.Fatalf("%s: pgproto3.Backend.Receive: %v", c.name, err)
		}
		if reflect.TypeOf(got) != reflect.TypeOf(c.pg) || !equalish(got, c.pg) {
			t.Errorf("%s: pgproto3 received %#v", c.name, got)
		}
	}
}

func rowDescriptionCase(name string, fields []pgproto3.FieldDescription) oracleCase {
	ours := make([]FieldDescription, len(fields))
	for i, f := range fields {
		ours[i] = FieldDescription{Name: f.Name, TableOID: f.TableOID, ColumnNumber: int16(f.TableAttributeNumber), TypeOID: f.DataTypeOID,
			TypeSize: f.DataTypeSize, TypeModifier: f.TypeModifier, Format: f.Format}
	}
	return oracleCase{
		name: "RowDescription/" + name, ours: AppendRowDescription(nil, ours), pg: &pgproto3.RowDescription{Fields: fields}, sameWire: true,
		check: func(t *testing.T, body []byte) {
			m, err := ParseRowDescription(body)
			must(t, err)
			if m.NumFields() != len(fields) {
				t.Fatalf("NumFields = %d, want %d", m.NumFields(), len(fields))
			}
			got := m.Fields(make([]FieldDescription, 2, 4)) // stale entries must go
			if len(got) != len(ours) {
				t.Fatalf("Fields: %d", len(got))
			}
			for i := range got {
				g, w := got[i], ours[i]
				wantText(t, "field name", g.Name, string(w.Name))
				g.Name, w.Name = nil, nil
				if !reflect.DeepEqual(g, w) {
					t.Errorf("field %d = %+v, want %+v", i, g, w)
				}
			}
			it, i := m.Iter(), 0
			for ; it.Next(); i++ {
				if !equalish(it.Field(), got[i]) {
					t.Errorf("Iter field %d = %+v", i, it.Field())
				}
			}
			if i != len(fields) {
				t.Errorf("Iter gave %d fields", i)
			}
		},
	}
}

func dataRowCase(name string, values [][]byte) oracleCase {
	return oracleCase{
		name: "DataRow/" + name, ours: AppendDataRow(nil, values), pg: &pgproto3.DataRow{Values: values}, sameWire: true,
		check: func(t *testing.T, body []byte) {
			m, err := ParseDataRow(body)
			must(t, err)
			if m.NumColumns() != len(values) {
				t.Fatalf("NumColumns = %d, want %d", m.NumColumns(), len(values))
			}
			dst := make([][]byte, 3, 8) // stale entries must go
			cols, err := m.Columns(dst)
			must(t, err)
			wantValues(t, "Columns", cols, values)
			var got [][]byte
			it := m.Iter()
			for it.Next() {
				got = append(got, it.Value())
			}
			must(t, it.Err())
			wantValues(t, "Iter", got, values)
		},
	}
}

func copyResponseCase(typ byte, format int8, cf []int16) oracleCase {
	var ours []byte
	var pg pgMsg
	switch typ {
	case CopyInResponse:
		ours = AppendCopyInResponse(nil, format, cf)
		pg = &pgproto3.CopyInResponse{OverallFormat: byte(format), ColumnFormatCodes: toUint16s(cf)}
	case CopyOutResponse:
		ours = AppendCopyOutResponse(nil, format, cf)
		pg = &pgproto3.CopyOutResponse{OverallFormat: byte(format), ColumnFormatCodes: toUint16s(cf)}
	default:
		ours = AppendCopyBothResponse(nil, format, cf)
		pg = &pgproto3.CopyBothResponse{OverallFormat: byte(format), ColumnFormatCodes: toUint16s(cf)}
	}
	return oracleCase{
		name: fmt.Sprintf("CopyResponse/%c/%d/%d", typ, format, len(cf)), ours: ours, pg: pg, sameWire: true,
		check: func(t *testing.T, body []byte) {
			m, err := ParseCopyResponse(body)
			must(t, err)
			if m.Format != format {
				t.Errorf("format %d, want %d", m.Format, format)
			}
			wantInts(t, "column formats", m.ColumnFormats.Append(nil), cf)
		},
	}
}

func authCase(name string, ours []byte, pg pgMsg, code int32, data string) oracleCase {
	return oracleCase{name: "Authentication/" + name, ours: ours, pg: pg, sameWire: true, check: func(t *testing.T, body []byte) {
		c, d, err := ParseAuthentication(body)
		must(t, err)
		if c != code || string(d) != data {
			t.Errorf("code %d data %q, want %d %q", c, d, code, data)
		}
	}}
}

func errorCase(name string, notice bool, e *Error, pg *pgproto3.ErrorResponse) oracleCase {
	ours := AppendErrorResponse(nil, e)
	var msg pgMsg = pg
	if notice {
		ours = AppendNoticeResponse(nil, e)
		msg = (*pgproto3.NoticeResponse)(pg)
	}
	return oracleCase{name: name, ours: ours, pg: msg, check: func(t *testing.T, body []byte) {
		got, err := ParseError(body)
		must(t, err)
		if !equalish(got, e) {
			t.Errorf("ParseError = %+v\nwant %+v", got, e)
		}
	}}
}

func backendCases() []oracleCase {
	manyCols := make([][]byte, 33000)
	for i := range manyCols {
		if i%2 == 0 {
			manyCols[i] = []byte{byte(i)}
		}
	}
	fullError := &pgproto3.ErrorResponse{
		Severity: "FEHLER", SeverityUnlocalized: "ERROR", Code: "23505", Message: "doppelter Schlüsselwert", Detail: "Key (id)=(1) already exists.",
		Hint: "try another", Position: 17, InternalPosition: 4, InternalQuery: "select 1", Where: "PL/pgSQL function f()",
		SchemaName: "public", TableName: "t", ColumnName: "id", DataTypeName: "int4", ConstraintName: "t_pkey",
		File: "nbtinsert.c", Line: 666, Routine: "_bt_check_unique",
	}
	// Our form of fullError: fields the Error type does not name travel in Other, in pgproto3's wire order.
	fullOurs := &Error{Severity: "FEHLER", Code: "23505", Message: "doppelter Schlüsselwert", Detail: "Key (id)=(1) already exists.",
		Hint: "try another", Position: "17", Where: "PL/pgSQL function f()", Other: []ErrorField{
			{'p', "4"}, {'q', "select 1"}, {'s', "public"}, {'t', "t"}, {'c', "id"}, {'d', "int4"}, {'n', "t_pkey"},
			{'F', "nbtinsert.c"}, {'L', "666"}, {'R', "_bt_check_unique"}, {'V', "ERROR"},
		}}
	return []oracleCase{
		authCase("Ok", AppendAuthentication(nil, AuthOK, nil), &pgproto3.AuthenticationOk{}, AuthOK, ""),
		authCase("Cleartext", AppendAuthentication(nil, AuthCleartextPassword, nil), &pgproto3.AuthenticationCleartextPassword{}, AuthCleartextPassword, ""),
		authCase("MD5", AppendAuthentication(nil, AuthMD5Password, []byte{1, 2, 3, 4}), &pgproto3.AuthenticationMD5Password{Salt: [4]byte{1, 2, 3, 4}}, AuthMD5Password, "\x01\x02\x03\x04"),
		authCase("GSS", AppendAuthentication(nil, AuthGSS, nil), &pgproto3.AuthenticationGSS{}, AuthGSS, ""),
		authCase("GSSContinue", AppendAuthentication(nil, AuthGSSContinue, []byte("tok\x00en")), &pgproto3.AuthenticationGSSContinue{Data: []byte("tok\x00en")}, AuthGSSContinue, "tok\x00en"),
		{
			name: "Authentication/SASL", ours: AppendAuthSASL(nil, "SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"),
			pg: &pgproto3.AuthenticationSASL{AuthMechanisms: []string{"SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"}}, sameWire: true,
			check: func(t *testing.T, body []byte) {
				code, data, err := ParseAuthentication(body)
				must(t, err)
				mechs, err := ParseSASLMechanisms(data)
				must(t, err)
				if code != AuthSASL || !equalish(mechs, []string{"SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"}) {
					t.Errorf("code %d mechanisms %q", code, mechs)
				}
			},
		},
		authCase("SASLContinue", AppendAuthentication(nil, AuthSASLContinue, []byte("r=abc,s=c2FsdA==,i=4096")), &pgproto3.AuthenticationSASLContinue{Data: []byte("r=abc,s=c2FsdA==,i=4096")}, AuthSASLContinue, "r=abc,s=c2FsdA==,i=4096"),
		authCase("SASLFinal", AppendAuthentication(nil, AuthSASLFinal, []byte("v=xyz")), &pgproto3.AuthenticationSASLFinal{Data: []byte("v=xyz")}, AuthSASLFinal, "v=xyz"),
		{
			name: "BackendKeyData/3.0", ours: AppendBackendKeyData(nil, 4242, []byte{9, 8, 7, 6}), pg: &pgproto3.BackendKeyData{ProcessID: 4242, SecretKey: []byte{9, 8, 7, 6}}, sameWire: true,
			check: func(t *testing.T, body []byte) {
				pid, key, err := ParseBackendKeyData(body)
				must(t, err)
				if pid != 4242 || string(key) != "\x09\x08\x07\x06" {
					t.Errorf("pid %d key %x", pid, key)
				}
			},
		},
		{
			name: "BackendKeyData/3.2", ours: AppendBackendKeyData(nil, 0xFFFFFFF0, bytes.Repeat([]byte{0xAB}, 32)), pg: &pgproto3.BackendKeyData{ProcessID: 0xFFFFFFF0, SecretKey: bytes.Repeat([]byte{0xAB}, 32)}, sameWire: true,
			check: func(t *testing.T, body []byte) {
				pid, key, err := ParseBackendKeyData(body)
				must(t, err)
				if pid != 0xFFFFFFF0 || !bytes.Equal(key, bytes.Repeat([]byte{0xAB}, 32)) {
					t.Errorf("pid %d key %x", pid, key)
				}
			},
		},
		{
			name: "ParameterStatus", ours: AppendParameterStatus(nil, "TimeZone", "Europe/Berlin"), pg: &pgproto3.ParameterStatus{Name: "TimeZone", Value: "Europe/Berlin"}, sameWire: true,
			check: func(t *testing.T, body []byte) {
				n, v, err := ParseParameterStatus(body)
				must(t, err)
				if n != "TimeZone" || v != "Europe/Berlin" {
					t.Errorf("%q=%q", n, v)
				}
			},
		},
		{
			name: "ParameterStatus/empty", ours: AppendParameterStatus(nil, "application_name", ""), pg: &pgproto3.ParameterStatus{Name: "application_name", Value: ""}, sameWire: true,
			check: func(t *testing.T, body []byte) {
				n, v, err := ParseParameterStatus(body)
				must(t, err)
				if n != "application_name" || v != "" {
					t.Errorf("%q=%q", n, v)
				}
			},
		},
		readyCase(TxIdle), readyCase(TxActive), readyCase(TxFailed),
		textCase("CommandComplete/SELECT", AppendCommandComplete(nil, "SELECT 3"), &pgproto3.CommandComplete{CommandTag: []byte("SELECT 3")}, ParseCommandComplete, "SELECT 3"),
		textCase("CommandComplete/INSERT", AppendCommandComplete(nil, "INSERT 0 10000000000"), &pgproto3.CommandComplete{CommandTag: []byte("INSERT 0 10000000000")}, ParseCommandComplete, "INSERT 0 10000000000"),
		rowDescriptionCase("none", nil),
		rowDescriptionCase("mixed", []pgproto3.FieldDescription{
			{Name: []byte("id"), TableOID: 16384, TableAttributeNumber: 1, DataTypeOID: 20, DataTypeSize: 8, TypeModifier: -1, Format: 1},
			{Name: []byte("name"), TableOID: 16384, TableAttributeNumber: 2, DataTypeOID: 1043, DataTypeSize: -1, TypeModifier: 68, Format: 0},
			{Name: []byte(""), TableOID: 0, TableAttributeNumber: 0, DataTypeOID: 25, DataTypeSize: -1, TypeModifier: -1, Format: 0},
			{Name: []byte("?column?"), TableOID: 4294967295, TableAttributeNumber: 1600, DataTypeOID: 4294967294, DataTypeSize: -2, TypeModifier: 2147483647, Format: 1},
		}),
		dataRowCase("none", nil),
		dataRowCase("mixed", [][]byte{[]byte("1"), nil, {}, {0, 0, 0, 0, 0xff}, []byte(strings.Repeat("x", 70000))}),
		dataRowCase("all NULL", [][]byte{nil, nil}),
		dataRowCase("wide", manyCols),
		copyResponseCase(CopyInResponse, 0, []int16{0, 0, 0}),
		copyResponseCase(CopyOutResponse, 1, []int16{1, 1}),
		copyResponseCase(CopyBothResponse, 0, nil),
		copyResponseCase(CopyInResponse, 1, nil),
		{
			name: "NotificationResponse", ours: AppendNotification(nil, 77, "chan", []byte("payload with spaces")),
			pg: &pgproto3.NotificationResponse{PID: 77, Channel: "chan", Payload: "payload with spaces"}, sameWire: true,
			check: func(t *testing.T, body []byte) {
				m, err := ParseNotification(body)
				must(t, err)
				if m.PID != 77 {
					t.Errorf("pid %d", m.PID)
				}
				wantText(t, "channel", m.Channel, "chan")
				wantText(t, "payload", m.Payload, "payload with spaces")
			},
		},
		{
			name: "NotificationResponse/empty", ours: AppendNotification(nil, 0xFFFFFFFF, "c", ""),
			pg: &pgproto3.NotificationResponse{PID: 0xFFFFFFFF, Channel: "c", Payload: ""}, sameWire: true,
			check: func(t *testing.T, body []byte) {
				m, err := ParseNotification(body)
				must(t, err)
				if m.PID != 0xFFFFFFFF {
					t.Errorf("pid %d", m.PID)
				}
				wantText(t, "channel", m.Channel, "c")
				wantText(t, "payload", m.Payload, "")
			},
		},
		paramDescCase(nil), paramDescCase([]uint32{23, 25, 1043, 4294967295}),
		fcrCase("value", []byte("42")), fcrCase("NULL", nil), fcrCase("empty", []byte{}),
		npvCase(ProtocolVersion30), npvCase(ProtocolVersion30, "_pq_.compression"), npvCase(ProtocolVersion32, "_pq_.a", "_pq_.b", ""),
		emptyCase("EmptyQueryResponse", EmptyQueryResponse, &pgproto3.EmptyQueryResponse{}),
		{name: "EmptyQueryResponse/named", ours: AppendEmptyQueryResponse(nil), pg: &pgproto3.EmptyQueryResponse{}, sameWire: true, check: func(t *testing.T, b []byte) { must(t, ParseEmpty(b)) }},
		emptyCase("ParseComplete", ParseComplete, &pgproto3.ParseComplete{}),
		emptyCase("BindComplete", BindComplete, &pgproto3.BindComplete{}),
		emptyCase("CloseComplete", CloseComplete, &pgproto3.CloseComplete{}),
		emptyCase("NoData", NoData, &pgproto3.NoData{}),
		emptyCase("PortalSuspended", PortalSuspended, &pgproto3.PortalSuspended{}),
		emptyCase("CopyDone", CopyDone, &pgproto3.CopyDone{}),
		textCase("CopyData", AppendCopyData(nil, []byte("PGCOPY\n\xff\r\n\x00")), &pgproto3.CopyData{Data: []byte("PGCOPY\n\xff\r\n\x00")}, func(b []byte) ([]byte, error) { return b, nil }, "PGCOPY\n\xff\r\n\x00"),
		errorCase("ErrorResponse/simple", false, NewError("42P01", `relation "x" does not exist`),
			&pgproto3.ErrorResponse{Severity: "ERROR", SeverityUnlocalized: "ERROR", Code: "42P01", Message: `relation "x" does not exist`}),
		errorCase("ErrorResponse/fatal-hint", false, NewFatal(SQLStateTooManyConnections, "too many clients").WithHint("raise max_client_connections"),
			&pgproto3.ErrorResponse{Severity: "FATAL", SeverityUnlocalized: "FATAL", Code: "53300", Message: "too many clients", Hint: "raise max_client_connections"}),
		errorCase("ErrorResponse/all-fields", false, fullOurs, fullError),
		errorCase("NoticeResponse/all-fields", true, fullOurs, fullError),
		errorCase("NoticeResponse/simple", true, &Error{Severity: "NOTICE", Code: "00000", Message: "table does not exist, skipping"},
			&pgproto3.ErrorResponse{Severity: "NOTICE", SeverityUnlocalized: "NOTICE", Code: "00000", Message: "table does not exist, skipping"}),
	}
}

func readyCase(status byte) oracleCase {
	return oracleCase{name: fmt.Sprintf("ReadyForQuery/%c", status), ours: AppendReadyForQuery(nil, status), pg: &pgproto3.ReadyForQuery{TxStatus: status}, sameWire: true,
		check: func(t *testing.T, body []byte) {
			s, err := ParseReadyForQuery(body)
			must(t, err)
			if s != status {
				t.Errorf("status %q, want %q", s, status)
			}
		}}
}

func paramDescCase(oids []uint32) oracleCase {
	return oracleCase{name: fmt.Sprintf("ParameterDescription/%d", len(oids)), ours: AppendParameterDescription(nil, oids), pg: &pgproto3.ParameterDescription{ParameterOIDs: oids}, sameWire: true,
		check: func(t *testing.T, body []byte) {
			o, err := ParseParameterDescription(body)
			must(t, err)
			wantInts(t, "oids", o.Append(nil), oids)
		}}
}

func fcrCase(name string, v []byte) oracleCase {
	return oracleCase{name: "FunctionCallResponse/" + name, ours: AppendFunctionCallResponse(nil, v), pg: &pgproto3.FunctionCallResponse{Result: v}, sameWire: true,
		check: func(t *testing.T, body []byte) {
			got, err := ParseFunctionCallResponse(body)
			must(t, err)
			wantValues(t, "result", [][]byte{got}, [][]byte{v})
		}}
}

func npvCase(version uint32, options ...string) oracleCase {
	return oracleCase{name: fmt.Sprintf("NegotiateProtocolVersion/%d", len(options)), ours: AppendNegotiateProtocolVersion(nil, version, options...),
		pg: &pgproto3.NegotiateProtocolVersion{NewestMinorProtocol: version, UnrecognizedOptions: options}, sameWire: true,
		check: func(t *testing.T, body []byte) {
			m, err := ParseNegotiateProtocolVersion(body)
			must(t, err)
			if m.Version != version || m.NumOptions() != len(options) {
				t.Errorf("version %d options %d", m.Version, m.NumOptions())
			}
			got := m.Options(make([][]byte, 1))
			if len(got) != len(options) {
				t.Fatalf("options %q", got)
			}
			for i := range got {
				wantText(t, "option", got[i], options[i])
			}
		}}
}

func TestBackendMessagesOracle(t *testing.T) {
	for _, c := range backendCases() {
		t.Run(c.name, c.run)
	}
}

// TestBackendStreamOracle sends all our backend messages as one stream to pgproto3.Frontend.
func TestBackendStreamOracle(t *testing.T) {
	cases := backendCases()
	var stream []byte
	for _, c := range cases {
		stream = append(stream, c.ours...)
	}
	fe := pgproto3.NewFrontend(bytes.NewReader(stream), io.Discard)
	fe.SetMaxBodyLen(1 << 20)
	for _, c := range cases {
		got, err := fe.Receive()
		if err != nil {
			t.Fatalf("%s: pgproto3.Frontend.Receive: %v", c.name, err)
		}
		want := any(c.pg)
		if n, ok := want.(*pgproto3.NoticeResponse); ok {
			want = n // Receive returns *NoticeResponse for 'N'
		}
		if reflect.TypeOf(got) != reflect.TypeOf(want) || !equalish(got, want) {
			t.Errorf("%s: pgproto3 received %#v", c.name, got)
		}
	}
}

// TestLocalizedSeverityPassesThrough: a server with lc_messages=de sends S=FEHLER, V=ERROR; decoding and
// re-encoding (what the proxy does to a server error it forwards) must keep V, which clients use to classify.
func TestLocalizedSeverityPassesThrough(t *testing.T) {
	in := pgEncode(t, &pgproto3.ErrorResponse{Severity: "FEHLER", SeverityUnlocalized: "ERROR", Code: "42601", Message: "Syntaxfehler"})
	e, err := ParseError(frameOne(t, in).Body)
	must(t, err)
	if e.Severity != "FEHLER" {
		t.Errorf("severity %q", e.Severity)
	}
	var out pgproto3.ErrorResponse
	must(t, out.Decode(frameOne(t, AppendErrorResponse(nil, e)).Body))
	if out.Severity != "FEHLER" || out.SeverityUnlocalized != "ERROR" || out.Code != "42601" || out.Message != "Syntaxfehler" {
		t.Errorf("re-encoded as %+v", out)
	}
	// Only V (servers before 9.6 send only S; a V-only error still gets a severity).
	e, err = ParseError([]byte("VERROR\x00Mx\x00\x00"))
	must(t, err)
	if e.Severity != "ERROR" || len(e.Other) != 0 {
		t.Errorf("V only: %+v", e)
	}
}

// TestStartupOracle covers the untyped startup-phase packets in both directions, through pgproto3.Backend.
func TestStartupOracle(t *testing.T) {
	type startupCase struct {
		name  string
		ours  []byte
		pg    pgMsg
		check func(t *testing.T, s *Startup)
	}
	cases := []startupCase{
		{"StartupMessage/3.0", AppendStartupMessage(nil, ProtocolVersion30, "user", "alice", "database", "app", "application_name", ""),
			&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersion30, Parameters: map[string]string{"user": "alice", "database": "app", "application_name": ""}},
			func(t *testing.T, s *Startup) {
				if s.Code != ProtocolVersion30 || len(s.Params) != 3 {
					t.Fatalf("%+v", s)
				}
				for k, v := range map[string]string{"user": "alice", "database": "app", "application_name": ""} {
					if got, ok := s.Get(k); !ok || got != v {
						t.Errorf("%s = %q %v", k, got, ok)
					}
				}
			}},
		{"StartupMessage/3.2", AppendStartupMessage(nil, ProtocolVersion32, "user", "bob"),
			&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersion32, Parameters: map[string]string{"user": "bob"}},
			func(t *testing.T, s *Startup) {
				if v, _ := s.Get("user"); s.Code != ProtocolVersion32 || v != "bob" || len(s.Params) != 1 {
					t.Errorf("%+v", s)
				}
			}},
		{"SSLRequest", AppendRequestCode(nil, SSLRequestCode), &pgproto3.SSLRequest{}, func(t *testing.T, s *Startup) {
			if s.Code != SSLRequestCode {
				t.Errorf("code %d", s.Code)
			}
		}},
		{"GSSENCRequest", AppendRequestCode(nil, GSSENCRequestCode), &pgproto3.GSSEncRequest{}, func(t *testing.T, s *Startup) {
			if s.Code != GSSENCRequestCode {
				t.Errorf("code %d", s.Code)
			}
		}},
		{"CancelRequest/3.0", AppendCancelRequest(nil, 1234, []byte{1, 2, 3, 4}), &pgproto3.CancelRequest{ProcessID: 1234, SecretKey: []byte{1, 2, 3, 4}}, func(t *testing.T, s *Startup) {
			if s.Code != CancelRequestCode || s.CancelPID != 1234 || string(s.CancelKey) != "\x01\x02\x03\x04" {
				t.Errorf("%+v", s)
			}
		}},
		{"CancelRequest/3.2", AppendCancelRequest(nil, 0xFFFFFFFF, bytes.Repeat([]byte{7}, 256)), &pgproto3.CancelRequest{ProcessID: 0xFFFFFFFF, SecretKey: bytes.Repeat([]byte{7}, 256)}, func(t *testing.T, s *Startup) {
			if s.CancelPID != 0xFFFFFFFF || !bytes.Equal(s.CancelKey, bytes.Repeat([]byte{7}, 256)) {
				t.Errorf("%+v", s)
			}
		}},
	}
	var stream []byte
	for _, c := range cases {
		stream = append(stream, c.ours...)
	}
	be := pgproto3.NewBackend(bytes.NewReader(stream), io.Discard)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// Ours → pgproto3 (ReceiveStartupMessage dispatches on the code like a server does).
			got, err := be.ReceiveStartupMessage()
			must(t, err)
			if reflect.TypeOf(got) != reflect.TypeOf(c.pg) || !equalish(got, c.pg) {
				t.Errorf("pgproto3 received %#v, want %#v", got, c.pg)
			}
			// pgproto3 → ours, and ours → ours.
			for _, b := range [][]byte{pgEncode(t, c.pg), c.ours} {
				body, n, err := ReadStartupPacket(b, 10000)
				must(t, err)
				if n != len(b) {
					t.Fatalf("consumed %d of %d", n, len(b))
				}
				s, err := ParseStartup(body)
				must(t, err)
				c.check(t, s)
			}
		})
	}
}
