package kubeharness

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
)

// Faults a node lives through, for tests that must show what a CSI driver
// does when the components around it go away: a kubelet or containerd
// restart (an upgrade, `systemctl restart`) and a reboot. The control plane
// and kube-proxy keep running throughout: they stand for the rest of the
// cluster.

// RestartKubelet stops the kubelet as `systemctl restart kubelet` does
// (SIGTERM, SIGKILL after the grace period) and starts it again with the same
// command line, returning once its healthz answers and the node is Ready.
// Containers keep running: the kubelet finds them again through the CRI.
func (c *Cluster) RestartKubelet(ctx context.Context) error {
	return c.restartNodeComponent(ctx, "kubelet")
}

// RestartContainerd stops containerd as `systemctl restart containerd` does
// and starts it again with the same configuration, returning once its CRI
// reports the runtime and network ready. Containers keep running: their
// shims outlive containerd, which reconnects to them at start.
func (c *Cluster) RestartContainerd(ctx context.Context) error {
	return c.restartNodeComponent(ctx, "containerd")
}

// PowerOff does to the node what a power cut or a reboot does, without
// touching the control plane: the kubelet, containerd, every containerd shim
// and every pod process are SIGKILLed; everything mounted below the
// kubelet's pods directory, below containerd's directory and at
// /run/netns/cni-* is unmounted (a reboot starts with none of them), the
// network-namespace files are removed, containerd's state directory (a
// tmpfs under /run on a real node) is emptied and the pod cgroups are
// removed. What a reboot keeps stays: the kubelet's directory with each
// pod's (now empty) volume directories, containerd's images and metadata,
// the API objects. PowerOn starts the node again.
func (c *Cluster) PowerOff(ctx context.Context) error {
	if c.opts.Mode != Node || !c.st.HoldsNode {
		return errors.New("PowerOff needs a running node-mode cluster")
	}
	var errs []error
	for _, name := range []string{"kubelet", "containerd"} {
		comp := c.componentByName(name)
		if comp == nil {
			return fmt.Errorf("%s is not part of this cluster", name)
		}
		if err := comp.kill(ctx, c.opts.Dir); err != nil {
			errs = append(errs, err)
		}
	}
	// The shims carry the cluster's environment marker; the components that
	// keep running carry it too and are spared.
	keep := map[int]bool{}
	for _, pid := range c.PIDs() {
		keep[pid] = true
	}
	for _, pid := range shimsToKill(ownedProcesses(c.opts.Dir), keep) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	killPodProcesses()
	if err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		killPodProcesses()
		return len(PodProcesses()) == 0 && len(shimsToKill(ownedProcesses(c.opts.Dir), keep)) == 0, nil
	}); err != nil {
		errs = append(errs, fmt.Errorf("pod processes still alive after SIGKILL: %v", PodProcesses()))
	}
	netns, err := MountsBelow("/run/netns/cni-", "/var/run/netns/cni-")
	if err != nil {
		errs = append(errs, err)
	}
	if err := unmountBelow(filepath.Join(c.opts.KubeletDir, "pods"), c.paths.containerd, "/run/netns/cni-", "/var/run/netns/cni-"); err != nil {
		errs = append(errs, err)
	}
	for _, p := range netns {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("failed to remove the network namespace file %s: %w", p, err))
		}
	}
	if err := emptyDir(filepath.Join(c.paths.containerd, "state")); err != nil {
		errs = append(errs, err)
	}
	removePodCgroups()
	return errors.Join(errs...)
}

// PowerOn starts containerd and the kubelet again after PowerOff, with
// their command lines, as the node's boot does, and returns once the CRI is
// ready, the kubelet's healthz answers and the node is Ready. The kubelet
// then does what it does after a reboot: new sandboxes for the pods bound
// to the node, their volumes set up again, pods deleted meanwhile finished.
func (c *Cluster) PowerOn(ctx context.Context) error {
	for _, name := range []string{"containerd", "kubelet"} {
		comp := c.componentByName(name)
		if comp == nil {
			return fmt.Errorf("%s is not part of this cluster", name)
		}
		if comp.alive(c.opts.Dir) {
			return fmt.Errorf("%s runs (pid %d): PowerOn follows PowerOff", name, comp.PID)
		}
		if err := c.relaunch(ctx, comp); err != nil {
			return err
		}
	}
	return nil
}

// restartNodeComponent stops a node component and starts it again.
func (c *Cluster) restartNodeComponent(ctx context.Context, name string) error {
	if c.opts.Mode != Node {
		return fmt.Errorf("restarting %s needs a node-mode cluster", name)
	}
	comp := c.componentByName(name)
	if comp == nil {
		return fmt.Errorf("%s is not part of this cluster", name)
	}
	if err := comp.stop(ctx, stopGrace, c.opts.Dir); err != nil {
		return fmt.Errorf("failed to stop %s: %w", name, err)
	}
	return c.relaunch(ctx, comp)
}

// relaunch starts a stopped component again with its recorded command line
// and waits until it is ready.
func (c *Cluster) relaunch(ctx context.Context, old *component) error {
	fresh := c.newComponent(old.Name, old.Path, old.Args...)
	var check func(context.Context) error
	switch old.Name {
	case "containerd":
		check = func(ctx context.Context) error { return criReady(ctx, c.containerdSocket()) }
	case "kubelet":
		client, err := kubernetes.NewForConfig(c.RESTConfig())
		if err != nil {
			return fmt.Errorf("failed to create client: %w", err)
		}
		health := fmt.Sprintf("http://127.0.0.1:%d/healthz", c.st.Ports.KubeletHealthz)
		check = func(ctx context.Context) error {
			if _, err := get(ctx, httpClient, health); err != nil {
				return err
			}
			return nodeReady(ctx, client)
		}
	default:
		return fmt.Errorf("restarting %s is not supported", old.Name)
	}
	if err := c.launch(ctx, fresh, check); err != nil {
		return fmt.Errorf("failed to start %s again: %w", old.Name, err)
	}
	return nil
}

// kill SIGKILLs the component's process group at once, as a power cut or
// the OOM killer would, and waits until it is gone.
func (c *component) kill(ctx context.Context, stateDir string) error {
	if c.PID <= 0 {
		return nil
	}
	if c.done == nil && !ownedPID(c.PID, stateDir) {
		c.PID = 0
		return nil
	}
	_ = syscall.Kill(-c.PID, syscall.SIGKILL)
	_ = syscall.Kill(c.PID, syscall.SIGKILL)
	if c.waitGone(ctx, 10*time.Second) {
		c.PID = 0
		return nil
	}
	return fmt.Errorf("failed to kill %s (pid %d)", c.Name, c.PID)
}

// shimsToKill returns the cluster's processes that are not components that
// keep running: containerd's shims (and anything else they started).
func shimsToKill(owned []int, keep map[int]bool) []int {
	var out []int
	for _, pid := range owned {
		if !keep[pid] {
			out = append(out, pid)
		}
	}
	sort.Ints(out)
	return out
}

// emptyDir removes everything inside dir (which stays); nothing must be
// mounted below it any more.
func emptyDir(dir string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("failed to read %s: %w", dir, err)
	}
	left, err := MountsBelow(dir)
	if err != nil {
		return err
	}
	if len(left) > 0 {
		return fmt.Errorf("refusing to empty %s: mounts below it (%s)", dir, strings.Join(left, ", "))
	}
	var errs []error
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			errs = append(errs, fmt.Errorf("failed to empty %s: %w", dir, err))
		}
	}
	return errors.Join(errs...)
}
