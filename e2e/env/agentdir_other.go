//go:build !linux

package env

import "errors"

// shareAgentDir needs Linux: the agent's directory is shared with the pods of
// the node-mode cluster, which runs only on Linux.
func (e *Env) shareAgentDir() error {
	return errors.New("sharing the agent directory with the node needs Linux")
}

// UnshareAgentDir has nothing to undo: shareAgentDir mounts nothing here.
func UnshareAgentDir(string) error { return nil }
