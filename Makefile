# meshcsi: one Makefile for the whole go.work workspace.
#
# Each component adds its own targets in mk/NN-<component>.mk (included in
# order); they append to TEST_TARGETS, BENCH_TARGETS and APT_PACKAGES. The root
# targets below loop over every module found by its go.mod.

SHELL := /usr/bin/env bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := build
MAKEFLAGS += --no-print-directory

ROOT := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))
# Caches that outlive a fresh clone (CI clones anew on the same machine).
CACHE_DIR ?= $(HOME)/.cache/meshcsi
TOOLS_DIR := $(CACHE_DIR)/tools
OUT := $(ROOT)/_output
BIN := $(OUT)/bin
# Modules outside go.work are left out: */kubebuild/* (the Kubernetes build) and
# e2e/openshift (OpenShift's SCC code; make test-chart runs it with GOWORK=off).
MODULES := $(patsubst ./%,%,$(shell cd $(ROOT) && find . -name go.mod -not -path './_output/*' -not -path '*/kubebuild/*' -not -path './e2e/openshift/*' -printf '%h\n' | sort))
VERSION ?= $(shell git -C $(ROOT) describe --tags --always --dirty 2>/dev/null || echo dev)
GO ?= go
export CGO_ENABLED ?= 0
LDFLAGS := -s -w -X main.version=$(VERSION)
# Fuzzing budget per target in `make test`.
FUZZTIME ?= 20s

GOLANGCI_LINT_VERSION := v2.15.0
GOLANGCI_LINT := $(TOOLS_DIR)/golangci-lint-$(GOLANGCI_LINT_VERSION)/golangci-lint

# deps first; the quick static checks before the long suites.
TEST_TARGETS := deps dep-skew lint test-unit
BENCH_TARGETS :=
APT_PACKAGES :=
BUILD_TARGETS :=

include $(sort $(wildcard $(ROOT)/mk/*.mk))

.PHONY: build test bench lint dep-skew deps test-unit fmt-check vet clean help run

help: ## List the targets.
	@grep -hE '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | sort | awk -F':.*## ' '{printf "  %-22s %s\n", $$1, $$2}'

build: $(BUILD_TARGETS) ## Build every binary into _output/bin.

# Each step runs as its own make, in order, so its duration can be printed in
# one table at the end (also when a step fails; the steps after it do not run).
test: ## Everything CI runs: lint, unit, root-only, integration, chart and e2e tests.
	@summary=""; failed=""; \
	for t in $(TEST_TARGETS); do \
	  start=$$(date +%s); \
	  if $(MAKE) $$t; then r=ok; else r=FAILED; failed=$$t; fi; \
	  d=$$(( $$(date +%s) - start )); \
	  summary="$$summary$$(printf '  %-28s %3dm%02ds  %s' $$t $$((d / 60)) $$((d % 60)) $$r)\n"; \
	  [ -z "$$failed" ] || break; \
	done; \
	printf '\nmake test: duration per step\n%b' "$$summary"; \
	if [ -n "$$failed" ]; then echo "make test: FAILED in $$failed"; exit 1; fi; \
	echo "make test: all suites passed"

bench: $(BENCH_TARGETS) ## Run the benchmark programs (tables + JSON lines).

run: demo ## Set up and run: the demo on a local cluster (root; `make demo-down` stops it).

deps: ## Install the Debian packages the tests need (root; only what is missing).
	@missing=""; for p in $(sort $(APT_PACKAGES)); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo ">> apt-get install$$missing"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

fmt-check: ## Fail if any Go file is not gofmt-clean.
	@bad=$$(gofmt -l $$(git -C $(ROOT) ls-files --cached --others --exclude-standard '*.go' | sed 's|^|$(ROOT)/|')); \
	if [ -n "$$bad" ]; then echo "gofmt needed:"; echo "$$bad"; exit 1; fi

# The one `go vet` per module (all build tags); golangci-lint leaves govet to it.
vet: ## go vet every module on its own (GOWORK=off proves each builds alone).
	@for m in $(MODULES); do echo ">> vet $$m"; (cd $(ROOT)/$$m && GOWORK=off $(GO) vet -tags=integration,e2e,chart,bench,images ./...); done

test-unit: fmt-check vet ## gofmt, vet and `go test -race` for every module.
	@for m in $(MODULES); do \
	  if [ -z "$$(cd $(ROOT)/$$m && $(GO) list ./... 2>/dev/null)" ]; then echo ">> test $$m: only tagged tests (run by their own make target)"; continue; fi; \
	  echo ">> test $$m"; (cd $(ROOT)/$$m && CGO_ENABLED=1 $(GO) test -race -count=1 ./...); done

# `go install …@version` asks the proxy for the version list first, which it may
# refuse: build from a throwaway module in the cache instead (keyed by version).
$(GOLANGCI_LINT):
	@echo ">> building golangci-lint $(GOLANGCI_LINT_VERSION) into the tools cache (once, a few minutes)"
	@rm -rf $(dir $@)build && mkdir -p $(dir $@)build
	cd $(dir $@)build && printf 'module golangcilintbuild\n\ngo 1.26.0\n' > go.mod && \
	  GOWORK=off GOFLAGS=-mod=mod $(GO) get -tool github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION) && \
	  GOWORK=off GOFLAGS=-mod=mod CGO_ENABLED=0 $(GO) build -trimpath -ldflags '-s -w' -o $@.tmp github.com/golangci/golangci-lint/v2/cmd/golangci-lint
	@mv $@.tmp $@

# --allow-serial-runners: on a shared machine a second lint waits for the first.
lint: $(GOLANGCI_LINT) ## golangci-lint v2 (with goimports) over every module, all build tags.
	@for m in $(MODULES); do echo ">> lint $$m"; (cd $(ROOT)/$$m && $(GOLANGCI_LINT) run --allow-serial-runners --config $(ROOT)/.golangci.yml ./...); done

dep-skew: ## Fail if two modules of go.work require different versions of one module.
	@$(ROOT)/.ci/dep-skew

clean: ## Remove build output (not the caches under $(CACHE_DIR)).
	rm -rf $(OUT)
