package env

import (
	"fmt"
	"io"
	"os"

	"github.com/moby/sys/mountinfo"
)

// kubeletMounts reads the mount table of process pid (this process when pid
// is 0) and keeps the mounts at or below dir.
func kubeletMounts(pid int, dir string) ([]*mountinfo.Info, error) {
	path := "/proc/self/mountinfo"
	if pid > 0 {
		path = fmt.Sprintf("/proc/%d/mountinfo", pid)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("failed to read the mount table: %w", err)
	}
	defer func() { _ = f.Close() }()
	infos, err := mountsBelow(f, dir)
	if err != nil {
		return nil, fmt.Errorf("failed to parse %s: %w", path, err)
	}
	return infos, nil
}

// mountsBelow parses a mountinfo table and keeps the mounts at or below dir.
func mountsBelow(r io.Reader, dir string) ([]*mountinfo.Info, error) {
	return mountinfo.GetMountsFromReader(r, mountinfo.PrefixFilter(dir))
}
