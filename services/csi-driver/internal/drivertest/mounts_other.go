//go:build !linux

package drivertest

import "testing"

// UnmountBelow does nothing where the driver cannot mount.
func UnmountBelow(testing.TB, string) int { return 0 }

// MountsBelow finds no mounts where the driver cannot mount.
func MountsBelow(testing.TB, string) []string { return nil }
