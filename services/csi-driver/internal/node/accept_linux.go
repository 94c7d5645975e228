//go:build linux

package node

import (
	"errors"

	"golang.org/x/sys/unix"
)

// accepts reports whether a Unix stream socket at path accepts a
// connection: one non-blocking connect, then close (about as cheap as a
// stat). A full backlog (EAGAIN) counts as accepting: the agent is there.
func accepts(path string) bool {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		return false
	}
	defer unix.Close(fd)
	err = unix.Connect(fd, &unix.SockaddrUnix{Name: path})
	return err == nil || errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINPROGRESS)
}

// fileID identifies a file: device, inode and change time (a socket removed
// and recreated may get the same inode number back).
type fileID struct {
	dev, ino      uint64
	ctime, ctimeN int64
}

// socketID returns the identity of the socket file at path.
func socketID(path string) (fileID, bool) {
	var st unix.Stat_t
	if unix.Lstat(path, &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFSOCK {
		return fileID{}, false
	}
	return fileID{dev: st.Dev, ino: st.Ino, ctime: st.Ctim.Sec, ctimeN: st.Ctim.Nsec}, true
}
