//go:build !linux

package mount

// New returns ErrUnsupported: the driver mounts only on Linux. It exists so
// that the module builds (and its unit tests run) on other platforms.
func New(Config) (Mounter, error) { return nil, ErrUnsupported }
