//go:build linux

package drivertest

import (
	"testing"

	"github.com/meshcsi/meshcsi/services/csi-driver/internal/mount/mounttest"
)

// UnmountBelow lazily unmounts every mount below dir, deepest and newest
// first, and reports how many it removed. Tests call it from t.Cleanup.
func UnmountBelow(t testing.TB, dir string) int {
	t.Helper()
	return mounttest.UnmountBelow(t, dir)
}

// MountsBelow lists the mount points below dir from the mount table.
func MountsBelow(t testing.TB, dir string) []string {
	t.Helper()
	return mounttest.MountsBelow(t, dir)
}
