package reshard

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/pgshard/pgshard/internal/pgbin"
)

// pgTool finds pg_dump or psql: in --pg-bin, on PATH, or beside the newest installed server programs.
func (p *plan) pgTool(name string) (string, error) {
	if p.opt.PgBin != "" {
		path := filepath.Join(p.opt.PgBin, name)
		if _, err := os.Stat(path); err != nil {
			return "", fmt.Errorf("--pg-bin %s has no %s", p.opt.PgBin, name)
		}
		return path, nil
	}
	if path, err := exec.LookPath(name); err == nil {
		return path, nil
	}
	dir, err := pgbin.Dir()
	if err != nil {
		return "", fmt.Errorf("%s not found: install the Postgres client programs or give --pg-bin", name)
	}
	return filepath.Join(dir, name), nil
}

// runTool runs a Postgres program with the endpoint's password in the environment (never on the command
// line), feeding it stdin; the error carries the program's stderr.
func runTool(ctx context.Context, path string, e endpoint, stdin []byte, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Env = append(os.Environ(), "PGPASSWORD="+e.pass, "PGCONNECT_TIMEOUT=10")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%s on shard %s: %v: %s", filepath.Base(path), e.srv, err, strings.TrimSpace(errb.String()))
	}
	return out.Bytes(), nil
}
