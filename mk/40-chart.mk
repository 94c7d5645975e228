# The Helm chart (charts/meshcsi): lint and the chart tests (e2e/chart).

CHART_DIR := $(ROOT)/charts/meshcsi

# helm is pinned and built from its Go module; the ldflags give client-only
# commands (lint, template, install --dry-run) a v1.33 default instead of
# v1.20. The harness may define HELM first; the chart and e2e use the same one.
HELM_VERSION ?= v3.19.0
HELM ?= $(TOOLS_DIR)/helm-$(HELM_VERSION)/helm
HELM_LDFLAGS := -s -w -X helm.sh/helm/v3/internal/version.version=$(HELM_VERSION) \
  -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=33

# promtool checks the shipped alert rules (and, in the e2e suite, a scrape).
APT_PACKAGES += prometheus
TEST_TARGETS += chart-lint test-chart

.PHONY: helm chart-lint test-chart

helm: $(HELM) ## Install the pinned helm into the tools cache.

$(HELM):
	GOBIN=$(dir $@) CGO_ENABLED=0 $(GO) install -ldflags "$(HELM_LDFLAGS)" helm.sh/helm/v3/cmd/helm@$(HELM_VERSION)

chart-lint: $(HELM) ## helm lint --strict the chart (defaults and OpenShift mode).
	$(HELM) lint $(CHART_DIR) --strict --kube-version 1.33.13
	$(HELM) lint $(CHART_DIR) --strict --kube-version 1.33.13 --set openshift.enabled=true

test-chart: $(HELM) ## Chart tests: rendered objects, schema rejections, rules, dashboard, API validation.
	cd $(ROOT)/e2e && $(GO) vet -tags chart ./chart/
	cd $(ROOT)/e2e && MESHCSI_HELM=$(HELM) $(GO) test -tags chart -count=1 ./chart/
