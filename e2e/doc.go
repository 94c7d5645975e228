// Package e2e holds meshcsi's end-to-end suite (build tag e2e): the Helm chart
// installed with helm on a real single-node cluster started by
// libs/kubeharness, workloads mounting a node agent's socket through the CSI
// volume, a real Prometheus scraping the driver, and `helm uninstall` handing
// removal to the sentinel. Its subpackages serve the suite, the chart tests
// (e2e/chart, build tag chart) and the demo (e2e/cmd/demo). See docs/e2e.md.
package e2e
