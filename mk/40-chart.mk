# The Helm chart (charts/meshcsi): lint and the chart tests (e2e/chart).

CHART_DIR := $(ROOT)/charts/meshcsi

# helm is the pinned one from the harness fragment (mk/20-harness.mk: HELM).
# Client-only commands get --kube-version: a helm built from the module proxy
# carries no Kubernetes-version ldflags and would otherwise assume v1.20.

# promtool checks the shipped alert rules (and, in the e2e suite, a scrape).
APT_PACKAGES += prometheus
TEST_TARGETS += chart-lint test-chart

.PHONY: chart-lint test-chart

chart-lint: $(HELM) ## helm lint --strict the chart (defaults and OpenShift mode).
	$(HELM) lint $(CHART_DIR) --strict --kube-version 1.33.13
	$(HELM) lint $(CHART_DIR) --strict --kube-version 1.33.13 --set openshift.enabled=true
	$(HELM) lint $(CHART_DIR) --strict --kube-version 1.30.0

test-chart: deps kube-binaries $(HELM) build-sentinel ## Chart tests: rendered objects, schema rejections, rules, dashboard, API validation.
	cd $(ROOT)/e2e && MESHCSI_HELM=$(HELM) MESHCSI_SENTINEL_BIN=$(SENTINEL_BIN) $(GO) test -tags chart -count=1 ./chart/
	@echo ">> OpenShift SCC admission of the rendered chart (e2e/openshift, outside go.work)"
	cd $(ROOT)/e2e/openshift && GOWORK=off $(GO) vet ./... && \
	  GOWORK=off MESHCSI_HELM=$(HELM) $(GO) test -count=1 ./...
