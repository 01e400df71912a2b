package codec

import (
	"strconv"
	"strings"
)

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
	var b strings.Builder
	if fromClient {
		traceFrontend(&b, typ, body)
	} else {
		traceBackend(&b, typ, body)
	}
	return b.String()
}

func traceFrontend(b *strings.Builder, typ byte, body []byte) {
	switch typ {
	case Query:
		q, _ := ParseQuery(body)
		b.WriteString("Query " + quoted(q))
	case Parse:
		m, _ := ParseParse(body)
		b.WriteString("Parse " + quoted(m.Name) + " " + quoted(m.Query) + " " + strconv.Itoa(m.ParamTypes.Len()) + " types")
	case Bind:
		m, _ := ParseBind(body)
		b.WriteString("Bind " + quoted(m.Portal) + " " + quoted(m.Statement) + " " + strconv.Itoa(m.NumParams()) + " params")
	case Describe, Close:
		name := map[byte]string{Describe: "Describe", Close: "Close"}[typ]
		target, n, _ := parseTargetName(name, body)
		b.WriteString(name + " " + string(rune(target)) + " " + quoted(n))
	case Execute:
		m, _ := ParseExecute(body)
		b.WriteString("Execute " + quoted(m.Portal) + " " + strconv.Itoa(int(m.MaxRows)))
	case Sync, Flush, Terminate, CopyDone:
		b.WriteString(map[byte]string{Sync: "Sync", Flush: "Flush", Terminate: "Terminate", CopyDone: "CopyDone"}[typ])
	case CopyData:
		b.WriteString("CopyData " + strconv.Itoa(len(body)) + " bytes")
	case CopyFail:
		m, _ := ParseCopyFail(body)
		b.WriteString("CopyFail " + quoted(m))
	case FunctionCall:
		b.WriteString("FunctionCall")
	case PasswordMessage:
		b.WriteString("PasswordMessage") // never its contents
	default:
		b.WriteString("Unknown " + strconv.Quote(string(rune(typ))))
	}
	b.WriteString(" (" + strconv.Itoa(len(body)+4) + " bytes)")
}

func traceBackend(b *strings.Builder, typ byte, body []byte) {
	switch typ {
	case RowDescription:
		m, _ := ParseRowDescription(body)
		b.WriteString("RowDescription " + strconv.Itoa(m.NumFields()) + " fields")
	case DataRow:
		m, _ := ParseDataRow(body)
		b.WriteString("DataRow " + strconv.Itoa(m.NumColumns()) + " columns")
	case CommandComplete:
		tag, _ := ParseCommandComplete(body)
		b.WriteString("CommandComplete " + quoted(tag))
	case ErrorResponse, NoticeResponse:
		b.WriteString(map[byte]string{ErrorResponse: "ErrorResponse", NoticeResponse: "NoticeResponse"}[typ])
		if e, err := ParseError(body); err == nil {
			b.WriteString(" " + e.Severity + " " + e.Code + " " + quoted([]byte(e.Message)))
		}
	case ReadyForQuery:
		s, _ := ParseReadyForQuery(body)
		b.WriteString("ReadyForQuery " + string(rune(s)))
	case ParameterStatus:
		n, v, _ := ParseParameterStatus(body)
		b.WriteString("ParameterStatus " + quoted([]byte(n)) + " " + quoted([]byte(v)))
	case NotificationResponse:
		m, _ := ParseNotification(body)
		b.WriteString("NotificationResponse " + quoted(m.Channel))
	default:
		name, ok := backendNames[typ]
		if !ok {
			name = "Unknown " + strconv.Quote(string(rune(typ)))
		}
		b.WriteString(name)
	}
	b.WriteString(" (" + strconv.Itoa(len(body)+4) + " bytes)")
}

var backendNames = map[byte]string{
	ParseComplete: "ParseComplete", BindComplete: "BindComplete", CloseComplete: "CloseComplete", NoData: "NoData",
	EmptyQueryResponse: "EmptyQueryResponse", PortalSuspended: "PortalSuspended", ParameterDescription: "ParameterDescription",
	BackendKeyData: "BackendKeyData", Authentication: "Authentication", CopyInResponse: "CopyInResponse",
	CopyOutResponse: "CopyOutResponse", CopyBothResponse: "CopyBothResponse", CopyData: "CopyData", CopyDone: "CopyDone",
	FunctionCallResponse: "FunctionCallResponse", NegotiateProtocolVersion: "NegotiateProtocolVersion",
}

// quoted is s in double quotes, cut at traceTextMax bytes.
func quoted(s []byte) string {
	if len(s) > traceTextMax {
		return strconv.Quote(string(s[:traceTextMax])) + "..."
	}
	return strconv.Quote(string(s))
}
