package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgshard/pgshard/internal/pgtest"
)

// testCA is a certificate authority made for one test, and the server certificate it signed for 127.0.0.1.
type testCA struct {
	caFile, certFile, keyFile string
	dir, name                 string
	caCert                    *x509.Certificate
	caKey                     *ecdsa.PrivateKey
}

// newTestCA writes a new CA and a server certificate (for 127.0.0.1 and localhost) signed by it into dir, under
// names that start with name.
func newTestCA(t *testing.T, dir, name string) testCA {
	t.Helper()
	key := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	write := func(file, typ string, der []byte) string {
		path := filepath.Join(dir, name+file)
		if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	caKey, srvKey := key(), key()
	now := time.Now()
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name + " test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	srv := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames: []string{"localhost"}}
	srvDER, err := x509.CreateCertificate(rand.Reader, srv, ca, &srvKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(srvKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	return testCA{caFile: write("ca.pem", "CERTIFICATE", caDER), certFile: write("cert.pem", "CERTIFICATE", srvDER),
		keyFile: write("key.pem", "PRIVATE KEY", keyDER), dir: dir, name: name, caCert: caCert, caKey: caKey}
}

// client writes a client certificate for common name cn signed by the CA, and its key; it returns their files.
func (ca testCA) client(t *testing.T, cn string) (certFile, keyFile string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.caCert, &k.PublicKey, ca.caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(ca.dir, ca.name+"client-"+cn+".pem"), filepath.Join(ca.dir, ca.name+"client-"+cn+".key")
	for f, b := range map[string][]byte{certFile: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		keyFile: pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})} {
		if err := os.WriteFile(f, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return certFile, keyFile
}

const tlsConfig = `listen: "127.0.0.1:%PORT%"
tls: {mode: %TLSMODE%, cert: %CERT%, key: %KEY%}
admin: {user: admin, password: adminpw}
users: [{name: app, password: secret}]
databases:
  - name: app
    shards:
      - primary: "postgres://127.0.0.1:%PGPORT%/app_0"
      - primary: "postgres://127.0.0.1:%PGPORT%/app_1"
    sharded_tables: [{table: t, column: k, type: integer}]
`

// TestTLS: clients that ask for TLS get it (psql, pgx with sslmode=require and verify-full against the CA), with
// SCRAM bound to the session when they ask (channel_binding=require), a large result and a COPY go through it, tls.mode require refuses plaintext with 28000, and RELOAD serves a new
// certificate to new clients while a client of the old one goes on.
func TestTLS(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("starts Postgres")
	}
	pg := pgtest.Start(t, pgtest.Options{Databases: []string{"app_0", "app_1"}, DatabaseOwner: "app",
		Users: []pgtest.UserSpec{{Name: "app", Password: "secret"}}})
	for _, db := range []string{"app_0", "app_1"} {
		pg.Exec(t, db, "CREATE TABLE t (k int, v text); ALTER TABLE t OWNER TO app")
	}
	dir := t.TempDir()
	ca := newTestCA(t, dir, "first-")
	config := func(mode string) string {
		return strings.NewReplacer("%TLSMODE%", mode, "%CERT%", ca.certFile, "%KEY%", ca.keyFile,
			"%PGPORT%", strconv.Itoa(pg.Port)).Replace(tlsConfig)
	}
	p := StartProxy(t, config("allow"))
	ctx := Ctx(t, 2*time.Minute)
	dsn := func(sslmode, rootCert string) string {
		s := strings.Replace(p.DSN("app", "app", "secret"), "sslmode=disable", "sslmode="+sslmode, 1)
		if rootCert != "" {
			s += "&sslrootcert=" + rootCert
		}
		return s
	}

	// verify-full checks the chain and that the certificate names 127.0.0.1.
	c, err := pgx.Connect(ctx, dsn("verify-full", ca.caFile))
	if err != nil {
		t.Fatalf("sslmode=verify-full: %v", err)
	}
	defer c.Close(context.Background())
	if _, ok := c.PgConn().Conn().(*tls.Conn); !ok {
		t.Fatalf("sslmode=verify-full: the connection is a %T, not TLS", c.PgConn().Conn())
	}
	var big int
	if err := c.QueryRow(ctx, "SELECT length(repeat('x', 3000000))").Scan(&big); err != nil || big != 3000000 {
		t.Fatalf("a 3 MB value over TLS: %d, %v", big, err)
	}
	var rows strings.Builder
	for k := 0; k < 5000; k++ {
		rows.WriteString(strconv.Itoa(k) + "\trow " + strconv.Itoa(k) + "\n")
	}
	if tag, err := c.PgConn().CopyFrom(ctx, strings.NewReader(rows.String()), "COPY t (k, v) FROM STDIN"); err != nil || tag.RowsAffected() != 5000 {
		t.Fatalf("sharded COPY over TLS: %v, %v", tag, err)
	}
	var n int
	var longest int
	if err := c.QueryRow(ctx, "SELECT count(*), max(length(v)) FROM t").Scan(&n, &longest); err != nil || n != 5000 {
		t.Fatalf("count over TLS: %d, %v", n, err)
	}

	// SCRAM bound to the TLS session (SCRAM-SHA-256-PLUS), which pgx and libpq insist on with channel_binding=require.
	bound, err := pgx.Connect(ctx, dsn("verify-full", ca.caFile)+"&channel_binding=require")
	if err != nil {
		t.Fatalf("channel_binding=require: %v", err)
	}
	bound.Close(ctx)
	if out, err := runTool(ctx, "secret", pgTool(t, "psql"), "-X", "-A", "-t", "-c", "SELECT 1", dsn("require", "")+"&channel_binding=require"); err != nil || strings.TrimSpace(out) != "1" {
		t.Fatalf("psql channel_binding=require: %v\n%s", err, out)
	}
	if _, err := pgx.Connect(ctx, dsn("disable", "")+"&channel_binding=require"); err == nil {
		t.Fatal("channel_binding=require in plaintext connected")
	}

	// Another CA's certificate is refused by a client that verifies.
	other := newTestCA(t, dir, "other-")
	if c2, err := pgx.Connect(ctx, dsn("verify-ca", other.caFile)); err == nil {
		c2.Close(ctx)
		t.Fatal("verify-ca against another CA connected")
	}

	// psql with sslmode=require, and plaintext next to it (mode allow).
	psql := pgTool(t, "psql")
	out, err := runTool(ctx, "secret", psql, "-X", "-A", "-t", "-c", `\conninfo`, "-c", "SELECT count(*) FROM t", dsn("require", ""))
	if err != nil || !strings.Contains(out, "SSL connection") || !strings.Contains(out, "5000") {
		t.Fatalf("psql sslmode=require: %v\n%s", err, out)
	}
	plain, err := pgx.Connect(ctx, dsn("disable", ""))
	if err != nil {
		t.Fatalf("plaintext with tls.mode allow: %v", err)
	}
	plain.Close(ctx)

	// RELOAD: a new certificate for new clients; the connected client goes on with its session.
	second := newTestCA(t, dir, "second-")
	for _, f := range [][2]string{{second.certFile, ca.certFile}, {second.keyFile, ca.keyFile}} {
		if err := os.Rename(f[0], f[1]); err != nil {
			t.Fatal(err)
		}
	}
	p.WriteConfig(t, config("require"))
	adm := openConsole(t, ctx, p, false)
	if rows := adm.must(t, ctx, "SHOW CLIENTS"); !slices.ContainsFunc(rows, func(r string) bool { return strings.Contains(r, "|TLSv1.3/") }) {
		t.Errorf("SHOW CLIENTS shows no TLS client: %q", rows)
	}
	adm.must(t, ctx, "RELOAD")
	if err := c.QueryRow(ctx, "SELECT count(*) FROM t").Scan(&n); err != nil || n != 5000 {
		t.Fatalf("the TLS client after RELOAD: %d, %v", n, err)
	}
	if c2, err := pgx.Connect(ctx, dsn("verify-full", ca.caFile)); err == nil {
		c2.Close(ctx)
		t.Fatal("after RELOAD a new client still got the first certificate")
	}
	c3, err := pgx.Connect(ctx, dsn("verify-full", second.caFile))
	if err != nil {
		t.Fatalf("after RELOAD, verify-full against the new CA: %v", err)
	}
	c3.Close(ctx)

	// tls.mode require (applied by that RELOAD): plaintext is refused with 28000 and a hint.
	_, err = pgx.Connect(ctx, dsn("disable", ""))
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "28000" || !strings.Contains(pe.Hint, "sslmode=require") {
		t.Fatalf("plaintext with tls.mode require: %v, want 28000 with a hint", err)
	}

	// A cancel request (which clients send in plaintext, on a new connection) still reaches a TLS client's query.
	cfg, err := pgx.ParseConfig(dsn("verify-full", second.caFile))
	if err != nil {
		t.Fatal(err)
	}
	cfg.BuildContextWatcherHandler = cancelRequestHandler
	cc, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close(context.Background())
	sctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = cc.Exec(sctx, "SELECT pg_sleep(10)")
	if !errors.As(err, &pe) || pe.Code != "57014" || time.Since(start) > 5*time.Second {
		t.Fatalf("cancel of a TLS client's query under tls.mode require: %v after %v, want 57014 at once", err, time.Since(start))
	}
}

// TestTLSToShards: shard URLs' sslmode as libpq reads it. A Postgres with ssl on is reached encrypted with
// verify-full (its CA in sslrootcert), require and prefer, in plaintext with disable; verify-ca against another
// CA is refused with the reason; a sharded database runs a cross-shard query and a transaction over TLS.
func TestTLSToShards(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("starts Postgres")
	}
	dir, err := os.MkdirTemp("", "pgshard-tls-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil { // Postgres runs as its own user
		t.Fatal(err)
	}
	ca, other := newTestCA(t, dir, "shard-"), newTestCA(t, dir, "other-")
	serverReadable(t, ca)
	pg := pgtest.Start(t, pgtest.Options{Databases: []string{"app_0", "app_1"}, DatabaseOwner: "app",
		Users:    []pgtest.UserSpec{{Name: "app", Password: "secret"}},
		Settings: map[string]string{"ssl": "on", "ssl_cert_file": ca.certFile, "ssl_key_file": ca.keyFile}})
	for _, db := range []string{"app_0", "app_1"} {
		pg.Exec(t, db, "CREATE TABLE t (k int, v text); ALTER TABLE t OWNER TO app")
	}
	shard := func(db, query string) string {
		return `{primary: "postgres://127.0.0.1:` + strconv.Itoa(pg.Port) + "/" + db + query + `"}`
	}
	p := StartProxy(t, `listen: "127.0.0.1:%PORT%"
users: [{name: app, password: secret}]
databases:
  - {name: full, shards: [`+shard("app_0", "?sslmode=verify-full&sslrootcert="+ca.caFile)+`]}
  - {name: req, shards: [`+shard("app_0", "?sslmode=require")+`]}
  - {name: pref, shards: [`+shard("app_0", "")+`]}
  - {name: plain, shards: [`+shard("app_0", "?sslmode=disable")+`]}
  - {name: wrongca, shards: [`+shard("app_0", "?sslmode=verify-ca&sslrootcert="+other.caFile)+`]}
  - name: sharded
    shards: [`+shard("app_0", "?sslmode=verify-full&sslrootcert="+ca.caFile)+`, `+shard("app_1", "?sslmode=verify-full&sslrootcert="+ca.caFile)+`]
    sharded_tables: [{table: t, column: k, type: integer}]
`)
	ctx := Ctx(t, time.Minute)
	encrypted := func(db string) (bool, error) {
		c, err := pgx.Connect(ctx, p.DSN(db, "app", "secret"))
		if err != nil {
			return false, err
		}
		defer c.Close(ctx)
		var ssl bool
		err = c.QueryRow(ctx, "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").Scan(&ssl)
		return ssl, err
	}
	for db, want := range map[string]bool{"full": true, "req": true, "pref": true, "plain": false} {
		if got, err := encrypted(db); err != nil || got != want {
			t.Errorf("database %s: server connection encrypted %v (%v), want %v", db, got, err, want)
		}
	}
	if _, err := encrypted("wrongca"); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("verify-ca against another CA: %v, want a certificate error", err)
	}

	c, err := pgx.Connect(ctx, p.DSN("sharded", "app", "secret"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	tx, err := c.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for k := 0; k < 200; k++ {
		if _, err := tx.Exec(ctx, "INSERT INTO t (k, v) VALUES ($1, repeat('x', 1000))", k); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	var n, total int
	if err := c.QueryRow(ctx, "SELECT count(*), sum(length(v)) FROM t").Scan(&n, &total); err != nil || n != 200 || total != 200000 {
		t.Fatalf("cross-shard read over TLS: %d rows, %d bytes, %v", n, total, err)
	}
	if n0 := pg.QueryString(t, "app_0", "SELECT count(*) FROM t"); n0 == "0" || n0 == "200" {
		t.Errorf("shard 0 holds %s of the 200 rows: not spread", n0)
	}
}

// serverReadable lets Postgres (its own user, when the tests run as root) read ca's certificate and key: the key
// owned by root and readable by Postgres's group only, which Postgres accepts.
func serverReadable(t *testing.T, ca testCA) {
	t.Helper()
	if os.Getuid() != 0 {
		return
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		t.Fatal(err)
	}
	gid, _ := strconv.Atoi(u.Gid)
	if err := os.Chmod(ca.certFile, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(ca.keyFile, 0, gid); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(ca.keyFile, 0o640); err != nil {
		t.Fatal(err)
	}
}

// TestClientCertificates: tls.client_ca and a user with auth_method cert log in with a certificate whose common
// name is the user's name, and no password; a certificate for another name, or none, is refused with 28000.
// tls.mode verify-full wants such a certificate from every client, password users too.
func TestClientCertificates(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("starts Postgres")
	}
	pg := pgtest.Start(t, pgtest.Options{Databases: []string{"app_0"}, DatabaseOwner: "app",
		Users: []pgtest.UserSpec{{Name: "app", Password: "secret"}}})
	dir := t.TempDir()
	ca := newTestCA(t, dir, "ca-")
	appCert, appKey := ca.client(t, "app")
	otherCert, otherKey := ca.client(t, "someone")
	config := func(mode string) string {
		return `listen: "127.0.0.1:%PORT%"
tls: {mode: ` + mode + `, cert: ` + ca.certFile + `, key: ` + ca.keyFile + `, client_ca: ` + ca.caFile + `}
users:
  - {name: app, auth_method: cert, server_password: secret}
  - {name: pw, password: pw, server_user: app, server_password: secret}
databases: [{name: app, shards: [{primary: "postgres://127.0.0.1:` + strconv.Itoa(pg.Port) + `/app_0"}]}]
`
	}
	p := StartProxy(t, config("allow"))
	ctx := Ctx(t, time.Minute)
	login := func(user, cert, key string) error {
		dsn := strings.Replace(p.DSN("app", user, "pw"), "sslmode=disable", "sslmode=require", 1)
		if cert != "" {
			dsn += "&sslcert=" + cert + "&sslkey=" + key
		}
		c, err := pgx.Connect(ctx, dsn)
		if err != nil {
			return err
		}
		defer c.Close(ctx)
		var one int
		return c.QueryRow(ctx, "SELECT 1").Scan(&one)
	}
	refused := func(what string, err error) {
		t.Helper()
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || pe.Code != "28000" {
			t.Errorf("%s: %v, want 28000", what, err)
		}
	}
	if err := login("app", appCert, appKey); err != nil {
		t.Errorf("auth_method cert with the user's certificate: %v", err)
	}
	refused("auth_method cert with another name's certificate", login("app", otherCert, otherKey))
	refused("auth_method cert without a certificate", login("app", "", ""))
	if err := login("pw", "", ""); err != nil {
		t.Errorf("a password user without a certificate (mode allow): %v", err)
	}

	p.WriteConfig(t, config("verify-full"))
	p.Signal(syscall.SIGHUP)
	if !waitFor(10*time.Second, func() bool { return login("pw", "", "") != nil }) {
		t.Fatal("tls.mode verify-full after SIGHUP still lets a client in without a certificate")
	}
	refused("verify-full, a password user with another name's certificate", login("pw", otherCert, otherKey))
	pwCert, pwKey := ca.client(t, "pw")
	if err := login("pw", pwCert, pwKey); err != nil {
		t.Errorf("verify-full, a password user with its own certificate: %v", err)
	}
}
