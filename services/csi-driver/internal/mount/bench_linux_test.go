//go:build linux

package mount_test

import (
	"testing"

	tc "github.com/meshcsi/meshcsi/services/csi-driver/internal/drivertest"
)

// BenchmarkRootPublishUnpublish measures one publish and one unpublish of a
// fresh target (open source and parent, mkdir, clone, attach; check, umount,
// rmdir): the mount layer's whole per-request cost.
func BenchmarkRootPublishUnpublish(b *testing.B) {
	e := newEnv(b, "vol")
	target := tc.Target(e.kd, "vol")
	for b.Loop() {
		if _, err := e.m.Publish("agent", target); err != nil {
			b.Fatal(err)
		}
		if _, err := e.m.Unpublish(target); err != nil {
			b.Fatal(err)
		}
	}
}
