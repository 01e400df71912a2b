#!/usr/bin/env bash
# What `make stop` calls: stops the local clusters that scripts/run-local.sh started (data/shard*), with
# `pg_ctl stop -m fast`. Their data stays; `rm -rf data` removes it. Stops nothing else.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

shopt -s nullglob
datadirs=(data/shard*/data)
if [[ ${#datadirs[@]} -eq 0 ]]; then
	echo "stop-local: no local clusters in data/" >&2
	exit 0
fi

# Find pg_ctl without installing anything: nothing can be running if Postgres is not installed.
bindir=${PGTEST_BINDIR:-}
if [[ -z $bindir ]]; then
	if p=$(command -v pg_ctl 2>/dev/null); then
		bindir=$(dirname "$(readlink -f "$p")")
	else
		bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k5,5 -V -r | head -n1 || true)
	fi
fi
if [[ -z $bindir || ! -x $bindir/pg_ctl ]]; then
	echo "stop-local: pg_ctl not found; is Postgres installed?" >&2
	exit 1
fi

as_postgres=()
if [[ $(id -u) -eq 0 ]]; then
	as_postgres=(runuser -u postgres --)
fi

status=0
for d in "${datadirs[@]}"; do
	d=$(cd "$d" && pwd)
	if (cd / && "${as_postgres[@]}" "$bindir/pg_ctl" status -D "$d" >/dev/null 2>&1); then
		echo "stop-local: stopping the cluster in $d" >&2
		(cd / && "${as_postgres[@]}" "$bindir/pg_ctl" stop -D "$d" -m fast -w -t 60 >&2) || status=1
	else
		echo "stop-local: $d is not running" >&2
	fi
done
exit $status
