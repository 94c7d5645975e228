package preupgrade_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/utils/ptr"

	"github.com/meshcsi/meshcsi/services/sentinel/internal/config"
	"github.com/meshcsi/meshcsi/services/sentinel/internal/jobctl"
	"github.com/meshcsi/meshcsi/services/sentinel/internal/preupgrade"
	"github.com/meshcsi/meshcsi/services/sentinel/internal/sentineltest"
)

var jobsGR = schema.GroupResource{Group: "batch", Resource: "jobs"}

func cfg() config.Config {
	c := sentineltest.Config()
	c.Command = config.CmdPrepareUpgrade
	return c
}

func deps(cs *fake.Clientset) preupgrade.Deps {
	return preupgrade.Deps{Batch: cs.BatchV1(), Logger: zap.NewNop(),
		ForbiddenBackoff: wait.Backoff{Duration: time.Millisecond, Factor: 1, Steps: 5}}
}

// chartJob is the sentinel Job as the chart creates it: suspended, never
// started (the Job controller only adds the Suspended condition).
func chartJob() *batchv1.Job {
	return &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Namespace: sentineltest.NS, Name: cfg().JobName, UID: "uid-job", ResourceVersion: "42",
			Labels: sentineltest.Labels("sentinel")},
		Spec: batchv1.JobSpec{Suspend: ptr.To(true)},
		Status: batchv1.JobStatus{Conditions: []batchv1.JobCondition{{
			Type: batchv1.JobSuspended, Status: corev1.ConditionTrue, Reason: "JobSuspended"}}},
	}
}

func deletes(cs *fake.Clientset) []k8stesting.DeleteActionImpl {
	var out []k8stesting.DeleteActionImpl
	for _, a := range cs.Actions() {
		if d, ok := a.(k8stesting.DeleteActionImpl); ok && a.GetResource().Resource == "jobs" {
			out = append(out, d)
		}
	}
	return out
}

func TestNoJobIsNothingToDo(t *testing.T) {
	cs := fake.NewClientset()
	res, err := preupgrade.Run(context.Background(), cfg(), deps(cs))
	if err != nil || res.Outcome != preupgrade.OutcomeAbsent {
		t.Fatalf("Run() = %+v, %v; want absent, no error", res, err)
	}
	if n := len(deletes(cs)); n != 0 {
		t.Fatalf("%d deletes, want none", n)
	}
}

func TestNeverStartedJobIsDeletedWithPreconditions(t *testing.T) {
	cs := fake.NewClientset(chartJob())
	res, err := preupgrade.Run(context.Background(), cfg(), deps(cs))
	if err != nil || res.Outcome != preupgrade.OutcomeDeleted || res.UID != "uid-job" {
		t.Fatalf("Run() = %+v, %v; want deleted uid-job", res, err)
	}
	d := deletes(cs)
	if len(d) != 1 {
		t.Fatalf("%d deletes, want 1", len(d))
	}
	o := d[0].DeleteOptions
	if o.Preconditions == nil || ptr.Deref(o.Preconditions.UID, "") != "uid-job" || ptr.Deref(o.Preconditions.ResourceVersion, "") != "42" {
		t.Errorf("delete preconditions %+v, want the checked UID and resourceVersion", o.Preconditions)
	}
	if ptr.Deref(o.PropagationPolicy, "") != metav1.DeletePropagationBackground {
		t.Errorf("delete propagation %v, want Background (the default orphans behind a finalizer)", o.PropagationPolicy)
	}
	if _, err := cs.BatchV1().Jobs(sentineltest.NS).Get(context.Background(), cfg().JobName, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("the Job is still there: %v", err)
	}
}

func TestStartedJobIsNeverDeleted(t *testing.T) {
	now := metav1.Now()
	for name, mutate := range map[string]func(*batchv1.Job){
		"resumed":         func(j *batchv1.Job) { j.Spec.Suspend = ptr.To(false) },
		"suspend unset":   func(j *batchv1.Job) { j.Spec.Suspend = nil },
		"start time":      func(j *batchv1.Job) { j.Status.StartTime = &now },
		"active pod":      func(j *batchv1.Job) { j.Status.Active = 1 },
		"ready pod":       func(j *batchv1.Job) { j.Status.Ready = ptr.To[int32](1) },
		"terminating pod": func(j *batchv1.Job) { j.Status.Terminating = ptr.To[int32](1) },
		"failed pod":      func(j *batchv1.Job) { j.Status.Failed = 1 },
		"succeeded pod":   func(j *batchv1.Job) { j.Status.Succeeded = 1 },
		"uncounted pod": func(j *batchv1.Job) {
			j.Status.UncountedTerminatedPods = &batchv1.UncountedTerminatedPods{Failed: []types.UID{"p"}}
		},
		"failed (timed out)": func(j *batchv1.Job) {
			j.Status.Conditions = append(j.Status.Conditions, cond(batchv1.JobFailed, "PodFailurePolicy"))
		},
		"complete": func(j *batchv1.Job) { j.Status.Conditions = append(j.Status.Conditions, cond(batchv1.JobComplete, "")) },
		"failure target": func(j *batchv1.Job) {
			j.Status.Conditions = append(j.Status.Conditions, cond(batchv1.JobFailureTarget, ""))
		},
	} {
		t.Run(name, func(t *testing.T) {
			j := chartJob()
			mutate(j)
			cs := fake.NewClientset(j)
			_, err := preupgrade.Run(context.Background(), cfg(), deps(cs))
			if !errors.Is(err, preupgrade.ErrStarted) || !errors.Is(err, preupgrade.ErrKept) {
				t.Fatalf("Run() = %v, want ErrStarted and ErrKept", err)
			}
			for _, want := range []string{"meshcsi-system/meshcsi-sentinel", "an uninstall is in progress or a sentinel ran", "kubectl -n meshcsi-system delete job meshcsi-sentinel"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error lacks %q: %v", want, err)
				}
			}
			if n := len(deletes(cs)); n != 0 {
				t.Fatalf("%d deletes of a started Job, want none", n)
			}
		})
	}
}

func cond(t batchv1.JobConditionType, reason string) batchv1.JobCondition {
	return batchv1.JobCondition{Type: t, Status: corev1.ConditionTrue, Reason: reason}
}

// Between the check and the delete a concurrent uninstall's hand-off
// resumes the Job: the API server refuses the delete on its preconditions,
// and nothing is deleted.
func TestPreconditionConflictDeletesNothing(t *testing.T) {
	cs := fake.NewClientset(chartJob())
	cs.PrependReactor("delete", "jobs", func(a k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewConflict(jobsGR, cfg().JobName,
			errors.New("Precondition failed: ResourceVersion in precondition: 42, ResourceVersion in object meta: 43"))
	})
	_, err := preupgrade.Run(context.Background(), cfg(), deps(cs))
	if !errors.Is(err, preupgrade.ErrChanged) || !errors.Is(err, preupgrade.ErrKept) || !strings.Contains(err.Error(), "not deleted") {
		t.Fatalf("Run() = %v, want ErrChanged saying it was not deleted", err)
	}
	if _, gerr := cs.BatchV1().Jobs(sentineltest.NS).Get(context.Background(), cfg().JobName, metav1.GetOptions{}); gerr != nil {
		t.Fatalf("the Job is gone after a precondition conflict: %v", gerr)
	}
}

// A Job of that name without the release's label is not the chart's.
func TestForeignJobIsKept(t *testing.T) {
	j := chartJob()
	j.Labels = map[string]string{jobctl.LabelInstance: "other"}
	cs := fake.NewClientset(j)
	_, err := preupgrade.Run(context.Background(), cfg(), deps(cs))
	if !errors.Is(err, jobctl.ErrNotOurs) || !errors.Is(err, preupgrade.ErrKept) {
		t.Fatalf("Run() = %v, want ErrNotOurs and ErrKept", err)
	}
	if n := len(deletes(cs)); n != 0 {
		t.Fatalf("%d deletes, want none", n)
	}
}

// Right after Helm created the hook's RBAC the API server may still refuse:
// a few Forbidden answers are retried, a lasting one ends the hook.
func TestForbiddenAtStartIsRetried(t *testing.T) {
	forbidden := func(n int) (*fake.Clientset, *int) {
		cs := fake.NewClientset(chartJob())
		calls := 0
		cs.PrependReactor("get", "jobs", func(a k8stesting.Action) (bool, runtime.Object, error) {
			calls++
			if calls <= n {
				return true, nil, apierrors.NewForbidden(jobsGR, cfg().JobName, errors.New("RBAC: not yet"))
			}
			return false, nil, nil
		})
		return cs, &calls
	}
	cs, _ := forbidden(3)
	if res, err := preupgrade.Run(context.Background(), cfg(), deps(cs)); err != nil || res.Outcome != preupgrade.OutcomeDeleted {
		t.Fatalf("after 3 Forbidden: Run() = %+v, %v; want deleted", res, err)
	}
	cs, calls := forbidden(1000)
	_, err := preupgrade.Run(context.Background(), cfg(), deps(cs))
	if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "still forbidden after 5 attempts") {
		t.Fatalf("lasting Forbidden: Run() = %v, want the Forbidden error after 5 attempts", err)
	}
	if *calls != 5 || len(deletes(cs)) != 0 {
		t.Fatalf("%d gets and %d deletes, want 5 and none", *calls, len(deletes(cs)))
	}
}

// A deleted Job that a finalizer still holds is waited for through a watch
// of its name, until its Deleted event.
func TestWaitsUntilTheJobIsGone(t *testing.T) {
	cs := fake.NewClientset(chartJob())
	held := chartJob()
	held.Finalizers = []string{"example.com/hold"}
	cs.PrependReactor("delete", "jobs", func(a k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, nil // accepted, but the finalizer keeps the object
	})
	fw := watch.NewFake()
	watched := make(chan k8stesting.WatchActionImpl, 1)
	cs.PrependWatchReactor("jobs", func(a k8stesting.Action) (bool, watch.Interface, error) {
		watched <- a.(k8stesting.WatchActionImpl)
		return true, fw, nil
	})
	done := make(chan error, 1)
	go func() {
		_, err := preupgrade.Run(context.Background(), cfg(), deps(cs))
		done <- err
	}()
	var w k8stesting.WatchActionImpl
	select {
	case w = <-watched:
	case err := <-done:
		t.Fatalf("Run() returned %v before watching the held Job", err)
	}
	if fs := w.WatchRestrictions.Fields.String(); fs != "metadata.name="+cfg().JobName {
		t.Errorf("watch field selector %q, want metadata.name=%s (the hook may watch only that name)", fs, cfg().JobName)
	}
	select {
	case err := <-done:
		t.Fatalf("Run() returned %v while the Job was still there", err)
	default:
	}
	fw.Delete(held)
	if err := <-done; err != nil {
		t.Fatalf("Run() = %v after the Deleted event", err)
	}
}
