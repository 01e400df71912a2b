package reshard

import (
	"context"
	"fmt"
	"net"
	"os"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgshard/pgshard/config"
)

// The proxy's admin console, reached like PgBouncer's: the database named "pgshard", the admin login, simple
// queries. The cutover uses PAUSE, RELOAD and RESUME.

func (p *plan) adminDSN() (string, error) {
	pass := p.opt.AdminPassword
	if pass == "" {
		pass = os.Getenv("PGSHARD_ADMIN_PASSWORD")
	}
	if pass == "" {
		pass = p.cfg.Admin.Password
		if _, scram := config.ParseSCRAMVerifier(pass); scram || config.IsMD5Hash(pass) {
			return "", fmt.Errorf("the admin password in %s is a hash: give the cleartext with --admin-password or $PGSHARD_ADMIN_PASSWORD", p.opt.ConfigPath)
		}
	}
	addr := p.opt.AdminAddr
	if addr == "" {
		addr = p.cfg.Listen
	}
	var host, port string
	if strings.HasPrefix(addr, "/") {
		host, port = addr, "6432"
	} else {
		var err error
		if host, port, err = net.SplitHostPort(addr); err != nil {
			return "", fmt.Errorf("admin address %q: %w", addr, err)
		}
	}
	e := endpoint{srv: config.Server{Host: host, Database: config.AdminDatabase}, user: p.cfg.Admin.User, pass: pass}
	fmt.Sscan(port, &e.srv.Port)
	return e.dsn(), nil
}

func (p *plan) adminConnect(ctx context.Context) (*pgconn.PgConn, error) {
	dsn, err := p.adminDSN()
	if err != nil {
		return nil, err
	}
	c, err := pgconn.Connect(ctx, dsn)
	if err != nil {
		return nil, fmt.Errorf("pgshard's admin console (the cutover pauses writes through it; is pgshard running?): %w", err)
	}
	return c, nil
}

// pingAdmin checks that the console answers.
func (p *plan) pingAdmin(ctx context.Context) error {
	c, err := p.adminConnect(ctx)
	if err != nil {
		return err
	}
	defer c.Close(ctx)
	_, err = c.Exec(ctx, "SHOW VERSION").ReadAll()
	return err
}

// adminExec runs one console command.
func adminExec(ctx context.Context, c *pgconn.PgConn, cmd string) error {
	_, err := c.Exec(ctx, cmd).ReadAll()
	if err != nil {
		return fmt.Errorf("pgshard %s: %w", cmd, err)
	}
	return nil
}
