package auth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"strings"
)

type clientState uint8

const (
	clientStart clientState = iota
	clientAwaitServerFirst
	clientAwaitServerFinal
	clientDone
)

// ScramClient runs the client side of SCRAM-SHA-256 toward Postgres, or of
// SCRAM-SHA-256-PLUS (BindTo). It is not safe for concurrent use and must not
// be reused.
type ScramClient struct {
	password string
	keys     *Keys // instead of the password: the keys a client's login proved (NewScramClientKeys)
	state    clientState
	cbData   []byte // tls-server-end-point data: SCRAM-SHA-256-PLUS (BindTo)

	// nonce is our client nonce and username the n= value. Production
	// leaves both empty (a random nonce is made; Postgres ignores the name
	// and libpq sends none); tests preset them to replay RFC 7677.
	nonce    string
	username string

	clientFirstBare string
	serverSignature []byte // what ServerFinal must receive
}

// Keys are what a SCRAM login proves without the password: ClientKey, recovered from a client's proof
// (ScramServer.ClientKey), and ServerKey from the verifier. With them pgshard logs in to a server that keeps the
// same verifier as the client (SCRAM pass-through, as PgBouncer does for auth_query users).
type Keys struct {
	ClientKey, ServerKey []byte
}

// NewScramClientKeys prepares an exchange that logs in with keys: the server must use the verifier they come
// from (same salt and iteration count).
func NewScramClientKeys(keys Keys) *ScramClient {
	return &ScramClient{keys: &keys}
}

// BindTo makes the exchange SCRAM-SHA-256-PLUS, bound to the TLS session whose server certificate has the
// tls-server-end-point data cbData (TLSServerEndPoint): a man in the middle, who holds another certificate, cannot
// relay the proof. Call it before ClientFirst; the mechanism to name is then MechSCRAMPlus.
func (c *ScramClient) BindTo(cbData []byte) { c.cbData = cbData }

// gs2Header is the GS2 header of the client-first-message.
func (c *ScramClient) gs2Header() string {
	if c.cbData != nil {
		return "p=tls-server-end-point,,"
	}
	return "n,,"
}

// NewScramClient prepares an exchange that logs in with password.
func NewScramClient(password string) *ScramClient {
	return &ScramClient{password: password}
}

// ClientFirst returns the client-first-message, "n,,n=,r=<nonce>", to send as
// the SASLInitialResponse data. Calling it again returns the same message.
func (c *ScramClient) ClientFirst() []byte {
	if c.clientFirstBare == "" {
		if c.nonce == "" {
			c.nonce = newNonce()
		}
		c.clientFirstBare = "n=" + c.username + ",r=" + c.nonce
	}
	if c.state == clientStart {
		c.state = clientAwaitServerFirst
	}
	return []byte(c.gs2Header() + c.clientFirstBare)
}

// gs2NoBinding is base64("n,,"), the c= value of a client that neither
// supports nor uses channel binding.
const gs2NoBinding = "biws"

// ServerFirst takes the server-first-message (AuthenticationSASLContinue
// data) and returns the client-final-message to send as SASLResponse. This is
// where the password is stretched, so it costs one PBKDF2 run.
func (c *ScramClient) ServerFirst(msg []byte) ([]byte, error) {
	if c.state != clientAwaitServerFirst {
		c.state = clientDone
		return nil, protoErr("server-first-message out of order")
	}
	c.state = clientDone
	serverFirst := string(msg)
	nonce, salt, iterations, err := parseServerFirst(serverFirst, c.nonce)
	if err != nil {
		return nil, err
	}
	var clientKey, storedKey, serverKey []byte
	if c.keys != nil {
		clientKey, serverKey = c.keys.ClientKey, c.keys.ServerKey
		sk := sha256.Sum256(clientKey)
		storedKey = sk[:]
	} else {
		salted, err := saltedPassword(c.password, salt, iterations)
		if err != nil {
			return nil, err
		}
		clientKey, storedKey, serverKey = deriveKeys(salted)
	}

	cb := gs2NoBinding
	if c.cbData != nil {
		cb = base64.StdEncoding.EncodeToString(append([]byte(c.gs2Header()), c.cbData...))
	}
	withoutProof := "c=" + cb + ",r=" + nonce
	am := authMessage(c.clientFirstBare, serverFirst, withoutProof)
	proof := hmacSum(storedKey, am)
	for i := range proof {
		proof[i] ^= clientKey[i]
	}
	c.serverSignature = hmacSum(serverKey, am)
	c.state = clientAwaitServerFinal
	return []byte(withoutProof + ",p=" + base64.StdEncoding.EncodeToString(proof)), nil
}

// parseServerFirst checks
// server-first-message = [reserved-mext ","] nonce "," salt "," iteration-count ["," extensions]
// before any expensive work is done on its behalf.
func parseServerFirst(m, clientNonce string) (nonce string, salt []byte, iterations int, err error) {
	k, nonce, rest, ok := nextAttr(m)
	if ok && k == 'm' {
		return "", nil, 0, protoErr("server requires an unsupported SCRAM extension")
	}
	if !ok || k != 'r' || !validNonce(nonce) {
		return "", nil, 0, protoErr("missing or invalid nonce in server-first-message")
	}
	// The server must extend our nonce, not replace it: that is what makes
	// its signature fresh for this exchange.
	if len(nonce) <= len(clientNonce) || !strings.HasPrefix(nonce, clientNonce) {
		return "", nil, 0, protoErr("server nonce does not extend the client nonce")
	}
	k, saltB64, rest, ok := nextAttr(rest)
	if !ok || k != 's' {
		return "", nil, 0, protoErr("missing salt in server-first-message")
	}
	if salt, ok = decodeB64(saltB64); !ok || len(salt) == 0 {
		return "", nil, 0, protoErr("invalid salt in server-first-message")
	}
	k, iterStr, rest, ok := nextAttr(rest)
	if !ok || k != 'i' {
		return "", nil, 0, protoErr("missing iteration count in server-first-message")
	}
	if iterations, ok = parseDecimal(iterStr, maxClientIterations); !ok {
		return "", nil, 0, protoErr("iteration count out of range in server-first-message")
	}
	if !skipExtensions(rest) {
		return "", nil, 0, protoErr("malformed extension in server-first-message")
	}
	return nonce, salt, iterations, nil
}

// ServerFinal checks the server-final-message (AuthenticationSASLFinal data).
// Only after it returns nil do we know the server holds our password's
// secret. An "e=" message comes back as a *ServerError; a wrong signature as
// ErrServerSignature.
func (c *ScramClient) ServerFinal(msg []byte) error {
	if c.state != clientAwaitServerFinal {
		c.state = clientDone
		return protoErr("server-final-message out of order")
	}
	c.state = clientDone
	k, val, rest, ok := nextAttr(string(msg))
	if !ok {
		return protoErr("malformed server-final-message")
	}
	switch k {
	case 'e':
		return &ServerError{Value: val}
	case 'v':
	default:
		return protoErr("missing verifier in server-final-message")
	}
	if !skipExtensions(rest) {
		return protoErr("malformed extension in server-final-message")
	}
	sig, ok := decodeB64(val)
	if !ok {
		return protoErr("malformed verifier in server-final-message")
	}
	if !hmac.Equal(sig, c.serverSignature) {
		return ErrServerSignature
	}
	return nil
}
