# The e2e suite (e2e/, build tag e2e) on the harness's single-node cluster,
# the demo, and the images built with the harness's Go image builder.

E2E_DIR := $(ROOT)/e2e
E2E_TIMEOUT ?= 40m
E2E_REPORT := $(OUT)/e2e-durations.txt
DEMO_DIR ?= $(OUT)/demo

# Debian's prometheus (2.42+ds) is built without Kubernetes service discovery,
# so the e2e Prometheus is built from its Go module (Prometheus 3.7.3) once into
# the tools cache. promtool comes from the Debian package (mk/40-chart.mk).
PROMETHEUS_VERSION := v0.307.3
PROMETHEUS := $(TOOLS_DIR)/prometheus-$(PROMETHEUS_VERSION)/prometheus

TEST_TARGETS += test-images test-e2e
BENCH_TARGETS += bench-podstart
# Pods per volume kind in the pod start benchmark, and how many are created at a time.
PODSTART_PODS ?= 50
PODSTART_CONCURRENCY ?= 5

.PHONY: test-e2e test-images images demo demo-down prometheus bench-podstart

# Its go.mod has exclude directives, which `go install pkg@version` refuses:
# build it from a throwaway module in the cache instead.
$(PROMETHEUS):
	@echo ">> building prometheus $(PROMETHEUS_VERSION) into the tools cache (once, a few minutes)"
	@rm -rf $(dir $@)build && mkdir -p $(dir $@)build
	cd $(dir $@)build && printf 'module prometheusbuild\n\ngo 1.26.0\n' > go.mod && \
	  GOWORK=off GOFLAGS=-mod=mod $(GO) get github.com/prometheus/prometheus/cmd/prometheus@$(PROMETHEUS_VERSION) && \
	  GOWORK=off GOFLAGS=-mod=mod CGO_ENABLED=0 $(GO) build -trimpath -ldflags '-s -w' -o $@.tmp github.com/prometheus/prometheus/cmd/prometheus
	@mv $@.tmp $@

prometheus: $(PROMETHEUS) ## Build Prometheus (with Kubernetes service discovery) into the tools cache.

test-e2e: deps kube-binaries $(HELM) $(PROMETHEUS) ## e2e cases 1-8 on a real local cluster (root); durations in _output/e2e-durations.txt.
	cd $(E2E_DIR) && $(GO) test -tags integration -count=1 ./env/
	cd $(E2E_DIR) && MESHCSI_HELM=$(HELM) MESHCSI_PROMETHEUS=$(PROMETHEUS) MESHCSI_E2E_REPORT=$(E2E_REPORT) \
	  $(GO) test -tags e2e -count=1 -timeout $(E2E_TIMEOUT) -v -run '^TestE2E$$' .

# A node-mode cluster, like test-e2e: one at a time per machine.
bench-podstart: deps kube-binaries $(HELM) ## Pod start (creation to Running) with a meshcsi volume vs emptyDir vs hostPath, and the driver's share (root).
	cd $(E2E_DIR) && MESHCSI_HELM=$(HELM) MESHCSI_BENCH_PODS=$(PODSTART_PODS) MESHCSI_BENCH_CONCURRENCY=$(PODSTART_CONCURRENCY) \
	  $(GO) test -tags bench -count=1 -timeout 30m -v -run '^TestBenchPodStart$$' ./podstart/

# Builds the driver and sentinel image indexes (linux/amd64 + linux/arm64) twice
# into different directories and compares every digest and SBOM; cold, the
# arm64 cross-compile takes a few minutes (cached afterwards).
test-images: ## Reproducible multi-arch OCI image indexes with SBOMs: build twice, compare digests.
	cd $(E2E_DIR) && $(GO) vet -tags images ./images/
	cd $(E2E_DIR) && $(GO) test -tags images -count=1 -timeout 40m -v -run '^TestIndexReproducible$$' ./images/

images: ## Multi-arch OCI image indexes (+ SPDX SBOMs, host docker-archives) of driver, sentinel, demo-agent in _output/images.
	cd $(E2E_DIR) && $(GO) run ./cmd/build-images --out $(OUT)/images --tag $(VERSION) --version $(VERSION)

# Built, then run, so the (first-time: minutes long) compile is announced
# instead of hiding in a silent `go run`.
demo: deps kube-binaries $(HELM) ## The demo: local cluster, install, a workload using the socket, uninstall hand-off (root).
	@mkdir -p $(BIN)
	@echo ">> compiling the demo program (the first time takes a few minutes: Go builds client-go, containerd and helm's dependencies)"
	@cd $(E2E_DIR) && $(GO) build -o $(BIN)/demo ./cmd/demo
	cd $(E2E_DIR) && MESHCSI_HELM=$(HELM) $(BIN)/demo up --dir $(DEMO_DIR) --version $(VERSION)

demo-down: ## Stop the demo's cluster and remove what it left.
	@mkdir -p $(BIN)
	@cd $(E2E_DIR) && $(GO) build -o $(BIN)/demo ./cmd/demo
	cd $(E2E_DIR) && $(BIN)/demo down --dir $(DEMO_DIR)
