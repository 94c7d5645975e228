//go:build e2e

package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/meshcsi/meshcsi/e2e/env"
	"github.com/meshcsi/meshcsi/e2e/images"
	"github.com/meshcsi/meshcsi/e2e/kube"
)

// The lifecycle cases (12-14) put the node through what users live
// through, with lifecycleWorkloads pods using the driver and a churn of
// pods created and deleted throughout: a helm upgrade and rollback of the
// driver, kubelet and containerd restarts and driver SIGKILLs in a loop, and
// a reboot. Each ends with the same figures and the same verdict:
//   - stuck: a pod neither Running with its containers ready nor gone (a
//     deleted pod still Terminating) once the fault is over and the churn
//     has stopped, after a generous wait;
//   - mount Events: every FailedMount/FailedUnmount Event of a workload pod
//     from the case's start is counted; it resolved by itself when its pod
//     afterwards reached Running with every container ready, or was deleted
//     and its object is gone (the kubelet finished it); any other is
//     unresolved;
//   - mounts: the kubelet's mount table holds exactly one mount per CSI
//     volume of every running pod and none of any other pod (no stacked
//     mount, none leaked); the long-lived pods' mounts are the very mounts
//     of before (same mount IDs) unless the node rebooted;
//   - each long-lived pod still reaches the agent through its volume after
//     the fault;
//   - after the workloads are deleted: no pod left (none Terminating) and no
//     mount of the driver left.
// Pass: 0 stuck, 0 unresolved, no mount problem, every ping, 0 left.

const (
	lifecycleWorkloads = 20
	// churnKeep pods of the churn are alive at a time; one is created (and
	// the oldest deleted) every churnInterval.
	churnKeep     = 3
	churnInterval = time.Second
	// nextTag is the second driver and sentinel images' tag and version.
	nextTag = "e2e-next"
)

// lifecycle is one lifecycle case in progress.
type lifecycle struct {
	id     string
	events *env.MountEvents
	churn  *env.Churn
	// pods are the long-lived workloads; mountIDs their CSI mounts' IDs at
	// the start, by pod UID.
	pods     []string
	uids     map[string]string
	mountIDs map[string]int
}

// lifecycleFigures are what a case reports.
type lifecycleFigures struct {
	pods                  int
	churn                 env.ChurnResult
	events                env.EventFigures
	stuck                 []string
	mountsBefore          int
	mountsAfter           int
	mountProblems         []string
	running               int
	mountsLeft            []string
	terminatingAfterwards []string
}

func (f lifecycleFigures) String() string {
	var reasons []string
	for _, r := range []string{"FailedMount", "FailedUnmount"} {
		reasons = append(reasons, fmt.Sprintf("%s %d", r, f.events.Events[r]))
	}
	return fmt.Sprintf("pods %d + churn %d created / %d deleted; mount events %d (%s) on %d pods, resolved %d (Running %d, deleted %d), unresolved %d; stuck %d; CSI mounts before %d, after %d for %d running pods (%d problems), after deletion %d; Terminating after deletion %d",
		f.pods, f.churn.Created, f.churn.Deleted, f.events.Total(), strings.Join(reasons, ", "), f.events.Pods,
		f.events.ResolvedRunning+f.events.ResolvedDeleted, f.events.ResolvedRunning, f.events.ResolvedDeleted, len(f.events.Unresolved),
		len(f.stuck), f.mountsBefore, f.mountsAfter, f.running, len(f.mountProblems), len(f.mountsLeft), len(f.terminatingAfterwards))
}

// ensureInstalled installs the release unless its driver is already there.
func ensureInstalled(t *testing.T, ctx context.Context) {
	t.Helper()
	_, err := suite.Kube.Kube.AppsV1().DaemonSets(namespace).Get(ctx, release+"-driver", metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		install(t, ctx, nil)
	case err != nil:
		t.Fatal(err)
	default:
		daemonSetReady(t, ctx)
	}
}

// startLifecycle starts recording mount Events, starts the long-lived
// workloads, checks their mounts and starts the churn.
func startLifecycle(t *testing.T, ctx context.Context, id string) *lifecycle {
	t.Helper()
	ensureInstalled(t, ctx)
	ev, err := suite.WatchMountEvents(ctx, workloads)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ev.Stop)
	l := &lifecycle{id: id, events: ev, uids: map[string]string{}, mountIDs: map[string]int{}}
	for i := 1; i <= lifecycleWorkloads; i++ {
		l.pods = append(l.pods, fmt.Sprintf("lc%s-%d", id, i))
	}
	began := time.Now()
	if err := suite.CreateWorkloads(ctx, workloads, "lifecycle", l.pods, 3*time.Minute); err != nil {
		t.Fatal(err)
	}
	// The API learns of Running a little after the first ping.
	if _, stuck := suite.WaitPodsSettled(ctx, workloads, env.RoleLabel+"=lifecycle", 2*time.Minute); len(stuck) > 0 {
		t.Fatalf("workloads not Running: %q", stuck)
	}
	t.Logf("%d workloads Running and reaching the agent through their volumes in %s", len(l.pods), time.Since(began).Round(100*time.Millisecond))
	want := wantMounts(t, ctx)
	mounts, err := suite.CSIMounts()
	if err != nil {
		t.Fatal(err)
	}
	if p := env.CheckCSIMounts(mounts, want); len(p) > 0 {
		t.Fatalf("CSI mounts before the fault: %q", p)
	}
	for _, name := range l.pods {
		p, err := suite.Kube.Kube.CoreV1().Pods(workloads).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		l.uids[name] = string(p.UID)
	}
	for _, m := range mounts {
		l.mountIDs[m.PodUID] = m.ID
	}
	l.churn = suite.StartChurn(ctx, workloads, "churn"+id, churnKeep, churnInterval)
	t.Cleanup(func() { l.churn.Stop() })
	return l
}

// wantMounts is the CSI volumes of every running workload pod.
func wantMounts(t *testing.T, ctx context.Context) map[string][]string {
	t.Helper()
	want, err := suite.RunningVolumes(ctx, workloads, env.WorkloadSelector)
	if err != nil {
		t.Fatal(err)
	}
	return want
}

// finish checks that the named long-lived pods reach the agent after the
// fault (ended at faultEnd), stops the churn, waits for every pod to settle
// and every mount Event to resolve, checks the mount table (the long-lived
// pods' mounts unchanged when sameMounts), deletes every workload and
// checks that nothing is left. It logs and returns the figures.
func (l *lifecycle) finish(t *testing.T, ctx context.Context, alive []string, faultEnd time.Time, sameMounts bool) lifecycleFigures {
	t.Helper()
	f := lifecycleFigures{pods: len(l.pods), mountsBefore: len(l.mountIDs)}
	if err := suite.WaitPings(ctx, workloads, alive, faultEnd, 2*time.Minute); err != nil {
		t.Errorf("after the fault: %v", err)
	}
	f.churn = l.churn.Stop()
	if len(f.churn.Errors) > 0 {
		t.Errorf("churn API calls failed: %q", f.churn.Errors)
	}
	f.running, f.stuck = suite.WaitPodsSettled(ctx, workloads, env.WorkloadSelector, 3*time.Minute)
	f.events = suite.WaitMountEventsResolved(ctx, workloads, l.events, 2*time.Minute)
	for _, p := range l.events.Pods() {
		t.Logf("mount events of %s: %v; last: %s", p.Pod, p.Count, p.Last)
	}

	mounts, err := suite.CSIMounts()
	if err != nil {
		t.Fatal(err)
	}
	f.mountsAfter = len(mounts)
	f.mountProblems = env.CheckCSIMounts(mounts, wantMounts(t, ctx))
	if sameMounts {
		ids := map[string]int{}
		for _, m := range mounts {
			ids[m.PodUID] = m.ID
		}
		for _, name := range alive {
			uid := l.uids[name]
			if before, now := l.mountIDs[uid], ids[uid]; before != now {
				f.mountProblems = append(f.mountProblems, fmt.Sprintf("%s: mount %d replaced by %d (remounted while it ran)", name, before, now))
			}
		}
	}

	if err := suite.DeletePodsAndWait(ctx, workloads, env.WorkloadSelector, 2*time.Minute); err != nil {
		t.Error(err)
	}
	if rest, err := suite.Kube.Kube.CoreV1().Pods(workloads).List(ctx, metav1.ListOptions{}); err == nil {
		for _, p := range rest.Items {
			f.terminatingAfterwards = append(f.terminatingAfterwards, p.Name)
		}
	}
	left, err := suite.CSIMounts()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range left {
		f.mountsLeft = append(f.mountsLeft, m.Mountpoint)
	}

	t.Logf("figures %s: %s", l.id, f)
	recordFigures(l.id, f)
	if len(f.stuck) > 0 {
		t.Errorf("%d pods stuck: %q", len(f.stuck), f.stuck)
	}
	if len(f.events.Unresolved) > 0 {
		t.Errorf("%d pods with mount Events that did not resolve: %q", len(f.events.Unresolved), f.events.Unresolved)
	}
	if len(f.mountProblems) > 0 {
		t.Errorf("mount table after the fault: %q", f.mountProblems)
	}
	if len(f.terminatingAfterwards) > 0 {
		t.Errorf("pods left after deleting the workloads: %q", f.terminatingAfterwards)
	}
	if len(f.mountsLeft) > 0 {
		t.Errorf("CSI mounts left after the workloads were deleted: %q", f.mountsLeft)
	}
	return f
}

// recordFigures appends a case's figures next to the e2e durations
// (_output/lifecycle-figures.txt) for docs/e2e.md.
func recordFigures(id string, f lifecycleFigures) {
	p := os.Getenv("MESHCSI_E2E_REPORT")
	if p == "" {
		return
	}
	out, err := os.OpenFile(filepath.Join(filepath.Dir(p), "lifecycle-figures.txt"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return
	}
	defer func() { _ = out.Close() }()
	_, _ = fmt.Fprintf(out, "%s case %s: %s\n", time.Now().Format(time.RFC3339), id, f)
}

// driverVersion returns the driver pod's image and the version its
// meshcsi_build_info reports, once the DaemonSet is rolled out.
func driverVersion(t *testing.T, ctx context.Context) (string, string) {
	t.Helper()
	daemonSetReady(t, ctx)
	pod, err := suite.DriverPod(ctx, namespace, release)
	if err != nil {
		t.Fatal(err)
	}
	expo, err := suite.DriverMetrics(ctx, pod)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{nextTag, env.ImageTag} {
		if n, found, err := env.MetricValue(expo, "meshcsi_build_info", `version="`+v+`"`); err == nil && found && n == 1 {
			return pod.Spec.Containers[0].Image, v
		}
	}
	var info []string
	for _, line := range strings.Split(expo, "\n") {
		if strings.HasPrefix(line, "meshcsi_build_info") {
			info = append(info, line)
		}
	}
	t.Fatalf("driver pod %s: no meshcsi_build_info with version %s or %s: %q", pod.Name, nextTag, env.ImageTag, info)
	return "", ""
}

// caseUpgrade: helm upgrade to new driver and sentinel images and helm
// rollback, with the workloads running and the churn going on. The new
// sentinel image changes the pod of the pre-created, suspended sentinel Job,
// which Kubernetes never changes: the chart's pre-upgrade (pre-rollback)
// hook Job runs on the node and deletes it, and Helm creates it anew,
// suspended, with the new image.
func caseUpgrade(t *testing.T, ctx context.Context) {
	began := time.Now()
	if err := suite.BuildImages(ctx, t.TempDir(), nextTag, nextTag, images.Driver, images.Sentinel); err != nil {
		t.Fatal(err)
	}
	t.Logf("driver and sentinel images %s, %s built and imported in %s", images.Driver.Ref(nextTag), images.Sentinel.Ref(nextTag), time.Since(began).Round(100*time.Millisecond))
	l := startLifecycle(t, ctx, "12")
	ds, err := suite.Kube.Kube.AppsV1().DaemonSets(namespace).Get(ctx, release+"-driver", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ru := ds.Spec.UpdateStrategy.RollingUpdate; ru != nil {
		t.Logf("DaemonSet updateStrategy %s, maxUnavailable %v, maxSurge %v", ds.Spec.UpdateStrategy.Type, ru.MaxUnavailable, ru.MaxSurge)
	}

	jobs := suite.Kube.Kube.BatchV1().Jobs(namespace)
	before, err := jobs.Get(ctx, release+"-sentinel", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, step := range []struct {
		what                   string
		run                    func() (string, error)
		wantImage, wantVersion string
		wantSentinel           string
	}{
		{"helm upgrade to " + nextTag, func() (string, error) {
			return suite.Upgrade(ctx, release, namespace, map[string]string{"driver.image.tag": nextTag, "sentinel.image.tag": nextTag})
		}, images.Driver.Ref(nextTag), nextTag, images.Sentinel.Ref(nextTag)},
		{"helm rollback", func() (string, error) { return suite.Rollback(ctx, release, namespace) },
			images.Driver.Ref(env.ImageTag), env.ImageTag, images.Sentinel.Ref(env.ImageTag)},
	} {
		start := time.Now()
		if out, err := step.run(); err != nil {
			t.Fatalf("%s: %v\n%s", step.what, err, out)
		}
		img, version := driverVersion(t, ctx)
		t.Logf("%s: done in %s; the driver runs %s (version %s)", step.what, time.Since(start).Round(100*time.Millisecond), img, version)
		if img != step.wantImage || version != step.wantVersion {
			t.Fatalf("after %s the driver runs %s version %s, want %s version %s", step.what, img, version, step.wantImage, step.wantVersion)
		}
		// The hook replaced the never-started sentinel Job: a new one,
		// suspended, with the new pod; the hook's Job and account are gone
		// (hook-succeeded).
		sj, err := jobs.Get(ctx, release+"-sentinel", metav1.GetOptions{})
		if err != nil {
			t.Fatalf("after %s: the sentinel Job: %v", step.what, err)
		}
		if got := sj.Spec.Template.Spec.Containers[0].Image; got != step.wantSentinel || sj.UID == before.UID || sj.Spec.Suspend == nil || !*sj.Spec.Suspend {
			t.Fatalf("after %s the sentinel Job has image %s, uid %s (was %s), suspend %v; want a new suspended Job with %s",
				step.what, got, sj.UID, before.UID, sj.Spec.Suspend, step.wantSentinel)
		}
		t.Logf("%s: the sentinel Job was re-created (uid %s -> %s), suspended, with %s", step.what, before.UID, sj.UID, step.wantSentinel)
		before = sj
		if _, err := jobs.Get(ctx, release+"-upgrade", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("after %s the pre-upgrade hook Job is still there: %v", step.what, err)
		}
		if _, err := suite.Kube.Kube.CoreV1().ServiceAccounts(namespace).Get(ctx, release+"-upgrade", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("after %s the pre-upgrade hook's ServiceAccount is still there: %v", step.what, err)
		}
		if err := suite.WaitPings(ctx, workloads, l.pods, time.Now(), time.Minute); err != nil {
			t.Errorf("after %s: %v", step.what, err)
		}
	}
	surgeCannotTakeOver(t, ctx)
	l.finish(t, ctx, l.pods, time.Now(), true)
}

// surgeCannotTakeOver shows on the real node why the chart refuses
// maxSurge: with the DaemonSet patched behind Helm's back to maxSurge 1 and
// the new image, the surge pod's driver exits because the old driver holds
// its socket's lock, while the old driver keeps serving; the patch is then
// undone.
func surgeCannotTakeOver(t *testing.T, ctx context.Context) {
	t.Helper()
	dss := suite.Kube.Kube.AppsV1().DaemonSets(namespace)
	old, err := suite.DriverPod(ctx, namespace, release)
	if err != nil {
		t.Fatal(err)
	}
	patch := func(surge, unavailable int, tag string) {
		t.Helper()
		p := fmt.Sprintf(`{"spec":{"updateStrategy":{"rollingUpdate":{"maxSurge":%d,"maxUnavailable":%d}},"template":{"spec":{"containers":[{"name":"driver","image":%q}]}}}}`,
			surge, unavailable, images.Driver.Ref(tag))
		if _, err := dss.Patch(ctx, release+"-driver", types.StrategicMergePatchType, []byte(p), metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	patch(1, 0, nextTag)
	var msg string
	poll(t, ctx, 2*time.Minute, "the surge driver pod exits on the held lock", func(ctx context.Context) error {
		l, err := suite.Kube.Kube.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/component=driver,app.kubernetes.io/instance=" + release})
		if err != nil {
			return err
		}
		for _, p := range l.Items {
			if p.Name == old.Name || p.Spec.Containers[0].Image != images.Driver.Ref(nextTag) {
				continue
			}
			for _, cs := range p.Status.ContainerStatuses {
				term := cs.LastTerminationState.Terminated
				if term == nil {
					term = cs.State.Terminated
				}
				if term == nil {
					return fmt.Errorf("surge pod %s: driver not exited yet", p.Name)
				}
				raw, err := suite.Kube.Kube.CoreV1().Pods(namespace).GetLogs(p.Name, &corev1.PodLogOptions{Container: "driver", Previous: cs.LastTerminationState.Terminated != nil}).DoRaw(ctx)
				if err != nil {
					return err
				}
				if !strings.Contains(string(raw), "in use by another meshcsi-driver") {
					return fmt.Errorf("surge pod %s exited %d: %s", p.Name, term.ExitCode, raw)
				}
				msg = fmt.Sprintf("surge pod %s: driver exited %d, restarts %d: %s", p.Name, term.ExitCode, cs.RestartCount, lastLines(strings.TrimSpace(string(raw)), 1))
				return nil
			}
		}
		return errors.New("no surge pod yet")
	})
	t.Log(msg)
	if p, err := suite.Kube.Kube.CoreV1().Pods(namespace).Get(ctx, old.Name, metav1.GetOptions{}); err != nil || p.DeletionTimestamp != nil || !kube.PodReady(p) {
		t.Errorf("the old driver %s stopped serving during the surge: %v", old.Name, err)
	}
	patch(0, 1, env.ImageTag)
	poll(t, ctx, 2*time.Minute, "the surge pod gone, one driver left", func(ctx context.Context) error {
		l, err := suite.Kube.Kube.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/component=driver,app.kubernetes.io/instance=" + release})
		if err != nil {
			return err
		}
		if len(l.Items) != 1 || l.Items[0].Name != old.Name {
			return fmt.Errorf("%d driver pods", len(l.Items))
		}
		return nil
	})
	daemonSetReady(t, ctx)
}

// faultLoops is how often caseNodeFaults repeats its three faults.
const faultLoops = 10

// caseNodeFaults: ten times, during the churn: the driver SIGKILLed (and
// restarted by the kubelet), containerd restarted, the kubelet restarted.
// The kubelet restart also resets its crash-loop back-off, so the next
// SIGKILL's restart is immediate: the loop does not wait for back-offs.
func caseNodeFaults(t *testing.T, ctx context.Context) {
	l := startLifecycle(t, ctx, "13")
	var kills, containerd, kubelet time.Duration
	for i := 1; i <= faultLoops; i++ {
		start := time.Now()
		_, before, err := suite.DriverContainer(ctx, namespace, release)
		if err != nil {
			t.Fatal(err)
		}
		killed, err := env.KillDriver()
		if err != nil {
			t.Fatal(err)
		}
		poll(t, ctx, 2*time.Minute, "the driver restarted after SIGKILL "+strconv.Itoa(i), func(ctx context.Context) error {
			pod, cs, err := suite.DriverContainer(ctx, namespace, release)
			if err != nil {
				return err
			}
			if cs.RestartCount <= before.RestartCount || !cs.Ready || !kube.PodReady(pod) {
				return fmt.Errorf("driver container restarts %d (before %d), ready %v", cs.RestartCount, before.RestartCount, cs.Ready)
			}
			if pids := env.DriverProcesses(); len(pids) != 1 || pids[0] == killed {
				return fmt.Errorf("driver processes %v (killed %d)", pids, killed)
			}
			return nil
		})
		kills += time.Since(start)
		start = time.Now()
		if err := suite.Cluster.RestartContainerd(ctx); err != nil {
			t.Fatal(err)
		}
		containerd += time.Since(start)
		start = time.Now()
		if err := suite.Cluster.RestartKubelet(ctx); err != nil {
			t.Fatal(err)
		}
		kubelet += time.Since(start)
	}
	t.Logf("%d loops: driver SIGKILL to ready again %s on average, containerd restart %s, kubelet restart %s",
		faultLoops, (kills / faultLoops).Round(10*time.Millisecond), (containerd / faultLoops).Round(10*time.Millisecond), (kubelet / faultLoops).Round(10*time.Millisecond))
	daemonSetReady(t, ctx)
	faultEnd := time.Now()

	// The stacked-mount check catches a doubled mount on the real node.
	target := ""
	mounts, err := suite.CSIMounts()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range mounts {
		if m.PodUID == l.uids[l.pods[0]] {
			target = m.Mountpoint
		}
	}
	if target == "" {
		t.Fatalf("no CSI mount of %s", l.pods[0])
	}
	undo, err := env.StackMount(target)
	if err != nil {
		t.Fatal(err)
	}
	stacked, err := suite.CSIMounts()
	if err != nil {
		t.Fatal(err)
	}
	problems := env.CheckCSIMounts(stacked, wantMounts(t, ctx))
	if err := undo(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(problems, "\n"), l.uids[l.pods[0]]+" volume "+env.WorkloadVolume+": 2 mounts stacked") {
		t.Errorf("a mount stacked on %s is not reported: %q", target, problems)
	}

	l.finish(t, ctx, l.pods, faultEnd, true)
}

// caseReboot: the node is powered off (kubelet, containerd, every container
// killed, every mount below the kubelet's pods directory gone, as after a
// reboot), five workloads are deleted while it is off, and it is powered on:
// the other workloads come back with working volumes, the deleted ones
// terminate. Then the release is uninstalled.
func caseReboot(t *testing.T, ctx context.Context) {
	l := startLifecycle(t, ctx, "14")
	if err := suite.Cluster.PowerOff(ctx); err != nil {
		t.Fatal(err)
	}
	off := time.Now()
	if m, err := suite.CSIMounts(); err != nil || len(m) != 0 {
		t.Fatalf("CSI mounts after power-off: %v %v", m, err)
	}
	deleted, alive := l.pods[:5], l.pods[5:]
	for _, name := range deleted {
		if err := suite.Kube.Kube.CoreV1().Pods(workloads).Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := suite.Cluster.PowerOn(ctx); err != nil {
		t.Fatal(err)
	}
	on := time.Now()
	t.Logf("node off for %s (%d pods deleted meanwhile), kubelet Ready again", on.Sub(off).Round(100*time.Millisecond), len(deleted))
	// The condition keeps what is left, so a failure names the pods even
	// when the last look ran into the deadline.
	var left []string
	if err := wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		var now []string
		for _, name := range deleted {
			p, err := suite.Kube.Kube.CoreV1().Pods(workloads).Get(ctx, name, metav1.GetOptions{})
			switch {
			case apierrors.IsNotFound(err):
			case err != nil:
				return false, nil //nolint:nilerr // retried until the deadline
			default:
				now = append(now, fmt.Sprintf("%s (%s, deleted at %s)", name, p.Status.Phase, p.DeletionTimestamp))
			}
		}
		left = now
		return len(left) == 0, nil
	}); err != nil {
		t.Fatalf("pods deleted while the node was off did not terminate within 2m: %q", left)
	}
	t.Logf("the %d deleted pods terminated %s after power-on", len(deleted), time.Since(on).Round(100*time.Millisecond))
	if err := suite.WaitPings(ctx, workloads, alive, on, 2*time.Minute); err != nil {
		t.Fatal(err)
	}
	t.Logf("the %d other workloads reached the agent through their volumes %s after power-on", len(alive), time.Since(on).Round(100*time.Millisecond))
	for _, name := range alive {
		p, err := suite.Kube.Kube.CoreV1().Pods(workloads).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if p.Status.Phase != corev1.PodRunning {
			t.Errorf("%s is %s after the reboot", name, p.Status.Phase)
		}
	}
	l.finish(t, ctx, alive, on, false)
	uninstallAndWaitGone(t, ctx)
}
