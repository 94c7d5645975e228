package run_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/clock"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/meshcsi/meshcsi/services/sentinel/internal/config"
	"github.com/meshcsi/meshcsi/services/sentinel/internal/kube"
	"github.com/meshcsi/meshcsi/services/sentinel/internal/plan"
	"github.com/meshcsi/meshcsi/services/sentinel/internal/report"
	"github.com/meshcsi/meshcsi/services/sentinel/internal/run"
	"github.com/meshcsi/meshcsi/services/sentinel/internal/sentineltest"
)

func blockingPod(ns, name string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID("pod-" + name)},
		Spec: corev1.PodSpec{NodeName: "n1", Volumes: []corev1.Volume{{Name: "sock",
			VolumeSource: corev1.VolumeSource{CSI: &corev1.CSIVolumeSource{Driver: sentineltest.Driver}}}}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning},
	}
}

type harness struct {
	c        *sentineltest.Cluster
	cfg      config.Config
	logs     *observer.ObservedLogs
	recorder *record.FakeRecorder
	s        *run.Runner
	done     chan struct{}
	summary  report.Summary
	err      error
}

// setup records the plan (as a hand-off would) and builds a Sentinel.
func setup(t *testing.T, clk clock.WithTicker, timeout time.Duration, pods ...*corev1.Pod) *harness {
	t.Helper()
	return setupWithChecks(t, clk, timeout, nil, pods...)
}

// setupWithChecks is setup with pre-delete checks.
func setupWithChecks(t *testing.T, clk clock.WithTicker, timeout time.Duration, checks []run.Check, pods ...*corev1.Pod) *harness {
	t.Helper()
	c := sentineltest.New(t)
	c.AddRelease(t)
	c.AddJob(t, "uid-job")
	rel := plan.Release{Name: sentineltest.Release, Namespace: sentineltest.NS, DriverName: sentineltest.Driver, PartOf: "meshcsi"}
	p, err := plan.Discover(context.Background(), c.Meta, c.Client.Discovery(), rel, "uid-marker-1", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	c.AddPlan(t, p, "uid-plan")
	for _, pod := range pods {
		if err := c.Client.Tracker().Add(pod); err != nil {
			t.Fatal(err)
		}
	}
	c.ClearMutations()
	core, logs := observer.New(zap.InfoLevel)
	h := &harness{c: c, cfg: sentineltest.Config(), logs: logs, recorder: record.NewFakeRecorder(100), done: make(chan struct{})}
	h.cfg.Timeout = timeout
	h.s, err = run.New(h.cfg, run.Deps{Clients: c.Clients(), Clock: clk, Logger: zap.New(core), Recorder: h.recorder, PreDeleteChecks: checks})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func (h *harness) start(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() { cancel(); <-h.done })
	go func() {
		defer close(h.done)
		h.summary, h.err = h.s.Run(ctx)
	}()
}

func (h *harness) wait(t *testing.T) {
	t.Helper()
	select {
	case <-h.done:
	case <-time.After(10 * time.Second):
		t.Fatal("sentinel did not finish")
	}
}

func (h *harness) waitLog(t *testing.T, msg string) {
	t.Helper()
	h.waitFor(t, "log "+msg, func() bool { return h.logs.FilterMessageSnippet(msg).Len() > 0 })
}

// waitFor waits until cond holds (at most 5s).
func (h *harness) waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), 5*time.Millisecond, 5*time.Second, true,
		func(context.Context) (bool, error) { return cond(), nil })
	if err != nil {
		t.Fatalf("no %s within 5s; logs %v; mutations %v", what, h.logs.All(), h.c.Mutations())
	}
}

func deletes(muts []string) []string {
	var out []string
	for _, m := range muts {
		if strings.HasPrefix(m, "delete ") {
			out = append(out, m)
		}
	}
	return out
}

func TestRunWaitsThenRemovesInOrder(t *testing.T) {
	term := blockingPod("team-b", "stuck")
	ts := metav1.Now()
	term.DeletionTimestamp = &ts
	h := setup(t, clock.RealClock{}, 0, blockingPod("team-a", "web"), term)
	h.start(t)
	h.waitLog(t, "waiting for 2 pods")
	if muts := h.c.Mutations(); len(muts) != 0 {
		t.Fatalf("mutated while pods block: %v", muts)
	}
	ev := <-h.recorder.Events
	if !strings.Contains(ev, report.ReasonWaiting) || !strings.Contains(ev, "team-a/web") || !strings.Contains(ev, "team-b/stuck") || !strings.Contains(ev, "terminating since") {
		t.Fatalf("event = %q", ev)
	}
	ctx := context.Background()
	if err := h.c.Client.CoreV1().Pods("team-a").Delete(ctx, "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	h.waitLog(t, "waiting for 1 pods")
	if muts := h.c.Mutations(); len(muts) != 0 {
		t.Fatalf("mutated while a Terminating pod blocks: %v", muts)
	}
	if err := h.c.Client.CoreV1().Pods("team-b").Delete(ctx, "stuck", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	h.wait(t)
	if h.err != nil || h.summary.Result != run.ResultDone {
		t.Fatalf("Run() = %+v, %v", h.summary, h.err)
	}
	muts := h.c.Mutations()
	want := []string{
		"delete csidrivers csi.meshcsi.io uid=uid-csidriver",
		"delete daemonsets meshcsi-system/meshcsi-driver uid=uid-ds",
		"delete serviceaccounts meshcsi-system/meshcsi-driver uid=uid-sa-driver",
		"delete configmaps meshcsi-system/meshcsi-dashboard uid=uid-cm-dashboard",
		"delete services meshcsi-system/meshcsi-metrics uid=uid-svc",
		"delete clusterroles meshcsi-driver uid=uid-cr-driver",
		"delete clusterrolebindings meshcsi-driver uid=uid-crb-driver",
		// Its RoleBinding (never patched: no binding is), then the last
		// request: its ClusterRoleBinding, which by now owns its ClusterRole,
		// which owns the rest of the sentinel.
		"delete rolebindings meshcsi-system/meshcsi-sentinel uid=uid-rb-sentinel",
		"delete clusterrolebindings meshcsi-sentinel uid=uid-crb-sentinel",
	}
	if got := deletes(muts); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("deletes:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if last := muts[len(muts)-1]; last != want[len(want)-1] {
		t.Fatalf("last request = %q, want the sentinel ClusterRoleBinding", last)
	}
	// Every other own object was handed to the ClusterRole, and the
	// ClusterRole to the ClusterRoleBinding, each with its UID; no binding
	// was patched.
	adopted := map[string]bool{}
	for _, m := range muts {
		if strings.HasPrefix(m, "patch ") {
			target := strings.Fields(m)[1] + " " + strings.Fields(m)[2]
			owner := `"uid":"uid-cr-sentinel"`
			if target == "clusterroles meshcsi-sentinel" {
				owner = `"uid":"uid-crb-sentinel"`
			}
			if !strings.Contains(m, owner) {
				t.Fatalf("adoption patch without owner UID: %s", m)
			}
			if strings.Contains(target, "bindings") {
				t.Fatalf("a binding was patched: %s", m)
			}
			adopted[target] = true
		}
	}
	for _, o := range []string{"serviceaccounts meshcsi-system/meshcsi-sentinel", "roles meshcsi-system/meshcsi-sentinel",
		"clusterroles meshcsi-sentinel", "jobs meshcsi-system/meshcsi-sentinel", "configmaps meshcsi-system/meshcsi-sentinel-plan"} {
		if !adopted[o] {
			t.Errorf("%s not adopted; adopted %v", o, adopted)
		}
	}
	// Foreign look-alikes and Helm's hook objects are untouched.
	for _, f := range []struct{ kind, ns, name string }{
		{"DaemonSet", "other-ns", "meshcsi-driver"}, {"ServiceAccount", sentineltest.NS, "meshcsi-2-driver"},
		{"Service", sentineltest.NS, "other-driver-metrics"}, {"ClusterRole", "", "meshcsi-driver-elsewhere"},
		{"ClusterRoleBinding", "", "unlabelled"}, {"ConfigMap", sentineltest.NS, "meshcsi-handoff"}, {"ConfigMap", sentineltest.NS, "meshcsi-install"},
		{"ServiceAccount", sentineltest.NS, "meshcsi-upgrade"}, {"Role", sentineltest.NS, "meshcsi-upgrade"}, {"RoleBinding", sentineltest.NS, "meshcsi-upgrade"},
	} {
		k, _ := plan.KindByName(f.kind)
		if !h.c.Exists(k, f.ns, f.name) {
			t.Errorf("foreign %s %s/%s was deleted", f.kind, f.ns, f.name)
		}
	}
	if h.logs.FilterMessage("sentinel finished").Len() != 1 {
		t.Fatal("no final summary line")
	}
}

func TestNotFoundAndReplacedTolerated(t *testing.T) {
	h := setup(t, clock.RealClock{}, 0)
	svc, _ := plan.KindByName("Service")
	sa, _ := plan.KindByName("ServiceAccount")
	// The Service is already gone; the driver ServiceAccount was replaced by a newer install.
	if err := h.c.Meta.Tracker().Delete(svc.GVR, sentineltest.NS, "meshcsi-metrics"); err != nil {
		t.Fatal(err)
	}
	if err := h.c.Meta.Tracker().Delete(sa.GVR, sentineltest.NS, "meshcsi-driver"); err != nil {
		t.Fatal(err)
	}
	h.c.Add(t, sa, sentineltest.NS, "meshcsi-driver", "uid-sa-driver-NEW", sentineltest.Labels("driver"), nil)
	h.start(t)
	h.wait(t)
	if h.err != nil {
		t.Fatal(h.err)
	}
	if strings.Join(h.summary.Gone, ",") != "Service meshcsi-system/meshcsi-metrics" {
		t.Fatalf("gone = %v", h.summary.Gone)
	}
	if strings.Join(h.summary.Replaced, ",") != "ServiceAccount meshcsi-system/meshcsi-driver" {
		t.Fatalf("replaced = %v", h.summary.Replaced)
	}
	if !h.c.Exists(sa, sentineltest.NS, "meshcsi-driver") {
		t.Fatal("the newer install's ServiceAccount was deleted")
	}
}

func TestTimeoutDeletesNothing(t *testing.T) {
	fc := clocktesting.NewFakeClock(time.Now())
	h := setup(t, fc, time.Minute, blockingPod("team-a", "web"))
	h.start(t)
	h.waitLog(t, "waiting for 1 pods")
	fc.Step(2 * time.Minute)
	h.wait(t)
	if !errors.Is(h.err, run.ErrTimeout) || h.summary.Result != run.ResultTimedOut {
		t.Fatalf("Run() = %v, %v; want ErrTimeout", h.summary.Result, h.err)
	}
	if len(h.summary.Blockers) != 1 || h.summary.Blockers[0].Name != "web" {
		t.Fatalf("blockers = %+v", h.summary.Blockers)
	}
	if muts := h.c.Mutations(); len(muts) != 0 {
		t.Fatalf("mutated on timeout: %v", muts)
	}
	found := false
	for len(h.recorder.Events) > 0 {
		if strings.Contains(<-h.recorder.Events, report.ReasonTimedOut) {
			found = true
		}
	}
	if !found {
		t.Fatal("no TimedOut event")
	}
}

func TestStandDown(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(t *testing.T, h *harness)
	}{
		{"marker replaced", func(t *testing.T, h *harness) {
			ctx := context.Background()
			if err := h.c.Client.CoreV1().ConfigMaps(sentineltest.NS).Delete(ctx, h.cfg.InstallMarker, metav1.DeleteOptions{}); err != nil {
				t.Fatal(err)
			}
			cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: sentineltest.NS, Name: h.cfg.InstallMarker, UID: "uid-marker-2"}}
			if _, err := h.c.Client.CoreV1().ConfigMaps(sentineltest.NS).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
		}},
		{"marker updated in place with a new UID", func(t *testing.T, h *harness) {
			cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: sentineltest.NS, Name: h.cfg.InstallMarker, UID: "uid-marker-3"}}
			if _, err := h.c.Client.CoreV1().ConfigMaps(sentineltest.NS).Update(context.Background(), cm, metav1.UpdateOptions{}); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := setup(t, clock.RealClock{}, 0, blockingPod("team-a", "web"))
			h.start(t)
			h.waitLog(t, "waiting for 1 pods")
			tt.mutate(t, h)
			h.wait(t)
			if h.err != nil || h.summary.Result != run.ResultStoodDown {
				t.Fatalf("Run() = %+v, %v; want stood down", h.summary, h.err)
			}
			want := []string{"delete configmaps meshcsi-system/meshcsi-sentinel-plan uid=uid-plan"}
			if got := h.c.Mutations(); strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Fatalf("mutations = %v, want only the plan deleted", got)
			}
		})
	}
}

func TestWaitsForDaemonSetPods(t *testing.T) {
	yes := true
	dsPod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: sentineltest.NS, Name: "meshcsi-driver-x", UID: "p1",
		OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "DaemonSet", Name: "meshcsi-driver", UID: "uid-ds", Controller: &yes}}}}
	h := setup(t, clock.RealClock{}, 0, dsPod)
	h.start(t)
	// The report proves it is waiting for the DaemonSet's pod, after the delete.
	h.waitLog(t, "waiting for 1 pods of DaemonSet")
	if got := deletes(h.c.Mutations()); len(got) != 2 {
		t.Fatalf("went on while the DaemonSet's pods remain: %v", got)
	}
	if err := h.c.Client.CoreV1().Pods(sentineltest.NS).Delete(context.Background(), dsPod.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	h.wait(t)
	if h.err != nil || len(deletes(h.c.Mutations())) != 9 {
		t.Fatalf("Run() = %v; deletes %v", h.err, deletes(h.c.Mutations()))
	}
}

func TestTimeoutWhileWaitingForDaemonSetPods(t *testing.T) {
	yes := true
	dsPod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: sentineltest.NS, Name: "meshcsi-driver-x", UID: "p1",
		OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "DaemonSet", Name: "meshcsi-driver", UID: "uid-ds", Controller: &yes}}}}
	fc := clocktesting.NewFakeClock(time.Now())
	h := setup(t, fc, time.Minute, dsPod)
	h.start(t)
	h.waitFor(t, "DaemonSet delete", func() bool { return len(deletes(h.c.Mutations())) >= 2 })
	// The wait for its pods has armed its deadline timer (the fake clock's
	// waiters: the report ticker and the deadline).
	h.waitFor(t, "timers of the wait for the DaemonSet's pods", func() bool { return fc.HasWaiters() })
	fc.Step(2 * time.Minute)
	h.wait(t)
	if !errors.Is(h.err, run.ErrTimeout) || !strings.Contains(h.summary.Message, "pods of") || strings.Contains(h.summary.Message, "0 pods still using") {
		t.Fatalf("Run() = %v, message %q; want a timeout naming the DaemonSet's pods", h.err, h.summary.Message)
	}
	if got := deletes(h.c.Mutations()); len(got) != 2 {
		t.Fatalf("deleted more after the timeout: %v", got)
	}
}

func TestNoPlan(t *testing.T) {
	c := sentineltest.New(t)
	s, err := run.New(sentineltest.Config(), run.Deps{Clients: c.Clients(), Clock: clock.RealClock{}, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Run(context.Background()); !errors.Is(err, plan.ErrNoPlan) {
		t.Fatalf("Run() = %v, want ErrNoPlan", err)
	}
}

func TestNewValidates(t *testing.T) {
	c := sentineltest.New(t)
	bad := sentineltest.Config()
	bad.Namespace = ""
	if _, err := run.New(bad, run.Deps{Clients: c.Clients(), Clock: clock.RealClock{}, Logger: zap.NewNop()}); !errors.Is(err, config.ErrInvalid) {
		t.Fatalf("New() = %v, want ErrInvalid", err)
	}
	if _, err := run.New(sentineltest.Config(), run.Deps{Clients: kube.Clients{Core: c.Client.CoreV1()}}); err == nil {
		t.Fatal("New() accepted missing dependencies")
	}
}

// A CSIDriver the RBAC does not let the sentinel delete keeps giving pods
// volumes: the re-check proves nothing then, and deleting the DaemonSet could
// strand a pod. The sentinel must stop before the DaemonSet, loudly.
func TestRefusedCSIDriverDeleteStopsRemoval(t *testing.T) {
	h := setup(t, clock.RealClock{}, 0)
	h.c.Meta.PrependReactor("delete", "csidrivers", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewForbidden(schema.GroupResource{Group: "storage.k8s.io", Resource: "csidrivers"}, sentineltest.Driver, errors.New("RBAC"))
	})
	h.start(t)
	h.wait(t)
	if !errors.Is(h.err, run.ErrRefused) {
		t.Fatalf("Run() = %v; want ErrRefused", h.err)
	}
	want := []string{"delete csidrivers " + sentineltest.Driver + " uid=uid-csidriver"}
	if got := deletes(h.c.Mutations()); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("deletes = %v, want only the (refused) CSIDriver delete", got)
	}
	// An error exit still ends with the machine-readable summary.
	if h.summary.Result != run.ResultRefused || h.logs.FilterMessage("sentinel finished").Len() != 1 {
		t.Fatalf("summary result = %q, summary lines = %d; want %q and one line",
			h.summary.Result, h.logs.FilterMessage("sentinel finished").Len(), run.ResultRefused)
	}
	if ev := h.event(t, report.ReasonRefused); !strings.Contains(ev, "Warning") || !strings.Contains(ev, "CSIDriver "+sentineltest.Driver) || !strings.Contains(ev, "RBAC") {
		t.Fatalf("refusal event = %q", ev)
	}
}

// Any refused delete stops the removal (issue 13 finding 3): a DaemonSet
// delete an admission policy denies must not turn into a wait for its pods.
func TestRefusedDaemonSetDeleteStopsRemoval(t *testing.T) {
	h := setup(t, clock.RealClock{}, 0)
	h.c.Meta.PrependReactor("delete", "daemonsets", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewInvalid(schema.GroupKind{Group: "apps", Kind: "DaemonSet"}, "meshcsi-driver", nil)
	})
	h.start(t)
	h.wait(t)
	if !errors.Is(h.err, run.ErrRefused) || h.summary.Result != run.ResultRefused {
		t.Fatalf("Run() = %v, %q; want ErrRefused", h.err, h.summary.Result)
	}
	if got := deletes(h.c.Mutations()); len(got) != 2 {
		t.Fatalf("deletes = %v, want the CSIDriver and the refused DaemonSet only", got)
	}
	if ev := h.event(t, report.ReasonRefused); !strings.Contains(ev, "DaemonSet meshcsi-system/meshcsi-driver") {
		t.Fatalf("refusal event = %q", ev)
	}
}

// A CSIDriver re-created after the hand-off (GitOps self-heal) must keep the
// DaemonSet, whatever the plan's UID says (issue 13 finding 1): the one
// recorded is "replaced", the new one is reported with its field manager,
// and the removal goes on only once it is gone.
func TestRecreatedCSIDriverKeepsDaemonSet(t *testing.T) {
	h := setup(t, clock.RealClock{}, 0, blockingPod("team-a", "web"))
	h.start(t)
	h.waitLog(t, "waiting for 1 pods")
	ctx := context.Background()
	csiKind, _ := plan.KindByName("CSIDriver")
	csiGVR := csiKind.GVR
	if err := h.c.Meta.Tracker().Delete(csiGVR, "", sentineltest.Driver); err != nil {
		t.Fatal(err)
	}
	if err := h.c.Client.StorageV1().CSIDrivers().Delete(ctx, sentineltest.Driver, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	h.c.Add(t, csiKind, "", sentineltest.Driver, "uid-csidriver-2", sentineltest.Labels("driver"), nil)
	recreated := &storagev1.CSIDriver{ObjectMeta: metav1.ObjectMeta{Name: sentineltest.Driver, UID: "uid-csidriver-2", Labels: map[string]string{"a": "b"}}}
	if _, err := h.c.Client.StorageV1().CSIDrivers().Create(ctx, recreated, metav1.CreateOptions{FieldManager: "argocd-controller"}); err != nil {
		t.Fatal(err)
	}
	if err := h.c.Client.CoreV1().Pods("team-a").Delete(ctx, "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	h.waitLog(t, "CSIDriver csi.meshcsi.io exists")
	if msg := h.logs.FilterMessageSnippet("CSIDriver csi.meshcsi.io exists").All()[0].Message; !strings.Contains(msg, "argocd-controller") {
		t.Fatalf("log does not name the field manager: %q", msg)
	}
	if ev := h.event(t, report.ReasonCSIDriverExists); !strings.Contains(ev, "Warning") || !strings.Contains(ev, "argocd-controller") {
		t.Fatalf("event = %q", ev)
	}
	if got := deletes(h.c.Mutations()); len(got) != 1 || !strings.Contains(got[0], "csidrivers") {
		t.Fatalf("deletes = %v; want only the (replaced) CSIDriver while one exists", got)
	}
	// Whoever re-created it stops; it is deleted: the removal goes on.
	if err := h.c.Client.StorageV1().CSIDrivers().Delete(ctx, sentineltest.Driver, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	h.wait(t)
	if h.err != nil || h.summary.Result != run.ResultDone {
		t.Fatalf("Run() = %+v, %v", h.summary, h.err)
	}
	if got := h.summary.Replaced; len(got) != 1 || got[0] != "CSIDriver "+sentineltest.Driver {
		t.Fatalf("replaced = %v", got)
	}
}

// checkFunc is a run.Check for tests.
type checkFunc func() []string

func (checkFunc) Name() string                                 { return "node mounts" }
func (f checkFunc) Blocking(context.Context) ([]string, error) { return f(), nil }

// A pre-delete check that blocks keeps the DaemonSet until it clears.
func TestPreDeleteCheckBlocksDaemonSet(t *testing.T) {
	var blocking atomic.Bool
	blocking.Store(true)
	check := checkFunc(func() []string {
		if blocking.Load() {
			return []string{"node worker-1: 2 published volumes"}
		}
		return nil
	})
	fc := clocktesting.NewFakeClock(time.Now())
	h := setupWithChecks(t, fc, 0, []run.Check{check})
	h.start(t)
	h.waitLog(t, "waiting for node mounts: node worker-1: 2 published volumes")
	if got := deletes(h.c.Mutations()); len(got) != 1 {
		t.Fatalf("deletes = %v; want only the CSIDriver while the check blocks", got)
	}
	blocking.Store(false)
	fc.Step(run.DefaultCheckInterval)
	h.wait(t)
	if h.err != nil || h.summary.Result != run.ResultDone {
		t.Fatalf("Run() = %+v, %v", h.summary, h.err)
	}
}

// event returns the first recorded Event with reason.
func (h *harness) event(t *testing.T, reason string) string {
	t.Helper()
	for {
		select {
		case ev := <-h.recorder.Events:
			if strings.Contains(ev, " "+reason+" ") {
				return ev
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no %s Event", reason)
			return ""
		}
	}
}

// The marker cache lags the API server; a re-install must be seen before a
// delete even when the cache has not caught up (here: its watch is frozen).
func TestStandDownBeforeDeleteWhenMarkerCacheLags(t *testing.T) {
	h := setup(t, clock.RealClock{}, 0)
	h.c.Client.PrependWatchReactor("configmaps", func(k8stesting.Action) (bool, watch.Interface, error) {
		return true, watch.NewFake(), nil
	})
	var lists atomic.Int32
	h.c.Client.PrependReactor("list", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
		// The second pod list is the fresh read after the caches synced:
		// re-install now, unseen by the frozen marker cache.
		if lists.Add(1) == 2 {
			cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: sentineltest.NS, Name: h.cfg.InstallMarker, UID: "uid-marker-2"}}
			if err := h.c.Client.Tracker().Update(schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}, cm, sentineltest.NS); err != nil {
				t.Error(err)
			}
		}
		return false, nil, nil
	})
	h.start(t)
	h.wait(t)
	if h.err != nil || h.summary.Result != run.ResultStoodDown {
		t.Fatalf("Run() = %+v, %v; want stood down", h.summary, h.err)
	}
	want := []string{"delete configmaps meshcsi-system/meshcsi-sentinel-plan uid=uid-plan"}
	if got := h.c.Mutations(); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("mutations = %v, want only the plan deleted", got)
	}
}
