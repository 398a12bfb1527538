# Constellation — developer entry points. `make run` starts a one-node cluster on loopback with
# the local Docker and applies specs/hello; `make test` runs every test CI runs.
SHELL := /bin/bash
GO ?= go
GOTESTFLAGS ?=
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X github.com/constellation-sh/constellation/pkg/agent.Version=$(VERSION) -X github.com/constellation-sh/constellation/pkg/ctl.Version=$(VERSION)

.PHONY: all build run stop test test-unit test-deps lint bench chaos e2e fuzz clean

all: build

build: ## Build the agent and ctl into bin/.
	@mkdir -p bin
	$(GO) build -ldflags '$(LDFLAGS)' -o bin/constellation-agent ./cmd/constellation-agent
	$(GO) build -ldflags '$(LDFLAGS)' -o bin/ctl ./cmd/ctl

run: build ## Start a one-node cluster on loopback, apply specs/hello, show its status.
	hack/run.sh

stop: ## Stop what `make run` started (containers it created are removed).
	hack/run.sh stop

test-deps: ## Install or start what the tests need (dockerd, Traefik, test images).
	hack/ensure-docker.sh
	hack/traefik.sh >/dev/null
	hack/build-test-images.sh

test: test-deps ## Every test CI runs, under the race detector.
	$(GO) vet ./...
	$(GO) test -race -timeout 25m $(GOTESTFLAGS) ./...

lint: ## gofmt and go vet.
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

fuzz: ## Run each fuzz target for a while (FUZZTIME, default 30s).
	$(GO) test -run XXX -fuzz FuzzDecodeValidate -fuzztime $${FUZZTIME:-30s} ./api/v1/

bench: build test-deps ## Benchmarks that print figures (see docs/performance.md).
	$(GO) test -run XXX -bench . -benchtime 1x ./pkg/traefik/

chaos: build test-deps ## Long fault-injection runs.
	@echo "no chaos suites yet"

e2e: build test-deps ## End-to-end suite in docker-in-docker.
	@echo "no e2e suite yet"

clean:
	rm -rf bin _data _out
