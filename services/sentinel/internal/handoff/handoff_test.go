package handoff_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/meshcsi/meshcsi/services/sentinel/internal/config"
	"github.com/meshcsi/meshcsi/services/sentinel/internal/handoff"
	"github.com/meshcsi/meshcsi/services/sentinel/internal/jobctl"
	"github.com/meshcsi/meshcsi/services/sentinel/internal/plan"
	"github.com/meshcsi/meshcsi/services/sentinel/internal/sentineltest"
)

func cfg() config.Config {
	c := sentineltest.Config()
	c.Command = config.CmdHandoff
	c.Defaults()
	return c
}

func deps(c *sentineltest.Cluster) handoff.Deps {
	return handoff.Deps{Clients: c.Clients(), Clock: clocktesting.NewFakeClock(time.Unix(1700000000, 0)), Logger: zap.NewNop(),
		PollInterval: time.Millisecond}
}

func countVerb(c *sentineltest.Cluster, verb, resource string) int {
	n := 0
	for _, a := range c.Client.Actions() {
		if a.GetVerb() == verb && a.GetResource().Resource == resource {
			n++
		}
	}
	return n
}

// addJob adds the chart's sentinel Job (suspended or not, optionally finished).
func addJob(t *testing.T, c *sentineltest.Cluster, uid string, suspended bool, finished batchv1.JobConditionType) {
	t.Helper()
	job := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: sentineltest.NS, Name: cfg().JobName, UID: types.UID(uid), Labels: sentineltest.Labels("sentinel")},
		Spec: batchv1.JobSpec{Suspend: &suspended}}
	if finished != "" {
		job.Status.Conditions = []batchv1.JobCondition{{Type: finished, Status: corev1.ConditionTrue}}
	}
	if err := c.Client.Tracker().Add(job); err != nil {
		t.Fatal(err)
	}
}

// addGuard serves the chart's RemovalGuard kind (its CustomResourceDefinition
// exists); the parameter object itself is created by the hand-off.
func addGuard(t *testing.T, c *sentineltest.Cluster) {
	t.Helper()
	c.ServeGuardKind()
}

// guardSpec returns the parameter's spec, or nil if it does not exist.
func guardSpec(t *testing.T, c *sentineltest.Cluster) map[string]any {
	t.Helper()
	u, err := c.Dynamic.Resource(sentineltest.GuardGVR()).Namespace(sentineltest.NS).Get(context.Background(), cfg().RemovalGuard, metav1.GetOptions{})
	if err != nil {
		return nil
	}
	spec, _ := u.Object["spec"].(map[string]any)
	return spec
}

func job(t *testing.T, c *sentineltest.Cluster) *batchv1.Job {
	t.Helper()
	j, err := c.Client.BatchV1().Jobs(sentineltest.NS).Get(context.Background(), cfg().JobName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return j
}

func TestHandoffIsIdempotent(t *testing.T) {
	ctx := context.Background()
	c := sentineltest.New(t)
	c.AddRelease(t)
	addJob(t, c, "uid-job", true, "")
	addGuard(t, c)
	res, err := handoff.Run(ctx, cfg(), deps(c))
	if err != nil {
		t.Fatal(err)
	}
	if !res.PlanCreated || !res.GuardRaised || !res.JobResumed || res.JobUID != "uid-job" || res.Objects != 12 {
		t.Fatalf("first hand-off = %+v", res)
	}
	cm, err := c.Client.CoreV1().ConfigMaps(sentineltest.NS).Get(ctx, "meshcsi-sentinel-plan", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p, err := plan.FromConfigMap(cm)
	if err != nil || p.MarkerUID != "uid-marker-1" || len(p.Objects) != 12 {
		t.Fatalf("plan = %+v, %v", p, err)
	}
	if j := job(t, c); j.Spec.Suspend == nil || *j.Spec.Suspend {
		t.Fatalf("Job suspend = %v, want resumed", j.Spec.Suspend)
	}
	if g := guardSpec(t, c); g["removing"] != true || g["since"] != "2023-11-14T22:13:20Z" {
		t.Fatalf("guard = %v", g)
	}
	// A restarted hook, even after new objects appeared, changes nothing.
	k, _ := plan.KindByName("ServiceAccount")
	c.Add(t, k, sentineltest.NS, "late", "uid-late", sentineltest.Labels("driver"), nil)
	res, err = handoff.Run(ctx, cfg(), deps(c))
	if err != nil {
		t.Fatal(err)
	}
	if res.PlanCreated || res.JobResumed || res.JobRestarted || countVerb(c, "create", "configmaps") != 1 {
		t.Fatalf("second hand-off = %+v; configmap creates %d", res, countVerb(c, "create", "configmaps"))
	}
	cm2, _ := c.Client.CoreV1().ConfigMaps(sentineltest.NS).Get(ctx, "meshcsi-sentinel-plan", metav1.GetOptions{})
	if cm2.Data[plan.DataKey] != cm.Data[plan.DataKey] {
		t.Fatal("the plan was rewritten")
	}
	// Never a Job or a pod created, never a Job deleted.
	for _, verb := range []string{"create", "delete"} {
		if n := countVerb(c, verb, "jobs") + countVerb(c, verb, "pods"); n != 0 {
			t.Fatalf("%d %s of jobs/pods", n, verb)
		}
	}
}

func TestHandoffReplacesStalePlan(t *testing.T) {
	ctx := context.Background()
	c := sentineltest.New(t)
	c.AddRelease(t)
	addJob(t, c, "uid-job", true, "")
	addGuard(t, c)
	// A plan left by an earlier install (marker uid-marker-0).
	stale := &plan.Plan{Release: sentineltest.Release, Namespace: sentineltest.NS, DriverName: sentineltest.Driver, PartOf: "meshcsi", MarkerUID: "uid-marker-0"}
	c.AddPlan(t, stale, "uid-stale-plan")
	res, err := handoff.Run(ctx, cfg(), deps(c))
	if err != nil {
		t.Fatal(err)
	}
	if !res.PlanCreated || !res.PlanReplaced || !res.JobResumed || res.PlanUID == "uid-stale-plan" {
		t.Fatalf("hand-off = %+v", res)
	}
	cm, _ := c.Client.CoreV1().ConfigMaps(sentineltest.NS).Get(ctx, "meshcsi-sentinel-plan", metav1.GetOptions{})
	p, _ := plan.FromConfigMap(cm)
	if p.MarkerUID != "uid-marker-1" {
		t.Fatalf("plan marker = %q, want the current install's", p.MarkerUID)
	}
}

func TestHandoffKeepsRunningJob(t *testing.T) {
	c := sentineltest.New(t)
	c.AddRelease(t)
	addJob(t, c, "uid-running", false, "")
	addGuard(t, c)
	res, err := handoff.Run(context.Background(), cfg(), deps(c))
	if err != nil {
		t.Fatal(err)
	}
	if res.JobResumed || res.JobRestarted || res.JobUID != "uid-running" || countVerb(c, "patch", "jobs") != 0 {
		t.Fatalf("hand-off = %+v, job patches %d", res, countVerb(c, "patch", "jobs"))
	}
}

// A sentinel still running on an earlier install's plan (it missed the
// re-install) would stand down and leave this removal undone: its pod is
// replaced by suspending and resuming the Job (never by creating one).
func TestHandoffRestartsRunningJobOfStalePlan(t *testing.T) {
	c := sentineltest.New(t)
	c.AddRelease(t)
	addGuard(t, c)
	stale := &plan.Plan{Release: sentineltest.Release, Namespace: sentineltest.NS, DriverName: sentineltest.Driver, PartOf: "meshcsi", MarkerUID: "uid-marker-0"}
	c.AddPlan(t, stale, "uid-stale-plan")
	addJob(t, c, "uid-running", false, "")
	res, err := handoff.Run(context.Background(), cfg(), deps(c))
	if err != nil {
		t.Fatal(err)
	}
	if !res.PlanReplaced || !res.JobRestarted || !res.JobResumed || res.JobUID != "uid-running" {
		t.Fatalf("hand-off = %+v; want the running Job restarted on the new plan", res)
	}
	if n := countVerb(c, "patch", "jobs"); n != 2 || countVerb(c, "create", "jobs") != 0 {
		t.Fatalf("job patches %d (want suspend + resume), creates %d", n, countVerb(c, "create", "jobs"))
	}
	if j := job(t, c); j.Spec.Suspend == nil || *j.Spec.Suspend {
		t.Fatal("the Job was left suspended")
	}
}

// A finished Job cannot be resumed: the hand-off fails (so does `helm
// uninstall`), naming the one command that starts removal again.
func TestHandoffFinishedJobNamesRelaunch(t *testing.T) {
	for _, cond := range []batchv1.JobConditionType{batchv1.JobFailed, batchv1.JobComplete} {
		t.Run(string(cond), func(t *testing.T) {
			c := sentineltest.New(t)
			c.AddRelease(t)
			addGuard(t, c)
			addJob(t, c, "uid-old", false, cond)
			_, err := handoff.Run(context.Background(), cfg(), deps(c))
			want := "kubectl -n meshcsi-system get job meshcsi-sentinel -o yaml | kubectl replace --force -f -"
			if !errors.Is(err, jobctl.ErrFinished) || !strings.Contains(err.Error(), want) {
				t.Fatalf("Run() = %v, want ErrFinished naming %q", err, want)
			}
		})
	}
}

func TestHandoffWithoutJobOrGuard(t *testing.T) {
	c := sentineltest.New(t)
	c.AddRelease(t)
	// No guard: a warning, not a failure. No Job: a failure, never a create.
	_, err := handoff.Run(context.Background(), cfg(), deps(c))
	if !errors.Is(err, jobctl.ErrNoJob) {
		t.Fatalf("Run() = %v, want ErrNoJob", err)
	}
	if countVerb(c, "create", "jobs") != 0 {
		t.Fatal("the hand-off created a Job")
	}
	addJob(t, c, "uid-job", true, "")
	res, err := handoff.Run(context.Background(), cfg(), deps(c))
	if err != nil || res.GuardRaised || !res.JobResumed {
		t.Fatalf("Run() = %+v, %v", res, err)
	}
}

// No sentinel Job (an upgrade's pre-upgrade hook deleted the never-run Job
// and the upgrade failed before Helm created it again): the hand-off fails
// before it changes anything, so `helm uninstall` stops with the driver
// serving, no plan recorded and the removal guard down, and its error says
// how to get the Job back.
func TestHandoffWithoutJobChangesNothing(t *testing.T) {
	c := sentineltest.New(t)
	c.AddRelease(t)
	addGuard(t, c)
	_, err := handoff.Run(context.Background(), cfg(), deps(c))
	if !errors.Is(err, jobctl.ErrNoJob) {
		t.Fatalf("Run() = %v, want ErrNoJob", err)
	}
	for _, want := range []string{"meshcsi-system/meshcsi-sentinel", "helm rollback", "nothing was changed"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	if n := countVerb(c, "create", "configmaps"); n != 0 {
		t.Errorf("a plan was recorded (%d creates) although the hand-off cannot resume a sentinel", n)
	}
	if spec := guardSpec(t, c); spec != nil {
		t.Errorf("the removal guard was raised (%v) although no sentinel will remove the driver", spec)
	}
}

// A re-install's hook created the parameter with removing: false: the
// hand-off sets it.
func TestHandoffRaisesRenderedGuard(t *testing.T) {
	ctx := context.Background()
	c := sentineltest.New(t)
	c.AddRelease(t)
	addJob(t, c, "uid-job", true, "")
	addGuard(t, c)
	rendered := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": sentineltest.GuardGVR().GroupVersion().String(), "kind": "RemovalGuard",
		"metadata": map[string]any{"name": cfg().RemovalGuard, "namespace": sentineltest.NS,
			"annotations": map[string]any{"meta.helm.sh/release-name": sentineltest.Release, "meta.helm.sh/release-namespace": sentineltest.NS}},
		"spec": map[string]any{"removing": false},
	}}
	if _, err := c.Dynamic.Resource(sentineltest.GuardGVR()).Namespace(sentineltest.NS).Create(ctx, rendered, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	res, err := handoff.Run(ctx, cfg(), deps(c))
	if err != nil || !res.GuardRaised {
		t.Fatalf("Run() = %+v, %v", res, err)
	}
	if g := guardSpec(t, c); g["removing"] != true {
		t.Fatalf("guard = %v, want removing: true", g)
	}
}

// Created by the hand-off with the release's labels, and no Helm ownership:
// a re-install's pre-install hook deletes it and creates the chart's.
func TestHandoffCreatesGuardWithReleaseLabels(t *testing.T) {
	ctx := context.Background()
	c := sentineltest.New(t)
	c.AddRelease(t)
	addJob(t, c, "uid-job", true, "")
	addGuard(t, c)
	if _, err := handoff.Run(ctx, cfg(), deps(c)); err != nil {
		t.Fatal(err)
	}
	u, err := c.Dynamic.Resource(sentineltest.GuardGVR()).Namespace(sentineltest.NS).Get(ctx, cfg().RemovalGuard, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	l := u.GetLabels()
	if l[plan.LabelInstance] != sentineltest.Release || l[plan.LabelComponent] != "guard" || l[plan.LabelDriverName] != sentineltest.Driver ||
		l["app.kubernetes.io/managed-by"] == "Helm" || len(u.GetAnnotations()) != 0 {
		t.Fatalf("guard metadata: labels %v, annotations %v", l, u.GetAnnotations())
	}
}
