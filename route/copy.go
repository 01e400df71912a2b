package route

import (
	"strings"

	pg "github.com/pganalyze/pg_query_go/v6"

	"github.com/pgshard/pgshard/codec"
	"github.com/pgshard/pgshard/route/shard"
)

// CopyIn is how the rows of a COPY ... FROM STDIN into a sharded table are split: the proxy cuts the data with
// a codec.CopySplitter and sends each row to the shard of its key.
type CopyIn struct {
	Table   string // the table as the statement names it, quoted for SQL (schema-qualified when it was)
	Column  string // the key column
	Options codec.CopyOptions
	Mapper  *shard.Mapper
	// KeyField is the key's position among the copied columns; -1 when the statement has no column list,
	// so that the table's own column order (from the catalog) decides.
	KeyField int
}

// copyIn plans a COPY FROM STDIN into a sharded table; false when it cannot (the builder then refuses it).
func (b *builder) copyIn(s *pg.CopyStmt, rule *keyRule) bool {
	if s.Filename != "" || s.IsProgram {
		b.refuseHard("COPY into sharded table " + s.Relation.Relname + " from a file or program on the server is not supported: use COPY FROM STDIN (psql's \\copy)")
		return true
	}
	if s.WhereClause != nil {
		b.refuseSoft("COPY into sharded table " + s.Relation.Relname + " with WHERE is not supported yet")
		return true
	}
	ci := &CopyIn{Table: quoteIdent(s.Relation.Relname), Column: rule.column, Mapper: rule.mapper, KeyField: -1}
	if s.Relation.Schemaname != "" {
		ci.Table = quoteIdent(s.Relation.Schemaname) + "." + ci.Table
	}
	if len(s.Attlist) > 0 {
		for i, n := range s.Attlist {
			if str, ok := n.Node.(*pg.Node_String_); ok && str.String_.Sval == rule.column {
				ci.KeyField = i
			}
		}
		if ci.KeyField < 0 {
			b.refuseHard("COPY into sharded table " + s.Relation.Relname + " without its shard key column " + rule.column +
				": add " + rule.column + " to the column list")
			return true
		}
	}
	opt := &ci.Options
	opt.Table, opt.KeyColumn = s.Relation.Relname, rule.column
	for _, n := range s.Options {
		de := n.GetDefElem()
		if de == nil {
			continue
		}
		val := defString(de.Arg)
		switch de.Defname {
		case "format":
			switch strings.ToLower(val) {
			case "csv":
				opt.Format = codec.CopyCSV
			case "binary":
				opt.Format = codec.CopyBinary
			}
		case "delimiter":
			if len(val) == 1 {
				opt.Delimiter = val[0]
			}
		case "quote":
			if len(val) == 1 {
				opt.Quote = val[0]
			}
		case "escape":
			if len(val) == 1 {
				opt.Escape = val[0]
			}
		case "null":
			opt.Null, opt.NullSet = val, true
		case "header":
			opt.Header = de.Arg == nil || defBool(val)
		case "force_null", "force_not_null":
			for _, c := range listStrings(de.Arg) {
				if c == rule.column {
					if de.Defname == "force_null" {
						opt.ForceNull = true
					} else {
						opt.ForceNotNull = true
					}
				}
			}
		case "encoding":
			b.refuseHard("COPY into sharded table " + s.Relation.Relname + " with ENCODING is not supported: send the data in the client encoding")
			return true
		}
	}
	b.copyPlan = ci
	return true
}

// defString reads a COPY option's value as Postgres's defGetString would.
func defString(n *pg.Node) string {
	if n == nil {
		return ""
	}
	switch x := n.Node.(type) {
	case *pg.Node_String_:
		return x.String_.Sval
	case *pg.Node_Integer:
		if x.Integer.Ival != 0 {
			return "true"
		}
		return "false"
	case *pg.Node_Boolean:
		if x.Boolean.Boolval {
			return "true"
		}
		return "false"
	case *pg.Node_AStar:
		return "*"
	}
	return ""
}

func defBool(v string) bool {
	switch strings.ToLower(v) {
	case "false", "off", "0", "no", "f", "n":
		return false
	}
	return true // true, on, 1, match
}

func listStrings(n *pg.Node) []string {
	var out []string
	if n == nil {
		return nil
	}
	if l := n.GetList(); l != nil {
		for _, it := range l.Items {
			out = append(out, defString(it))
		}
	}
	return out
}

// quoteIdent quotes a name for SQL when it needs it.
func quoteIdent(s string) string {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c == '_' || i > 0 && c >= '0' && c <= '9') {
			return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
		}
	}
	return s
}
