# Proof by others (issue 11): the real SPIRE server and agent through meshcsi,
# and Kubernetes' own storage e2e suite (External.Storage, CSI ephemeral
# volumes) against meshcsi, both on the harness's local cluster.

# Only this SPIRE version is served by the module proxy (../shared/THIRD-PARTY.md).
SPIRE_VERSION := v1.13.3
SPIRE_DIR := $(CACHE_DIR)/spire/$(SPIRE_VERSION)
SPIRE_BIN_DIR := $(SPIRE_DIR)/bin
SPIRE_STAMP := $(SPIRE_BIN_DIR)/.complete

export MESHCSI_SPIRE_BIN_DIR := $(SPIRE_BIN_DIR)

# Kubernetes' storage e2e suite: a test binary of the framework and
# test/e2e/storage/external only, from e2e/storage, a module outside go.work
# (its k8s.io/kubernetes replace block must not reach the workspace), so the
# root loops (vet, test-unit, lint) leave it out. Keyed by the Kubernetes
# version and the module's own files: a fresh clone reuses it, an edit rebuilds.
STORAGE_E2E_DIR := $(ROOT)/e2e/storage
STORAGE_E2E_KEY := $(KUBE_VERSION)-$(shell cat $(STORAGE_E2E_DIR)/go.mod $(STORAGE_E2E_DIR)/go.sum $(STORAGE_E2E_DIR)/*.go 2>/dev/null | sha256sum | cut -c1-12)
STORAGE_E2E := $(CACHE_DIR)/storage-e2e/$(STORAGE_E2E_KEY)/storage-e2e.test
MODULES := $(filter-out e2e/storage,$(MODULES))

export MESHCSI_STORAGE_E2E := $(STORAGE_E2E)

# The storage suite's test pods run busybox: the e2e builds that image from
# Debian's static busybox (there is no registry here).
APT_PACKAGES += busybox-static

# The demo (make run) shows the real SPIRE agent through meshcsi;
# DEMO_AGENT=demo keeps the quick stand-in agent (no SPIRE build).
DEMO_AGENT ?= spire
export MESHCSI_DEMO_AGENT := $(DEMO_AGENT)

.PHONY: spire storage-e2e

# `go install …@v1.13.3` fails (the proxy refuses spire's version list), so
# both commands come from a throwaway module in the cache. The server needs cgo
# for its sqlite3 datastore and is linked statically so it runs on an empty
# image; the agent is built the same way in the same command, so it reuses
# every package (with cgo off, the net package and all that import it would
# compile again). Keyed by version only: a fresh clone reuses it.
$(SPIRE_STAMP):
	@echo ">> building SPIRE $(SPIRE_VERSION) server and agent into $(SPIRE_BIN_DIR) (once; cold: tens of CPU-minutes)"
	@rm -rf $(SPIRE_DIR)/build $(SPIRE_BIN_DIR).tmp && mkdir -p $(SPIRE_DIR)/build $(SPIRE_BIN_DIR).tmp
	cd $(SPIRE_DIR)/build && printf 'module spirebuild\n\ngo 1.26.0\n' > go.mod && \
	  GOWORK=off GOFLAGS=-mod=mod $(GO) get -tool github.com/spiffe/spire/cmd/spire-server@$(SPIRE_VERSION) \
	    github.com/spiffe/spire/cmd/spire-agent@$(SPIRE_VERSION) && \
	  GOWORK=off GOFLAGS=-mod=mod CGO_ENABLED=1 $(GO) build -trimpath \
	    -ldflags '-s -w -linkmode external -extldflags "-static"' -o $(SPIRE_BIN_DIR).tmp/ \
	    github.com/spiffe/spire/cmd/spire-server github.com/spiffe/spire/cmd/spire-agent
	@rm -rf $(SPIRE_BIN_DIR) && mv $(SPIRE_BIN_DIR).tmp $(SPIRE_BIN_DIR) && touch $@

spire: $(SPIRE_STAMP) ## Build the SPIRE server and agent the proof e2e runs (cached per version).

# -vet=off: vetting would cover ~1,500 packages of Kubernetes.
$(STORAGE_E2E):
	@echo ">> building Kubernetes $(KUBE_VERSION)'s storage e2e suite into $(dir $@) (once; ~1 min once Kubernetes is in the Go cache)"
	@mkdir -p $(dir $@)
	cd $(STORAGE_E2E_DIR) && GOWORK=off CGO_ENABLED=0 $(GO) test -c -tags e2e -vet=off -trimpath \
	  -ldflags '$(KUBE_LDFLAGS)' -o $@.tmp .
	@mv $@.tmp $@

storage-e2e: $(STORAGE_E2E) ## Build Kubernetes' storage e2e suite (External.Storage) for the e2e case (cached).

# The SPIRE and storage-suite cases run inside the e2e suite (one cluster).
test-e2e: $(SPIRE_STAMP) $(STORAGE_E2E)

ifeq ($(DEMO_AGENT),spire)
demo: $(SPIRE_STAMP)
endif
