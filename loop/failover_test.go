package loop

import (
	"errors"
	"testing"

	"github.com/pgshard/pgshard/codec"
)

const failoverConfig = `
users: [{name: app, password: secret}]
databases:
  - name: app
    role: auto
    shards:
      - primary: postgres://h0:5432/app
        replicas: [postgres://h1:5432/app, {url: "postgres://h2:5432/app", weight: 3}]
`

func str(s string) *string { return &s }

// primaryProbe and replicaProbe are what hostCheckSQL returns of a primary on timeline tl and of a replica.
func primaryProbe(tl string) probe {
	return probeOf([]*string{str("false"), str("0/3000000"), nil, str(tl)}, nil)
}

func replicaProbe() probe {
	return probeOf([]*string{str("true"), str("0/3000000"), str("0.5"), nil}, nil)
}

var downProbe = probe{err: errors.New("dial tcp: connection refused")}

func primaryHost(e *Engine) string { return hostOf(e.cat.Load().dbs["app"].db.Shards[0].Primary) }

func TestFollowPrimary(t *testing.T) {
	for _, tc := range []struct {
		name        string
		probes      []probe
		wantPrimary string
		wantLost    bool
	}{
		{"the primary answers", []probe{primaryProbe("00000001"), replicaProbe(), replicaProbe()}, "h0:5432/app", false},
		{"the primary is down, none promoted yet", []probe{downProbe, replicaProbe(), replicaProbe()}, "h0:5432/app", true},
		{"the primary went into recovery", []probe{replicaProbe(), replicaProbe(), replicaProbe()}, "h0:5432/app", true},
		{"a replica was promoted, the primary is down", []probe{downProbe, replicaProbe(), primaryProbe("00000002")}, "h2:5432/app", false},
		{"a replica was promoted, the primary runs on", []probe{primaryProbe("00000001"), primaryProbe("00000002"), replicaProbe()}, "h1:5432/app", false},
		{"another host answers as a primary on the same timeline", []probe{primaryProbe("00000001"), primaryProbe("00000001"), replicaProbe()}, "h0:5432/app", false},
		{"the primary's login fails: no failover", []probe{{err: codec.NewFatal("28P01", "password authentication failed")}, replicaProbe(), replicaProbe()}, "h0:5432/app", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := testEngine(t, failoverConfig)
			d := e.cat.Load().dbs["app"]
			replaced := e.followPrimary(d, 0, tc.probes)
			if got := primaryHost(e); got != tc.wantPrimary || replaced != (got != "h0:5432/app") {
				t.Fatalf("primary %s (replaced %v), want %s", got, replaced, tc.wantPrimary)
			}
			if lost := d.primaryLost[0].Load() != 0; lost != tc.wantLost {
				t.Fatalf("shard without a primary: %v, want %v", lost, tc.wantLost)
			}
			if replaced && !d.retired.Load() {
				t.Fatal("the database with the old primary was not retired")
			}
		})
	}
}

func TestFollowPrimaryFindsTheOldOneBack(t *testing.T) {
	e := testEngine(t, failoverConfig)
	d := e.cat.Load().dbs["app"]
	e.followPrimary(d, 0, []probe{downProbe, replicaProbe(), replicaProbe()})
	e.followPrimary(d, 0, []probe{primaryProbe("00000001"), replicaProbe(), replicaProbe()})
	if d.primaryLost[0].Load() != 0 || e.cat.Load().dbs["app"] != d {
		t.Fatal("the primary that answers again is not the shard's primary again")
	}
}

func TestSwitchedPrimaryKeepsTheHosts(t *testing.T) {
	e := testEngine(t, failoverConfig)
	old := e.cat.Load().dbs["app"]
	e.followPrimary(old, 0, []probe{downProbe, replicaProbe(), primaryProbe("00000002")})
	sh := e.cat.Load().dbs["app"].db.Shards[0]
	if hostOf(sh.Replicas[0]) != "h1:5432/app" || hostOf(sh.Replicas[1]) != "h0:5432/app" {
		t.Fatalf("replicas after the switch: %v, want h1 and the old primary", sh.Replicas)
	}
	if hostOf(old.db.Shards[0].Primary) != "h0:5432/app" || hostOf(e.cfg.Databases[0].Shards[0].Primary) != "h0:5432/app" {
		t.Fatal("the switch changed the old database's or the config's shard")
	}
	// A RELOAD that changes the database keeps the primary found, where the file lists it.
	next := e.cat.Load()
	cfg := *e.cfg.Database("app")
	cfg.LoadBalancing = "least_outstanding"
	if got := hostOf(primariesOf(next.dbs["app"], &cfg).Shards[0].Primary); got != "h2:5432/app" {
		t.Fatalf("after a RELOAD the primary is %s, want the one found (h2)", got)
	}
}

func TestServerDown(t *testing.T) {
	for _, tc := range []struct {
		err  error
		down bool
	}{
		{errors.New("connect: connection refused"), true},
		{codec.NewFatal("57P03", "the database system is shutting down"), true},
		{codec.NewFatal("57P01", "terminating connection due to administrator command"), true},
		{codec.NewFatal("08006", "connection failure"), true},
		{codec.NewFatal("28P01", "password authentication failed"), false},
		{codec.NewFatal("53300", "too many connections"), false},
		{codec.NewFatal("3D000", "database does not exist"), false},
	} {
		if got := serverDown(tc.err); got != tc.down {
			t.Errorf("serverDown(%v) = %v, want %v", tc.err, got, tc.down)
		}
	}
}
