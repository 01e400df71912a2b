#!/usr/bin/env bash
# Makes sure PgBouncer is installed (Debian's `pgbouncer` package) and prints the path of the pgbouncer binary on
# stdout; everything else goes to stderr. Idempotent.
#
# The bench runs its own PgBouncer instances (own ini, own port, as user postgres) and never uses the system
# service. Installing the package may start that service (on port 6432): when this script installed the package and
# the service now runs, it stops that service, and only it.
set -euo pipefail

log() { echo "ensure-pgbouncer: $*" >&2; }

find_pgbouncer() {
	command -v pgbouncer 2>/dev/null && return 0
	[[ -x /usr/sbin/pgbouncer ]] && { echo /usr/sbin/pgbouncer; return 0; }
	return 1
}

if find_pgbouncer; then
	exit 0
fi

sudo=()
if [[ $(id -u) -ne 0 ]]; then
	if command -v sudo >/dev/null 2>&1; then
		sudo=(sudo)
	else
		log "PgBouncer is not installed and we are not root (no sudo): install Debian's pgbouncer package"
		exit 1
	fi
fi
if ! command -v apt-get >/dev/null 2>&1; then
	log "PgBouncer is not installed and there is no apt-get: install PgBouncer and put it on PATH"
	exit 1
fi

log "installing Debian's pgbouncer package"
export DEBIAN_FRONTEND=noninteractive
if ! "${sudo[@]}" apt-get install -y -q pgbouncer >&2; then
	"${sudo[@]}" apt-get update -q >&2
	"${sudo[@]}" apt-get install -y -q pgbouncer >&2
fi

# The package enables its service; stop it if the install started it (we just installed it: it is ours to stop).
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet pgbouncer 2>/dev/null; then
	log "stopping the pgbouncer system service the package install started"
	"${sudo[@]}" systemctl stop pgbouncer >&2 || true
elif command -v service >/dev/null 2>&1 && service pgbouncer status >/dev/null 2>&1; then
	log "stopping the pgbouncer system service the package install started"
	"${sudo[@]}" service pgbouncer stop >&2 || true
fi

find_pgbouncer || { log "pgbouncer still not found after the install"; exit 1; }
