package shard

import "strings"

// FoldName reads one configured identifier: "Quoted" is kept as written (quotes removed, "" undoubled),
// anything else is lower-cased (ASCII letters, as Postgres folds).
func FoldName(s string) string {
	s = strings.TrimSpace(s)
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		return strings.ReplaceAll(s[1:len(s)-1], `""`, `"`)
	}
	b := []byte(s)
	for i, c := range b {
		if c-'A' < 26 {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// SplitName splits a configured table name into schema and table at the first dot outside double quotes,
// each folded by FoldName; schema is "" for an unqualified name.
func SplitName(s string) (schema, table string) {
	q := false
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '"':
			q = !q
		case '.':
			if !q {
				return FoldName(s[:i]), FoldName(s[i+1:])
			}
		}
	}
	return "", FoldName(s)
}
