package env

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// shareAgentDir makes the agent's directory a shared mount, as every
// directory is on a systemd node (where / is shared): the chart mounts source
// directories with HostToContainer propagation, which the runtime refuses on
// a private mount, and this machine's / is private.
func (e *Env) shareAgentDir() error {
	if err := os.MkdirAll(e.AgentDir, 0o755); err != nil { //nolint:gosec // pods of any UID traverse it
		return fmt.Errorf("failed to create %s: %w", e.AgentDir, err)
	}
	if err := unix.Mount(e.AgentDir, e.AgentDir, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("failed to bind-mount %s: %w", e.AgentDir, err)
	}
	e.agentMounted = true
	if err := unix.Mount("", e.AgentDir, "", unix.MS_SHARED|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("failed to make %s shared: %w", e.AgentDir, err)
	}
	return nil
}

// UnshareAgentDir removes the bind mount Setup made of the agent's directory
// of a run in dir (Options.Dir), e.g. one a killed demo left behind. A
// directory that is not mounted (or gone) is not an error.
func UnshareAgentDir(dir string) error {
	p := filepath.Join(dir, agentDirName)
	if err := unix.Unmount(p, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("failed to unmount %s: %w", p, err)
	}
	return nil
}
