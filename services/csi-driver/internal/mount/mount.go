// Package mount holds the few mount operations the driver performs: a
// read-only bind mount of a configured source directory onto a target inside
// the kubelet's pods directory, and the unwinding of the mounts it made there.
//
// Every operation acts on what it checked: paths are resolved once, with
// openat2 from held directory descriptors, and every later step (stat,
// mount, unmount, remove) goes through those descriptors. The Linux
// implementation lives in mount_linux.go; other platforms get stubs that
// return ErrUnsupported, and tests of other packages use Fake.
//
// # Which mounts are ours
//
// The driver unmounts only mounts it recognises as its own. A mount at a
// target is ours when all of these hold, read from descriptors with statx
// and fstatfs (no mount-table scan per request):
//
//   - it is the root of a mount (STATX_ATTR_MOUNT_ROOT);
//   - it is read-only, nosuid, nodev and noexec, as every mount the driver
//     makes is from its first moment;
//   - its root directory (device and inode) is the root of a configured
//     source: the source directory as opened at start or at a publish, or
//     a directory this process published from before the agent removed and
//     recreated it, or one found at start in the mount table as a mount at a
//     target whose filesystem (major:minor) and root path are those of the
//     source (with or without the kernel's "//deleted" suffix), which covers
//     mounts made before a restart and by an older meshcsi.
//
// Anything else at a target (a tmpfs, a bind mount of another directory, a
// writable bind mount of a source, a mount stacked by someone else, a
// regular file, a FIFO, a symbolic link) is left untouched and reported with
// a *NotOursError naming what was found.
package mount

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"go.uber.org/zap"
)

// Sentinel errors the node service maps to gRPC codes with errors.Is.
var (
	// ErrInvalidTarget means a target does not have the kubelet's layout for
	// a CSI volume, <pods>/<pod-uid>/volumes/kubernetes.io~csi/<name>/<leaf>,
	// or has an empty, "." or ".." component (InvalidArgument).
	ErrInvalidTarget = errors.New("target is not a CSI volume path of the kubelet's layout")
	// ErrNameTooLong means a target component is longer than MaxComponent
	// bytes or the target longer than MaxPath bytes. Errors wrapping it also
	// wrap ErrInvalidTarget (InvalidArgument).
	ErrNameTooLong = errors.New("target path or component too long")
	// ErrSymlink means a component of the target path below the pods
	// directory, or the target itself, is a symbolic link (InvalidArgument).
	ErrSymlink = errors.New("symbolic link on the target path")
	// ErrNotBeneath means resolving the target left the pods directory or
	// crossed a mount point below it (InvalidArgument).
	ErrNotBeneath = errors.New("target path leaves the pods directory or crosses a mount point")
	// ErrNotDir means a component of the target's parent path is not a
	// directory. Publish returns it; Unpublish treats it as nothing mounted.
	ErrNotDir = errors.New("a component of the target path is not a directory")
	// ErrNoParent means the parent of the target does not exist; the kubelet
	// creates it before it calls the driver (FailedPrecondition).
	ErrNoParent = errors.New("parent of the target does not exist")
	// ErrNotOurs means the target holds something the driver did not make;
	// it was left untouched. Errors wrapping it are *NotOursError.
	ErrNotOurs = errors.New("target holds something the driver did not make")
	// ErrOtherSource means the target is already mounted, by the driver,
	// from another configured source than the one asked for (AlreadyExists).
	ErrOtherSource = errors.New("target is mounted from another source")
	// ErrNotEmpty means an unmounted target directory still holds files, so
	// it is not a directory the driver created; it was left in place.
	ErrNotEmpty = errors.New("target is not empty")
	// ErrSourceChanged means a source no longer resolves as it did at start:
	// a symbolic link appeared on its canonical path or it moved to another
	// filesystem (FailedPrecondition naming the source).
	ErrSourceChanged = errors.New("source no longer resolves as it did at start")
	// ErrSourceNotDirectory means a source path names something other than a
	// directory (FailedPrecondition naming the source).
	ErrSourceNotDirectory = errors.New("source is not a directory")
	// ErrUnknownSource means a source name is not configured; request
	// validation should have refused it first.
	ErrUnknownSource = errors.New("source is not configured")
	// ErrOverlap means a source and the kubelet directory contain one
	// another once symbolic links are resolved (a start-up error).
	ErrOverlap = errors.New("source overlaps the kubelet directory")
	// ErrUnsupported means the platform cannot mount.
	ErrUnsupported = errors.New("mounting is not supported on this platform")
)

// Limits on a target path. They hold for publish and unpublish alike, so
// whatever publish accepts, unpublish can undo.
const (
	// MaxComponent is the longest component (NAME_MAX).
	MaxComponent = 255
	// MaxPath is the longest target (PATH_MAX minus the terminating NUL).
	MaxPath = 4095
)

// NotOursError reports what was found at a target that the driver did not
// make. The target was left untouched.
type NotOursError struct {
	// Target is the target path.
	Target string
	// Found names what is there, e.g. "tmpfs mount", "regular file",
	// "fifo", "bind mount of another directory", "writable, suid, dev or
	// exec mount of source agent".
	Found string
	// Kind is a short, bounded name of what is there, fit for a metric
	// label: one of the Kind* constants.
	Kind string
}

// Kinds of things found at a target that the driver did not make.
const (
	KindTmpfs         = "tmpfs"
	KindForeignBind   = "bind-of-other-directory"
	KindForeignMount  = "other-filesystem"
	KindWritableMount = "writable-mount-of-source"
	KindFile          = "file"
	KindFIFO          = "fifo"
	KindOther         = "other"
)

// Error names the target and what was found there.
func (e *NotOursError) Error() string {
	return fmt.Sprintf("%s: %s (left untouched): %v", e.Target, e.Found, ErrNotOurs)
}

// Is makes errors.Is(err, ErrNotOurs) true.
func (e *NotOursError) Is(target error) bool { return target == ErrNotOurs }

// SourceError reports a source that cannot be published now.
type SourceError struct {
	// Name is the configured source name.
	Name string
	// Path is the source directory as configured.
	Path string
	// Err is fs.ErrNotExist, ErrSourceChanged, ErrSourceNotDirectory or
	// another error from the host.
	Err error
}

// Error names the source, its path and the cause.
func (e *SourceError) Error() string {
	return fmt.Sprintf("source %s (%s): %v", e.Name, e.Path, e.Err)
}

// Unwrap returns Err.
func (e *SourceError) Unwrap() error { return e.Err }

// ID identifies a directory: the device and inode of a mount's root, which
// a bind mount shares with the directory it was made from.
type ID struct {
	// Dev is the device number.
	Dev uint64
	// Ino is the inode number.
	Ino uint64
}

// Source is a configured source directory.
type Source struct {
	// Name is the name pods use (--source NAME=DIR).
	Name string
	// Path is the directory as configured: absolute and clean.
	Path string
}

// Config holds what a Mounter needs.
type Config struct {
	// PodsDir is <kubelet-dir>/pods: absolute and clean. It need not exist
	// yet (the kubelet creates it).
	PodsDir string
	// Sources are the publishable directories, at least one.
	Sources []Source
	// Logger receives one line per source at start (its canonical path);
	// nil means none.
	Logger *zap.Logger
}

// Outcome tells what a call did.
type Outcome int

const (
	// Mounted means Publish made a new mount.
	Mounted Outcome = iota
	// AlreadyMounted means the target already held our mount of the same
	// source; nothing changed.
	AlreadyMounted
	// Unmounted means Unpublish removed at least one mount of ours.
	Unmounted
	// NothingMounted means Unpublish found no mount at the target.
	NothingMounted
)

// String names the outcome for logs.
func (o Outcome) String() string {
	switch o {
	case Mounted:
		return "mounted"
	case AlreadyMounted:
		return "already mounted"
	case Unmounted:
		return "unmounted"
	case NothingMounted:
		return "nothing mounted"
	default:
		return "unknown"
	}
}

// Result describes what Publish or Unpublish did. It is meaningful also when
// the call returns an error (e.g. Unpublish unmounted some mounts of ours and
// then found one it did not make).
type Result struct {
	// Outcome tells what happened.
	Outcome Outcome
	// Source names the configured source of the mount made, found or
	// removed; empty when there was none.
	Source string
	// Unmounted is the number of mounts Unpublish removed.
	Unmounted int
	// Delta is the change, -1, 0 or +1, of the number of volumes published
	// from Source: the count of targets holding a mount the driver would
	// unmount.
	Delta int
}

// Mounter performs the driver's mount operations. Targets are the paths the
// kubelet passes; sources are named by their configured Name.
type Mounter interface {
	// CheckSource returns nil when the source can be published now, else
	// a *SourceError.
	CheckSource(name string) error
	// Publish makes target a read-only, nosuid, nodev, noexec bind mount of
	// the source, creating the target directory if it is missing (its parent
	// must exist). A target that already holds our mount of that source is
	// left as it is; one that holds our mount of another source fails with
	// ErrOtherSource, and anything else found there with a *NotOursError.
	// On failure nothing is left mounted and a directory it created is
	// removed.
	Publish(name, target string) (Result, error)
	// Unpublish unmounts the mounts of ours stacked on target, then removes
	// the directory. A missing target, or one whose parent path holds a
	// non-directory, is not an error (Outcome NothingMounted).
	Unpublish(target string) (Result, error)
	// Recover reads the mount table once, at start before any request,
	// recognises the mounts of ours an earlier instance left, and returns
	// the number of published volumes per source name.
	Recover() (map[string]int, error)
}

// CheckOverlap refuses a source that contains the kubelet directory or lies
// inside it once symbolic links are resolved (of the part of each path that
// exists): a pod could otherwise be handed other pods' volumes, or the
// driver's own targets. The server calls it at start; New calls it too.
func CheckOverlap(kubeletDir string, sources []Source) error {
	kd := canonical(kubeletDir)
	for _, s := range sources {
		c := canonical(s.Path)
		if within(c, kd) || within(kd, c) || within(s.Path, kubeletDir) || within(kubeletDir, s.Path) {
			return fmt.Errorf("source %s (%s, resolved %s) and the kubelet directory %s (resolved %s): %w",
				s.Name, s.Path, c, kubeletDir, kd, ErrOverlap)
		}
	}
	return nil
}

// within reports whether p is dir or below it.
func within(p, dir string) bool {
	return p == dir || dir == "/" || strings.HasPrefix(p, strings.TrimSuffix(dir, "/")+"/")
}

// canonical resolves the symbolic links of the longest existing prefix of
// the absolute path p and appends the rest: the path a source is opened by,
// without following links, at every publish (e.g. /var/run/x becomes
// /run/x on most hosts).
func canonical(p string) string {
	p = filepath.Clean(p)
	rest := ""
	for {
		if r, err := filepath.EvalSymlinks(p); err == nil {
			return filepath.Join(r, rest)
		} else if !errors.Is(err, os.ErrNotExist) {
			return filepath.Join(p, rest)
		}
		parent := filepath.Dir(p)
		if parent == p {
			return filepath.Join(p, rest)
		}
		rest = filepath.Join(filepath.Base(p), rest)
		p = parent
	}
}
