//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"

	"github.com/meshcsi/meshcsi/e2e/env"
	"github.com/meshcsi/meshcsi/e2e/helm"
	"github.com/meshcsi/meshcsi/e2e/images"
	"github.com/meshcsi/meshcsi/e2e/kube"
)

// caseHandoffFailure: a release whose sentinel image cannot be pulled on
// the real node. `helm uninstall` fails at the hand-off's deadline, before
// Helm deletes anything: the release's driver keeps serving (same pod,
// ready), the hand-off's pod is gone, and the pull failure is in the pod's
// Events. The documented recovery (docs/chart.md, "If the hand-off fails")
// then works: helm rollback --no-hooks (its pre-rollback hook would need the
// same unpullable image), helm upgrade to a pullable image (its pre-upgrade
// hook replaces the never-started sentinel Job, which now has the new pod). Then a hand-off that runs and fails (refused by the API
// server): helm prints its log, each pod's termination message holds the
// error; after a rollback the uninstall succeeds and the sentinel removes
// everything. A release of its own (name, namespace, driver name), so it
// does not touch the suite's.
func caseHandoffFailure(t *testing.T, ctx context.Context) {
	const (
		rel        = "handoff-fail"
		ns         = "meshcsi-handoff-fail"
		driverName = "csi.handoff-fail.meshcsi.io"
		deadline   = 30 * time.Second
	)
	k := suite.Kube.Kube
	values := suite.InstallValues(map[string]string{
		"driverName":                          driverName,
		"sentinel.image.tag":                  "not-pullable",
		"sentinel.image.pullPolicy":           "IfNotPresent",
		"sentinel.handoffDeadlineSeconds":     "30",
		"driver.readinessProbe.periodSeconds": "2",
	})
	args := append([]string{"install", rel, suite.ChartDir, "--namespace", ns, "--create-namespace", "--wait", "--timeout", "3m"}, helm.SetArgs(values)...)
	if _, err := suite.Helm.Run(ctx, args...); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Whatever happened: nothing of this release may stay behind for
		// the cases after it.
		c, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		_, _ = suite.Helm.Run(c, "uninstall", rel, "--namespace", ns, "--no-hooks", "--timeout", "60s")
		_ = k.CoreV1().Namespaces().Delete(c, ns, metav1.DeleteOptions{})
		_ = k.StorageV1().CSIDrivers().Delete(c, driverName, metav1.DeleteOptions{})
	})
	driverPod := func(ctx context.Context) (*corev1.Pod, error) { return suite.DriverPod(ctx, ns, rel) }
	// helm's --wait counts a DaemonSet of one node with maxUnavailable 1
	// ready before its pod is: wait for the pod itself.
	var before *corev1.Pod
	poll(t, ctx, 2*time.Minute, "the release's driver pod ready", func(ctx context.Context) error {
		p, err := driverPod(ctx)
		if err != nil {
			return err
		}
		if !kube.PodReady(p) {
			return fmt.Errorf("driver pod %s not ready", p.Name)
		}
		before = p
		return nil
	})

	start := time.Now()
	_, err := suite.Helm.Run(ctx, "uninstall", rel, "--namespace", ns, "--timeout", "90s")
	took := time.Since(start)
	if err == nil {
		t.Fatal("helm uninstall succeeded although the sentinel image cannot be pulled")
	}
	t.Logf("helm uninstall failed after %s, as a user sees it:\n%v", took.Round(100*time.Millisecond), err)
	if !strings.Contains(err.Error(), "job "+rel+"-handoff failed: DeadlineExceeded") {
		t.Errorf("helm's error does not name the hand-off Job and its deadline: %v", err)
	}
	if took < deadline || took > 90*time.Second {
		t.Errorf("helm uninstall returned after %s, want the Job's deadline (%s) to end it before helm's --timeout", took, deadline)
	}
	// The pull failure, as the user finds it (the pod is gone, its Events
	// stay).
	evs, err := k.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("involvedObject.kind", "Pod").String()})
	if err != nil {
		t.Fatal(err)
	}
	var pull []string
	for _, e := range evs.Items {
		if strings.HasPrefix(e.InvolvedObject.Name, rel+"-handoff-") && (e.Reason == "Failed" || e.Reason == "BackOff") {
			pull = append(pull, fmt.Sprintf("%s %s: %s", e.Reason, e.InvolvedObject.Name, e.Message))
		}
	}
	t.Logf("the hand-off pod's Events:\n%s", strings.Join(pull, "\n"))
	if !strings.Contains(strings.Join(pull, "\n"), "not-pullable") {
		t.Errorf("no Event names the image that could not be pulled: %v", pull)
	}
	pods, err := k.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "job-name=" + rel + "-handoff"})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pods.Items {
		if p.DeletionTimestamp == nil {
			t.Errorf("hand-off pod %s still there (phase %s): it could hand off after helm reported a failure", p.Name, p.Status.Phase)
		}
	}
	// Nothing removed: the same driver pod serves, the CSIDriver is there,
	// the sentinel Job is still suspended, no plan.
	after, err := driverPod(ctx)
	if err != nil || after.UID != before.UID || !kube.PodReady(after) {
		t.Errorf("the driver pod after the failed uninstall: %v (want %s, ready)", err, before.UID)
	}
	if _, err := k.StorageV1().CSIDrivers().Get(ctx, driverName, metav1.GetOptions{}); err != nil {
		t.Errorf("CSIDriver after the failed uninstall: %v", err)
	}
	sj, err := k.BatchV1().Jobs(ns).Get(ctx, rel+"-sentinel", metav1.GetOptions{})
	if err != nil || sj.Spec.Suspend == nil || !*sj.Spec.Suspend {
		t.Fatalf("the sentinel Job must still be suspended: %v", err)
	}
	if _, err := k.CoreV1().ConfigMaps(ns).Get(ctx, rel+"-sentinel-plan", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("a plan was recorded (get: %v)", err)
	}

	// The recovery of docs/chart.md: rollback without hooks (the
	// pre-rollback hook runs the same unpullable image; the rollback to the
	// same revision changes no pod), new image, uninstall.
	if _, err := suite.Helm.Run(ctx, "rollback", rel, "1", "--namespace", ns, "--no-hooks"); err != nil {
		t.Fatal(err)
	}
	// The install's values with a pullable sentinel image (the first way
	// docs/chart.md gives; --reuse-values works too, see e2e/chart
	// TestReuseValuesAfterRemovingASource).
	values["sentinel.image.tag"], values["sentinel.image.pullPolicy"] = env.ImageTag, "Never"
	values["sentinel.handoffDeadlineSeconds"] = "120"
	upgrade := append([]string{"upgrade", rel, suite.ChartDir, "--namespace", ns, "--wait", "--timeout", "3m"}, helm.SetArgs(values)...)
	if _, err := suite.Helm.Run(ctx, upgrade...); err != nil {
		t.Fatal(err)
	}
	// Its pre-upgrade hook replaced the never-started Job: Helm created it
	// again, suspended, with the pullable image.
	nj, err := k.BatchV1().Jobs(ns).Get(ctx, rel+"-sentinel", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if img := nj.Spec.Template.Spec.Containers[0].Image; nj.UID == sj.UID || img != images.Sentinel.Ref(env.ImageTag) || nj.Spec.Suspend == nil || !*nj.Spec.Suspend {
		t.Fatalf("sentinel Job after the upgrade: uid %s (was %s), image %s, suspend %v; want a new suspended Job with %s",
			nj.UID, sj.UID, img, nj.Spec.Suspend, images.Sentinel.Ref(env.ImageTag))
	}

	// A hand-off that runs and fails: its RoleBinding deleted behind
	// Helm's back, it is refused reading the install marker (a permanent
	// error: exit 1, three tries). Helm prints its log with the error
	// (helm.sh/hook-output-log-policy), and each pod's termination message
	// holds it (FallbackToLogsOnError).
	if err := k.RbacV1().RoleBindings(ns).Delete(ctx, rel+"-handoff", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	_, err = suite.Helm.Run(ctx, "uninstall", rel, "--namespace", ns, "--timeout", "180s")
	if err == nil {
		t.Fatal("helm uninstall succeeded although the hand-off may not read the install marker")
	}
	t.Logf("helm uninstall with a failing hand-off, as a user sees it:\n%v", err)
	if !strings.Contains(err.Error(), "job "+rel+"-handoff failed: BackoffLimitExceeded") || !strings.Contains(err.Error(), "forbidden") {
		t.Errorf("helm's output lacks the Job's failure or the hand-off's own error (its log): %v", err)
	}
	pods, err = k.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "job-name=" + rel + "-handoff"})
	if err != nil {
		t.Fatal(err)
	}
	var terminated int
	for _, p := range pods.Items {
		for _, cs := range p.Status.ContainerStatuses {
			if cs.State.Terminated != nil {
				terminated++
				if !strings.Contains(cs.State.Terminated.Message, "forbidden") {
					t.Errorf("pod %s: termination message %q lacks the hand-off's error", p.Name, cs.State.Terminated.Message)
				}
			}
		}
	}
	if terminated == 0 {
		t.Error("no terminated hand-off pod to read a termination message from")
	}
	// Nothing removed again; rollback restores the RoleBinding.
	if _, err := k.StorageV1().CSIDrivers().Get(ctx, driverName, metav1.GetOptions{}); err != nil {
		t.Errorf("CSIDriver after the second failed uninstall: %v", err)
	}
	if _, err := suite.Helm.Run(ctx, "rollback", rel, "3", "--namespace", ns); err != nil {
		t.Fatal(err)
	}
	if _, err := suite.Helm.Run(ctx, "uninstall", rel, "--namespace", ns, "--timeout", "180s"); err != nil {
		t.Fatalf("helm uninstall after the fix: %v", err)
	}
	// No pod uses this driver: the sentinel removes all of it.
	poll(t, ctx, 2*time.Minute, "the sentinel removed the release", func(ctx context.Context) error {
		_, err := k.StorageV1().CSIDrivers().Get(ctx, driverName, metav1.GetOptions{})
		if err := gone("CSIDriver "+driverName, err); err != nil {
			return err
		}
		_, err = k.AppsV1().DaemonSets(ns).Get(ctx, rel+"-driver", metav1.GetOptions{})
		if err := gone("the DaemonSet", err); err != nil {
			return err
		}
		_, err = k.BatchV1().Jobs(ns).Get(ctx, rel+"-sentinel", metav1.GetOptions{})
		return gone("the sentinel Job", err)
	})
	if p, err := k.CoreV1().Pods(ns).Get(ctx, before.Name, metav1.GetOptions{}); err == nil && p.UID == before.UID && p.DeletionTimestamp == nil {
		t.Errorf("driver pod %s still running after the removal", p.Name)
	}
}

// gone turns the error of a Get into nil when the object is gone.
func gone(what string, err error) error {
	switch {
	case apierrors.IsNotFound(err):
		return nil
	case err == nil:
		return fmt.Errorf("%s still exists", what)
	default:
		return fmt.Errorf("%s: %w", what, err)
	}
}
