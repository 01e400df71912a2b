package auth

import (
	"crypto"
	_ "crypto/sha256" // the hashes tls-server-end-point may name
	_ "crypto/sha512"
	"crypto/x509"
)

// TLSServerEndPoint is the tls-server-end-point channel binding data of a server certificate (RFC 5929): its hash,
// with the hash of its signature algorithm, SHA-256 when that is MD5 or SHA-1. Postgres and libpq bind SCRAM to
// it.
func TLSServerEndPoint(cert *x509.Certificate) []byte {
	h := crypto.SHA256
	switch cert.SignatureAlgorithm {
	case x509.SHA384WithRSA, x509.ECDSAWithSHA384, x509.SHA384WithRSAPSS:
		h = crypto.SHA384
	case x509.SHA512WithRSA, x509.ECDSAWithSHA512, x509.SHA512WithRSAPSS:
		h = crypto.SHA512
	}
	d := h.New()
	d.Write(cert.Raw)
	return d.Sum(nil)
}
