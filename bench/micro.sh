#!/usr/bin/env bash
# `make bench-micro`: runs the Go micro-benchmarks of the hot-path packages and compares them with benchstat against
# the saved baseline bench/micro/baseline.txt.
#
# Knobs (environment): BENCH_PKGS (default: codec, route, merge, pool, auth; those that exist), BENCH (the -bench
# regexp, default .), BENCH_COUNT (runs per benchmark, default 6: benchstat needs several to give a confidence
# interval), BENCH_TIME (-benchtime, default 1s), SAVE=1 (make this run the new baseline), GO (default go).
#
# The baseline is only comparable with runs on the same kind of machine (a 2-core box for the committed one):
# after a change of machine, run with SAVE=1 on the old commit first.
set -euo pipefail
cd "$(dirname "$0")/.."

GO=${GO:-go}
PKGS=${BENCH_PKGS:-"./codec/... ./route/... ./merge/... ./pool/... ./auth/..."}
COUNT=${BENCH_COUNT:-6}
BENCHTIME=${BENCH_TIME:-1s}
FILTER=${BENCH:-.}
BASELINE=bench/micro/baseline.txt
BENCHSTAT_VERSION=v0.0.0-20260908200009-22c9c6c9d4da # golang.org/x/perf

pkgs=()
for p in $PKGS; do
	d=${p%/...}
	[[ -d $d ]] && pkgs+=("$p")
done
if [[ ${#pkgs[@]} -eq 0 ]]; then
	echo "bench-micro: none of $PKGS exists" >&2
	exit 1
fi

mkdir -p bench/results bench/micro
out=bench/results/micro-$(date -u +%Y%m%dT%H%M%SZ).txt
echo "bench-micro: go test -run '^\$' -bench '$FILTER' -benchmem -count $COUNT -benchtime $BENCHTIME ${pkgs[*]}" >&2
"$GO" test -run '^$' -bench "$FILTER" -benchmem -count "$COUNT" -benchtime "$BENCHTIME" "${pkgs[@]}" | tee "$out"
echo "bench-micro: results in $out" >&2

if [[ ${SAVE:-} == 1 || ! -f $BASELINE ]]; then
	cp "$out" "$BASELINE"
	echo "bench-micro: saved as the new baseline $BASELINE (nothing to compare with)" >&2
	exit 0
fi

benchstat=$(command -v benchstat || true)
if [[ -z $benchstat ]]; then
	gobin=$("$GO" env GOBIN)
	[[ -n $gobin ]] || gobin=$("$GO" env GOPATH)/bin
	if [[ ! -x $gobin/benchstat ]]; then
		echo "bench-micro: installing benchstat (golang.org/x/perf/cmd/benchstat@$BENCHSTAT_VERSION)" >&2
		(cd / && GOFLAGS= "$GO" install "golang.org/x/perf/cmd/benchstat@$BENCHSTAT_VERSION") >&2
	fi
	benchstat=$gobin/benchstat
fi
echo >&2
echo "bench-micro: benchstat $BASELINE (old) $out (new)" >&2
"$benchstat" "old=$BASELINE" "new=$out"
