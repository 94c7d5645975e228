//go:build linux

package mount_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/meshcsi/meshcsi/services/csi-driver/internal/mount"
	tc "github.com/meshcsi/meshcsi/services/csi-driver/internal/testcases"
)

// The tests in this file make real mounts and need root (see RequireRoot).

func setup(t *testing.T) (m *mount.Linux, kd, src, target string) {
	t.Helper()
	tc.RequireRoot(t)
	kd = tc.KubeletDir(t, "vol")
	src = filepath.Join(t.TempDir(), "agent")
	if err := os.Mkdir(src, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "agent.sock"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := mount.NewLinux(filepath.Join(kd, "pods"))
	if err != nil {
		t.Fatal(err)
	}
	return m, kd, src, tc.Target(kd, "vol")
}

func TestRootPublishIsReadOnlyAndUnwinds(t *testing.T) {
	m, kd, src, target := setup(t)
	if st, err := m.State(target); err != nil || st.Exists {
		t.Fatalf("State before = %+v, %v", st, err)
	}
	id, err := m.SourceID(src)
	if err != nil {
		t.Fatal(err)
	}
	if out, err := m.Publish(src, id, target); err != nil || out != mount.Mounted {
		t.Fatalf("Publish = %v, %v", out, err)
	}
	if out, err := m.Publish(src, id, target); err != nil || out != mount.AlreadyMounted {
		t.Fatalf("second Publish = %v, %v", out, err)
	}
	if _, err := m.Publish(src, mount.ID{Dev: 1, Ino: 1}, target); !errors.Is(err, mount.ErrOtherSource) {
		t.Fatalf("Publish of another source = %v", err)
	}
	if m.Legacy() {
		t.Log("kernel lacks the new mount API; fallback in use")
	}
	st, err := m.State(target)
	if err != nil {
		t.Fatal(err)
	}
	if !st.Mounted || !st.Secure || st.Root != id {
		t.Fatalf("State = %+v, want mounted, secure, root %+v", st, id)
	}
	if _, err := os.Stat(filepath.Join(target, "agent.sock")); err != nil {
		t.Fatalf("source content not visible: %v", err)
	}
	err = os.WriteFile(filepath.Join(target, "new"), nil, 0o644)
	if !errors.Is(err, unix.EROFS) {
		t.Fatalf("write into target = %v, want EROFS", err)
	}
	var sfs unix.Statfs_t
	if err := unix.Statfs(target, &sfs); err != nil {
		t.Fatal(err)
	}
	want := int64(unix.ST_RDONLY | unix.ST_NOSUID | unix.ST_NODEV | unix.ST_NOEXEC)
	if sfs.Flags&want != want {
		t.Fatalf("mount flags %#x lack ro,nosuid,nodev,noexec", sfs.Flags)
	}
	// The source stays writable.
	if err := os.WriteFile(filepath.Join(src, "w"), nil, 0o644); err != nil {
		t.Fatalf("source became read-only: %v", err)
	}
	// Stack two more mounts, as an older driver would have, then unwind.
	for i := 0; i < 2; i++ {
		if err := unix.Mount(src, target, "", unix.MS_BIND, ""); err != nil {
			t.Fatal(err)
		}
	}
	if got := len(tc.MountsBelow(t, kd)); got != 3 {
		t.Fatalf("stacked %d mounts, want 3", got)
	}
	n, root, err := m.Unpublish(target)
	if err != nil || n != 3 || root != id {
		t.Fatalf("Unpublish = %d, %v; want 3 unmounts", n, err)
	}
	if _, err := os.Lstat(target); !os.IsNotExist(err) {
		t.Fatalf("target still exists: %v", err)
	}
	if got := tc.MountsBelow(t, kd); len(got) != 0 {
		t.Fatalf("left mounts %v", got)
	}
	// Unpublishing again, or an unmounted directory, is fine.
	if n, _, err := m.Unpublish(target); err != nil || n != 0 {
		t.Fatalf("second Unpublish = %d, %v", n, err)
	}
	if err := os.Mkdir(target, 0o750); err != nil {
		t.Fatal(err)
	}
	if n, _, err := m.Unpublish(target); err != nil || n != 0 {
		t.Fatalf("Unpublish of a plain dir = %d, %v", n, err)
	}
}

func TestRootSecureFixesWritableMount(t *testing.T) {
	m, _, src, target := setup(t)
	if err := os.Mkdir(target, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount(src, target, "", unix.MS_BIND, ""); err != nil {
		t.Fatal(err)
	}
	st, err := m.State(target)
	if err != nil || !st.Mounted || st.Secure {
		t.Fatalf("State = %+v, %v; want a writable mount", st, err)
	}
	id, err := m.SourceID(src)
	if err != nil {
		t.Fatal(err)
	}
	if out, err := m.Publish(src, id, target); err != nil || out != mount.MadeSecure {
		t.Fatalf("Publish over a writable mount = %v, %v", out, err)
	}
	if st, _ := m.State(target); !st.Secure {
		t.Fatalf("Secure left %+v", st)
	}
	if _, _, err := m.Unpublish(target); err != nil {
		t.Fatal(err)
	}
}

func TestRootRefusesSymlinksAndRollsBack(t *testing.T) {
	m, kd, src, target := setup(t)
	outside := t.TempDir()
	link := filepath.Join(filepath.Dir(target), "link")
	if err := os.Symlink(outside, link); err != nil {
		t.Fatal(err)
	}
	id, err := m.SourceID(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{link, filepath.Join(link, "mount")} {
		if _, err := m.Publish(src, id, p); !errors.Is(err, mount.ErrSymlink) {
			t.Fatalf("Publish(%s) = %v, want ErrSymlink", p, err)
		}
		if _, err := m.State(p); !errors.Is(err, mount.ErrSymlink) {
			t.Fatalf("State(%s) = %v, want ErrSymlink", p, err)
		}
	}
	if ents, _ := os.ReadDir(outside); len(ents) != 0 {
		t.Fatalf("symlink target got %v", ents)
	}
	// A missing parent is reported, and nothing is created.
	orphan := filepath.Join(kd, "pods", "nouid", "volumes", "x", "mount")
	if _, err := m.Publish(src, id, orphan); !errors.Is(err, mount.ErrNoParent) {
		t.Fatalf("Publish without parent = %v", err)
	}
	// A failing mount (missing source) removes the directory it created.
	if _, err := m.Publish(filepath.Join(src, "missing"), id, target); err == nil {
		t.Fatal("Publish of a missing source succeeded")
	}
	if _, err := os.Lstat(target); !os.IsNotExist(err) {
		t.Fatalf("failed publish left the target: %v", err)
	}
	if got := tc.MountsBelow(t, kd); len(got) != 0 {
		t.Fatalf("left mounts %v", got)
	}
}

// TestRootKubeletDirBehindSymlink: the kubelet directory itself may be a
// link (some distributions move it); only links below the pods directory are
// refused.
func TestRootKubeletDirBehindSymlink(t *testing.T) {
	_, kd, src, _ := setup(t)
	link := filepath.Join(tc.TempDir(t, "link"), "kubelet")
	if err := os.Symlink(kd, link); err != nil {
		t.Fatal(err)
	}
	m, err := mount.NewLinux(filepath.Join(link, "pods"))
	if err != nil {
		t.Fatal(err)
	}
	id, err := m.SourceID(src)
	if err != nil {
		t.Fatal(err)
	}
	target := tc.Target(link, "vol")
	if out, err := m.Publish(src, id, target); err != nil || out != mount.Mounted {
		t.Fatalf("Publish through a linked kubelet dir = %v, %v", out, err)
	}
	if n, _, err := m.Unpublish(target); err != nil || n != 1 {
		t.Fatalf("Unpublish = %d, %v", n, err)
	}
}
