//go:build linux

package testcases

import (
	"os"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/meshcsi/meshcsi/services/csi-driver/internal/mount"
)

// UnmountBelow lazily unmounts every mount below dir, deepest and newest
// first, and reports how many it removed. Tests call it from t.Cleanup.
func UnmountBelow(t testing.TB, dir string) int {
	t.Helper()
	n := 0
	for round := 0; round < 100000; round++ {
		mps := MountsBelow(t, dir)
		if len(mps) == 0 {
			return n
		}
		if err := unix.Unmount(mps[len(mps)-1], unix.MNT_DETACH|unix.UMOUNT_NOFOLLOW); err != nil {
			t.Errorf("cleanup: unmount %s: %v", mps[len(mps)-1], err)
			return n
		}
		n++
	}
	return n
}

// MountsBelow lists the mount points below dir from the mount table.
func MountsBelow(t testing.TB, dir string) []string {
	t.Helper()
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	mps, err := mount.PointsBelow(f, dir)
	if err != nil {
		t.Fatal(err)
	}
	return mps
}
