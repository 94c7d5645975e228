# meshcsi-driver: the CSI node plugin (services/csi-driver).

DRIVER_DIR := $(ROOT)/services/csi-driver
# The driver's test module: the benchmark and csi-test sanity (their
# dependencies stay out of the driver's go.mod).
DRIVER_TEST_DIR := $(DRIVER_DIR)/test
DRIVER_BIN := $(BIN)/meshcsi-driver
DRIVER_BENCH_BIN := $(BIN)/meshcsi-driver-bench
# `make test` fuzzes for a number of inputs, not a duration: a duration budget
# ran out on a loaded machine while Go's fuzzing workers were still starting
# ("context deadline exceeded"). The seed corpus also runs in every `go test`.
DRIVER_FUZZ_COUNT ?= 20000x

BUILD_TARGETS += build-driver
TEST_TARGETS += test-driver-fuzz test-driver-integration
BENCH_TARGETS += bench-driver

.PHONY: build-driver test-driver-fuzz test-driver-integration fuzz fuzz-driver bench-driver run-driver

build-driver: ## Build the meshcsi-driver binary into _output/bin.
	@mkdir -p $(BIN)
	cd $(DRIVER_DIR) && $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(DRIVER_BIN) ./cmd/meshcsi-driver

test-driver-fuzz: ## Fuzz the driver's request validation for $(DRIVER_FUZZ_COUNT) inputs (a crash fails; robust under load).
	cd $(DRIVER_DIR) && $(GO) test -run '^$$' -fuzz '^FuzzPublishValidation$$' -fuzztime $(DRIVER_FUZZ_COUNT) ./internal/node

# kube-binaries and helm are defined in mk/20-harness.mk (targets by name:
# their variables are not set yet when this file is read).
test-driver-integration: deps kube-binaries helm build-driver ## The driver binary against a real kube-apiserver (root): namespace selector under the chart's RBAC.
	cd $(DRIVER_TEST_DIR) && MESHCSI_DRIVER_BIN=$(DRIVER_BIN) MESHCSI_HELM=$(HELM) \
	  $(GO) test -tags=integration -count=1 -timeout 10m -v -run 'TestIntegration' ./apiserver/

fuzz: fuzz-driver
fuzz-driver: ## Open-ended fuzzing of the driver's request validation for $(FUZZTIME) (override: make fuzz FUZZTIME=1h).
	cd $(DRIVER_DIR) && $(GO) test -run '^$$' -fuzz '^FuzzPublishValidation$$' -fuzztime $(FUZZTIME) ./internal/node

bench-driver: build-driver ## Benchmark the driver against the floor (root; prints a table and a JSON line).
	@mkdir -p $(BIN)
	cd $(DRIVER_TEST_DIR) && $(GO) build -trimpath -o $(DRIVER_BENCH_BIN) ./cmd/meshcsi-driver-bench
	$(DRIVER_BENCH_BIN) --driver $(DRIVER_BIN)

RUN_DRIVER_DIR ?= $(OUT)/run-driver
run-driver: build-driver ## Run the driver against a scratch kubelet dir (root), source "demo".
	@mkdir -p $(RUN_DRIVER_DIR)/kubelet/pods $(RUN_DRIVER_DIR)/demo-sockets
	$(DRIVER_BIN) --node-id $$(hostname) --kubelet-dir $(RUN_DRIVER_DIR)/kubelet \
	  --source demo=$(RUN_DRIVER_DIR)/demo-sockets --http-address 127.0.0.1:9809 --log-format console
