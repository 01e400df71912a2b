package config

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// decoder fills a Config from the YAML node tree. It does not stop at the first problem: it records
// each one and goes on, so the user sees everything to fix in one run.
type decoder struct {
	problems []Problem
	// lines maps the path of every key present in the file ("pool.size", "users[1].name") to its line,
	// so validation can point at the line of the value it rejects. A null value counts as absent.
	lines map[string]int
	// bad holds the paths whose value could not be decoded; validation leaves them alone so one
	// mistake is reported once.
	bad map[string]bool
}

// field decodes the value found under one key. path is the key's full path, for messages.
type field func(n *yaml.Node, path string)

func newDecoder() *decoder {
	return &decoder{lines: map[string]int{}, bad: map[string]bool{}}
}

func (d *decoder) problem(line int, format string, args ...any) {
	d.problems = append(d.problems, Problem{Line: line, Msg: fmt.Sprintf(format, args...)})
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// syntaxProblem turns a yaml.v3 parse error into a Problem with its line.
func syntaxProblem(err error) Problem {
	msg := err.Error()
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return Problem{Line: line, Msg: "invalid YAML: " + m[2]}
	}
	return Problem{Msg: "invalid YAML: " + strings.TrimPrefix(msg, "yaml: ")}
}

// resolve follows aliases (*name) to the node they stand for.
func resolve(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func index(path string, i int) string { return fmt.Sprintf("%s[%d]", path, i) }

// typeError reports a value of the wrong kind. It never quotes a string value: the value might be a
// password or a URL with one, put under the wrong key.
func (d *decoder) typeError(n *yaml.Node, path, want string) {
	d.bad[path] = true
	name := path
	if name == "" {
		name = "the file"
	}
	got := "a string"
	switch {
	case n.Kind == yaml.MappingNode:
		got = "a mapping"
	case n.Kind == yaml.SequenceNode:
		got = "a list"
	case isNull(n):
		got = "nothing"
	case n.ShortTag() != "!!str":
		got = strconv.Quote(n.Value)
	}
	d.problem(n.Line, "%s: expected %s, got %s", name, want, got)
}

// mapping decodes a mapping by handing each value to the field of its key. Unknown and repeated keys
// are problems; a null value leaves the default in place.
func (d *decoder) mapping(n *yaml.Node, path string, fields map[string]field) {
	n = resolve(n)
	if n.Kind != yaml.MappingNode {
		d.typeError(n, path, "a mapping")
		return
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], resolve(n.Content[i+1])
		if k.Kind != yaml.ScalarNode {
			d.problem(k.Line, "%s: keys must be plain names", path)
			continue
		}
		if k.ShortTag() == "!!merge" {
			d.problem(k.Line, "%s: merge keys (<<) are not supported", path)
			continue
		}
		p := join(path, k.Value)
		if first, dup := seen[k.Value]; dup {
			d.problem(k.Line, "duplicate key %q (first at line %d)", p, first)
			continue
		}
		seen[k.Value] = k.Line
		f, ok := fields[k.Value]
		if !ok {
			d.problem(k.Line, "unknown key %q", p)
			continue
		}
		if isNull(v) {
			continue
		}
		d.lines[p] = k.Line
		f(v, p)
	}
}

// list hands each entry of a sequence to each.
func (d *decoder) list(n *yaml.Node, path string, each func(item *yaml.Node, path string)) {
	if n.Kind != yaml.SequenceNode {
		d.typeError(n, path, "a list")
		return
	}
	for i, item := range n.Content {
		item = resolve(item)
		p := index(path, i)
		d.lines[p] = item.Line
		each(item, p)
	}
}

func (d *decoder) str(dst *string) field {
	return func(n *yaml.Node, path string) {
		if n.Kind != yaml.ScalarNode {
			d.typeError(n, path, "a string")
			return
		}
		*dst = n.Value
	}
}

func (d *decoder) strs(dst *[]string) field {
	return func(n *yaml.Node, path string) {
		var out []string
		d.list(n, path, func(item *yaml.Node, p string) {
			var s string
			d.str(&s)(item, p)
			out = append(out, s)
		})
		*dst = out
	}
}

func (d *decoder) integer(dst *int) field {
	return func(n *yaml.Node, path string) {
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" {
			d.typeError(n, path, "an integer")
			return
		}
		if err := n.Decode(dst); err != nil {
			d.bad[path] = true
			d.problem(n.Line, "%s: integer %s is out of range", path, n.Value)
		}
	}
}

func (d *decoder) boolean(dst *bool) field {
	return func(n *yaml.Node, path string) {
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" {
			d.typeError(n, path, "true or false")
			return
		}
		if err := n.Decode(dst); err != nil {
			d.typeError(n, path, "true or false")
		}
	}
}

func (d *decoder) duration(dst *time.Duration) field {
	return func(n *yaml.Node, path string) {
		if n.Kind != yaml.ScalarNode {
			d.typeError(n, path, "a duration")
			return
		}
		v, err := time.ParseDuration(n.Value)
		if err != nil {
			d.bad[path] = true
			d.problem(n.Line, "%s: invalid duration %q (use a Go duration such as \"5s\", \"10m\" or \"1h30m\")", path, n.Value)
			return
		}
		*dst = v
	}
}

// size accepts a number of bytes or a string with a unit ("64MB").
func (d *decoder) size(dst *int) field {
	return func(n *yaml.Node, path string) {
		if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!int" {
			d.integer(dst)(n, path)
			return
		}
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!str" {
			d.typeError(n, path, "a size")
			return
		}
		v, err := parseSize(n.Value)
		if err != nil {
			d.bad[path] = true
			d.problem(n.Line, "%s: %v", path, err)
			return
		}
		*dst = v
	}
}

func (d *decoder) server(dst *Server) field {
	return func(n *yaml.Node, path string) {
		if n.Kind != yaml.ScalarNode {
			d.typeError(n, path, "a postgres:// URL")
			return
		}
		s, err := ParseServer(n.Value)
		if err != nil {
			d.bad[path] = true
			d.problem(n.Line, "%s: %v", path, err)
			return
		}
		*dst = s
	}
}

// replica reads an entry of replicas: a postgres:// URL, or {url: URL, weight: N}.
func (d *decoder) replica(n *yaml.Node, path string) Server {
	var r Server
	weight := 1
	if n.Kind == yaml.MappingNode {
		d.mapping(n, path, map[string]field{
			"url":    d.server(&r),
			"weight": d.integer(&weight),
		})
	} else {
		d.server(&r)(n, path)
	}
	r.Weight = weight
	return r
}

func (d *decoder) config(n *yaml.Node, c *Config) {
	if isNull(resolve(n)) { // a file of only comments
		return
	}
	d.mapping(n, "", map[string]field{
		"listen":           d.str(&c.Listen),
		"metrics_listen":   d.str(&c.MetricsListen),
		"shutdown_timeout": d.duration(&c.ShutdownTimeout),
		"log_format":       d.str(&c.LogFormat),
		"log_wire":         d.boolean(&c.LogWire),
		"auth_user":        d.str(&c.AuthUser),
		"auth_query":       d.str(&c.AuthQuery),
		"auth_cache_ttl":   d.duration(&c.AuthCacheTTL),
		"event_loops":      d.integer(&c.EventLoops),
		"two_phase_log":    d.str(&c.TwoPhaseLog),
		"limits": func(n *yaml.Node, p string) {
			l := &c.Limits
			d.mapping(n, p, map[string]field{
				"max_message_size":           d.size(&l.MaxMessageSize),
				"client_startup_timeout":     d.duration(&l.ClientStartupTimeout),
				"max_pending_logins":         d.integer(&l.MaxPendingLogins),
				"client_outbound_buffer":     d.size(&l.ClientOutboundBuffer),
				"server_connect_timeout":     d.duration(&l.ServerConnectTimeout),
				"client_prepared_statements": d.integer(&l.ClientPreparedStatements),
				"query_timeout":              d.duration(&l.QueryTimeout),
				"idle_transaction_timeout":   d.duration(&l.IdleTransactionTimeout),
				"client_idle_timeout":        d.duration(&l.ClientIdleTimeout),
				"max_intermediate_result":    d.size(&l.MaxIntermediateResult),
			})
		},
		"tls": func(n *yaml.Node, p string) {
			d.mapping(n, p, map[string]field{
				"mode":      d.str(&c.TLS.Mode),
				"cert":      d.str(&c.TLS.Cert),
				"key":       d.str(&c.TLS.Key),
				"client_ca": d.str(&c.TLS.ClientCA),
			})
		},
		"pool": func(n *yaml.Node, p string) {
			pl := &c.Pool
			d.mapping(n, p, map[string]field{
				"mode":                    d.str(&pl.Mode),
				"size":                    d.integer(&pl.Size),
				"min_idle":                d.integer(&pl.MinIdle),
				"checkout_timeout":        d.duration(&pl.CheckoutTimeout),
				"idle_timeout":            d.duration(&pl.IdleTimeout),
				"server_lifetime":         d.duration(&pl.ServerLifetime),
				"max_client_connections":  d.integer(&pl.MaxClientConnections),
				"max_prepared_statements": d.integer(&pl.MaxPreparedStatements),
				"server_reuse":            d.boolean(&pl.ServerReuse),
				"ban_time":                d.duration(&pl.BanTime),
				"health_check_interval":   d.duration(&pl.HealthCheckInterval),
				"replica_check_interval":  d.duration(&pl.ReplicaCheckInterval),
				"max_replica_lag":         d.duration(&pl.MaxReplicaLag),
				"max_replica_lag_bytes":   d.size(&pl.MaxReplicaLagBytes),
				"failover_buffer_timeout": d.duration(&pl.FailoverBufferTimeout),
			})
		},
		"admin": func(n *yaml.Node, p string) {
			d.mapping(n, p, map[string]field{
				"user":     d.str(&c.Admin.User),
				"password": d.str(&c.Admin.Password),
			})
		},
		"users": func(n *yaml.Node, p string) {
			d.list(n, p, func(item *yaml.Node, p string) {
				c.Users = append(c.Users, d.user(item, p))
			})
		},
		"databases": func(n *yaml.Node, p string) {
			d.list(n, p, func(item *yaml.Node, p string) {
				c.Databases = append(c.Databases, d.database(item, p))
			})
		},
	})
}

func (d *decoder) user(n *yaml.Node, path string) User {
	u := User{AuthMethod: AuthSCRAM}
	d.mapping(n, path, map[string]field{
		"name":            d.str(&u.Name),
		"password":        d.str(&u.Password),
		"auth_method":     d.str(&u.AuthMethod),
		"server_user":     d.str(&u.ServerUser),
		"server_password": d.str(&u.ServerPassword),
	})
	if u.ServerUser == "" {
		u.ServerUser = u.Name
	}
	// An explicit server_password, even "", wins; otherwise the client password is reused when it can
	// be: a hash is useless for logging in to the server.
	if _, set := d.lines[join(path, "server_password")]; !set && passwordKindOf(u.Password) == passwordCleartext {
		u.ServerPassword = u.Password
	}
	return u
}

func (d *decoder) database(n *yaml.Node, path string) Database {
	db := Database{UnlistedTables: UnlistedReplicated, CrossShard: CrossShardAllow, ReadWriteSplit: SplitReplicas, ReadYourWrites: RYWOff,
		LoadBalancing: BalanceRoundRobin, Role: RoleFixed}
	d.mapping(n, path, map[string]field{
		"name": d.str(&db.Name),
		"shards": func(n *yaml.Node, p string) {
			d.list(n, p, func(item *yaml.Node, p string) {
				var s Shard
				d.mapping(item, p, map[string]field{
					"primary": d.server(&s.Primary),
					"replicas": func(n *yaml.Node, p string) {
						d.list(n, p, func(item *yaml.Node, p string) {
							s.Replicas = append(s.Replicas, d.replica(item, p))
						})
					},
				})
				db.Shards = append(db.Shards, s)
			})
		},
		"sharded_tables": func(n *yaml.Node, p string) {
			d.list(n, p, func(item *yaml.Node, p string) {
				db.ShardedTables = append(db.ShardedTables, d.shardedTable(item, p))
			})
		},
		"replicated_tables":        d.strs(&db.ReplicatedTables),
		"unlisted_tables":          d.str(&db.UnlistedTables),
		"two_phase_commit":         d.boolean(&db.TwoPhaseCommit),
		"cross_shard":              d.str(&db.CrossShard),
		"read_write_split":         d.str(&db.ReadWriteSplit),
		"read_your_writes":         d.str(&db.ReadYourWrites),
		"read_your_writes_timeout": d.duration(&db.ReadYourWritesTimeout),
		"load_balancing":           d.str(&db.LoadBalancing),
		"role":                     d.str(&db.Role),
	})
	return db
}

func (d *decoder) shardedTable(n *yaml.Node, path string) ShardedTable {
	t := ShardedTable{Mapping: MappingHash}
	d.mapping(n, path, map[string]field{
		"table":   d.str(&t.Table),
		"column":  d.str(&t.Column),
		"type":    d.str(&t.Type),
		"mapping": d.str(&t.Mapping),
		"values":  d.shardValues(&t.Values),
		"ranges": func(n *yaml.Node, p string) {
			d.list(n, p, func(item *yaml.Node, p string) {
				var r Range
				d.mapping(item, p, map[string]field{
					"shard": d.integer(&r.Shard),
					"from":  d.str(&r.From),
					"to":    d.str(&r.To),
				})
				t.Ranges = append(t.Ranges, r)
			})
		},
	})
	return t
}

// shardValues decodes the list mapping's {shard index: [values]}.
func (d *decoder) shardValues(dst *map[int][]string) field {
	return func(n *yaml.Node, path string) {
		if n.Kind != yaml.MappingNode {
			d.typeError(n, path, "a mapping of shard index to values")
			return
		}
		m := map[int][]string{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := resolve(n.Content[i]), resolve(n.Content[i+1])
			var shard int
			if k.Kind != yaml.ScalarNode || k.ShortTag() != "!!int" || k.Decode(&shard) != nil {
				d.bad[path] = true
				d.problem(k.Line, "%s: key %q is not a shard index (0, 1, ...)", path, k.Value)
				continue
			}
			p := index(path, shard)
			if _, dup := m[shard]; dup {
				d.problem(k.Line, "duplicate key %q (first at line %d)", p, d.lines[p])
				continue
			}
			d.lines[p] = k.Line
			var vals []string
			if !isNull(v) {
				d.strs(&vals)(v, p)
			}
			m[shard] = vals
		}
		*dst = m
	}
}
