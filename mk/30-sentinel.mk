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

# The scale benchmark: kwok simulates nodes (and their kubelets) against the
# harness's control plane. Sizes: fake nodes and pods (1 % use the driver).
KWOK_VERSION := v0.7.0
KWOK_DIR := $(CACHE_DIR)/kwok/$(KWOK_VERSION)
KWOK := $(KWOK_DIR)/kwok
KWOK_STAMP := $(KWOK_DIR)/.complete
SENTINEL_SCALE_NODES ?= 1000
SENTINEL_SCALE_PODS ?= 50000

BUILD_TARGETS += build-sentinel
TEST_TARGETS += test-sentinel-integration
BENCH_TARGETS += bench-sentinel bench-sentinel-scale

.PHONY: build-sentinel test-sentinel-integration bench-sentinel bench-sentinel-scale openshift-api kwok

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
	    $(GO) test -tags=integration,bench -count=1 -timeout 40m -v -run '^TestBench$$' ./...) || exit 1; done

# Keyed by version only, like the Kubernetes binaries; built at the lowest
# priority (cold: ~12 min on a busy 2-core machine).
$(KWOK_STAMP):
	@echo ">> building kwok $(KWOK_VERSION) into $(KWOK_DIR) (once)"
	@rm -rf $(KWOK_DIR).tmp && mkdir -p $(KWOK_DIR).tmp
	GOWORK=off CGO_ENABLED=0 GOBIN=$(KWOK_DIR).tmp nice -n 19 $(GO) install -trimpath -ldflags '-s -w' sigs.k8s.io/kwok/cmd/kwok@$(KWOK_VERSION)
	@rm -rf $(KWOK_DIR) && mv $(KWOK_DIR).tmp $(KWOK_DIR) && touch $@

kwok: $(KWOK_STAMP) ## Build kwok (simulated nodes for the scale benchmark; cached per version).

bench-sentinel-scale: deps kube-binaries kwok build-sentinel ## kwok nodes + pods: the sentinel vs a naive 5 s poller (RSS, requests, reaction).
	cd $(SENTINEL_TEST_DIR) && MESHCSI_SENTINEL_BIN=$(SENTINEL_BIN) MESHCSI_KWOK=$(KWOK) \
	  MESHCSI_BENCH_NODES=$(SENTINEL_SCALE_NODES) MESHCSI_BENCH_PODS=$(SENTINEL_SCALE_PODS) \
	  $(GO) test -tags=integration,bench -count=1 -timeout 40m -v -run '^TestBenchScale$$' ./...
