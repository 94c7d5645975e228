//go:build e2e

package e2e

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshcsi/meshcsi/e2e/env"
	"github.com/meshcsi/meshcsi/e2e/spire"
	"github.com/meshcsi/meshcsi/e2e/spire/fetch"
	"github.com/meshcsi/meshcsi/libs/kubeharness"
)

const (
	// spireSource is the meshcsi source that is the SPIRE agent's socket
	// directory (the chart's own name for it).
	spireSource = "spire-agent"
	// spireWorkloads enforces Pod Security "restricted".
	spireWorkloads = "spire-workloads"
)

// caseSpire runs the real SPIRE server and agent with meshcsi handing the
// agent's socket to workloads: a workload in a "restricted" namespace with
// only the meshcsi volume gets the SVID registered for its service account,
// another service account gets another, and after the agent pod is replaced
// the running workload fetches again through the same mount.
func caseSpire(t *testing.T, ctx context.Context) {
	// Not t.TempDir(): the subtest's name has a comma, which helm's --set
	// would split the source path at.
	dir, err := os.MkdirTemp("", "meshcsi-spire-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	start := time.Now()
	archives, err := spire.BuildImages(ctx, suite.Root, filepath.Join(dir, "images"), spire.BinDir(), env.ImageTag, "e2e")
	if err != nil {
		t.Fatal(err)
	}
	if err := suite.Cluster.ImportImages(ctx, archives...); err != nil {
		t.Fatal(err)
	}
	t.Logf("SPIRE %s images built and imported in %s", spire.Version, time.Since(start).Round(100*time.Millisecond))

	socketDir := filepath.Join(dir, "spire-agent-sockets")
	unshare, err := spire.ShareDir(socketDir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := unshare(); err != nil {
			t.Error(err)
		}
	})
	install(t, ctx, map[string]string{"sources." + spireSource: socketDir})

	port, err := spire.KubeletPort(ctx, suite.Kube, kubeharness.NodeName)
	if err != nil {
		t.Fatal(err)
	}
	d, err := spire.Deploy(ctx, suite.Kube, suite.Cluster.RESTConfig(),
		spire.Config{SocketDir: socketDir, KubeletPort: port, ImageTag: env.ImageTag}, t.Logf)
	if err != nil {
		spireDiagnose(t, ctx)
		t.Fatal(err)
	}
	if _, err := d.RegisterAgents(ctx); err != nil {
		t.Fatal(err)
	}
	if err := suite.EnsureWorkloadNamespace(ctx, spireWorkloads); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	for _, sa := range []string{"frontend", "backend"} {
		if _, err := suite.Kube.Kube.CoreV1().ServiceAccounts(spireWorkloads).Create(ctx,
			&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		id, err := d.RegisterWorkload(ctx, spireWorkloads, sa)
		if err != nil {
			t.Fatal(err)
		}
		want[sa] = id
		pod := spire.WorkloadPod(spire.WorkloadOptions{
			Namespace: spireWorkloads, Name: sa, ServiceAccount: sa,
			Driver: env.DriverName, Source: spireSource, ImageTag: env.ImageTag,
		})
		if _, err := suite.Kube.Kube.CoreV1().Pods(spireWorkloads).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
			t.Fatalf("pod %s (Pod Security restricted, only the meshcsi volume) refused: %v", sa, err)
		}
	}

	got := map[string]fetch.Attempt{}
	for sa := range want {
		a := waitSVID(t, ctx, sa, time.Time{})
		if a.SPIFFEID != want[sa] {
			t.Errorf("pod %s/%s (service account %s) got %s, want %s", spireWorkloads, sa, sa, a.SPIFFEID, want[sa])
		}
		t.Logf("pod %s/%s fetched its X509-SVID through the meshcsi volume: %s (serial %s, attempt %d)",
			spireWorkloads, sa, a.SPIFFEID, a.Serial, a.Seq)
		got[sa] = a
	}
	if got["frontend"].SPIFFEID == got["backend"].SPIFFEID {
		t.Errorf("both service accounts got %s", got["frontend"].SPIFFEID)
	}

	// Agent restart: the running workload keeps its pod, its container and
	// its mount, and fetches from the new agent.
	before, err := suite.Kube.Kube.CoreV1().Pods(spireWorkloads).Get(ctx, "frontend", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	mountsBefore, err := suite.MountsOf(string(before.UID))
	if err != nil {
		t.Fatal(err)
	}
	old, replacement, err := d.RestartAgent(ctx)
	if err != nil {
		spireDiagnose(t, ctx)
		t.Fatal(err)
	}
	restarted := time.Now()
	t.Logf("agent pod %s deleted; %s ready", old.Name, replacement.Name)
	a := waitSVID(t, ctx, "frontend", restarted)
	if a.SPIFFEID != want["frontend"] {
		t.Errorf("after the agent restart frontend got %s, want %s", a.SPIFFEID, want["frontend"])
	}
	if a.Serial == got["frontend"].Serial {
		t.Errorf("after the agent restart frontend got the same SVID (serial %s): not one from the new agent", a.Serial)
	}
	t.Logf("after the agent restart pod %s/frontend fetched %s (new serial %s, attempt %d) through the same mount",
		spireWorkloads, a.SPIFFEID, a.Serial, a.Seq)
	after, err := suite.Kube.Kube.CoreV1().Pods(spireWorkloads).Get(ctx, "frontend", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if after.UID != before.UID || restarts(after) != restarts(before) {
		t.Errorf("the workload was restarted: uid %s -> %s, restarts %d -> %d", before.UID, after.UID, restarts(before), restarts(after))
	}
	mountsAfter, err := suite.MountsOf(string(after.UID))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(mountsBefore, mountsAfter) {
		t.Errorf("the workload's mounts changed across the agent restart:\nbefore %s\nafter  %s",
			strings.Join(mountsBefore, "\n       "), strings.Join(mountsAfter, "\n       "))
	}

	// Leave nothing: workloads, SPIRE, then the release.
	if err := spire.DeleteNamespace(ctx, suite.Kube, spireWorkloads, 2*time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := d.Remove(ctx); err != nil {
		t.Fatal(err)
	}
	uninstallAndWaitGone(t, ctx)
}

// waitSVID waits until the workload pod's log shows an SVID fetched at or
// after since and returns that attempt.
func waitSVID(t *testing.T, ctx context.Context, pod string, since time.Time) fetch.Attempt {
	t.Helper()
	a, err := spire.WaitSVID(ctx, suite.Kube, spireWorkloads, pod, since, 2*time.Minute)
	if err != nil {
		spireDiagnose(t, ctx)
		t.Fatalf("%v (%s)", err, suite.PodSummary(ctx, spireWorkloads, pod))
	}
	return a
}

func restarts(p *corev1.Pod) int32 {
	var n int32
	for _, cs := range p.Status.ContainerStatuses {
		n += cs.RestartCount
	}
	return n
}

// uninstallAndWaitGone uninstalls the release (no workload uses it any more)
// and waits until the sentinel has removed every object of it.
func uninstallAndWaitGone(t *testing.T, ctx context.Context) {
	t.Helper()
	if out, _, err := suite.Uninstall(ctx, release, namespace); err != nil {
		t.Fatalf("helm uninstall: %v\n%s", err, out)
	}
	if err := suite.WaitReleaseGone(ctx, release, namespace, 2*time.Minute); err != nil {
		t.Fatal(err)
	}
}

// spireDiagnose logs the SPIRE pods' state and last log lines.
func spireDiagnose(t *testing.T, ctx context.Context) {
	t.Helper()
	pods, err := suite.Kube.Kube.CoreV1().Pods(spire.DefaultNamespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return
	}
	for _, p := range pods.Items {
		t.Logf("diagnose: pod %s/%s: %s", p.Namespace, p.Name, suite.PodSummary(ctx, p.Namespace, p.Name))
		raw, err := suite.Kube.Kube.CoreV1().Pods(p.Namespace).GetLogs(p.Name, &corev1.PodLogOptions{TailLines: ptr(int64(25))}).DoRaw(ctx)
		if err == nil {
			t.Logf("diagnose: log of %s:\n%s", p.Name, raw)
		}
	}
}
