//go:build linux

package mount

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

const (
	secureAttrs = unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV | unix.MOUNT_ATTR_NOEXEC
	secureFlags = unix.ST_RDONLY | unix.ST_NOSUID | unix.ST_NODEV | unix.ST_NOEXEC
	// maxUnwind bounds the unmount loop; a known peer stacked up to 16,384
	// mounts on one target.
	maxUnwind = 1 << 17
	// resolveStrict refuses every symbolic link and any escape from the
	// directory the walk starts in.
	resolveStrict = unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS
)

// Linux mounts with the new mount API (open_tree, mount_setattr,
// move_mount): the clone of the source is made read-only, nosuid, nodev and
// noexec while it is still detached, so it is never writable at the target.
// On kernels without that API (before 5.12) it falls back to mount(2) with
// MS_BIND followed by a read-only remount, which leaves a short window in
// which the bind mount is writable.
type Linux struct {
	podsDir string
	// podsReal is podsDir with symbolic links resolved, set once the
	// directory exists. Targets are opened from it in one openat2 with
	// RESOLVE_NO_SYMLINKS, so no link below it is ever followed.
	podsReal atomic.Pointer[string]
	// legacy is set once the new mount API was found missing.
	legacy atomic.Bool
}

// NewLinux returns a Mounter for targets below podsDir (an absolute, clean
// path; it need not exist yet, the kubelet creates it).
func NewLinux(podsDir string) (*Linux, error) {
	if !filepath.IsAbs(podsDir) || filepath.Clean(podsDir) != podsDir {
		return nil, fmt.Errorf("pods directory %q must be an absolute, clean path", podsDir)
	}
	return &Linux{podsDir: podsDir}, nil
}

// Legacy reports whether the fallback (mount(2) + remount) is in use.
func (m *Linux) Legacy() bool { return m.legacy.Load() }

// SourceID implements Mounter.
func (m *Linux) SourceID(source string) (ID, error) {
	var st unix.Stat_t
	if err := unix.Stat(source, &st); err != nil {
		return ID{}, &fs.PathError{Op: "stat", Path: source, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return ID{}, fmt.Errorf("source %s: %w", source, ErrNotDir)
	}
	return ID{Dev: st.Dev, Ino: st.Ino}, nil
}

// rel splits target into its path relative to the pods directory.
func (m *Linux) rel(target string) (string, error) {
	r, ok := strings.CutPrefix(target, m.podsDir+"/")
	if !ok || r == "" {
		return "", fmt.Errorf("%s: %w", target, ErrOutside)
	}
	return r, nil
}

// openBeneath opens rel (lexically clean, validated by the caller) below the
// pods directory with O_PATH, refusing every symbolic link on the way. The
// kubelet directory itself may be reached through a link (it is resolved
// once); nothing below it may.
func (m *Linux) openBeneath(rel string, flags uint64) (int, error) {
	root := m.podsReal.Load()
	if root == nil {
		r, err := filepath.EvalSymlinks(m.podsDir)
		if err != nil {
			return -1, fmt.Errorf("failed to resolve %s: %w", m.podsDir, err)
		}
		root = &r
		m.podsReal.Store(root)
	}
	path := *root
	if rel != "" {
		path += "/" + rel
	}
	return openat2(unix.AT_FDCWD, path, flags, unix.RESOLVE_NO_SYMLINKS|unix.RESOLVE_NO_MAGICLINKS)
}

func openat2(dir int, rel string, flags, resolve uint64) (int, error) {
	for {
		fd, err := unix.Openat2(dir, rel, &unix.OpenHow{
			Flags:   unix.O_PATH | unix.O_CLOEXEC | flags,
			Resolve: resolve,
		})
		switch {
		case err == nil:
			return fd, nil
		case errors.Is(err, unix.EINTR), errors.Is(err, unix.EAGAIN):
			continue
		case errors.Is(err, unix.ELOOP), errors.Is(err, unix.EXDEV):
			return -1, fmt.Errorf("%s: %w", rel, ErrSymlink)
		case errors.Is(err, unix.ENOTDIR) && flags&unix.O_DIRECTORY != 0:
			return -1, fmt.Errorf("%s: %w", rel, ErrNotDir)
		default:
			return -1, &fs.PathError{Op: "openat2", Path: rel, Err: err}
		}
	}
}

// stateFD describes the directory open at fd; withFlags also reads the
// mount flags (Secure), which only publish needs.
func stateFD(fd int, withFlags bool) (State, error) {
	var stx unix.Statx_t
	if err := unix.Statx(fd, "", unix.AT_EMPTY_PATH|unix.AT_SYMLINK_NOFOLLOW, unix.STATX_TYPE|unix.STATX_INO, &stx); err != nil {
		return State{}, fmt.Errorf("failed to statx target: %w", err)
	}
	s := State{
		Exists: true,
		Root:   ID{Dev: unix.Mkdev(stx.Dev_major, stx.Dev_minor), Ino: stx.Ino},
	}
	if stx.Attributes_mask&unix.STATX_ATTR_MOUNT_ROOT == 0 {
		return State{}, fmt.Errorf("statx does not report mount roots: %w", ErrUnsupported)
	}
	s.Mounted = stx.Attributes&unix.STATX_ATTR_MOUNT_ROOT != 0
	if s.Mounted && withFlags {
		var sfs unix.Statfs_t
		if err := unix.Fstatfs(fd, &sfs); err != nil {
			return State{}, fmt.Errorf("failed to statfs target: %w", err)
		}
		s.Secure = sfs.Flags&secureFlags == secureFlags
	}
	return s, nil
}

// State implements Mounter.
func (m *Linux) State(target string) (State, error) {
	rel, err := m.rel(target)
	if err != nil {
		return State{}, err
	}
	fd, err := m.openBeneath(rel, unix.O_DIRECTORY)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return State{}, nil
		}
		return State{}, err
	}
	defer unix.Close(fd)
	return stateFD(fd, true)
}

// Publish implements Mounter.
func (m *Linux) Publish(source string, want ID, target string) (out Outcome, err error) {
	rel, err := m.rel(target)
	if err != nil {
		return 0, err
	}
	parentRel, base := filepath.Split(rel)
	parent, err := m.openBeneath(strings.TrimSuffix(parentRel, "/"), unix.O_DIRECTORY)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return 0, fmt.Errorf("%s: %w", target, ErrNoParent)
		}
		return 0, err
	}
	defer unix.Close(parent)

	tfd, err := openat2(parent, base, unix.O_DIRECTORY, resolveStrict)
	created := false
	if errors.Is(err, fs.ErrNotExist) {
		if err := unix.Mkdirat(parent, base, 0o750); err == nil {
			created = true
		} else if !errors.Is(err, unix.EEXIST) {
			return 0, &fs.PathError{Op: "mkdir", Path: target, Err: err}
		}
		tfd, err = openat2(parent, base, unix.O_DIRECTORY, resolveStrict)
	}
	if created {
		defer func() {
			if err != nil {
				if rmErr := unix.Unlinkat(parent, base, unix.AT_REMOVEDIR); rmErr != nil {
					err = errors.Join(err, &fs.PathError{Op: "rmdir", Path: target, Err: rmErr})
				}
			}
		}()
	}
	if err != nil {
		return 0, err
	}
	defer unix.Close(tfd)

	if !created {
		st, err := stateFD(tfd, true)
		if err != nil {
			return 0, err
		}
		if st.Mounted {
			switch {
			case st.Root != want:
				return 0, fmt.Errorf("%s: %w", target, ErrOtherSource)
			case st.Secure:
				return AlreadyMounted, nil
			}
			if err := secureFD(tfd); err != nil {
				return 0, fmt.Errorf("failed to make %s read-only: %w", target, err)
			}
			return MadeSecure, nil
		}
	}

	if !m.legacy.Load() {
		err = bindNew(source, tfd)
		if !errors.Is(err, unix.ENOSYS) {
			return Mounted, err
		}
		m.legacy.Store(true)
	}
	return Mounted, bindLegacy(source, target, tfd, parent, base)
}

// bindNew clones source detached, makes the clone read-only, nosuid, nodev
// and noexec, and only then attaches it at the target: no writable window.
// The clone is not recursive, so mounts below the source are not carried.
func bindNew(source string, target int) error {
	tree, err := unix.OpenTree(unix.AT_FDCWD, source, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
	if err != nil {
		return fmt.Errorf("failed to clone %s: %w", source, err)
	}
	defer unix.Close(tree)
	if err := unix.MountSetattr(tree, "", unix.AT_EMPTY_PATH, &unix.MountAttr{Attr_set: secureAttrs}); err != nil {
		return fmt.Errorf("failed to make the clone of %s read-only: %w", source, err)
	}
	if err := unix.MoveMount(tree, "", target, "", unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH); err != nil {
		return fmt.Errorf("failed to attach the clone of %s: %w", source, err)
	}
	return nil
}

// bindLegacy is the fallback for kernels without the new mount API: bind
// through the descriptor of the target, then remount the new mount (reached
// by opening the target again, which now resolves to the mount on top)
// read-only; undone if the remount fails.
func bindLegacy(source, targetPath string, target, parent int, base string) error {
	if err := unix.Mount(source, "/proc/self/fd/"+strconv.Itoa(target), "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("failed to bind %s: %w", source, err)
	}
	top, err := openat2(parent, base, unix.O_DIRECTORY, resolveStrict)
	if err == nil {
		defer unix.Close(top)
		path := "/proc/self/fd/" + strconv.Itoa(top)
		err = unix.Mount("", path, "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "")
		if err == nil {
			return nil
		}
		return errors.Join(fmt.Errorf("failed to remount %s read-only: %w", source, err), unix.Unmount(path, unix.MNT_DETACH))
	}
	return errors.Join(err, unix.Unmount(targetPath, unix.MNT_DETACH|unix.UMOUNT_NOFOLLOW))
}

// secureFD makes the mount open at fd read-only, nosuid, nodev and noexec.
func secureFD(fd int) error {
	err := unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH, &unix.MountAttr{Attr_set: secureAttrs})
	if errors.Is(err, unix.ENOSYS) {
		path := "/proc/self/fd/" + strconv.Itoa(fd)
		err = unix.Mount("", path, "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "")
	}
	return err
}

// Unpublish implements Mounter. The path is checked for symbolic links once
// with openat2; the unmounts then use the path with UMOUNT_NOFOLLOW (an open
// descriptor would keep the mount busy). Only root can change the pods
// directory between the two steps. A mount that is busy (EBUSY: a process
// still holds something in it) is detached lazily (MNT_DETACH) rather than
// failing the unpublish and stranding the pod. Plain umount comes first
// because a lazy one defers work that slows the next mount operation on the
// node by ~150 µs.
func (m *Linux) Unpublish(target string) (int, ID, error) {
	rel, err := m.rel(target)
	if err != nil {
		return 0, ID{}, err
	}
	fd, err := m.openBeneath(rel, 0)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return 0, ID{}, nil
		}
		return 0, ID{}, err
	}
	st, err := stateFD(fd, false)
	_ = unix.Close(fd)
	if err != nil {
		return 0, ID{}, err
	}
	n := 0
	for mounted := st.Mounted; mounted; n++ {
		if n >= maxUnwind {
			return n, st.Root, fmt.Errorf("failed to unwind %s: more than %d mounts", target, maxUnwind)
		}
		err := unix.Unmount(target, unix.UMOUNT_NOFOLLOW)
		if errors.Is(err, unix.EBUSY) {
			err = unix.Unmount(target, unix.MNT_DETACH|unix.UMOUNT_NOFOLLOW)
		}
		if err != nil {
			if errors.Is(err, unix.EINVAL) {
				break // not a mount point any more
			}
			return n, st.Root, fmt.Errorf("failed to unmount %s: %w", target, err)
		}
		if mounted, err = isMountRoot(target); err != nil {
			return n + 1, st.Root, err
		}
	}
	err = unix.Unlinkat(unix.AT_FDCWD, target, unix.AT_REMOVEDIR)
	if errors.Is(err, unix.ENOTDIR) {
		err = unix.Unlinkat(unix.AT_FDCWD, target, 0)
	}
	switch {
	case err == nil, errors.Is(err, unix.ENOENT):
		return n, st.Root, nil
	case errors.Is(err, unix.ENOTEMPTY), errors.Is(err, unix.EEXIST):
		return n, st.Root, fmt.Errorf("%s: %w", target, ErrNotEmpty)
	default:
		return n, st.Root, &fs.PathError{Op: "remove", Path: target, Err: err}
	}
}

func isMountRoot(path string) (bool, error) {
	var stx unix.Statx_t
	if err := unix.Statx(unix.AT_FDCWD, path, unix.AT_SYMLINK_NOFOLLOW, unix.STATX_TYPE, &stx); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return false, nil
		}
		return false, fmt.Errorf("failed to statx %s: %w", path, err)
	}
	return stx.Attributes&unix.STATX_ATTR_MOUNT_ROOT != 0, nil
}
