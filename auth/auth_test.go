package auth

import (
	"bytes"
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

// RFC 7677 section 3.
const (
	rfcClientNonce = "rOprNGfwEbeRWgbNEkqO"
	rfcServerNonce = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
	rfcSalt        = "W22ZaJ0SNY7soEsUEjb6gQ=="
	rfcClientFirst = "n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
	rfcServerFirst = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
	rfcClientFinal = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
	rfcServerFinal = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
)

func mustB64(t testing.TB, s string) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func rfcVerifier(t testing.TB) Verifier {
	return NewVerifier("pencil", mustB64(t, rfcSalt), 4096)
}

func TestRFC7677Client(t *testing.T) {
	c := NewScramClient("pencil")
	c.nonce, c.username = rfcClientNonce, "user"
	if got := string(c.ClientFirst()); got != rfcClientFirst {
		t.Fatalf("client-first = %q, want %q", got, rfcClientFirst)
	}
	final, err := c.ServerFirst([]byte(rfcServerFirst))
	if err != nil {
		t.Fatal(err)
	}
	if string(final) != rfcClientFinal {
		t.Fatalf("client-final = %q, want %q", final, rfcClientFinal)
	}
	if err := c.ServerFinal([]byte(rfcServerFinal)); err != nil {
		t.Fatal(err)
	}
}

func TestRFC7677Server(t *testing.T) {
	s := NewScramServer(rfcVerifier(t))
	s.nonce = rfcServerNonce
	first, err := s.ClientFirst([]byte(rfcClientFirst))
	if err != nil {
		t.Fatal(err)
	}
	if string(first) != rfcServerFirst {
		t.Fatalf("server-first = %q, want %q", first, rfcServerFirst)
	}
	final, err := s.ClientFinal([]byte(rfcClientFinal))
	if err != nil {
		t.Fatal(err)
	}
	if string(final) != rfcServerFinal {
		t.Fatalf("server-final = %q, want %q", final, rfcServerFinal)
	}
}

// exchange runs a full client/server conversation and returns the first
// error, tagged with the side that raised it.
func exchange(password string, v Verifier) (serverErr, clientErr error) {
	c := NewScramClient(password)
	s := NewScramServer(v)
	sf, err := s.ClientFirst(c.ClientFirst())
	if err != nil {
		return err, nil
	}
	cf, err := c.ServerFirst(sf)
	if err != nil {
		return nil, err
	}
	fin, err := s.ClientFinal(cf)
	if err != nil {
		return err, nil
	}
	return nil, c.ServerFinal(fin)
}

func TestExchange(t *testing.T) {
	v := NewVerifier("correct horse", nil, 0)
	if v.Iterations != DefaultIterations || len(v.Salt) != DefaultSaltLen {
		t.Fatalf("defaults not applied: %d iterations, %d-byte salt", v.Iterations, len(v.Salt))
	}
	if se, ce := exchange("correct horse", v); se != nil || ce != nil {
		t.Fatalf("right password: server %v, client %v", se, ce)
	}
	se, ce := exchange("wrong horse", v)
	if !errors.Is(se, ErrBadPassword) || ce != nil {
		t.Fatalf("wrong password: server %v, client %v; want ErrBadPassword from server", se, ce)
	}
	if errors.Is(se, ErrProtocol) {
		t.Fatal("a wrong password must not look like a protocol error")
	}

	// A server holding the right StoredKey but not the ServerKey (someone
	// who stole only half the secret) accepts the proof, but the client
	// must notice it cannot sign.
	forged := v
	forged.ServerKey = bytes.Repeat([]byte{7}, keyLen)
	if se, ce := exchange("correct horse", forged); se != nil || !errors.Is(ce, ErrServerSignature) {
		t.Fatalf("forged server key: server %v, client %v; want ErrServerSignature", se, ce)
	}

	// A zero Verifier must never authenticate anyone.
	if se, _ := exchange("", Verifier{}); se == nil {
		t.Fatal("zero Verifier accepted an exchange")
	}
}

func TestNoncesAreFresh(t *testing.T) {
	a, b := NewScramClient("x"), NewScramClient("x")
	if bytes.Equal(a.ClientFirst(), b.ClientFirst()) {
		t.Fatal("two clients sent the same nonce")
	}
	v := rfcVerifier(t)
	s1, s2 := NewScramServer(v), NewScramServer(v)
	f1, _ := s1.ClientFirst([]byte(rfcClientFirst))
	f2, _ := s2.ClientFirst([]byte(rfcClientFirst))
	if bytes.Equal(f1, f2) {
		t.Fatal("two servers sent the same nonce")
	}
	if len(s1.nonce) != 24 {
		t.Fatalf("server nonce %q: want 24 base64 characters like Postgres", s1.nonce)
	}
}

// Real secrets computed by Postgres, from its regression suite
// (src/test/regress/sql/password.sql): regress_passwd_sha_len0 is the
// password "password", and regress_passwd_empty is the empty password.
var postgresVerifiers = []struct{ password, secret string }{
	{"password", "SCRAM-SHA-256$4096:A6xHKoH/494E941doaPOYg==$Ky+A30sewHIH3VHQLRN9vYsuzlgNyGNKCh37dy96Rqw=:COPdlNiIkrsacU5QoxydEuOH6e/KfiipeETb/bPw8ZI="},
	{"", "SCRAM-SHA-256$4096:hpFyHTUsSWcR7O9P$LgZFIt6Oqdo27ZFKbZ2nV+vtnYM995pDh9ca6WSi120=:qVV5NeluNfUPkwm7Vqat25RjSPLkGeoZBQs6wVv+um4="},
}

func TestPostgresVerifiers(t *testing.T) {
	for _, tc := range postgresVerifiers {
		v, err := ParseVerifier(tc.secret)
		if err != nil {
			t.Fatalf("ParseVerifier(%q): %v", tc.secret, err)
		}
		if !IsVerifier(tc.secret) {
			t.Fatalf("IsVerifier(%q) = false", tc.secret)
		}
		if got := v.String(); got != tc.secret {
			t.Fatalf("round trip:\n got %s\nwant %s", got, tc.secret)
		}
		// Our derivation from the same salt must reproduce Postgres's keys.
		if got := NewVerifier(tc.password, v.Salt, v.Iterations).String(); got != tc.secret {
			t.Fatalf("NewVerifier(%q):\n got %s\nwant %s", tc.password, got, tc.secret)
		}
		if se, ce := exchange(tc.password, v); se != nil || ce != nil {
			t.Fatalf("exchange against Postgres secret: server %v, client %v", se, ce)
		}
		if se, _ := exchange(tc.password+"x", v); !errors.Is(se, ErrBadPassword) {
			t.Fatalf("wrong password against Postgres secret: %v", se)
		}
	}
}

func TestParseVerifierRejects(t *testing.T) {
	good := postgresVerifiers[0].secret
	bad := []string{
		"",
		"password",
		MD5Password("u", "p"),
		"SCRAM-SHA-256$1234", // Postgres's own "looks like but is not" case
		strings.Replace(good, "SCRAM-SHA-256$", "SCRAM-SHA-1$", 1),
		strings.Replace(good, "$4096:", "$0:", 1),
		strings.Replace(good, "$4096:", "$-1:", 1),
		strings.Replace(good, "$4096:", "$+4096:", 1),
		strings.Replace(good, "$4096:", "$99999999999:", 1),
		strings.Replace(good, "A6xHKoH/494E941doaPOYg==", "", 1),
		strings.Replace(good, "A6xHKoH/494E941doaPOYg==", "A6xHKoH/494E941doaPOYg", 1),
		strings.Replace(good, "A6xHKoH/494E941doaPOYg==", "A6xHKoH/494E\n941doaPOYg==", 1),
		strings.Replace(good, "Rqw=:", "RqwAAAA=:", 1), // too long StoredKey, as in password.sql
		strings.Replace(good, "8ZI=", "8ZIAAAA=", 1),   // too long ServerKey
		good + "$",
		good + ":x",
	}
	for _, s := range bad {
		if _, err := ParseVerifier(s); err == nil {
			t.Errorf("ParseVerifier(%q) succeeded", s)
		}
		if IsVerifier(s) {
			t.Errorf("IsVerifier(%q) = true", s)
		}
	}
}

func TestServerRejectsClientFirst(t *testing.T) {
	cases := map[string]string{
		"empty":               "",
		"no header":           "n",
		"channel binding":     "p=tls-server-end-point,,n=,r=abc",
		"unknown flag":        "x,,n=,r=abc",
		"authzid":             "n,a=admin,n=,r=abc",
		"mandatory extension": "n,,m=ext,n=,r=abc",
		"no user":             "n,,r=abc",
		"no nonce":            "n,,n=",
		"empty nonce":         "n,,n=,r=",
		"nonce with space":    "n,,n=,r=a b",
		"nonce not 2nd":       "n,,n=,x=1,r=abc",
		"trailing comma":      "n,,n=,r=abc,",
		"bad extension":       "n,,n=,r=abc,=x",
		"NUL":                 "n,,n=,r=abc\x00",
	}
	for name, msg := range cases {
		s := NewScramServer(rfcVerifier(t))
		if _, err := s.ClientFirst([]byte(msg)); !errors.Is(err, ErrProtocol) {
			t.Errorf("%s: %q gave %v, want ErrProtocol", name, msg, err)
		}
		// A failed exchange stays failed.
		if _, err := s.ClientFinal([]byte(rfcClientFinal)); !errors.Is(err, ErrProtocol) {
			t.Errorf("%s: ClientFinal after a failed ClientFirst gave %v", name, err)
		}
	}
	// Accepted variants: the "y" flag, a user name, extensions.
	for _, msg := range []string{"y,,n=,r=abc", "n,,n=someone,r=abc", "n,,n=,r=abc,x=ext,z="} {
		if _, err := NewScramServer(rfcVerifier(t)).ClientFirst([]byte(msg)); err != nil {
			t.Errorf("%q: %v", msg, err)
		}
	}
}

func TestServerRejectsClientFinal(t *testing.T) {
	noProof, proof, _ := strings.Cut(rfcClientFinal, ",p=")
	flipped := mustB64(t, proof)
	flipped[0] ^= 1
	cases := map[string]struct {
		msg  string
		want error
	}{
		"empty":            {"", ErrProtocol},
		"wrong binding":    {strings.Replace(rfcClientFinal, "c=biws", "c=eSws", 1), ErrProtocol},
		"no binding":       {strings.TrimPrefix(rfcClientFinal, "c=biws,"), ErrProtocol},
		"wrong nonce":      {strings.Replace(rfcClientFinal, "k0,", "k1,", 1), ErrProtocol},
		"no proof":         {noProof, ErrProtocol},
		"proof not last":   {rfcClientFinal + ",x=1", ErrProtocol},
		"two proofs":       {rfcClientFinal + ",p=" + proof, ErrProtocol},
		"trailing comma":   {rfcClientFinal + ",", ErrProtocol},
		"short proof":      {noProof + ",p=AAAA", ErrProtocol},
		"bad base64":       {noProof + ",p=!!!!", ErrProtocol},
		"NUL":              {rfcClientFinal + "\x00", ErrProtocol},
		"flipped proof":    {noProof + ",p=" + base64.StdEncoding.EncodeToString(flipped), ErrBadPassword},
		"extension signed": {noProof + ",x=1,p=" + proof, ErrBadPassword}, // AuthMessage changed
	}
	for name, tc := range cases {
		s := NewScramServer(rfcVerifier(t))
		s.nonce = rfcServerNonce
		if _, err := s.ClientFirst([]byte(rfcClientFirst)); err != nil {
			t.Fatal(err)
		}
		if _, err := s.ClientFinal([]byte(tc.msg)); !errors.Is(err, tc.want) {
			t.Errorf("%s: %q gave %v, want %v", name, tc.msg, err, tc.want)
		}
		// One attempt only: even the right proof fails afterwards.
		if _, err := s.ClientFinal([]byte(rfcClientFinal)); !errors.Is(err, ErrProtocol) {
			t.Errorf("%s: retry gave %v, want ErrProtocol", name, err)
		}
	}

	// "y" must be echoed as base64("y,,").
	s := NewScramServer(rfcVerifier(t))
	s.nonce = rfcServerNonce
	if _, err := s.ClientFirst([]byte("y" + strings.TrimPrefix(rfcClientFirst, "n"))); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ClientFinal([]byte(rfcClientFinal)); !errors.Is(err, ErrProtocol) {
		t.Fatalf("c=biws after a \"y\" flag gave %v, want ErrProtocol", err)
	}

	// ClientFinal before ClientFirst.
	if _, err := NewScramServer(rfcVerifier(t)).ClientFinal([]byte(rfcClientFinal)); !errors.Is(err, ErrProtocol) {
		t.Fatalf("out-of-order ClientFinal gave %v", err)
	}
}

func TestYFlagExchange(t *testing.T) {
	// A client that could bind but was not offered PLUS: it sends "y" and
	// echoes "eSws"; the proof covers the same AuthMessage as before.
	v := rfcVerifier(t)
	s := NewScramServer(v)
	s.nonce = rfcServerNonce
	first := "y,," + strings.TrimPrefix(rfcClientFirst, "n,,")
	sf, err := s.ClientFirst([]byte(first))
	if err != nil {
		t.Fatal(err)
	}
	withoutProof := "c=eSws,r=" + rfcClientNonce + rfcServerNonce
	fin, err := s.ClientFinal([]byte(withoutProof + ",p=" + testProof(t, "pencil", v, "n=user,r="+rfcClientNonce, string(sf), withoutProof)))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(fin), "v=") {
		t.Fatalf("server-final %q", fin)
	}
}

// testProof computes a client proof independently of ScramClient.
func testProof(t testing.TB, password string, v Verifier, clientFirstBare, serverFirst, withoutProof string) string {
	salted, err := saltedPassword(password, v.Salt, v.Iterations)
	if err != nil {
		t.Fatal(err)
	}
	clientKey, storedKey, _ := deriveKeys(salted)
	p := hmacSum(storedKey, authMessage(clientFirstBare, serverFirst, withoutProof))
	for i := range p {
		p[i] ^= clientKey[i]
	}
	return base64.StdEncoding.EncodeToString(p)
}

func TestClientRejectsServerFirst(t *testing.T) {
	cases := map[string]string{
		"empty":               "",
		"mandatory extension": "m=x," + rfcServerFirst,
		"foreign nonce":       strings.Replace(rfcServerFirst, "r=rOpr", "r=XOpr", 1),
		"nonce not extended":  "r=" + rfcClientNonce + ",s=" + rfcSalt + ",i=4096",
		"no salt":             "r=" + rfcClientNonce + "x,i=4096",
		"empty salt":          "r=" + rfcClientNonce + "x,s=,i=4096",
		"bad salt":            "r=" + rfcClientNonce + "x,s=***,i=4096",
		"no iterations":       "r=" + rfcClientNonce + "x,s=" + rfcSalt,
		"zero iterations":     "r=" + rfcClientNonce + "x,s=" + rfcSalt + ",i=0",
		"negative":            "r=" + rfcClientNonce + "x,s=" + rfcSalt + ",i=-1",
		"too many iterations": "r=" + rfcClientNonce + "x,s=" + rfcSalt + ",i=10000001",
		"huge":                "r=" + rfcClientNonce + "x,s=" + rfcSalt + ",i=99999999999999999999",
		"not a number":        "r=" + rfcClientNonce + "x,s=" + rfcSalt + ",i=4k",
		"trailing comma":      rfcServerFirst + ",",
	}
	for name, msg := range cases {
		c := NewScramClient("pencil")
		c.nonce = rfcClientNonce
		c.ClientFirst()
		if _, err := c.ServerFirst([]byte(msg)); !errors.Is(err, ErrProtocol) {
			t.Errorf("%s: %q gave %v, want ErrProtocol", name, msg, err)
		}
	}
	// The bounds themselves are fine (checked on the parser, so the test
	// does not pay for ten million PBKDF2 rounds).
	for _, i := range []string{"1", "10000000"} {
		if _, _, n, err := parseServerFirst("r="+rfcClientNonce+"x,s="+rfcSalt+",i="+i+",x=ext", rfcClientNonce); err != nil {
			t.Errorf("i=%s: %v", i, err)
		} else if n < 1 {
			t.Errorf("i=%s parsed as %d", i, n)
		}
	}
	// ServerFirst before ClientFirst.
	if _, err := NewScramClient("x").ServerFirst([]byte(rfcServerFirst)); !errors.Is(err, ErrProtocol) {
		t.Fatalf("out-of-order ServerFirst gave %v", err)
	}
}

func TestClientServerFinal(t *testing.T) {
	ready := func() *ScramClient {
		c := NewScramClient("pencil")
		c.nonce, c.username = rfcClientNonce, "user"
		c.ClientFirst()
		if _, err := c.ServerFirst([]byte(rfcServerFirst)); err != nil {
			t.Fatal(err)
		}
		return c
	}
	err := ready().ServerFinal([]byte("e=invalid-proof"))
	var se *ServerError
	if !errors.As(err, &se) || se.Value != "invalid-proof" || !errors.Is(err, ErrBadPassword) {
		t.Fatalf("e=invalid-proof gave %v", err)
	}
	err = ready().ServerFinal([]byte("e=other-error"))
	if !errors.As(err, &se) || errors.Is(err, ErrBadPassword) {
		t.Fatalf("e=other-error gave %v", err)
	}
	wrong := "v=" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, keyLen))
	if err := ready().ServerFinal([]byte(wrong)); !errors.Is(err, ErrServerSignature) || errors.Is(err, ErrBadPassword) {
		t.Fatalf("wrong signature gave %v", err)
	}
	for _, msg := range []string{"", "v", "x=1", "v=***", rfcServerFinal + ","} {
		if err := ready().ServerFinal([]byte(msg)); !errors.Is(err, ErrProtocol) {
			t.Errorf("%q gave %v, want ErrProtocol", msg, err)
		}
	}
	if err := ready().ServerFinal([]byte(rfcServerFinal + ",x=ext")); err != nil {
		t.Errorf("extension after verifier: %v", err)
	}
	c := ready()
	if err := c.ServerFinal([]byte(rfcServerFinal)); err != nil {
		t.Fatal(err)
	}
	if err := c.ServerFinal([]byte(rfcServerFinal)); !errors.Is(err, ErrProtocol) {
		t.Fatalf("second ServerFinal gave %v", err)
	}
}

func TestSASLPrep(t *testing.T) {
	cases := []struct{ in, want, why string }{
		{"pencil", "pencil", "ASCII is untouched"},
		{"tab\tand\x7f", "tab\tand\x7f", "ASCII controls too, as in Postgres's fast path"},
		{"bad\xffutf8\u00a0", "bad\xffutf8\u00a0", "invalid UTF-8 falls back to the raw password"},
		{"pass\u00a0word", "pass word", "no-break space maps to space"},
		{"pass\u3000word", "pass word", "ideographic space maps to space"},
		{"pass\u200bword", "pass word", "U+200B is in both tables; space wins"},
		{"pass\u00adword", "password", "soft hyphen maps to nothing"},
		{"pässwörd\ufeff", "pässwörd", "BOM maps to nothing"},
		{"\u00ad\u200d", "\u00ad\u200d", "empty after mapping: raw"},
		{"p\u00a0\ue000", "p\u00a0\ue000", "private use is prohibited: raw"},
		{"p\u00a0\u0080", "p\u00a0\u0080", "C1 control is prohibited: raw"},
		{"p\u00a0\ufdd0", "p\u00a0\ufdd0", "non-character is prohibited: raw"},
		{"p\u00a0\U0001fffe", "p\u00a0\U0001fffe", "plane-end non-character is prohibited: raw"},
		{"日本語", "日本語", "ordinary non-ASCII is kept"},
	}
	for _, tc := range cases {
		if got := saslPrep(tc.in); got != tc.want {
			t.Errorf("%s: saslPrep(%q) = %q, want %q", tc.why, tc.in, got, tc.want)
		}
	}
	// The mapping is applied on both sides, so an nbsp password logs in
	// with either spelling, as it would against Postgres.
	v := NewVerifier("pass\u00a0word", []byte("salt"), 16)
	if se, ce := exchange("pass word", v); se != nil || ce != nil {
		t.Fatalf("server %v, client %v", se, ce)
	}
}

func TestMD5(t *testing.T) {
	// Expected values computed with Python's hashlib, not this package.
	if got, want := MD5Password("app", "secret"), "md56a422f785c9e20873908ce25d1736ae2"; got != want {
		t.Fatalf("MD5Password = %s, want %s", got, want)
	}
	sum := md5.Sum([]byte("secretapp"))
	if got := MD5Password("app", "secret"); got != "md5"+hex.EncodeToString(sum[:]) {
		t.Fatalf("MD5Password = %s", got)
	}
	// From Postgres's regression suite: the empty password of regress_passwd_empty.
	if got := MD5Password("regress_passwd_empty", ""); got != "md585939a5ce845f1a1b620742e3c659e0a" {
		t.Fatalf("MD5Password(regress_passwd_empty) = %s", got)
	}

	salt := [4]byte{1, 2, 3, 4}
	const want = "md5911f527656472583a006e7727877b33e"
	if got := MD5Response("app", "secret", salt); got != want {
		t.Fatalf("MD5Response(plain) = %s, want %s", got, want)
	}
	stored := MD5Password("app", "secret")
	if got := MD5Response("app", stored, salt); got != want {
		t.Fatalf("MD5Response(hash) = %s, want %s", got, want)
	}
	// Uppercase hex is not a Postgres md5 secret; it is hashed as plaintext.
	if got := MD5Response("app", strings.ToUpper(stored), salt); got == want {
		t.Fatal("uppercase hash treated as a stored secret")
	}

	if !MD5Check("app", stored, salt, want) || !MD5Check("app", "secret", salt, want) {
		t.Fatal("MD5Check rejected the right response")
	}
	for _, bad := range []string{"", want[:34], want + "0", strings.ToUpper(want), MD5Response("app", "secreT", salt), MD5Response("app", "secret", [4]byte{1, 2, 3, 5})} {
		if MD5Check("app", stored, salt, bad) {
			t.Errorf("MD5Check accepted %q", bad)
		}
	}
	if MD5Check("app", "", salt, MD5Response("app", "", salt)) {
		t.Fatal("MD5Check accepted an empty configured password")
	}

	if a, b, c := NewSalt(), NewSalt(), NewSalt(); a == b && b == c {
		t.Fatal("NewSalt keeps returning the same salt")
	}
}

// FuzzScramServer feeds arbitrary client messages to a server whose nonce is
// fixed, so the fuzzer can reach the proof check by echoing the nonce. The
// server must never panic and must fail only with one of its two errors.
func FuzzScramServer(f *testing.F) {
	f.Add([]byte(rfcClientFirst), []byte(rfcClientFinal))
	f.Add([]byte("y,,n=,r=abc"), []byte("c=eSws,r=abc"+rfcServerNonce+",p=AAAA"))
	f.Add([]byte("p=tls-server-end-point,,n=,r=abc"), []byte(""))
	v := rfcVerifier(f)
	f.Fuzz(func(t *testing.T, first, final []byte) {
		s := NewScramServer(v)
		s.nonce = rfcServerNonce
		if _, err := s.ClientFirst(first); err != nil {
			if !errors.Is(err, ErrProtocol) {
				t.Fatalf("ClientFirst(%q): unexpected error kind %v", first, err)
			}
			return
		}
		out, err := s.ClientFinal(final)
		if err != nil {
			if !errors.Is(err, ErrProtocol) && !errors.Is(err, ErrBadPassword) {
				t.Fatalf("ClientFinal(%q): unexpected error kind %v", final, err)
			}
			return
		}
		if !bytes.HasPrefix(out, []byte("v=")) {
			t.Fatalf("server-final %q", out)
		}
	})
}

// BenchmarkScramServerExchange measures what pgshard pays per client login
// with a cached Verifier. The server nonce is fixed so the client's answer
// can be computed once outside the loop; a real exchange adds one 18-byte
// crypto/rand read.
func BenchmarkScramServerExchange(b *testing.B) {
	v := rfcVerifier(b)
	first, final := []byte(rfcClientFirst), []byte(rfcClientFinal)
	b.ReportAllocs()
	for b.Loop() {
		s := NewScramServer(v)
		s.nonce = rfcServerNonce
		if _, err := s.ClientFirst(first); err != nil {
			b.Fatal(err)
		}
		if _, err := s.ClientFinal(final); err != nil {
			b.Fatal(err)
		}
	}
}

// A role that does not exist runs the whole exchange against MockVerifier and fails only at the end, as a
// wrong password does; the salt it shows is the same each time for a name and differs between names.
func TestMockVerifier(t *testing.T) {
	secret := []byte("per-process secret")
	v := MockVerifier(secret, "nobody")
	for _, pw := range []string{"", "secret", "nobody"} {
		if se, ce := exchange(pw, v); !errors.Is(se, ErrBadPassword) || ce != nil {
			t.Fatalf("password %q against a mock verifier: server %v, client %v; want ErrBadPassword", pw, se, ce)
		}
	}
	if !bytes.Equal(MockVerifier(secret, "nobody").Salt, v.Salt) {
		t.Fatal("the salt of a name changed between two logins")
	}
	if bytes.Equal(MockVerifier(secret, "somebody").Salt, v.Salt) || bytes.Equal(MockVerifier([]byte("other"), "nobody").Salt, v.Salt) {
		t.Fatal("two names, or two secrets, gave the same salt")
	}
	if v.Iterations != DefaultIterations || len(v.Salt) != DefaultSaltLen {
		t.Fatalf("a mock verifier looks unlike a real one: %d iterations, %d-byte salt", v.Iterations, len(v.Salt))
	}
}
