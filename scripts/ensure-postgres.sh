#!/usr/bin/env bash
# Makes sure the Postgres server programs (initdb, pg_ctl, postgres) and the clients psql and pgbench are installed,
# installing them from the distribution's packages (Debian/Ubuntu apt) when missing, and prints the directory
# holding initdb on stdout. Everything else goes to stderr. Idempotent; safe to call before every test run.
#
# Looks where internal/pgtest looks: $PGTEST_BINDIR, the PATH's initdb, the newest /usr/lib/postgresql/*/bin.
# Debian's package also creates and starts a "main" cluster on port 5432; it is left alone (we use our own ports).
set -euo pipefail

log() { echo "ensure-postgres: $*" >&2; }

has_server() { [[ -x "$1/initdb" && -x "$1/pg_ctl" && -x "$1/postgres" ]]; }

find_bindir() {
	local p d
	if p=$(command -v initdb 2>/dev/null); then
		for d in "$(dirname "$(readlink -f "$p")")" "$(dirname "$p")"; do
			has_server "$d" && { echo "$d"; return 0; }
		done
	fi
	# Newest major version first.
	for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k5,5 -V -r); do
		has_server "$d" && { echo "$d"; return 0; }
	done
	return 1
}

has_clients() { # psql and pgbench, next to initdb or on PATH
	local tool
	for tool in psql pgbench; do
		[[ -x "$1/$tool" ]] || command -v "$tool" >/dev/null 2>&1 || return 1
	done
}

apt_install() {
	local sudo=()
	if [[ $(id -u) -ne 0 ]]; then
		if command -v sudo >/dev/null 2>&1; then
			sudo=(sudo)
		else
			log "not root and no sudo: install the packages $* yourself"
			exit 1
		fi
	fi
	if ! command -v apt-get >/dev/null 2>&1; then
		log "no apt-get on this machine: install Postgres (server, psql, pgbench) yourself and set PGTEST_BINDIR"
		exit 1
	fi
	log "installing $* with apt-get"
	"${sudo[@]}" apt-get update >&2
	"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y "$@" >&2
}

# An explicit choice is never second-guessed (nor "fixed" by installing packages).
if [[ -n "${PGTEST_BINDIR:-}" ]]; then
	if ! has_server "$PGTEST_BINDIR"; then
		log "PGTEST_BINDIR=$PGTEST_BINDIR does not hold initdb, pg_ctl and postgres"
		exit 1
	fi
	log "using PGTEST_BINDIR=$PGTEST_BINDIR"
	echo "$PGTEST_BINDIR"
	exit 0
fi

if bindir=$(find_bindir); then
	if has_clients "$bindir"; then
		log "found Postgres in $bindir"
		echo "$bindir"
		exit 0
	fi
	log "found the Postgres server in $bindir but not psql/pgbench"
	apt_install postgresql-client postgresql-contrib
else
	log "no Postgres found (no initdb on PATH nor in /usr/lib/postgresql/*/bin)"
	apt_install postgresql postgresql-contrib postgresql-client
fi

if ! bindir=$(find_bindir); then
	log "installed, yet still no initdb in /usr/lib/postgresql/*/bin"
	exit 1
fi
if ! has_clients "$bindir"; then
	log "psql or pgbench still missing next to $bindir and on PATH"
	exit 1
fi
log "Postgres is in $bindir ($("$bindir/postgres" --version))"
echo "$bindir"
