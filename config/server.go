package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// Server is a Postgres server given as a URL:
//
//	postgres://[user[:password]@]host[:port]/dbname
//	postgres://[user[:password]@]/dbname?host=/unix/socket/dir[&port=N]
//
// "postgresql://" works too. The port defaults to 5432. An empty User (or Password) means the client
// user's server_user (server_password) is used. ?sslmode= and ?sslrootcert= say whether and how to encrypt
// the connection, as libpq reads them.
type Server struct {
	Raw      string // the URL as written but with its password masked: safe for logs and messages
	Host     string // a host name or IP address, or an absolute unix socket directory
	Port     int
	Database string
	User     string
	Password string
	// SSLMode is libpq's: disable, allow and prefer connect in plaintext when the server has no TLS (allow never
	// asks for it), require encrypts without checking the certificate, verify-ca checks that a trusted CA signed
	// it, verify-full also that it names Host. Default prefer. A unix socket is never encrypted.
	SSLMode string
	// SSLRootCert is the PEM file of the CAs to trust (verify-ca, verify-full, and require, which then checks the
	// CA as libpq does); empty: the system's.
	SSLRootCert string
	// Weight (a replica's, from the mapping form {url: ..., weight: N}) is its share of its shard's reads
	// against the other replicas'; 1 by default.
	Weight int
}

// SSL modes of a server URL, as libpq names them.
var sslModes = []string{"disable", "allow", "prefer", "require", "verify-ca", "verify-full"}

// Addr is what to dial: ("tcp", "host:port"), or ("unix", "<dir>/.s.PGSQL.<port>") as libpq names the
// socket when Host is a directory.
func (s Server) Addr() (network, address string) {
	port := strconv.Itoa(s.Port)
	if strings.HasPrefix(s.Host, "/") {
		return "unix", filepath.Join(s.Host, ".s.PGSQL."+port)
	}
	return "tcp", net.JoinHostPort(s.Host, port)
}

// String is Raw: it never shows the password.
func (s Server) String() string { return s.Raw }

// ParseServer parses a postgres:// URL. Its errors never quote the URL or any part of it that could be a
// password (a forgotten "@" turns "user:password" into "host:port").
func ParseServer(raw string) (Server, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return Server{}, urlError(err)
	}
	if u.Scheme != "postgres" && u.Scheme != "postgresql" {
		if u.Scheme == "" {
			return Server{}, errors.New("not a URL: want postgres://host[:port]/dbname")
		}
		return Server{}, fmt.Errorf("scheme %q is not postgres:// or postgresql://", u.Scheme)
	}
	if u.Opaque != "" {
		return Server{}, errors.New("not a URL: want postgres://host[:port]/dbname")
	}
	if u.Fragment != "" {
		return Server{}, errors.New("URL has a #fragment")
	}
	s := Server{Host: u.Hostname(), Port: 5432, Database: strings.TrimPrefix(u.Path, "/"), SSLMode: "prefer"}
	portText := u.Port()
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return Server{}, errors.New("URL has an invalid query string")
	}
	keys := make([]string, 0, len(q))
	for key := range q {
		keys = append(keys, key)
	}
	sort.Strings(keys) // report the same problem on every run
	for _, key := range keys {
		vals := q[key]
		if len(vals) != 1 {
			return Server{}, fmt.Errorf("URL parameter %q is given %d times", key, len(vals))
		}
		switch key {
		case "host":
			if s.Host != "" {
				return Server{}, errors.New("host is given both before the path and as ?host=")
			}
			s.Host = vals[0]
		case "port":
			if portText != "" {
				return Server{}, errors.New("port is given both after the host and as ?port=")
			}
			portText = vals[0]
		case "sslmode":
			if !slices.Contains(sslModes, vals[0]) {
				return Server{}, fmt.Errorf("sslmode must be one of %s", strings.Join(sslModes, ", "))
			}
			s.SSLMode = vals[0]
		case "sslrootcert":
			s.SSLRootCert = vals[0]
		default:
			return Server{}, fmt.Errorf("URL parameter %q is not supported (host, port, sslmode and sslrootcert are)", key)
		}
	}
	if s.Host == "" {
		return Server{}, errors.New("URL has no host (give host[:port], or ?host=/socket/dir for a unix socket)")
	}
	if strings.Contains(s.Host, ",") {
		return Server{}, errors.New("several hosts in one URL are not supported")
	}
	if portText != "" {
		p, err := strconv.Atoi(portText)
		if err != nil || p < 1 || p > 65535 {
			return Server{}, errors.New("port must be a number from 1 to 65535")
		}
		s.Port = p
	}
	if s.Database == "" {
		return Server{}, errors.New("URL has no database name (postgres://host[:port]/dbname)")
	}
	if u.User != nil {
		s.User = u.User.Username()
		s.Password, _ = u.User.Password()
	}
	s.Raw = u.Redacted()
	return s, nil
}

// urlError describes a net/url parse error without its text, which quotes the URL.
func urlError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	var esc url.EscapeError
	var host url.InvalidHostError
	switch msg := err.Error(); {
	case errors.As(err, &esc):
		return errors.New("URL has an invalid %-escape")
	case errors.As(err, &host):
		return errors.New("URL has an invalid character in the host")
	case strings.HasPrefix(msg, "invalid port"):
		return errors.New("port must be a number from 1 to 65535")
	case strings.Contains(msg, "userinfo"):
		return errors.New("URL has an invalid user or password (%-escape special characters)")
	case strings.Contains(msg, "missing protocol scheme"), strings.Contains(msg, "first path segment"):
		return errors.New("not a URL: want postgres://host[:port]/dbname")
	}
	return errors.New("not a valid URL")
}
