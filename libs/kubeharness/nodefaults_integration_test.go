//go:build integration

package kubeharness_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/meshcsi/meshcsi/libs/kubeharness"
)

// checkNodeFaults puts the node with the running pod ns/name through a
// containerd restart, a kubelet restart and a power cycle: the container
// survives both restarts (same container ID); PowerOff leaves no pod
// process, no mount below the pods directory and no CNI network namespace;
// after PowerOn the pod runs again in a new container.
func checkNodeFaults(t *testing.T, ctx context.Context, c *kubeharness.Cluster, client kubernetes.Interface, ns, name string) {
	t.Helper()
	containerID := func() (string, error) {
		p, err := client.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return "", err
		}
		if p.Status.Phase != corev1.PodRunning || len(p.Status.ContainerStatuses) == 0 || p.Status.ContainerStatuses[0].State.Running == nil {
			return "", fmt.Errorf("pod %s not running: %s", name, p.Status.Phase)
		}
		return p.Status.ContainerStatuses[0].ContainerID, nil
	}
	first, err := containerID()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []struct {
		what    string
		restart func(context.Context) error
	}{
		{"containerd", c.RestartContainerd},
		{"kubelet", c.RestartKubelet},
	} {
		before := c.PIDs()[r.what]
		if err := r.restart(ctx); err != nil {
			t.Fatalf("restart %s: %v", r.what, err)
		}
		if after := c.PIDs()[r.what]; after == before || after == 0 {
			t.Errorf("%s pid %d -> %d: not restarted", r.what, before, after)
		}
		if len(kubeharness.PodProcesses()) == 0 {
			t.Errorf("no pod process after the %s restart: the container died with it", r.what)
		}
		waitFor(t, ctx, "pod "+name+" running after the "+r.what+" restart", func(context.Context) (bool, error) {
			id, err := containerID()
			if err != nil {
				return false, nil //nolint:nilerr // polled until the deadline
			}
			if id != first {
				return false, fmt.Errorf("container %s replaced by %s: the %s restart killed it", first, id, r.what)
			}
			return true, nil
		})
	}

	if err := c.PowerOff(ctx); err != nil {
		t.Fatalf("PowerOff: %v", err)
	}
	if left := kubeharness.PodProcesses(); len(left) > 0 {
		t.Errorf("pod processes alive after PowerOff: %v", left)
	}
	if m, err := kubeharness.MountsBelow(filepath.Join(c.KubeletDir(), "pods"), "/run/netns/cni-"); err != nil || len(m) > 0 {
		t.Errorf("mounts left after PowerOff: %v %v", m, err)
	}
	if err := c.PowerOn(ctx); err != nil {
		t.Fatalf("PowerOn: %v", err)
	}
	waitFor(t, ctx, "pod "+name+" running again after the power cycle", func(context.Context) (bool, error) {
		id, err := containerID()
		return err == nil && id != first, nil
	})
}
