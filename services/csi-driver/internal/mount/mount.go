// Package mount holds the few mount operations the driver performs: a
// read-only bind mount of a source directory onto a target inside the
// kubelet's pods directory, the state of a target, and the unwinding of every
// mount stacked on a target. The Linux implementation lives in mount_linux.go;
// tests use Fake.
package mount

import (
	"errors"
)

// Sentinel errors the node service maps to gRPC codes.
var (
	// ErrSymlink means a component of the target path (at or below the pods
	// directory) is a symbolic link.
	ErrSymlink = errors.New("symbolic link on the target path")
	// ErrOutside means a path is not below the pods directory.
	ErrOutside = errors.New("path is not below the pods directory")
	// ErrNoParent means the parent of the target does not exist; the kubelet
	// creates it before it calls the driver.
	ErrNoParent = errors.New("parent of the target does not exist")
	// ErrNotDir means the target exists and is not a directory.
	ErrNotDir = errors.New("target is not a directory")
	// ErrOtherSource means the target is already mounted from another
	// directory than the one asked for.
	ErrOtherSource = errors.New("target is mounted from another source")
	// ErrNotEmpty means an unmounted target still holds files, so it is not
	// a directory the driver created.
	ErrNotEmpty = errors.New("target is not empty")
	// ErrUnsupported means the platform cannot mount.
	ErrUnsupported = errors.New("mounting is not supported on this platform")
)

// ID identifies a directory: the device and inode of its root. A bind mount's
// root has the ID of the directory it was made from, which is how the driver
// tells which source a target is mounted from without reading the mount table.
type ID struct {
	// Dev is the device number.
	Dev uint64
	// Ino is the inode number.
	Ino uint64
}

// State describes a target path.
type State struct {
	// Exists is true when the target exists.
	Exists bool
	// Mounted is true when the target is the root of a mount.
	Mounted bool
	// Root is the ID of the directory seen at the target (the top mount's
	// root when Mounted).
	Root ID
	// Secure is true when the top mount is read-only, nosuid, nodev and
	// noexec.
	Secure bool
}

// Outcome tells what Publish did.
type Outcome int

const (
	// Mounted means a new mount was made.
	Mounted Outcome = iota
	// AlreadyMounted means the target was already mounted, read-only, from
	// the same source; nothing changed.
	AlreadyMounted
	// MadeSecure means the target was already mounted from the same source
	// but writable (an older driver's mount); it was made read-only,
	// nosuid, nodev and noexec.
	MadeSecure
)

// String names the outcome for logs.
func (o Outcome) String() string {
	switch o {
	case Mounted:
		return "mounted"
	case AlreadyMounted:
		return "already mounted"
	case MadeSecure:
		return "made read-only"
	default:
		return "unknown"
	}
}

// Mounter performs the driver's mount operations. Every target is an
// absolute, clean path below the pods directory the Mounter was built for; an
// implementation must refuse a symbolic link on the way (ErrSymlink).
type Mounter interface {
	// SourceID returns the ID of a source directory; an error wrapping
	// fs.ErrNotExist when it is missing.
	SourceID(source string) (ID, error)
	// State reports the state of target.
	State(target string) (State, error)
	// Publish makes target a read-only, nosuid, nodev, noexec bind mount of
	// source, whose ID the caller read with SourceID. It creates target if
	// it is missing (its parent must exist). A target already mounted from
	// source is left as it is (made read-only if it was not); one mounted
	// from anything else fails with ErrOtherSource. On failure nothing is
	// left mounted and a directory it created is removed. Publish walks the
	// target once: it is the whole per-request cost besides SourceID.
	Publish(source string, want ID, target string) (Outcome, error)
	// Unpublish unmounts every mount stacked on target and removes the
	// directory. A missing target is not an error. It returns the number of
	// mounts removed and the root ID of the top one (to tell its source).
	Unpublish(target string) (int, ID, error)
}
