//go:build linux

package mount_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	tc "github.com/meshcsi/meshcsi/services/csi-driver/internal/drivertest"
	"github.com/meshcsi/meshcsi/services/csi-driver/internal/mount"
	"github.com/meshcsi/meshcsi/services/csi-driver/internal/mount/mounttest"
)

// The tests in this file make real mounts and need root (see RequireRoot).
// After every scenario the driver's published count is held against the
// mount table (mounttest.AssertPublished).

type env struct {
	m          *mount.Linux
	kd, pods   string
	src, other string
	sources    []mount.Source
}

func newEnv(t testing.TB, vols ...string) *env {
	t.Helper()
	tc.RequireRoot(t)
	// The sources' directory first: cleanups run last-in first-out, so the
	// mounts below the kubelet directory are gone before it is removed.
	base := tc.TempDir(t, "src")
	e := &env{kd: tc.KubeletDir(t, vols...)}
	e.pods = filepath.Join(e.kd, "pods")
	e.src = filepath.Join(base, "agent")
	e.other = filepath.Join(base, "other")
	for _, d := range []string{e.src, e.other} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(e.src, "agent.sock"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	e.sources = []mount.Source{{Name: "agent", Path: e.src}, {Name: "other", Path: e.other}}
	e.m = e.restart(t)
	return e
}

// restart builds a new Mounter, as a restarted driver does, and recovers.
func (e *env) restart(t testing.TB) *mount.Linux {
	t.Helper()
	m, err := mount.NewLinux(mount.Config{PodsDir: e.pods, Sources: e.sources})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Recover(); err != nil {
		t.Fatal(err)
	}
	e.m = m
	return m
}

func (e *env) assertCount(t testing.TB) {
	t.Helper()
	mounttest.AssertPublished(t, mount.Published(e.m), e.pods, e.sources)
}

// bindRO makes a read-only, nosuid, nodev, noexec bind mount of src on dst
// the way an older meshcsi did (mount(2) and a remount).
func bindRO(t *testing.T, src, dst string) {
	t.Helper()
	if err := unix.Mount(src, dst, "", unix.MS_BIND, ""); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("", dst, "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		t.Fatal(err)
	}
}

func TestRootPublishIsReadOnlyAndUnwinds(t *testing.T) {
	e := newEnv(t, "vol")
	target := tc.Target(e.kd, "vol")
	if r, err := e.m.Publish("agent", target); err != nil || r.Outcome != mount.Mounted || r.Delta != 1 || r.Source != "agent" {
		t.Fatalf("Publish = %+v, %v", r, err)
	}
	e.assertCount(t)
	if r, err := e.m.Publish("agent", target); err != nil || r.Outcome != mount.AlreadyMounted || r.Delta != 0 {
		t.Fatalf("second Publish = %+v, %v", r, err)
	}
	if _, err := e.m.Publish("other", target); !errors.Is(err, mount.ErrOtherSource) {
		t.Fatalf("Publish of another source = %v, want ErrOtherSource", err)
	}
	if _, err := os.Stat(filepath.Join(target, "agent.sock")); err != nil {
		t.Fatalf("source content not visible: %v", err)
	}
	if err := os.WriteFile(filepath.Join(target, "new"), nil, 0o644); !errors.Is(err, unix.EROFS) {
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
	if err := os.WriteFile(filepath.Join(e.src, "w"), nil, 0o644); err != nil {
		t.Fatalf("source became read-only: %v", err)
	}
	// Stack two more mounts of ours, as a peer replaying publish would.
	for i := 0; i < 2; i++ {
		bindRO(t, e.src, target)
	}
	e.assertCount(t)
	r, err := e.m.Unpublish(target)
	if err != nil || r.Unmounted != 3 || r.Outcome != mount.Unmounted || r.Source != "agent" || r.Delta != -1 {
		t.Fatalf("Unpublish = %+v, %v; want 3 unmounts of agent", r, err)
	}
	if _, err := os.Lstat(target); !os.IsNotExist(err) {
		t.Fatalf("target still exists: %v", err)
	}
	if got := tc.MountsBelow(t, e.kd); len(got) != 0 {
		t.Fatalf("left mounts %v", got)
	}
	e.assertCount(t)
	// Unpublishing again, or an unmounted directory, is fine.
	if r, err := e.m.Unpublish(target); err != nil || r.Outcome != mount.NothingMounted || r.Delta != 0 {
		t.Fatalf("second Unpublish = %+v, %v", r, err)
	}
	if err := os.Mkdir(target, 0o750); err != nil {
		t.Fatal(err)
	}
	if r, err := e.m.Unpublish(target); err != nil || r.Unmounted != 0 {
		t.Fatalf("Unpublish of a plain dir = %+v, %v", r, err)
	}
	if _, err := os.Lstat(target); !os.IsNotExist(err) {
		t.Fatalf("empty target directory left: %v", err)
	}
	e.assertCount(t)
}

func TestRootRefusesSymlinksAndRollsBack(t *testing.T) {
	e := newEnv(t, "vol")
	target := tc.Target(e.kd, "vol")
	outside := tc.TempDir(t, "outside")
	volDir := filepath.Dir(filepath.Dir(target)) // .../kubernetes.io~csi
	if err := os.Symlink(outside, filepath.Join(volDir, "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(filepath.Dir(target), "mount")); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{filepath.Join(volDir, "link", "mount"), target} {
		if _, err := e.m.Publish("agent", p); !errors.Is(err, mount.ErrSymlink) {
			t.Fatalf("Publish(%s) = %v, want ErrSymlink", p, err)
		}
		if _, err := e.m.Unpublish(p); !errors.Is(err, mount.ErrSymlink) {
			t.Fatalf("Unpublish(%s) = %v, want ErrSymlink", p, err)
		}
	}
	if ents, _ := os.ReadDir(outside); len(ents) != 0 {
		t.Fatalf("symlink target got %v", ents)
	}
	if err := os.Remove(target); err != nil {
		t.Fatal(err)
	}
	// A missing parent is reported, and nothing is created.
	orphan := tc.Target(e.kd, "nothere")
	if _, err := e.m.Publish("agent", orphan); !errors.Is(err, mount.ErrNoParent) {
		t.Fatalf("Publish without parent = %v", err)
	}
	// A failing mount (missing source) removes the directory it created.
	if err := os.Rename(e.src, e.src+".away"); err != nil {
		t.Fatal(err)
	}
	var se *mount.SourceError
	if _, err := e.m.Publish("agent", target); !errors.As(err, &se) || !errors.Is(err, fs.ErrNotExist) || se.Name != "agent" {
		t.Fatalf("Publish of a missing source = %v, want a SourceError wrapping fs.ErrNotExist", err)
	}
	if _, err := os.Lstat(target); !os.IsNotExist(err) {
		t.Fatalf("failed publish left the target: %v", err)
	}
	if got := tc.MountsBelow(t, e.kd); len(got) != 0 {
		t.Fatalf("left mounts %v", got)
	}
	e.assertCount(t)
}

// TestRootKubeletDirBehindSymlink: the kubelet directory itself may be a
// link (some distributions move it); only links below the pods directory are
// refused.
func TestRootKubeletDirBehindSymlink(t *testing.T) {
	e := newEnv(t, "vol")
	link := filepath.Join(tc.TempDir(t, "link"), "kubelet")
	if err := os.Symlink(e.kd, link); err != nil {
		t.Fatal(err)
	}
	e.pods = filepath.Join(link, "pods")
	e.restart(t)
	target := tc.Target(link, "vol")
	if r, err := e.m.Publish("agent", target); err != nil || r.Outcome != mount.Mounted {
		t.Fatalf("Publish through a linked kubelet dir = %+v, %v", r, err)
	}
	e.assertCount(t)
	// A restarted driver finds it under the configured (linked) path.
	e.restart(t)
	if got := mount.Published(e.m); got["agent"] != 1 {
		t.Fatalf("after restart Published = %v", got)
	}
	if r, err := e.m.Unpublish(target); err != nil || r.Unmounted != 1 || r.Delta != -1 {
		t.Fatalf("Unpublish = %+v, %v", r, err)
	}
	e.assertCount(t)
}
