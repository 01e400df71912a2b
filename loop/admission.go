package loop

import (
	"strconv"

	"github.com/pgshard/pgshard/codec"
)

// Admission: which sockets count against which limit. A socket is pending from accept until its login ends;
// pending sockets are bounded by limits.max_pending_logins (and each by client_startup_timeout). Only
// logged-in application clients count against pool.max_client_connections, so sockets that never finish
// logging in cannot lock anybody out of a session. The admin console has places of its own
// (maxAdminConnections), so an operator can always get in to look, however full the proxy is.

// maxAdminConnections bounds the console's sessions, outside pool.max_client_connections.
const maxAdminConnections = 8

type admitKind uint8

const (
	admitNone    admitKind = iota // counted nowhere (closed)
	admitPending                  // logging in
	admitClient                   // logged in to a database
	admitAdmin                    // logged in to the admin console
)

// admitPending counts a new socket as logging in; it fails past limits.max_pending_logins.
func (e *Engine) admitPending() bool {
	if e.pending.Add(1) > int64(e.cfg.Limits.MaxPendingLogins) {
		e.pending.Add(-1)
		return false
	}
	return true
}

// tooManyLoggingIn is the answer to a socket past limits.max_pending_logins.
func (e *Engine) tooManyLoggingIn() []byte {
	return codec.AppendErrorResponse(nil, codec.NewFatal(codec.SQLStateTooManyConnections, "sorry, too many clients are logging in at once").
		WithHint("limits.max_pending_logins is "+strconv.Itoa(e.cfg.Limits.MaxPendingLogins)+": retry in a moment"))
}

// full says whether a login to the console (admin) or to a database would be refused now; admit has the last word.
func (e *Engine) full(admin bool) bool {
	if admin {
		return e.admins.Load() >= maxAdminConnections
	}
	return e.loggedIn.Load() >= int64(e.cfg.Pool.MaxClientConnections)
}

// admit moves cl, whose password was right, from pending to the clients or the console's sessions; past
// their limit it refuses cl with 53300 and returns false.
func (cl *client) admit() bool {
	count, max, kind := &cl.e.loggedIn, int64(cl.e.cfg.Pool.MaxClientConnections), admitClient
	hint := "pool.max_client_connections is set to " + strconv.FormatInt(max, 10)
	if cl.isAdmin {
		count, max, kind = &cl.e.admins, maxAdminConnections, admitAdmin
		hint = "the admin console takes " + strconv.Itoa(maxAdminConnections) + " sessions at most"
	}
	if count.Add(1) > max {
		count.Add(-1)
		cl.fatal(codec.NewFatal(codec.SQLStateTooManyConnections, "sorry, too many clients already").WithHint(hint))
		return false
	}
	cl.e.pending.Add(-1)
	cl.admitted = kind
	return true
}

// leave takes a closed client off its count.
func (cl *client) leave() {
	switch cl.admitted {
	case admitPending:
		cl.e.pending.Add(-1)
	case admitClient:
		cl.e.loggedIn.Add(-1)
	case admitAdmin:
		cl.e.admins.Add(-1)
	}
	cl.admitted = admitNone
}
