//go:build !linux

package app

// cgroupMemoryLimit: there are no cgroups outside Linux.
func cgroupMemoryLimit() (int64, bool) { return 0, false }
