# crowsnest — one entry point for building, running and testing.
# `make run` and `make test` are the two commands the README promises.

SHELL        := /bin/bash
# Every module of the workspace (go.work).
MODULES      := $(shell go list -m -f '{{.Dir}}' | sed "s|^$(CURDIR)/||")
PKGS         := $(MODULES:%=./%/...)
BIN          := bin
VERSION      ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS      := -s -w -X main.version=$(VERSION)
GOFLAGS_BUILD:= -trimpath
STATICCHECK  := honnef.co/go/tools/cmd/staticcheck@v0.8.2
DATA_DIR     ?= .data
RUN_FLAGS    ?=

.PHONY: all build run test test-unit bench lint fmt generate check-generated clean help helm-lint sbom vulncheck

all: build

help: ## list targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

build: ## build every binary into ./bin (crowsnest and the lean per-stage binaries)
	@mkdir -p $(BIN)
	CGO_ENABLED=0 go build $(GOFLAGS_BUILD) -ldflags '$(LDFLAGS)' -o $(BIN)/crowsnest ./cli
	CGO_ENABLED=0 go build $(GOFLAGS_BUILD) -ldflags '$(LDFLAGS)' -o $(BIN)/crowsnest-collector ./collectors/cmd/crowsnest-collector
	CGO_ENABLED=0 go build $(GOFLAGS_BUILD) -ldflags '$(LDFLAGS)' -o $(BIN)/crowsnest-processor ./processor/cmd/crowsnest-processor
	CGO_ENABLED=0 go build $(GOFLAGS_BUILD) -ldflags '$(LDFLAGS)' -o $(BIN)/crowsnest-sink ./sinks/cmd/crowsnest-sink

run: build ## the all-in-one on embedded defaults: events flow within a minute, no server needed
	./$(BIN)/crowsnest run --data-dir $(DATA_DIR) $(RUN_FLAGS)

test: ## what CI runs: generated files fresh, vet, then unit + integration tests against real servers
	bash scripts/test.sh

test-unit: ## Go tests only, no external services (integration tests skip with a message)
	go test -race -count=1 $(PKGS)

bench: ## every stage's benchmarks; see docs/BENCHMARKS.md for how figures are reported
	bash scripts/bench.sh

.PHONY: bench-peer
bench-peer: ## Kubernetes audit normalization vs Benthos v4 on the same file, events per CPU-second (EVENTS, RUNS, INPUT)
	bash scripts/bench-peer.sh

.PHONY: bench-e2e
bench-e2e: ## end to end: collector → nats-server → processor → file/ClickHouse/Elasticsearch sinks and Benthos, ~10-15 min (STEPS, STEP, LATENCY, CEILING, PEER)
	bash scripts/bench-e2e.sh

.PHONY: bench-procwatch
bench-procwatch: ## procwatch sidecar cost: the real collector binary's CPU and RSS idle and at ~1,000 execs/s (PHASE, EXECS)
	cd collectors && CROWSNEST_BENCH_SIDECAR=1 CROWSNEST_BENCH_PHASE=$(or $(PHASE),20s) CROWSNEST_BENCH_EXECS=$(or $(EXECS),1000) \
		go test -run '^$$' -bench SidecarCost -benchtime 1x ./procwatch/

lint: ## go vet + staticcheck on every module
	go vet $(PKGS)
	go run $(STATICCHECK) $(PKGS)

fmt: ## gofmt every module
	gofmt -s -w $(MODULES)

generate: ## regenerate Go types, ClickHouse DDL, Elasticsearch templates and docs/fields.md from schemas/fields.yml
	cd schemas && go generate ./...

check-generated: ## fail when a generated file is stale
	go test -count=1 -run TestGeneratedFilesAreFresh ./schemas/

chaos: ## the fault suite (SIGKILL the run and each stage, NATS away): real processes, every event id checked; see docs/RELIABILITY.md
	cd e2e && CROWSNEST_CHAOS=1 go test -count=1 -v -timeout 90m ./chaos/

.PHONY: chaos

soak: ## issue #9 scenario 9: the whole pipeline at half the sustained rate for 2 h; RSS, goroutines, stalls, every id (DURATION, RATE, INTERVAL)
	cd e2e && CROWSNEST_CHAOS_SOAK=1 CROWSNEST_SOAK_DURATION=$(or $(DURATION),2h) CROWSNEST_SOAK_RATE=$(or $(RATE),375) \
		CROWSNEST_SOAK_INTERVAL=$(or $(INTERVAL),1m) go test -count=1 -v -timeout 0 -run '^TestSoak$$' ./chaos/

.PHONY: soak

sbom: ## a CycloneDX SBOM per image from the Go module graph into bin/sbom (SBOM_DIR), checked against the Dockerfiles
	bash scripts/sbom.sh

vulncheck: ## govulncheck over every module against a local vulnerability DB built from golang.org/x/vulndb
	bash scripts/govulncheck.sh

helm-lint: ## render deploy/helm/crowsnest in process (Helm's library) and check every manifest, value set and schema rejection
	cd deploy/helm/chartcheck && go vet ./... && go test -count=1 ./...

clean: ## remove binaries and the default run data dir
	rm -rf $(BIN) $(DATA_DIR)

-include deploy/dev/services.mk
