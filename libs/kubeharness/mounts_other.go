//go:build !linux

package kubeharness

// mountPoints returns no mount points: the harness mounts only in Node mode,
// which needs Linux, so nothing of it can be mounted here.
func mountPoints() ([]string, error) { return nil, nil }

// unmountBelow has nothing to unmount (see mountPoints).
func unmountBelow(...string) error { return nil }
