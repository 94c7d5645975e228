package spire

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// ShareDir creates dir and makes it a shared mount point, as every directory
// is on a systemd node (where / is shared): the chart mounts source
// directories into the driver with HostToContainer propagation, which the
// runtime refuses on a private mount, and this machine's / is private. The
// returned function undoes the mount.
func ShareDir(dir string) (func() error, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil { //nolint:gosec // workloads of any UID traverse it
		return nil, fmt.Errorf("failed to create %s: %w", dir, err)
	}
	if err := unix.Mount(dir, dir, "", unix.MS_BIND, ""); err != nil {
		return nil, fmt.Errorf("failed to bind-mount %s: %w", dir, err)
	}
	undo := func() error {
		if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
			return fmt.Errorf("failed to unmount %s: %w", dir, err)
		}
		return nil
	}
	if err := unix.Mount("", dir, "", unix.MS_SHARED|unix.MS_REC, ""); err != nil {
		_ = undo()
		return nil, fmt.Errorf("failed to make %s shared: %w", dir, err)
	}
	return undo, nil
}
