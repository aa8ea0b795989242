# twinforge: `make demo` and `make test` work on a fresh machine; every
# install step lives here.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := build

# sigstore-go needs Go 1.27; the go command fetches this exact toolchain
# through the module proxy. A machine's own Go ignores go.mod's version.
export GOTOOLCHAIN := go1.27.3
export GOFLAGS := -buildvcs=false

GO            ?= go
BIN           := $(CURDIR)/bin
TOOLS_CACHE   := $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/twinforge/tools
BUILDKIT_VERSION := $(shell awk '{for(i=1;i<NF;i++) if($$i=="github.com/moby/buildkit"){print $$(i+1); exit}}' go.mod)
BUILDKIT_TOOL := $(shell awk '{for(i=1;i<NF;i++) if($$i=="github.com/moby/buildkit"){print $$(i+1); exit}}' tools/buildkit/go.mod)
BUILDKIT_DIR  := $(TOOLS_CACHE)/buildkit-$(BUILDKIT_VERSION)
VERSION       ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
APT_PACKAGES  := runc containernetworking-plugins skopeo busybox-static util-linux mount iproute2 git shellcheck curl xfsprogs
GO_TEST_FLAGS ?= -count=1 -timeout 40m
BENCH_RESULTS ?= bench/results.txt

export PATH := $(BIN):$(PATH)

.PHONY: all deps apt-deps buildkit build examples test test-short lint bench fuzz demo clean

all: build

## deps: install runc & co. when missing, build every component from its pinned module
deps: apt-deps buildkit sigstore-tools registry-tools actionlint-tools kube-tools node-tools

include tools/sigstore.mk
include tools/registry.mk
include tools/actionlint.mk
include tools/kubernetes.mk
include tools/node.mk

apt-deps:
	@missing=""; \
	for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		if [ "$$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi; \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

# buildkitd and buildctl are built from the BuildKit version go.mod pins,
# through the tools/buildkit module, once per version, outside the clone.
buildkit: $(BIN)/buildkitd $(BIN)/buildctl

$(BUILDKIT_DIR)/buildkitd $(BUILDKIT_DIR)/buildctl &:
	@if [ "$(BUILDKIT_VERSION)" != "$(BUILDKIT_TOOL)" ]; then \
		echo "tools/buildkit pins BuildKit $(BUILDKIT_TOOL) but go.mod pins $(BUILDKIT_VERSION): make them agree" >&2; exit 1; fi
	@echo "building buildkitd and buildctl $(BUILDKIT_VERSION) (once per version, cached in $(BUILDKIT_DIR))"
	@mkdir -p $(BUILDKIT_DIR).tmp
	cd tools/buildkit && $(GO) build -trimpath \
		-ldflags "-s -w -X github.com/moby/buildkit/version.Version=$(BUILDKIT_VERSION) -X github.com/moby/buildkit/version.Package=github.com/moby/buildkit" \
		-o $(BUILDKIT_DIR).tmp/ github.com/moby/buildkit/cmd/buildkitd github.com/moby/buildkit/cmd/buildctl
	@rm -rf $(BUILDKIT_DIR) && mv $(BUILDKIT_DIR).tmp $(BUILDKIT_DIR)

$(BIN)/buildkitd $(BIN)/buildctl: $(BIN)/%: $(BUILDKIT_DIR)/%
	@mkdir -p $(BIN)
	@ln -sf $< $@

## build: bin/twinforge, and the runtime shim rebuild daemons run steps through
build: $(BIN)/twinforge $(BIN)/twinforge-runc-shim

$(BIN)/twinforge: FORCE
	@mkdir -p $(BIN)
	$(GO) build -trimpath -ldflags "-X main.version=$(VERSION)" -o $@ ./cmd/twinforge

$(BIN)/twinforge-runc-shim: FORCE
	@mkdir -p $(BIN)
	$(GO) build -trimpath -o $@ ./cmd/twinforge-runc-shim

FORCE:

## examples: the offline base images the examples build on
examples: apt-deps
	$(GO) run ./examples/base -o examples/base/out
	$(GO) run ./examples/golang -o examples/golang/out

## lint: gofmt (vendored modules aside, as their authors wrote them), go vet, and actionlint on the workflows
lint: lint-workflows
	@out=$$(gofmt -l $$(git ls-files -co --exclude-standard '*.go' ':!:**/vendor/**')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

## test: the whole suite, against real buildkitd + runc
test: deps examples build lint
	$(GO) test $(GO_TEST_FLAGS) ./... 2>&1

## test-short: unit tests only, no daemons
test-short:
	$(GO) test -short -count=1 ./...

## fuzz: run every Go fuzz target for FUZZTIME each (their seed corpora run in make test)
# FUZZ=REGEXP picks targets by name; FUZZMINIMIZETIME bounds the
# minimizing of each new input (see scripts/fuzz.sh).
FUZZTIME ?= 30s
fuzz:
	@FUZZTIME=$(FUZZTIME) scripts/fuzz.sh

## bench: benchmarks against buildctl, cosign and crane in one run; a table of targets, appended with the raw output to bench/results.txt
# Whole-command comparisons (builds, replication) run a fixed number of
# times; the in-process benchmarks (signing, verification, the admission
# load generator) size themselves with Go's default benchtime. The machine
# is shared: the load average is recorded with the run, and ratios measured
# side by side in one loop cancel part of it.
BENCH_PKGS ?= ./attest/ ./distribute/ ./admission/ ./admission/nodeagent/
BENCH_BUILDS ?= BuildHello$$|VerifiedBuildHello$$|VerifiedBuildHelloOtherWorker|IncrementalVerifiedBuild
BENCH_BUILD_TIMES ?= 2x
bench: deps examples build
	@mkdir -p $(dir $(BENCH_RESULTS))
	@raw=$$(mktemp); trap 'rm -f $$raw' EXIT; \
	load_before=$$(cut -d' ' -f1-3 /proc/loadavg); \
	{ $(GO) test -run '^$$' -bench '$(BENCH_BUILDS)' -benchtime $(BENCH_BUILD_TIMES) -timeout 90m ./internal/bench/ 2>&1 && \
	  $(GO) test -run '^$$' -bench . -timeout 30m $(BENCH_PKGS) 2>&1; } | tee $$raw; \
	{ echo "# make bench, $$(date -u +%FT%TZ), $$(nproc) cores, $$(git rev-parse --short HEAD)$$(git diff --quiet HEAD -- || echo -dirty), load average $$load_before at the start, $$(cut -d' ' -f1-3 /proc/loadavg) at the end"; \
	  $(GO) run ./internal/bench/table < $$raw | sed 's/^/# /'; cat $$raw; } > $$raw.run; \
	echo; grep '^# ' $$raw.run | sed 's/^# //'; \
	cat $$raw.run >> $(BENCH_RESULTS); rm -f $$raw.run; \
	echo "appended to $(BENCH_RESULTS)"

## demo: build, rebuild, attest and verify an example end to end
demo: deps examples build
	@scripts/demo.sh

clean:
	rm -rf $(BIN) examples/*/out out
