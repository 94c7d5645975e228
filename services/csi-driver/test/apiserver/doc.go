// Package apiserver tests the driver binary against a real kube-apiserver
// (the harness's control plane): its namespace selector, read through its
// ServiceAccount under the RBAC the chart renders, decides publishes with
// real mounts. The tests carry the `integration` build tag and need root,
// the Kubernetes binaries and helm; `make test-driver-integration` runs them.
package apiserver
