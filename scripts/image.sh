#!/usr/bin/env bash
# Builds pgshard's container image offline (`make image`): a static binary built here, put on an empty base by
# deploy/Dockerfile.binary, with podman or docker, whichever can build (docker needs a running engine).
#   scripts/image.sh [image-name]           build (default pgshard:dev)
#   scripts/image.sh --check [image-name]   build, export the image's filesystem and run `pgshard version` from
#                                           it (machines that may build images but not run containers), remove it
# Exit status 3: neither podman nor a docker engine is available.
set -euo pipefail
cd "$(dirname "$0")/.."

check=false
if [[ "${1:-}" == "--check" ]]; then
	check=true
	shift
fi
image="${1:-pgshard:dev}"
log() { echo "image: $*" >&2; }

if command -v podman >/dev/null 2>&1; then
	tool=(podman)
	build=(podman build --format docker) # docker format keeps HEALTHCHECK
elif command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
	tool=(docker)
	build=(docker build)
else
	log "neither podman nor a running docker engine: install podman (apt-get install podman) or start docker"
	exit 3
fi

ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
log "building a static binary"
CGO_ENABLED=1 ${GO:-go} build -trimpath -tags netgo,osusergo \
	-ldflags '-s -w -linkmode external -extldflags "-static"' -o "$ctx/pgshard" ./cmd/pgshard
cp deploy/Dockerfile.binary "$ctx/Dockerfile"
mkdir "$ctx/data" # /var/lib/pgshard, owned by pgshard's user, for a volume (the two-phase log)
log "building $image with ${tool[0]}"
"${build[@]}" -t "$image" "$ctx" >&2

if $check; then
	# Run the binary from the image's own filesystem: the image holds a working, static pgshard.
	rm "$ctx/pgshard"
	c=$("${tool[@]}" create "$image")
	"${tool[@]}" export "$c" | tar -x -C "$ctx" pgshard
	"${tool[@]}" rm "$c" >/dev/null 2>&1
	"$ctx/pgshard" version
	"${tool[@]}" rmi "$image" >/dev/null 2>&1 || true # a check leaves no image behind
fi
