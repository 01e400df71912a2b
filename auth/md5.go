package auth

import (
	"crypto/md5"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
)

// MD5Password returns what Postgres stores for an md5 password:
// "md5" + hex(md5(password + user)). The user name is the salt, which is why
// renaming a role invalidates its md5 password.
func MD5Password(user, password string) string {
	sum := md5.Sum([]byte(password + user))
	return "md5" + hex.EncodeToString(sum[:])
}

// isMD5Hash mirrors Postgres's test for a stored md5 secret: "md5" and 32
// lowercase hex digits. Anything else is a plaintext password, even if it
// looks almost like a hash.
func isMD5Hash(s string) bool {
	if len(s) != 35 || s[:3] != "md5" {
		return false
	}
	for i := 3; i < len(s); i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// MD5Response returns the PasswordMessage payload (without its NUL) answering
// AuthenticationMD5Password with salt:
// "md5" + hex(md5(hex(md5(password + user)) + salt)). passwordOrHash may be
// the stored hash itself, which is all the protocol needs; this lets pgshard
// log in to Postgres and check clients without knowing plaintext passwords.
func MD5Response(user, passwordOrHash string, salt [4]byte) string {
	inner := passwordOrHash
	if !isMD5Hash(inner) {
		inner = MD5Password(user, inner)
	}
	buf := make([]byte, 0, 32+len(salt))
	buf = append(buf, inner[3:]...)
	buf = append(buf, salt[:]...)
	sum := md5.Sum(buf)
	return "md5" + hex.EncodeToString(sum[:])
}

// MD5Check reports whether response is the right answer for salt, in constant
// time. An empty passwordOrHash never matches: Postgres refuses to store empty
// passwords, so an empty one here means "no password configured", and we fail
// closed rather than accept md5(user).
func MD5Check(user, passwordOrHash string, salt [4]byte, response string) bool {
	if passwordOrHash == "" {
		return false
	}
	want := MD5Response(user, passwordOrHash, salt)
	return subtle.ConstantTimeCompare([]byte(want), []byte(response)) == 1
}

// NewSalt returns a random salt for AuthenticationMD5Password. It must be
// fresh per connection, or a captured response could be replayed.
func NewSalt() [4]byte {
	var s [4]byte
	rand.Read(s[:]) // never fails since Go 1.24
	return s
}
