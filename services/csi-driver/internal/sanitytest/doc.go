// Package sanitytest runs csi-test's sanity suite against the real driver
// over its Unix socket. It holds only tests: Ginkgo allows one suite per test
// binary, so the suite lives in a package of its own.
package sanitytest
