// Package cleanup is the sentinel's `run`: it waits, driven by watch events,
// until no pod uses the driver, confirms that with a fresh paged read, and
// only then removes the release's recorded objects in an order that never
// leaves a pod with a volume and no driver: the CSIDriver first (no new pod
// can get a volume), a re-check, the DaemonSet and its pods, the rest of the
// release, and last its own Job, plan and RBAC. It stands down when the
// release is installed again and gives up, deleting nothing more, at its
// timeout.
package cleanup

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/tools/reference"
	"k8s.io/utils/clock"

	"github.com/meshcsi/meshcsi/services/sentinel/internal/config"
	"github.com/meshcsi/meshcsi/services/sentinel/internal/plan"
	"github.com/meshcsi/meshcsi/services/sentinel/internal/remove"
	"github.com/meshcsi/meshcsi/services/sentinel/internal/report"
	"github.com/meshcsi/meshcsi/services/sentinel/internal/watch"
)

// Results of a run, as the summary names them.
const (
	ResultDone      = "done"
	ResultStoodDown = "stood-down"
	ResultTimedOut  = "timed-out"
	// ResultFailed: an API or configuration error stopped the removal part
	// way; the summary says what was already deleted.
	ResultFailed = "failed"
)

// ErrTimeout is returned when --timeout passed while pods still blocked
// removal (exit code 2). Nothing more is deleted.
var ErrTimeout = errors.New("timed out waiting for pods that use the driver")

// ErrCSIDriverKept is returned when the CSIDriver could not be deleted (the
// RBAC does not allow it): nothing more is deleted, since pods could still
// get volumes of a driver that is about to go.
var ErrCSIDriverKept = errors.New("not permitted to delete the CSIDriver; nothing more was deleted")

// errStandDown is the internal signal that the release was installed again.
var errStandDown = errors.New("the release was installed again")

// Deps is what a run touches in the world; main wires the real ones.
type Deps struct {
	// Client reads pods, the plan, the marker, the Job; required.
	Client kubernetes.Interface
	// Meta lists, patches and deletes the release's objects; required.
	Meta metadata.Interface
	// Clock drives reports, timeouts and waits; required.
	Clock clock.WithTicker
	// Logger is required.
	Logger *zap.Logger
	// Recorder emits Events on the Job; nil means log only.
	Recorder record.EventRecorder
	// PageSize is the page size of the fresh read; 0 means 500.
	PageSize int64
	// EventFlush is how long to let the last Event reach the API server
	// before the final delete; 0 means none.
	EventFlush time.Duration
}

// Sentinel runs one cleanup.
type Sentinel struct {
	cfg      config.Config
	d        Deps
	tracker  *watch.Tracker
	marker   *watch.Marker
	nodes    *watch.Nodes
	remover  *remove.Remover
	reporter *report.Reporter
	plan     *plan.Plan
	planObj  plan.Object
	start    time.Time
	deadline time.Time
	summary  report.Summary
}

// New validates cfg and d.
func New(cfg config.Config, d Deps) (*Sentinel, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if d.Client == nil || d.Meta == nil || d.Clock == nil || d.Logger == nil {
		return nil, errors.New("cleanup: client, metadata client, clock and logger are required")
	}
	if d.PageSize == 0 {
		d.PageSize = 500
	}
	rm, err := remove.New(d.Meta)
	if err != nil {
		return nil, err
	}
	tr, err := watch.NewTracker(d.Client, cfg.DriverName)
	if err != nil {
		return nil, err
	}
	mk, err := watch.NewMarker(d.Client, cfg.Namespace, cfg.InstallMarker)
	if err != nil {
		return nil, err
	}
	nodes, err := watch.NewNodes(d.Meta)
	if err != nil {
		return nil, err
	}
	return &Sentinel{cfg: cfg, d: d, tracker: tr, marker: mk, nodes: nodes, remover: rm}, nil
}

// LoadPlan reads the plan ConfigMap and checks it belongs to this release.
func LoadPlan(ctx context.Context, client kubernetes.Interface, cfg config.Config) (*plan.Plan, *corev1.ConfigMap, error) {
	cm, err := client.CoreV1().ConfigMaps(cfg.Namespace).Get(ctx, cfg.PlanConfigMap, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil, fmt.Errorf("%w (looked for ConfigMap %s/%s)", plan.ErrNoPlan, cfg.Namespace, cfg.PlanConfigMap)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("failed to get plan ConfigMap %s/%s: %w", cfg.Namespace, cfg.PlanConfigMap, err)
	}
	p, err := plan.FromConfigMap(cm)
	if err != nil {
		return nil, nil, err
	}
	if p.Release != cfg.Release || p.Namespace != cfg.Namespace || p.DriverName != cfg.DriverName {
		return nil, nil, fmt.Errorf("%w: plan %s/%s is for release %s/%s driver %s, not --release %s --namespace %s --driver-name %s",
			config.ErrInvalid, cm.Namespace, cm.Name, p.Namespace, p.Release, p.DriverName, cfg.Release, cfg.Namespace, cfg.DriverName)
	}
	return p, cm, nil
}

// Run waits and removes. It returns the summary it logged and nil (done or
// stood down), ErrTimeout, or an error (configuration or API).
func (s *Sentinel) Run(ctx context.Context) (report.Summary, error) {
	log := s.d.Logger
	s.start = s.d.Clock.Now()
	if s.cfg.Timeout > 0 {
		s.deadline = s.start.Add(s.cfg.Timeout)
	}
	s.summary = report.Summary{Release: s.cfg.Release, Namespace: s.cfg.Namespace, Driver: s.cfg.DriverName,
		Deleted: []string{}, Gone: []string{}, Replaced: []string{}}

	p, cm, err := LoadPlan(ctx, s.d.Client, s.cfg)
	if err != nil {
		return s.summary, err
	}
	s.plan = p
	s.planObj = plan.Object{Kind: "ConfigMap", Version: "v1", Resource: "configmaps", Namespace: cm.Namespace, Name: cm.Name, UID: string(cm.UID), Self: true}
	s.reporter = report.New(log, s.d.Recorder, s.jobRef(ctx))
	log.Info("sentinel started", zap.String("release", p.Release), zap.String("namespace", p.Namespace),
		zap.String("driver", p.DriverName), zap.Int("objects", len(p.Objects)), zap.String("marker_uid", p.MarkerUID),
		zap.Duration("timeout", s.cfg.Timeout))

	ictx, stop := context.WithCancel(ctx)
	defer func() {
		stop()
		s.tracker.Shutdown()
		s.marker.Shutdown()
		s.nodes.Shutdown()
	}()
	s.tracker.Start(ictx)
	s.marker.Start(ictx)
	// Advisory only: not waited for (see watch.Nodes).
	s.nodes.Start(ictx)
	if !s.tracker.WaitForSync(ctx) || !s.marker.WaitForSync(ctx) {
		return s.summary, fmt.Errorf("failed to sync the pod and marker caches: %w", context.Cause(ctx))
	}
	log.Info("caches synced; watching pods", zap.Int("pods_cached", s.tracker.Cached()))

	err = s.removeAll(ctx)
	switch {
	case errors.Is(err, errStandDown):
		return s.standDown(ctx)
	case errors.Is(err, ErrTimeout):
		s.summary.Result = ResultTimedOut
		s.summary.Blockers = s.nodes.Mark(s.tracker.Blockers())
		s.summary.Waited = s.waited()
		s.summary.Message = fmt.Sprintf("timeout %s reached with %d pods still using %s; nothing more was deleted", s.cfg.Timeout, len(s.summary.Blockers), s.cfg.DriverName)
		if len(s.summary.Blockers) == 0 {
			// Timed out after the wait for users, on the driver's own pods.
			s.summary.Message = fmt.Sprintf("timeout %s reached (%v); nothing more was deleted", s.cfg.Timeout, err)
		}
		s.reporter.Event(corev1.EventTypeWarning, report.ReasonTimedOut, s.summary.Message+"; "+report.WaitingMessage(s.summary.Blockers))
		s.reporter.Final(s.summary)
		return s.summary, ErrTimeout
	case err != nil:
		s.summary.Result = ResultFailed
		s.summary.Waited = s.waited()
		s.summary.Message = err.Error()
		s.reporter.Final(s.summary)
		return s.summary, err
	}
	s.summary.Result = ResultDone
	s.summary.Waited = s.waited()
	s.reporter.Final(s.summary)
	return s.summary, nil
}

func (s *Sentinel) waited() string { return s.d.Clock.Since(s.start).Round(time.Millisecond).String() }

// jobRef finds the sentinel's Job as the Events target; nil when absent.
func (s *Sentinel) jobRef(ctx context.Context) runtime.Object {
	job, err := s.d.Client.BatchV1().Jobs(s.cfg.Namespace).Get(ctx, s.cfg.JobName, metav1.GetOptions{})
	if err != nil {
		s.d.Logger.Info("no sentinel Job to attach Events to; reporting in the log only", zap.String("job", s.cfg.JobName), zap.Error(err))
		return nil
	}
	ref, err := reference.GetReference(scheme.Scheme, job)
	if err != nil {
		return nil
	}
	return ref
}

// removeAll is the ordered removal with its waits.
func (s *Sentinel) removeAll(ctx context.Context) error {
	if err := s.waitClear(ctx, "no pod uses the driver"); err != nil {
		return err
	}
	s.reporter.Event(corev1.EventTypeNormal, report.ReasonRemoving, "no pod uses "+s.cfg.DriverName+"; removing release "+s.cfg.Release)
	// 1. The CSIDriver: from now on no new pod can get a volume. If it
	// could not be deleted, pods can still get volumes, the re-check below
	// proves nothing, and removing the DaemonSet could strand them: stop.
	csiDrivers := s.plan.Phase(plan.PhaseCSIDriver)
	before := len(s.summary.Forbidden)
	if err := s.deleteAll(ctx, csiDrivers); err != nil {
		return err
	}
	if kept := s.summary.Forbidden[before:]; len(kept) > 0 {
		return fmt.Errorf("%w: %s", ErrCSIDriverKept, strings.Join(kept, ", "))
	}
	// 2. Re-check: a pod that got a volume just before must be gone too.
	if err := s.waitClear(ctx, "re-check after deleting the CSIDriver"); err != nil {
		return err
	}
	// 3. The DaemonSet, and wait for its pods to go.
	daemonsets := s.plan.Phase(plan.PhaseDaemonSet)
	if err := s.deleteAll(ctx, daemonsets); err != nil {
		return err
	}
	for _, ds := range daemonsets {
		if err := s.waitPodsOf(ctx, ds); err != nil {
			return err
		}
	}
	// 4. Everything else of the release.
	if err := s.deleteAll(ctx, s.plan.Phase(plan.PhaseRest)); err != nil {
		return err
	}
	// 5. Its own Job, plan, Lease and RBAC.
	return s.removeSelf(ctx)
}

func (s *Sentinel) deleteAll(ctx context.Context, objs []plan.Object) error {
	for _, o := range objs {
		if err := s.checkMarker(ctx); err != nil {
			return err
		}
		res, err := s.remover.Delete(ctx, o)
		if err != nil {
			return err
		}
		s.summary.Add(res)
		if res.Outcome == remove.Forbidden {
			s.d.Logger.Error("not permitted to delete; remove it by hand and check the sentinel's RBAC",
				zap.String("kind", o.Kind), zap.String("namespace", o.Namespace), zap.String("name", o.Name))
			continue
		}
		s.d.Logger.Info("removed", zap.String("kind", o.Kind), zap.String("namespace", o.Namespace),
			zap.String("name", o.Name), zap.String("uid", o.UID), zap.String("outcome", string(res.Outcome)))
	}
	return nil
}

// checkMarker returns errStandDown when the release was installed again. The
// marker cache is not enough before a delete: it lags the API server by the
// watch's latency, and a re-install re-adopts the kept objects with their
// recorded UIDs, so the UID precondition would not stop the delete. So the
// marker is also read from the API server (one GET per delete).
func (s *Sentinel) checkMarker(ctx context.Context) error {
	if s.marker.Reinstalled(s.plan.MarkerUID) {
		return errStandDown
	}
	cm, err := s.d.Client.CoreV1().ConfigMaps(s.cfg.Namespace).Get(ctx, s.cfg.InstallMarker, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return nil
	case err != nil:
		return fmt.Errorf("failed to get install marker %s/%s: %w", s.cfg.Namespace, s.cfg.InstallMarker, err)
	case string(cm.UID) != s.plan.MarkerUID:
		return errStandDown
	}
	return nil
}

// waitClear returns when the cache holds no blocking pod and a fresh paged
// read agrees; errStandDown on re-install; ErrTimeout at the deadline.
func (s *Sentinel) waitClear(ctx context.Context, what string) error {
	var lastReport time.Time
	ticker := s.d.Clock.NewTicker(s.cfg.ReportInterval)
	defer ticker.Stop()
	deadline, stopDeadline := s.deadlineTimer()
	defer stopDeadline()
	for {
		podsChanged := s.tracker.Changed()
		markerChanged := s.marker.Changed()
		if s.marker.Reinstalled(s.plan.MarkerUID) {
			return errStandDown
		}
		blockers := s.nodes.Mark(s.tracker.Blockers())
		if len(blockers) == 0 {
			fresh, err := watch.FreshBlockers(ctx, s.d.Client, s.cfg.DriverName, s.d.PageSize)
			if err != nil {
				return err
			}
			if len(fresh) == 0 {
				s.d.Logger.Info("no pod uses the driver; the API server agrees", zap.String("check", what))
				return nil
			}
			// The cache lags the API server; its watch will deliver these.
			s.d.Logger.Info("the fresh read found pods the cache has not seen yet; waiting for their events", zap.Int("blocking", len(fresh)))
			blockers = s.nodes.Mark(fresh)
		}
		if lastReport.IsZero() {
			s.reporter.Waiting(blockers, s.d.Clock.Since(s.start))
			lastReport = s.d.Clock.Now()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("stopped while waiting for pods: %w", context.Cause(ctx))
		case <-deadline:
			s.reporter.Waiting(s.nodes.Mark(s.tracker.Blockers()), s.d.Clock.Since(s.start))
			return ErrTimeout
		case <-ticker.C():
			s.reporter.Waiting(blockers, s.d.Clock.Since(s.start))
			lastReport = s.d.Clock.Now()
		case <-podsChanged:
		case <-markerChanged:
		}
	}
}

// deadlineTimer returns a channel that fires at the --timeout deadline (nil,
// which never fires, without one) and a function that stops its timer.
func (s *Sentinel) deadlineTimer() (<-chan time.Time, func()) {
	if s.deadline.IsZero() {
		return nil, func() {}
	}
	t := s.d.Clock.NewTimer(s.deadline.Sub(s.d.Clock.Now()))
	return t.C(), func() { t.Stop() }
}

// waitPodsOf waits until no pod is controlled by the DaemonSet ds.
func (s *Sentinel) waitPodsOf(ctx context.Context, ds plan.Object) error {
	ticker := s.d.Clock.NewTicker(s.cfg.ReportInterval)
	defer ticker.Stop()
	deadline, stopDeadline := s.deadlineTimer()
	defer stopDeadline()
	for {
		changed := s.tracker.Changed()
		markerChanged := s.marker.Changed()
		if s.marker.Reinstalled(s.plan.MarkerUID) {
			return errStandDown
		}
		n := s.tracker.ControlledBy(ds.UID)
		if n == 0 {
			return nil
		}
		select {
		case <-markerChanged:
		case <-ctx.Done():
			return fmt.Errorf("stopped while waiting for the pods of %s: %w", ds, context.Cause(ctx))
		case <-deadline:
			return fmt.Errorf("%w: %d pods of %s have not gone", ErrTimeout, n, ds)
		case <-ticker.C():
			s.d.Logger.Info(fmt.Sprintf("waiting for %d pods of %s to go", n, ds), zap.Int("pods", n))
		case <-changed:
		}
	}
}

// standDown deletes only the plan ConfigMap and returns success.
func (s *Sentinel) standDown(ctx context.Context) (report.Summary, error) {
	res, err := s.remover.Delete(ctx, s.planObj)
	if err != nil {
		return s.summary, err
	}
	s.summary.Add(res)
	s.summary.Result = ResultStoodDown
	s.summary.Waited = s.waited()
	s.summary.Message = fmt.Sprintf("release %s was installed again (install marker %s/%s has a new UID); standing down without deleting its objects",
		s.cfg.Release, s.cfg.Namespace, s.cfg.InstallMarker)
	s.reporter.Event(corev1.EventTypeNormal, report.ReasonStoodDown, s.summary.Message)
	s.reporter.Final(s.summary)
	return s.summary, nil
}

// removeSelf removes the Job, the plan, the Lease and the sentinel's RBAC.
// Deleting its own RoleBinding or ClusterRoleBinding would revoke the right
// to delete the rest, and deleting its ServiceAccount invalidates its token;
// so when the plan holds a sentinel ClusterRole, every other own object is
// first made a dependent of it and the one last request deletes it: the
// garbage collector removes the rest, the Job's pod (this process) included.
func (s *Sentinel) removeSelf(ctx context.Context) error {
	if err := s.checkMarker(ctx); err != nil {
		return err
	}
	self := s.plan.Phase(plan.PhaseSelf)
	for _, extra := range []struct {
		kind plan.Kind
		name string
	}{{plan.JobKind, s.cfg.JobName}, {plan.LeaseKind, s.cfg.LeaseName}} {
		o, err := s.lookup(ctx, extra.kind, extra.name)
		if err != nil {
			return err
		}
		if o != nil {
			self = append(self, *o)
		}
	}
	self = append(self, s.planObj)
	var owner *plan.Object
	var rest []plan.Object
	for i := range self {
		if self[i].Kind == "ClusterRole" && owner == nil {
			owner = &self[i]
			continue
		}
		rest = append(rest, self[i])
	}
	s.reporter.Event(corev1.EventTypeNormal, report.ReasonFinished,
		fmt.Sprintf("removed release %s: %d deleted, %d already gone, %d left to a newer install; removing the sentinel itself",
			s.cfg.Release, len(s.summary.Deleted), len(s.summary.Gone), len(s.summary.Replaced)))
	if owner == nil {
		// No own ClusterRole: delete directly, the Job last but one and the
		// ServiceAccount last; permissions may run out on the way.
		return s.deleteSelfDirectly(ctx, rest)
	}
	for _, o := range rest {
		res, err := s.remover.Adopt(ctx, o, *owner)
		if err != nil {
			return err
		}
		s.summary.Add(res)
	}
	if s.d.EventFlush > 0 {
		select {
		case <-s.d.Clock.After(s.d.EventFlush):
		case <-ctx.Done():
		}
	}
	if err := s.checkMarker(ctx); err != nil {
		return err
	}
	// The last request: without the deadline of ctx, so a SIGTERM from the
	// garbage collector deleting this pod cannot cut it short.
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	res, err := s.remover.Delete(fctx, *owner)
	if err != nil {
		return err
	}
	s.summary.Add(res)
	return nil
}

func (s *Sentinel) deleteSelfDirectly(ctx context.Context, objs []plan.Object) error {
	order := map[string]int{"ConfigMap": 0, "Lease": 1, "ClusterRoleBinding": 2, "RoleBinding": 3, "ClusterRole": 4, "Role": 5, "Job": 6, "ServiceAccount": 7}
	sorted := append([]plan.Object(nil), objs...)
	for i := 1; i < len(sorted); i++ {
		for j := i; j > 0 && order[sorted[j].Kind] < order[sorted[j-1].Kind]; j-- {
			sorted[j], sorted[j-1] = sorted[j-1], sorted[j]
		}
	}
	for _, o := range sorted {
		res, err := s.remover.Delete(ctx, o)
		if apierrors.IsForbidden(errors.Unwrap(err)) || apierrors.IsForbidden(err) {
			s.d.Logger.Warn("no permission left to delete an own object; remove it by hand", zap.String("object", o.String()))
			continue
		}
		if err != nil {
			return err
		}
		s.summary.Add(res)
	}
	return nil
}

// lookup reads the Job or Lease by name; nil when absent or not the release's.
func (s *Sentinel) lookup(ctx context.Context, k plan.Kind, name string) (*plan.Object, error) {
	m, err := s.d.Meta.Resource(k.GVR).Namespace(s.cfg.Namespace).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("failed to get %s %s/%s: %w", k.Kind, s.cfg.Namespace, name, err)
	}
	if k.Kind == plan.JobKind.Kind && m.Labels[plan.LabelInstance] != s.cfg.Release {
		s.d.Logger.Warn("Job does not carry the release label; leaving it", zap.String("job", name))
		return nil, nil
	}
	return &plan.Object{Kind: k.Kind, Group: k.GVR.Group, Version: k.GVR.Version, Resource: k.GVR.Resource,
		Namespace: m.Namespace, Name: m.Name, UID: string(m.UID), Self: true}, nil
}
