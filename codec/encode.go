package codec

import "encoding/binary"

// StartMessage appends a message header with a placeholder length; FinishMessage fills the length in once the
// body is appended. start is len(dst) before the call.
//
//	start := len(dst)
//	dst = codec.StartMessage(dst, codec.Query)
//	dst = append(append(dst, sql...), 0)
//	dst = codec.FinishMessage(dst, start)
func StartMessage(dst []byte, typ byte) []byte {
	return append(dst, typ, 0, 0, 0, 0)
}

// FinishMessage writes the length of the message that starts at dst[start].
func FinishMessage(dst []byte, start int) []byte {
	binary.BigEndian.PutUint32(dst[start+1:], uint32(len(dst)-start-1))
	return dst
}

// AppendInt16 appends a big-endian int16.
func AppendInt16(dst []byte, v int16) []byte { return binary.BigEndian.AppendUint16(dst, uint16(v)) }

// AppendInt32 appends a big-endian int32.
func AppendInt32(dst []byte, v int32) []byte { return binary.BigEndian.AppendUint32(dst, uint32(v)) }

// AppendCString appends s and its NUL terminator.
func AppendCString(dst []byte, s string) []byte { return append(append(dst, s...), 0) }

// AppendEmpty appends a message with no body (Sync, Terminate, Flush, CopyDone, ParseComplete, NoData, ...).
func AppendEmpty(dst []byte, typ byte) []byte { return append(dst, typ, 0, 0, 0, 4) }

// AppendQuery appends a simple Query.
func AppendQuery(dst []byte, sql string) []byte {
	start := len(dst)
	dst = StartMessage(dst, Query)
	dst = AppendCString(dst, sql)
	return FinishMessage(dst, start)
}

// AppendStartupMessage appends a StartupMessage with the given name/value pairs (pairs[0] name, pairs[1] value, ...).
func AppendStartupMessage(dst []byte, version uint32, pairs ...string) []byte {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0)
	dst = binary.BigEndian.AppendUint32(dst, version)
	for _, s := range pairs {
		dst = AppendCString(dst, s)
	}
	dst = append(dst, 0)
	binary.BigEndian.PutUint32(dst[start:], uint32(len(dst)-start))
	return dst
}

// AppendRequestCode appends an 8-byte startup-phase request (SSLRequest, GSSENCRequest).
func AppendRequestCode(dst []byte, code uint32) []byte {
	dst = append(dst, 0, 0, 0, 8)
	return binary.BigEndian.AppendUint32(dst, code)
}

// AppendCancelRequest appends a CancelRequest for the backend (pid, secret key). Protocol 3.2 keys may be longer
// than four bytes.
func AppendCancelRequest(dst []byte, pid uint32, key []byte) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(12+len(key)))
	dst = binary.BigEndian.AppendUint32(dst, CancelRequestCode)
	dst = binary.BigEndian.AppendUint32(dst, pid)
	return append(dst, key...)
}

// AppendAuthentication appends an Authentication request with its code and payload.
func AppendAuthentication(dst []byte, code int32, data []byte) []byte {
	start := len(dst)
	dst = StartMessage(dst, Authentication)
	dst = AppendInt32(dst, code)
	dst = append(dst, data...)
	return FinishMessage(dst, start)
}

// AppendAuthSASL appends AuthenticationSASL listing the mechanisms.
func AppendAuthSASL(dst []byte, mechanisms ...string) []byte {
	start := len(dst)
	dst = StartMessage(dst, Authentication)
	dst = AppendInt32(dst, AuthSASL)
	for _, m := range mechanisms {
		dst = AppendCString(dst, m)
	}
	dst = append(dst, 0)
	return FinishMessage(dst, start)
}

// AppendPassword appends a PasswordMessage carrying a NUL-terminated password or md5 response.
func AppendPassword(dst []byte, password string) []byte {
	start := len(dst)
	dst = StartMessage(dst, PasswordMessage)
	dst = AppendCString(dst, password)
	return FinishMessage(dst, start)
}

// AppendSASLInitialResponse appends the first SASL message of a client.
func AppendSASLInitialResponse(dst []byte, mechanism string, data []byte) []byte {
	start := len(dst)
	dst = StartMessage(dst, PasswordMessage)
	dst = AppendCString(dst, mechanism)
	dst = AppendInt32(dst, int32(len(data)))
	dst = append(dst, data...)
	return FinishMessage(dst, start)
}

// AppendSASLResponse appends a later SASL message of a client.
func AppendSASLResponse(dst []byte, data []byte) []byte {
	start := len(dst)
	dst = StartMessage(dst, PasswordMessage)
	dst = append(dst, data...)
	return FinishMessage(dst, start)
}

// AppendParameterStatus appends a ParameterStatus.
func AppendParameterStatus(dst []byte, name, value string) []byte {
	start := len(dst)
	dst = StartMessage(dst, ParameterStatus)
	dst = AppendCString(dst, name)
	dst = AppendCString(dst, value)
	return FinishMessage(dst, start)
}

// AppendBackendKeyData appends BackendKeyData with a 4-byte key (protocol 3.0) or a longer one (3.2).
func AppendBackendKeyData(dst []byte, pid uint32, key []byte) []byte {
	start := len(dst)
	dst = StartMessage(dst, BackendKeyData)
	dst = binary.BigEndian.AppendUint32(dst, pid)
	dst = append(dst, key...)
	return FinishMessage(dst, start)
}

// AppendReadyForQuery appends ReadyForQuery with the transaction status byte.
func AppendReadyForQuery(dst []byte, status byte) []byte {
	return append(dst, ReadyForQuery, 0, 0, 0, 5, status)
}

// AppendCommandComplete appends CommandComplete with its tag ("SELECT 3", "SHOW").
func AppendCommandComplete(dst []byte, tag string) []byte {
	start := len(dst)
	dst = StartMessage(dst, CommandComplete)
	dst = AppendCString(dst, tag)
	return FinishMessage(dst, start)
}

// AppendRowDescriptionText appends a RowDescription of text columns (type text, OID 25), as the admin console
// and proxy-made answers use.
func AppendRowDescriptionText(dst []byte, names ...string) []byte {
	start := len(dst)
	dst = StartMessage(dst, RowDescription)
	dst = AppendInt16(dst, int16(len(names)))
	for _, n := range names {
		dst = AppendCString(dst, n)
		dst = AppendInt32(dst, 0)  // table OID
		dst = AppendInt16(dst, 0)  // column number
		dst = AppendInt32(dst, 25) // type OID: text
		dst = AppendInt16(dst, -1) // type size
		dst = AppendInt32(dst, -1) // type modifier
		dst = AppendInt16(dst, 0)  // text format
	}
	return FinishMessage(dst, start)
}

// AppendDataRowText appends a DataRow of text values; a true entry in nulls marks SQL NULL when nulls is given.
func AppendDataRowText(dst []byte, values []string, nulls []bool) []byte {
	start := len(dst)
	dst = StartMessage(dst, DataRow)
	dst = AppendInt16(dst, int16(len(values)))
	for i, v := range values {
		if nulls != nil && nulls[i] {
			dst = AppendInt32(dst, -1)
			continue
		}
		dst = AppendInt32(dst, int32(len(v)))
		dst = append(dst, v...)
	}
	return FinishMessage(dst, start)
}
