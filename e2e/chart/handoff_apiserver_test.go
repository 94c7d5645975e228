//go:build chart

package chart

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/meshcsi/meshcsi/libs/kubeharness"
)

// TestHandoffFailureLeavesEverything runs `helm uninstall` against a real
// API server whose hand-off pod can never run: the control plane has a Job
// controller but no scheduler or node, so the pod stays Pending, which is
// what Helm and the Job controller see when the sentinel image cannot be
// pulled (ErrImagePull/ImagePullBackOff also leave the pod Pending). It
// shows what the user gets and that the failure is safe:
//   - Kubernetes fails the hook Job at its deadline (DeadlineExceeded),
//     before helm's --timeout, and helm uninstall fails naming the Job;
//   - nothing of the release was deleted (same UIDs), the removal guard is
//     down (a pod using the driver is still admitted), no plan was
//     recorded, the sentinel Job is still suspended, and the hand-off's pod
//     is gone, so it can never hand off after helm reported a failure;
//   - the failed Job is kept and says what to do;
//   - `helm rollback` brings the release back to deployed (to change the
//     sentinel image, say), and the next uninstall replaces the failed Job.
func TestHandoffFailureLeavesEverything(t *testing.T) {
	c, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	const workloadNS = "team-a"
	_, kc, hk := helmCluster(t, c, kubeharness.Options{Mode: kubeharness.ControlPlane, ControllerManager: true}, workloadNS)
	const deadline = 30 * time.Second
	out, err := hk.Run(c, "install", release, chartDir(t), "--namespace", namespace,
		"--set", "sentinel.handoffDeadlineSeconds=30")
	if err != nil {
		t.Fatal(err)
	}
	if want := "helm uninstall " + release + " -n " + namespace + " --timeout 90s"; !strings.Contains(out, want) {
		t.Errorf("NOTES lack %q:\n%s", want, out)
	}
	k := kc.Kube

	// What must survive a failed hand-off, by UID.
	before := map[string]types.UID{}
	record := func(what string, get func() (metav1.Object, error)) {
		o, err := get()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		before[what] = o.GetUID()
	}
	objects := map[string]func() (metav1.Object, error){
		"DaemonSet": func() (metav1.Object, error) {
			return k.AppsV1().DaemonSets(namespace).Get(c, release+"-driver", metav1.GetOptions{})
		},
		"CSIDriver": func() (metav1.Object, error) {
			return k.StorageV1().CSIDrivers().Get(c, "csi.meshcsi.io", metav1.GetOptions{})
		},
		"sentinel Job": func() (metav1.Object, error) {
			return k.BatchV1().Jobs(namespace).Get(c, release+"-sentinel", metav1.GetOptions{})
		},
		"install marker": func() (metav1.Object, error) {
			return k.CoreV1().ConfigMaps(namespace).Get(c, release+"-install", metav1.GetOptions{})
		},
		"pod admission policy": func() (metav1.Object, error) {
			return k.AdmissionregistrationV1().ValidatingAdmissionPolicies().Get(c, release+"-pod-volumes", metav1.GetOptions{})
		},
		"driver ServiceAccount": func() (metav1.Object, error) {
			return k.CoreV1().ServiceAccounts(namespace).Get(c, release+"-driver", metav1.GetOptions{})
		},
	}
	for what, get := range objects {
		record(what, get)
	}

	start := time.Now()
	out, err = hk.Run(c, "uninstall", release, "--namespace", namespace, "--timeout", "90s")
	took := time.Since(start)
	if err == nil {
		t.Fatalf("helm uninstall succeeded although the hand-off could not run:\n%s", out)
	}
	t.Logf("helm uninstall failed after %s, as a user sees it:\n%v", took.Round(100*time.Millisecond), err)
	// Helm 3.20 prints only "Error: 1 error occurred: * job <name> failed:
	// <reason>" (no hook name), so NOTES, the Job and the docs quote that.
	for _, want := range []string{"job " + release + "-handoff failed: DeadlineExceeded"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("helm's error lacks %q: %v", want, err)
		}
	}
	if took < deadline || took > 90*time.Second {
		t.Errorf("helm uninstall returned after %s: want the Job's deadline (%s) to end it, before helm's --timeout (90s)", took, deadline)
	}

	// The failed hook Job is kept, failed by its deadline, and says what to do.
	job, err := k.BatchV1().Jobs(namespace).Get(c, release+"-handoff", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the failed hand-off Job must be kept for kubectl describe: %v", err)
	}
	if !jobFailed(job, "DeadlineExceeded") {
		t.Errorf("hand-off Job conditions %+v, want Failed/DeadlineExceeded", job.Status.Conditions)
	}
	msg := job.Annotations["meshcsi.io/if-failed"]
	for _, want := range []string{"before deleting anything", "--timeout 90s"} {
		if !strings.Contains(msg, want) {
			t.Errorf("the failed Job's meshcsi.io/if-failed lacks %q: %s", want, msg)
		}
	}
	t.Logf("kubectl describe job %s-handoff shows: meshcsi.io/if-failed: %s", release, msg)
	// Its pod is gone: nothing can hand off after helm reported the failure.
	sel := metav1.ListOptions{LabelSelector: "job-name=" + release + "-handoff"}
	if err := wait.PollUntilContextTimeout(c, 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		pods, err := k.CoreV1().Pods(namespace).List(ctx, sel)
		return err == nil && len(pods.Items) == 0, err
	}); err != nil {
		t.Errorf("the failed hand-off's pod is still there: %v", err)
	}

	// Nothing was removed, nothing was handed off.
	for what, get := range objects {
		o, err := get()
		switch {
		case err != nil:
			t.Errorf("%s after the failed uninstall: %v", what, err)
		case o.GetUID() != before[what]:
			t.Errorf("%s was replaced (UID %s, was %s)", what, o.GetUID(), before[what])
		}
	}
	sj, err := k.BatchV1().Jobs(namespace).Get(c, release+"-sentinel", metav1.GetOptions{})
	if err != nil || sj.Spec.Suspend == nil || !*sj.Spec.Suspend {
		t.Errorf("the sentinel Job must still be suspended: %v", err)
	}
	if _, err := k.CoreV1().ConfigMaps(namespace).Get(c, release+"-sentinel-plan", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("a plan was recorded (get: %v)", err)
	}
	// A workload using the driver is still admitted: the removal guard is
	// down (asked of the API server, whatever the guard's objects are).
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: workloadNS},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{Name: "app", Image: "example/app:1.0"}},
			Volumes: []corev1.Volume{{Name: "agent", VolumeSource: corev1.VolumeSource{CSI: &corev1.CSIVolumeSource{
				Driver: "csi.meshcsi.io", ReadOnly: ptrTo(true), VolumeAttributes: map[string]string{"source": "spire-agent"},
			}}}},
		},
	}
	if _, err := k.CoreV1().Pods(workloadNS).Create(c, pod, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}); err != nil {
		t.Errorf("a pod using the driver is refused after the failed uninstall: %v", err)
	}
	if st := releaseStatus(t, c, hk.Run); st != "uninstalling" {
		t.Errorf("release status %q, want uninstalling", st)
	}

	// helm rollback makes the release deployed again (helm upgrade refuses a
	// release in "uninstalling"), with the same objects. --no-hooks: the
	// pre-rollback and pre-upgrade hook Job cannot run here (no scheduler;
	// TestUpgradeChangingSentinelPod runs its command), and the sentinel's
	// pod does not change, so its Job stays.
	if _, err := hk.Run(c, "upgrade", release, chartDir(t), "--namespace", namespace, "--reuse-values"); err == nil {
		t.Error("helm upgrade accepted a release in status uninstalling: docs/chart.md says it refuses, update it")
	} else {
		t.Logf("helm upgrade of a release in status uninstalling: %v", err)
	}
	if _, err := hk.Run(c, "rollback", release, "1", "--namespace", namespace, "--no-hooks"); err != nil {
		t.Fatal(err)
	}
	if st := releaseStatus(t, c, hk.Run); st != "deployed" {
		t.Errorf("after helm rollback: release status %q, want deployed", st)
	}
	if _, err := hk.Run(c, "upgrade", release, chartDir(t), "--namespace", namespace, "--reuse-values", "--no-hooks",
		"--set", "sentinel.handoffDeadlineSeconds=45"); err != nil {
		t.Errorf("helm upgrade after the rollback: %v", err)
	}
	for what, get := range objects {
		if o, err := get(); err != nil || o.GetUID() != before[what] {
			t.Errorf("%s after rollback and upgrade: %v (UID changed: %v)", what, err, err == nil && o.GetUID() != before[what])
		}
	}
}

func jobFailed(j *batchv1.Job, reason string) bool {
	for _, c := range j.Status.Conditions {
		if c.Type == batchv1.JobFailed && c.Status == corev1.ConditionTrue && c.Reason == reason {
			return true
		}
	}
	return false
}

// releaseStatus is `helm status`'s info.status of the release.
func releaseStatus(t *testing.T, c context.Context, run func(context.Context, ...string) (string, error)) string {
	t.Helper()
	out, err := run(c, "status", release, "--namespace", namespace, "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		Info struct {
			Status string `json:"status"`
		} `json:"info"`
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("helm status: %v\n%s", err, out)
	}
	return st.Info.Status
}
