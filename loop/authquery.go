package loop

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/pgshard/pgshard/auth"
	"github.com/pgshard/pgshard/codec"
	"github.com/pgshard/pgshard/config"
	"github.com/pgshard/pgshard/pool"
)

// Users looked up with auth_query (PgBouncer's auth_user and auth_query).
//
// A client may log in as a role that is not in users: when auth_user is set. pgshard then asks the first shard of
// the database the client wants for the role's SCRAM verifier, as auth_user, with auth_query (off the loops; the
// client waits in clientLookup), and runs the SCRAM exchange against it: the client proves its own password,
// which pgshard never sees. That proof also gives pgshard the role's ClientKey, and with the verifier's ServerKey
// it logs in to the shards as that role (auth.Keys), since they keep the same verifier. So no password of such a
// role is in the config. A verifier (or the absence of the role) is kept auth_cache_ttl; concurrent logins of a
// role wait for one lookup. A role whose password is not a SCRAM verifier (md5, or none) cannot log in this way.

// authEntry is what a lookup found: the role as a user (nil: none that can log in), until expires.
type authEntry struct {
	u       *user
	expires time.Time
}

// authLookups is the cache of looked-up users, and the logins waiting for a lookup in flight.
type authLookups struct {
	mu      sync.Mutex
	found   map[string]authEntry
	waiting map[string][]func(*user)
}

// lookUpUser finds the role name of database d with auth_query and calls then on ls's loop with it (nil when it
// cannot log in).
func (e *Engine) lookUpUser(ls *loopState, d *database, name string, then func(*user)) {
	key := d.db.Name + "\x00" + name
	a := &e.authLookups
	onLoop := func(u *user) {
		_ = ls.execute(func() { then(u) })
	}
	a.mu.Lock()
	if ent, ok := a.found[key]; ok && time.Now().Before(ent.expires) {
		a.mu.Unlock()
		then(ent.u)
		return
	}
	if a.waiting == nil {
		a.found, a.waiting = map[string]authEntry{}, map[string][]func(*user){}
	}
	first := len(a.waiting[key]) == 0
	a.waiting[key] = append(a.waiting[key], onLoop)
	prev := a.found[key].u
	a.mu.Unlock()
	if !first {
		return
	}
	go func() {
		u, err := e.queryUser(d, name, prev)
		ttl := e.cfg.AuthCacheTTL
		if err != nil {
			e.log.Warn("auth_query failed; the login is refused", "database", d.db.Name, "user", name, "err", err)
			ttl = 0 // not cached: the next login asks again
		}
		a.mu.Lock()
		a.found[key] = authEntry{u: u, expires: time.Now().Add(ttl)}
		waiters := a.waiting[key]
		delete(a.waiting, key)
		a.mu.Unlock()
		for _, w := range waiters {
			w(u)
		}
	}()
}

// queryUser runs auth_query for name on the first shard of d, as auth_user. prev is the user an earlier lookup
// made: kept when the verifier did not change, so that the keys its logins proved go on serving its pools.
func (e *Engine) queryUser(d *database, name string, prev *user) (*user, error) {
	cat := e.cat.Load()
	au := cat.users[e.cfg.AuthUser]
	if au == nil {
		return nil, fmt.Errorf("auth_user %q is no longer in users:", e.cfg.AuthUser)
	}
	ctx, cancel := context.WithTimeout(context.Background(), e.cfg.Limits.ServerConnectTimeout)
	defer cancel()
	nc, _, err := pool.Dial(ctx, e.target(d, au, 0))
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	if deadline, ok := ctx.Deadline(); ok {
		_ = nc.SetDeadline(deadline)
	}
	var b []byte
	b = codec.AppendParse(b, "", e.cfg.AuthQuery, nil)
	b = codec.AppendBind(b, "", "", nil, [][]byte{[]byte(name)}, nil)
	b = codec.AppendExecute(b, "", 2)
	b = codec.AppendEmpty(b, codec.Sync)
	b = codec.AppendEmpty(b, codec.Terminate)
	if _, err := nc.Write(b); err != nil {
		return nil, err
	}
	r := bufio.NewReader(nc)
	var secret, buf []byte
	found := false
	for {
		m, err := pool.ReadMessage(r, &buf)
		if err != nil {
			return nil, err
		}
		switch m.Type {
		case codec.ErrorResponse:
			pe, err := codec.ParseError(m.Body)
			if err != nil {
				return nil, err
			}
			return nil, pe
		case codec.DataRow:
			if found {
				continue
			}
			row, err := codec.ParseDataRow(m.Body)
			if err != nil {
				return nil, err
			}
			cols, err := row.Columns(nil)
			if err != nil {
				return nil, err
			}
			if len(cols) < 2 {
				return nil, errors.New("auth_query must return the user name and its password (two columns)")
			}
			found = true
			if cols[1] != nil {
				secret = append([]byte{}, cols[1]...) // buf is reused by the next message
			}
		case codec.ReadyForQuery:
			return lookedUpUser(name, found, secret, prev)
		}
	}
}

// lookedUpUser makes the user of a role whose password auth_query returned (nil: no such role, or no verifier).
func lookedUpUser(name string, found bool, secret []byte, prev *user) (*user, error) {
	if !found || secret == nil {
		return nil, nil
	}
	if !strings.HasPrefix(string(secret), "SCRAM-SHA-256$") {
		return nil, fmt.Errorf("the password of role %q is not a SCRAM-SHA-256 verifier: it cannot log in through auth_query", name)
	}
	v, err := auth.ParseVerifier(string(secret))
	if err != nil {
		return nil, err
	}
	if prev != nil && prev.verifier.String() == v.String() {
		return prev, nil
	}
	return &user{cfg: &config.User{Name: name, AuthMethod: config.AuthSCRAM, ServerUser: name}, method: config.AuthSCRAM,
		verifier: v, lookedUp: true}, nil
}
