//go:build linux

package mount_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	tc "github.com/meshcsi/meshcsi/services/csi-driver/internal/drivertest"
	"github.com/meshcsi/meshcsi/services/csi-driver/internal/mount"
)

// TestRootLegacyFallback exercises the mount(2) + remount path used on
// kernels without mount_setattr. Needs root.
func TestRootLegacyFallback(t *testing.T) {
	tc.RequireRoot(t)
	kd := tc.KubeletDir(t, "vol")
	src := filepath.Join(tc.TempDir(t, "src"), "agent")
	if err := os.Mkdir(src, 0o750); err != nil {
		t.Fatal(err)
	}
	m, err := mount.NewLinux(mount.Config{PodsDir: filepath.Join(kd, "pods"), Sources: []mount.Source{{Name: "agent", Path: src}}})
	if err != nil {
		t.Fatal(err)
	}
	mount.ForceLegacy(m)
	target := tc.Target(kd, "vol")
	if r, err := m.Publish("agent", target); err != nil || r.Outcome != mount.Mounted {
		t.Fatalf("Publish = %+v, %v", r, err)
	}
	if r, err := m.Publish("agent", target); err != nil || r.Outcome != mount.AlreadyMounted {
		t.Fatalf("second Publish = %+v, %v (the legacy mount must be recognised as ours)", r, err)
	}
	if err := os.WriteFile(filepath.Join(target, "x"), nil, 0o600); !errors.Is(err, unix.EROFS) {
		t.Fatalf("write = %v, want EROFS", err)
	}
	if r, err := m.Unpublish(target); err != nil || r.Unmounted != 1 {
		t.Fatalf("Unpublish = %+v, %v", r, err)
	}
}
