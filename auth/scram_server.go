package auth

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"strconv"
	"strings"
)

type serverState uint8

const (
	serverAwaitFirst serverState = iota
	serverAwaitFinal
	serverDone // finished, successfully or not; every later call fails
)

// ScramServer runs one server-side SCRAM-SHA-256 exchange: pgshard checking
// a client that answered AuthenticationSASL with mechanism "SCRAM-SHA-256".
// Channel binding (SCRAM-SHA-256-PLUS) is not offered. A ScramServer is not
// safe for concurrent use and must not be reused.
type ScramServer struct {
	v     Verifier
	state serverState

	// nonce is our half of the combined nonce. Tests preset it to replay
	// fixed vectors; otherwise ClientFirst fills it with random bytes.
	nonce string

	clientFirstBare string // signed as part of the AuthMessage
	serverFirst     string // idem
	cbind           string // the c= value the client must echo: base64(gs2 header)
	fullNonce       string // client nonce + our nonce
}

// NewScramServer starts an exchange against v. It does no key derivation, so
// it is cheap per connection. To hide whether a role exists, run the exchange
// against a made-up Verifier (with a salt stable per role name): it then
// fails at ClientFinal with ErrBadPassword, like a wrong password.
func NewScramServer(v Verifier) *ScramServer {
	return &ScramServer{v: v}
}

// ClientFirst takes the client-first-message (the SASLInitialResponse data)
// and returns the server-first-message to send in AuthenticationSASLContinue.
//
// The user name in the message is ignored: like Postgres, we authenticate the
// user named in the startup packet, and libpq sends an empty one anyway.
// A malformed message gives an ErrProtocol error; an unusable Verifier (zero
// or hand-built with wrong key sizes) gives a plain error, a server fault.
func (s *ScramServer) ClientFirst(msg []byte) ([]byte, error) {
	if s.state != serverAwaitFirst {
		s.state = serverDone
		return nil, protoErr("client-first-message out of order")
	}
	s.state = serverDone // until proven otherwise
	if !s.v.valid() {
		return nil, errBadVerifier
	}
	// Postgres reads these messages as C strings; refuse NULs rather than
	// let the two of us see different messages.
	if bytes.IndexByte(msg, 0) >= 0 {
		return nil, protoErr("message contains a NUL byte")
	}
	m := string(msg)

	// gs2-header = gs2-cbind-flag "," [authzid] ","
	flag, rest, ok := strings.Cut(m, ",")
	if !ok {
		return nil, protoErr("missing gs2 header")
	}
	switch {
	case flag == "n", flag == "y":
		// "y" means the client could bind but believes we cannot, which
		// is true: we only advertise SCRAM-SHA-256, so there is no
		// downgrade to detect.
	case strings.HasPrefix(flag, "p="):
		return nil, protoErr("client requested channel binding, but SCRAM-SHA-256-PLUS was not offered")
	default:
		return nil, protoErr("unexpected channel-binding flag")
	}
	authzid, bare, ok := strings.Cut(rest, ",")
	if !ok {
		return nil, protoErr("missing gs2 header")
	}
	if authzid != "" {
		return nil, protoErr("authorization identity is not supported")
	}
	gs2Header := m[:len(m)-len(bare)]

	// client-first-message-bare = [reserved-mext ","] username "," nonce ["," extensions]
	k, _, rest, ok := nextAttr(bare)
	if !ok {
		return nil, protoErr("malformed client-first-message")
	}
	if k == 'm' {
		return nil, protoErr("client requires an unsupported SCRAM extension")
	}
	if k != 'n' {
		return nil, protoErr("expected user name in client-first-message")
	}
	k, clientNonce, rest, ok := nextAttr(rest)
	if !ok || k != 'r' || !validNonce(clientNonce) {
		return nil, protoErr("missing or invalid client nonce")
	}
	if !skipExtensions(rest) {
		return nil, protoErr("malformed extension in client-first-message")
	}

	if s.nonce == "" {
		s.nonce = newNonce()
	}
	s.clientFirstBare = bare
	s.cbind = base64.StdEncoding.EncodeToString([]byte(gs2Header))
	s.fullNonce = clientNonce + s.nonce
	s.serverFirst = "r=" + s.fullNonce +
		",s=" + base64.StdEncoding.EncodeToString(s.v.Salt) +
		",i=" + strconv.Itoa(s.v.Iterations)
	s.state = serverAwaitFinal
	return []byte(s.serverFirst), nil
}

// ClientFinal takes the client-final-message (the SASLResponse data), checks
// the client's proof and returns the server-final-message ("v=...") to send
// in AuthenticationSASLFinal. A wrong proof gives ErrBadPassword.
func (s *ScramServer) ClientFinal(msg []byte) ([]byte, error) {
	if s.state != serverAwaitFinal {
		s.state = serverDone
		return nil, protoErr("client-final-message out of order")
	}
	s.state = serverDone // one attempt only, whatever happens
	if bytes.IndexByte(msg, 0) >= 0 {
		return nil, protoErr("message contains a NUL byte")
	}
	m := string(msg)

	// client-final-message = channel-binding "," nonce ["," extensions] "," proof
	k, cb, rest, ok := nextAttr(m)
	if !ok || k != 'c' {
		return nil, protoErr("missing channel binding in client-final-message")
	}
	// The client must echo its own gs2 header, so a "y" or "n" it sent
	// cannot have been altered in transit.
	if cb != s.cbind {
		return nil, protoErr("unexpected channel binding data")
	}
	k, nonce, rest, ok := nextAttr(rest)
	if !ok || k != 'r' {
		return nil, protoErr("missing nonce in client-final-message")
	}
	if nonce != s.fullNonce {
		return nil, protoErr("nonce does not match")
	}
	// Skip extensions up to the proof, which must come last.
	var proofB64, withoutProof string
	for {
		if rest == "" {
			return nil, protoErr("missing proof in client-final-message")
		}
		start := len(m) - len(rest)
		var v string
		k, v, rest, ok = nextAttr(rest)
		if !ok {
			return nil, protoErr("malformed client-final-message")
		}
		if k == 'p' {
			if rest != "" {
				return nil, protoErr("garbage after proof in client-final-message")
			}
			proofB64, withoutProof = v, m[:start-1]
			break
		}
	}
	proof, ok := decodeB64(proofB64)
	if !ok || len(proof) != keyLen {
		return nil, protoErr("malformed proof in client-final-message")
	}

	// ClientKey = ClientProof XOR HMAC(StoredKey, AuthMessage); the client
	// knew the password iff H(ClientKey) is our StoredKey.
	am := authMessage(s.clientFirstBare, s.serverFirst, withoutProof)
	mac := hmac.New(sha256.New, s.v.StoredKey)
	mac.Write(am)
	var sig [keyLen]byte
	mac.Sum(sig[:0])
	for i := range sig {
		sig[i] ^= proof[i]
	}
	storedKey := sha256.Sum256(sig[:])
	if subtle.ConstantTimeCompare(storedKey[:], s.v.StoredKey) != 1 {
		return nil, ErrBadPassword
	}

	mac = hmac.New(sha256.New, s.v.ServerKey)
	mac.Write(am)
	mac.Sum(sig[:0])
	out := make([]byte, 2+base64.StdEncoding.EncodedLen(keyLen))
	copy(out, "v=")
	base64.StdEncoding.Encode(out[2:], sig[:])
	return out, nil
}
