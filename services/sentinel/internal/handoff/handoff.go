// Package handoff is what `helm uninstall` runs in its pre-delete hook: it
// records the plan (every object of the release with its UID, and the
// install marker's UID) in the plan ConfigMap and creates the sentinel Job
// from the template the chart mounts. Run twice, it changes nothing: an
// existing plan of the same install is kept, never rewritten, and a running
// sentinel Job is left alone.
package handoff

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"go.uber.org/zap"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/utils/clock"
	"sigs.k8s.io/yaml"

	"github.com/meshcsi/meshcsi/services/sentinel/internal/config"
	"github.com/meshcsi/meshcsi/services/sentinel/internal/plan"
)

// Deps is what a hand-off touches.
type Deps struct {
	Client kubernetes.Interface
	Meta   metadata.Interface
	Clock  clock.Clock
	Logger *zap.Logger
	// ReadFile reads the Job template; nil means os.ReadFile.
	ReadFile func(string) ([]byte, error)
	// PollInterval paces the wait for a finished Job's deletion; 0 means 500ms.
	PollInterval time.Duration
}

// Result says what the hand-off did.
type Result struct {
	PlanCreated bool
	// PlanReplaced: a stale plan (of an earlier install) was replaced.
	PlanReplaced bool
	PlanUID      string
	JobCreated   bool
	JobUID       string
	Objects      int
}

// Run performs the hand-off.
func Run(ctx context.Context, cfg config.Config, d Deps) (Result, error) {
	var res Result
	if err := cfg.Validate(); err != nil {
		return res, err
	}
	if d.Client == nil || d.Meta == nil || d.Clock == nil || d.Logger == nil {
		return res, errors.New("handoff: client, metadata client, clock and logger are required")
	}
	if d.ReadFile == nil {
		d.ReadFile = os.ReadFile
	}
	if d.PollInterval == 0 {
		d.PollInterval = 500 * time.Millisecond
	}
	job, err := loadTemplate(cfg, d.ReadFile)
	if err != nil {
		return res, err
	}
	markerUID, err := markerUID(ctx, d.Client, cfg)
	if err != nil {
		return res, err
	}
	if err := ensurePlan(ctx, cfg, d, markerUID, &res); err != nil {
		return res, err
	}
	if err := ensureJob(ctx, cfg, d, job, &res); err != nil {
		return res, err
	}
	d.Logger.Info("handed off to the sentinel", zap.String("plan", cfg.PlanConfigMap), zap.Bool("plan_created", res.PlanCreated),
		zap.Int("objects", res.Objects), zap.String("job", cfg.JobName), zap.Bool("job_created", res.JobCreated),
		zap.String("marker_uid", markerUID))
	return res, nil
}

func markerUID(ctx context.Context, c kubernetes.Interface, cfg config.Config) (string, error) {
	cm, err := c.CoreV1().ConfigMaps(cfg.Namespace).Get(ctx, cfg.InstallMarker, metav1.GetOptions{})
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
	cms := d.Client.CoreV1().ConfigMaps(cfg.Namespace)
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
	p, err := plan.Discover(ctx, d.Meta, d.Client.Discovery(), rel, marker, d.Clock.Now())
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

// loadTemplate reads the Job manifest and makes it a plain object of the release.
func loadTemplate(cfg config.Config, read func(string) ([]byte, error)) (*batchv1.Job, error) {
	raw, err := read(cfg.JobTemplate)
	if err != nil {
		return nil, fmt.Errorf("%w: --job-template %s: %w", config.ErrInvalid, cfg.JobTemplate, err)
	}
	var job batchv1.Job
	if err := yaml.UnmarshalStrict(raw, &job); err != nil {
		return nil, fmt.Errorf("%w: --job-template %s: %w", config.ErrInvalid, cfg.JobTemplate, err)
	}
	if job.Kind != "" && job.Kind != "Job" {
		return nil, fmt.Errorf("%w: --job-template %s holds a %s, want a Job", config.ErrInvalid, cfg.JobTemplate, job.Kind)
	}
	if job.Name == "" {
		job.Name = cfg.JobName
	}
	if job.Name != cfg.JobName {
		return nil, fmt.Errorf("%w: --job-template names Job %q but --job-name is %q", config.ErrInvalid, job.Name, cfg.JobName)
	}
	if job.Namespace != "" && job.Namespace != cfg.Namespace {
		return nil, fmt.Errorf("%w: --job-template namespace %q is not --namespace %q", config.ErrInvalid, job.Namespace, cfg.Namespace)
	}
	job.Namespace = cfg.Namespace
	job.ResourceVersion, job.UID, job.GenerateName = "", "", ""
	for k := range job.Annotations {
		if strings.HasPrefix(k, "helm.sh/") {
			delete(job.Annotations, k)
		}
	}
	if job.Labels == nil {
		job.Labels = map[string]string{}
	}
	for k, v := range map[string]string{
		plan.LabelInstance: cfg.Release, plan.LabelPartOf: cfg.PartOf, plan.LabelDriverName: cfg.DriverName, plan.LabelComponent: plan.ComponentSelf,
	} {
		job.Labels[k] = v
	}
	return &job, nil
}

func finished(job *batchv1.Job) bool {
	for _, c := range job.Status.Conditions {
		if (c.Type == batchv1.JobComplete || c.Type == batchv1.JobFailed) && c.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}

// ensureJob creates the sentinel Job unless one is running; a finished Job
// (a sentinel that stood down or timed out earlier) is replaced, and so is a
// running one when the plan was just replaced: that sentinel works on the
// stale plan of an earlier install and would only stand down (it checks the
// install marker before every delete), leaving this removal undone.
func ensureJob(ctx context.Context, cfg config.Config, d Deps, job *batchv1.Job, res *Result) error {
	jobs := d.Client.BatchV1().Jobs(cfg.Namespace)
	existing, err := jobs.Get(ctx, job.Name, metav1.GetOptions{})
	switch {
	case err == nil && !finished(existing) && res.PlanReplaced:
		d.Logger.Info("replacing a sentinel Job that works on a stale plan", zap.String("job", job.Name), zap.String("uid", string(existing.UID)))
		if err := deleteAndWait(ctx, d, jobs.Delete, jobs.Get, existing.Name, existing.UID); err != nil {
			return err
		}
	case err == nil && !finished(existing):
		d.Logger.Info("the sentinel Job is already running; leaving it", zap.String("job", job.Name), zap.String("uid", string(existing.UID)))
		res.JobUID = string(existing.UID)
		return nil
	case err == nil:
		d.Logger.Info("replacing a finished sentinel Job", zap.String("job", job.Name))
		if err := deleteAndWait(ctx, d, jobs.Delete, jobs.Get, existing.Name, existing.UID); err != nil {
			return err
		}
	case !apierrors.IsNotFound(err):
		return fmt.Errorf("failed to get Job %s/%s: %w", cfg.Namespace, job.Name, err)
	}
	created, err := jobs.Create(ctx, job, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		d.Logger.Info("the sentinel Job was created concurrently; leaving it", zap.String("job", job.Name))
		return nil
	}
	if err != nil {
		return fmt.Errorf("failed to create Job %s/%s: %w", cfg.Namespace, job.Name, err)
	}
	res.JobCreated, res.JobUID = true, string(created.UID)
	return nil
}

func deleteAndWait(ctx context.Context, d Deps,
	del func(context.Context, string, metav1.DeleteOptions) error,
	get func(context.Context, string, metav1.GetOptions) (*batchv1.Job, error),
	name string, uid types.UID) error {
	bg := metav1.DeletePropagationBackground
	if err := del(ctx, name, metav1.DeleteOptions{PropagationPolicy: &bg, Preconditions: &metav1.Preconditions{UID: &uid}}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("failed to delete Job %s: %w", name, err)
	}
	for {
		j, err := get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) || (err == nil && j.UID != uid) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("failed to get Job %s: %w", name, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("stopped while waiting for Job %s to go: %w", name, context.Cause(ctx))
		case <-d.Clock.After(d.PollInterval):
		}
	}
}
