//go:build chart

package chart

import (
	"context"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshcsi/meshcsi/libs/kubeharness"
)

// TestUpgradeChangingSentinelPod runs the real helm against a real API
// server and shows the known limitation of docs/sentinel.md ("Upgrades and
// the pre-created Job") and its documented way out: a `helm upgrade` that
// changes the sentinel's pod (here its resources; a new image does the same)
// fails on the suspended sentinel Job with "field is immutable", because
// Kubernetes never changes a Job's pod template; deleting the Job (suspended,
// never run) and upgrading again creates it anew, suspended, with the new
// pod. When the chart learns to replace the Job by itself, the first upgrade
// succeeds and this test says so.
func TestUpgradeChangingSentinelPod(t *testing.T) {
	c, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cluster, kc := startControlPlane(t, c, kubeharness.Options{Mode: kubeharness.ControlPlane, ControllerManager: true})
	if err := kc.EnsureNamespace(c, namespace); err != nil {
		t.Fatal(err)
	}
	hk := *newHelm(t)
	hk.Kubeconfig = cluster.Kubeconfig()
	if out, err := hk.Run(c, "install", release, chartDir(t), "--namespace", namespace); err != nil {
		t.Fatalf("install: %v\n%s", err, out)
	}
	upgrade := []string{"upgrade", release, chartDir(t), "--namespace", namespace, "--reuse-values", "--set", "sentinel.resources.limits.memory=200Mi"}
	out, err := hk.Run(c, upgrade...)
	if err == nil {
		t.Fatalf("helm upgrade changing the sentinel's pod succeeded: update docs/sentinel.md (\"Upgrades and the pre-created Job\") and this test\n%s", out)
	}
	if !strings.Contains(err.Error(), `cannot patch "`+release+`-sentinel" with kind Job`) || !strings.Contains(err.Error(), "field is immutable") {
		t.Fatalf("helm upgrade failed otherwise than documented: %v", err)
	}
	t.Logf("as documented, helm upgrade fails on the Job: %.200s", err)
	// The documented way out.
	if err := kc.Kube.BatchV1().Jobs(namespace).Delete(c, release+"-sentinel", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if out, err := hk.Run(c, upgrade...); err != nil {
		t.Fatalf("helm upgrade after deleting the suspended Job: %v\n%s", err, out)
	}
	j, err := kc.Kube.BatchV1().Jobs(namespace).Get(c, release+"-sentinel", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := j.Spec.Template.Spec.Containers[0].Resources.Limits.Memory().String(); got != "200Mi" || j.Spec.Suspend == nil || !*j.Spec.Suspend {
		t.Fatalf("sentinel Job after the upgrade: memory limit %s, suspend %v; want 200Mi, suspended", got, j.Spec.Suspend)
	}
}
