# pgshard — the README's two commands are `make run` and `make test`.
GO      ?= go
BIN     := bin/pgshard
PKGS    := ./...

.PHONY: all build run stop test vet unit fuzz postgres clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/pgshard

# Start two local Postgres shards under ./data, load the sample schema and serve config.yaml in the foreground.
run:
	bash scripts/run-local.sh

# Stop the local shards that `make run` started.
stop:
	bash scripts/stop-local.sh

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

# A short fuzzing pass over every decoder (FUZZTIME=30s by default).
FUZZTIME ?= 30s
fuzz:
	@for t in $$($(GO) test -list 'Fuzz.*' ./codec/ | grep ^Fuzz); do \
	  $(GO) test -run XXX -fuzz "^$$t$$" -fuzztime $(FUZZTIME) ./codec/ || exit 1; done
	$(GO) test -run XXX -fuzz FuzzScramServer -fuzztime $(FUZZTIME) ./auth/

clean:
	rm -rf bin
