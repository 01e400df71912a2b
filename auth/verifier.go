package auth

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"math"
	"strconv"
	"strings"
)

const (
	// DefaultIterations is Postgres's default scram_iterations.
	DefaultIterations = 4096
	// DefaultSaltLen is Postgres's SCRAM_DEFAULT_SALT_LEN.
	DefaultSaltLen = 16

	verifierPrefix = "SCRAM-SHA-256$"
)

var errBadVerifier = errors.New("auth: invalid SCRAM-SHA-256 verifier")

// Verifier is a SCRAM-SHA-256 secret as Postgres stores it in pg_authid. It
// lets the server side check a client without knowing the password, so it is
// what pgshard should keep in memory rather than the password itself.
type Verifier struct {
	Iterations int
	Salt       []byte
	StoredKey  []byte // H(ClientKey): checks the client's proof
	ServerKey  []byte // signs the server-final message
}

// ParseVerifier parses the pg_authid text form
// "SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>" (base64 fields).
func ParseVerifier(s string) (Verifier, error) {
	rest, ok := strings.CutPrefix(s, verifierPrefix)
	if !ok {
		return Verifier{}, errBadVerifier
	}
	iterSalt, keys, ok1 := strings.Cut(rest, "$")
	iterStr, saltStr, ok2 := strings.Cut(iterSalt, ":")
	storedStr, serverStr, ok3 := strings.Cut(keys, ":")
	if !ok1 || !ok2 || !ok3 {
		return Verifier{}, errBadVerifier
	}
	// Postgres accepts any positive int32 here; the cost is paid by whoever
	// made the verifier, never by our server path.
	iter, ok := parseDecimal(iterStr, math.MaxInt32)
	if !ok {
		return Verifier{}, errBadVerifier
	}
	salt, ok1 := decodeB64(saltStr)
	stored, ok2 := decodeB64(storedStr)
	server, ok3 := decodeB64(serverStr)
	if !ok1 || !ok2 || !ok3 || len(salt) == 0 || len(stored) != keyLen || len(server) != keyLen {
		return Verifier{}, errBadVerifier
	}
	return Verifier{Iterations: iter, Salt: salt, StoredKey: stored, ServerKey: server}, nil
}

// IsVerifier reports whether s is a well-formed SCRAM-SHA-256 secret rather
// than, say, a plaintext password or an md5 hash. Like Postgres, a string that
// merely starts with "SCRAM-SHA-256$" but does not parse is not a verifier.
func IsVerifier(s string) bool {
	_, err := ParseVerifier(s)
	return err == nil
}

// NewVerifier derives a verifier from a plaintext password, the way Postgres
// does for CREATE ROLE ... PASSWORD 'plain'. The password goes through the
// SASLprep subset described at saslPrep.
//
// An empty salt is replaced by DefaultSaltLen random bytes and iterations < 1
// by DefaultIterations, so NewVerifier(pw, nil, 0) gives a Postgres-like
// default. Postgres refuses empty passwords; the config loader should too.
//
// NewVerifier panics only if crypto/pbkdf2 refuses the parameters, which
// happens solely in FIPS 140-only mode with a salt shorter than 16 bytes.
func NewVerifier(password string, salt []byte, iterations int) Verifier {
	if len(salt) == 0 {
		salt = make([]byte, DefaultSaltLen)
		rand.Read(salt)
	}
	if iterations < 1 {
		iterations = DefaultIterations
	}
	salted, err := saltedPassword(password, salt, iterations)
	if err != nil {
		panic("auth: NewVerifier: " + err.Error())
	}
	_, stored, server := deriveKeys(salted)
	return Verifier{
		Iterations: iterations,
		Salt:       append([]byte(nil), salt...),
		StoredKey:  stored,
		ServerKey:  server,
	}
}

// String returns the pg_authid text form, accepted by ParseVerifier and by
// Postgres's CREATE/ALTER ROLE ... PASSWORD.
func (v Verifier) String() string {
	enc := base64.StdEncoding
	return verifierPrefix + strconv.Itoa(v.Iterations) + ":" + enc.EncodeToString(v.Salt) +
		"$" + enc.EncodeToString(v.StoredKey) + ":" + enc.EncodeToString(v.ServerKey)
}

// valid is what an exchange needs from a Verifier; a zero or hand-built one
// that fails it must not authenticate anybody.
func (v Verifier) valid() bool {
	return v.Iterations >= 1 && len(v.Salt) > 0 && len(v.StoredKey) == keyLen && len(v.ServerKey) == keyLen
}

// MockVerifier is the made-up Verifier of a role that does not exist, for an exchange that must fail only at
// its end, like a wrong password, so that role names cannot be probed (Postgres does the same). Its salt is
// stable per role name under secret (a client asking twice sees the same salt, as for a real role) and its
// keys match no password.
func MockVerifier(secret []byte, role string) Verifier {
	derive := func(label string) []byte { return hmacSum(secret, []byte(label+"\x00"+role)) }
	return Verifier{
		Iterations: DefaultIterations,
		Salt:       derive("salt")[:DefaultSaltLen],
		StoredKey:  derive("stored"),
		ServerKey:  derive("server"),
	}
}
