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

## fuzz: run every fuzz target for a while (FUZZTIME each, default 30s;
## FUZZMINIMIZETIME, default 10s, for shrinking what it finds)
FUZZTIME ?= 30s
FUZZMINIMIZETIME ?= 10s
fuzz:
	FUZZTIME=$(FUZZTIME) FUZZMINIMIZETIME=$(FUZZMINIMIZETIME) scripts/fuzz.sh

deps:
	scripts/install-deps.sh

clean:
	rm -rf $(BIN)
