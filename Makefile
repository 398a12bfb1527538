# Constellation — developer entry points. `make run` starts a one-node cluster on loopback with
# the local Docker and applies specs/hello; `make test` runs every test CI runs.
SHELL := /bin/bash
GO ?= go
GOTESTFLAGS ?=
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X github.com/constellation-sh/constellation/pkg/agent.Version=$(VERSION) -X github.com/constellation-sh/constellation/pkg/ctl.Version=$(VERSION)

.PHONY: all build install run stop test test-unit test-deps lint bench chaos e2e fuzz clean

all: build

build: ## Build the agent and ctl into bin/.
	@mkdir -p bin
	$(GO) build -ldflags '$(LDFLAGS)' -o bin/constellation-agent ./cmd/constellation-agent
	$(GO) build -ldflags '$(LDFLAGS)' -o bin/ctl ./cmd/ctl

install: build ## Install the agent, ctl and the systemd unit (hack/install.sh; DESTDIR, PREFIX, INSTALL_FLAGS; docs/install.md).
	hack/install.sh --prefix $${PREFIX:-/usr/local} $(INSTALL_FLAGS)

run: build ## Start a one-node cluster on loopback, apply specs/hello, show its status.
	hack/run.sh

stop: ## Stop what `make run` started (containers it created are removed).
	hack/run.sh stop

test-deps: ## Install or start what the tests need (dockerd, Traefik, redis-server/redis-sentinel, test images).
	hack/ensure-docker.sh
	hack/redis.sh
	hack/traefik.sh >/dev/null
	hack/chromium.sh >/dev/null
	hack/build-test-images.sh

test: test-deps lint ## Every test CI runs: gofmt and vet, unit and integration under -race, then the short e2e suite.
	CONSTELLATION_TEST_STRICT=1 $(GO) test -race -timeout 25m $(GOTESTFLAGS) ./...
	hack/e2e.sh short

lint: ## gofmt and go vet.
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

fuzz: ## Run every fuzz target for a while (FUZZTIME, default 30s each).
	@set -e; for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz'); do \
	    echo "== $$pkg $$f"; $(GO) test -run XXX -fuzz "^$$f$$" -fuzztime $${FUZZTIME:-30s} $$pkg; \
	  done; done

bench: build test-deps ## Benchmarks that print figures and ratios (see docs/performance.md).
	hack/bench-traefik
	$(GO) run ./hack/bench-store
	$(GO) run ./hack/bench-apply -replicas 1,10,50 -update-replicas 10
	$(GO) run ./hack/bench-failover -agent bin/constellation-agent -trials 20
	$(GO) test -run XXX -bench . -benchtime 2000x ./pkg/dns/cloudflare/
	$(GO) test -run XXX -bench . ./controllers/dns/ ./controllers/scheduler/ ./pkg/gossip/
	$(GO) run ./hack/bench-controllers
	$(GO) run ./hack/bench-mesh
	$(GO) run ./hack/bench-proxy
	$(GO) run ./hack/bench-replicaset -trials 10 -down-after 3s
	hack/bench-failover-e2e

chaos: build test-deps ## Long fault-injection runs: hundreds of linearizability histories, process crashes, CPU stress, every e2e scenario repeated.
	$(GO) test -race -timeout 120m -run 'TestLinearizable|TestProcessCrash' ./pkg/store/raftstore/ -args -chaos
	$(GO) test -race -timeout 20m -run TestNoFalseDeathUnderCPUStress ./pkg/gossip/ -args -gossip.stress=10s -gossip.stress.procs=-1
	hack/e2e.sh chaos

e2e: build test-deps ## Every end-to-end scenario once, in docker-in-docker.
	hack/e2e.sh all

clean:
	rm -rf bin _data _out

chaos-script: build ## hack/chaos.sh against a one-node agent on the local dockerd, two kill-replica rounds (docs/chaos.md).
	hack/build-test-images.sh >/dev/null
	$(GO) test -count=1 -timeout 5m -run TestChaosScript -v ./test/chaos/

e2e-systemd: build ## hack/install.sh under Debian's systemd as PID 1 in a node container: READY, kill -9 and watchdog restarts (docs/install.md).
	hack/e2e-systemd.sh

.PHONY: chaos-script e2e-systemd
