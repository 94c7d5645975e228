// Package handoff is what `helm uninstall` runs in its pre-delete hook: it
// records the plan (every object of the release with its UID, and the
// install marker's UID) in the plan ConfigMap, raises the removal guard (new
// pods that use the driver are refused from now on) and resumes the sentinel
// Job the chart created suspended at install. It never creates a Job or a
// pod. Run twice, it changes nothing: an existing plan of the same install is
// kept, never rewritten, and a running sentinel Job is left alone.
package handoff

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/utils/clock"

	"github.com/meshcsi/meshcsi/services/sentinel/internal/config"
	"github.com/meshcsi/meshcsi/services/sentinel/internal/guard"
	"github.com/meshcsi/meshcsi/services/sentinel/internal/jobctl"
	"github.com/meshcsi/meshcsi/services/sentinel/internal/kube"
	"github.com/meshcsi/meshcsi/services/sentinel/internal/plan"
)

// Deps is what a hand-off touches.
type Deps struct {
	// Clients reach the API server; required.
	Clients kube.Clients
	Clock   clock.Clock
	Logger  *zap.Logger
	// PollInterval paces the wait for a restarted Job's pods to stop; 0
	// means 500ms.
	PollInterval time.Duration
}

// Result says what the hand-off did.
type Result struct {
	PlanCreated bool
	// PlanReplaced: a stale plan (of an earlier install) was replaced.
	PlanReplaced bool
	PlanUID      string
	// GuardRaised: the removal guard's parameter now says removing: true.
	GuardRaised bool
	// JobResumed: the suspended sentinel Job was resumed; JobRestarted: a
	// running one (on a replaced plan) was suspended and resumed.
	JobResumed   bool
	JobRestarted bool
	JobUID       string
	Objects      int
}

// Run performs the hand-off.
func Run(ctx context.Context, cfg config.Config, d Deps) (Result, error) {
	var res Result
	if err := cfg.Validate(); err != nil {
		return res, err
	}
	if err := d.Clients.Validate(); err != nil || d.Clock == nil || d.Logger == nil {
		return res, errors.New("handoff: client, metadata client, clock and logger are required")
	}
	if d.PollInterval == 0 {
		d.PollInterval = 500 * time.Millisecond
	}
	// Every step is idempotent, so a transient API error (an API server
	// restart, 429, 5xx) repeats the step.
	//
	// First the Job: without it no sentinel would remove the release, so
	// the hand-off fails before it records a plan or raises the guard, and
	// `helm uninstall` stops with nothing changed.
	err := kube.Retry(ctx, d.Logger, "read the sentinel Job", func(ctx context.Context) error {
		_, err := jobctl.Get(ctx, d.Clients.Batch, cfg.Namespace, cfg.JobName, cfg.Release)
		return err
	})
	if errors.Is(err, jobctl.ErrNoJob) {
		return res, fmt.Errorf("%w; an upgrade or rollback whose pre-upgrade hook deleted the never-run Job did not finish "+
			"(Helm creates it anew): run `helm rollback %s -n %s` or the upgrade again, which creates it, then uninstall; "+
			"nothing was changed", err, cfg.Release, cfg.Namespace)
	}
	if err != nil {
		return res, err
	}
	var markerUID string
	err = kube.Retry(ctx, d.Logger, "read the install marker", func(ctx context.Context) (err error) {
		markerUID, err = readMarkerUID(ctx, d.Clients.Core, cfg)
		return err
	})
	if err != nil {
		return res, err
	}
	if err := kube.Retry(ctx, d.Logger, "record the plan", func(ctx context.Context) error {
		return ensurePlan(ctx, cfg, d, markerUID, &res)
	}); err != nil {
		return res, err
	}
	// The guard before the Job: the sentinel starts with new pods refused.
	target := guard.Target{Group: cfg.RemovalGuardGroup, Namespace: cfg.Namespace, Name: cfg.RemovalGuard,
		Labels: map[string]string{
			"app.kubernetes.io/name": cfg.PartOf, plan.LabelInstance: cfg.Release, plan.LabelPartOf: cfg.PartOf,
			"app.kubernetes.io/managed-by": "meshcsi-sentinel", plan.LabelComponent: "guard", plan.LabelDriverName: cfg.DriverName,
		}}
	err = kube.Retry(ctx, d.Logger, "raise the removal guard", func(ctx context.Context) error {
		return guard.Raise(ctx, d.Clients.Dynamic, target, d.Clock.Now())
	})
	switch {
	case errors.Is(err, guard.ErrNoParameter):
		d.Logger.Warn("the removal guard is missing, so new pods that use the driver are not refused while it is removed; install the chart's sentinel-removal-guard.yaml", zap.Error(err))
	case err != nil:
		return res, err
	default:
		res.GuardRaised = true
	}
	var jr jobctl.Result
	err = kube.Retry(ctx, d.Logger, "resume the sentinel Job", func(ctx context.Context) (err error) {
		jr, err = jobctl.Resume(ctx, d.Clients.Batch, cfg.Namespace, cfg.JobName, cfg.Release, res.PlanReplaced, d.PollInterval)
		return err
	})
	if err != nil {
		return res, err
	}
	res.JobUID, res.JobResumed, res.JobRestarted = string(jr.UID), jr.Resumed, jr.Restarted
	d.Logger.Info("handed off to the sentinel", zap.String("plan", cfg.PlanConfigMap), zap.Bool("plan_created", res.PlanCreated),
		zap.Int("objects", res.Objects), zap.Bool("guard_raised", res.GuardRaised), zap.String("job", cfg.JobName),
		zap.Bool("job_resumed", res.JobResumed), zap.Bool("job_restarted", res.JobRestarted), zap.String("marker_uid", markerUID))
	return res, nil
}

func readMarkerUID(ctx context.Context, c typedcorev1.CoreV1Interface, cfg config.Config) (string, error) {
	cm, err := c.ConfigMaps(cfg.Namespace).Get(ctx, cfg.InstallMarker, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("failed to get install marker %s/%s: %w", cfg.Namespace, cfg.InstallMarker, err)
	}
	return string(cm.UID), nil
}

// ensurePlan keeps a plan of the same install and replaces a stale one (a
// plan recorded for an earlier install: the marker exists with another UID).
func ensurePlan(ctx context.Context, cfg config.Config, d Deps, marker string, res *Result) error {
	cms := d.Clients.Core.ConfigMaps(cfg.Namespace)
	existing, err := cms.Get(ctx, cfg.PlanConfigMap, metav1.GetOptions{})
	switch {
	case err == nil:
		p, perr := plan.FromConfigMap(existing)
		if perr == nil && (marker == "" || p.MarkerUID == marker) {
			d.Logger.Info("keeping the existing plan", zap.String("plan", cfg.PlanConfigMap), zap.String("uid", string(existing.UID)))
			res.PlanUID, res.Objects = string(existing.UID), len(p.Objects)
			return nil
		}
		d.Logger.Info("replacing a stale plan from an earlier install", zap.String("plan", cfg.PlanConfigMap), zap.Error(perr))
		uid := existing.UID
		if err := cms.Delete(ctx, existing.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}}); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("failed to delete stale plan %s/%s: %w", cfg.Namespace, cfg.PlanConfigMap, err)
		}
		res.PlanReplaced = true
	case apierrors.IsNotFound(err):
	default:
		return fmt.Errorf("failed to get plan ConfigMap %s/%s: %w", cfg.Namespace, cfg.PlanConfigMap, err)
	}
	rel := plan.Release{Name: cfg.Release, Namespace: cfg.Namespace, DriverName: cfg.DriverName, PartOf: cfg.PartOf}
	p, err := plan.Discover(ctx, d.Clients.Meta, d.Clients.Discovery, rel, marker, d.Clock.Now())
	if err != nil {
		return err
	}
	kept := p.Objects[:0]
	for _, o := range p.Objects {
		// The plan ConfigMap and the Job are handled by name, not recorded.
		if o.Kind == "ConfigMap" && o.Namespace == cfg.Namespace && o.Name == cfg.PlanConfigMap {
			continue
		}
		kept = append(kept, o)
	}
	p.Objects = kept
	cm, err := p.ToConfigMap(cfg.PlanConfigMap)
	if err != nil {
		return err
	}
	created, err := cms.Create(ctx, cm, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		// Another hand-off won the race; its plan stands.
		got, gerr := cms.Get(ctx, cfg.PlanConfigMap, metav1.GetOptions{})
		if gerr != nil {
			return fmt.Errorf("failed to get plan ConfigMap %s/%s: %w", cfg.Namespace, cfg.PlanConfigMap, gerr)
		}
		res.PlanUID, res.Objects = string(got.UID), len(p.Objects)
		return nil
	}
	if err != nil {
		return fmt.Errorf("failed to create plan ConfigMap %s/%s: %w", cfg.Namespace, cfg.PlanConfigMap, err)
	}
	res.PlanCreated, res.PlanUID, res.Objects = true, string(created.UID), len(p.Objects)
	for _, o := range p.Objects {
		d.Logger.Info("recorded", zap.String("kind", o.Kind), zap.String("namespace", o.Namespace), zap.String("name", o.Name), zap.String("uid", o.UID))
	}
	return nil
}
