// Package sanity_test runs csi-test's sanity suite against the real driver
// over its Unix socket. It lives in the driver's test module so that
// csi-test, Ginkgo and Gomega stay out of the driver's own go.mod, and in a
// package of its own because Ginkgo allows one suite per test binary.
package sanity_test
