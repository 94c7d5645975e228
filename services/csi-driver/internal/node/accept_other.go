//go:build !linux

package node

import (
	"net"
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
