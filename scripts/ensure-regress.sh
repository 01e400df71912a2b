#!/usr/bin/env bash
# Makes sure PostgreSQL's own regression tests (src/test/regress) of the installed server version are at hand for
# the compatibility suite (compat/, `make compat`), and prints the directory holding them on stdout:
#
#   <dir>/sql, expected, data, parallel_schedule, resultmap   the tests, as `make installcheck` reads them
#   <dir>/lib/regress.so, refint.so, autoinc.so               the C modules the tests load (--dlpath)
#   <dir>/isolation/specs, expected, isolation_schedule       the isolation tests (src/test/isolation)
#
# The tests come from Debian's source package of the installed server (postgresql-<major>=<installed version>,
# or the newest <major>.x when that exact version is gone from the archive); the modules are built with pgxs
# from postgresql-server-dev-<major>. Both are installed or downloaded on first use only, into a cache outside the
# repository: <base>/<version>, base $PGSHARD_REGRESS_CACHE or ~/.cache/pgshard-regress. Nothing is fetched when the
# cache is complete, and nothing is printed but the directory. Errors go to stderr.
set -euo pipefail

log() { echo "ensure-regress: $*" >&2; }
die() { log "$*"; exit 1; }

repo=$(cd "$(dirname "$0")/.." && pwd)
bindir=$(bash "$repo/scripts/ensure-postgres.sh" 2>/dev/null) || die "no Postgres: run scripts/ensure-postgres.sh"
major=$(basename "$(dirname "$bindir")")
[[ $major =~ ^[0-9]+$ ]] || die "cannot tell the Postgres major version from $bindir (expected /usr/lib/postgresql/<major>/bin)"
pkg=postgresql-$major
version=$(dpkg-query -W -f '${Version}' "$pkg" 2>/dev/null) || die "package $pkg is not installed (dpkg-query)"

cache=${PGSHARD_REGRESS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pgshard-regress}/$version
if [[ -f $cache/.complete-with-isolation ]]; then
	echo "$cache"
	exit 0
fi

sudo=()
if [[ $(id -u) -ne 0 ]]; then
	command -v sudo >/dev/null 2>&1 || die "not root and no sudo: cannot install packages"
	sudo=(sudo)
fi
command -v apt-get >/dev/null 2>&1 || die "no apt-get on this machine: the regression tests come from Debian's source package"

# apt-get install's chatter goes to a log that is shown only when it fails.
apt_install() { "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >>"$work/apt.log" 2>&1; }

apt_updated=
apt_update() {
	[[ -n $apt_updated ]] && return 0
	"${sudo[@]}" apt-get update -qq >&2 || die "apt-get update failed"
	apt_updated=1
}

# deb-src lines for the same archives as the machine's debian.sources, so that `apt-get source` finds the package.
srcfile=/etc/apt/sources.list.d/pgshard-deb-src.sources
if ! grep -rqs '^Types:.*deb-src\|^deb-src ' /etc/apt/sources.list /etc/apt/sources.list.d/; then
	codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
	[[ -n $codename ]] || die "no VERSION_CODENAME in /etc/os-release: add deb-src lines for $pkg to apt's sources yourself"
	log "adding the Debian source archives ($srcfile)"
	"${sudo[@]}" tee "$srcfile" >/dev/null <<-EOF
		Types: deb-src
		URIs: http://deb.debian.org/debian
		Suites: $codename $codename-updates
		Components: main
		Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

		Types: deb-src
		URIs: http://deb.debian.org/debian-security
		Suites: $codename-security
		Components: main
		Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
	EOF
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# apt downloads as the user _apt when it can write the directory (else it warns and downloads as root).
id _apt >/dev/null 2>&1 && [[ $(id -u) -eq 0 ]] && chown _apt "$work"

apt_update
log "downloading the source package $pkg=$version"
if ! (cd "$work" && apt-get source -qq --download-only "$pkg=$version" >&2); then
	log "$pkg=$version is not in the archive; taking the newest $pkg (the tests of a minor release hardly differ)"
	(cd "$work" && apt-get source -qq --download-only "$pkg" >&2) || die "apt-get source $pkg failed"
fi
orig=$(ls "$work"/"${pkg}"_*.orig.tar.* 2>/dev/null | head -n1)
[[ -n $orig ]] || die "no .orig tarball downloaded for $pkg"
# Debian's patches of postgresql-15 do not touch src/test/regress nor contrib/spi: the upstream tarball is enough.
tar -xf "$orig" -C "$work" --wildcards '*/src/test/regress/*' '*/src/test/isolation/*' '*/contrib/spi/*' ||
	die "extracting $orig failed"
src=$(ls -d "$work"/postgresql-*/ | head -n1)

# pgxs and the server headers, of the installed version when the archive still has it.
pgconfig=/usr/lib/postgresql/$major/bin/pg_config
if [[ ! -x $pgconfig ]] || ! "$pgconfig" --pgxs >/dev/null 2>&1 || [[ ! -f $("$pgconfig" --includedir-server)/postgres.h ]]; then
	log "installing postgresql-server-dev-$major (headers and pgxs, to build regress.so)"
	if ! apt_install "postgresql-server-dev-$major=$version" && ! apt_install "postgresql-server-dev-$major"; then
		cat "$work/apt.log" >&2
		die "installing postgresql-server-dev-$major failed"
	fi
fi
command -v make >/dev/null 2>&1 || die "make is needed to build regress.so with pgxs"

# What `make check` builds in src/test/regress (GNUmakefile): regress.so, and refint.so and autoinc.so from
# contrib/spi (with -DREFINT_VERBOSE, which the triggers test expects).
build() { # dir, modules, extra cppflags
	make -s -C "$1" -f - USE_PGXS=1 PG_CONFIG="$pgconfig" >&2 <<-EOF || die "building $2 in $1 failed"
		MODULES = $2
		PG_CPPFLAGS = $3
		PGXS := \$(shell \$(PG_CONFIG) --pgxs)
		include \$(PGXS)
	EOF
}
build "$src/src/test/regress" regress ""
build "$src/contrib/spi" "refint autoinc" -DREFINT_VERBOSE

rm -rf "$cache"
mkdir -p "$cache/lib"
(cd "$src/src/test/regress" && cp -r sql expected data parallel_schedule resultmap "$cache/")
cp "$src/src/test/regress/regress.so" "$src/contrib/spi/refint.so" "$src/contrib/spi/autoinc.so" "$cache/lib/"
mkdir -p "$cache/isolation"
(cd "$src/src/test/isolation" && cp -r specs expected isolation_schedule "$cache/isolation/")
basename "$src" >"$cache/SOURCE"
touch "$cache/.complete-with-isolation"
log "regression tests of $(basename "$src") ready in $cache"
echo "$cache"
