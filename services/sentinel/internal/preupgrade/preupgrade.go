// Package preupgrade is what `helm upgrade` and `helm rollback` run in the
// chart's pre-upgrade and pre-rollback hook. The chart creates the sentinel
// Job suspended at install, and Kubernetes never changes a Job's pod
// template, so an upgrade that changes the sentinel's pod (every new chart
// version does: its image tag) would fail on the Job with "field is
// immutable". Helm creates a release object that no longer exists, so this
// hook deletes the Job first, but only while that is safe: the Job is
// suspended and no sentinel has ever run in it. A Job that has started (an
// uninstall is in progress, or a sentinel ran) is never deleted: the hook
// fails, and Helm stops the upgrade before it changes anything. The delete
// carries the UID and resourceVersion that were checked, so a Job resumed
// in between (a concurrent uninstall's hand-off) is not deleted either.
//
// The hook may get and delete that one Job by name, and watch it through a
// metadata.name field selector; it never creates a Job or a pod.
package preupgrade

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.uber.org/zap"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"
	typedbatchv1 "k8s.io/client-go/kubernetes/typed/batch/v1"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"

	"github.com/meshcsi/meshcsi/services/sentinel/internal/config"
	"github.com/meshcsi/meshcsi/services/sentinel/internal/jobctl"
	"github.com/meshcsi/meshcsi/services/sentinel/internal/kube"
)

// Errors of Run. Each one that keeps the Job also matches ErrKept.
var (
	// ErrKept: the Job was not deleted, so the upgrade must not go on
	// (Helm would fail on it, possibly after changing other objects).
	ErrKept = errors.New("the sentinel Job was kept")
	// ErrStarted: a sentinel runs, or ran, in the Job.
	ErrStarted = errors.New("the sentinel Job has started")
	// ErrChanged: the Job changed between the check and the delete (the
	// delete's preconditions failed), e.g. a concurrent uninstall's
	// hand-off resumed it.
	ErrChanged = errors.New("the sentinel Job changed while it was checked")
)

// DefaultForbiddenBackoff paces the retries of a Forbidden answer right
// after start (about 30 s in all): Helm creates the hook's Role and
// RoleBinding just before its Job, and the API server's authorizer may not
// have them in its cache yet when the first request arrives.
var DefaultForbiddenBackoff = wait.Backoff{Duration: 250 * time.Millisecond, Factor: 2, Jitter: 0.1, Steps: 10, Cap: 5 * time.Second}

// Deps is what the hook touches.
type Deps struct {
	// Batch reaches the sentinel Job; required.
	Batch  typedbatchv1.BatchV1Interface
	Logger *zap.Logger
	// ForbiddenBackoff paces the retries of Forbidden on the first read;
	// the zero value means DefaultForbiddenBackoff.
	ForbiddenBackoff wait.Backoff
}

// Outcome says what Run did.
type Outcome string

// Outcomes of Run.
const (
	// OutcomeAbsent: there was no sentinel Job; Helm creates it.
	OutcomeAbsent Outcome = "absent"
	// OutcomeDeleted: the suspended, never-started Job was deleted and is
	// gone; Helm creates it anew from the new chart.
	OutcomeDeleted Outcome = "deleted"
)

// Result says what Run did, and to which Job.
type Result struct {
	Outcome Outcome
	// UID of the Job that was deleted.
	UID string
}

// Run deletes the release's sentinel Job if it is suspended and has never
// started, and waits until it is gone. No Job: nothing to do. A Job that
// has started, belongs to no release of this name, or changed while it was
// checked is kept, and the error (matching ErrKept) says why and what to do.
func Run(ctx context.Context, cfg config.Config, d Deps) (Result, error) {
	if err := cfg.Validate(); err != nil {
		return Result{}, err
	}
	if d.Batch == nil || d.Logger == nil {
		return Result{}, errors.New("preupgrade: batch client and logger are required")
	}
	if d.ForbiddenBackoff.Steps == 0 {
		d.ForbiddenBackoff = DefaultForbiddenBackoff
	}
	log := d.Logger.With(zap.String("job", cfg.Namespace+"/"+cfg.JobName))
	job, err := get(ctx, cfg, d, log)
	switch {
	case errors.Is(err, jobctl.ErrNoJob):
		log.Info("no sentinel Job: nothing to do, Helm creates it")
		return Result{Outcome: OutcomeAbsent}, nil
	case errors.Is(err, jobctl.ErrNotOurs):
		return Result{}, fmt.Errorf("%w: %w; delete or rename it, then run the upgrade again", ErrKept, err)
	case err != nil:
		return Result{}, err
	}
	if why := started(job); why != "" {
		return Result{}, fmt.Errorf("%w: %w: Job %s/%s %s, so an uninstall is in progress or a sentinel ran in it; "+
			"it is kept and the upgrade stops before changing anything. If an uninstall is in progress, let the sentinel finish "+
			"(kubectl -n %s logs job/%s); if none is (the sentinel finished or stood down), delete the Job "+
			"(kubectl -n %s delete job %s) and run the upgrade again",
			ErrKept, ErrStarted, cfg.Namespace, cfg.JobName, why, cfg.Namespace, cfg.JobName, cfg.Namespace, cfg.JobName)
	}
	uid, rv := job.UID, job.ResourceVersion
	bg := metav1.DeletePropagationBackground
	opts := metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid, ResourceVersion: &rv}, PropagationPolicy: &bg}
	err = kube.Retry(ctx, log, "delete Job "+cfg.Namespace+"/"+cfg.JobName, func(ctx context.Context) error {
		return d.Batch.Jobs(cfg.Namespace).Delete(ctx, cfg.JobName, opts)
	})
	switch {
	case apierrors.IsConflict(err):
		return Result{}, fmt.Errorf("%w: %w: Job %s/%s (uid %s, resourceVersion %s) changed between the check and the delete, "+
			"so it was not deleted (a concurrent `helm uninstall` may have resumed it); the upgrade stops before changing anything: %w",
			ErrKept, ErrChanged, cfg.Namespace, cfg.JobName, uid, rv, err)
	case apierrors.IsNotFound(err):
		// Deleted meanwhile (a retried delete whose first try went through,
		// or by someone else): gone either way.
	case err != nil:
		return Result{}, fmt.Errorf("failed to delete Job %s/%s: %w", cfg.Namespace, cfg.JobName, err)
	}
	log.Info("deleted the suspended, never-started sentinel Job; waiting until it is gone", zap.String("uid", string(uid)))
	if err := waitGone(ctx, cfg, d, log, job); err != nil {
		return Result{}, err
	}
	log.Info("the sentinel Job is gone; Helm creates it anew from the new chart", zap.String("uid", string(uid)))
	return Result{Outcome: OutcomeDeleted, UID: string(uid)}, nil
}

// get reads the Job, retrying transient errors, and Forbidden for a short
// while (see DefaultForbiddenBackoff).
func get(ctx context.Context, cfg config.Config, d Deps, log *zap.Logger) (*batchv1.Job, error) {
	var job *batchv1.Job
	var last error
	attempt := 0
	err := wait.ExponentialBackoffWithContext(ctx, d.ForbiddenBackoff, func(ctx context.Context) (bool, error) {
		attempt++
		last = kube.Retry(ctx, log, "get Job "+cfg.Namespace+"/"+cfg.JobName, func(ctx context.Context) (err error) {
			job, err = jobctl.Get(ctx, d.Batch, cfg.Namespace, cfg.JobName, cfg.Release)
			return err
		})
		if apierrors.IsForbidden(last) {
			log.Info("forbidden; the hook's RBAC may not have reached the API server's cache yet, retrying",
				zap.Int("attempt", attempt), zap.Error(last))
			return false, nil
		}
		return true, last
	})
	if wait.Interrupted(err) && last != nil {
		return nil, fmt.Errorf("still forbidden after %d attempts: %w", attempt, last)
	}
	return job, err
}

// started says why the Job may have run a sentinel pod, or "" if it is
// suspended and none has ever run: no pod active, ready, terminating,
// succeeded or failed, no start time, no condition but Suspended.
func started(job *batchv1.Job) string {
	st := job.Status
	var why []string
	if !jobctl.Suspended(job) {
		why = append(why, "is not suspended")
	}
	if st.StartTime != nil {
		why = append(why, "has started (status.startTime "+st.StartTime.UTC().Format(time.RFC3339)+")")
	}
	count := func(n int32, what string) {
		if n > 0 {
			why = append(why, fmt.Sprintf("has %d %s pod(s)", n, what))
		}
	}
	count(st.Active, "active")
	count(ptrValue(st.Ready), "ready")
	count(ptrValue(st.Terminating), "terminating")
	count(st.Succeeded, "succeeded")
	count(st.Failed, "failed")
	if u := st.UncountedTerminatedPods; u != nil && len(u.Succeeded)+len(u.Failed) > 0 {
		why = append(why, "has terminated pods not yet counted")
	}
	for _, c := range st.Conditions {
		if c.Type == batchv1.JobSuspended || c.Status != corev1.ConditionTrue {
			continue
		}
		why = append(why, fmt.Sprintf("has condition %s (%s)", c.Type, c.Reason))
	}
	return strings.Join(why, ", ")
}

func ptrValue(p *int32) int32 {
	if p == nil {
		return 0
	}
	return *p
}

// waitGone returns once the deleted Job (by UID) no longer exists: a GET,
// then a watch of that one name from the GET's resourceVersion until its
// Deleted event. Background propagation removes the Job at once unless
// another finalizer holds it.
func waitGone(ctx context.Context, cfg config.Config, d Deps, log *zap.Logger, deleted *batchv1.Job) error {
	jobs := d.Batch.Jobs(cfg.Namespace)
	var cur *batchv1.Job
	err := kube.Retry(ctx, log, "get Job "+cfg.Namespace+"/"+cfg.JobName, func(ctx context.Context) (err error) {
		cur, err = jobs.Get(ctx, cfg.JobName, metav1.GetOptions{})
		return err
	})
	if apierrors.IsNotFound(err) || (err == nil && cur.UID != deleted.UID) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("failed to get Job %s/%s after deleting it: %w", cfg.Namespace, cfg.JobName, err)
	}
	log.Info("the deleted Job is still there (finalizers); watching until it goes", zap.Strings("finalizers", cur.Finalizers))
	byName := fields.OneTermEqualSelector("metadata.name", cfg.JobName).String()
	lw := &cache.ListWatch{WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
		o.FieldSelector = byName
		return jobs.Watch(ctx, o)
	}}
	_, err = watchtools.Until(ctx, cur.ResourceVersion, lw, func(ev watch.Event) (bool, error) {
		switch ev.Type {
		case watch.Deleted:
			return true, nil
		case watch.Added, watch.Modified:
			j, ok := ev.Object.(*batchv1.Job)
			return ok && j.UID != deleted.UID, nil
		}
		return false, nil
	})
	if err != nil {
		return fmt.Errorf("waiting for the deleted Job %s/%s to go: %w", cfg.Namespace, cfg.JobName, err)
	}
	return nil
}
