#!/usr/bin/env bash
# What `make run` calls: makes sure two local Postgres clusters run (data/shard0 on 127.0.0.1:55432 with database
# app_0, data/shard1 on 127.0.0.1:55433 with app_1; role app / password secret; sample tables accounts and
# branches), builds pgshard and serves it in the foreground. Ctrl-C stops pgshard; the clusters keep running
# (`make stop`, i.e. scripts/stop-local.sh, stops them). Works as root (Postgres then runs as user postgres).
#
#   scripts/run-local.sh                  clusters, build, serve with config.yaml
#   scripts/run-local.sh --clusters-only  just the clusters
#   scripts/run-local.sh --config FILE    serve with FILE ($PGSHARD_CONFIG works too)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

clusters_only=0
config=${PGSHARD_CONFIG:-}
while [[ $# -gt 0 ]]; do
	case "$1" in
	--clusters-only) clusters_only=1 ;;
	--config) config=${2:?--config needs a file}; shift ;;
	--config=*) config=${1#--config=} ;;
	-h | --help) sed -n '2,10p' "$0"; exit 0 ;;
	*) echo "run-local: unknown argument $1" >&2; exit 2 ;;
	esac
	shift
done

PGTEST_BINDIR=$(scripts/ensure-postgres.sh)
export PGTEST_BINDIR

echo "run-local: starting the local clusters (data/shard0 :55432, data/shard1 :55433)" >&2
go run ./internal/pgtest/cmd/pglocal -data data -ports 55432,55433 -user app -password secret -db app

if [[ $clusters_only -eq 1 ]]; then
	echo "run-local: clusters are up; stop them with scripts/stop-local.sh (make stop)" >&2
	exit 0
fi

if [[ -z $config ]]; then
	if [[ -f config.yaml ]]; then
		config=config.yaml
	else
		config=scripts/config.local.yaml
		echo "run-local: no config.yaml in the repo root: using $config" >&2
	fi
fi

echo "run-local: building bin/pgshard" >&2
go build -o bin/pgshard ./cmd/pgshard

cat >&2 <<MSG

connect with: psql "postgres://app:secret@127.0.0.1:6432/app"
stop with:    Ctrl-C stops pgshard; the Postgres clusters keep running; \`make stop\` stops them.
config:       $config

MSG
exec bin/pgshard serve --config "$config"
