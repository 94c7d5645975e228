//go:build chart

package chart

import (
	"context"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

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
	// The documented way out, as `kubectl delete job` does it: background
	// propagation, then wait until the Job is gone (a delete through the API
	// with the default propagation leaves it behind the garbage collector's
	// orphan finalizer for a while, and helm would patch it again).
	bg := metav1.DeletePropagationBackground
	if err := kc.Kube.BatchV1().Jobs(namespace).Delete(c, release+"-sentinel", metav1.DeleteOptions{PropagationPolicy: &bg}); err != nil {
		t.Fatal(err)
	}
	if err := wait.PollUntilContextTimeout(c, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		_, err := kc.Kube.BatchV1().Jobs(namespace).Get(ctx, release+"-sentinel", metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return true, nil
		}
		return false, err
	}); err != nil {
		t.Fatalf("the deleted sentinel Job did not go: %v", err)
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
