package reshard

import (
	"context"
	"fmt"
)

// applySection copies one section of source shard 0's schema (pg_dump --section pre-data or post-data) to
// destination e, in one transaction together with after (which records the phase in pgshard_reshard.state),
// so that a crash leaves the section either wholly applied and recorded, or not at all.
func (p *plan) applySection(ctx context.Context, section string, e endpoint, before, after string) error {
	dump, err := p.pgTool("pg_dump")
	if err != nil {
		return err
	}
	psql, err := p.pgTool("psql")
	if err != nil {
		return err
	}
	src := p.sources[0]
	sql, err := runTool(ctx, dump, src, nil, "--schema-only", "--section="+section, "--no-publications",
		"--no-subscriptions", "--exclude-schema="+stateSchema, "--dbname="+src.toolDSN())
	if err != nil {
		return err
	}
	script := append([]byte(before), sql...)
	script = append(script, "\n"+after...)
	if _, err := runTool(ctx, psql, e, script, "-X", "-q", "-v", "ON_ERROR_STOP=1", "--single-transaction",
		"--dbname="+e.toolDSN(), "-f", "-"); err != nil {
		return fmt.Errorf("applying the schema's %s to destination shard %d: %w", section, e.idx, err)
	}
	return nil
}

// toolDSN is the connection string for pg_dump and psql: without the password, which goes in PGPASSWORD so
// that it never shows in the process list.
func (e endpoint) toolDSN() string {
	e.pass = ""
	return e.dsn()
}
