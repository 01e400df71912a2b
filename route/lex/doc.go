// Package lex is pgshard's SQL lexer: the cheap first look at every query the proxy sees, before (and usually
// instead of) a pg_query parse.
//
// It owns four things, all in pure Go with no allocation on the common path:
//
//   - Lexer: Postgres's lexical rules (src/backend/parser/scan.l, Postgres 17) as spans over the input: tokens are
//     offsets, never copies. Postgres's default standard_conforming_strings=on is assumed: in '...' a backslash is
//     an ordinary character; only E'...' strings take backslash escapes.
//   - Split: the top-level statements of a multi-statement simple Query.
//   - Normalize: the plan-cache key. Comments dropped, whitespace canonical, keywords and unquoted identifiers
//     folded, literal constants replaced by slot markers, pgshard hint comments read; Fingerprint is go-farm's
//     Fingerprint64 of the normalized text.
//   - Classify: what a statement does to session state (BEGIN/COMMIT, SET, PREPARE, LISTEN, advisory locks, ...),
//     which transaction pooling must track.
//
// It is a package of its own, apart from the planner that links pg_query (cgo), so that the proxy's hot path and
// its fuzz targets link only the standard library and go-farm.
package lex
