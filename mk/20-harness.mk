# Local Kubernetes harness (libs/kubeharness): Kubernetes binaries, helm, and
# a single-node cluster built from Debian packages and Go modules.

KUBE_VERSION := v1.33.13
# Built once per machine and version; fresh clones (CI) reuse them.
KUBE_BIN_DIR := $(CACHE_DIR)/kube/$(KUBE_VERSION)/bin
KUBE_BINARIES := kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl
KUBE_STAMP := $(KUBE_BIN_DIR)/.complete
# The wrapper module is outside go.work (the root loops skip */kubebuild/*).
KUBEBUILD_DIR := $(ROOT)/libs/kubeharness/kubebuild
KUBE_LDFLAGS := -s -w $(foreach p,k8s.io/component-base/version k8s.io/client-go/pkg/version,\
  -X $(p).gitVersion=$(KUBE_VERSION) -X $(p).gitMajor=1 -X $(p).gitMinor=33 \
  -X $(p).gitTreeState=clean -X $(p).buildDate=1970-01-01T00:00:00Z)

HELM_VERSION := v3.20.2
HELM := $(TOOLS_DIR)/helm-$(HELM_VERSION)/helm

KUBEHARNESS := $(BIN)/kubeharness
CLUSTER_DIR ?= $(OUT)/cluster
HARNESS_TEST_TIMEOUT ?= 25m

APT_PACKAGES += etcd-server containerd runc containernetworking-plugins iptables conntrack socat iproute2
TEST_TARGETS += test-harness
BUILD_TARGETS += $(KUBEHARNESS)

export MESHCSI_KUBE_BIN_DIR := $(KUBE_BIN_DIR)

.PHONY: kube-binaries helm cluster-up cluster-down cluster-status test-harness $(KUBEHARNESS)

# Keyed by version only: a fresh clone's newer file times must not force a rebuild.
$(KUBE_STAMP):
	@echo ">> building Kubernetes $(KUBE_VERSION) binaries into $(KUBE_BIN_DIR) (cold: ~5-15 min)"
	@rm -rf $(KUBE_BIN_DIR).tmp && mkdir -p $(KUBE_BIN_DIR).tmp
	cd $(KUBEBUILD_DIR) && GOWORK=off CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(KUBE_LDFLAGS)' \
	  -o $(KUBE_BIN_DIR).tmp/ $(addprefix k8s.io/kubernetes/cmd/,$(KUBE_BINARIES))
	@rm -rf $(KUBE_BIN_DIR) && mv $(KUBE_BIN_DIR).tmp $(KUBE_BIN_DIR) && touch $@

kube-binaries: $(KUBE_STAMP) ## Build the Kubernetes binaries the harness runs (cached per version).

$(HELM):
	@echo ">> building helm $(HELM_VERSION) into the tools cache (once, a few minutes)"
	@mkdir -p $(dir $@)
	cd $(KUBEBUILD_DIR) && GOWORK=off CGO_ENABLED=0 GOBIN=$(dir $@) $(GO) install helm.sh/helm/v3/cmd/helm@$(HELM_VERSION)

helm: $(HELM) ## Install helm (cached per version).

$(KUBEHARNESS):
	@mkdir -p $(BIN)
	@echo ">> compiling kubeharness (the first time takes a minute or two)"
	cd $(ROOT)/libs/kubeharness && $(GO) build -trimpath -ldflags '-s -w' -o $@ ./cmd/kubeharness

cluster-up: deps kube-binaries $(KUBEHARNESS) ## Start the single-node cluster in _output/cluster; prints its kubeconfig.
	@$(KUBEHARNESS) up --mode node --dir $(CLUSTER_DIR)
	@echo "export KUBECONFIG=$(CLUSTER_DIR)/kubeconfig"

cluster-down: $(KUBEHARNESS) ## Stop the cluster and remove everything it left on the host.
	@$(KUBEHARNESS) down --dir $(CLUSTER_DIR)

cluster-status: $(KUBEHARNESS) ## Show the cluster's components.
	@$(KUBEHARNESS) status --dir $(CLUSTER_DIR)

test-harness: deps kube-binaries ## Harness integration tests: control plane, then the node smoke test (root).
	cd $(ROOT)/libs/kubeharness && $(GO) test -tags=integration -count=1 -timeout $(HARNESS_TEST_TIMEOUT) -v ./...
