//go:build integration

package test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"sigs.k8s.io/yaml"
)

func TestIntegrationPodsDeletedOneByOne(t *testing.T) {
	r := install(t, "one", "one.csi.meshcsi.io")
	blockingPod(t, "team-a", "web", r.driver, 2, false)
	blockingPod(t, "team-b", "db", r.driver, 1, false)
	blockingPod(t, "kube-public", "agent", r.driver, 1, false)
	blockingPod(t, "team-a", "other-driver", "other.csi.example.com", 1, false)
	// A blocker on a node that does not exist still blocks, marked as such.
	orphan := onNode(t, "team-b", "orphan", r.driver, "node-deleted")
	handoff(t, r)
	// The plan command shows the plan and the three blockers and deletes nothing.
	pl := start(t, r, "plan", "-o", "json")
	if code := pl.wait(t, 30*time.Second); code != 0 {
		t.Fatalf("plan exit %d", code)
	}
	var preview struct {
		Source string `json:"source"`
		Plan   struct {
			Objects []struct{ Kind, Name string } `json:"objects"`
		} `json:"plan"`
		Blockers []struct{ Namespace, Name string } `json:"blockers"`
	}
	must(t, json.Unmarshal([]byte(pl.output()[strings.Index(pl.output(), "{"):]), &preview))
	if preview.Source != "configmap" || len(preview.Blockers) != 4 || len(preview.Plan.Objects) < 10 {
		t.Fatalf("plan preview = %+v", preview)
	}
	helmDeletes(t, r)
	s := start(t, r, "run")
	s.waitOutput(t, "team-b/orphan (no owner, node node-deleted (gone)", 30*time.Second)
	s.waitOutput(t, "waiting for 4 pods", 30*time.Second)
	deletePod(t, "team-b", orphan)
	for i, p := range [][2]string{{"team-a", "web"}, {"team-b", "db"}} {
		mark := len(s.output())
		deletePod(t, p[0], p[1])
		// It saw the pod go and still waits for the rest.
		s.waitOutputAfter(t, mark, fmt.Sprintf("waiting for %d pods", 2-i), 30*time.Second)
		if !s.running() || !driverObjectsExist(t, r) {
			t.Fatalf("sentinel removed the driver while pods remain:\n%s", s.output())
		}
	}
	deletePod(t, "kube-public", "agent")
	last := time.Now()
	code := s.wait(t, 30*time.Second)
	reaction := time.Since(last)
	if code != 0 {
		t.Fatalf("run exit %d", code)
	}
	t.Logf("finished %s after the last blocking pod was deleted", reaction)
	if reaction > 2*time.Second {
		t.Fatalf("sentinel took %s after the last pod (want <= 2s)", reaction)
	}
	if !strings.Contains(s.output(), `"result":"done"`) {
		t.Fatalf("no final summary:\n%s", s.output())
	}
	// The garbage collector removes what the sentinel's ClusterRole owned.
	releaseGone(t, r, 60*time.Second)
	// The other driver's pod was never a blocker and is untouched.
	if _, err := admin.CoreV1().Pods("team-a").Get(context.Background(), "other-driver", metav1.GetOptions{}); err != nil {
		t.Fatal(err)
	}
	ev, err := admin.CoreV1().Events(r.ns).List(context.Background(), metav1.ListOptions{FieldSelector: "involvedObject.name=" + r.name + "-sentinel"})
	must(t, err)
	var reasons []string
	for _, e := range ev.Items {
		reasons = append(reasons, e.Reason)
	}
	if !strings.Contains(strings.Join(reasons, ","), "WaitingForPods") {
		t.Fatalf("no WaitingForPods Event on the Job; events: %v", reasons)
	}
}

func TestIntegrationStuckTerminatingKeepsWaiting(t *testing.T) {
	r := install(t, "stuck", "stuck.csi.meshcsi.io")
	blockingPod(t, "team-c", "held", r.driver, 1, true)
	deletePod(t, "team-c", "held") // stays: the finalizer holds it
	handoff(t, r)
	helmDeletes(t, r)
	s := start(t, r, "run")
	s.waitOutput(t, "terminating since", 30*time.Second)
	s.stillWaiting(t, observation, r)
	ctx := context.Background()
	p, err := admin.CoreV1().Pods("team-c").Get(ctx, "held", metav1.GetOptions{})
	must(t, err)
	p.Finalizers = nil
	_, err = admin.CoreV1().Pods("team-c").Update(ctx, p, metav1.UpdateOptions{})
	must(t, err)
	if code := s.wait(t, 30*time.Second); code != 0 {
		t.Fatalf("run exit %d", code)
	}
	releaseGone(t, r, 60*time.Second)
}

func TestIntegrationReinstallWhileWaiting(t *testing.T) {
	r := install(t, "again", "again.csi.meshcsi.io")
	blockingPod(t, "team-d", "web", r.driver, 1, false)
	handoff(t, r)
	helmDeletes(t, r)
	s := start(t, r, "run")
	s.waitOutput(t, "waiting for 1 pods", 30*time.Second)
	installMarker(t, r) // helm install again
	if code := s.wait(t, 30*time.Second); code != 0 {
		t.Fatalf("run exit %d", code)
	}
	if !strings.Contains(s.output(), `"result":"stood-down"`) {
		t.Fatalf("no stand-down summary:\n%s", s.output())
	}
	ctx := context.Background()
	if !driverObjectsExist(t, r) {
		t.Fatal("the re-installed release lost its driver")
	}
	for _, name := range []string{r.name + "-sentinel"} {
		if _, err := admin.RbacV1().ClusterRoles().Get(ctx, name, metav1.GetOptions{}); err != nil {
			t.Fatalf("sentinel ClusterRole gone after stand-down: %v", err)
		}
	}
	if _, err := admin.CoreV1().ConfigMaps(r.ns).Get(ctx, r.name+"-sentinel-plan", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("plan ConfigMap after stand-down: %v", err)
	}
	deletePod(t, "team-d", "web")
}

func TestIntegrationTimeout(t *testing.T) {
	r := install(t, "late", "late.csi.meshcsi.io")
	blockingPod(t, "team-e", "web", r.driver, 1, false)
	handoff(t, r)
	helmDeletes(t, r)
	s := start(t, r, "run", "--timeout", "3s")
	if code := s.wait(t, 30*time.Second); code != 2 {
		t.Fatalf("run exit %d, want 2", code)
	}
	if !strings.Contains(s.output(), "team-e/web") || !driverObjectsExist(t, r) {
		t.Fatalf("timeout must name the blocker and delete nothing:\n%s", s.output())
	}
	deletePod(t, "team-e", "web")
}

func TestIntegrationKilledMidCleanupAndRerun(t *testing.T) {
	r := install(t, "killed", "killed.csi.meshcsi.io")
	blockingPod(t, "team-f", "web", r.driver, 1, false)
	handoff(t, r)
	helmDeletes(t, r)
	s := start(t, r, "run", "--identity", "first")
	s.waitOutput(t, "waiting for 1 pods", 30*time.Second)
	deletePod(t, "team-f", "web")
	s.waitOutput(t, `"kind":"CSIDriver"`, 30*time.Second)
	s.kill()
	if _, err := admin.StorageV1().CSIDrivers().Get(context.Background(), r.driver, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("CSIDriver after the first removal step: %v", err)
	}
	// The rerun waits for the killed holder's Lease to expire, then finishes.
	s2 := start(t, r, "run", "--identity", "second")
	if code := s2.wait(t, 60*time.Second); code != 0 {
		t.Fatalf("rerun exit %d", code)
	}
	releaseGone(t, r, 60*time.Second)
}

func TestIntegrationAPIServerRestartWhileWaiting(t *testing.T) {
	r := install(t, "restart", "restart.csi.meshcsi.io")
	blockingPod(t, "team-g", "web", r.driver, 1, false)
	handoff(t, r)
	helmDeletes(t, r)
	s := start(t, r, "run")
	s.waitOutput(t, "waiting for 1 pods", 30*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	mark := len(s.output())
	must(t, cluster.RestartAPIServer(ctx))
	// Back on the restarted API server, it reports the pod again.
	s.waitOutputAfter(t, mark, "waiting for 1 pods", 60*time.Second)
	if !s.running() || !driverObjectsExist(t, r) {
		t.Fatalf("sentinel went on across an API server restart:\n%s", s.output())
	}
	deletePod(t, "team-g", "web")
	if code := s.wait(t, 60*time.Second); code != 0 {
		t.Fatalf("run exit %d", code)
	}
	releaseGone(t, r, 60*time.Second)
}

// TestIntegrationSCC serves security.openshift.io/v1 from the CRD shipped in
// the openshift/api module (the other tests ran without it: skipped cleanly).
func TestIntegrationSCC(t *testing.T) {
	ctx := context.Background()
	dyn, err := dynamic.NewForConfig(restConfig())
	must(t, err)
	crdGVR := schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
	var crd unstructured.Unstructured
	must(t, yaml.Unmarshal(sccCRD(t), &crd.Object))
	if _, err := dyn.Resource(crdGVR).Create(ctx, &crd, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	sccGVR := schema.GroupVersionResource{Group: "security.openshift.io", Version: "v1", Resource: "securitycontextconstraints"}
	r := install(t, "ocp", "ocp.csi.meshcsi.io")
	newSCC := func(name string, ns string) *unstructured.Unstructured {
		u := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "security.openshift.io/v1", "kind": "SecurityContextConstraints",
			"allowHostDirVolumePlugin": true, "allowHostIPC": false, "allowHostNetwork": false, "allowHostPID": false,
			"allowHostPorts": false, "allowPrivilegedContainer": true, "readOnlyRootFilesystem": true,
			"runAsUser": map[string]any{"type": "RunAsAny"}, "priority": nil,
			"allowedCapabilities": []any{}, "defaultAddCapabilities": []any{}, "requiredDropCapabilities": []any{}, "volumes": []any{"csi"}, "seLinuxContext": map[string]any{"type": "RunAsAny"},
		}}
		m := meta(r, name, "driver", false)
		m.Annotations["meta.helm.sh/release-namespace"] = ns
		u.SetName(m.Name)
		u.SetLabels(m.Labels)
		u.SetAnnotations(m.Annotations)
		return u
	}
	// The CRD takes a moment to be served.
	var lastErr error
	err = wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		_, lastErr = dyn.Resource(sccGVR).Create(ctx, newSCC(r.name+"-driver", r.ns), metav1.CreateOptions{})
		return lastErr == nil, nil
	})
	if err != nil {
		t.Fatalf("SCC API not served: %v", lastErr)
	}
	// Same names, same labels, but another release namespace: not ours.
	_, err = dyn.Resource(sccGVR).Create(ctx, newSCC(r.name+"-workload", "elsewhere"), metav1.CreateOptions{})
	must(t, err)
	handoff(t, r)
	helmDeletes(t, r)
	s := start(t, r, "run")
	if code := s.wait(t, 60*time.Second); code != 0 {
		t.Fatalf("run exit %d", code)
	}
	if _, err := dyn.Resource(sccGVR).Get(ctx, r.name+"-driver", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("the release's SCC survived: %v", err)
	}
	if _, err := dyn.Resource(sccGVR).Get(ctx, r.name+"-workload", metav1.GetOptions{}); err != nil {
		t.Fatalf("another release's SCC was touched: %v", err)
	}
	releaseGone(t, r, 60*time.Second)
}

// sccCRD reads the SCC CRD from the openshift/api module in the module cache
// (make openshift-api downloads it; so does this helper if needed).
func sccCRD(t *testing.T) []byte {
	t.Helper()
	version := os.Getenv("MESHCSI_OPENSHIFT_API_VERSION")
	if version == "" {
		version = "v0.0.0-20251015095338-264e80a2b6e7"
	}
	out, err := exec.Command("go", "mod", "download", "-json", "github.com/openshift/api@"+version).Output()
	must(t, err)
	var mod struct{ Dir, Error string }
	must(t, json.Unmarshal(out, &mod))
	if mod.Dir == "" {
		t.Fatalf("openshift/api %s not available: %s", version, mod.Error)
	}
	b, err := os.ReadFile(mod.Dir + "/security/v1/zz_generated.crd-manifests/0000_03_config-operator_01_securitycontextconstraints.crd.yaml")
	must(t, err)
	return b
}

func TestIntegrationSIGTERMWhileWaiting(t *testing.T) {
	r := install(t, "term", "term.csi.meshcsi.io")
	blockingPod(t, "team-h", "web", r.driver, 1, false)
	handoff(t, r)
	helmDeletes(t, r)
	s := start(t, r, "run")
	s.waitOutput(t, "waiting for 1 pods", 30*time.Second)
	must(t, s.cmd.Process.Signal(syscall.SIGTERM))
	if code := s.wait(t, 30*time.Second); code != 3 {
		t.Fatalf("exit %d after SIGTERM, want 3 (interrupted, run again)", code)
	}
	if !driverObjectsExist(t, r) {
		t.Fatal("deleted after SIGTERM while a pod blocks")
	}
	// Run again: it continues and finishes once the pod is gone.
	s2 := start(t, r, "run")
	s2.waitOutput(t, "waiting for 1 pods", 60*time.Second)
	deletePod(t, "team-h", "web")
	if code := s2.wait(t, 30*time.Second); code != 0 {
		t.Fatalf("rerun exit %d", code)
	}
	releaseGone(t, r, 60*time.Second)
}

// onNode creates a blocking pod bound to node and returns its name.
func onNode(t *testing.T, ns, name, driver, node string) string {
	t.Helper()
	blockingPod(t, ns, name, driver, 1, false)
	// nodeName cannot change once set, so re-create it bound to node.
	ctx := context.Background()
	p, err := admin.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
	must(t, err)
	deletePod(t, ns, name)
	p = p.DeepCopy()
	p.ResourceVersion, p.UID = "", ""
	p.Spec.NodeName = node
	_, err = admin.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{})
	must(t, err)
	return name
}
