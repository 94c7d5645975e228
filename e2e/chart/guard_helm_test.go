//go:build chart

package chart

import (
	"context"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/meshcsi/meshcsi/libs/kubeharness"
)

// TestReinstallLiftsRemovalGuard runs the real helm against a real API
// server: the removal guard's parameter the hand-off raised (a RemovalGuard
// of the release's own kind, removing: true) is replaced with removing: false
// by the next `helm install` (the chart's pre-install hook, rendered because
// the kind is still there). Helm adopts an existing custom object without
// applying the chart's fields, so a plain release object would have left the
// guard raised (seen in e2e case 8). The hand-off itself cannot run here (no
// scheduler), so the test raises the guard as the hand-off does and
// uninstalls with --no-hooks.
func TestReinstallLiftsRemovalGuard(t *testing.T) {
	c, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	_, kc, hk := helmCluster(t, c, kubeharness.Options{Mode: kubeharness.ControlPlane})
	if out, err := hk.Run(c, "install", release, chartDir(t), "--namespace", namespace); err != nil {
		t.Fatalf("install: %v\n%s", err, out)
	}
	gvr := schema.GroupVersionResource{Group: release + "." + namespace + ".meshcsi.io", Version: "v1", Resource: "removalguards"}
	ri := kc.Dynamic.Resource(gvr).Namespace(namespace)
	name := release + "-removing"
	// A first install renders no parameter: its kind did not exist yet.
	if _, err := ri.Get(c, name, metav1.GetOptions{}); err == nil {
		t.Fatal("a first install created the removal guard's parameter: nothing is being removed")
	}
	raised := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": gvr.GroupVersion().String(), "kind": "RemovalGuard",
		"metadata": map[string]any{"name": name, "namespace": namespace},
		"spec":     map[string]any{"removing": true, "since": "2026-12-03T10:00:00Z"},
	}}
	if _, err := ri.Create(c, raised, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if out, err := hk.Run(c, "uninstall", release, "--namespace", namespace, "--no-hooks"); err != nil {
		t.Fatalf("uninstall: %v\n%s", err, out)
	}
	if out, err := hk.Run(c, "install", release, chartDir(t), "--namespace", namespace); err != nil {
		t.Fatalf("re-install: %v\n%s", err, out)
	}
	var removing bool
	err := wait.PollUntilContextTimeout(c, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		got, err := ri.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		removing, _, _ = unstructured.NestedBool(got.Object, "spec", "removing")
		return !removing, nil
	})
	if err != nil {
		t.Fatalf("after the re-install the removal guard's parameter still says removing: %v", removing)
	}
	// The next install (an upgrade here) keeps working with the hook object
	// there. (--no-hooks: the pre-upgrade hook's Job cannot run here either.)
	if out, err := hk.Run(c, "upgrade", release, chartDir(t), "--namespace", namespace, "--reuse-values", "--no-hooks"); err != nil {
		t.Fatalf("upgrade after the re-install: %v\n%s", err, out)
	}
}
