//go:build !linux

package env

import (
	"errors"

	"github.com/moby/sys/mountinfo"
)

// kubeletMounts needs Linux, like the node-mode cluster whose kubelet it reads.
func kubeletMounts(int, string) ([]*mountinfo.Info, error) {
	return nil, errors.New("reading the kubelet's mount table needs Linux")
}
