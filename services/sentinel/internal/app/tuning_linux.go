package app

import "os"

// cgroupMemoryLimit is this process's container memory limit.
func cgroupMemoryLimit() (int64, bool) {
	self, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return 0, false
	}
	return memoryLimit(os.DirFS("/sys/fs/cgroup"), string(self))
}
