package config

import (
	"encoding/base64"
	"strconv"
	"strings"
)

type passwordKind int

const (
	passwordEmpty passwordKind = iota
	passwordCleartext
	passwordSCRAM
	passwordMD5
	passwordBadSCRAM // starts like a SCRAM verifier but does not parse
)

const scramPrefix = "SCRAM-SHA-256$"

// passwordKindOf tells the forms of User.Password apart the way Postgres does for pg_authid, except that
// a malformed SCRAM verifier is an error rather than a cleartext password: it is almost surely a bad paste.
func passwordKindOf(p string) passwordKind {
	switch {
	case p == "":
		return passwordEmpty
	case strings.HasPrefix(p, scramPrefix):
		if _, ok := ParseSCRAMVerifier(p); ok {
			return passwordSCRAM
		}
		return passwordBadSCRAM
	case IsMD5Hash(p):
		return passwordMD5
	}
	return passwordCleartext
}

// IsMD5Hash reports whether p is an md5 password hash: "md5" and 32 lower-case hex digits, as Postgres
// stores md5(password || username).
func IsMD5Hash(p string) bool {
	if len(p) != 35 || !strings.HasPrefix(p, "md5") {
		return false
	}
	for _, c := range p[3:] {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// SCRAMVerifier is a parsed "SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>" (base64 parts), the
// form Postgres keeps in pg_authid.rolpassword.
type SCRAMVerifier struct {
	Iterations int
	Salt       []byte
	StoredKey  []byte // 32 bytes
	ServerKey  []byte // 32 bytes
}

// ParseSCRAMVerifier parses a SCRAM-SHA-256 verifier; ok is false when s is not one.
func ParseSCRAMVerifier(s string) (v SCRAMVerifier, ok bool) {
	rest, found := strings.CutPrefix(s, scramPrefix)
	if !found {
		return v, false
	}
	params, keys, found := strings.Cut(rest, "$")
	if !found {
		return v, false
	}
	iter, salt, found1 := strings.Cut(params, ":")
	stored, server, found2 := strings.Cut(keys, ":")
	if !found1 || !found2 {
		return v, false
	}
	var err error
	if v.Iterations, err = strconv.Atoi(iter); err != nil || v.Iterations < 1 {
		return v, false
	}
	enc := base64.StdEncoding
	if v.Salt, err = enc.DecodeString(salt); err != nil || len(v.Salt) == 0 {
		return v, false
	}
	if v.StoredKey, err = enc.DecodeString(stored); err != nil || len(v.StoredKey) != 32 {
		return v, false
	}
	if v.ServerKey, err = enc.DecodeString(server); err != nil || len(v.ServerKey) != 32 {
		return v, false
	}
	return v, true
}
