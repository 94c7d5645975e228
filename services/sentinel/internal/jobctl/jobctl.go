// Package jobctl resumes and suspends the sentinel Job. The chart creates the
// Job suspended at install, so neither the hand-off nor the sentinel ever
// needs the right to create a Job or a pod: the hand-off resumes the one
// named Job (spec.suspend, a patch limited by resourceNames), and a sentinel
// that stands down suspends it again, so the next uninstall can resume it.
// A finished Job (timed out, or failed past its backoffLimit) cannot be
// resumed; RelaunchCommand is the one command an operator runs then.
package jobctl

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	typedbatchv1 "k8s.io/client-go/kubernetes/typed/batch/v1"
)

// LabelInstance is the release label the Job must carry.
const LabelInstance = "app.kubernetes.io/instance"

// Errors of Resume.
var (
	// ErrNoJob: the chart's suspended sentinel Job does not exist.
	ErrNoJob = errors.New("the sentinel Job does not exist")
	// ErrFinished: the Job has finished and cannot be resumed.
	ErrFinished = errors.New("the sentinel Job has finished")
	// ErrNotOurs: a Job of that name does not carry the release's label.
	ErrNotOurs = errors.New("the Job does not belong to the release")
)

// RelaunchCommand is the one command that starts removal again after the
// sentinel Job finished (timed out, or failed): it re-creates the Job from its
// own live copy (the chart sets the Job's selector itself, so the copy can be
// created again) and the new Job's pod picks up the recorded plan.
func RelaunchCommand(namespace, job string) string {
	return fmt.Sprintf("kubectl -n %s get job %s -o yaml | kubectl replace --force -f -", namespace, job)
}

// Finished reports whether job is Complete or Failed.
func Finished(job *batchv1.Job) (batchv1.JobConditionType, bool) {
	for _, c := range job.Status.Conditions {
		if (c.Type == batchv1.JobComplete || c.Type == batchv1.JobFailed) && c.Status == corev1.ConditionTrue {
			return c.Type, true
		}
	}
	return "", false
}

// Suspended reports whether spec.suspend is true.
func Suspended(job *batchv1.Job) bool { return job.Spec.Suspend != nil && *job.Spec.Suspend }

// Get reads the release's Job.
func Get(ctx context.Context, c typedbatchv1.BatchV1Interface, namespace, name, release string) (*batchv1.Job, error) {
	job, err := c.Jobs(namespace).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("%w: Job %s/%s (the chart creates it suspended at install)", ErrNoJob, namespace, name)
	}
	if err != nil {
		return nil, fmt.Errorf("failed to get Job %s/%s: %w", namespace, name, err)
	}
	if job.Labels[LabelInstance] != release {
		return nil, fmt.Errorf("%w: Job %s/%s has %s=%q, not %q", ErrNotOurs, namespace, name, LabelInstance, job.Labels[LabelInstance], release)
	}
	return job, nil
}

// SetSuspend patches spec.suspend of the Job with uid (a replaced Job is not
// touched: the patch carries the UID, which the API server refuses to change).
func SetSuspend(ctx context.Context, c typedbatchv1.BatchV1Interface, namespace, name string, uid types.UID, suspend bool) error {
	patch, err := json.Marshal(map[string]any{
		"metadata": map[string]any{"uid": uid},
		"spec":     map[string]any{"suspend": suspend},
	})
	if err != nil {
		return fmt.Errorf("failed to encode the suspend patch: %w", err)
	}
	if _, err := c.Jobs(namespace).Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		return fmt.Errorf("failed to set spec.suspend=%t on Job %s/%s: %w", suspend, namespace, name, err)
	}
	return nil
}

// Result says what Resume did.
type Result struct {
	UID types.UID
	// Resumed: this call resumed a suspended Job.
	Resumed bool
	// Restarted: a running Job was suspended and resumed (its pod replaced).
	Restarted bool
}

// Resume starts the release's sentinel Job: a suspended Job is resumed; a
// running one is left alone, unless restart is set (the plan was just
// replaced: the running pod works on the earlier one), in which case it is
// suspended until its pods are gone and resumed, so a new pod reads the new
// plan. A finished Job is ErrFinished, naming RelaunchCommand.
func Resume(ctx context.Context, c typedbatchv1.BatchV1Interface, namespace, name, release string, restart bool, poll time.Duration) (Result, error) {
	job, err := Get(ctx, c, namespace, name, release)
	if err != nil {
		return Result{}, err
	}
	res := Result{UID: job.UID}
	if cond, done := Finished(job); done {
		return res, fmt.Errorf("%w (%s): resume it with: %s", ErrFinished, cond, RelaunchCommand(namespace, name))
	}
	if !Suspended(job) && !restart {
		return res, nil
	}
	if !Suspended(job) {
		if err := SetSuspend(ctx, c, namespace, name, job.UID, true); err != nil {
			return res, err
		}
		err := wait.PollUntilContextCancel(ctx, poll, true, func(ctx context.Context) (bool, error) {
			j, err := c.Jobs(namespace).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return false, fmt.Errorf("failed to get Job %s/%s: %w", namespace, name, err)
			}
			return j.Status.Active == 0, nil
		})
		if err != nil {
			return res, fmt.Errorf("waiting for the pods of Job %s/%s to stop: %w", namespace, name, err)
		}
		res.Restarted = true
	}
	if err := SetSuspend(ctx, c, namespace, name, job.UID, false); err != nil {
		return res, err
	}
	res.Resumed = true
	return res, nil
}
