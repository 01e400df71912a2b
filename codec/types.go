package codec

// Frontend (client to server) message types.
const (
	Bind            byte = 'B'
	Close           byte = 'C'
	CopyFail        byte = 'f'
	Describe        byte = 'D'
	Execute         byte = 'E'
	Flush           byte = 'H'
	FunctionCall    byte = 'F'
	Parse           byte = 'P'
	PasswordMessage byte = 'p' // also SASLInitialResponse, SASLResponse and GSSResponse
	Query           byte = 'Q'
	Sync            byte = 'S'
	Terminate       byte = 'X'
)

// IsSessionMessage reports a message type a client may send once logged in: the query and COPY messages and
// Terminate. PasswordMessage belongs to authentication only; anything else is not a frontend message at all.
func IsSessionMessage(t byte) bool {
	switch t {
	case Bind, Close, CopyFail, Describe, Execute, Flush, FunctionCall, Parse, Query, Sync, Terminate, CopyData, CopyDone:
		return true
	}
	return false
}

// Messages both sides send.
const (
	CopyData byte = 'd'
	CopyDone byte = 'c'
)

// Backend (server to client) message types.
const (
	Authentication           byte = 'R'
	BackendKeyData           byte = 'K'
	BindComplete             byte = '2'
	CloseComplete            byte = '3'
	CommandComplete          byte = 'C'
	CopyInResponse           byte = 'G'
	CopyOutResponse          byte = 'H'
	CopyBothResponse         byte = 'W'
	DataRow                  byte = 'D'
	EmptyQueryResponse       byte = 'I'
	ErrorResponse            byte = 'E'
	FunctionCallResponse     byte = 'V'
	NegotiateProtocolVersion byte = 'v'
	NoData                   byte = 'n'
	NoticeResponse           byte = 'N'
	NotificationResponse     byte = 'A'
	ParameterDescription     byte = 't'
	ParameterStatus          byte = 'S'
	ParseComplete            byte = '1'
	PortalSuspended          byte = 's'
	ReadyForQuery            byte = 'Z'
	RowDescription           byte = 'T'
)

// Authentication request codes (the first Int32 of an 'R' message).
const (
	AuthOK                = 0
	AuthKerberosV5        = 2
	AuthCleartextPassword = 3
	AuthMD5Password       = 5
	AuthGSS               = 7
	AuthGSSContinue       = 8
	AuthSSPI              = 9
	AuthSASL              = 10
	AuthSASLContinue      = 11
	AuthSASLFinal         = 12
)

// Startup-phase request codes (the Int32 after the length of an untyped packet).
const (
	ProtocolVersion30 uint32 = 3 << 16 // 3.0
	ProtocolVersion32 uint32 = 3<<16 | 2
	CancelRequestCode uint32 = 1234<<16 | 5678
	SSLRequestCode    uint32 = 1234<<16 | 5679
	GSSENCRequestCode uint32 = 1234<<16 | 5680
)

// Transaction status bytes of ReadyForQuery.
const (
	TxIdle   byte = 'I'
	TxActive byte = 'T'
	TxFailed byte = 'E'
)
