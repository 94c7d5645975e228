# meshcsi-sentinel: the cleanup Job `helm uninstall` hands off to (services/sentinel).

SENTINEL_DIR := $(ROOT)/services/sentinel
SENTINEL_BIN := $(BIN)/meshcsi-sentinel
SENTINEL_TEST_TIMEOUT ?= 15m
# The SCC CRD the integration tests serve is read from this module version.
OPENSHIFT_API_VERSION := v0.0.0-20251015095338-264e80a2b6e7
export MESHCSI_OPENSHIFT_API_VERSION := $(OPENSHIFT_API_VERSION)
# Integration tests and the benchmark live in their own module (services/sentinel/test),
# so the sentinel's go.mod lists only what its binary needs.
SENTINEL_TEST_DIR := $(SENTINEL_DIR)/test
# Benchmark sizes: pods in the API server, of which 1 % use the driver.
SENTINEL_BENCH_PODS ?= 10000 50000

BUILD_TARGETS += build-sentinel
TEST_TARGETS += test-sentinel-integration
BENCH_TARGETS += bench-sentinel

.PHONY: build-sentinel test-sentinel-integration bench-sentinel openshift-api

build-sentinel: ## Build the meshcsi-sentinel binary into _output/bin.
	@mkdir -p $(BIN)
	cd $(SENTINEL_DIR) && $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(SENTINEL_BIN) ./cmd/meshcsi-sentinel

openshift-api: ## Fetch the openshift/api module (its SCC CRD) into the module cache.
	@cd $(SENTINEL_TEST_DIR) && $(GO) mod download github.com/openshift/api@$(OPENSHIFT_API_VERSION)

test-sentinel-integration: deps kube-binaries $(HELM) openshift-api build-sentinel ## Sentinel against a real etcd + kube-apiserver.
	cd $(SENTINEL_TEST_DIR) && MESHCSI_SENTINEL_BIN=$(SENTINEL_BIN) MESHCSI_HELM=$(HELM) $(GO) test -tags=integration -count=1 -timeout $(SENTINEL_TEST_TIMEOUT) -v -run 'TestIntegration' ./...

bench-sentinel: deps kube-binaries build-sentinel ## 10k and 50k pods (1 % blocking) in a real API server: peak RSS, requests while waiting, reaction.
	@for n in $(SENTINEL_BENCH_PODS); do echo ">> bench-sentinel $$n pods"; \
	  (cd $(SENTINEL_TEST_DIR) && MESHCSI_SENTINEL_BIN=$(SENTINEL_BIN) MESHCSI_BENCH_PODS=$$n MESHCSI_BENCH_BLOCKING=$$((n / 100)) \
	    $(GO) test -tags=integration,bench -count=1 -timeout 40m -v -run 'TestBench' ./...) || exit 1; done
