//go:build !linux

package env

import "errors"

// StackMount needs Linux, like the node-mode cluster whose mounts it stacks.
func StackMount(string) (func() error, error) {
	return nil, errors.New("stacking a mount needs Linux")
}
