//go:build linux

package mount

import (
	"fmt"
	"math"
	"path/filepath"
	"strings"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

// deletedSuffix is what the kernel appends to a mount's root in mountinfo
// once that directory has been removed.
const deletedSuffix = "//deleted"

// Recover implements Mounter: it reads /proc/self/mountinfo once.
func (m *Linux) Recover() (map[string]int, error) {
	infos, err := mountinfo.GetMounts(nil)
	if err != nil {
		return nil, fmt.Errorf("failed to read the mount table: %w", err)
	}
	return m.recoverFrom(infos), nil
}

// fsRoot is where a source lies in its filesystem, as mountinfo shows the
// root of a bind mount made from it.
type fsRoot struct {
	major, minor int
	root         string
}

// locate finds the filesystem and the path within it of the canonical path
// p: the last-mounted of the mounts whose mount point is the longest prefix.
func locate(infos []*mountinfo.Info, p string) (fsRoot, bool) {
	var best *mountinfo.Info
	for _, in := range infos {
		if within(p, in.Mountpoint) && (best == nil || len(in.Mountpoint) >= len(best.Mountpoint)) {
			best = in
		}
	}
	if best == nil {
		return fsRoot{}, false
	}
	rel := strings.TrimPrefix(strings.TrimPrefix(p, best.Mountpoint), "/")
	return fsRoot{major: best.Major, minor: best.Minor, root: filepath.Join(best.Root, rel)}, true
}

// recoverFrom recognises, among the mounts at targets below the pods
// directory, the ones of ours, records their roots as source roots and
// counts them. Each target is opened and checked through descriptors as a
// request would; the table tells which filesystem and root its top mount
// (found by statx's mount ID) has.
func (m *Linux) recoverFrom(infos []*mountinfo.Info) map[string]int {
	byID := make(map[int]*mountinfo.Info, len(infos))
	for _, in := range infos {
		byID[in.ID] = in
	}
	roots := map[*source]fsRoot{}
	for _, s := range m.sources {
		if r, ok := locate(infos, s.canonical); ok {
			roots[s] = r
		}
	}
	podsReal := canonical(m.podsDir)
	seen := map[string]bool{}
	for _, in := range infos {
		rel, ok := strings.CutPrefix(in.Mountpoint, podsReal+"/")
		if !ok || seen[rel] {
			continue
		}
		seen[rel] = true
		t, err := splitTarget(m.podsDir, m.podsDir+"/"+rel)
		if err != nil {
			continue
		}
		if s := m.recoverTarget(t, byID, roots); s != nil {
			m.count(t.path, s)
		}
	}
	return m.published()
}

func (m *Linux) recoverTarget(t target, byID map[int]*mountinfo.Info, roots map[*source]fsRoot) *source {
	parent, err := m.openParent(t)
	if err != nil {
		return nil
	}
	defer unix.Close(parent)
	fd, n, err := openLeaf(parent, t.leaf)
	if err != nil {
		return nil
	}
	defer unix.Close(fd)
	if !n.mounted || n.mode&unix.S_IFMT != unix.S_IFDIR {
		return nil
	}
	var stx unix.Statx_t
	if err := unix.Statx(fd, "", unix.AT_EMPTY_PATH|unix.AT_SYMLINK_NOFOLLOW, unix.STATX_MNT_ID, &stx); err != nil ||
		stx.Mask&unix.STATX_MNT_ID == 0 || stx.Mnt_id > math.MaxInt32 {
		return nil
	}
	in := byID[int(stx.Mnt_id)]
	if in == nil {
		return nil
	}
	for _, s := range m.sources {
		r, ok := roots[s]
		if !ok || r.major != in.Major || r.minor != in.Minor || (in.Root != r.root && in.Root != r.root+deletedSuffix) {
			continue
		}
		var sfs unix.Statfs_t
		if err := unix.Fstatfs(fd, &sfs); err != nil || sfs.Flags&secureFlags != secureFlags {
			return nil
		}
		s.dev.CompareAndSwap(0, n.root.Dev)
		m.mu.Lock()
		m.known[n.root] = s
		m.mu.Unlock()
		return s
	}
	return nil
}
