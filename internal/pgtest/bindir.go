package pgtest

import "github.com/pgshard/pgshard/internal/pgbin"

// BinDir finds the directory holding the Postgres server programs (pgbin.Dir).
func BinDir() (string, error) { return pgbin.Dir() }
