//go:build e2e

package e2e

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/moby/sys/mountinfo"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/meshcsi/meshcsi/e2e/admissiontest"
	"github.com/meshcsi/meshcsi/e2e/agent"
	"github.com/meshcsi/meshcsi/e2e/crds"
	"github.com/meshcsi/meshcsi/e2e/env"
	"github.com/meshcsi/meshcsi/e2e/images"
	"github.com/meshcsi/meshcsi/libs/kubeharness"
)

// poll retries cond every 250 ms until it returns nil or timeout passes,
// then fails the test with cond's last error.
func poll(t *testing.T, ctx context.Context, timeout time.Duration, what string, cond func(ctx context.Context) error) {
	t.Helper()
	var last error
	err := wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		last = cond(ctx)
		return last == nil, nil
	})
	if err != nil {
		t.Fatalf("%s: not after %s: %v", what, timeout, last)
	}
}

func daemonSetReady(t *testing.T, ctx context.Context) {
	t.Helper()
	poll(t, ctx, 2*time.Minute, "driver DaemonSet ready", func(ctx context.Context) error {
		ds, err := suite.Kube.Kube.AppsV1().DaemonSets(namespace).Get(ctx, release+"-driver", metav1.GetOptions{})
		if err != nil {
			return err
		}
		s := ds.Status
		if s.DesiredNumberScheduled < 1 || s.NumberReady != s.DesiredNumberScheduled || s.UpdatedNumberScheduled != s.DesiredNumberScheduled {
			return fmt.Errorf("desired %d ready %d updated %d", s.DesiredNumberScheduled, s.NumberReady, s.UpdatedNumberScheduled)
		}
		return nil
	})
}

func csiNodeLists(ctx context.Context, want bool) error {
	n, err := suite.Kube.Kube.StorageV1().CSINodes().Get(ctx, kubeharness.NodeName, metav1.GetOptions{})
	if err != nil {
		return err
	}
	has := false
	for _, d := range n.Spec.Drivers {
		if d.Name == env.DriverName {
			has = true
		}
	}
	if has != want {
		return fmt.Errorf("CSINode %s drivers %v, want %s listed: %v", n.Name, n.Spec.Drivers, env.DriverName, want)
	}
	return nil
}

func startWorkload(t *testing.T, ctx context.Context, name string) agent.Ping {
	t.Helper()
	p, err := suite.StartWorkload(ctx, workloads, name)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func deleteWorkloads(t *testing.T, ctx context.Context, selector string) {
	t.Helper()
	if err := suite.DeletePodsAndWait(ctx, workloads, selector, 90*time.Second); err != nil {
		t.Fatal(err)
	}
}

func driverMetric(t *testing.T, ctx context.Context, metric string, labels ...string) float64 {
	t.Helper()
	pod, err := suite.DriverPod(ctx, namespace, release)
	if err != nil {
		t.Fatal(err)
	}
	expo, err := suite.DriverMetrics(ctx, pod)
	if err != nil {
		t.Fatal(err)
	}
	v, _, err := env.MetricValue(expo, metric, labels...)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func install(t *testing.T, ctx context.Context, extra map[string]string) string {
	t.Helper()
	out, err := suite.Install(ctx, release, namespace, extra)
	if err != nil {
		t.Fatalf("helm install: %v\n%s", err, out)
	}
	daemonSetReady(t, ctx)
	poll(t, ctx, time.Minute, "CSINode lists the driver", func(ctx context.Context) error { return csiNodeLists(ctx, true) })
	return out
}

// uninstallWithWorkloads runs helm uninstall while pods use the volume and
// checks the hand-off: helm returns promptly, the driver stays, the sentinel
// waits and names the blocking pods in its log and Events, the workloads keep
// their socket.
func uninstallWithWorkloads(t *testing.T, ctx context.Context, blocker string) {
	t.Helper()
	out, took, err := suite.Uninstall(ctx, release, namespace)
	if err != nil {
		t.Fatalf("helm uninstall: %v\n%s", err, out)
	}
	t.Logf("helm uninstall returned in %s:\n%s", took.Round(time.Millisecond), out)
	if took > 60*time.Second {
		t.Errorf("helm uninstall took %s, want < 60s", took)
	}
	if !strings.Contains(out, "kept due to the resource policy") {
		t.Errorf("helm did not report kept resources:\n%s", out)
	}
	ended := time.Now()
	// No cluster-admin (or admin/edit) grant to any of the release's accounts.
	crbs, err := suite.Kube.Kube.RbacV1().ClusterRoleBindings().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range crbs.Items {
		if b.RoleRef.Name != "cluster-admin" && b.RoleRef.Name != "admin" && b.RoleRef.Name != "edit" {
			continue
		}
		for _, sub := range b.Subjects {
			if sub.Namespace == namespace || strings.HasPrefix(sub.Name, "system:serviceaccount:"+namespace) {
				t.Errorf("ClusterRoleBinding %s grants %s to %s/%s", b.Name, b.RoleRef.Name, sub.Namespace, sub.Name)
			}
		}
	}
	if _, err := suite.Kube.Kube.AppsV1().DaemonSets(namespace).Get(ctx, release+"-driver", metav1.GetOptions{}); err != nil {
		t.Errorf("driver DaemonSet gone while pods use the volume: %v", err)
	}
	if _, err := suite.Kube.Kube.StorageV1().CSIDrivers().Get(ctx, env.DriverName, metav1.GetOptions{}); err != nil {
		t.Errorf("CSIDriver gone while pods use the volume: %v", err)
	}
	poll(t, ctx, time.Minute, "the sentinel reports "+blocker+" in its log", func(ctx context.Context) error {
		log, err := suite.SentinelLog(ctx, release, namespace)
		if err != nil {
			return err
		}
		if !strings.Contains(log, workloads+"/"+blocker) {
			return fmt.Errorf("log does not name %s/%s:\n%s", workloads, blocker, log)
		}
		// The chart's RBAC must cover everything the sentinel does.
		if strings.Contains(log, "forbidden") {
			t.Errorf("the sentinel was refused an API call (the chart's RBAC lacks a rule):\n%s", log)
		}
		return nil
	})
	poll(t, ctx, 30*time.Second, "the sentinel reports "+blocker+" as an Event", func(ctx context.Context) error {
		evs, err := suite.SentinelEvents(ctx, release, namespace)
		if err != nil {
			return err
		}
		for _, ev := range evs {
			if strings.Contains(ev, blocker) {
				return nil
			}
		}
		return fmt.Errorf("events %q do not name %s", evs, blocker)
	})
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if _, err := suite.Agent.WaitFor(wctx, func(p agent.Ping) bool { return p.Name == blocker && p.At.After(ended) }); err != nil {
		t.Errorf("%s lost its socket after helm uninstall: %v", blocker, err)
	}
}

// removeWorkloadsAndExpectCleanup deletes the workloads and waits for the
// sentinel to remove every object of the release.
func removeWorkloadsAndExpectCleanup(t *testing.T, ctx context.Context) {
	t.Helper()
	start := time.Now()
	deleteWorkloads(t, ctx, env.WorkloadSelector)
	t.Logf("every workload pod terminated in %s", time.Since(start).Round(time.Millisecond))
	if err := suite.WaitReleaseGone(ctx, release, namespace, 2*time.Minute); err != nil {
		t.Fatal(err)
	}
	t.Logf("every object of the release gone %s after the workloads were deleted", time.Since(start).Round(time.Millisecond))
	poll(t, ctx, time.Minute, "CSINode no longer lists the driver", func(ctx context.Context) error { return csiNodeLists(ctx, false) })
}

func caseInstall(t *testing.T, ctx context.Context) {
	install(t, ctx, nil)
	p := startWorkload(t, ctx, "ws-1")
	if !strings.Contains(p.Write, "read-only file system") {
		t.Errorf("the pod could write into the volume: %q", p.Write)
	}
	t.Logf("ws-1 reached the agent through the volume; its write attempt: %s", p.Write)

	// A pod asking for an unknown source is refused by the chart's pod
	// admission policy (the driver's own FailedMount: case 5).
	if err := admissiontest.WaitEnforced(ctx, suite.Kube.Kube, workloads, env.DriverName, images.DemoAgent.Ref(env.ImageTag), time.Minute); err != nil {
		t.Fatal(err)
	}
	bad := env.WorkloadPod(workloads, "bad-source", "no-such-source")
	_, err := suite.Kube.Kube.CoreV1().Pods(workloads).Create(ctx, bad, metav1.CreateOptions{})
	if err == nil || !strings.Contains(err.Error(), `"no-such-source" is not a source of driver `+env.DriverName) {
		t.Fatalf("a pod naming an unknown source: %v, want rejected naming it", err)
	}
	t.Logf("rejected: %v", err)
}

func casePodDeletion(t *testing.T, ctx context.Context) {
	pod, err := suite.Kube.Kube.CoreV1().Pods(workloads).Get(ctx, "ws-1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	uid := string(pod.UID)
	mounts, err := suite.PodMounts(uid)
	if err != nil {
		t.Fatal(err)
	}
	var csiMount *mountinfo.Info
	for _, m := range mounts {
		if strings.Contains(m.Mountpoint, "/volumes/kubernetes.io~csi/") {
			csiMount = m
		}
	}
	if csiMount == nil {
		t.Fatalf("no CSI mount of ws-1 in the kubelet's mount table: %q", env.FormatMounts(mounts))
	}
	for _, want := range []string{"ro", "nosuid", "nodev", "noexec"} {
		if !strings.Contains(","+csiMount.Options+",", ","+want+",") {
			t.Errorf("the pod's mount %s has options %s, want %s", csiMount.Mountpoint, csiMount.Options, want)
		}
	}
	before := driverMetric(t, ctx, "meshcsi_csi_operations_total", `method="NodeUnpublishVolume"`, `code="OK"`)
	deleteWorkloads(t, ctx, env.PodSelector("ws-1"))
	mounts, err = suite.PodMounts(uid)
	if err != nil {
		t.Fatal(err)
	}
	if len(mounts) != 0 {
		t.Errorf("mounts left under the deleted pod's directory: %q", env.FormatMounts(mounts))
	}
	after := driverMetric(t, ctx, "meshcsi_csi_operations_total", `method="NodeUnpublishVolume"`, `code="OK"`)
	if after < before+1 {
		t.Errorf("NodeUnpublishVolume OK count %v -> %v: the driver did not unpublish", before, after)
	}
	if v := driverMetric(t, ctx, "meshcsi_published_volumes", `source="`+env.Source+`"`); v != 0 {
		t.Errorf("published volumes = %v after the last pod went", v)
	}
}

func caseDriverRestart(t *testing.T, ctx context.Context) {
	startWorkload(t, ctx, "ws-7a")
	startWorkload(t, ctx, "ws-7b")
	old, err := suite.DriverPod(ctx, namespace, release)
	if err != nil {
		t.Fatal(err)
	}
	if err := suite.Kube.Kube.CoreV1().Pods(namespace).Delete(ctx, old.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	var fresh *corev1.Pod
	poll(t, ctx, 2*time.Minute, "a new driver pod ready", func(ctx context.Context) error {
		p, err := suite.DriverPod(ctx, namespace, release)
		if err != nil {
			return err
		}
		if p.Name == old.Name {
			return fmt.Errorf("still the old pod %s", p.Name)
		}
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
				fresh = p
				return nil
			}
		}
		return fmt.Errorf("%s not ready", p.Name)
	})
	restarted := time.Now()
	t.Logf("driver pod %s replaced by %s", old.Name, fresh.Name)
	for _, name := range []string{"ws-7a", "ws-7b"} {
		wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		if _, err := suite.Agent.WaitFor(wctx, func(p agent.Ping) bool { return p.Name == name && p.At.After(restarted) }); err != nil {
			t.Errorf("%s lost its socket when the driver restarted: %v", name, err)
		}
		cancel()
	}
	var uids []string
	for _, name := range []string{"ws-7a", "ws-7b"} {
		p, err := suite.Kube.Kube.CoreV1().Pods(workloads).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		uids = append(uids, string(p.UID))
	}
	deleteWorkloads(t, ctx, env.WorkloadSelector)
	for _, uid := range uids {
		if m, err := suite.MountsOf(uid); err != nil || len(m) != 0 {
			t.Errorf("mounts left after the restarted driver unpublished: %q %v", m, err)
		}
	}
	if v := driverMetric(t, ctx, "meshcsi_csi_operations_total", `method="NodeUnpublishVolume"`, `code="OK"`); v < 2 {
		t.Errorf("the new driver served %v NodeUnpublishVolume OK, want >= 2", v)
	}
}

func caseUninstall(t *testing.T, ctx context.Context) {
	startWorkload(t, ctx, "ws-4a")
	startWorkload(t, ctx, "ws-4b")
	uninstallWithWorkloads(t, ctx, "ws-4a")
	removeWorkloadsAndExpectCleanup(t, ctx)
}

var sccGVR = schema.GroupVersionResource{Group: "security.openshift.io", Version: "v1", Resource: "securitycontextconstraints"}

func caseOpenShift(t *testing.T, ctx context.Context) {
	// OpenShift's real SCC CRD, from github.com/openshift/api.
	sccCRD, err := crds.SecurityContextConstraints(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := suite.Kube.ApplyCRDFiles(ctx, sccCRD); err != nil {
		t.Fatal(err)
	}
	out := install(t, ctx, map[string]string{"openshift.enabled": "true"})
	if !strings.Contains(out, "Workloads need no extra\nSCC: restricted-v2 allows csi volumes") {
		t.Errorf("NOTES lack the restricted-v2 line:\n%s", out)
	}
	sccs, err := suite.Kube.Dynamic.Resource(sccGVR).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/instance=" + release})
	if err != nil {
		t.Fatal(err)
	}
	if len(sccs.Items) != 1 || sccs.Items[0].GetName() != release+"-driver" {
		t.Errorf("SCCs of the release %d, want only %s-driver", len(sccs.Items), release)
	}
	d, err := suite.Kube.Kube.StorageV1().CSIDrivers().Get(ctx, env.DriverName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if d.Labels["security.openshift.io/csi-ephemeral-volume-profile"] != "restricted" {
		t.Errorf("CSIDriver labels %v", d.Labels)
	}
	startWorkload(t, ctx, "ws-5")
	uninstallWithWorkloads(t, ctx, "ws-5")
	// The driver's SCC waits for the sentinel.
	if _, err := suite.Kube.Dynamic.Resource(sccGVR).Get(ctx, release+"-driver", metav1.GetOptions{}); err != nil {
		t.Errorf("driver SCC gone while the driver still serves pods: %v", err)
	}
	removeWorkloadsAndExpectCleanup(t, ctx)
}

func caseReinstall(t *testing.T, ctx context.Context) {
	install(t, ctx, nil)
	ds, err := suite.Kube.Kube.AppsV1().DaemonSets(namespace).Get(ctx, release+"-driver", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	startWorkload(t, ctx, "ws-6")
	uninstallWithWorkloads(t, ctx, "ws-6")
	if _, err := suite.Kube.Kube.CoreV1().ConfigMaps(namespace).Get(ctx, release+"-sentinel-plan", metav1.GetOptions{}); err != nil {
		t.Fatalf("no plan while the sentinel waits: %v", err)
	}

	install(t, ctx, nil)
	// The Job is suspended again (by the re-install and by the sentinel
	// itself), not finished, so the next uninstall's hand-off can resume it.
	poll(t, ctx, time.Minute, "the sentinel stands down (Job suspended, plan deleted)", func(ctx context.Context) error {
		j, err := suite.Kube.Kube.BatchV1().Jobs(namespace).Get(ctx, release+"-sentinel", metav1.GetOptions{})
		if err != nil {
			return err
		}
		finished := false
		for _, c := range j.Status.Conditions {
			if (c.Type == batchv1.JobComplete || c.Type == batchv1.JobFailed) && c.Status == corev1.ConditionTrue {
				finished = true
			}
		}
		if j.Spec.Suspend == nil || !*j.Spec.Suspend || j.Status.Active != 0 || finished {
			return fmt.Errorf("sentinel Job: suspend %v active %d succeeded %d failed %d finished %v", j.Spec.Suspend, j.Status.Active, j.Status.Succeeded, j.Status.Failed, finished)
		}
		_, err = suite.Kube.Kube.CoreV1().ConfigMaps(namespace).Get(ctx, release+"-sentinel-plan", metav1.GetOptions{})
		switch {
		case err == nil:
			return errors.New("plan still there")
		case !apierrors.IsNotFound(err):
			return err
		}
		return nil
	})
	if log, err := suite.SentinelLog(ctx, release, namespace); err == nil {
		t.Logf("sentinel log after the re-install:\n%s", lastLines(log, 5))
	}
	// The sentinel has stood down: over more than one of its report
	// intervals (5 s) nothing of the new install may be deleted.
	if err := suite.ExpectNothingDeleted(ctx, release, 6*time.Second); err != nil {
		t.Error(err)
	}
	now, err := suite.Kube.Kube.AppsV1().DaemonSets(namespace).Get(ctx, release+"-driver", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the re-installed driver was deleted: %v", err)
	}
	if now.UID != ds.UID {
		t.Errorf("DaemonSet UID %s -> %s: Helm should adopt the kept object", ds.UID, now.UID)
	}
	objs, err := suite.ReleaseObjects(ctx, release, namespace)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"daemonsets/" + namespace + "/" + release + "-driver",
		"csidrivers/" + env.DriverName,
		"serviceaccounts/" + namespace + "/" + release + "-sentinel",
		"clusterroles/" + release + "-sentinel",
		"configmaps/" + namespace + "/" + release + "-install",
	} {
		if !contains(objs, want) {
			t.Errorf("%s missing after the re-install; have %v", want, objs)
		}
	}
	daemonSetReady(t, ctx)
	startWorkload(t, ctx, "ws-6b")

	// The final uninstall resumes the same, suspended sentinel Job and cleans up.
	uninstallWithWorkloads(t, ctx, "ws-6b")
	removeWorkloadsAndExpectCleanup(t, ctx)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
