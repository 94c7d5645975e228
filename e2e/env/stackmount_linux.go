package env

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// StackMount bind-mounts target onto itself, so that two mounts are stacked
// on it: the defect CheckCSIMounts must catch. The returned function removes
// the top mount again.
func StackMount(target string) (func() error, error) {
	if err := unix.Mount(target, target, "", unix.MS_BIND, ""); err != nil {
		return nil, fmt.Errorf("failed to stack a bind mount on %s: %w", target, err)
	}
	return func() error {
		if err := unix.Unmount(target, 0); err != nil {
			return fmt.Errorf("failed to unmount the stacked mount on %s: %w", target, err)
		}
		return nil
	}, nil
}
