//go:build integration

package test

import (
	"context"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
)

// TestIntegrationPrepareUpgrade runs `meshcsi-sentinel prepare-upgrade` (the
// chart's pre-upgrade and pre-rollback hook) as its own ServiceAccount under
// the Role of docs/sentinel.md, against a real API server whose Job
// controller manages the sentinel Job:
//   - started before its RBAC exists (Helm creates the hook's Role just
//     before its Job), it retries the Forbidden and goes on once it exists;
//   - the suspended, never-started Job is deleted and gone when it exits 0;
//   - without a Job it has nothing to do (exit 0), and the hand-off then
//     fails (exit 1) naming the recovery, with no plan recorded;
//   - a resumed Job (a sentinel started: the Job controller set its start
//     time and created a pod) is kept: exit 5, the message names the Job.
func TestIntegrationPrepareUpgrade(t *testing.T) {
	ctx := context.Background()
	r := install(t, "upgr", "csi.upgr.meshcsi.io")
	jobs := admin.BatchV1().Jobs(r.ns)
	jobName := r.name + "-sentinel"
	// The Job controller has seen the suspended Job (the state the hook
	// finds after an install).
	suspendedCondition(t, r)

	p := start(t, r, "prepare-upgrade")
	p.waitOutput(t, "forbidden; the hook's RBAC may not have reached", 30*time.Second)
	applyUpgradeRBAC(t, r)
	if code := p.wait(t, time.Minute); code != 0 {
		t.Fatalf("prepare-upgrade exit %d, want 0:\n%s", code, p.output())
	}
	if !strings.Contains(p.output(), "the sentinel Job is gone; Helm creates it anew") {
		t.Errorf("prepare-upgrade did not say the Job is gone:\n%s", p.output())
	}
	if _, err := jobs.Get(ctx, jobName, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("the never-started sentinel Job is still there after prepare-upgrade: %v", err)
	}

	// No Job: nothing to do. An uninstall now (an upgrade that failed after
	// the hook) is refused before anything changes.
	p = start(t, r, "prepare-upgrade")
	if code := p.wait(t, time.Minute); code != 0 || !strings.Contains(p.output(), "nothing to do") {
		t.Fatalf("prepare-upgrade without a Job: exit %d, want 0 and nothing to do:\n%s", code, p.output())
	}
	p = start(t, r, "handoff")
	if code := p.wait(t, 30*time.Second); code != 1 || !strings.Contains(p.output(), "helm rollback") {
		t.Fatalf("handoff without the sentinel Job: exit %d, want 1 naming helm rollback:\n%s", code, p.output())
	}
	if _, err := admin.CoreV1().ConfigMaps(r.ns).Get(ctx, r.name+"-sentinel-plan", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the hand-off recorded a plan although it cannot start a sentinel: %v", err)
	}

	// Helm creates the Job again; then a sentinel starts in it.
	job := createSentinelJob(t, r)
	suspendedCondition(t, r)
	if _, err := jobs.Patch(ctx, jobName, types.MergePatchType, []byte(`{"spec":{"suspend":false}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		j, err := jobs.Get(ctx, jobName, metav1.GetOptions{})
		return err == nil && j.Status.StartTime != nil && j.Status.Active > 0, err
	}); err != nil {
		t.Fatalf("the Job controller did not start the resumed Job: %v", err)
	}
	p = start(t, r, "prepare-upgrade")
	code := p.wait(t, time.Minute)
	if code != 5 {
		t.Fatalf("prepare-upgrade with a started Job: exit %d, want 5:\n%s", code, p.output())
	}
	for _, want := range []string{r.ns + "/" + jobName, "an uninstall is in progress or a sentinel ran", "the upgrade stops before changing anything"} {
		if !strings.Contains(p.output(), want) {
			t.Errorf("prepare-upgrade's output lacks %q:\n%s", want, p.output())
		}
	}
	got, err := jobs.Get(ctx, jobName, metav1.GetOptions{})
	if err != nil || got.UID != job.UID || got.DeletionTimestamp != nil {
		t.Fatalf("the started sentinel Job was touched: %v", err)
	}
}

// suspendedCondition waits until the Job controller has marked the sentinel
// Job suspended.
func suspendedCondition(t *testing.T, r *release) {
	t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		j, err := admin.BatchV1().Jobs(r.ns).Get(ctx, r.name+"-sentinel", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		for _, c := range j.Status.Conditions {
			if c.Type == batchv1.JobSuspended && c.Status == corev1.ConditionTrue {
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		t.Fatalf("the Job controller did not mark the sentinel Job suspended: %v", err)
	}
}
