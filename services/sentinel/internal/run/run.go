// Package run is the sentinel's `run`: it waits, driven by watch events,
// until no pod uses the driver, confirms that with a fresh paged read, and
// only then removes the release's recorded objects in an order that never
// leaves a pod with a volume and no driver: the CSIDriver first (no new pod
// can get a volume), a re-check (pods, no CSIDriver of the driver's name
// whoever re-created it, and the pre-delete checks), the DaemonSet and its
// pods, the rest of the release, and last its own Job, plan and RBAC. It
// stands down when the release is installed again, stops at a refused
// delete, retries transient API errors, and gives up, deleting nothing more,
// at its timeout.
package run

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/tools/reference"
	"k8s.io/utils/clock"

	"github.com/meshcsi/meshcsi/services/sentinel/internal/config"
	"github.com/meshcsi/meshcsi/services/sentinel/internal/jobctl"
	"github.com/meshcsi/meshcsi/services/sentinel/internal/kube"
	"github.com/meshcsi/meshcsi/services/sentinel/internal/plan"
	"github.com/meshcsi/meshcsi/services/sentinel/internal/remove"
	"github.com/meshcsi/meshcsi/services/sentinel/internal/report"
	"github.com/meshcsi/meshcsi/services/sentinel/internal/tracker"
)

// Results of a run, as the summary names them.
const (
	ResultDone      = "done"
	ResultStoodDown = "stood-down"
	ResultTimedOut  = "timed-out"
	// ResultRefused: the API server refused a delete (RBAC or an admission
	// policy); the removal stopped there.
	ResultRefused = "refused"
	// ResultFailed: a permanent API or configuration error stopped the
	// removal part way; the summary says what was already deleted.
	ResultFailed = "failed"
)

// ErrTimeout is returned when --timeout passed while pods (or a CSIDriver, or
// a pre-delete check) still blocked removal (exit code 2). Nothing more is
// deleted.
var ErrTimeout = errors.New("timed out waiting for pods that use the driver")

// ErrRefused is remove.ErrRefused: a refused delete stopped the removal.
var ErrRefused = remove.ErrRefused

// errStandDown is the internal signal that the release was installed again.
var errStandDown = errors.New("the release was installed again")

// Check is one more condition that must hold before the DaemonSet is
// deleted, after no pod uses the driver (cache and a fresh read) and no
// CSIDriver of the driver's name exists. Checks are evaluated in order, each
// request wrapped in kube.Retry by the caller.
type Check interface {
	// Name names the check in logs and Events ("node mounts").
	Name() string
	// Blocking returns what still blocks, one line each (say "node worker-1:
	// 2 published volumes"); empty when clear. A transient API error is
	// retried; any other error ends the run.
	Blocking(ctx context.Context) ([]string, error)
}

// DefaultCheckInterval re-evaluates blocking pre-delete checks (which have no
// watch of their own); pod events re-evaluate them too.
const DefaultCheckInterval = 5 * time.Second

// Deps is what a run touches in the world; main wires the real ones.
type Deps struct {
	// Clients reach the API server; required.
	Clients kube.Clients
	// Clock drives reports, timeouts and waits; required.
	Clock clock.WithTicker
	// Logger is required.
	Logger *zap.Logger
	// Recorder emits Events on the Job; nil means log only.
	Recorder record.EventRecorder
	// EventFlush is how long to let the last Event reach the API server
	// before the final delete; 0 means none.
	EventFlush time.Duration
	// PreDeleteChecks must all be clear before the DaemonSet is deleted.
	PreDeleteChecks []Check
	// CheckInterval paces blocking PreDeleteChecks; 0 means
	// DefaultCheckInterval.
	CheckInterval time.Duration
	// InJob: this process is the pod of the sentinel Job (POD_NAME is set).
	// Standing down, it then suspends that Job and waits to be stopped, so
	// the Job stays resumable.
	InJob bool
	// FinishedPods, if set, says which nodes' drivers hold no published
	// volume: a finished (Succeeded or Failed) pod on such a node no longer
	// blocks (the kubelet tore its volumes down). Nil: finished pods block
	// until their objects are gone.
	FinishedPods NodeClearer
}

// NodeClearer reports the nodes whose driver holds no published volume, and
// one line for each node that holds some or could not be read
// (nodecheck.Checker).
type NodeClearer interface {
	ClearNodes(ctx context.Context) (map[string]bool, []string, error)
}

// Runner is one run of the sentinel: it waits, then removes.
type Runner struct {
	cfg       config.Config
	d         Deps
	pods      *tracker.Pods
	marker    *tracker.Marker
	csiDriver *tracker.Named
	nodes     *tracker.Nodes
	remover   *remove.Remover
	reporter  *report.Reporter
	plan      *plan.Plan
	planObj   plan.Object
	start     time.Time
	deadline  time.Time
	summary   report.Summary
	// last is the state the last wait saw (for the timeout message).
	last state
}

// New validates cfg and d.
func New(cfg config.Config, d Deps) (*Runner, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := d.Clients.Validate(); err != nil {
		return nil, err
	}
	if d.Clock == nil || d.Logger == nil {
		return nil, errors.New("run: clock and logger are required")
	}
	if d.CheckInterval == 0 {
		d.CheckInterval = DefaultCheckInterval
	}
	rm, err := remove.New(d.Clients.Meta, d.Logger)
	if err != nil {
		return nil, err
	}
	pods, err := tracker.NewPods(d.Clients.Core, cfg.DriverName, cfg.Namespace)
	if err != nil {
		return nil, err
	}
	mk, err := tracker.NewMarker(d.Clients.Core, cfg.Namespace, cfg.InstallMarker)
	if err != nil {
		return nil, err
	}
	csi, err := tracker.NewCSIDriver(d.Clients.Storage, cfg.DriverName)
	if err != nil {
		return nil, err
	}
	nodes, err := tracker.NewNodes(d.Clients.Meta)
	if err != nil {
		return nil, err
	}
	return &Runner{cfg: cfg, d: d, pods: pods, marker: mk, csiDriver: csi, nodes: nodes, remover: rm}, nil
}

// retry runs one API request with kube.Retry.
func (s *Runner) retry(ctx context.Context, what string, fn func(context.Context) error) error {
	return kube.Retry(ctx, s.d.Logger, what, fn)
}

// Run waits and removes. It returns the summary it logged and nil (done or
// stood down), ErrTimeout, a refusal (errors.Is ErrRefused), or an error
// (configuration or API).
func (s *Runner) Run(ctx context.Context) (report.Summary, error) {
	log := s.d.Logger
	s.start = s.d.Clock.Now()
	if s.cfg.Timeout > 0 {
		s.deadline = s.start.Add(s.cfg.Timeout)
	}
	s.summary = report.Summary{Release: s.cfg.Release, Namespace: s.cfg.Namespace, Driver: s.cfg.DriverName,
		Deleted: []string{}, Gone: []string{}, Replaced: []string{}}

	err := s.retry(ctx, "get plan", func(ctx context.Context) (err error) {
		s.plan, s.planObj, err = plan.Load(ctx, s.d.Clients.Core, s.cfg)
		return err
	})
	if err != nil {
		return s.summary, err
	}
	p := s.plan
	s.reporter = report.New(log, s.d.Recorder, s.jobRef(ctx))
	log.Info("sentinel started", zap.String("release", p.Release), zap.String("namespace", p.Namespace),
		zap.String("driver", p.DriverName), zap.Int("objects", len(p.Objects)), zap.String("marker_uid", p.MarkerUID),
		zap.Duration("timeout", s.cfg.Timeout))

	ictx, stop := context.WithCancel(ctx)
	defer func() {
		stop()
		s.pods.Shutdown()
		s.marker.Shutdown()
		s.csiDriver.Shutdown()
		s.nodes.Shutdown()
	}()
	s.pods.Start(ictx)
	s.marker.Start(ictx)
	s.csiDriver.Start(ictx)
	// Advisory only: not waited for (see tracker.Nodes).
	s.nodes.Start(ictx)
	if !s.pods.WaitForSync(ctx) || !s.marker.WaitForSync(ctx) || !s.csiDriver.WaitForSync(ctx) {
		return s.summary, fmt.Errorf("failed to sync the pod, marker and CSIDriver caches: %w", context.Cause(ctx))
	}
	log.Info("caches synced; watching pods", zap.Int("pods_cached", s.pods.Cached()))

	err = s.removeAll(ctx)
	s.summary.Waited = s.waited()
	switch {
	case errors.Is(err, errStandDown):
		return s.standDown(ctx)
	case errors.Is(err, ErrTimeout):
		s.summary.Result = ResultTimedOut
		s.summary.Blockers = s.last.blockers
		s.summary.Message = s.timeoutMessage(err)
		s.reporter.Event(corev1.EventTypeWarning, report.ReasonTimedOut, s.summary.Message+"; "+report.WaitingMessage(s.summary.Blockers))
		s.reporter.Final(s.summary)
		return s.summary, ErrTimeout
	case errors.Is(err, ErrRefused):
		s.summary.Result = ResultRefused
		var re *remove.RefusedError
		if errors.As(err, &re) {
			s.summary.Refused = append(s.summary.Refused, re.Object.String())
		}
		s.summary.Message = err.Error() + "; the removal stopped, nothing more was deleted"
		s.reporter.Event(corev1.EventTypeWarning, report.ReasonRefused, s.summary.Message+
			"; allow the request (RBAC, admission policy), then run the sentinel again (docs/sentinel.md)")
		s.reporter.Final(s.summary)
		return s.summary, err
	case err != nil:
		s.summary.Result = ResultFailed
		s.summary.Message = err.Error()
		s.reporter.Final(s.summary)
		return s.summary, err
	}
	s.summary.Result = ResultDone
	s.reporter.Final(s.summary)
	return s.summary, nil
}

func (s *Runner) timeoutMessage(err error) string {
	switch {
	case len(s.last.blockers) > 0:
		return fmt.Sprintf("timeout %s reached with %d pods still using %s; nothing more was deleted", s.cfg.Timeout, len(s.last.blockers), s.cfg.DriverName)
	case s.last.csiDriver != nil:
		return fmt.Sprintf("timeout %s reached while CSIDriver %s exists (%s); nothing more was deleted", s.cfg.Timeout, s.cfg.DriverName, managers(s.last.csiDriver))
	case len(s.last.checks) > 0:
		return fmt.Sprintf("timeout %s reached while %s; nothing more was deleted", s.cfg.Timeout, strings.Join(s.last.checks, "; "))
	}
	// Timed out after the wait for users, on the driver's own pods.
	return fmt.Sprintf("timeout %s reached (%v); nothing more was deleted", s.cfg.Timeout, err)
}

func (s *Runner) waited() string { return s.d.Clock.Since(s.start).Round(time.Millisecond).String() }

// jobRef finds the sentinel's Job as the Events target; nil when absent.
func (s *Runner) jobRef(ctx context.Context) runtime.Object {
	var ref *corev1.ObjectReference
	err := s.retry(ctx, "get Job", func(ctx context.Context) error {
		job, err := s.d.Clients.Batch.Jobs(s.cfg.Namespace).Get(ctx, s.cfg.JobName, metav1.GetOptions{})
		if err != nil {
			return err
		}
		ref, err = reference.GetReference(scheme.Scheme, job)
		return err
	})
	if err != nil {
		s.d.Logger.Info("no sentinel Job to attach Events to; reporting in the log only", zap.String("job", s.cfg.JobName), zap.Error(err))
		return nil
	}
	return ref
}

// removeAll is the ordered removal with its waits.
func (s *Runner) removeAll(ctx context.Context) error {
	if err := s.waitUntil(ctx, "no pod uses the driver", gate{}); err != nil {
		return err
	}
	s.reporter.Event(corev1.EventTypeNormal, report.ReasonRemoving, "no pod uses "+s.cfg.DriverName+"; removing release "+s.cfg.Release)
	// 1. The CSIDriver: from now on no new pod can get a volume. A refused
	// delete stops here, before the DaemonSet.
	if err := s.deleteAll(ctx, s.plan.Phase(plan.PhaseCSIDriver)); err != nil {
		return err
	}
	// 2. Re-check: a pod that got a volume just before must be gone too; no
	// CSIDriver of the driver's name may exist, whatever the plan recorded
	// (re-created by GitOps or a policy engine, or never recorded); the
	// pre-delete checks must be clear.
	if err := s.waitUntil(ctx, "re-check before deleting the DaemonSet", gate{noCSIDriver: true, checks: true}); err != nil {
		return err
	}
	// 3. The DaemonSet, and wait for its pods to go.
	daemonsets := s.plan.Phase(plan.PhaseDaemonSet)
	if err := s.deleteAll(ctx, daemonsets); err != nil {
		return err
	}
	// A CSIDriver created while the DaemonSet went is reported, and the rest
	// waits until it is gone.
	if err := s.waitUntil(ctx, "after deleting the DaemonSet", gate{noCSIDriver: true, skipPods: true}); err != nil {
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
	// 5. The removal and namespace guards, by name (they held until now).
	if err := s.deleteAll(ctx, s.plan.Phase(plan.PhaseGuard)); err != nil {
		return err
	}
	// 6. Its own Job, plan, Lease and RBAC.
	return s.removeSelf(ctx)
}

func (s *Runner) deleteAll(ctx context.Context, objs []plan.Object) error {
	for _, o := range objs {
		if err := s.checkMarker(ctx); err != nil {
			return err
		}
		res, err := s.remover.Delete(ctx, o)
		if err != nil {
			return err
		}
		s.summary.Add(res)
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
func (s *Runner) checkMarker(ctx context.Context) error {
	if s.marker.Reinstalled(s.plan.MarkerUID) {
		return errStandDown
	}
	var uid string
	err := s.retry(ctx, "get install marker", func(ctx context.Context) error {
		cm, err := s.d.Clients.Core.ConfigMaps(s.cfg.Namespace).Get(ctx, s.cfg.InstallMarker, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			uid = ""
			return nil
		}
		if err == nil {
			uid = string(cm.UID)
		}
		return err
	})
	switch {
	case err != nil:
		return fmt.Errorf("failed to get install marker %s/%s: %w", s.cfg.Namespace, s.cfg.InstallMarker, err)
	case uid != "" && uid != s.plan.MarkerUID:
		return errStandDown
	}
	return nil
}

// gate says what a wait requires besides a re-install check.
type gate struct {
	// skipPods: do not wait for pods that use the driver.
	skipPods bool
	// noCSIDriver: no CSIDriver of the driver's name may exist.
	noCSIDriver bool
	// checks: the pre-delete checks must be clear.
	checks bool
}

// state is what blocks a wait right now.
type state struct {
	blockers  []tracker.Blocker
	csiDriver *storagev1.CSIDriver
	checks    []string
	// finished: why finished pods among the blockers still block (their
	// node's driver holds volumes or could not be read), one line a node.
	finished []string
}

func (st state) clear() bool {
	return len(st.blockers) == 0 && st.csiDriver == nil && len(st.checks) == 0
}

// observe computes what blocks, cheapest first: the pod cache, then (only
// when it is clear) a fresh paged read, the CSIDriver (a fresh GET: its cache
// may lag a re-creation) and the checks.
func (s *Runner) observe(ctx context.Context, g gate) (state, error) {
	var st state
	if !g.skipPods {
		var err error
		st.blockers, st.finished, err = s.releaseFinished(ctx, s.nodes.Mark(s.pods.Blockers()))
		if err != nil {
			return st, err
		}
		if len(st.blockers) > 0 {
			return st, nil
		}
		var fresh []tracker.Blocker
		err = s.retry(ctx, "list pods", func(ctx context.Context) (err error) {
			fresh, err = tracker.FreshBlockers(ctx, s.d.Clients.Core, s.cfg.DriverName)
			return err
		})
		if err != nil {
			return st, err
		}
		if fresh, st.finished, err = s.releaseFinished(ctx, fresh); err != nil {
			return st, err
		}
		if len(fresh) > 0 {
			// The cache lags the API server; its watch will deliver these.
			s.d.Logger.Info("the fresh read found pods the cache has not seen yet; waiting for their events", zap.Int("blocking", len(fresh)))
			st.blockers = s.nodes.Mark(fresh)
			return st, nil
		}
	}
	if g.noCSIDriver {
		err := s.retry(ctx, "get CSIDriver", func(ctx context.Context) error {
			cd, err := s.d.Clients.Storage.CSIDrivers().Get(ctx, s.cfg.DriverName, metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				st.csiDriver = nil
				return nil
			}
			st.csiDriver = cd
			return err
		})
		if err != nil {
			return st, err
		}
		if st.csiDriver != nil {
			return st, nil
		}
	}
	if g.checks {
		for _, c := range s.d.PreDeleteChecks {
			var lines []string
			err := s.retry(ctx, "check "+c.Name(), func(ctx context.Context) (err error) {
				lines, err = c.Blocking(ctx)
				return err
			})
			if err != nil {
				return st, fmt.Errorf("pre-delete check %s: %w", c.Name(), err)
			}
			for _, l := range lines {
				st.checks = append(st.checks, c.Name()+": "+l)
			}
		}
	}
	return st, nil
}

// releaseFinished drops the finished (Succeeded or Failed) pods whose node's
// driver reports no published volume: the kubelet has torn their volumes
// down, and a CronJob's history must not block removal for days. The others
// keep blocking; why is returned one line a node.
func (s *Runner) releaseFinished(ctx context.Context, bs []tracker.Blocker) ([]tracker.Blocker, []string, error) {
	if s.d.FinishedPods == nil || !slices.ContainsFunc(bs, finishedPod) {
		return bs, nil, nil
	}
	var clear map[string]bool
	var holding []string
	err := s.retry(ctx, "read the drivers' published volumes", func(ctx context.Context) (err error) {
		clear, holding, err = s.d.FinishedPods.ClearNodes(ctx)
		return err
	})
	if err != nil {
		return nil, nil, fmt.Errorf("failed to read the drivers' published volumes: %w", err)
	}
	out := make([]tracker.Blocker, 0, len(bs))
	for _, b := range bs {
		if finishedPod(b) && clear[b.Node] {
			continue
		}
		out = append(out, b)
	}
	if !slices.ContainsFunc(out, finishedPod) {
		holding = nil
	}
	return out, holding, nil
}

func finishedPod(b tracker.Blocker) bool {
	return b.Phase == string(corev1.PodSucceeded) || b.Phase == string(corev1.PodFailed)
}

// managers names who wrote the object, most recent first, from its
// managedFields ("argocd-controller (Update 2026-01-02T03:04:05Z)").
func managers(o metav1.Object) string {
	mf := append([]metav1.ManagedFieldsEntry(nil), o.GetManagedFields()...)
	sort.SliceStable(mf, func(i, j int) bool {
		ti, tj := mf[i].Time, mf[j].Time
		if ti == nil || tj == nil {
			return tj == nil && ti != nil
		}
		return ti.After(tj.Time)
	})
	var out []string
	for _, m := range mf {
		s := m.Manager + " (" + string(m.Operation)
		if m.Time != nil {
			s += " " + m.Time.UTC().Format(time.RFC3339)
		}
		out = append(out, s+")")
	}
	if len(out) == 0 {
		return "field managers: unknown"
	}
	return "field managers: " + strings.Join(out, ", ")
}

// what names the kind of thing that blocks, so a report goes out as soon as
// it changes (not only at the report interval).
func (st state) what() string {
	switch {
	case len(st.blockers) > 0:
		return "pods " + strings.Join(st.finished, "; ")
	case st.csiDriver != nil:
		return "csidriver " + string(st.csiDriver.UID)
	case len(st.checks) > 0:
		return "checks"
	}
	return ""
}

// report tells what blocks the wait: pods (log line and Event), a CSIDriver
// (Warning, naming who wrote it) or checks.
func (s *Runner) report(st state) {
	waited := s.d.Clock.Since(s.start)
	switch {
	case len(st.blockers) > 0:
		s.reporter.Waiting(st.blockers, waited)
		if len(st.finished) > 0 {
			msg := "finished pods block until their node's driver holds no volume: " + strings.Join(st.finished, "; ")
			s.d.Logger.Info(msg, zap.Strings("nodes", st.finished))
			s.reporter.Event(corev1.EventTypeNormal, report.ReasonWaitingForCheck, msg)
		}
	case st.csiDriver != nil:
		cd := st.csiDriver
		msg := fmt.Sprintf("CSIDriver %s exists (uid %s, created %s; %s): pods can still get volumes of the driver, so the DaemonSet stays until it is gone; delete it and stop whatever re-creates it",
			cd.Name, cd.UID, cd.CreationTimestamp.UTC().Format(time.RFC3339), managers(cd))
		s.d.Logger.Warn(msg, zap.String("csidriver", cd.Name), zap.String("uid", string(cd.UID)), zap.Duration("waited", waited.Round(time.Second)))
		s.reporter.Event(corev1.EventTypeWarning, report.ReasonCSIDriverExists, msg)
	case len(st.checks) > 0:
		msg := "waiting for " + strings.Join(st.checks, "; ")
		s.d.Logger.Info(msg, zap.Strings("blocking", st.checks), zap.Duration("waited", waited.Round(time.Second)))
		s.reporter.Event(corev1.EventTypeNormal, report.ReasonWaitingForCheck, msg)
	}
}

// waitUntil returns when nothing g requires blocks (see observe);
// errStandDown on re-install; ErrTimeout at the deadline.
func (s *Runner) waitUntil(ctx context.Context, what string, g gate) error {
	ticker := s.d.Clock.NewTicker(s.cfg.ReportInterval)
	defer ticker.Stop()
	deadline, stopDeadline := s.deadlineTimer()
	defer stopDeadline()
	reported := ""
	for {
		podsChanged := s.pods.Changed()
		markerChanged := s.marker.Changed()
		csiChanged := s.csiDriver.Changed()
		if s.marker.Reinstalled(s.plan.MarkerUID) {
			return errStandDown
		}
		st, err := s.observe(ctx, g)
		if err != nil {
			return err
		}
		s.last = st
		if st.clear() {
			s.d.Logger.Info("nothing blocks; the API server agrees", zap.String("check", what))
			return nil
		}
		if st.what() != reported {
			s.report(st)
			reported = st.what()
		}
		var recheck <-chan time.Time
		stopRecheck := func() {}
		if len(st.checks) > 0 || len(st.finished) > 0 {
			t := s.d.Clock.NewTimer(s.d.CheckInterval)
			recheck, stopRecheck = t.C(), func() { t.Stop() }
		}
		select {
		case <-ctx.Done():
			stopRecheck()
			return fmt.Errorf("stopped while waiting (%s): %w", what, context.Cause(ctx))
		case <-deadline:
			stopRecheck()
			if len(s.last.blockers) > 0 {
				s.last.blockers = s.nodes.Mark(s.pods.Blockers())
				s.reporter.Waiting(s.last.blockers, s.d.Clock.Since(s.start))
			}
			return ErrTimeout
		case <-ticker.C():
			s.report(st)
		case <-podsChanged:
		case <-markerChanged:
		case <-csiChanged:
		case <-recheck:
		}
		stopRecheck()
	}
}

// deadlineTimer returns a channel that fires at the --timeout deadline (nil,
// which never fires, without one) and a function that stops its timer.
func (s *Runner) deadlineTimer() (<-chan time.Time, func()) {
	if s.deadline.IsZero() {
		return nil, func() {}
	}
	t := s.d.Clock.NewTimer(s.deadline.Sub(s.d.Clock.Now()))
	return t.C(), func() { t.Stop() }
}

// waitPodsOf waits until no pod is controlled by the DaemonSet ds.
func (s *Runner) waitPodsOf(ctx context.Context, ds plan.Object) error {
	ticker := s.d.Clock.NewTicker(s.cfg.ReportInterval)
	defer ticker.Stop()
	deadline, stopDeadline := s.deadlineTimer()
	defer stopDeadline()
	for {
		changed := s.pods.Changed()
		markerChanged := s.marker.Changed()
		if s.marker.Reinstalled(s.plan.MarkerUID) {
			return errStandDown
		}
		n := s.pods.ControlledBy(ds.UID)
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
func (s *Runner) standDown(ctx context.Context) (report.Summary, error) {
	res, err := s.remover.Delete(ctx, s.planObj)
	if err != nil {
		return s.summary, err
	}
	s.summary.Add(res)
	s.summary.Result = ResultStoodDown
	s.summary.Message = fmt.Sprintf("release %s was installed again (install marker %s/%s has a new UID); standing down without deleting its objects",
		s.cfg.Release, s.cfg.Namespace, s.cfg.InstallMarker)
	s.reporter.Event(corev1.EventTypeNormal, report.ReasonStoodDown, s.summary.Message)
	s.reporter.Final(s.summary)
	if s.d.InJob {
		return s.summary, s.suspendOwnJob(ctx)
	}
	return s.summary, nil
}

// StandDownWait bounds how long a stood-down sentinel waits for the Job
// controller to stop its pod after suspending its Job.
const StandDownWait = 2 * time.Minute

// suspendOwnJob leaves the sentinel's Job suspended, not finished, so the
// next uninstall's hand-off can resume it (nobody may create a Job): it
// suspends the Job (a re-install does too, through Helm) and waits for the
// Job controller to stop this pod, so the run ends interrupted (exit 3,
// which the Job's podFailurePolicy ignores); exiting 0 would complete the Job.
func (s *Runner) suspendOwnJob(ctx context.Context) error {
	job, err := jobctl.Get(ctx, s.d.Clients.Batch, s.cfg.Namespace, s.cfg.JobName, s.cfg.Release)
	if err == nil && !jobctl.Suspended(job) {
		err = jobctl.SetSuspend(ctx, s.d.Clients.Batch, s.cfg.Namespace, s.cfg.JobName, job.UID, true)
	}
	if err != nil {
		s.d.Logger.Warn("could not suspend the sentinel Job; the next uninstall may need the re-launch command",
			zap.String("command", jobctl.RelaunchCommand(s.cfg.Namespace, s.cfg.JobName)), zap.Error(err))
		return nil
	}
	s.d.Logger.Info("suspended the sentinel Job for the next uninstall; waiting for its pod to be stopped", zap.String("job", s.cfg.JobName))
	select {
	case <-ctx.Done():
		return fmt.Errorf("stood down, its Job suspended: %w", context.Cause(ctx))
	case <-s.d.Clock.After(StandDownWait):
		return nil
	}
}

// removeSelf removes the Job, the plan, the Lease and the sentinel's RBAC.
// Deleting its own RoleBinding or ClusterRoleBinding would revoke the right
// to delete the rest, deleting its ServiceAccount invalidates its token, and
// it may not patch a binding (a binding it could patch, it could widen). So
// when the plan holds its ClusterRole and ClusterRoleBinding, its other own
// objects (Job, Lease, plan, ServiceAccount, Role) are made dependents of the
// ClusterRole and the ClusterRole a dependent of the ClusterRoleBinding;
// then it deletes its RoleBinding, and its one last request deletes the
// ClusterRoleBinding: the garbage collector removes the rest, the Job's pod
// (this process) included.
func (s *Runner) removeSelf(ctx context.Context) error {
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
	var role, binding, roleBinding *plan.Object
	var rest []plan.Object
	for i := range self {
		switch {
		case self[i].Kind == "ClusterRole" && role == nil:
			role = &self[i]
		case self[i].Kind == "ClusterRoleBinding" && binding == nil:
			binding = &self[i]
		case self[i].Kind == "RoleBinding" && roleBinding == nil:
			roleBinding = &self[i]
		default:
			rest = append(rest, self[i])
		}
	}
	s.reporter.Event(corev1.EventTypeNormal, report.ReasonFinished,
		fmt.Sprintf("removed release %s: %d deleted, %d already gone, %d left to a newer install; removing the sentinel itself",
			s.cfg.Release, len(s.summary.Deleted), len(s.summary.Gone), len(s.summary.Replaced)))
	if role == nil || binding == nil {
		// No own ClusterRole and binding: delete directly, the Job last but
		// one and the ServiceAccount last; permissions may run out on the way.
		return s.deleteSelfDirectly(ctx, self)
	}
	for _, o := range rest {
		res, err := s.remover.Adopt(ctx, o, *role)
		if err != nil {
			return err
		}
		s.summary.Add(res)
	}
	res, err := s.remover.Adopt(ctx, *role, *binding)
	if err != nil {
		return err
	}
	s.summary.Add(res)
	if s.d.EventFlush > 0 {
		select {
		case <-s.d.Clock.After(s.d.EventFlush):
		case <-ctx.Done():
		}
	}
	if err := s.checkMarker(ctx); err != nil {
		return err
	}
	// The last requests: without the deadline of ctx, so a SIGTERM from the
	// garbage collector deleting this pod cannot cut them short. The
	// RoleBinding goes first (its rights end here), the ClusterRoleBinding
	// last.
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if roleBinding != nil {
		res, err := s.remover.Delete(fctx, *roleBinding)
		if err != nil {
			return err
		}
		s.summary.Add(res)
	}
	res, err = s.remover.Delete(fctx, *binding)
	if err != nil {
		return err
	}
	s.summary.Add(res)
	return nil
}

func (s *Runner) deleteSelfDirectly(ctx context.Context, objs []plan.Object) error {
	order := map[string]int{"ConfigMap": 0, "Lease": 1, "ClusterRoleBinding": 2, "RoleBinding": 3, "ClusterRole": 4, "Role": 5, "Job": 6, "ServiceAccount": 7}
	sorted := append([]plan.Object(nil), objs...)
	sort.SliceStable(sorted, func(i, j int) bool { return order[sorted[i].Kind] < order[sorted[j].Kind] })
	for _, o := range sorted {
		res, err := s.remover.Delete(ctx, o)
		if errors.Is(err, remove.ErrRefused) {
			// Expected once its own bindings are gone.
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
func (s *Runner) lookup(ctx context.Context, k plan.Kind, name string) (*plan.Object, error) {
	var m *metav1.PartialObjectMetadata
	err := s.retry(ctx, "get "+k.Kind, func(ctx context.Context) (err error) {
		m, err = s.d.Clients.Meta.Resource(k.GVR).Namespace(s.cfg.Namespace).Get(ctx, name, metav1.GetOptions{})
		return err
	})
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
