package auth

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"strings"
)

const (
	// keyLen is the size of every SCRAM-SHA-256 key and signature.
	keyLen = sha256.Size

	// rawNonceLen matches Postgres (SCRAM_RAW_NONCE_LEN): 18 random bytes,
	// which base64 turns into 24 characters with no padding.
	rawNonceLen = 18

	// maxClientIterations bounds the work a server can make us do: the
	// iteration count arrives before the server has proved anything, so an
	// impostor could otherwise pin a CPU for minutes per connection.
	maxClientIterations = 10_000_000
)

// newNonce returns a fresh printable nonce. base64 output never contains
// ',', so it needs no escaping inside a SCRAM attribute.
func newNonce() string {
	var raw [rawNonceLen]byte
	rand.Read(raw[:]) // never fails since Go 1.24; it crashes the process instead
	return base64.StdEncoding.EncodeToString(raw[:])
}

// saltedPassword is RFC 5802's Hi(), which is PBKDF2 with one output block.
// pbkdf2 only errors in FIPS 140-only mode with a salt under 16 bytes.
func saltedPassword(password string, salt []byte, iterations int) ([]byte, error) {
	return pbkdf2.Key(sha256.New, saslPrep(password), salt, iterations, keyLen)
}

func hmacSum(key, msg []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(msg)
	return m.Sum(nil)
}

// deriveKeys turns a SaltedPassword into ClientKey, StoredKey and ServerKey.
func deriveKeys(salted []byte) (clientKey, storedKey, serverKey []byte) {
	clientKey = hmacSum(salted, []byte("Client Key"))
	sk := sha256.Sum256(clientKey)
	serverKey = hmacSum(salted, []byte("Server Key"))
	return clientKey, sk[:], serverKey
}

// authMessage is the string both sides sign: the three messages joined by
// commas, with the client's proof left out.
func authMessage(clientFirstBare, serverFirst, clientFinalNoProof string) []byte {
	b := make([]byte, 0, len(clientFirstBare)+len(serverFirst)+len(clientFinalNoProof)+2)
	b = append(b, clientFirstBare...)
	b = append(b, ',')
	b = append(b, serverFirst...)
	b = append(b, ',')
	b = append(b, clientFinalNoProof...)
	return b
}

// decodeB64 is strict: padding must be canonical, and the newlines that
// encoding/base64 would silently skip are refused, so a value has exactly one
// accepted spelling.
func decodeB64(s string) ([]byte, bool) {
	if strings.ContainsAny(s, "\r\n") {
		return nil, false
	}
	b, err := base64.StdEncoding.Strict().DecodeString(s)
	return b, err == nil
}

// nextAttr reads one "k=value" attribute from the front of s and returns the
// remainder after its comma. A trailing comma is an error, so rest == ""
// always means the message is finished.
func nextAttr(s string) (key byte, val, rest string, ok bool) {
	if len(s) < 2 || !isAlpha(s[0]) || s[1] != '=' {
		return 0, "", "", false
	}
	val, rest, found := strings.Cut(s[2:], ",")
	if found && rest == "" {
		return 0, "", "", false
	}
	return s[0], val, rest, true
}

// skipExtensions checks that s is a well-formed list of optional extension
// attributes. Their content is ignored, as Postgres does.
func skipExtensions(s string) bool {
	for s != "" {
		var ok bool
		if _, _, s, ok = nextAttr(s); !ok {
			return false
		}
	}
	return true
}

func isAlpha(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

// validNonce enforces RFC 5802's "printable": %x21-7E except ','.
func validNonce(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x21 || c > 0x7e || c == ',' {
			return false
		}
	}
	return true
}

// parseDecimal accepts only plain ASCII digits: strconv.Atoi would also take
// signs, which no SCRAM or pg_authid writer produces.
func parseDecimal(s string, max int) (int, bool) {
	if s == "" || len(s) > 10 {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, n >= 1 && n <= max
}
