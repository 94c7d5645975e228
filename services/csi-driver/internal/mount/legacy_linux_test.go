//go:build linux

package mount

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// TestRootLegacyFallback exercises the mount(2) + remount path used on
// kernels without the new mount API. Needs root.
func TestRootLegacyFallback(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("this test needs root (CI=true)")
		}
		t.Skip("this test needs root; skipped outside CI")
	}
	dir, err := os.MkdirTemp("", "meshcsi-legacy-")
	if err != nil {
		t.Fatal(err)
	}
	pods := filepath.Join(dir, "pods")
	target := filepath.Join(pods, "uid", "vol", "mount")
	src := filepath.Join(dir, "src")
	t.Cleanup(func() {
		for unix.Unmount(target, unix.MNT_DETACH) == nil {
		}
		_ = os.RemoveAll(dir)
	})
	for _, d := range []string{filepath.Dir(target), src} {
		if err := os.MkdirAll(d, 0o750); err != nil {
			t.Fatal(err)
		}
	}
	m, err := NewLinux(pods)
	if err != nil {
		t.Fatal(err)
	}
	m.legacy.Store(true)
	id, err := m.SourceID(src)
	if err != nil {
		t.Fatal(err)
	}
	if out, err := m.Publish(src, id, target); err != nil || out != Mounted {
		t.Fatalf("Publish = %v, %v", out, err)
	}
	st, err := m.State(target)
	if err != nil || !st.Mounted || !st.Secure {
		t.Fatalf("State = %+v, %v", st, err)
	}
	if err := os.WriteFile(filepath.Join(target, "x"), nil, 0o600); !errors.Is(err, unix.EROFS) {
		t.Fatalf("write = %v, want EROFS", err)
	}
	if n, _, err := m.Unpublish(target); err != nil || n != 1 {
		t.Fatalf("Unpublish = %d, %v", n, err)
	}
}
