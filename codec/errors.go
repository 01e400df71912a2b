package codec

// Error is the decoded form of an ErrorResponse or NoticeResponse, and what the proxy builds to refuse a client.
type Error struct {
	Severity string // S: ERROR, FATAL, PANIC, WARNING, NOTICE, ...
	Code     string // C: SQLSTATE
	Message  string // M
	Detail   string // D
	Hint     string // H
	Position string // P
	Where    string // W
	Other    []ErrorField
}

// ErrorField is a field the proxy does not name but passes through.
type ErrorField struct {
	Type  byte
	Value string
}

func (e *Error) Error() string {
	s := e.Severity + ": " + e.Message
	if e.Code != "" {
		s += " (SQLSTATE " + e.Code + ")"
	}
	return s
}

// NewError builds an ERROR with a SQLSTATE and message.
func NewError(code, message string) *Error {
	return &Error{Severity: "ERROR", Code: code, Message: message}
}

// NewFatal builds a FATAL error: the proxy closes the client after sending it.
func NewFatal(code, message string) *Error {
	return &Error{Severity: "FATAL", Code: code, Message: message}
}

// WithHint returns e with a hint (what the user can do about it).
func (e *Error) WithHint(hint string) *Error { e.Hint = hint; return e }

// WithDetail returns e with a detail (more on what happened).
func (e *Error) WithDetail(detail string) *Error { e.Detail = detail; return e }

// AppendErrorResponse appends e as an ErrorResponse.
func AppendErrorResponse(dst []byte, e *Error) []byte { return appendErrorLike(dst, ErrorResponse, e) }

// AppendNoticeResponse appends e as a NoticeResponse.
func AppendNoticeResponse(dst []byte, e *Error) []byte {
	return appendErrorLike(dst, NoticeResponse, e)
}

func appendErrorLike(dst []byte, typ byte, e *Error) []byte {
	start := len(dst)
	dst = StartMessage(dst, typ)
	field := func(t byte, v string) {
		if v != "" {
			dst = append(dst, t)
			dst = AppendCString(dst, v)
		}
	}
	field('S', e.Severity)
	if !hasField(e.Other, 'V') {
		field('V', e.Severity) // non-localized severity, as Postgres 9.6+ sends
	}
	field('C', e.Code)
	field('M', e.Message)
	field('D', e.Detail)
	field('H', e.Hint)
	field('P', e.Position)
	field('W', e.Where)
	for _, f := range e.Other {
		field(f.Type, f.Value)
	}
	dst = append(dst, 0)
	return FinishMessage(dst, start)
}

// ParseError decodes the body of an ErrorResponse or NoticeResponse.
//
// The non-localized severity (V) fills Severity when S is missing; when it differs from a localized S (a server
// with lc_messages other than English) it is kept in Other, so re-encoding the error does not replace it.
func ParseError(body []byte) (*Error, error) {
	e := &Error{}
	r := reader{b: body}
	var unlocalized string
	for {
		t := r.byte()
		if r.err != nil {
			return nil, r.err
		}
		if t == 0 {
			if e.Severity == "" {
				e.Severity = unlocalized
			} else if unlocalized != "" && unlocalized != e.Severity {
				e.Other = append(e.Other, ErrorField{Type: 'V', Value: unlocalized})
			}
			return e, nil
		}
		v := r.cstring()
		if r.err != nil {
			return nil, r.err
		}
		switch t {
		case 'S':
			e.Severity = v
		case 'V':
			unlocalized = v
		case 'C':
			e.Code = v
		case 'M':
			e.Message = v
		case 'D':
			e.Detail = v
		case 'H':
			e.Hint = v
		case 'P':
			e.Position = v
		case 'W':
			e.Where = v
		default:
			e.Other = append(e.Other, ErrorField{Type: t, Value: v})
		}
	}
}

func hasField(fields []ErrorField, t byte) bool {
	for i := range fields {
		if fields[i].Type == t {
			return true
		}
	}
	return false
}
