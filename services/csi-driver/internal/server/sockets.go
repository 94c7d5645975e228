package server

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// ErrInUse means another live process holds the lock of a socket.
var ErrInUse = errors.New("socket is in use by another meshcsi-driver")

// ownedSocket is a Unix socket this process created, and the lock that
// makes it the only process serving on that path. The lock is an flock(2)
// on a hidden file beside the socket (".<socket>.lock", which the kubelet's
// plugin watcher ignores); the kernel releases it when the process dies, so
// a killed driver never blocks its successor. The lock file itself is never
// removed: removing it would let two processes lock two different files.
type ownedSocket struct {
	path     string
	lock     *os.File
	dev, ino uint64
	listener net.Listener
	once     sync.Once
}

// listenOwned takes the lock beside p, then listens on p (0600), replacing a
// stale socket left by a dead instance; flag names the setting in errors.
// A second instance fails with ErrInUse naming the holder's pid and touches
// nothing.
func listenOwned(p, flag string) (*ownedSocket, error) {
	if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
		return nil, fmt.Errorf("--%s: failed to create the directory of %s: %w", flag, p, err)
	}
	lockPath := filepath.Join(filepath.Dir(p), "."+filepath.Base(p)+".lock")
	lock, err := os.OpenFile(lockPath, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("--%s: failed to open the lock file %s: %w", flag, lockPath, err)
	}
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		holder, _ := os.ReadFile(lockPath)
		_ = lock.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("--%s: %s: %w (%s holds %s; the pid is in the holder's own PID namespace, the host is its pod's name in Kubernetes); stop it first",
				flag, p, ErrInUse, describeHolder(holder), lockPath)
		}
		return nil, fmt.Errorf("--%s: failed to lock %s: %w", flag, lockPath, err)
	}
	o := &ownedSocket{path: p, lock: lock}
	if err := o.listen(flag); err != nil {
		_ = lock.Close()
		return nil, err
	}
	return o, nil
}

func (o *ownedSocket) listen(flag string) error {
	host, _ := os.Hostname()
	pid := []byte(strconv.Itoa(os.Getpid()) + " " + host + "\n")
	if err := o.lock.Truncate(0); err != nil {
		return fmt.Errorf("--%s: failed to write the lock file: %w", flag, err)
	}
	if _, err := o.lock.WriteAt(pid, 0); err != nil {
		return fmt.Errorf("--%s: failed to write the lock file: %w", flag, err)
	}
	p := o.path
	if fi, err := os.Lstat(p); err == nil {
		if fi.Mode().Type() != fs.ModeSocket {
			return fmt.Errorf("--%s: %s exists and is not a socket", flag, p)
		}
		// We hold the lock: whoever made this socket is gone.
		if err := os.Remove(p); err != nil {
			return fmt.Errorf("--%s: failed to remove the stale socket %s: %w", flag, p, err)
		}
	}
	old := unix.Umask(0o177)
	l, err := net.Listen("unix", p)
	unix.Umask(old)
	if err != nil {
		return fmt.Errorf("--%s: failed to listen on %s: %w", flag, p, err)
	}
	// Close must not unlink the path: it may by then name another socket.
	// remove unlinks it only if it is still the one created here.
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		_ = l.Close()
		return fmt.Errorf("--%s: failed to stat %s: %w", flag, p, err)
	}
	if err := os.Chmod(p, 0o600); err != nil {
		_ = l.Close()
		_ = os.Remove(p)
		return fmt.Errorf("--%s: failed to restrict %s: %w", flag, p, err)
	}
	o.dev, o.ino, o.listener = uint64(st.Dev), st.Ino, l //nolint:unconvert // Dev is int32 on darwin
	return nil
}

// remove unlinks the socket if the path still names the socket this process
// created (same device and inode), so a new connection is refused; it is
// idempotent. A socket another process put there is left alone.
func (o *ownedSocket) remove() {
	o.once.Do(func() {
		var st unix.Stat_t
		if unix.Lstat(o.path, &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFSOCK &&
			uint64(st.Dev) == o.dev && st.Ino == o.ino { //nolint:unconvert // Dev is int32 on darwin
			_ = os.Remove(o.path)
		}
	})
}

// release removes the socket (if still ours) and drops the lock.
func (o *ownedSocket) release() {
	o.remove()
	_ = o.listener.Close()
	_ = o.lock.Close()
}

// describeHolder turns a lock file's content ("<pid> <host>", or "<pid>" as
// older drivers wrote it) into "pid N on host H" for an error message.
func describeHolder(content []byte) string {
	pid, host, _ := strings.Cut(strings.TrimSpace(string(content)), " ")
	if host == "" {
		return "pid " + pid
	}
	return "pid " + pid + " on host " + host
}
