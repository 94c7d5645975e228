package kubeharness

import (
	"errors"
	"fmt"
	"sort"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

// mountPoints returns the mount points of this mount namespace.
func mountPoints() ([]string, error) {
	infos, err := mountinfo.GetMounts(nil)
	if err != nil {
		return nil, fmt.Errorf("failed to read the mount table: %w", err)
	}
	return mountPointsOf(infos), nil
}

func mountPointsOf(infos []*mountinfo.Info) []string {
	out := make([]string, 0, len(infos))
	for _, i := range infos {
		out = append(out, i.Mountpoint)
	}
	return out
}

// unmountBelow unmounts everything below the prefixes, deepest first,
// repeating for stacked mounts; a busy mount is detached.
func unmountBelow(prefixes ...string) error {
	for range 10 {
		mps, err := MountsBelow(prefixes...)
		if err != nil {
			return err
		}
		if len(mps) == 0 {
			return nil
		}
		sort.Slice(mps, func(i, j int) bool { return len(mps[i]) > len(mps[j]) })
		for _, mp := range mps {
			if err := unix.Unmount(mp, 0); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
				_ = unix.Unmount(mp, unix.MNT_DETACH)
			}
		}
	}
	mps, err := MountsBelow(prefixes...)
	if err != nil {
		return err
	}
	if len(mps) > 0 {
		return fmt.Errorf("failed to unmount %v", mps)
	}
	return nil
}
