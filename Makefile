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
MODULES := $(patsubst ./%,%,$(shell cd $(ROOT) && find . -name go.mod -not -path './_output/*' -not -path '*/kubebuild/*' -printf '%h\n' | sort))
VERSION ?= $(shell git -C $(ROOT) describe --tags --always --dirty 2>/dev/null || echo dev)
GO ?= go
export CGO_ENABLED ?= 0
LDFLAGS := -s -w -X main.version=$(VERSION)
# Fuzzing budget per target in `make test`.
FUZZTIME ?= 20s

GOLANGCI_LINT_VERSION := v2.15.0
GOLANGCI_LINT := $(TOOLS_DIR)/golangci-lint-$(GOLANGCI_LINT_VERSION)/golangci-lint

TEST_TARGETS := deps test-unit
BENCH_TARGETS :=
APT_PACKAGES :=
BUILD_TARGETS :=

include $(sort $(wildcard $(ROOT)/mk/*.mk))

.PHONY: build test bench lint deps test-unit fmt-check vet clean help run

help: ## List the targets.
	@grep -hE '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | sort | awk -F':.*## ' '{printf "  %-22s %s\n", $$1, $$2}'

build: $(BUILD_TARGETS) ## Build every binary into _output/bin.

test: $(TEST_TARGETS) ## Everything CI runs: unit, root-only, integration, chart and e2e tests.
	@echo "make test: all suites passed"

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

vet: ## go vet every module on its own (GOWORK=off proves each builds alone).
	@for m in $(MODULES); do echo ">> vet $$m"; (cd $(ROOT)/$$m && GOWORK=off $(GO) vet -tags=integration,e2e,chart ./...); done

test-unit: fmt-check vet ## gofmt, vet and `go test -race` for every module.
	@for m in $(MODULES); do echo ">> test $$m"; (cd $(ROOT)/$$m && CGO_ENABLED=1 $(GO) test -race -count=1 ./...); done

$(GOLANGCI_LINT):
	GOBIN=$(dir $@) $(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION)

lint: $(GOLANGCI_LINT) ## golangci-lint v2 over every module.
	@for m in $(MODULES); do echo ">> lint $$m"; (cd $(ROOT)/$$m && $(GOLANGCI_LINT) run --config $(ROOT)/.golangci.yml ./...); done

clean: ## Remove build output (not the caches under $(CACHE_DIR)).
	rm -rf $(OUT)
