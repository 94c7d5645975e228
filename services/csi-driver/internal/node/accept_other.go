//go:build !linux

package node

import (
	"net"
	"os"
	"syscall"
	"time"
)

// accepts reports whether a Unix stream socket at path accepts a
// connection.
func accepts(path string) bool {
	c, err := net.DialTimeout("unix", path, time.Second)
	if err != nil {
		return false
	}
	_ = c.Close()
	return true
}

// fileID identifies a file: device and inode.
type fileID struct{ dev, ino uint64 }

// socketID returns the identity of the socket file at path.
func socketID(path string) (fileID, bool) {
	fi, err := os.Lstat(path)
	if err != nil || fi.Mode().Type() != os.ModeSocket {
		return fileID{}, false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fileID{}, false
	}
	return fileID{dev: uint64(st.Dev), ino: uint64(st.Ino)}, true //nolint:unconvert,gosec // widths differ by OS
}
