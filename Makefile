# banger — see README.md.
GO      ?= go
BIN     := bin
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X banger/internal/buildinfo.version=$(VERSION)

export PATH := /usr/local/go/bin:$(HOME)/go/bin:$(PATH)

.PHONY: all build test bench demo lint deps fuzz clean

all: build

## build: the four binaries, pure Go (CGO_ENABLED=0), into bin/
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN)/ ./cmd/banger ./cmd/bangerd ./cmd/banger-helper ./cmd/banger-guest

## test: every test tier (installs what it needs)
test:
	scripts/test.sh

## bench: every benchmark against the raw work it wraps; writes bench/REPORT.md,
## bench/results/<date>-<host>.{json,txt} and README's table (root: namespaces, mounts, image builds)
bench: deps
	$(GO) run ./bench/harness

## demo: banger's main job end to end, in a throw-away HOME
demo:
	scripts/demo.sh

## lint: gofmt, go vet, staticcheck
lint:
	scripts/lint.sh

## fuzz: run each fuzz target for a while (FUZZTIME, default 30s)
FUZZTIME ?= 30s
fuzz:
	$(GO) test -run '^$$' -fuzz FuzzDispatch -fuzztime $(FUZZTIME) ./internal/rpc
	$(GO) test -run '^$$' -fuzz FuzzParse -fuzztime $(FUZZTIME) ./internal/config

deps:
	scripts/install-deps.sh

clean:
	rm -rf $(BIN)
