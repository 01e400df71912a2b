package reshard

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/jackc/pgx/v5"
	"github.com/pgshard/pgshard/config"
	"github.com/pgshard/pgshard/reshard/status"
)

// Options is what `pgshard reshard` is asked to do.
type Options struct {
	ConfigPath string // the proxy's config.yaml; rewritten at cutover
	Database   string // the database to reshard
	ToPath     string // the new shards: a YAML file with `shards:` (and optionally `sharded_tables:`)
	StateDir   string // progress file and lock; default <config dir>/reshard-<database>

	Workers    int   // parallel copy streams (default 4)
	ChunkBytes int64 // tables larger than this are copied in ctid ranges of about this size (default 256 MB)

	// The role used on the shards (source and destination); default the shard URL's user, else the first
	// configured user's server_user. Password: Password, else $PGPASSWORD, else the configured one.
	User, Password string
	// The proxy's admin console; default the config's listen address and admin login ($PGSHARD_ADMIN_PASSWORD
	// when the configured password is a hash).
	AdminAddr, AdminPassword string
	PgBin                    string // directory of pg_dump and psql; default found on PATH or under /usr/lib/postgresql

	MinStreaming time.Duration // stream at least this long before the cutover
	MaxLag       int64         // cutover starts when every source's lag is below this many bytes (default 1 MB)
	MaxSlotWAL   int64         // the run stops before a slot retains more WAL than this (bytes; default 16 GB; slotwatch.go)
	PauseTimeout time.Duration // PAUSE waits this long for in-flight transactions (default 30s)
	Abort        bool          // remove what a failed run left behind, and stop

	Out io.Writer // progress display and messages (os.Stderr when nil)
}

// plan is what Options resolve to: the configurations before and after, and how to reach every shard.
type plan struct {
	opt      Options
	cfg      *config.Config   // the config as it is
	db       *config.Database // the database as it is
	newCfg   *config.Config   // the config after the cutover
	newDB    *config.Database
	newBytes []byte // the config file after the cutover
	sources  []endpoint
	dests    []endpoint
	slotBase string // pgshard_reshard_<database>, for slot and publication names
	switched bool   // the config already names the new shards: only the switch's end and the cleanup remain
}

// endpoint is a shard's primary as the tool connects to it.
type endpoint struct {
	idx  int
	srv  config.Server
	user string
	pass string
}

func (o *Options) setDefaults() {
	if o.Workers <= 0 {
		o.Workers = 4
	}
	if o.ChunkBytes <= 0 {
		o.ChunkBytes = 256 << 20
	}
	if o.MaxLag <= 0 {
		o.MaxLag = 1 << 20
	}
	if o.MaxSlotWAL <= 0 {
		o.MaxSlotWAL = 16 << 30
	}
	if o.PauseTimeout <= 0 {
		o.PauseTimeout = 30 * time.Second
	}
	if o.Out == nil {
		o.Out = os.Stderr
	}
	if o.StateDir == "" {
		o.StateDir = filepath.Join(filepath.Dir(o.ConfigPath), status.DirPrefix+o.Database)
	}
}

// newPlan reads the config and the --to file and works out both layouts.
func newPlan(o Options) (*plan, error) {
	o.setDefaults()
	if o.ConfigPath == "" || o.Database == "" || o.ToPath == "" && !o.Abort {
		return nil, errors.New("reshard needs --config, --database and --to")
	}
	raw, err := os.ReadFile(o.ConfigPath)
	if err != nil {
		return nil, err
	}
	cfg, err := config.Load(o.ConfigPath)
	if err != nil {
		return nil, err
	}
	db := cfg.Database(o.Database)
	if db == nil {
		return nil, fmt.Errorf("%s has no database %q", o.ConfigPath, o.Database)
	}
	p := &plan{opt: o, cfg: cfg, db: db, slotBase: slotBaseName(o.Database)}
	if o.ToPath != "" {
		to, err := os.ReadFile(o.ToPath)
		if err != nil {
			return nil, err
		}
		p.newBytes, err = rewriteConfig(raw, o.Database, to)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", o.ToPath, err)
		}
		p.newCfg, err = config.Parse(p.newBytes)
		if err != nil {
			return nil, fmt.Errorf("%s does not make a valid config with %s:\n%w", o.ToPath, o.ConfigPath, err)
		}
		p.newDB = p.newCfg.Database(o.Database)
	}
	if p.sources, err = p.endpoints(db); err != nil {
		return nil, err
	}
	if p.newDB != nil {
		if p.dests, err = p.endpoints(p.newDB); err != nil {
			return nil, err
		}
		if sameShards(p.sources, p.dests) {
			return p.switchedPlan()
		}
		for _, d := range p.dests {
			for _, s := range p.sources {
				if sameServer(d.srv, s.srv) {
					return nil, fmt.Errorf("destination shard %d (%s) is source shard %d: reshard into new, empty databases", d.idx, d.srv, s.idx)
				}
			}
		}
	}
	return p, nil
}

func sameShards(a, b []endpoint) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !sameServer(a[i].srv, b[i].srv) {
			return false
		}
	}
	return true
}

func sameServer(a, b config.Server) bool {
	return a.Host == b.Host && a.Port == b.Port && a.Database == b.Database
}

// slotName is the name of source shard i's slot.
func (p *plan) slotName(i int) string { return fmt.Sprintf("%s_%d", p.slotBase, i) }

// publication is the quoted name of the sources' publication.
func (p *plan) publication() string { return pgx.Identifier{p.slotBase}.Sanitize() }

// slotBaseName makes a replication slot / publication name out of a database name: slot names allow only
// lower-case letters, digits and underscores.
func slotBaseName(db string) string {
	var b strings.Builder
	b.WriteString("pgshard_reshard_")
	for _, c := range strings.ToLower(db) {
		if c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' {
			b.WriteRune(c)
		} else {
			b.WriteByte('_')
		}
	}
	s := b.String()
	if len(s) > 50 { // slot names are at most 63 bytes; "_<source>" follows
		s = s[:50]
	}
	return s
}

// switchedPlan is the plan of a run that wrote the new config but may not have finished: the sources are
// those of the config it replaced (kept as <config>.before-reshard), so that the rerun can finish the switch
// and the cleanup.
func (p *plan) switchedPlan() (*plan, error) {
	backup := p.opt.ConfigPath + ".before-reshard"
	old, err := config.Load(backup)
	if err != nil {
		return nil, fmt.Errorf("%s already serves %s from the --to shards, and its old layout is unknown: %w", p.opt.ConfigPath, p.opt.Database, err)
	}
	p.switched = true
	p.dests = p.sources
	if p.db = old.Database(p.opt.Database); p.db == nil {
		return nil, fmt.Errorf("%s has no database %q", backup, p.opt.Database)
	}
	if p.sources, err = p.endpoints(p.db); err != nil {
		return nil, err
	}
	return p, nil
}

// endpoints resolves the login used on each shard of db.
func (p *plan) endpoints(db *config.Database) ([]endpoint, error) {
	var out []endpoint
	for i, sh := range db.Shards {
		e := endpoint{idx: i, srv: sh.Primary, user: p.opt.User, pass: p.opt.Password}
		var cu *config.User
		switch {
		case e.user != "":
			for j := range p.cfg.Users {
				if p.cfg.Users[j].ServerUser == e.user {
					cu = &p.cfg.Users[j]
				}
			}
		case sh.Primary.User != "":
			e.user = sh.Primary.User
		case len(p.cfg.Users) > 0:
			cu = &p.cfg.Users[0]
			e.user = cu.ServerUser
		}
		if e.user == "" {
			return nil, errors.New("no role to log in to the shards with: give --user")
		}
		if e.pass == "" {
			e.pass = os.Getenv("PGPASSWORD")
		}
		if e.pass == "" {
			switch {
			case sh.Primary.Password != "":
				e.pass = sh.Primary.Password
			case cu != nil:
				e.pass = cu.ServerPassword
			}
		}
		out = append(out, e)
	}
	return out, nil
}

// dsn is a libpq keyword/value connection string for the endpoint; extra adds keywords (replication=database).
func (e endpoint) dsn(extra ...string) string {
	sslmode := e.srv.SSLMode
	if sslmode == "" {
		sslmode = "prefer" // pgshard's own console: encrypted when its tls.mode allows it
	}
	kv := []string{"host", e.srv.Host, "port", fmt.Sprint(e.srv.Port), "dbname", e.srv.Database, "user", e.user,
		"sslmode", sslmode, "application_name", "pgshard-reshard"}
	if e.srv.SSLRootCert != "" {
		kv = append(kv, "sslrootcert", e.srv.SSLRootCert)
	}
	if e.pass != "" {
		kv = append(kv, "password", e.pass)
	}
	kv = append(kv, extra...)
	var b strings.Builder
	for i := 0; i < len(kv); i += 2 {
		if i > 0 {
			b.WriteByte(' ')
		}
		v := strings.ReplaceAll(strings.ReplaceAll(kv[i+1], `\`, `\\`), `'`, `\'`)
		fmt.Fprintf(&b, "%s='%s'", kv[i], v)
	}
	return b.String()
}

// rewriteConfig returns the config file raw with database db's shards (and sharded_tables, when the --to file
// gives them) replaced by those of the --to file to. Comments elsewhere in the file are kept.
func rewriteConfig(raw []byte, db string, to []byte) ([]byte, error) {
	var doc, toDoc yaml.Node
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return nil, err
	}
	if err := yaml.Unmarshal(to, &toDoc); err != nil {
		return nil, err
	}
	if len(toDoc.Content) == 0 || toDoc.Content[0].Kind != yaml.MappingNode {
		return nil, errors.New("want a mapping with shards: (and optionally sharded_tables:)")
	}
	newVals := map[string]*yaml.Node{}
	m := toDoc.Content[0]
	for i := 0; i+1 < len(m.Content); i += 2 {
		switch k := m.Content[i].Value; k {
		case "shards", "sharded_tables", "replicated_tables":
			newVals[k] = m.Content[i+1]
		default:
			return nil, fmt.Errorf("line %d: unknown key %q (want shards, sharded_tables or replicated_tables)", m.Content[i].Line, k)
		}
	}
	if newVals["shards"] == nil {
		return nil, errors.New("no shards: list")
	}
	entry := findDatabase(&doc, db)
	if entry == nil {
		return nil, fmt.Errorf("the config has no database %q", db)
	}
	for k, v := range newVals {
		set := false
		for i := 0; i+1 < len(entry.Content); i += 2 {
			if entry.Content[i].Value == k {
				entry.Content[i+1] = v
				set = true
			}
		}
		if !set {
			entry.Content = append(entry.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: k}, v)
		}
	}
	var out bytes.Buffer
	enc := yaml.NewEncoder(&out)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return nil, err
	}
	return out.Bytes(), enc.Close()
}

// findDatabase returns the mapping node of the databases: entry named db.
func findDatabase(doc *yaml.Node, db string) *yaml.Node {
	if len(doc.Content) == 0 {
		return nil
	}
	root := doc.Content[0]
	for i := 0; i+1 < len(root.Content); i += 2 {
		if root.Content[i].Value != "databases" {
			continue
		}
		for _, e := range root.Content[i+1].Content {
			for j := 0; j+1 < len(e.Content); j += 2 {
				if e.Content[j].Value == "name" && e.Content[j+1].Value == db {
					return e
				}
			}
		}
	}
	return nil
}

// writeConfig replaces the config file with the new layout: the old one is kept as <file>.before-reshard, the
// new one written to a temporary file, synced and renamed over it.
func (p *plan) writeConfig() error {
	path := p.opt.ConfigPath
	old, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	if err := writeSynced(path+".before-reshard", old, st.Mode().Perm()); err != nil {
		return err
	}
	tmp := path + ".reshard-tmp"
	if err := writeSynced(tmp, p.newBytes, st.Mode().Perm()); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

func writeSynced(path string, b []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
