// Package chart holds the tests of the Helm chart in charts/meshcsi: they
// render it with several value sets through the pinned helm binary and assert
// on the manifests, check that values.schema.json rejects typos and bad
// types, lint the chart, check the shipped alert rules and dashboard, and
// validate the manifests against a real v1.33 API server (server-side dry
// run). They need helm, so they carry the `chart` build tag and run from
// `make test-chart`.
package chart
