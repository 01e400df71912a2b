package codec

import (
	"encoding/binary"
	"fmt"
)

// Decoders and encoders of the extended-query, COPY and function-call messages a client sends. Decoders validate
// the whole body before returning (counts against the bytes left, NULs, trailing bytes), allocate nothing, and
// return views whose []byte fields alias the body. Encoders append to dst; counts are 16-bit on the wire, so
// slices passed to them must hold at most 65535 entries.

// BindMessage is a decoded Bind: it binds a prepared statement's parameters into a portal.
type BindMessage struct {
	Portal        []byte      // "" is the unnamed portal
	Statement     []byte      // "" is the unnamed statement
	ParamFormats  FormatCodes // 0, 1 or NumParams codes; ParamFormats.For(i) applies the rule
	ResultFormats FormatCodes
	nparams       int
	params        []byte
}

// NumParams returns the number of parameter values.
func (m BindMessage) NumParams() int { return m.nparams }

// Params returns an iterator over the parameter values (nil is NULL). The body was validated, so Err is nil.
func (m BindMessage) Params() ValueIter { return ValueIter{b: m.params, left: m.nparams, msg: "Bind"} }

// Param returns parameter i (nil for NULL or when i is out of range); it walks the values before it.
func (m BindMessage) Param(i int) []byte { return valueAt(m.params, m.nparams, i) }

// AppendParams appends the parameter values to dst (nil entries are NULL).
func (m BindMessage) AppendParams(dst [][]byte) [][]byte {
	return appendValues(dst, m.params, m.nparams)
}

// ParseBind decodes a Bind body.
func ParseBind(body []byte) (BindMessage, error) {
	r := reader{b: body}
	var m BindMessage
	m.Portal = r.cstringBytes()
	m.Statement = r.cstringBytes()
	m.ParamFormats = r.formatCodes()
	m.nparams = r.uint16()
	m.params = r.values(m.nparams)
	m.ResultFormats = r.formatCodes()
	r.end()
	if r.err != nil {
		return BindMessage{}, malformed("Bind", r.err)
	}
	if n := m.ParamFormats.Len(); n > 1 && n != m.nparams {
		return BindMessage{}, malformed("Bind", fmt.Errorf("%w: %d parameter formats for %d parameters", ErrBadValue, n, m.nparams))
	}
	return m, nil
}

// AppendBind appends a Bind. A nil entry of params is NULL.
func AppendBind[P, S Text](dst []byte, portal P, statement S, paramFormats []int16, params [][]byte, resultFormats []int16) []byte {
	start := len(dst)
	dst = StartMessage(dst, Bind)
	dst = appendText(dst, portal)
	dst = appendText(dst, statement)
	dst = appendInt16s(dst, paramFormats)
	dst = appendValueRun(dst, params)
	dst = appendInt16s(dst, resultFormats)
	return FinishMessage(dst, start)
}

// ParseMessage is a decoded Parse: it prepares a statement.
type ParseMessage struct {
	Name       []byte // "" is the unnamed statement
	Query      []byte
	ParamTypes OIDs // 0 means "let the server infer"
}

// ParseParse decodes the body of a Parse message.
func ParseParse(body []byte) (ParseMessage, error) {
	r := reader{b: body}
	var m ParseMessage
	m.Name = r.cstringBytes()
	m.Query = r.cstringBytes()
	m.ParamTypes = r.oids()
	r.end()
	if r.err != nil {
		return ParseMessage{}, malformed("Parse", r.err)
	}
	return m, nil
}

// AppendParse appends a Parse.
func AppendParse[N, Q Text](dst []byte, name N, query Q, paramTypes []uint32) []byte {
	start := len(dst)
	dst = StartMessage(dst, Parse)
	dst = appendText(dst, name)
	dst = appendText(dst, query)
	dst = appendOIDs(dst, paramTypes)
	return FinishMessage(dst, start)
}

// DescribeMessage is a decoded Describe: Target is TargetStatement or TargetPortal.
type DescribeMessage struct {
	Target byte
	Name   []byte
}

// CloseMessage is a decoded Close: Target is TargetStatement or TargetPortal.
type CloseMessage struct {
	Target byte
	Name   []byte
}

func parseTargetName(message string, body []byte) (byte, []byte, error) {
	r := reader{b: body}
	target := r.byte()
	name := r.cstringBytes()
	r.end()
	if r.err != nil {
		return 0, nil, malformed(message, r.err)
	}
	if target != TargetStatement && target != TargetPortal {
		return 0, nil, malformed(message, fmt.Errorf("%w: target %q", ErrBadValue, target))
	}
	return target, name, nil
}

// ParseDescribe decodes a Describe body.
func ParseDescribe(body []byte) (DescribeMessage, error) {
	t, n, err := parseTargetName("Describe", body)
	return DescribeMessage{Target: t, Name: n}, err
}

// ParseClose decodes a (frontend) Close body.
func ParseClose(body []byte) (CloseMessage, error) {
	t, n, err := parseTargetName("Close", body)
	return CloseMessage{Target: t, Name: n}, err
}

// AppendDescribe appends a Describe of a statement (TargetStatement) or a portal (TargetPortal).
func AppendDescribe[N Text](dst []byte, target byte, name N) []byte {
	start := len(dst)
	dst = StartMessage(dst, Describe)
	dst = append(dst, target)
	dst = appendText(dst, name)
	return FinishMessage(dst, start)
}

// AppendClose appends a Close of a statement (TargetStatement) or a portal (TargetPortal).
func AppendClose[N Text](dst []byte, target byte, name N) []byte {
	start := len(dst)
	dst = StartMessage(dst, Close)
	dst = append(dst, target)
	dst = appendText(dst, name)
	return FinishMessage(dst, start)
}

// ExecuteMessage is a decoded Execute. MaxRows 0 (or below) means no limit.
type ExecuteMessage struct {
	Portal  []byte
	MaxRows int32
}

// ParseExecute decodes an Execute body.
func ParseExecute(body []byte) (ExecuteMessage, error) {
	r := reader{b: body}
	var m ExecuteMessage
	m.Portal = r.cstringBytes()
	m.MaxRows = r.int32()
	r.end()
	if r.err != nil {
		return ExecuteMessage{}, malformed("Execute", r.err)
	}
	return m, nil
}

// AppendExecute appends an Execute; maxRows 0 fetches all rows.
func AppendExecute[P Text](dst []byte, portal P, maxRows int32) []byte {
	start := len(dst)
	dst = StartMessage(dst, Execute)
	dst = appendText(dst, portal)
	dst = AppendInt32(dst, maxRows)
	return FinishMessage(dst, start)
}

// AppendCopyData appends a CopyData carrying data (either direction).
func AppendCopyData(dst []byte, data []byte) []byte {
	start := len(dst)
	dst = StartMessage(dst, CopyData)
	dst = append(dst, data...)
	return FinishMessage(dst, start)
}

// ParseCopyFail returns the error message of a CopyFail, aliasing the body.
func ParseCopyFail(body []byte) ([]byte, error) {
	r := reader{b: body}
	s := r.cstringBytes()
	r.end()
	if r.err != nil {
		return nil, malformed("CopyFail", r.err)
	}
	return s, nil
}

// AppendCopyFail appends a CopyFail with the reason the client aborts the COPY.
func AppendCopyFail[M Text](dst []byte, message M) []byte {
	start := len(dst)
	dst = StartMessage(dst, CopyFail)
	dst = appendText(dst, message)
	return FinishMessage(dst, start)
}

// FunctionCallMessage is a decoded FunctionCall (the legacy fast-path interface).
type FunctionCallMessage struct {
	Function     uint32 // OID of the function
	ArgFormats   FormatCodes
	ResultFormat int16
	nargs        int
	args         []byte
}

// NumArgs returns the number of arguments.
func (m FunctionCallMessage) NumArgs() int { return m.nargs }

// Args returns an iterator over the argument values (nil is NULL). The body was validated, so Err is nil.
func (m FunctionCallMessage) Args() ValueIter {
	return ValueIter{b: m.args, left: m.nargs, msg: "FunctionCall"}
}

// AppendArgs appends the argument values to dst (nil entries are NULL).
func (m FunctionCallMessage) AppendArgs(dst [][]byte) [][]byte {
	return appendValues(dst, m.args, m.nargs)
}

// ParseFunctionCall decodes a FunctionCall body.
func ParseFunctionCall(body []byte) (FunctionCallMessage, error) {
	r := reader{b: body}
	var m FunctionCallMessage
	m.Function = r.uint32()
	m.ArgFormats = r.formatCodes()
	m.nargs = r.uint16()
	m.args = r.values(m.nargs)
	m.ResultFormat = r.int16()
	r.end()
	if r.err != nil {
		return FunctionCallMessage{}, malformed("FunctionCall", r.err)
	}
	if n := m.ArgFormats.Len(); n > 1 && n != m.nargs {
		return FunctionCallMessage{}, malformed("FunctionCall", fmt.Errorf("%w: %d argument formats for %d arguments", ErrBadValue, n, m.nargs))
	}
	return m, nil
}

// AppendFunctionCall appends a FunctionCall. A nil entry of args is NULL.
func AppendFunctionCall(dst []byte, function uint32, argFormats []int16, args [][]byte, resultFormat int16) []byte {
	start := len(dst)
	dst = StartMessage(dst, FunctionCall)
	dst = binary.BigEndian.AppendUint32(dst, function)
	dst = appendInt16s(dst, argFormats)
	dst = appendValueRun(dst, args)
	dst = AppendInt16(dst, resultFormat)
	return FinishMessage(dst, start)
}

// ParseEmpty checks the body of a message that has none (Sync, Flush, Terminate, CopyDone, ParseComplete,
// BindComplete, CloseComplete, NoData, PortalSuspended, EmptyQueryResponse).
func ParseEmpty(body []byte) error {
	if len(body) != 0 {
		return fmt.Errorf("%w: %d bytes in a message without a body", ErrBadLength, len(body))
	}
	return nil
}
