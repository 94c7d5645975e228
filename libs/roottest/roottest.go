// Package roottest decides what a test that needs root does without it. In
// CI (CI=true), which runs `make test` as root, a missing root is a failure:
// a root-only suite must never pass by skipping itself. A developer who runs
// the tests as another user gets a skip that says how to run them.
package roottest

import (
	"fmt"
	"os"
	"testing"
)

// Missing reports whether this process lacks root and, if so, the message a
// test or TestMain prints and whether it must fail (in CI) rather than skip.
// what names the suite, e.g. "the e2e suite (kubelet, containerd)".
func Missing(what string) (missing bool, msg string, fail bool) {
	if os.Geteuid() == 0 {
		return false, "", false
	}
	if os.Getenv("CI") == "true" {
		return true, fmt.Sprintf("%s needs root, and CI runs `make test` as root: this CI machine does not", what), true
	}
	return true, fmt.Sprintf("skipped: %s needs root; run `make test` as root to run it", what), false
}

// Require stops t unless the process runs as root: it fails in CI and skips
// elsewhere (see Missing).
func Require(t testing.TB, what string) {
	t.Helper()
	missing, msg, fail := Missing(what)
	switch {
	case !missing:
	case fail:
		t.Fatal(msg)
	default:
		t.Skip(msg)
	}
}
