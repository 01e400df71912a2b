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

// SASL mechanism names.
const (
	MechSCRAM     = "SCRAM-SHA-256"
	MechSCRAMPlus = "SCRAM-SHA-256-PLUS" // with channel binding (tls-server-end-point)
)

// ScramServer runs one server-side SCRAM-SHA-256 exchange: pgshard checking
// a client that answered AuthenticationSASL. Over TLS the caller offers
// channel binding (OfferChannelBinding), and the client may pick
// SCRAM-SHA-256-PLUS, which binds the exchange to the TLS session: a proof
// relayed by a man in the middle, who holds another certificate, fails. A
// ScramServer is not safe for concurrent use and must not be reused.
type ScramServer struct {
	v     Verifier
	state serverState

	cbData []byte // tls-server-end-point data when channel binding is offered
	plus   bool   // the client chose SCRAM-SHA-256-PLUS

	clientKey []byte // recovered from a correct proof (Keys)

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

// Keys returns what the client's correct proof showed (its ClientKey) with the verifier's ServerKey: enough to log
// in as the client to a server that keeps the same verifier. False before a successful ClientFinal.
func (s *ScramServer) Keys() (Keys, bool) {
	if s.clientKey == nil {
		return Keys{}, false
	}
	return Keys{ClientKey: s.clientKey, ServerKey: s.v.ServerKey}, true
}

// OfferChannelBinding offers SCRAM-SHA-256-PLUS with the connection's tls-server-end-point data (see
// TLSServerEndPoint). Call it before Mechanisms.
func (s *ScramServer) OfferChannelBinding(data []byte) { s.cbData = data }

// Mechanisms are the SASL mechanisms to announce in AuthenticationSASL, the preferred first (as Postgres).
func (s *ScramServer) Mechanisms() []string {
	if s.cbData != nil {
		return []string{MechSCRAMPlus, MechSCRAM}
	}
	return []string{MechSCRAM}
}

// Choose takes the mechanism the client named in its SASLInitialResponse; one that was not offered is an
// ErrProtocol error.
func (s *ScramServer) Choose(mech string) error {
	switch {
	case mech == MechSCRAM:
	case mech == MechSCRAMPlus && s.cbData != nil:
		s.plus = true
	default:
		s.state = serverDone
		return protoErr("unsupported SASL mechanism " + mech)
	}
	return nil
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
	case s.plus:
		if flag != "p=tls-server-end-point" {
			return nil, protoErr("SCRAM-SHA-256-PLUS needs channel binding type tls-server-end-point")
		}
	case flag == "n":
	case flag == "y":
		// The client could bind but believes we cannot: when we offered
		// it, someone removed SCRAM-SHA-256-PLUS from our offer.
		if s.cbData != nil {
			return nil, protoErr("the client supports channel binding but thinks the server does not: the server's offer was altered")
		}
	case strings.HasPrefix(flag, "p="):
		return nil, protoErr("client requested channel binding, but SCRAM-SHA-256-PLUS was not chosen")
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
	cb := []byte(gs2Header)
	if s.plus {
		cb = append(cb, s.cbData...) // the client proves it sees our certificate
	}
	s.cbind = base64.StdEncoding.EncodeToString(cb)
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
	s.clientKey = append([]byte(nil), sig[:]...)

	mac = hmac.New(sha256.New, s.v.ServerKey)
	mac.Write(am)
	mac.Sum(sig[:0])
	out := make([]byte, 2+base64.StdEncoding.EncodedLen(keyLen))
	copy(out, "v=")
	base64.StdEncoding.Encode(out[2:], sig[:])
	return out, nil
}
