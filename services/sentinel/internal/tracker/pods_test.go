package tracker

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes/fake"
)

const (
	driver    = "csi.meshcsi.io"
	installNS = "ns"
)

// pod builds a pod in ns with one volume per driver given.
func pod(ns, name string, drivers ...string) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID(ns + "-" + name),
			Labels: map[string]string{"big": strings.Repeat("x", 100)}},
		Spec:   corev1.PodSpec{NodeName: "node-1", Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning},
	}
	for i, d := range drivers {
		p.Spec.Volumes = append(p.Spec.Volumes, corev1.Volume{Name: "v" + string(rune('a'+i)),
			VolumeSource: corev1.VolumeSource{CSI: &corev1.CSIVolumeSource{Driver: d}}})
	}
	p.Spec.Volumes = append(p.Spec.Volumes, corev1.Volume{Name: "tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}})
	return p
}

func terminating(p *corev1.Pod, at time.Time) *corev1.Pod {
	ts := metav1.NewTime(at)
	p.DeletionTimestamp = &ts
	p.Finalizers = []string{"example.com/hold"}
	return p
}

func owned(p *corev1.Pod, kind, name, uid string) *corev1.Pod {
	yes := true
	p.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: kind, Name: name, UID: types.UID(uid), Controller: &yes}}
	return p
}

func startTracker(t *testing.T, client *fake.Clientset) *Pods {
	t.Helper()
	tr, err := NewPods(client.CoreV1(), driver, installNS)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() { cancel(); tr.Shutdown() })
	tr.Start(ctx)
	if !tr.WaitForSync(ctx) {
		t.Fatal("cache did not sync")
	}
	return tr
}

func names(bs []Blocker) []string {
	out := make([]string, len(bs))
	for i, b := range bs {
		out[i] = b.Namespace + "/" + b.Name
	}
	return out
}

func TestBlockersCountedRight(t *testing.T) {
	since := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name string
		pods []*corev1.Pod
		want []string
	}{
		{"none", nil, []string{}},
		{"one volume", []*corev1.Pod{pod("a", "p", driver)}, []string{"a/p"}},
		{"multiple volumes count once", []*corev1.Pod{pod("a", "p", driver, driver, "other.csi")}, []string{"a/p"}},
		{"other drivers ignored", []*corev1.Pod{pod("a", "p", "other.csi"), pod("a", "q")}, []string{}},
		{"terminating still blocks", []*corev1.Pod{terminating(pod("a", "p", driver), since)}, []string{"a/p"}},
		{"any namespace", []*corev1.Pod{pod("kube-system", "x", driver), pod("team-b", "y", driver), pod("default", "z", driver)},
			[]string{"default/z", "kube-system/x", "team-b/y"}},
		{"finished pods still block until gone", []*corev1.Pod{func() *corev1.Pod { p := pod("a", "done", driver); p.Status.Phase = corev1.PodSucceeded; return p }()}, []string{"a/done"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client := fake.NewClientset()
			for _, p := range tt.pods {
				if _, err := client.CoreV1().Pods(p.Namespace).Create(context.Background(), p, metav1.CreateOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			tr := startTracker(t, client)
			if got := names(tr.Blockers()); strings.Join(got, ",") != strings.Join(tt.want, ",") {
				t.Fatalf("Blockers() = %v, want %v", got, tt.want)
			}
			fresh, err := FreshBlockers(context.Background(), client.CoreV1(), driver)
			if err != nil {
				t.Fatal(err)
			}
			if got := names(fresh); strings.Join(got, ",") != strings.Join(tt.want, ",") {
				t.Fatalf("FreshBlockers() = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestTrackerFollowsEvents(t *testing.T) {
	ctx := context.Background()
	client := fake.NewClientset(pod("a", "p", driver))
	tr := startTracker(t, client)
	changed := tr.Changed()
	if _, err := client.CoreV1().Pods("b").Create(ctx, owned(pod("b", "q", driver), "ReplicaSet", "web-1", "rs1"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitClosed(t, changed)
	waitFor(t, func() bool { return len(tr.Blockers()) == 2 })
	bl := tr.Blockers()[1]
	if bl.OwnerKind != "ReplicaSet" || bl.OwnerName != "web-1" || bl.Node != "node-1" || bl.Phase != "Running" {
		t.Fatalf("blocker = %+v", bl)
	}
	// Marking it Terminating keeps it blocking; deleting it releases it.
	p, _ := client.CoreV1().Pods("a").Get(ctx, "p", metav1.GetOptions{})
	p = terminating(p.DeepCopy(), time.Now())
	if _, err := client.CoreV1().Pods("a").Update(ctx, p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return tr.Blockers()[0].TerminatingSince != nil })
	if !strings.Contains(tr.Blockers()[0].String(), "terminating since") {
		t.Fatalf("String() = %q", tr.Blockers()[0].String())
	}
	for _, k := range [][2]string{{"a", "p"}, {"b", "q"}} {
		if err := client.CoreV1().Pods(k[0]).Delete(ctx, k[1], metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, func() bool { return len(tr.Blockers()) == 0 })
}

// Only pods that use the driver, and the DaemonSet pods of the install
// namespace, reach the store: from the initial list and from the watch.
func TestStoreHoldsOnlyPodsThatMatter(t *testing.T) {
	ctx := context.Background()
	client := fake.NewClientset(pod("a", "user", driver), pod("a", "other"), pod("a", "other-driver", "other.csi"),
		owned(pod(installNS, "driver-x"), "DaemonSet", "meshcsi-driver", "ds-uid"),
		owned(pod("a", "foreign-ds"), "DaemonSet", "agent", "ds-2"))
	tr := startTracker(t, client)
	if n := tr.Cached(); n != 2 {
		t.Fatalf("Cached() = %d after the list, want 2 (the user and the driver's pod)", n)
	}
	changed := tr.Changed()
	for _, p := range []*corev1.Pod{pod("b", "other"), pod("b", "user", driver)} {
		if _, err := client.CoreV1().Pods(p.Namespace).Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	waitClosed(t, changed)
	waitFor(t, func() bool { return len(tr.Blockers()) == 2 })
	if n := tr.Cached(); n != 3 {
		t.Fatalf("Cached() = %d after the watch, want 3", n)
	}
}

// A driver pod the store holds is followed to its end even when it stops
// qualifying (orphaned from its DaemonSet): no stale entry keeps the wait for
// the DaemonSet's pods going.
func TestStoredPodFollowedToItsEnd(t *testing.T) {
	ctx := context.Background()
	client := fake.NewClientset(owned(pod(installNS, "driver-x"), "DaemonSet", "meshcsi-driver", "ds-uid"))
	tr := startTracker(t, client)
	if n := tr.ControlledBy("ds-uid"); n != 1 {
		t.Fatalf("ControlledBy() = %d, want 1", n)
	}
	p, err := client.CoreV1().Pods(installNS).Get(ctx, "driver-x", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p = p.DeepCopy()
	p.OwnerReferences = nil
	if _, err := client.CoreV1().Pods(installNS).Update(ctx, p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return tr.ControlledBy("ds-uid") == 0 })
	if err := client.CoreV1().Pods(installNS).Delete(ctx, "driver-x", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return tr.Cached() == 0 })
}

func TestControlledBy(t *testing.T) {
	client := fake.NewClientset(
		owned(pod("ns", "driver-1"), "DaemonSet", "meshcsi", "ds-uid"),
		owned(pod("ns", "driver-2"), "DaemonSet", "meshcsi", "ds-uid"),
		owned(pod("ns", "other"), "DaemonSet", "other", "other-uid"),
	)
	tr := startTracker(t, client)
	if n := tr.ControlledBy("ds-uid"); n != 2 {
		t.Fatalf("ControlledBy() = %d, want 2", n)
	}
	if err := client.CoreV1().Pods("ns").Delete(context.Background(), "driver-1", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return tr.ControlledBy("ds-uid") == 1 })
}

func TestStripKeepsOnlyUsedFields(t *testing.T) {
	in := owned(terminating(pod("a", "p", driver, "other.csi"), time.Now()), "StatefulSet", "db", "ss1")
	in.Spec.Containers = append(in.Spec.Containers, corev1.Container{Name: "big", Env: []corev1.EnvVar{{Name: "X", Value: strings.Repeat("y", 1000)}}})
	out, err := Strip(driver)(in)
	if err != nil {
		t.Fatal(err)
	}
	p := out.(*PodInfo)
	if len(p.Labels) != 0 || len(p.Finalizers) != 0 || len(p.ManagedFields) != 0 {
		t.Fatalf("kept unused fields: %+v", p)
	}
	if !p.Blocking || p.DeletionTimestamp == nil || p.Node != "node-1" || p.Phase != corev1.PodRunning || p.OwnerReferences[0].Name != "db" || p.UID != in.UID {
		t.Fatalf("lost used fields: %+v", p)
	}
	again, _ := Strip(driver)(p)
	if again.(*PodInfo) != p {
		t.Fatal("transform is not idempotent")
	}
	// A pod without the driver keeps neither node nor phase.
	other, _ := Strip(driver)(pod("a", "q", "other.csi"))
	if op := other.(*PodInfo); op.Blocking || op.Node != "" || op.Phase != "" {
		t.Fatalf("non-blocking pod kept spec: %+v", op)
	}
	if b := p.blocker(); b.OwnerKind != "StatefulSet" || b.TerminatingSince == nil {
		t.Fatalf("blockerOf = %+v", b)
	}
}

func TestMarker(t *testing.T) {
	ctx := context.Background()
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "r-install", UID: "m1"}}
	client := fake.NewClientset(cm)
	m, err := NewMarker(client.CoreV1(), "ns", "r-install")
	if err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithCancel(ctx)
	defer func() { cancel(); m.Shutdown() }()
	m.Start(cctx)
	if !m.WaitForSync(cctx) {
		t.Fatal("no sync")
	}
	if m.UID() != "m1" || m.Reinstalled("m1") {
		t.Fatalf("UID() = %q", m.UID())
	}
	if err := client.CoreV1().ConfigMaps("ns").Delete(ctx, "r-install", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return m.UID() == "" })
	if m.Reinstalled("m1") {
		t.Fatal("an absent marker is not a re-install")
	}
	changed := m.Changed()
	cm2 := cm.DeepCopy()
	cm2.UID, cm2.ResourceVersion = "m2", ""
	if _, err := client.CoreV1().ConfigMaps("ns").Create(ctx, cm2, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitClosed(t, changed)
	if !m.Reinstalled("m1") || !m.Reinstalled("") {
		t.Fatal("a marker with a new UID is a re-install")
	}
}

func waitClosed(t *testing.T, ch <-chan struct{}) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(5 * time.Second):
		t.Fatal("no change notification")
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), 10*time.Millisecond, 5*time.Second, true,
		func(context.Context) (bool, error) { return cond(), nil })
	if err != nil {
		t.Fatalf("condition not met within 5s: %v", err)
	}
}
