# brokerkit — the targets people expect. `make help` lists them.
GO        ?= go
PKGS      ?= ./...
FUZZTIME  ?= 30s
BENCHTIME ?= 1s
BENCHCOUNT ?= 5
# BENCH narrows `make bench` to the benchmarks matching it (go test -bench), e.g. BENCH='Ping|PingFloor'.
BENCH     ?= .
# The quote stream benchmarks (bench/quotes_test.go) take ~40 s a pass: they run in the first QUOTECOUNT passes
# only, which keeps `make bench` within ~10 minutes (QUOTECOUNT=0 leaves them out).
QUOTECOUNT ?= 2
# BUSY=1 runs `make bench` beside one unrelated process spinning a core (issue 18: the targets apply to that run).
BUSY      ?=
BENCHMODE := $(if $(filter 1,$(BUSY)),busy,idle)
SOAK      ?= 30s
BIN       := bin/brokerkit
STATICCHECK_VERSION ?= v0.8.2
# The Python that has pytest and pytest-asyncio (Debian's /usr/bin/python3 after .ci/run installs them).
PYTHON    ?= $(shell for p in python3 /usr/bin/python3; do $$p -c 'import pytest, pytest_asyncio' 2>/dev/null && { echo $$p; break; }; done)

.PHONY: help build demo test test-go mutants test-python test-node test-tws-python vet lint bench profile bench-python bench-all fuzz proto soak gateway clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

build: ## build bin/brokerkit
	@echo "==> building $(BIN) (the first build downloads modules: about a minute)" >&2
	$(GO) build -o $(BIN) ./cmd/brokerkit

demo: build ## run the main job against the embedded fake IB Gateway
	$(BIN) demo

gateway: build ## serve the fake IB Gateway on 127.0.0.1:4002 until Ctrl-C
	$(BIN) gateway --listen 127.0.0.1:4002

test: test-go test-python test-node test-tws-python ## every test, race detector on (what CI runs)

test-go:
	@echo "==> go test -race ./... (a few minutes; the first run also downloads modules and builds)" >&2
	$(GO) test -race -count=1 -timeout 15m $(PKGS)
	@# scmhub/ibapi v0.10.47 races on its own session teardown, so the tests that drive it
	@# directly against the fake gateway are built without -race (//go:build !race); run them too.
	$(GO) test -count=1 -timeout 5m ./fakes/
	$(GO) test -count=1 -timeout 5m -run TestRequestFramesMatchScmhub ./adapters/ibkr/
	$(GO) test -count=1 -timeout 5m -run TestOrdersPropertyInProcess ./robust/

test-python: build ## pytest of the Python package clients/python against the fake gateway (needs pytest, pytest-asyncio)
	@test -n "$(PYTHON)" || { echo "test-python: no python3 with pytest and pytest-asyncio (Debian: apt-get install python3-pytest python3-pytest-asyncio)"; exit 1; }
	BROKERKIT=$(CURDIR)/$(BIN) $(PYTHON) -m pytest -q -p no:cacheprovider clients/python/tests

test-node: build ## the independent @stoqey/ib (Node.js) TWS client against the fake gateway
	examples/node/run.sh $(BIN)

test-tws-python: build ## a standard-library Python TWS client does a real client's startup against the fake gateway
	python3 examples/twscheck/startup.py --brokerkit $(BIN)

mutants: ## the kit's mutation suite: every broken Broker of conformance/CONTRACT.md must fail (also part of test-go)
	$(GO) test -race -count=1 -run '^(TestMutants|TestMutantTable)$$' -v ./conformance/

vet: ## go vet
	$(GO) vet $(PKGS)

lint: vet ## go vet and staticcheck (what CI runs)
	@echo "==> staticcheck $(STATICCHECK_VERSION) (the first run downloads and builds it: about 2 minutes)" >&2
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) $(PKGS)

bench: ## cross-transport benchmarks in BENCHCOUNT passes, their target table and plots (BUSY=1: beside one spinning process; 5–10 minutes)
	@mkdir -p bin
	$(GO) test -c -o bin/bench.test ./bench/
	@# BENCHCOUNT passes of the whole suite, not -count (which repeats each benchmark back to back):
	@# the i-th figures of a benchmark and of its floor then come from the same pass, seconds apart.
	@rm -f bin/bench-$(BENCHMODE).txt
	@for i in $$(seq $(BENCHCOUNT)); do \
		echo "==> bench pass $$i of $(BENCHCOUNT) ($(BENCHMODE))" >&2; \
		BROKERKIT_BENCH_BUSY=$(if $(filter 1,$(BUSY)),1,) bin/bench.test -test.run='^$$' -test.bench='$(BENCH)' -test.benchmem \
			-test.benchtime=$(BENCHTIME) -test.count=1 -test.timeout=60m -test.skip='^BenchmarkQuote' >> bin/bench-$(BENCHMODE).txt \
			|| { cat bin/bench-$(BENCHMODE).txt; exit 1; }; \
		if [ $$i -le $(QUOTECOUNT) ]; then \
			BROKERKIT_BENCH_BUSY=$(if $(filter 1,$(BUSY)),1,) bin/bench.test -test.run='^$$' -test.bench='^BenchmarkQuote' \
				-test.benchtime=$(BENCHTIME) -test.count=1 -test.timeout=20m >> bin/bench-$(BENCHMODE).txt \
				|| { cat bin/bench-$(BENCHMODE).txt; exit 1; }; \
		fi; \
	done
	cat bin/bench-$(BENCHMODE).txt
	$(GO) run ./scripts/benchtable -json bin/bench.json $(wildcard bin/bench-idle.txt bin/bench-busy.txt) bin/bench-$(BENCHMODE).txt > bin/bench.md
	cat bin/bench.md
	$(if $(filter .,$(BENCH)),cd scripts/benchplot && $(GO) run . -in ../../bin/bench.json -table ../../bin/bench.md -out ../../bin/bench.html,@echo "==> BENCH=$(BENCH) narrowed the run: no plots" >&2)
	@echo "==> report: bin/bench.html (plots and tables); issue 18's targets, also in bin/bench-targets.md:" >&2
	@$(GO) run ./scripts/benchtable -targets-only $(wildcard bin/bench-idle.txt bin/bench-busy.txt) bin/bench-$(BENCHMODE).txt | tee bin/bench-targets.md

profile: ## CPU profiles and execution traces of one stdiojson and one goplugin Ping, host and worker, in bin/profile/ with a summary (BUSY=1 as bench; about a minute)
	BUSY=$(BUSY) GO=$(GO) ./scripts/profile.sh

bench-python: build ## the Python client's call latency and 64-task throughput next to a plan-style locked client
	python3 clients/python/bench.py --brokerkit $(BIN)

bench-all: ## every package's own benchmarks, one run each
	$(GO) test -run='^$$' -bench=. -benchmem -benchtime=$(BENCHTIME) $(PKGS)

soak: ## calls through robust over every transport under chaos for SOAK (e.g. make soak SOAK=5m)
	$(GO) test -run=TestSoak -count=1 -timeout=0 -v ./soak/ -args -soak=$(SOAK)

fuzz: ## run every fuzz target for FUZZTIME each (10s or more: Go fails shorter runs whose baseline outlasts them)
	./scripts/fuzz-all.sh $(FUZZTIME)

proto: ## regenerate the protobuf code: go-plugin gRPC and the fake gateway's TWS messages (needs protoc)
	./scripts/gen-proto.sh

clean:
	rm -rf bin
