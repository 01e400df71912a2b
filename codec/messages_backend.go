package codec

import (
	"encoding/binary"
	"fmt"
)

// Decoders and encoders of the messages a server sends that startup.go and errors.go do not cover. As on the
// frontend side, decoders allocate nothing and their []byte fields alias the body; encoders append to dst.

// FieldDescription describes one result column of a RowDescription. Name aliases the body when decoded.
type FieldDescription struct {
	Name         []byte
	TableOID     uint32 // 0 when the column is not a table column
	ColumnNumber int16  // attnum in that table, 0 when none
	TypeOID      uint32
	TypeSize     int16 // pg_type.typlen; negative for variable-width types
	TypeModifier int32 // pg_attribute.atttypmod; -1 when none
	Format       int16 // FormatText or FormatBinary
}

// fieldFixedLen is the size of a field description after its name.
const fieldFixedLen = 4 + 2 + 4 + 2 + 4 + 2

// RowDescriptionMessage is a decoded RowDescription.
type RowDescriptionMessage struct {
	n int
	b []byte
}

// NumFields returns the number of columns.
func (m RowDescriptionMessage) NumFields() int { return m.n }

// Fields returns the field descriptions in dst[:0]; reusing dst across messages makes it allocation-free.
func (m RowDescriptionMessage) Fields(dst []FieldDescription) []FieldDescription {
	dst = dst[:0]
	it := m.Iter()
	for it.Next() {
		dst = append(dst, it.Field())
	}
	return dst
}

// Iter returns an iterator over the field descriptions.
func (m RowDescriptionMessage) Iter() FieldIter { return FieldIter{b: m.b, left: m.n} }

// FieldIter walks the fields of a validated RowDescription.
type FieldIter struct {
	b    []byte
	left int
	f    FieldDescription
}

// Next advances to the next field and reports whether there is one.
func (it *FieldIter) Next() bool {
	if it.left <= 0 {
		return false
	}
	r := reader{b: it.b}
	name := r.cstringBytes()
	fixed := r.bytes(fieldFixedLen)
	if r.err != nil {
		it.left = 0
		return false
	}
	it.f = FieldDescription{
		Name:         name,
		TableOID:     binary.BigEndian.Uint32(fixed[0:]),
		ColumnNumber: int16(binary.BigEndian.Uint16(fixed[4:])),
		TypeOID:      binary.BigEndian.Uint32(fixed[6:]),
		TypeSize:     int16(binary.BigEndian.Uint16(fixed[10:])),
		TypeModifier: int32(binary.BigEndian.Uint32(fixed[12:])),
		Format:       int16(binary.BigEndian.Uint16(fixed[16:])),
	}
	it.b = r.b
	it.left--
	return true
}

// Field returns the current field.
func (it *FieldIter) Field() FieldDescription { return it.f }

// ParseRowDescription decodes a RowDescription body.
func ParseRowDescription(body []byte) (RowDescriptionMessage, error) {
	r := reader{b: body}
	n := r.uint16()
	if r.err == nil && n*(1+fieldFixedLen) > len(r.b) {
		r.fail(ErrShortMessage)
	}
	fields := r.b
	for i := 0; i < n && r.err == nil; i++ {
		r.cstringBytes()
		r.bytes(fieldFixedLen)
	}
	r.end()
	if r.err != nil {
		return RowDescriptionMessage{}, malformed("RowDescription", r.err)
	}
	return RowDescriptionMessage{n: n, b: fields}, nil
}

// AppendRowDescription appends a RowDescription of fields.
func AppendRowDescription(dst []byte, fields []FieldDescription) []byte {
	start := len(dst)
	dst = StartMessage(dst, RowDescription)
	dst = AppendInt16(dst, int16(len(fields)))
	for i := range fields {
		f := &fields[i]
		dst = appendText(dst, f.Name)
		dst = binary.BigEndian.AppendUint32(dst, f.TableOID)
		dst = AppendInt16(dst, f.ColumnNumber)
		dst = binary.BigEndian.AppendUint32(dst, f.TypeOID)
		dst = AppendInt16(dst, f.TypeSize)
		dst = AppendInt32(dst, f.TypeModifier)
		dst = AppendInt16(dst, f.Format)
	}
	return FinishMessage(dst, start)
}

// DataRowMessage is a DataRow whose column count has been read. Its columns are checked as they are walked (the
// proxy forwards most rows without looking inside), so Iter and Columns report malformed columns.
type DataRowMessage struct {
	n    int
	cols []byte
}

// ParseDataRow reads the column count of a DataRow body and checks that the body can hold that many columns.
func ParseDataRow(body []byte) (DataRowMessage, error) {
	if len(body) < 2 {
		return DataRowMessage{}, malformed("DataRow", ErrShortMessage)
	}
	n := int(binary.BigEndian.Uint16(body))
	if 4*n > len(body)-2 {
		return DataRowMessage{}, malformed("DataRow", fmt.Errorf("%w: %d columns in %d bytes", ErrShortMessage, n, len(body)))
	}
	return DataRowMessage{n: n, cols: body[2:]}, nil
}

// NumColumns returns the number of columns.
func (m DataRowMessage) NumColumns() int { return m.n }

// Iter returns an iterator over the column values (nil is NULL).
func (m DataRowMessage) Iter() ValueIter { return ValueIter{b: m.cols, left: m.n, msg: "DataRow"} }

// Columns returns the column values in dst[:0] (nil entries are NULL); reusing dst across rows makes it
// allocation-free. On malformed input it returns dst[:0] and the error.
func (m DataRowMessage) Columns(dst [][]byte) ([][]byte, error) {
	dst = dst[:0]
	b := m.cols
	for i := 0; i < m.n; i++ {
		v, rest, err := cutValue(b)
		if err != nil {
			return dst[:0], malformed("DataRow", err)
		}
		dst = append(dst, v)
		b = rest
	}
	if len(b) != 0 {
		return dst[:0], malformed("DataRow", fmt.Errorf("%w: %d bytes after the last column", ErrBadLength, len(b)))
	}
	return dst, nil
}

// AppendDataRow appends a DataRow; a nil entry of values is NULL.
func AppendDataRow(dst []byte, values [][]byte) []byte {
	start := len(dst)
	dst = StartMessage(dst, DataRow)
	dst = appendValueRun(dst, values)
	return FinishMessage(dst, start)
}

// ParseCommandComplete returns the command tag of a CommandComplete ("SELECT 3", "INSERT 0 1"), aliasing the body.
func ParseCommandComplete(body []byte) ([]byte, error) {
	r := reader{b: body}
	tag := r.cstringBytes()
	r.end()
	if r.err != nil {
		return nil, malformed("CommandComplete", r.err)
	}
	return tag, nil
}

// CopyResponseMessage is a decoded CopyInResponse, CopyOutResponse or CopyBothResponse (their bodies share a form).
type CopyResponseMessage struct {
	Format        int8 // overall format: FormatText or FormatBinary
	ColumnFormats FormatCodes
}

// ParseCopyResponse decodes the body of a CopyInResponse, CopyOutResponse or CopyBothResponse.
func ParseCopyResponse(body []byte) (CopyResponseMessage, error) {
	r := reader{b: body}
	var m CopyResponseMessage
	m.Format = int8(r.byte())
	m.ColumnFormats = r.formatCodes()
	r.end()
	if r.err != nil {
		return CopyResponseMessage{}, malformed("CopyResponse", r.err)
	}
	return m, nil
}

// AppendCopyInResponse appends a CopyInResponse: the server is ready for the client's CopyData.
func AppendCopyInResponse(dst []byte, format int8, columnFormats []int16) []byte {
	return appendCopyResponse(dst, CopyInResponse, format, columnFormats)
}

// AppendCopyOutResponse appends a CopyOutResponse: CopyData follows from the server.
func AppendCopyOutResponse(dst []byte, format int8, columnFormats []int16) []byte {
	return appendCopyResponse(dst, CopyOutResponse, format, columnFormats)
}

// AppendCopyBothResponse appends a CopyBothResponse (streaming replication).
func AppendCopyBothResponse(dst []byte, format int8, columnFormats []int16) []byte {
	return appendCopyResponse(dst, CopyBothResponse, format, columnFormats)
}

func appendCopyResponse(dst []byte, typ byte, format int8, columnFormats []int16) []byte {
	start := len(dst)
	dst = StartMessage(dst, typ)
	dst = append(dst, byte(format))
	dst = appendInt16s(dst, columnFormats)
	return FinishMessage(dst, start)
}

// NotificationMessage is a decoded NotificationResponse (LISTEN/NOTIFY).
type NotificationMessage struct {
	PID     uint32 // the notifying backend
	Channel []byte
	Payload []byte
}

// ParseNotification decodes a NotificationResponse body.
func ParseNotification(body []byte) (NotificationMessage, error) {
	r := reader{b: body}
	var m NotificationMessage
	m.PID = r.uint32()
	m.Channel = r.cstringBytes()
	m.Payload = r.cstringBytes()
	r.end()
	if r.err != nil {
		return NotificationMessage{}, malformed("NotificationResponse", r.err)
	}
	return m, nil
}

// AppendNotification appends a NotificationResponse.
func AppendNotification[C, P Text](dst []byte, pid uint32, channel C, payload P) []byte {
	start := len(dst)
	dst = StartMessage(dst, NotificationResponse)
	dst = binary.BigEndian.AppendUint32(dst, pid)
	dst = appendText(dst, channel)
	dst = appendText(dst, payload)
	return FinishMessage(dst, start)
}

// ParseParameterDescription decodes a ParameterDescription body: the type OIDs of a statement's parameters.
func ParseParameterDescription(body []byte) (OIDs, error) {
	r := reader{b: body}
	o := r.oids()
	r.end()
	if r.err != nil {
		return OIDs{}, malformed("ParameterDescription", r.err)
	}
	return o, nil
}

// AppendParameterDescription appends a ParameterDescription.
func AppendParameterDescription(dst []byte, paramTypes []uint32) []byte {
	start := len(dst)
	dst = StartMessage(dst, ParameterDescription)
	dst = appendOIDs(dst, paramTypes)
	return FinishMessage(dst, start)
}

// ParseFunctionCallResponse returns the result of a FunctionCallResponse: nil for NULL, else a view of the value.
func ParseFunctionCallResponse(body []byte) ([]byte, error) {
	v, rest, err := cutValue(body)
	if err == nil && len(rest) != 0 {
		err = fmt.Errorf("%w: %d bytes after the value", ErrBadLength, len(rest))
	}
	if err != nil {
		return nil, malformed("FunctionCallResponse", err)
	}
	return v, nil
}

// AppendFunctionCallResponse appends a FunctionCallResponse; a nil value is NULL.
func AppendFunctionCallResponse(dst []byte, value []byte) []byte {
	start := len(dst)
	dst = StartMessage(dst, FunctionCallResponse)
	if value == nil {
		dst = AppendInt32(dst, -1)
	} else {
		dst = AppendInt32(dst, int32(len(value)))
		dst = append(dst, value...)
	}
	return FinishMessage(dst, start)
}

// NegotiateProtocolVersionMessage is a decoded NegotiateProtocolVersion: the server does not support the minor
// version or some "_pq_." options the client asked for.
type NegotiateProtocolVersionMessage struct {
	Version uint32 // newest version the server supports for the requested major version (3<<16 | minor)
	n       int
	options []byte
}

// NumOptions returns the number of options the server did not recognize.
func (m NegotiateProtocolVersionMessage) NumOptions() int { return m.n }

// Options returns the names of the options the server did not recognize in dst[:0]; they alias the body.
func (m NegotiateProtocolVersionMessage) Options(dst [][]byte) [][]byte {
	dst = dst[:0]
	r := reader{b: m.options}
	for i := 0; i < m.n; i++ {
		s := r.cstringBytes()
		if r.err != nil {
			break
		}
		dst = append(dst, s)
	}
	return dst
}

// ParseNegotiateProtocolVersion decodes a NegotiateProtocolVersion body.
func ParseNegotiateProtocolVersion(body []byte) (NegotiateProtocolVersionMessage, error) {
	r := reader{b: body}
	var m NegotiateProtocolVersionMessage
	m.Version = r.uint32()
	count := r.uint32()
	if r.err == nil && uint64(count) > uint64(len(r.b)) { // every option holds at least its NUL
		r.fail(fmt.Errorf("%w: %d options in %d bytes", ErrShortMessage, count, len(r.b)))
	}
	m.n = int(count)
	m.options = r.b
	for i := 0; i < m.n && r.err == nil; i++ {
		r.cstringBytes()
	}
	r.end()
	if r.err != nil {
		return NegotiateProtocolVersionMessage{}, malformed("NegotiateProtocolVersion", r.err)
	}
	return m, nil
}

// AppendNegotiateProtocolVersion appends a NegotiateProtocolVersion.
func AppendNegotiateProtocolVersion(dst []byte, version uint32, options ...string) []byte {
	start := len(dst)
	dst = StartMessage(dst, NegotiateProtocolVersion)
	dst = binary.BigEndian.AppendUint32(dst, version)
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(options)))
	for _, o := range options {
		dst = AppendCString(dst, o)
	}
	return FinishMessage(dst, start)
}

// ParseReadyForQuery returns the transaction status of a ReadyForQuery: TxIdle, TxActive or TxFailed.
func ParseReadyForQuery(body []byte) (byte, error) {
	if len(body) != 1 {
		return 0, malformed("ReadyForQuery", fmt.Errorf("%w: body of %d bytes", ErrBadLength, len(body)))
	}
	switch s := body[0]; s {
	case TxIdle, TxActive, TxFailed:
		return s, nil
	default:
		return 0, malformed("ReadyForQuery", fmt.Errorf("%w: status %q", ErrBadValue, s))
	}
}

// AppendEmptyQueryResponse appends an EmptyQueryResponse (the answer to an empty query string).
func AppendEmptyQueryResponse(dst []byte) []byte { return AppendEmpty(dst, EmptyQueryResponse) }
