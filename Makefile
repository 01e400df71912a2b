# pgshard — the README's two commands are `make run` and `make test`.
GO      ?= go
BIN     := bin/pgshard
PKGS    := ./...

.PHONY: all build run stop test vet unit fuzz postgres clean image

all: build

build:
	$(GO) build -o $(BIN) ./cmd/pgshard

# Start two local Postgres shards under ./data, load the sample schema and serve config.yaml in the foreground.
run:
	bash scripts/run-local.sh

# Stop the local shards that `make run` started.
stop:
	bash scripts/stop-local.sh

# The container image (IMAGE=pgshard:dev), offline: a static binary built here on an empty base, with podman or
# docker. `docker build .` builds the same image from source where a registry is reachable (Dockerfile).
IMAGE ?= pgshard:dev
image:
	bash scripts/image.sh $(IMAGE)

# Install Postgres from the distribution's packages when it is missing.
postgres:
	bash scripts/ensure-postgres.sh >/dev/null

vet:
	$(GO) vet $(PKGS)
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

# The whole suite: unit tests, fuzz seed corpora, and the integration tests that start real Postgres clusters
# and the real pgshard binary.
test: postgres vet
	$(GO) test -count=1 -timeout 30m $(PKGS)

unit:
	$(GO) test -count=1 -short $(PKGS)

# A short fuzzing pass over every decoder (FUZZTIME=30s by default), then the wire fuzzer against the running binary
# (internal/e2e TestWireFuzz, WIREFUZZTIME=5m by default; `make test` runs it for 30s).
FUZZTIME ?= 30s
WIREFUZZTIME ?= 5m
fuzz:
	@for t in $$($(GO) test -list 'Fuzz.*' ./codec/ | grep ^Fuzz); do \
	  $(GO) test -run XXX -fuzz "^$$t$$" -fuzztime $(FUZZTIME) ./codec/ || exit 1; done
	$(GO) test -run XXX -fuzz FuzzScramServer -fuzztime $(FUZZTIME) ./auth/
	@for t in $$($(GO) test -list 'Fuzz.*' ./route/lex/ | grep ^Fuzz); do \
	  $(GO) test -run XXX -fuzz "^$$t$$" -fuzztime $(FUZZTIME) ./route/lex/ || exit 1; done
	PGSHARD_WIREFUZZ_TIME=$(WIREFUZZTIME) $(GO) test -count=1 -timeout 60m -run '^TestWireFuzz$$' -v ./internal/e2e/

# Mixed traffic through pgshard over two shards for SOAK (30m by default): pgbench TPC-B with two-phase commit,
# cross-shard reads, COPY, reconnect storms and cancels; fails on a growth trend of pgshard's RSS, goroutines or
# descriptors, or on an unexpected client error (internal/e2e TestSoak). Not part of `make test`.
SOAK ?= 30m
.PHONY: soak
soak: postgres
	PGSHARD_SOAK=$(SOAK) $(GO) test -count=1 -timeout 0 -run '^TestSoak$$' -v ./internal/e2e/

clean:
	rm -rf bin

# The compatibility suite (compat/): PostgreSQL's own regression tests (pg_regress, parallel_schedule) and lib/pq's
# own test suite, each directly and through pgshard in session and transaction mode, and Postgres's isolation
# tests (pg_isolation_regress) directly and in session mode. Fails when a test that passes directly fails through
# pgshard and is not listed in compat/expected-failures*.txt; prints the output directory with each run's diffs.
.PHONY: compat
compat: postgres
	PGSHARD_COMPAT=1 $(GO) test -count=1 -timeout 30m -run 'TestRegress|TestLibPQ|TestIsolation' -v ./compat/

# ---- Benchmarks (bench/README.md says what each figure means) ----
# pgbench through pgshard, PgBouncer and directly against Postgres, alternating, printed as Markdown tables; raw
# results as JSON under bench/results/. Knobs: SCENARIO (default | foundation | select | all | names, comma-
# separated), DURATION (per run, e.g. 10s), REPS, WARMUP, CLIENTS (e.g. 16,64), TARGETS (direct,pgbouncer,pgshard),
# SCALE, POOL, LONG=1 (adds 1000 clients), UPDATE_README=1 (writes the tables into bench/README.md), BENCH_ARGS.
SCENARIO ?= default
.PHONY: bench bench-micro
bench: postgres
	@bash bench/ensure-pgbouncer.sh >/dev/null
	$(GO) run ./bench/cmd/pgbench-compare -scenarios '$(SCENARIO)' \
	  $(if $(DURATION),-duration $(DURATION)) $(if $(REPS),-reps $(REPS)) $(if $(WARMUP),-warmup $(WARMUP)) \
	  $(if $(CLIENTS),-clients $(CLIENTS)) $(if $(TARGETS),-targets $(TARGETS)) $(if $(SCALE),-scale $(SCALE)) \
	  $(if $(POOL),-pool $(POOL)) $(if $(filter 1 yes true,$(LONG)),-long) \
	  $(if $(filter 1 yes true,$(UPDATE_README)),-readme bench/README.md) $(BENCH_ARGS)

# Go micro-benchmarks (codec, route, merge, pool, auth) compared with benchstat against bench/micro/baseline.txt.
# Knobs: BENCH, BENCH_PKGS, BENCH_COUNT, BENCH_TIME, SAVE=1 (new baseline).
bench-micro:
	GO=$(GO) bash bench/micro.sh

# Cross-shard reads and sharded COPY through pgshard vs one unsharded Postgres with the same rows
# (bench/cmd/merge-bench). Knobs: ROWS (per shard, default 1000000), SHARDS (default 3), REPS, BENCH_ARGS.
.PHONY: bench-merge
bench-merge: postgres build
	$(GO) run ./bench/cmd/merge-bench -pgshard $(BIN) $(if $(ROWS),-rows $(ROWS)) $(if $(SHARDS),-shards $(SHARDS)) \
	  $(if $(REPS),-reps $(REPS)) $(BENCH_ARGS)

# The data copy of `pgshard reshard` with 1, 2 and 4 parallel streams against one `pg_dump | psql` of the same
# table in the same run, and the write pause at the cutover under a light write load (bench/cmd/reshard-bench).
# Knobs: SIZE (heap of the copied table, default 2GB; SIZE=200MB is a quick run), STREAMS (default 1,2,4), REPS
# (default 1), BENCH_ARGS (e.g. -chunk-mb 64, -keep).
.PHONY: bench-reshard
bench-reshard: postgres build
	$(GO) run ./bench/cmd/reshard-bench -pgshard $(BIN) $(if $(SIZE),-size $(SIZE)) $(if $(STREAMS),-streams $(STREAMS)) \
	  $(if $(REPS),-reps $(REPS)) $(BENCH_ARGS)
