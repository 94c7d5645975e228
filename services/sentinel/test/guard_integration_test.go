//go:build integration

package test

// Issue 13, findings 5, 6, 7, 10 and 11: what the sentinel and the hand-off
// must hold against a real API server. The admission policies and the
// suspended sentinel Job are rendered from the chart itself (helm template
// --show-only), so these tests check the chart's objects, not copies.

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"sigs.k8s.io/yaml"
)

// renderChart renders the named templates of charts/meshcsi for r with the
// helm of `make helm` (MESHCSI_HELM); a "--flag", "value" pair among them is
// passed to helm.
func renderChart(t *testing.T, r *release, templates ...string) []string {
	t.Helper()
	bin := os.Getenv("MESHCSI_HELM")
	if bin == "" {
		t.Fatal("MESHCSI_HELM is not set: run these tests with `make test-sentinel-integration` (it builds helm)")
	}
	args := []string{"template", r.name, "../../../charts/meshcsi", "--namespace", r.ns, "--kube-version", "1.33.13",
		"--set", "fullnameOverride=" + r.name, "--set", "driverName=" + r.driver}
	for i := 0; i < len(templates); i++ {
		if strings.HasPrefix(templates[i], "--") {
			args = append(args, templates[i], templates[i+1])
			i++
			continue
		}
		args = append(args, "--show-only", "templates/"+templates[i])
	}
	out, err := exec.Command(bin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("helm %v: %v\n%s", args, err, out)
	}
	var docs []string
	for _, d := range strings.Split(string(out), "\n---") {
		if strings.Contains(d, "kind:") {
			docs = append(docs, d)
		}
	}
	return docs
}

// applyRendered creates the rendered objects (the kinds the guards and the
// sentinel Job use) as the admin, with the labels and annotations Helm gives.
func applyRendered(t *testing.T, docs []string) {
	t.Helper()
	ctx := context.Background()
	for _, d := range docs {
		var tm metav1.TypeMeta
		must(t, yaml.Unmarshal([]byte(d), &tm))
		var err error
		switch tm.Kind {
		case "ConfigMap":
			var o corev1.ConfigMap
			must(t, yaml.UnmarshalStrict([]byte(d), &o))
			_, err = admin.CoreV1().ConfigMaps(o.Namespace).Create(ctx, &o, metav1.CreateOptions{})
		case "ValidatingAdmissionPolicy":
			var o admissionv1.ValidatingAdmissionPolicy
			must(t, yaml.UnmarshalStrict([]byte(d), &o))
			_, err = admin.AdmissionregistrationV1().ValidatingAdmissionPolicies().Create(ctx, &o, metav1.CreateOptions{})
		case "ValidatingAdmissionPolicyBinding":
			var o admissionv1.ValidatingAdmissionPolicyBinding
			must(t, yaml.UnmarshalStrict([]byte(d), &o))
			_, err = admin.AdmissionregistrationV1().ValidatingAdmissionPolicyBindings().Create(ctx, &o, metav1.CreateOptions{})
		case "Job":
			var o batchv1.Job
			must(t, yaml.UnmarshalStrict([]byte(d), &o))
			_, err = admin.BatchV1().Jobs(o.Namespace).Create(ctx, &o, metav1.CreateOptions{})
		case "CustomResourceDefinition":
			var o unstructured.Unstructured
			must(t, yaml.Unmarshal([]byte(d), &o.Object))
			_, err = dyn(t).Resource(crdGVR).Create(ctx, &o, metav1.CreateOptions{})
			must(t, err)
			crdEstablished(t, o.GetName())
		default:
			t.Fatalf("applyRendered: unexpected kind %s", tm.Kind)
		}
		must(t, err)
	}
	// Policies of other tests' releases may match these pods: each test uses
	// its own driver name, so they never do.
}

var crdGVR = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// dyn is a dynamic admin client (the test module has no typed client for
// CustomResourceDefinitions or the release's RemovalGuard kind).
func dyn(t *testing.T) dynamic.Interface {
	t.Helper()
	d, err := dynamic.NewForConfig(restConfig())
	must(t, err)
	return d
}

// crdEstablished waits until the CustomResourceDefinition name is served.
func crdEstablished(t *testing.T, name string) {
	t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		o, err := dyn(t).Resource(crdGVR).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		conds, _, _ := unstructured.NestedSlice(o.Object, "status", "conditions")
		for _, c := range conds {
			if m, ok := c.(map[string]any); ok && m["type"] == "Established" && m["status"] == "True" {
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		t.Fatalf("CustomResourceDefinition %s not established: %v", name, err)
	}
}

// guardGVR is the release's RemovalGuard resource (the chart's group).
func guardGVR(r *release) schema.GroupVersionResource {
	return schema.GroupVersionResource{Group: r.name + "." + r.ns + ".meshcsi.io", Version: "v1", Resource: "removalguards"}
}

// driverPod creates a pod that uses driver on node-1 (or only names it).
func driverUser(ns, name, driver string) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: corev1.PodSpec{NodeName: nodeName, Containers: []corev1.Container{{Name: "c", Image: "pause"}},
			Volumes: []corev1.Volume{{Name: "sock", VolumeSource: corev1.VolumeSource{CSI: &corev1.CSIVolumeSource{Driver: driver}}}}}}
}

// createRefused tries to create pod as a dry run and returns the error.
func createDryRun(pod *corev1.Pod) error {
	_, err := admin.CoreV1().Pods(pod.Namespace).Create(context.Background(), pod, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
	return err
}

// waitAdmission waits until check(err of a dry-run create) holds: the API
// server's policy informers take a moment to pick up a change, and a new
// paramKind up to 30 s (its discovery cache is reset every 30 s).
func waitAdmission(t *testing.T, pod *corev1.Pod, what string, check func(error) bool) error {
	t.Helper()
	var last error
	err := wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, 45*time.Second, true, func(context.Context) (bool, error) {
		last = createDryRun(pod)
		return check(last), nil
	})
	if err != nil {
		t.Fatalf("%s: last answer %v", what, last)
	}
	return last
}

// TestIntegrationRemovalGuard (finding 7): from the hand-off on, the API
// server refuses new pods that use the driver, with "meshcsi is being
// removed: ..."; pods without it are admitted; a re-install (the chart's
// "removing: false" applied again) lifts it; the sentinel deletes the policy,
// its binding and the parameter by name at the end.
func TestIntegrationRemovalGuard(t *testing.T) {
	ctx := context.Background()
	r := install(t, "guard", "guard.csi.meshcsi.io")
	applyRendered(t, renderChart(t, r, "sentinel-removal-guard.yaml"))
	ensureNamespace(t, "team-g")
	user := driverUser("team-g", "late", r.driver)
	// Installed, not being removed: pods that use the driver are admitted.
	if err := createDryRun(user); err != nil {
		t.Fatalf("installed: a pod using the driver was refused: %v", err)
	}
	handoff(t, r)
	err := waitAdmission(t, user, "after the hand-off, a pod using the driver is refused", func(err error) bool {
		return err != nil && strings.Contains(err.Error(), "meshcsi is being removed:")
	})
	t.Logf("refused: %v", err)
	other := driverUser("team-g", "other", "other.csi.example.com")
	if err := createDryRun(other); err != nil {
		t.Fatalf("a pod using another driver was refused: %v", err)
	}
	// A re-install lifts it: the chart's pre-install hook (rendered now that
	// the kind exists) replaces the parameter, as Helm does for a hook with
	// before-hook-creation (delete, then create).
	rendered := renderChart(t, r, "sentinel-removal-guard.yaml", "--api-versions", guardGVR(r).Group+"/v1/RemovalGuard")
	var param unstructured.Unstructured
	for _, d := range rendered {
		if strings.Contains(d, "\nkind: RemovalGuard\n") {
			must(t, yaml.Unmarshal([]byte(d), &param.Object))
		}
	}
	if a := param.GetAnnotations(); !strings.Contains(a["helm.sh/hook"], "pre-install") || a["helm.sh/hook-delete-policy"] != "before-hook-creation" {
		t.Fatalf("a re-install does not render the parameter as a pre-install hook replacing the old one: %v", a)
	}
	if removing, _, _ := unstructured.NestedBool(param.Object, "spec", "removing"); removing {
		t.Fatal("the re-install's parameter says removing: true")
	}
	ri := dyn(t).Resource(guardGVR(r)).Namespace(r.ns)
	must(t, ri.Delete(ctx, param.GetName(), metav1.DeleteOptions{}))
	_, err = ri.Create(ctx, &param, metav1.CreateOptions{})
	must(t, err)
	_ = waitAdmission(t, user, "after a re-install, a pod using the driver is admitted", func(err error) bool { return err == nil })
	// Uninstalled again: raised again; the sentinel runs and removes it last.
	handoff(t, r)
	_ = waitAdmission(t, user, "after the second hand-off, refused again", func(err error) bool {
		return err != nil && strings.Contains(err.Error(), "meshcsi is being removed:")
	})
	helmDeletes(t, r)
	s := start(t, r, "run")
	if code := s.wait(t, 60*time.Second); code != 0 {
		t.Fatalf("run exit %d", code)
	}
	for _, gone := range []func() error{
		func() error {
			_, err := admin.AdmissionregistrationV1().ValidatingAdmissionPolicies().Get(ctx, r.name+"-removal-guard", metav1.GetOptions{})
			return err
		},
		func() error {
			_, err := admin.AdmissionregistrationV1().ValidatingAdmissionPolicyBindings().Get(ctx, r.name+"-removal-guard", metav1.GetOptions{})
			return err
		},
		func() error {
			_, err := dyn(t).Resource(crdGVR).Get(ctx, "removalguards."+guardGVR(r).Group, metav1.GetOptions{})
			return err
		},
	} {
		if err := gone(); !apierrors.IsNotFound(err) {
			t.Errorf("removal guard object left after the sentinel finished: %v\n%s", err, s.output())
		}
	}
}

// TestIntegrationRemovalGuardAfterRemovalCycle (finding 7, on one API server
// process): the guard holds not only the first time the API server sees its
// objects but also after a full removal cycle (the sentinel deleted policy,
// binding and parameter) and an install that creates them again. With a
// built-in kind (ConfigMap) as paramKind, the API server's param informer
// for it is stopped for good once no binding names that kind
// (kubernetes#130887, #133827), and the second hand-off's pod was admitted.
func TestIntegrationRemovalGuardAfterRemovalCycle(t *testing.T) {
	ctx := context.Background()
	ensureNamespace(t, "team-c")
	for cycle := 1; cycle <= 2; cycle++ {
		r := install(t, "cycle", "cycle.csi.meshcsi.io")
		applyRendered(t, renderChart(t, r, "sentinel-removal-guard.yaml"))
		user := driverUser("team-c", "late", r.driver)
		if err := createDryRun(user); err != nil {
			t.Fatalf("cycle %d, installed: a pod using the driver was refused: %v", cycle, err)
		}
		handoff(t, r)
		err := waitAdmission(t, user, fmt.Sprintf("cycle %d: after the hand-off, a pod using the driver is refused", cycle), func(err error) bool {
			return err != nil && strings.Contains(err.Error(), "meshcsi is being removed:")
		})
		t.Logf("cycle %d: refused: %v", cycle, err)
		// A real create too, not only the dry run.
		if _, err := admin.CoreV1().Pods(user.Namespace).Create(ctx, user, metav1.CreateOptions{}); err == nil || !strings.Contains(err.Error(), "meshcsi is being removed:") {
			t.Fatalf("cycle %d: create of a pod using the driver during removal: %v", cycle, err)
		}
		helmDeletes(t, r)
		s := start(t, r, "run")
		if code := s.wait(t, 90*time.Second); code != 0 {
			t.Fatalf("cycle %d: run exit %d\n%s", cycle, code, s.output())
		}
		releaseGone(t, r, 60*time.Second)
		// The guard's kind is gone too (its deletion takes the parameter).
		if err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
			_, err := dyn(t).Resource(crdGVR).Get(ctx, "removalguards."+guardGVR(r).Group, metav1.GetOptions{})
			return apierrors.IsNotFound(err), nil
		}); err != nil {
			t.Fatalf("cycle %d: the removal guard's CustomResourceDefinition is left after removal", cycle)
		}
		// Removed: nothing of the guard is left, pods are admitted again.
		_ = waitAdmission(t, user, fmt.Sprintf("cycle %d: after removal, a pod using the driver is admitted", cycle), func(err error) bool { return err == nil })
	}
}

// TestIntegrationNamespaceGuard (finding 10): the install namespace cannot be
// deleted while the driver is installed (the message names `helm uninstall`
// and the override); the annotation overrides it; the sentinel removes the
// guard with the rest, after which the namespace can be deleted.
func TestIntegrationNamespaceGuard(t *testing.T) {
	ctx := context.Background()
	r := install(t, "nsguard", "nsguard.csi.meshcsi.io")
	applyRendered(t, renderChart(t, r, "sentinel-namespace-guard.yaml"))
	var err error
	werr := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		err = admin.CoreV1().Namespaces().Delete(ctx, r.ns, metav1.DeleteOptions{DryRun: []string{metav1.DryRunAll}})
		return err != nil, nil
	})
	if werr != nil {
		t.Fatalf("deleting the install namespace was not refused: %v", err)
	}
	for _, want := range []string{"helm uninstall nsguard -n nsguard-system", "meshcsi.io/allow-namespace-deletion=true"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("refusal %q does not name %q", err, want)
		}
	}
	// Another namespace is not guarded.
	ensureNamespace(t, "nsguard-other")
	must(t, admin.CoreV1().Namespaces().Delete(ctx, "nsguard-other", metav1.DeleteOptions{DryRun: []string{metav1.DryRunAll}}))
	// The override.
	_, err = admin.CoreV1().Namespaces().Patch(ctx, r.ns, types.MergePatchType,
		[]byte(`{"metadata":{"annotations":{"meshcsi.io/allow-namespace-deletion":"true"}}}`), metav1.PatchOptions{})
	must(t, err)
	must(t, admin.CoreV1().Namespaces().Delete(ctx, r.ns, metav1.DeleteOptions{DryRun: []string{metav1.DryRunAll}}))
	_, err = admin.CoreV1().Namespaces().Patch(ctx, r.ns, types.JSONPatchType,
		[]byte(`[{"op":"remove","path":"/metadata/annotations/meshcsi.io~1allow-namespace-deletion"}]`), metav1.PatchOptions{})
	must(t, err)
	handoff(t, r)
	helmDeletes(t, r)
	s := start(t, r, "run")
	if code := s.wait(t, 60*time.Second); code != 0 {
		t.Fatalf("run exit %d", code)
	}
	for _, name := range []string{"policy", "binding"} {
		var gerr error
		if name == "policy" {
			_, gerr = admin.AdmissionregistrationV1().ValidatingAdmissionPolicies().Get(ctx, r.name+"-namespace-guard", metav1.GetOptions{})
		} else {
			_, gerr = admin.AdmissionregistrationV1().ValidatingAdmissionPolicyBindings().Get(ctx, r.name+"-namespace-guard", metav1.GetOptions{})
		}
		if !apierrors.IsNotFound(gerr) {
			t.Errorf("namespace guard %s left after the sentinel finished: %v\n%s", name, gerr, s.output())
		}
	}
	werr = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		err = admin.CoreV1().Namespaces().Delete(ctx, r.ns, metav1.DeleteOptions{DryRun: []string{metav1.DryRunAll}})
		return err == nil, nil
	})
	if werr != nil {
		t.Fatalf("the install namespace is still guarded after removal: %v", err)
	}
}

// fakeDriver is a driver pod of r's DaemonSet on node-1 (no kubelet runs:
// the test sets its status), whose /metrics the test serves on a local,
// non-loopback address, so the API server's pod proxy reaches it.
type fakeDriver struct {
	published atomic.Int64
	// unknown: the driver could not read its mount table at start.
	unknown atomic.Bool
	pod     string
}

func startFakeDriver(t *testing.T, r *release) *fakeDriver {
	t.Helper()
	ctx := context.Background()
	ip := localIP(t)
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	must(t, err)
	fd := &fakeDriver{pod: r.name + "-driver-fake"}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		known := 1
		if fd.unknown.Load() {
			known = 0
		}
		fmt.Fprintf(w, "# TYPE meshcsi_published_volumes_known gauge\nmeshcsi_published_volumes_known %d\n", known)
		fmt.Fprintf(w, "# HELP meshcsi_published_volumes Volumes currently bind-mounted into pods, by source.\n# TYPE meshcsi_published_volumes gauge\nmeshcsi_published_volumes{source=\"a\"} %d\nmeshcsi_published_volumes{source=\"b\"} 0\n", fd.published.Load())
	}), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	// The DaemonSet controller must not replace the test's pod.
	_, err = admin.AppsV1().DaemonSets(r.ns).Patch(ctx, r.name+"-driver", types.MergePatchType,
		[]byte(`{"spec":{"updateStrategy":{"type":"OnDelete","rollingUpdate":null}}}`), metav1.PatchOptions{})
	must(t, err)
	ds, err := admin.AppsV1().DaemonSets(r.ns).Get(ctx, r.name+"-driver", metav1.GetOptions{})
	must(t, err)
	port := ln.Addr().(*net.TCPAddr).Port
	ensureNamespace(t, r.ns)
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: fd.pod, Namespace: r.ns, Labels: ds.Spec.Selector.MatchLabels,
		OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(ds, appsv1.SchemeGroupVersion.WithKind("DaemonSet"))}},
		Spec: corev1.PodSpec{NodeName: nodeName, Tolerations: []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
			Containers: []corev1.Container{{Name: "driver", Image: "meshcsi/driver:test",
				Ports: []corev1.ContainerPort{{Name: "http-metrics", ContainerPort: int32(port)}}}}}}
	created, err := admin.CoreV1().Pods(r.ns).Create(ctx, pod, metav1.CreateOptions{})
	must(t, err)
	created.Status = corev1.PodStatus{Phase: corev1.PodRunning, PodIP: ip, PodIPs: []corev1.PodIP{{IP: ip}},
		Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}}
	_, err = admin.CoreV1().Pods(r.ns).UpdateStatus(ctx, created, metav1.UpdateOptions{})
	must(t, err)
	t.Cleanup(func() { deletePod(t, r.ns, fd.pod) })
	return fd
}

// localIP is a non-loopback IPv4 address of this machine: the API server
// refuses to proxy to loopback addresses.
func localIP(t *testing.T) string {
	t.Helper()
	addrs, err := net.InterfaceAddrs()
	must(t, err)
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && n.IP.IsGlobalUnicast() {
			return n.IP.String()
		}
	}
	t.Fatal("no non-loopback IPv4 address to serve the fake driver's metrics on")
	return ""
}

// daemonSetGone force-deletes the fake driver pod once the DaemonSet is
// deleted (no kubelet would ever finish its graceful deletion) and reports
// whether that happened within timeout.
func daemonSetGone(t *testing.T, r *release, fd *fakeDriver, timeout time.Duration) bool {
	t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		_, err := admin.AppsV1().DaemonSets(r.ns).Get(ctx, r.name+"-driver", metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
	if err == nil {
		deletePod(t, r.ns, fd.pod)
	}
	return err == nil
}

// TestIntegrationMountWithoutPodBlocks (finding 5): no pod object uses the
// driver, but node-1's driver still holds a published volume (a force-deleted
// pod): the sentinel must not delete the DaemonSet; it names the node and the
// count while it waits, and goes on once the driver reports none.
func TestIntegrationMountWithoutPodBlocks(t *testing.T) {
	r := install(t, "mounts", "mounts.csi.meshcsi.io")
	fd := startFakeDriver(t, r)
	fd.published.Store(1)
	handoff(t, r)
	helmDeletes(t, r)
	s := start(t, r, "run")
	s.waitOutput(t, nodeName+": 1 published volumes", 30*time.Second)
	if daemonSetGone(t, r, fd, 3*time.Second) {
		t.Fatalf("the DaemonSet was deleted while node-1's driver held a volume:\n%s", s.output())
	}
	fd.published.Store(0)
	if !daemonSetGone(t, r, fd, 30*time.Second) {
		t.Fatalf("the DaemonSet was not deleted after the driver reported no volume:\n%s", s.output())
	}
	if code := s.wait(t, 60*time.Second); code != 0 {
		t.Fatalf("run exit %d", code)
	}
}

// TestIntegrationUnknownCountBlocks: node-1's driver could not read its
// mount table at start, so its 0 published volumes counts only what it
// published since: the sentinel must not take it for "no volume". It keeps
// the DaemonSet, names the node in its log and in an Event on its Job, and
// goes on once the driver's count is known (a restarted driver).
func TestIntegrationUnknownCountBlocks(t *testing.T) {
	ctx := context.Background()
	r := install(t, "unknown", "unknown.csi.meshcsi.io")
	fd := startFakeDriver(t, r)
	fd.unknown.Store(true)
	handoff(t, r)
	helmDeletes(t, r)
	s := start(t, r, "run")
	want := nodeName + ": driver pod " + fd.pod + ": its count of published volumes is unknown"
	s.waitOutput(t, want, 30*time.Second)
	if err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		evs, err := admin.CoreV1().Events(r.ns).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=" + r.name + "-sentinel"})
		if err != nil {
			return false, nil
		}
		for _, ev := range evs.Items {
			if strings.Contains(ev.Message, want) {
				return true, nil
			}
		}
		return false, nil
	}); err != nil {
		t.Errorf("no Event on the sentinel Job names %q", want)
	}
	if daemonSetGone(t, r, fd, 3*time.Second) {
		t.Fatalf("the DaemonSet was deleted while node-1's driver did not know its count:\n%s", s.output())
	}
	fd.unknown.Store(false)
	if !daemonSetGone(t, r, fd, 30*time.Second) {
		t.Fatalf("the DaemonSet was not deleted once the driver's count was known:\n%s", s.output())
	}
	if code := s.wait(t, 60*time.Second); code != 0 {
		t.Fatalf("run exit %d", code)
	}
}

// TestIntegrationMountTimeout (finding 5): --timeout covers the wait for
// published volumes: exit 2, the node and count in the message, nothing more
// deleted.
func TestIntegrationMountTimeout(t *testing.T) {
	r := install(t, "mountto", "mountto.csi.meshcsi.io")
	fd := startFakeDriver(t, r)
	fd.published.Store(2)
	handoff(t, r)
	helmDeletes(t, r)
	s := start(t, r, "run", "--timeout", "4s")
	if code := s.wait(t, 60*time.Second); code != 2 {
		t.Fatalf("run exit %d, want 2 (timeout):\n%s", code, s.output())
	}
	if !strings.Contains(s.output(), nodeName+": 2 published volumes") {
		t.Errorf("the timeout does not name the node and count:\n%s", s.output())
	}
	if _, err := admin.AppsV1().DaemonSets(r.ns).Get(context.Background(), r.name+"-driver", metav1.GetOptions{}); err != nil {
		t.Fatalf("DaemonSet deleted on timeout: %v", err)
	}
}

// TestIntegrationFinishedPodsStopBlocking (finding 6): a Succeeded and a
// Failed pod (CronJob history) block only while their node's driver still
// reports a published volume.
func TestIntegrationFinishedPodsStopBlocking(t *testing.T) {
	ctx := context.Background()
	r := install(t, "finished", "finished.csi.meshcsi.io")
	fd := startFakeDriver(t, r)
	fd.published.Store(1)
	for name, phase := range map[string]corev1.PodPhase{"done": corev1.PodSucceeded, "broke": corev1.PodFailed} {
		blockingPod(t, "team-f", name, r.driver, 1, false)
		p, err := admin.CoreV1().Pods("team-f").Get(ctx, name, metav1.GetOptions{})
		must(t, err)
		p.Status.Phase = phase
		_, err = admin.CoreV1().Pods("team-f").UpdateStatus(ctx, p, metav1.UpdateOptions{})
		must(t, err)
		t.Cleanup(func() { deletePod(t, "team-f", name) })
	}
	handoff(t, r)
	helmDeletes(t, r)
	s := start(t, r, "run")
	s.waitOutput(t, nodeName+": 1 published volumes", 30*time.Second)
	if daemonSetGone(t, r, fd, 3*time.Second) || !driverObjectsExist(t, r) {
		t.Fatalf("removal went on while node-1's driver held a volume of a finished pod:\n%s", s.output())
	}
	// The kubelet tore the finished pods' volumes down.
	fd.published.Store(0)
	if !daemonSetGone(t, r, fd, 30*time.Second) {
		t.Fatalf("finished pods still block after their node's driver reported no volume:\n%s", s.output())
	}
	if code := s.wait(t, 60*time.Second); code != 0 {
		t.Fatalf("run exit %d:\n%s", code, s.output())
	}
	// The finished pods themselves are the workloads' and stay.
	if _, err := admin.CoreV1().Pods("team-f").Get(ctx, "done", metav1.GetOptions{}); err != nil {
		t.Fatal(err)
	}
}

// TestIntegrationRelaunch (finding 11): the chart's suspended sentinel Job is
// resumed by the hand-off (the Job controller creates its pod); once it has
// failed (exit 2, as on a timeout), the hand-off says the one command that
// restarts removal, and that command creates the Job anew, running, with the
// recorded plan still in place.
func TestIntegrationRelaunch(t *testing.T) {
	ctx := context.Background()
	r := install(t, "relaunch", "relaunch.csi.meshcsi.io")
	// The chart's own Job replaces the stand-in install() made.
	jobs := admin.BatchV1().Jobs(r.ns)
	bg := metav1.DeletePropagationBackground
	must(t, jobs.Delete(ctx, r.name+"-sentinel", metav1.DeleteOptions{PropagationPolicy: &bg}))
	must(t, wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		_, err := jobs.Get(ctx, r.name+"-sentinel", metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	}))
	applyRendered(t, renderChart(t, r, "sentinel-job.yaml"))
	jobName := r.name + "-sentinel"
	job, err := admin.BatchV1().Jobs(r.ns).Get(ctx, jobName, metav1.GetOptions{})
	must(t, err)
	if job.Spec.Suspend == nil || !*job.Spec.Suspend {
		t.Fatal("the chart's sentinel Job is not suspended")
	}
	handoff(t, r)
	pod := waitJobPod(t, r, job.UID)
	// The pod exits 2 (timed out): podFailurePolicy fails the Job.
	pod.Status.Phase = corev1.PodFailed
	pod.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "sentinel", Image: "meshcsi/sentinel:test",
		State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 2, Reason: "Error"}}}}
	_, err = admin.CoreV1().Pods(r.ns).UpdateStatus(ctx, pod, metav1.UpdateOptions{})
	must(t, err)
	werr := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 60*time.Second, true, func(ctx context.Context) (bool, error) {
		j, err := admin.BatchV1().Jobs(r.ns).Get(ctx, jobName, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		for _, c := range j.Status.Conditions {
			if c.Type == batchv1.JobFailed && c.Status == corev1.ConditionTrue {
				return true, nil
			}
		}
		return false, nil
	})
	if werr != nil {
		t.Fatalf("the Job did not fail: %v", werr)
	}
	// A hand-off now cannot resume it: it fails, naming the command.
	p := start(t, r, "handoff")
	if code := p.wait(t, 30*time.Second); code == 0 {
		t.Fatalf("hand-off succeeded on a failed sentinel Job:\n%s", p.output())
	}
	cmd := fmt.Sprintf("kubectl -n %s get job %s -o yaml | kubectl replace --force -f -", r.ns, jobName)
	if !strings.Contains(p.output(), cmd) {
		t.Fatalf("the hand-off does not name the relaunch command %q:\n%s", cmd, p.output())
	}
	// The documented command, run as an operator would.
	sh := exec.Command("bash", "-o", "pipefail", "-c", cmd)
	sh.Env = append(os.Environ(), "KUBECONFIG="+cluster.Kubeconfig(), "PATH="+kubectlDir(t)+":"+os.Getenv("PATH"))
	var out bytes.Buffer
	sh.Stdout, sh.Stderr = &out, &out
	if err := sh.Run(); err != nil {
		t.Fatalf("%s: %v\n%s", cmd, err, out.String())
	}
	relaunched, err := admin.BatchV1().Jobs(r.ns).Get(ctx, jobName, metav1.GetOptions{})
	must(t, err)
	if relaunched.UID == job.UID || (relaunched.Spec.Suspend != nil && *relaunched.Spec.Suspend) {
		t.Fatalf("relaunched Job: uid %s (old %s), suspend %v", relaunched.UID, job.UID, relaunched.Spec.Suspend)
	}
	waitJobPod(t, r, relaunched.UID)
	if _, err := admin.CoreV1().ConfigMaps(r.ns).Get(ctx, r.name+"-sentinel-plan", metav1.GetOptions{}); err != nil {
		t.Fatalf("the plan is gone: %v", err)
	}
}

// waitJobPod waits for a pod of the Job with uid and returns it.
func waitJobPod(t *testing.T, r *release, uid types.UID) *corev1.Pod {
	t.Helper()
	var found *corev1.Pod
	err := wait.PollUntilContextTimeout(context.Background(), 200*time.Millisecond, 60*time.Second, true, func(ctx context.Context) (bool, error) {
		pods, err := admin.CoreV1().Pods(r.ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		for i := range pods.Items {
			if ref := metav1.GetControllerOf(&pods.Items[i]); ref != nil && ref.UID == uid {
				found = &pods.Items[i]
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		t.Fatalf("no pod of Job %s: %v", uid, err)
	}
	return found
}

// kubectlDir is the directory of the kubectl the harness built (the same
// version as the API server).
func kubectlDir(t *testing.T) string {
	t.Helper()
	if d := os.Getenv("MESHCSI_KUBE_BIN_DIR"); d != "" {
		return d
	}
	p, err := exec.LookPath("kubectl")
	if err != nil {
		t.Fatal("kubectl not found (`make kube-binaries` builds it; MESHCSI_KUBE_BIN_DIR)")
	}
	return strings.TrimSuffix(p, "/kubectl")
}
