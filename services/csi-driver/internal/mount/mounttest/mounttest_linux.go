//go:build linux

package mounttest

import (
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"

	"github.com/meshcsi/meshcsi/services/csi-driver/internal/mount"
)

// Below returns the entries of the mount table whose mount point is strictly
// below dir (whose own symbolic links are resolved), in table order.
func Below(t testing.TB, dir string) []*mountinfo.Info {
	t.Helper()
	real := resolve(dir)
	infos, err := mountinfo.GetMounts(mountinfo.PrefixFilter(real))
	if err != nil {
		t.Fatalf("failed to read the mount table: %v", err)
	}
	out := infos[:0]
	for _, in := range infos {
		if in.Mountpoint != real {
			out = append(out, in)
		}
	}
	return out
}

// MountsBelow lists the mount points strictly below dir, once per mount (a
// mount point with stacked mounts appears once per mount), in table order.
func MountsBelow(t testing.TB, dir string) []string {
	t.Helper()
	var mps []string
	for _, in := range Below(t, dir) {
		mps = append(mps, in.Mountpoint)
	}
	return mps
}

// UnmountBelow lazily unmounts every mount below dir, newest first, and
// returns how many it removed. Tests call it from t.Cleanup.
func UnmountBelow(t testing.TB, dir string) int {
	t.Helper()
	n := 0
	for round := 0; round < 1<<17; round++ {
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

// Recognised counts, per source name, the targets below podsDir whose top
// mount is one the driver would unmount, read from the mount table alone:
// mounted read-only, nosuid, nodev and noexec, from the filesystem and root
// path of the source (also once the source directory was removed). It is an
// oracle independent of the driver's own bookkeeping.
func Recognised(t testing.TB, podsDir string, sources []mount.Source) map[string]int {
	t.Helper()
	all, err := mountinfo.GetMounts(nil)
	if err != nil {
		t.Fatalf("failed to read the mount table: %v", err)
	}
	type loc struct {
		dev  [2]int
		root string
	}
	locs := map[string]loc{}
	for _, s := range sources {
		c := resolve(s.Path)
		var best *mountinfo.Info
		for _, in := range all {
			if (c == in.Mountpoint || in.Mountpoint == "/" || strings.HasPrefix(c, in.Mountpoint+"/")) &&
				(best == nil || len(in.Mountpoint) >= len(best.Mountpoint)) {
				best = in
			}
		}
		if best != nil {
			rel := strings.TrimPrefix(strings.TrimPrefix(c, best.Mountpoint), "/")
			locs[s.Name] = loc{dev: [2]int{best.Major, best.Minor}, root: filepath.Join(best.Root, rel)}
		}
	}
	below := Below(t, podsDir)
	out := map[string]int{}
	seen := map[string]bool{}
	for i := len(below) - 1; i >= 0; i-- {
		in := below[i]
		// The top mount at a mount point is the newest one that no other
		// mount at the same point sits on.
		if seen[in.Mountpoint] || stackedOn(below, in) {
			continue
		}
		seen[in.Mountpoint] = true
		opts := map[string]bool{}
		for _, o := range strings.Split(in.Options, ",") {
			opts[o] = true
		}
		if !opts["ro"] || !opts["nosuid"] || !opts["nodev"] || !opts["noexec"] {
			continue
		}
		for name, l := range locs {
			if l.dev == [2]int{in.Major, in.Minor} && (in.Root == l.root || in.Root == l.root+"//deleted") {
				out[name]++
			}
		}
	}
	return out
}

func stackedOn(infos []*mountinfo.Info, in *mountinfo.Info) bool {
	for _, o := range infos {
		if o.Parent == in.ID && o.Mountpoint == in.Mountpoint {
			return true
		}
	}
	return false
}

// AssertPublished fails the test unless got (the driver's published count
// per source, zero entries omitted) equals Recognised.
func AssertPublished(t testing.TB, got map[string]int, podsDir string, sources []mount.Source) {
	t.Helper()
	want := Recognised(t, podsDir, sources)
	clean := map[string]int{}
	for k, v := range got {
		if v != 0 {
			clean[k] = v
		}
	}
	if !reflect.DeepEqual(clean, want) {
		t.Fatalf("published count %v, but the mount table holds %v mounts the driver would unmount", clean, want)
	}
}

// resolve resolves the links of p, which tests create before they look.
func resolve(p string) string {
	if r, err := filepath.EvalSymlinks(p); err == nil {
		return r
	}
	return p
}
