package codec

import "strconv"

// traceTextMax bounds a statement's text or a value in a trace line.
const traceTextMax = 200

// TraceLine describes one complete message (type byte, length, body) in a line, as libpq's PQtrace does:
// its name and what identifies it (a statement's text, names, a command tag, an error's severity, code and
// message, a status), never the values of rows or parameters. fromClient says which side sent it, since
// some type bytes mean one thing from a client and another from a server.
func TraceLine(msg []byte, fromClient bool) string {
	if len(msg) < HeaderLen {
		return "(truncated)"
	}
	typ, body := msg[0], msg[HeaderLen:]
	names, detail := backendNames, backendDetail
	if fromClient {
		names, detail = frontendNames, frontendDetail
	}
	name, ok := names[typ]
	if !ok {
		name = "Unknown " + strconv.Quote(string(rune(typ)))
	}
	line := name
	if d := detail(name, typ, body); d != "" {
		line += " " + d
	}
	return line + " (" + strconv.Itoa(len(body)+4) + " bytes)"
}

var frontendNames = map[byte]string{
	Query: "Query", Parse: "Parse", Bind: "Bind", Describe: "Describe", Close: "Close", Execute: "Execute",
	Sync: "Sync", Flush: "Flush", Terminate: "Terminate", CopyData: "CopyData", CopyDone: "CopyDone",
	CopyFail: "CopyFail", FunctionCall: "FunctionCall", PasswordMessage: "PasswordMessage",
}

var backendNames = map[byte]string{
	RowDescription: "RowDescription", DataRow: "DataRow", CommandComplete: "CommandComplete",
	ErrorResponse: "ErrorResponse", NoticeResponse: "NoticeResponse", ReadyForQuery: "ReadyForQuery",
	ParameterStatus: "ParameterStatus", NotificationResponse: "NotificationResponse",
	ParseComplete: "ParseComplete", BindComplete: "BindComplete", CloseComplete: "CloseComplete", NoData: "NoData",
	EmptyQueryResponse: "EmptyQueryResponse", PortalSuspended: "PortalSuspended", ParameterDescription: "ParameterDescription",
	BackendKeyData: "BackendKeyData", Authentication: "Authentication", CopyInResponse: "CopyInResponse",
	CopyOutResponse: "CopyOutResponse", CopyBothResponse: "CopyBothResponse", CopyData: "CopyData", CopyDone: "CopyDone",
	FunctionCallResponse: "FunctionCallResponse", NegotiateProtocolVersion: "NegotiateProtocolVersion",
}

// frontendDetail is what identifies a client's message of type typ (named name), "" when nothing does (a
// password message's contents are never shown).
func frontendDetail(name string, typ byte, body []byte) string {
	switch typ {
	case Query:
		q, _ := ParseQuery(body)
		return quoted(q)
	case Parse:
		m, _ := ParseParse(body)
		return quoted(m.Name) + " " + quoted(m.Query) + " " + strconv.Itoa(m.ParamTypes.Len()) + " types"
	case Bind:
		m, _ := ParseBind(body)
		return quoted(m.Portal) + " " + quoted(m.Statement) + " " + strconv.Itoa(m.NumParams()) + " params"
	case Describe, Close:
		target, n, _ := parseTargetName(name, body)
		return string(rune(target)) + " " + quoted(n)
	case Execute:
		m, _ := ParseExecute(body)
		return quoted(m.Portal) + " " + strconv.Itoa(int(m.MaxRows))
	case CopyData:
		return strconv.Itoa(len(body)) + " bytes"
	case CopyFail:
		m, _ := ParseCopyFail(body)
		return quoted(m)
	}
	return ""
}

// backendDetail is what identifies a server's message of type typ, "" when nothing does (rows are counted,
// never shown).
func backendDetail(_ string, typ byte, body []byte) string {
	switch typ {
	case RowDescription:
		m, _ := ParseRowDescription(body)
		return strconv.Itoa(m.NumFields()) + " fields"
	case DataRow:
		m, _ := ParseDataRow(body)
		return strconv.Itoa(m.NumColumns()) + " columns"
	case CommandComplete:
		tag, _ := ParseCommandComplete(body)
		return quoted(tag)
	case ErrorResponse, NoticeResponse:
		if e, err := ParseError(body); err == nil {
			return e.Severity + " " + e.Code + " " + quoted([]byte(e.Message))
		}
	case ReadyForQuery:
		st, _ := ParseReadyForQuery(body)
		return string(rune(st))
	case ParameterStatus:
		n, v, _ := ParseParameterStatus(body)
		return quoted([]byte(n)) + " " + quoted([]byte(v))
	case NotificationResponse:
		m, _ := ParseNotification(body)
		return quoted(m.Channel)
	}
	return ""
}

// quoted is s in double quotes, cut at traceTextMax bytes.
func quoted(s []byte) string {
	if len(s) > traceTextMax {
		return strconv.Quote(string(s[:traceTextMax])) + "..."
	}
	return strconv.Quote(string(s))
}
