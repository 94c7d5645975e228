//go:build integration

package env

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshcsi/meshcsi/e2e/kube"
	"github.com/meshcsi/meshcsi/libs/kubeharness"
)

// ExpectNothingDeleted against a real API server: quiet over the window, and
// a delete (even of an object re-created at once) reported.
func TestExpectNothingDeleted(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c, err := kubeharness.Start(ctx, kubeharness.Options{Mode: kubeharness.ControlPlane, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Stop(context.Background()) })
	kc, err := kube.New(c.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	e := &Env{Kube: kc}
	labels := map[string]string{"app.kubernetes.io/part-of": "meshcsi", "app.kubernetes.io/instance": "rel"}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "rel-install", Namespace: "default", Labels: labels}}
	cms := kc.Kube.CoreV1().ConfigMaps("default")
	if _, err := cms.Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	if err := e.ExpectNothingDeleted(ctx, "rel", 2*time.Second); err != nil {
		t.Fatalf("nothing was deleted, yet: %v", err)
	}

	d, err := e.WatchDeletions(ctx, "rel")
	if err != nil {
		t.Fatal(err)
	}
	if err := cms.Delete(ctx, cm.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cms.Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	err = d.Wait(ctx, 2*time.Second)
	if err == nil || !strings.Contains(err.Error(), "configmaps/default/rel-install") {
		t.Fatalf("a deleted and re-created ConfigMap: %v, want it reported", err)
	}
}
