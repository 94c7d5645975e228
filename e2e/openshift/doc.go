// Package openshift checks the chart's OpenShift objects with OpenShift's own
// SecurityContextConstraints admission code
// (github.com/openshift/apiserver-library-go sccmatching) instead of by
// reading them.
//
// It is a module of its own, outside go.work: OpenShift's libraries pull
// k8s.io/kubernetes and newer k8s.io/* requirements, which the replace
// block in go.mod pins to the project's v1.33.13. Kept apart, none of that
// reaches the workspace's build list (and so no production module). Run it
// with `make test-chart` (GOWORK=off).
package openshift
