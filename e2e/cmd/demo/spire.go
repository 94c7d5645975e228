package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshcsi/meshcsi/e2e/env"
	"github.com/meshcsi/meshcsi/e2e/spire"
	"github.com/meshcsi/meshcsi/e2e/spire/fetch"
	"github.com/meshcsi/meshcsi/libs/kubeharness"
)

// The demo's agents: the real SPIRE agent (the default) or the quick stand-in
// (for machines where building SPIRE once is too slow).
const (
	agentSPIRE = "spire"
	agentDemo  = "demo"
	// agentEnv sets the default of --agent (the Makefile's DEMO_AGENT).
	agentEnv = "MESHCSI_DEMO_AGENT"
	// spireSource is the meshcsi source that is the SPIRE agent's socket
	// directory (the chart's own name for it).
	spireSource = "spire-agent"
	// spireServiceAccount is the workload's service account.
	spireServiceAccount = "demo-workload"
)

func defaultAgent() string {
	if a := os.Getenv(agentEnv); a != "" {
		return a
	}
	return agentSPIRE
}

// spireSocketDir is the SPIRE agent's socket directory under the demo's dir.
func spireSocketDir(dir string) string { return filepath.Join(dir, "spire-agent-sockets") }

// spireDemo is the SPIRE part of the demo.
type spireDemo struct {
	e         *env.Env
	socketDir string
	d         *spire.Deployment
	first     fetch.Attempt
}

// setUpSpire builds and imports the SPIRE images and makes the agent's
// socket directory a shared mount (before meshcsi is installed with it as a
// source).
func setUpSpire(ctx context.Context, e *env.Env, dir, version string) (*spireDemo, error) {
	start := time.Now()
	archives, err := spire.BuildImages(ctx, e.Root, filepath.Join(dir, "images"), spire.BinDir(), env.ImageTag, version)
	if err != nil {
		return nil, fmt.Errorf("%w (or run the demo with DEMO_AGENT=demo)", err)
	}
	if err := e.Cluster.ImportImages(ctx, archives...); err != nil {
		return nil, err
	}
	info("SPIRE %s server and agent images (from %s) and the workload image built and imported in %.1fs",
		spire.Version, spire.BinDir(), time.Since(start).Seconds())
	s := &spireDemo{e: e, socketDir: spireSocketDir(dir)}
	if _, err := spire.ShareDir(s.socketDir); err != nil {
		return nil, err
	}
	return s, nil
}

// values are the install's extra values: the agent's directory as source
// spire-agent, the default for workloads.
func (s *spireDemo) values() map[string]string {
	return map[string]string{"sources." + spireSource: s.socketDir, "defaultSource": spireSource}
}

// deploy runs the SPIRE server and agent and registers the agents.
func (s *spireDemo) deploy(ctx context.Context) error {
	port, err := spire.KubeletPort(ctx, s.e.Kube, kubeharness.NodeName)
	if err != nil {
		return err
	}
	s.d, err = spire.Deploy(ctx, s.e.Kube, s.e.Cluster.RESTConfig(),
		spire.Config{SocketDir: s.socketDir, KubeletPort: port, ImageTag: env.ImageTag}, info)
	if err != nil {
		return err
	}
	id, err := s.d.RegisterAgents(ctx)
	if err != nil {
		return err
	}
	info("registered every agent of cluster %q as %s (selector k8s_psat:cluster:%s)", spire.DefaultCluster, id, spire.DefaultCluster)
	return nil
}

// runWorkload registers the workload's service account and starts the
// workload, which fetches its X509-SVID through the meshcsi volume.
func (s *spireDemo) runWorkload(ctx context.Context) error {
	kc := s.e.Kube.Kube
	_, err := kc.CoreV1().ServiceAccounts(workloads).Create(ctx,
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: spireServiceAccount}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("failed to create service account %s/%s: %w", workloads, spireServiceAccount, err)
	}
	id, err := s.d.RegisterWorkload(ctx, workloads, spireServiceAccount)
	if err != nil {
		return err
	}
	info("registered %s for pods of service account %s/%s (selectors k8s:ns, k8s:sa)", id, workloads, spireServiceAccount)
	pod := spire.WorkloadPod(spire.WorkloadOptions{
		Namespace: workloads, Name: workload, ServiceAccount: spireServiceAccount,
		Driver: env.DriverName, Source: spireSource, ImageTag: env.ImageTag,
		Labels: map[string]string{"app": env.WorkloadApp},
	})
	info("volumes: [{name: spire-agent-socket, csi: {driver: %s, readOnly: true, volumeAttributes: {source: %s}}}], no hostPath, no token",
		env.DriverName, spireSource)
	if _, err := kc.CoreV1().Pods(workloads).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("failed to create pod %s/%s: %w", workloads, workload, err)
	}
	s.first, err = spire.WaitSVID(ctx, s.e.Kube, workloads, workload, time.Time{}, 2*time.Minute)
	if err != nil {
		return err
	}
	info("workload | attempt %d: X509-SVID %s (serial %s, expires %s)", s.first.Seq, s.first.SPIFFEID, s.first.Serial, s.first.Expires.Format(time.RFC3339))
	if s.first.SPIFFEID != id {
		return fmt.Errorf("the workload got %s, registered was %s", s.first.SPIFFEID, id)
	}
	info("the workload fetched the SVID registered for its service account through the meshcsi volume")
	return nil
}

// restartAgent deletes the agent pod and shows the workload fetching from the
// new agent through the same mount.
func (s *spireDemo) restartAgent(ctx context.Context) error {
	old, replacement, err := s.d.RestartAgent(ctx)
	if err != nil {
		return err
	}
	restarted := time.Now()
	info("agent pod %s deleted; the DaemonSet's new pod %s is ready and serves a new socket", old.Name, replacement.Name)
	a, err := spire.WaitSVID(ctx, s.e.Kube, workloads, workload, restarted, 2*time.Minute)
	if err != nil {
		return err
	}
	info("workload | attempt %d: X509-SVID %s (new serial %s)", a.Seq, a.SPIFFEID, a.Serial)
	p, err := s.e.Kube.Kube.CoreV1().Pods(workloads).Get(ctx, workload, metav1.GetOptions{})
	if err == nil {
		var n int32
		for _, cs := range p.Status.ContainerStatuses {
			n += cs.RestartCount
		}
		info("the same pod (uid %s, %d container restarts) reached the new agent through the same mount", p.UID, n)
	}
	return nil
}

// unshareSpireDir undoes setUpSpire's mount of the agent's socket directory
// (demo down); nothing to do when it is not mounted.
func unshareSpireDir(dir string) error {
	err := unix.Unmount(spireSocketDir(dir), unix.MNT_DETACH)
	if err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("failed to unmount the SPIRE agent's socket directory: %w", err)
	}
	return nil
}
