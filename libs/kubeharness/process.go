package kubeharness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
)

// logTailLines is how much of a failed component's log an error carries.
const logTailLines = 30

// component is one process of the cluster: its command line, its log file
// and, while it runs, its PID.
type component struct {
	Name    string   `json:"name"`
	Path    string   `json:"path"`
	Args    []string `json:"args"`
	Env     []string `json:"env,omitempty"`
	LogPath string   `json:"logPath"`
	PID     int      `json:"pid"`

	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// start launches the process in its own process group with output appended
// to its log file. The process outlives the caller unless stopped, so that
// `kubeharness up` can return while the cluster keeps running.
func (c *component) start() error {
	logFile, err := os.OpenFile(c.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("failed to open log of %s: %w", c.Name, err)
	}
	defer logFile.Close()
	cmd := exec.Command(c.Path, c.Args...) //nolint:gosec // starting the cluster's components is this package's job
	cmd.Env = append(os.Environ(), c.Env...)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("failed to start %s (%s): %w", c.Name, c.Path, err)
	}
	c.cmd = cmd
	c.PID = cmd.Process.Pid
	c.done = make(chan struct{})
	go func() {
		c.err = cmd.Wait()
		close(c.done)
	}()
	return nil
}

// exited reports whether a process started by this harness instance has
// ended, with its exit status.
func (c *component) exited() (bool, error) {
	if c.done == nil {
		return !pidAlive(c.PID), nil
	}
	select {
	case <-c.done:
		if c.err == nil {
			return true, errors.New("exited with status 0")
		}
		return true, c.err
	default:
		return false, nil
	}
}

// alive reports whether the component's process runs.
func (c *component) alive(stateDir string) bool {
	if c.PID <= 0 {
		return false
	}
	if c.done != nil {
		gone, _ := c.exited()
		return !gone
	}
	return ownedPID(c.PID, stateDir)
}

// stop sends SIGTERM, waits up to grace, then SIGKILLs the process group.
// A PID this instance did not start is only signalled while its environment
// still names stateDir, so a recycled PID is never hit.
func (c *component) stop(ctx context.Context, grace time.Duration, stateDir string) error {
	if c.PID <= 0 {
		return nil
	}
	if c.done == nil && !ownedPID(c.PID, stateDir) {
		c.PID = 0
		return nil
	}
	_ = syscall.Kill(c.PID, syscall.SIGTERM)
	if c.waitGone(ctx, grace) {
		c.PID = 0
		return nil
	}
	if err := c.kill(ctx, stateDir); err != nil {
		return fmt.Errorf("failed to stop %s: %w", c.Name, err)
	}
	return nil
}

func (c *component) waitGone(ctx context.Context, d time.Duration) bool {
	err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, d, true, func(context.Context) (bool, error) {
		if c.done != nil {
			select {
			case <-c.done:
				return true, nil
			default:
				return false, nil
			}
		}
		return !pidAlive(c.PID), nil
	})
	return err == nil
}

// tail returns the last n lines of the component's log.
func (c *component) tail(n int) string {
	return tailFile(c.LogPath, n)
}

func tailFile(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// waitReady polls check until it succeeds, the component exits (fail fast) or
// the timeout passes. Errors carry the tail of the component's log.
func waitReady(ctx context.Context, c *component, timeout time.Duration, check func(context.Context) error) error {
	var last error
	exited := errors.New("exited")
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		if gone, _ := c.exited(); gone {
			return false, exited
		}
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		last = check(cctx)
		return last == nil, nil
	})
	switch {
	case err == nil:
		return nil
	case errors.Is(err, exited):
		_, status := c.exited()
		return fmt.Errorf("%s exited before it was ready (%w); last %d log lines of %s:\n%s",
			c.Name, status, logTailLines, c.LogPath, c.tail(logTailLines))
	default:
		return fmt.Errorf("%s not ready after %s (last check: %w); last %d log lines of %s:\n%s",
			c.Name, timeout, last, logTailLines, c.LogPath, c.tail(logTailLines))
	}
}

// pidAlive reports whether pid exists and is not a zombie.
func pidAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the parenthesised command name.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 || i+2 >= len(stat) {
		return false
	}
	return stat[i+2] != 'Z'
}

// dirEnv is set in the environment of every process the harness starts (and
// so inherited by containerd's shims): it ties a PID to its cluster.
const dirEnv = "KUBEHARNESS_DIR"

// ownedPID reports whether pid is alive and was started for the cluster in dir.
func ownedPID(pid int, dir string) bool {
	if !pidAlive(pid) {
		return false
	}
	environ, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	if err != nil {
		return false
	}
	marker := []byte(dirEnv + "=" + dir + "\x00")
	return bytes.HasPrefix(environ, marker) || bytes.Contains(environ, append([]byte{0}, marker...))
}

// ownedProcesses returns every live process started for the cluster in dir,
// including processes that were not started directly (containerd shims).
func ownedProcesses(dir string) []int {
	var pids []int
	for _, pid := range allPIDs() {
		if ownedPID(pid, dir) {
			pids = append(pids, pid)
		}
	}
	return pids
}

func allPIDs() []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	self := os.Getpid()
	pids := make([]int, 0, len(entries))
	for _, e := range entries {
		var pid int
		if _, err := fmt.Sscanf(e.Name(), "%d", &pid); err != nil || pid == self {
			continue
		}
		pids = append(pids, pid)
	}
	return pids
}

// ProcessesMentioning returns the PIDs of live processes whose command line
// contains s. Tests use it to prove that Stop left nothing behind.
func ProcessesMentioning(s string) []int {
	var pids []int
	for _, pid := range allPIDs() {
		cmdline, err := os.ReadFile(filepath.Join("/proc", fmt.Sprint(pid), "cmdline"))
		if err != nil || !bytes.Contains(cmdline, []byte(s)) {
			continue
		}
		if pidAlive(pid) {
			pids = append(pids, pid)
		}
	}
	return pids
}
