//go:build !linux

package spire

import "errors"

// ShareDir needs Linux mounts.
func ShareDir(string) (func() error, error) {
	return nil, errors.New("spire: ShareDir needs Linux")
}
