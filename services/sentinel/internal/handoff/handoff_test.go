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
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/meshcsi/meshcsi/services/sentinel/internal/config"
	"github.com/meshcsi/meshcsi/services/sentinel/internal/fixture"
	"github.com/meshcsi/meshcsi/services/sentinel/internal/handoff"
	"github.com/meshcsi/meshcsi/services/sentinel/internal/plan"
)

const template = `apiVersion: batch/v1
kind: Job
metadata:
  name: meshcsi-sentinel
  namespace: meshcsi-system
  labels:
    app.kubernetes.io/instance: meshcsi
  annotations:
    helm.sh/hook: pre-delete
    keep.example.com/note: stays
spec:
  backoffLimit: 6
  template:
    spec:
      restartPolicy: Never
      containers:
        - name: sentinel
          image: meshcsi/sentinel:test
          args: [run]
`

func cfg() config.Config {
	c := fixture.Config()
	c.Command = config.CmdHandoff
	c.JobTemplate = "/etc/meshcsi/sentinel-job.yaml"
	return c
}

func deps(c *fixture.Cluster, tmpl string) handoff.Deps {
	return handoff.Deps{Client: c.Client, Meta: c.MetaClient(), Clock: clocktesting.NewFakeClock(time.Unix(1700000000, 0)), Logger: zap.NewNop(),
		ReadFile: func(string) ([]byte, error) { return []byte(tmpl), nil }, PollInterval: time.Millisecond}
}

func countCreates(c *fixture.Cluster, resource string) int {
	n := 0
	for _, a := range c.Client.Actions() {
		if a.GetVerb() == "create" && a.GetResource().Resource == resource {
			n++
		}
	}
	return n
}

func TestHandoffIsIdempotent(t *testing.T) {
	ctx := context.Background()
	c := fixture.New(t)
	c.AddRelease(t)
	res, err := handoff.Run(ctx, cfg(), deps(c, template))
	if err != nil {
		t.Fatal(err)
	}
	if !res.PlanCreated || !res.JobCreated || res.Objects != 12 {
		t.Fatalf("first hand-off = %+v", res)
	}
	cm, err := c.Client.CoreV1().ConfigMaps(fixture.NS).Get(ctx, "meshcsi-sentinel-plan", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p, err := plan.FromConfigMap(cm)
	if err != nil || p.MarkerUID != "uid-marker-1" || len(p.Objects) != 12 {
		t.Fatalf("plan = %+v, %v", p, err)
	}
	job, err := c.Client.BatchV1().Jobs(fixture.NS).Get(ctx, "meshcsi-sentinel", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, hook := job.Annotations["helm.sh/hook"]; hook || job.Annotations["keep.example.com/note"] != "stays" {
		t.Fatalf("Job annotations = %v: Helm hook annotations must go, others stay", job.Annotations)
	}
	if job.Labels[plan.LabelComponent] != plan.ComponentSelf || job.Labels[plan.LabelDriverName] != fixture.Driver {
		t.Fatalf("Job labels = %v", job.Labels)
	}
	// A restarted hook, even after new objects appeared, changes nothing.
	k, _ := plan.KindByName("ServiceAccount")
	c.Add(t, k, fixture.NS, "late", "uid-late", fixture.Labels("driver"), nil)
	res, err = handoff.Run(ctx, cfg(), deps(c, template))
	if err != nil {
		t.Fatal(err)
	}
	if res.PlanCreated || res.JobCreated || countCreates(c, "configmaps") != 1 || countCreates(c, "jobs") != 1 {
		t.Fatalf("second hand-off = %+v; creates cm=%d job=%d", res, countCreates(c, "configmaps"), countCreates(c, "jobs"))
	}
	cm2, _ := c.Client.CoreV1().ConfigMaps(fixture.NS).Get(ctx, "meshcsi-sentinel-plan", metav1.GetOptions{})
	if cm2.Data[plan.DataKey] != cm.Data[plan.DataKey] {
		t.Fatal("the plan was rewritten")
	}
}

func TestHandoffReplacesStalePlanAndFinishedJob(t *testing.T) {
	ctx := context.Background()
	c := fixture.New(t)
	c.AddRelease(t)
	// A plan and a failed Job left by an earlier install (marker uid-marker-0).
	stale := &plan.Plan{Release: fixture.Release, Namespace: fixture.NS, DriverName: fixture.Driver, PartOf: "meshcsi", MarkerUID: "uid-marker-0"}
	c.AddPlan(t, stale, "uid-stale-plan")
	old := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: fixture.NS, Name: "meshcsi-sentinel", UID: "uid-old-job"},
		Status: batchv1.JobStatus{Conditions: []batchv1.JobCondition{{Type: batchv1.JobFailed, Status: corev1.ConditionTrue}}}}
	if err := c.Client.Tracker().Add(old); err != nil {
		t.Fatal(err)
	}
	res, err := handoff.Run(ctx, cfg(), deps(c, template))
	if err != nil {
		t.Fatal(err)
	}
	if !res.PlanCreated || !res.JobCreated || res.PlanUID == "uid-stale-plan" {
		t.Fatalf("hand-off = %+v", res)
	}
	cm, _ := c.Client.CoreV1().ConfigMaps(fixture.NS).Get(ctx, "meshcsi-sentinel-plan", metav1.GetOptions{})
	p, _ := plan.FromConfigMap(cm)
	if p.MarkerUID != "uid-marker-1" {
		t.Fatalf("plan marker = %q, want the current install's", p.MarkerUID)
	}
	job, _ := c.Client.BatchV1().Jobs(fixture.NS).Get(ctx, "meshcsi-sentinel", metav1.GetOptions{})
	if len(job.Status.Conditions) != 0 {
		t.Fatal("the finished Job was not replaced")
	}
}

func TestHandoffKeepsRunningJob(t *testing.T) {
	c := fixture.New(t)
	c.AddRelease(t)
	c.AddJob(t, "uid-running")
	res, err := handoff.Run(context.Background(), cfg(), deps(c, template))
	if err != nil {
		t.Fatal(err)
	}
	if res.JobCreated || res.JobUID != "uid-running" {
		t.Fatalf("hand-off = %+v", res)
	}
}

func TestHandoffRejectsBadTemplate(t *testing.T) {
	tests := []struct{ name, tmpl, want string }{
		{"not yaml", "{{", "--job-template"},
		{"not a job", "apiVersion: v1\nkind: Pod\nmetadata: {name: x}\n", "want a Job"},
		{"other name", strings.Replace(template, "name: meshcsi-sentinel", "name: other", 1), "--job-name"},
		{"unknown field", template + "bogus: 1\n", "--job-template"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := fixture.New(t)
			_, err := handoff.Run(context.Background(), cfg(), deps(c, tt.tmpl))
			if !errors.Is(err, config.ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Run() = %v, want ErrInvalid naming %s", err, tt.want)
			}
			if len(c.Client.Actions()) != 0 {
				t.Fatalf("touched the cluster with a bad template: %v", c.Client.Actions())
			}
		})
	}
}

// A sentinel still running on an earlier install's plan (it missed the
// re-install) would stand down and leave this removal undone: replace it.
func TestHandoffReplacesRunningJobOfStalePlan(t *testing.T) {
	c := fixture.New(t)
	c.AddRelease(t)
	stale := &plan.Plan{Release: fixture.Release, Namespace: fixture.NS, DriverName: fixture.Driver, PartOf: "meshcsi", MarkerUID: "uid-marker-0"}
	c.AddPlan(t, stale, "uid-stale-plan")
	c.AddJob(t, "uid-running")
	res, err := handoff.Run(context.Background(), cfg(), deps(c, template))
	if err != nil {
		t.Fatal(err)
	}
	if !res.PlanReplaced || !res.JobCreated || res.JobUID == "uid-running" {
		t.Fatalf("hand-off = %+v; want the stale plan and its running Job replaced", res)
	}
	job, err := c.Client.BatchV1().Jobs(fixture.NS).Get(context.Background(), "meshcsi-sentinel", metav1.GetOptions{})
	if err != nil || job.UID == "uid-running" {
		t.Fatalf("Job = %v, %v; want a new one", job, err)
	}
}
