package auth

import (
	"encoding/base64"
	"strings"
	"testing"
)

// TestScramPlus: with channel binding offered, SCRAM-SHA-256-PLUS succeeds when the client binds to the same
// certificate data, and fails when it binds to other data (a man in the middle, who serves another certificate);
// "y" (the client thinks the server cannot bind) is refused as a downgrade; plain SCRAM-SHA-256 still works.
func TestScramPlus(t *testing.T) {
	v := rfcVerifier(t)
	ours := []byte("hash of the certificate pgshard served")
	run := func(mech, flag string, bound []byte) error {
		s := NewScramServer(v)
		s.OfferChannelBinding(ours)
		if got := strings.Join(s.Mechanisms(), " "); got != "SCRAM-SHA-256-PLUS SCRAM-SHA-256" {
			t.Fatalf("mechanisms %q", got)
		}
		if err := s.Choose(mech); err != nil {
			return err
		}
		s.nonce = rfcServerNonce
		bare := "n=,r=" + rfcClientNonce
		sf, err := s.ClientFirst([]byte(flag + "," + "," + bare))
		if err != nil {
			return err
		}
		cb := base64.StdEncoding.EncodeToString(append([]byte(flag+",,"), bound...))
		withoutProof := "c=" + cb + ",r=" + rfcClientNonce + rfcServerNonce
		_, err = s.ClientFinal([]byte(withoutProof + ",p=" + testProof(t, "pencil", v, bare, string(sf), withoutProof)))
		return err
	}
	if err := run(MechSCRAMPlus, "p=tls-server-end-point", ours); err != nil {
		t.Errorf("PLUS bound to our certificate: %v", err)
	}
	if err := run(MechSCRAMPlus, "p=tls-server-end-point", []byte("another certificate's hash")); err == nil {
		t.Error("PLUS bound to another certificate succeeded")
	}
	if err := run(MechSCRAMPlus, "n", nil); err == nil {
		t.Error("PLUS without binding succeeded")
	}
	if err := run(MechSCRAM, "y", nil); err == nil {
		t.Error(`"y" with binding offered (a downgrade) succeeded`)
	}
	if err := run(MechSCRAM, "n", nil); err != nil {
		t.Errorf("plain SCRAM-SHA-256 next to PLUS: %v", err)
	}

	s := NewScramServer(v) // without TLS: PLUS is not offered
	if err := s.Choose(MechSCRAMPlus); err == nil {
		t.Error("PLUS chosen when not offered")
	}
}

// TestKeysLogIn: the keys a client's proof shows log in, as that client, to a server keeping the same verifier.
func TestKeysLogIn(t *testing.T) {
	v := NewVerifier("pencil", []byte("0123456789abcdef"), 4096)
	front := NewScramServer(v)
	c := NewScramClient("pencil")
	sf, err := front.ClientFirst(c.ClientFirst())
	if err != nil {
		t.Fatal(err)
	}
	cf, err := c.ServerFirst(sf)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := front.ClientFinal(cf); err != nil {
		t.Fatal(err)
	}
	keys, ok := front.Keys()
	if !ok {
		t.Fatal("no keys after a correct proof")
	}
	// pgshard now logs in to the server (another ScramServer with the same verifier) without the password.
	back := NewScramServer(v)
	pc := NewScramClientKeys(keys)
	sf, err = back.ClientFirst(pc.ClientFirst())
	if err != nil {
		t.Fatal(err)
	}
	cf, err = pc.ServerFirst(sf)
	if err != nil {
		t.Fatal(err)
	}
	final, err := back.ClientFinal(cf)
	if err != nil {
		t.Fatalf("log in with the keys: %v", err)
	}
	if err := pc.ServerFinal(final); err != nil {
		t.Fatalf("the server's signature: %v", err)
	}
	// A wrong proof shows no keys.
	bad := NewScramServer(v)
	wc := NewScramClient("wrong")
	sf, _ = bad.ClientFirst(wc.ClientFirst())
	cf, _ = wc.ServerFirst(sf)
	if _, err := bad.ClientFinal(cf); err == nil {
		t.Fatal("a wrong password passed")
	}
	if _, ok := bad.Keys(); ok {
		t.Fatal("keys after a wrong proof")
	}
}

// TestScramClientPlus: our client's SCRAM-SHA-256-PLUS against our server, bound to the same and to other data.
func TestScramClientPlus(t *testing.T) {
	v := NewVerifier("pencil", []byte("0123456789abcdef"), 4096)
	login := func(clientSees []byte) error {
		s := NewScramServer(v)
		s.OfferChannelBinding([]byte("the server's certificate hash"))
		if err := s.Choose(MechSCRAMPlus); err != nil {
			return err
		}
		c := NewScramClient("pencil")
		c.BindTo(clientSees)
		sf, err := s.ClientFirst(c.ClientFirst())
		if err != nil {
			return err
		}
		cf, err := c.ServerFirst(sf)
		if err != nil {
			return err
		}
		final, err := s.ClientFinal(cf)
		if err != nil {
			return err
		}
		return c.ServerFinal(final)
	}
	if err := login([]byte("the server's certificate hash")); err != nil {
		t.Fatalf("bound to the same certificate: %v", err)
	}
	if err := login([]byte("a man in the middle's certificate hash")); err == nil {
		t.Fatal("bound to another certificate: logged in")
	}
}
