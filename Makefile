# shoal — build, test, benchmark, demo.
GO        ?= go
BIN       := $(CURDIR)/bin
GOBIN     := $(shell $(GO) env GOPATH)/bin
# Pinned tool versions; .ci/run and `make tools` install exactly these.
PROTOC_GEN_GO_VERSION      := v1.36.12
PROTOC_GEN_GO_GRPC_VERSION := v1.6.0
STATICCHECK_VERSION        := v0.8.2

.PHONY: all build test test-short bench demo proto lint tools clean

all: build

build: plugins
	CGO_ENABLED=0 $(GO) build -o $(BIN)/ ./cmd/...

# Unit, in-process and process-level tests. The race detector runs on the
# packages with the most concurrency.
test: build
	$(GO) vet ./...
	PATH="$(GOBIN):$$PATH" $(GO) test -count=1 -timeout 20m ./...
	$(GO) test -count=1 -race -timeout 20m ./orchestrator/... ./agent/

test-short:
	$(GO) test -count=1 -short ./...

# Benchmarks write their figures to docs/benchmarks.md.
bench: build
	$(GO) run ./cmd/shoal-bench raft --out docs/benchmarks.md
	$(GO) run ./cmd/shoal-bench orchestration --out docs/benchmarks.md
	$(GO) run ./cmd/shoal-bench allocator --nodes 100 --tasks 20000 --out docs/benchmarks.md
	$(GO) run ./cmd/shoal-bench allocator --nodes 0 --tasks 100000 --out docs/benchmarks.md
	$(GO) run ./cmd/shoal-bench containers --out docs/benchmarks.md

demo: build
	bash test/demo/demo.sh

proto:
	PATH="$(GOBIN):$$PATH" protoc -I . -I /usr/include \
		--go_out=. --go_opt=paths=source_relative \
		--go-grpc_out=. --go-grpc_opt=paths=source_relative \
		api/specs.proto api/objects.proto api/raft.proto api/ca.proto api/dispatcher.proto api/control.proto

lint:
	$(GO) vet ./...
	$(GOBIN)/staticcheck ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); exit 1)

tools:
	$(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)
	$(GO) install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION)
	$(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

clean:
	rm -rf $(BIN)

# shoal's CNI plugins, built static into bin/cni/ and installed where runtimes
# (and shoald's --cni-bin-dir) look for plugins. `make install
# CNI_BIN_DIR=/some/dir` installs elsewhere.
CNI_BIN_DIR ?= /opt/cni/bin
CNI_PLUGINS := shoal-bridge shoal-ipam

.PHONY: plugins install

plugins:
	CGO_ENABLED=0 $(GO) build -o $(BIN)/cni/ $(addprefix ./plugins/,$(CNI_PLUGINS))

install: plugins
	install -d $(DESTDIR)$(CNI_BIN_DIR)
	install -m 0755 $(addprefix $(BIN)/cni/,$(CNI_PLUGINS)) $(DESTDIR)$(CNI_BIN_DIR)/
