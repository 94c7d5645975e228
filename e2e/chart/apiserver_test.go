//go:build chart

package chart

import (
	"context"
	"sort"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/meshcsi/meshcsi/e2e/crds"
	"github.com/meshcsi/meshcsi/e2e/helm"
	"github.com/meshcsi/meshcsi/e2e/kube"
	"github.com/meshcsi/meshcsi/e2e/manifest"
	"github.com/meshcsi/meshcsi/libs/kubeharness"
)

// TestServerSideDryRun validates every rendering against a real v1.33 API
// server (the harness's control plane): each object is created as a dry run
// with strict field validation, so an unknown or mistyped field, a bad enum
// or a failed admission check fails the test. The OpenShift and
// prometheus-operator kinds are checked against their real CRDs, from
// github.com/openshift/api and the prometheus-operator module (e2e/crds).
func TestServerSideDryRun(t *testing.T) {
	c, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cluster, kc := startControlPlane(t, c, kubeharness.Options{Mode: kubeharness.ControlPlane})
	files, err := crds.All(c)
	if err != nil {
		t.Fatal(err)
	}
	if err := kc.ApplyCRDFiles(c, files...); err != nil {
		t.Fatal(err)
	}
	for _, ns := range []string{namespace, "team-a", "team-b"} {
		if err := kc.EnsureNamespace(c, ns); err != nil {
			t.Fatal(err)
		}
	}
	h := newHelm(t)
	names := make([]string, 0, len(valueSets))
	for n := range valueSets {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			var objs manifest.Set
			for _, o := range render(t, h, valueSets[name]) {
				// The release namespace exists before any object of the
				// release (Helm stores the release in it): namespace.create
				// adopts it, it never creates it.
				if o.GetKind() != "Namespace" {
					objs = append(objs, o)
				}
			}
			if err := kc.Create(c, objs, kube.CreateOptions{DryRun: true}); err != nil {
				t.Fatalf("server-side dry run:\n%v", err)
			}
		})
	}
	// The check bites: a misspelt field fails, in a built-in kind and in an SCC.
	t.Run("a misspelt field is rejected", func(t *testing.T) {
		objs := render(t, h, valueSets["openshift"])
		ds := objs.Get("DaemonSet", "meshcsi-driver")
		scc := objs.Get("SecurityContextConstraints", "meshcsi-driver")
		if ds == nil || scc == nil {
			t.Fatal("DaemonSet or SCC missing")
		}
		ds = ds.DeepCopy()
		containers, _, _ := unstructured.NestedSlice(ds.Object, "spec", "template", "spec", "containers")
		containers[0].(map[string]any)["securityContext"].(map[string]any)["privilegd"] = true
		if err := unstructured.SetNestedSlice(ds.Object, containers, "spec", "template", "spec", "containers"); err != nil {
			t.Fatal(err)
		}
		scc = scc.DeepCopy()
		scc.Object["allowHostDirVolumePlugins"] = true
		for _, o := range []*unstructured.Unstructured{ds, scc} {
			err := kc.Create(c, manifest.Set{o}, kube.CreateOptions{DryRun: true})
			if err == nil || !strings.Contains(err.Error(), "unknown field") {
				t.Errorf("%s with a misspelt field: %v, want an unknown-field error", o.GetKind(), err)
			}
		}
	})
	t.Run("install dry run shows the OpenShift notes", func(t *testing.T) {
		hk := *h
		hk.Kubeconfig = cluster.Kubeconfig()
		out, err := hk.Run(c, "install", release, chartDir(t), "--dry-run=server", "--namespace", namespace,
			"--set", "openshift.enabled=true")
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{
			"Workloads need no extra\nSCC: restricted-v2 allows csi volumes",
			"security.openshift.io/csi-ephemeral-volume-profile=restricted",
			`namespace meshcsi-system must allow Pod Security
level "privileged"`,
		} {
			if !strings.Contains(out, want) {
				t.Errorf("NOTES lack %q:\n%s", want, out)
			}
		}
		if strings.Contains(out, "oc adm policy") {
			t.Errorf("NOTES still tell to grant an SCC to workloads:\n%s", out)
		}
	})
}

// helmCluster starts a control plane for one test (startControlPlane) with
// the install namespace and the other namespaces given, and returns it, a
// client of it and helm pointed at it.
func helmCluster(t *testing.T, ctx context.Context, opts kubeharness.Options, namespaces ...string) (*kubeharness.Cluster, *kube.Client, helm.Helm) {
	t.Helper()
	cluster, kc := startControlPlane(t, ctx, opts)
	for _, ns := range append([]string{namespace}, namespaces...) {
		if err := kc.EnsureNamespace(ctx, ns); err != nil {
			t.Fatal(err)
		}
	}
	hk := *newHelm(t)
	hk.Kubeconfig = cluster.Kubeconfig()
	return cluster, kc, hk
}

// startControlPlane starts the harness's control plane for one test (stopped
// when it ends) and returns it with a client of it.
func startControlPlane(t *testing.T, ctx context.Context, opts kubeharness.Options) (*kubeharness.Cluster, *kube.Client) {
	t.Helper()
	cluster, err := kubeharness.Start(ctx, opts)
	if err != nil {
		t.Fatalf("start the control plane (make kube-binaries builds it): %v", err)
	}
	t.Cleanup(func() {
		if err := cluster.Stop(context.Background()); err != nil {
			t.Errorf("stop the control plane: %v", err)
		}
	})
	kc, err := kube.New(cluster.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	return cluster, kc
}
