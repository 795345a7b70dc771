# brokerkit — the targets people expect. `make help` lists them.
GO        ?= go
PKGS      ?= ./...
FUZZTIME  ?= 30s
BENCHTIME ?= 1s
BENCHCOUNT ?= 3
SOAK      ?= 30s
BIN       := bin/brokerkit
STATICCHECK_VERSION ?= v0.8.2

.PHONY: help build demo test test-go mutants test-python test-node vet lint bench bench-all fuzz proto soak gateway clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

build: ## build bin/brokerkit
	$(GO) build -o $(BIN) ./cmd/brokerkit

demo: ## run the main job against the embedded fake IB Gateway
	$(GO) run ./cmd/brokerkit demo

gateway: ## serve the fake IB Gateway on 127.0.0.1:4002 until Ctrl-C
	$(GO) run ./cmd/brokerkit gateway --listen 127.0.0.1:4002

test: test-go test-python test-node ## every test, race detector on (what CI runs)

test-go:
	$(GO) test -race -count=1 -timeout 15m $(PKGS)
	@# scmhub/ibapi v0.10.47 races on its own session teardown, so the tests that drive it
	@# directly against the fake gateway are built without -race (//go:build !race); run them too.
	$(GO) test -count=1 -timeout 5m ./fakes/

test-python: build ## the Python client of the stdiojson worker, against the fake gateway
	python3 examples/python/smoke_test.py --brokerkit $(BIN)

test-node: build ## the independent @stoqey/ib (Node.js) TWS client against the fake gateway
	examples/node/run.sh $(BIN)

mutants: ## the kit's mutation suite: every broken Broker of conformance/CONTRACT.md must fail (also part of test-go)
	$(GO) test -race -count=1 -run '^(TestMutants|TestMutantTable)$$' -v ./conformance/

vet: ## go vet
	$(GO) vet $(PKGS)

lint: vet ## go vet and staticcheck
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) $(PKGS)

bench: ## cross-transport benchmarks and their ratio table (about 3 minutes on 2 cores)
	@mkdir -p bin
	$(GO) test -run='^$$' -bench=. -benchmem -benchtime=$(BENCHTIME) -count=$(BENCHCOUNT) -timeout 30m ./bench/ > bin/bench.txt || { cat bin/bench.txt; exit 1; }
	cat bin/bench.txt
	$(GO) run ./scripts/benchtable < bin/bench.txt

bench-all: ## every package's own benchmarks, one run each
	$(GO) test -run='^$$' -bench=. -benchmem -benchtime=$(BENCHTIME) $(PKGS)

soak: ## calls through robust over every transport under chaos for SOAK (e.g. make soak SOAK=5m)
	$(GO) test -run=TestSoak -count=1 -timeout=0 -v ./soak/ -args -soak=$(SOAK)

fuzz: ## run every fuzz target for FUZZTIME each (10s or more: Go fails shorter runs whose baseline outlasts them)
	./scripts/fuzz-all.sh $(FUZZTIME)

proto: ## regenerate the go-plugin gRPC code (needs protoc)
	./scripts/gen-proto.sh

clean:
	rm -rf bin
