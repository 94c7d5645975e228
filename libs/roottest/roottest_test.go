package roottest

import (
	"os"
	"strings"
	"testing"
)

func TestMissing(t *testing.T) {
	if os.Geteuid() == 0 {
		if missing, _, _ := Missing("x"); missing {
			t.Fatal("root reported as missing")
		}
		t.Skip("the non-root branches need a non-root user")
	}
	t.Setenv("CI", "true")
	missing, msg, fail := Missing("the suite")
	if !missing || !fail || !strings.Contains(msg, "the suite needs root") {
		t.Errorf("in CI: %v %q %v, want a failure", missing, msg, fail)
	}
	t.Setenv("CI", "")
	missing, msg, fail = Missing("the suite")
	if !missing || fail || !strings.Contains(msg, "run `make test` as root") {
		t.Errorf("for a developer: %v %q %v, want a skip naming make test", missing, msg, fail)
	}
}
