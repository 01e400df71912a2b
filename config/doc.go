// Package config owns config.yaml: its schema (the names users, scripts and tests rely on), the defaults,
// and strict validation. Parse walks the YAML node tree itself so that every problem, an unknown key
// included, is reported with its line, and it reports all problems at once rather than the first one.
//
// Passwords never appear in an error message: Server.Raw, the form of a shard URL meant for logs, has its
// password masked.
package config
