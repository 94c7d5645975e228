package kubeharness

import (
	"net"
	"os"
	"path/filepath"
	"testing"
)

func TestRemoveEmptyTree(t *testing.T) {
	base := t.TempDir()
	empty := filepath.Join(base, "empty")
	if err := os.MkdirAll(filepath.Join(empty, "device-plugins"), 0o755); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("unix", filepath.Join(empty, "device-plugins", "kubelet.sock"))
	if err != nil {
		t.Fatal(err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	_ = l.Close()
	kept := filepath.Join(base, "kept")
	if err := os.MkdirAll(filepath.Join(kept, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(kept, "sub", "data"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	removeEmptyTree(empty)
	removeEmptyTree(kept)
	if _, err := os.Stat(empty); !os.IsNotExist(err) {
		t.Errorf("%s (only a socket) was not removed: %v", empty, err)
	}
	if _, err := os.Stat(filepath.Join(kept, "sub", "data")); err != nil {
		t.Errorf("a tree with a regular file lost it: %v", err)
	}
}
