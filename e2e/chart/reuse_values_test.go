//go:build chart

package chart

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshcsi/meshcsi/libs/kubeharness"
)

// TestReuseValuesAfterRemovingASource runs the real helm against a real API
// server. The way to replace the chart's default source is to set it to
// null; `helm upgrade --reuse-values` then keeps that null in the values it
// validates and renders (Helm drops a null only where the chart's own values
// have the key, and with --reuse-values those are the release's coalesced
// values, which no longer have it). The chart treats a null source as
// removed instead of failing the schema or rendering an empty source.
func TestReuseValuesAfterRemovingASource(t *testing.T) {
	c, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	_, kc, hk := helmCluster(t, c, kubeharness.Options{Mode: kubeharness.ControlPlane})
	install := []string{"install", release, chartDir(t), "--namespace", namespace,
		"--set", "sources.spire-agent=null", "--set", "sources.agent.path=/run/agent", "--set", "defaultSource=agent"}
	if out, err := hk.Run(c, install...); err != nil {
		t.Fatalf("install: %v\n%s", err, out)
	}
	// --no-hooks: the pre-upgrade hook's Job cannot run without a kubelet.
	upgrade := []string{"upgrade", release, chartDir(t), "--namespace", namespace, "--reuse-values", "--no-hooks",
		"--set", "log.level=debug"}
	if out, err := hk.Run(c, upgrade...); err != nil {
		t.Fatalf("upgrade --reuse-values after removing a source with null: %v\n%s", err, out)
	}
	ds, err := kc.Kube.AppsV1().DaemonSets(namespace).Get(c, release+"-driver", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var args []string
	for _, ctr := range ds.Spec.Template.Spec.Containers {
		args = append(args, ctr.Args...)
	}
	if !slices.Contains(args, "--source=agent=/run/agent") {
		t.Errorf("the upgraded driver lacks --source=agent=/run/agent: %q", args)
	}
	for _, a := range args {
		if strings.Contains(a, "spire-agent") {
			t.Errorf("the removed source is back after the upgrade: %q", a)
		}
	}
}
