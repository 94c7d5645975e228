//go:build linux

package mount

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

const (
	secureAttrs = unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV | unix.MOUNT_ATTR_NOEXEC
	secureFlags = unix.ST_RDONLY | unix.ST_NOSUID | unix.ST_NODEV | unix.ST_NOEXEC
	legacyFlags = unix.MS_REMOUNT | unix.MS_BIND | unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC
	// maxUnwind bounds the unmount loop; a known peer stacked up to 16,384
	// mounts on one target.
	maxUnwind = 1 << 17
	// resolveParent walks from the pods directory to a target's parent:
	// no symbolic link, no escape, no mount point crossed (the kubelet
	// creates those directories on the pods directory's filesystem).
	resolveParent = unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_NO_XDEV
	// resolveLeaf opens the target (one component, possibly a mount point)
	// from its parent.
	resolveLeaf = unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS
	// resolveSource opens a source by its canonical path: no symbolic link
	// on the way.
	resolveSource = unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS
	// maxRetry bounds openat2 retries on EAGAIN (a rename or mount raced
	// the walk).
	maxRetry = 256
)

type source struct {
	Source
	canonical string
	// dev is the source's device once seen (0 before); a later open on
	// another device is ErrSourceChanged.
	dev atomic.Uint64
}

// Linux mounts with the new mount API (open_tree on the source descriptor,
// mount_setattr, move_mount onto the target descriptor): the clone is made
// read-only, nosuid, nodev and noexec while still detached, so it is never
// writable at the target. On kernels without mount_setattr (before 5.12) it
// falls back to mount(2) with MS_BIND through /proc/self/fd followed by a
// read-only remount, which leaves a short window in which the bind mount is
// writable; a mount left writable by a crash in that window is not
// recognised as ours and must be removed by hand.
type Linux struct {
	podsDir string
	sources []*source
	byName  map[string]*source
	legacy  atomic.Bool

	mu sync.Mutex
	// pods is a descriptor of the pods directory (its own path resolved
	// once), -1 until it exists.
	pods int
	// known maps mount-root IDs recognised as a source's root to it.
	known map[ID]*source
	// counted maps the targets counted as published to their source.
	counted map[string]*source
}

var _ Mounter = (*Linux)(nil)

// New returns the platform's Mounter (the Linux one here).
func New(cfg Config) (Mounter, error) { return NewLinux(cfg) }

// NewLinux resolves every source once (its canonical path is logged and
// used, without following links, at every publish) and refuses a source
// that overlaps the kubelet directory.
func NewLinux(cfg Config) (*Linux, error) {
	if !filepath.IsAbs(cfg.PodsDir) || filepath.Clean(cfg.PodsDir) != cfg.PodsDir {
		return nil, fmt.Errorf("pods directory %q must be an absolute, clean path", cfg.PodsDir)
	}
	if len(cfg.Sources) == 0 {
		return nil, errors.New("at least one source is required")
	}
	if err := CheckOverlap(filepath.Dir(cfg.PodsDir), cfg.Sources); err != nil {
		return nil, err
	}
	var sfs unix.Statfs_t
	if err := unix.Statfs("/proc/self/fd", &sfs); err != nil {
		return nil, fmt.Errorf("failed to statfs /proc/self/fd (needed to unmount through descriptors): %w", err)
	}
	if sfs.Type != unix.PROC_SUPER_MAGIC {
		return nil, fmt.Errorf("/proc is not a procfs (type %#x); it is needed to unmount through descriptors", sfs.Type)
	}
	log := cfg.Logger
	if log == nil {
		log = zap.NewNop()
	}
	m := &Linux{
		podsDir: cfg.PodsDir,
		byName:  map[string]*source{},
		pods:    -1,
		known:   map[ID]*source{},
		counted: map[string]*source{},
	}
	for _, s := range cfg.Sources {
		if !filepath.IsAbs(s.Path) || filepath.Clean(s.Path) != s.Path {
			return nil, fmt.Errorf("source %s: %q must be an absolute, clean path", s.Name, s.Path)
		}
		if _, dup := m.byName[s.Name]; dup {
			return nil, fmt.Errorf("source %s configured twice", s.Name)
		}
		src := &source{Source: s, canonical: canonical(s.Path)}
		m.sources = append(m.sources, src)
		m.byName[s.Name] = src
		if fd, err := m.openSource(src); err == nil {
			_ = unix.Close(fd)
		}
		log.Info("resolved source", zap.String("source", s.Name), zap.String("path", s.Path),
			zap.String("canonical", src.canonical), zap.Uint64("dev", src.dev.Load()))
	}
	return m, nil
}

// openSource opens the source directory by its canonical path without
// following any link, checks it is still on the device it was first seen on,
// and records its ID as a source root. The clone is made from this
// descriptor, so what was checked is what is mounted.
func (m *Linux) openSource(s *source) (int, error) {
	fd, err := openat2(unix.AT_FDCWD, s.canonical, unix.O_PATH|unix.O_NOFOLLOW, resolveSource)
	if err != nil {
		switch {
		case errors.Is(err, unix.ELOOP), errors.Is(err, unix.EXDEV):
			err = fmt.Errorf("a symbolic link is on %s: %w", s.canonical, ErrSourceChanged)
		case errors.Is(err, unix.ENOTDIR):
			err = fmt.Errorf("a component of %s is not a directory: %w", s.canonical, ErrSourceChanged)
		case errors.Is(err, unix.ENOENT):
			err = &fs.PathError{Op: "open", Path: s.canonical, Err: fs.ErrNotExist}
		}
		return -1, &SourceError{Name: s.Name, Path: s.Path, Err: err}
	}
	var stx unix.Statx_t
	if err := unix.Statx(fd, "", unix.AT_EMPTY_PATH|unix.AT_SYMLINK_NOFOLLOW, unix.STATX_TYPE|unix.STATX_INO, &stx); err != nil {
		_ = unix.Close(fd)
		return -1, &SourceError{Name: s.Name, Path: s.Path, Err: fmt.Errorf("failed to statx: %w", err)}
	}
	switch stx.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
	case unix.S_IFLNK:
		_ = unix.Close(fd)
		return -1, &SourceError{Name: s.Name, Path: s.Path, Err: fmt.Errorf("%s is a symbolic link: %w", s.canonical, ErrSourceChanged)}
	default:
		_ = unix.Close(fd)
		return -1, &SourceError{Name: s.Name, Path: s.Path, Err: fmt.Errorf("%s is a %s: %w", s.canonical, kind(uint32(stx.Mode)), ErrSourceNotDirectory)}
	}
	id := ID{Dev: unix.Mkdev(stx.Dev_major, stx.Dev_minor), Ino: stx.Ino}
	if !s.dev.CompareAndSwap(0, id.Dev) && s.dev.Load() != id.Dev {
		_ = unix.Close(fd)
		return -1, &SourceError{Name: s.Name, Path: s.Path, Err: fmt.Errorf("%s is on device %d, was on %d: %w", s.canonical, id.Dev, s.dev.Load(), ErrSourceChanged)}
	}
	m.mu.Lock()
	m.known[id] = s
	m.mu.Unlock()
	return fd, nil
}

// CheckSource implements Mounter.
func (m *Linux) CheckSource(name string) error {
	s, ok := m.byName[name]
	if !ok {
		return fmt.Errorf("%q: %w", name, ErrUnknownSource)
	}
	fd, err := m.openSource(s)
	if err != nil {
		return err
	}
	return unix.Close(fd)
}

func openat2(dir int, rel string, flags, resolve uint64) (int, error) {
	for i := 0; ; i++ {
		fd, err := unix.Openat2(dir, rel, &unix.OpenHow{Flags: flags | unix.O_CLOEXEC, Resolve: resolve})
		switch {
		case err == nil:
			return fd, nil
		case errors.Is(err, unix.EINTR), errors.Is(err, unix.EAGAIN) && i < maxRetry:
			continue
		default:
			return -1, err
		}
	}
}

// podsFD returns the held descriptor of the pods directory, opening it the
// first time it exists (the kubelet directory's own links resolved once).
func (m *Linux) podsFD() (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.pods >= 0 {
		return m.pods, nil
	}
	fd, err := openat2(unix.AT_FDCWD, m.podsDir, unix.O_PATH|unix.O_DIRECTORY, 0)
	if err != nil {
		return -1, &fs.PathError{Op: "open", Path: m.podsDir, Err: err}
	}
	m.pods = fd
	return fd, nil
}

// openParent opens the target's parent from the pods directory.
func (m *Linux) openParent(t target) (int, error) {
	pods, err := m.podsFD()
	if err != nil {
		return -1, err
	}
	fd, err := openat2(pods, t.parent, unix.O_PATH|unix.O_DIRECTORY, resolveParent)
	switch {
	case err == nil:
		return fd, nil
	case errors.Is(err, unix.ELOOP):
		return -1, fmt.Errorf("%s: %w", t.path, ErrSymlink)
	case errors.Is(err, unix.EXDEV):
		return -1, fmt.Errorf("%s: %w", t.path, ErrNotBeneath)
	case errors.Is(err, unix.ENOTDIR):
		return -1, fmt.Errorf("%s: %w", t.path, ErrNotDir)
	default:
		return -1, &fs.PathError{Op: "open", Path: filepath.Dir(t.path), Err: err}
	}
}

// node is what a target's descriptor shows.
type node struct {
	mode    uint32
	mounted bool
	root    ID
}

// openLeaf opens the target from its parent (a symbolic link is opened
// itself, not followed) and describes it. ENOENT is returned as is.
func openLeaf(parent int, leaf string) (int, node, error) {
	fd, err := openat2(parent, leaf, unix.O_PATH|unix.O_NOFOLLOW, resolveLeaf)
	if err != nil {
		return -1, node{}, err
	}
	var stx unix.Statx_t
	if err := unix.Statx(fd, "", unix.AT_EMPTY_PATH|unix.AT_SYMLINK_NOFOLLOW, unix.STATX_TYPE|unix.STATX_INO, &stx); err != nil {
		_ = unix.Close(fd)
		return -1, node{}, fmt.Errorf("failed to statx target: %w", err)
	}
	if stx.Attributes_mask&unix.STATX_ATTR_MOUNT_ROOT == 0 {
		_ = unix.Close(fd)
		return -1, node{}, fmt.Errorf("statx does not report mount roots (kernel 5.8 or later needed): %w", ErrUnsupported)
	}
	return fd, node{
		mode:    uint32(stx.Mode),
		mounted: stx.Attributes&unix.STATX_ATTR_MOUNT_ROOT != 0,
		root:    ID{Dev: unix.Mkdev(stx.Dev_major, stx.Dev_minor), Ino: stx.Ino},
	}, nil
}

// recognise returns the source of the mount open at fd (whose root is n) if
// it is ours, else a *NotOursError naming what it is.
func (m *Linux) recognise(path string, fd int, n node) (*source, error) {
	var sfs unix.Statfs_t
	if err := unix.Fstatfs(fd, &sfs); err != nil {
		return nil, fmt.Errorf("failed to statfs target: %w", err)
	}
	s := m.sourceOf(n.root)
	switch {
	case s != nil && sfs.Flags&secureFlags == secureFlags:
		return s, nil
	case s != nil:
		return nil, &NotOursError{Target: path, Found: "writable, suid, dev or exec mount of source " + s.Name, Kind: KindWritableMount}
	case sfs.Type == unix.TMPFS_MAGIC:
		return nil, &NotOursError{Target: path, Found: "tmpfs mount", Kind: KindTmpfs}
	case m.onSourceDevice(n.root.Dev):
		return nil, &NotOursError{Target: path, Found: "bind mount of another directory", Kind: KindForeignBind}
	default:
		return nil, &NotOursError{Target: path, Found: fmt.Sprintf("mount of another filesystem (type %#x)", sfs.Type), Kind: KindForeignMount}
	}
}

// sourceOf returns the source whose root has id, re-opening the sources
// once if none is known (one may have been recreated since last seen).
func (m *Linux) sourceOf(id ID) *source {
	m.mu.Lock()
	s := m.known[id]
	m.mu.Unlock()
	if s != nil {
		return s
	}
	for _, s := range m.sources {
		if s.dev.Load() != id.Dev {
			continue
		}
		if fd, err := m.openSource(s); err == nil {
			_ = unix.Close(fd)
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.known[id]
}

func (m *Linux) onSourceDevice(dev uint64) bool {
	for _, s := range m.sources {
		if s.dev.Load() == dev {
			return true
		}
	}
	return false
}

// count records whether target is counted as published from s (nil: not)
// and returns the change of the count.
func (m *Linux) count(target string, s *source) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	old, had := m.counted[target]
	switch {
	case s == nil && had:
		delete(m.counted, target)
		return -1
	case s != nil && !had:
		m.counted[target] = s
		return 1
	case s != nil && old != s:
		m.counted[target] = s // cannot happen: a target holds one source
	}
	return 0
}

// published returns the number of targets counted as published, by source
// name: exactly the targets whose top mount the driver would unmount, as far
// as the driver has seen (at start and through its own calls).
func (m *Linux) published() map[string]int {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string]int{}
	for _, s := range m.counted {
		out[s.Name]++
	}
	return out
}

// Publish implements Mounter.
func (m *Linux) Publish(name, targetPath string) (res Result, err error) {
	src, ok := m.byName[name]
	if !ok {
		return res, fmt.Errorf("%q: %w", name, ErrUnknownSource)
	}
	t, err := splitTarget(m.podsDir, targetPath)
	if err != nil {
		return res, err
	}
	sfd, err := m.openSource(src)
	if err != nil {
		return res, err
	}
	defer unix.Close(sfd)
	parent, err := m.openParent(t)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return res, fmt.Errorf("%s: %w", t.path, ErrNoParent)
		}
		return res, err
	}
	defer unix.Close(parent)

	// The target is usually missing (the kubelet creates only its parent):
	// create it first and open what is there either way, rather than
	// look, create, and look again. mkdirat never follows a link at the
	// leaf (EEXIST), and what is opened is checked below as it would be
	// without the mkdirat.
	created := false
	if err := unix.Mkdirat(parent, t.leaf, 0o750); err == nil {
		created = true
	} else if !errors.Is(err, unix.EEXIST) {
		return res, &fs.PathError{Op: "mkdir", Path: t.path, Err: err}
	}
	tfd, n, err := openLeaf(parent, t.leaf)
	if created {
		defer func() {
			if err != nil {
				if rmErr := unix.Unlinkat(parent, t.leaf, unix.AT_REMOVEDIR); rmErr != nil {
					err = errors.Join(err, &fs.PathError{Op: "rmdir", Path: t.path, Err: rmErr})
				}
			}
		}()
	}
	if err != nil {
		return res, &fs.PathError{Op: "open", Path: t.path, Err: err}
	}
	defer unix.Close(tfd)

	switch {
	case n.mode&unix.S_IFMT == unix.S_IFLNK:
		return res, fmt.Errorf("%s: %w", t.path, ErrSymlink)
	case n.mode&unix.S_IFMT != unix.S_IFDIR:
		return res, notOursFile(t.path, n.mode)
	case n.mounted:
		s, err := m.recognise(t.path, tfd, n)
		switch {
		case err != nil:
			return res, err
		case s != src:
			return res, fmt.Errorf("%s holds source %s: %w", t.path, s.Name, ErrOtherSource)
		}
		return Result{Outcome: AlreadyMounted, Source: src.Name, Delta: m.count(t.path, src)}, nil
	}

	if !m.legacy.Load() {
		err = bindNew(sfd, tfd)
		if errors.Is(err, unix.ENOSYS) {
			m.legacy.Store(true)
		}
	}
	if m.legacy.Load() {
		err = bindLegacy(sfd, tfd, parent, t.leaf)
	}
	if err != nil {
		return res, fmt.Errorf("failed to mount source %s on %s: %w", src.Name, t.path, err)
	}
	return Result{Outcome: Mounted, Source: src.Name, Delta: m.count(t.path, src)}, nil
}

// bindNew clones the source open at sfd, detached, makes the clone
// read-only, nosuid, nodev and noexec, and only then attaches it at the
// target: no writable window. The clone is not recursive, so mounts below
// the source are not carried.
func bindNew(sfd, tfd int) error {
	tree, err := unix.OpenTree(sfd, "", unix.AT_EMPTY_PATH|unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
	if err != nil {
		return fmt.Errorf("failed to clone: %w", err)
	}
	defer unix.Close(tree)
	if err := unix.MountSetattr(tree, "", unix.AT_EMPTY_PATH, &unix.MountAttr{Attr_set: secureAttrs}); err != nil {
		return fmt.Errorf("failed to make the clone read-only: %w", err)
	}
	if err := unix.MoveMount(tree, "", tfd, "", unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH); err != nil {
		return fmt.Errorf("failed to attach the clone: %w", err)
	}
	return nil
}

func fdPath(fd int) string { return "/proc/self/fd/" + strconv.Itoa(fd) }

// bindLegacy is the fallback for kernels without mount_setattr: bind the
// source descriptor onto the target descriptor (through /proc/self/fd, so
// neither path is resolved again), then remount the new mount, reached by
// opening the target again from the held parent, read-only; undone if the
// remount fails.
func bindLegacy(sfd, tfd, parent int, leaf string) error {
	if err := unix.Mount(fdPath(sfd), fdPath(tfd), "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("failed to bind: %w", err)
	}
	top, _, err := openLeaf(parent, leaf)
	if err == nil {
		err = unix.Mount("", fdPath(top), "", legacyFlags, "")
		_ = unix.Close(top)
		if err == nil {
			return nil
		}
		err = fmt.Errorf("failed to remount read-only: %w", err)
	}
	return errors.Join(err, unix.Unmount(fdPath(parent)+"/"+leaf, unix.MNT_DETACH|unix.UMOUNT_NOFOLLOW))
}

// Unpublish implements Mounter. The parent of the target is opened once from
// the pods directory and held; every later step is relative to it: the
// target is opened from it and checked on its descriptor, unmounted through
// /proc/self/fd/<parent>/<leaf> with UMOUNT_NOFOLLOW (the held directory, not
// a path resolved again; the descriptor of the target itself cannot be used
// because it would keep the mount busy), and removed with unlinkat on the
// parent. A component swapped for a symbolic link after the parent was
// opened changes nothing. Only a process that can mount could stack a new
// mount on the target between its check and its unmount.
//
// A mount that is busy (EBUSY: a process still holds something in it) is
// detached lazily (MNT_DETACH) rather than failing the unpublish and
// stranding the pod. Plain umount comes first because a lazy one defers
// work that slows the next mount operation on the node by ~150 µs.
func (m *Linux) Unpublish(targetPath string) (res Result, err error) {
	res.Outcome = NothingMounted
	t, err := splitTarget(m.podsDir, targetPath)
	if err != nil {
		return res, err
	}
	parent, err := m.openParent(t)
	switch {
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, ErrNotDir):
		return m.gone(t, res), nil
	case err != nil:
		return res, err
	}
	defer unix.Close(parent)

	stale := false // the last umount2 found no mount point
	for {
		tfd, n, err := openLeaf(parent, t.leaf)
		if errors.Is(err, unix.ENOENT) {
			return m.gone(t, res), nil
		}
		if err != nil {
			return res, &fs.PathError{Op: "open", Path: t.path, Err: err}
		}
		switch {
		case n.mode&unix.S_IFMT == unix.S_IFLNK:
			_ = unix.Close(tfd)
			return res, fmt.Errorf("%s: %w", t.path, ErrSymlink)
		case n.mode&unix.S_IFMT != unix.S_IFDIR:
			_ = unix.Close(tfd)
			return m.settle(t, res), notOursFile(t.path, n.mode)
		case !n.mounted:
			_ = unix.Close(tfd)
			return m.remove(parent, t, res)
		}
		s, err := m.recognise(t.path, tfd, n)
		_ = unix.Close(tfd)
		if err != nil {
			return m.settle(t, res), err
		}
		if res.Unmounted >= maxUnwind {
			return res, fmt.Errorf("failed to unwind %s: more than %d mounts", t.path, maxUnwind)
		}
		if res.Source == "" {
			res.Source = s.Name
		}
		at := fdPath(parent) + "/" + t.leaf
		err = unix.Unmount(at, unix.UMOUNT_NOFOLLOW)
		if errors.Is(err, unix.EBUSY) {
			err = unix.Unmount(at, unix.MNT_DETACH|unix.UMOUNT_NOFOLLOW)
		}
		switch {
		case err == nil:
			res.Unmounted++
			res.Outcome = Unmounted
			stale = false
			// Most targets held one mount: remove the directory now
			// instead of opening and checking it again. rmdir removes
			// only an empty directory that is not a mount point; on
			// anything else (EBUSY: a mount is still stacked there,
			// ENOTDIR, ENOTEMPTY, ...) the loop looks again and decides
			// as it always does.
			if rmErr := unix.Unlinkat(parent, t.leaf, unix.AT_REMOVEDIR); rmErr == nil || errors.Is(rmErr, unix.ENOENT) {
				return m.gone(t, res), nil
			}
		case errors.Is(err, unix.EINVAL) && !stale:
			// Not a mount point any more (unmounted by someone else):
			// look again, once.
			stale = true
			continue
		default:
			return res, fmt.Errorf("failed to unmount %s: %w", t.path, err)
		}
	}
}

// remove removes the unmounted target directory from its held parent.
func (m *Linux) remove(parent int, t target, res Result) (Result, error) {
	err := unix.Unlinkat(parent, t.leaf, unix.AT_REMOVEDIR)
	switch {
	case err == nil, errors.Is(err, unix.ENOENT):
		return m.gone(t, res), nil
	case errors.Is(err, unix.ENOTEMPTY), errors.Is(err, unix.EEXIST):
		return m.gone(t, res), fmt.Errorf("%s: %w", t.path, ErrNotEmpty)
	default:
		return m.settle(t, res), &fs.PathError{Op: "rmdir", Path: t.path, Err: err}
	}
}

// gone records that no mount of ours is left at t.
func (m *Linux) gone(t target, res Result) Result {
	m.mu.Lock()
	s := m.counted[t.path]
	m.mu.Unlock()
	if res.Source == "" && s != nil {
		res.Source = s.Name
	}
	res.Delta = m.count(t.path, nil)
	return res
}

// settle records the count after an unpublish stopped at something not
// ours: the target stays counted only if nothing of ours was unmounted (it
// may still hold ours below what was found).
func (m *Linux) settle(t target, res Result) Result {
	if res.Unmounted > 0 {
		return m.gone(t, res)
	}
	return res
}

// notOursFile reports a file that is not a directory at a target.
func notOursFile(path string, mode uint32) *NotOursError {
	k := KindOther
	switch mode & unix.S_IFMT {
	case unix.S_IFREG:
		k = KindFile
	case unix.S_IFIFO:
		k = KindFIFO
	}
	return &NotOursError{Target: path, Found: kind(mode), Kind: k}
}

// kind names a file type for errors.
func kind(mode uint32) string {
	switch mode & unix.S_IFMT {
	case unix.S_IFREG:
		return "regular file"
	case unix.S_IFIFO:
		return "fifo"
	case unix.S_IFSOCK:
		return "socket"
	case unix.S_IFCHR:
		return "character device"
	case unix.S_IFBLK:
		return "block device"
	case unix.S_IFLNK:
		return "symbolic link"
	case unix.S_IFDIR:
		return "directory"
	default:
		return fmt.Sprintf("file of mode %#o", mode)
	}
}
