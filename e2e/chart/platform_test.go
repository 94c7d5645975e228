//go:build chart

package chart

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/meshcsi/meshcsi/e2e/manifest"
	"github.com/meshcsi/meshcsi/libs/kubeharness"
)

// TestPlatformValues: the values of the "platform" set reach the objects.
func TestPlatformValues(t *testing.T) {
	h := newHelm(t)
	set := valueSets["platform"]
	objs := render(t, h, set)
	ds := daemonSet(t, objs, set)
	spec := ds.Spec.Template.Spec
	c := spec.Containers[0]
	if !strings.HasPrefix(c.Image, "registry.example.com/mirror/meshcsi/driver:") {
		t.Errorf("driver image %q lacks the global registry", c.Image)
	}
	if img := spec.InitContainers[0].Image; !strings.HasPrefix(img, "registry.example.com/mirror/") {
		t.Errorf("relabel image %q lacks the global registry", img)
	}
	u := ds.Spec.UpdateStrategy
	if u.Type != appsv1.RollingUpdateDaemonSetStrategyType || u.RollingUpdate == nil ||
		*u.RollingUpdate.MaxSurge != intstr.FromInt32(0) || *u.RollingUpdate.MaxUnavailable != intstr.FromString("25%") {
		t.Errorf("updateStrategy %+v", u)
	}
	if !slices.Contains(c.Args, "--socket-wait=60s") {
		t.Errorf("extraArgs missing: %v", c.Args)
	}
	for _, want := range []string{"--source-socket=spire-agent=api.sock", "--source-namespaces=spire-agent=team-a,team-b", "--source-namespace-selector=other=mesh=enabled"} {
		if !slices.Contains(c.Args, want) {
			t.Errorf("driver args lack %s: %v", want, c.Args)
		}
	}
	if !slices.ContainsFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == "GOTRACEBACK" && e.Value == "all" }) {
		t.Errorf("extraEnv missing: %v", c.Env)
	}
	if !slices.ContainsFunc(spec.Volumes, func(v corev1.Volume) bool { return v.Name == "extra" && v.EmptyDir != nil }) ||
		!slices.ContainsFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool { return m.Name == "extra" && m.MountPath == "/extra" }) {
		t.Error("extraVolumes / extraVolumeMounts missing")
	}
	if sc := c.SecurityContext; !*sc.Privileged || *sc.RunAsUser != 0 || sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeUnconfined {
		t.Errorf("container securityContext %+v", sc)
	}
	if psc := spec.SecurityContext; psc == nil || !slices.Equal(psc.SupplementalGroups, []int64{1000}) {
		t.Errorf("pod securityContext %+v", psc)
	}
	// A namespaceSelector makes the driver watch namespaces: a token and a
	// read-only ClusterRole.
	if spec.AutomountServiceAccountToken == nil || !*spec.AutomountServiceAccountToken {
		t.Error("no service account token although a source has a namespaceSelector")
	}
	if objs.Get("ClusterRole", "meshcsi-driver") == nil || objs.Get("ClusterRoleBinding", "meshcsi-driver") == nil {
		t.Error("namespace-watch RBAC missing")
	}
	var sa corev1.ServiceAccount
	if err := manifest.Into(objs.Get("ServiceAccount", "meshcsi-driver"), &sa); err != nil {
		t.Fatal(err)
	}
	if sa.Annotations["example.com/team"] != "platform" {
		t.Errorf("ServiceAccount annotations %v", sa.Annotations)
	}
	var rq corev1.ResourceQuota
	if err := manifest.Into(objs.Get("ResourceQuota", "meshcsi-driver-priority"), &rq); err != nil {
		t.Fatal(err)
	}
	if sel := rq.Spec.ScopeSelector; sel == nil || len(sel.MatchExpressions) != 1 ||
		sel.MatchExpressions[0].ScopeName != corev1.ResourceQuotaScopePriorityClass ||
		!slices.Equal(sel.MatchExpressions[0].Values, []string{"system-node-critical"}) {
		t.Errorf("ResourceQuota scope %+v", rq.Spec.ScopeSelector)
	}
	var ns corev1.Namespace
	if err := manifest.Into(objs.Get("Namespace", namespace), &ns); err != nil {
		t.Fatal(err)
	}
	if ns.Labels["pod-security.kubernetes.io/enforce"] != "privileged" || ns.Labels["security.openshift.io/scc.podSecurityLabelSync"] != "false" {
		t.Errorf("namespace labels %v", ns.Labels)
	}

	// Defaults: no token, no RBAC, no quota, no namespace, the old strategy.
	def := render(t, h, nil)
	dds := daemonSet(t, def, nil)
	if a := dds.Spec.Template.Spec.AutomountServiceAccountToken; a == nil || *a {
		t.Error("the default driver pod mounts a service account token")
	}
	if *dds.Spec.UpdateStrategy.RollingUpdate.MaxUnavailable != intstr.FromInt32(1) {
		t.Errorf("default updateStrategy %+v", dds.Spec.UpdateStrategy)
	}
	for _, k := range []string{"ResourceQuota", "Namespace"} {
		if n := len(def.Kind(k)); n != 0 {
			t.Errorf("%d %s rendered by default", n, k)
		}
	}
	onDelete := render(t, h, map[string]string{"driver.updateStrategy.type": "OnDelete"})
	if s := daemonSet(t, onDelete, nil).Spec.UpdateStrategy; s.Type != appsv1.OnDeleteDaemonSetStrategyType || s.RollingUpdate != nil {
		t.Errorf("OnDelete strategy %+v", s)
	}
	// A node runs one driver at a time: a surge pod could never take over
	// (docs/chart.md, Updates), so any maxSurge but 0 is refused.
	for _, set := range []map[string]string{
		{"driver.updateStrategy.rollingUpdate.maxSurge": "1"},
		{"driver.updateStrategy.rollingUpdate.maxSurge": "1", "driver.updateStrategy.rollingUpdate.maxUnavailable": "0"},
		{"driver.updateStrategy.rollingUpdate.maxSurge": "10%", "driver.updateStrategy.rollingUpdate.maxUnavailable": "0"},
	} {
		if _, err := h.Template(ctx(t), chartDir(t), release, namespace, set); err == nil || !strings.Contains(err.Error(), "maxSurge must be 0: a node runs one meshcsi driver at a time") {
			t.Errorf("%v: %v, want refused", set, err)
		}
	}
	for _, surge := range []string{"0", "0%"} {
		if _, err := h.Template(ctx(t), chartDir(t), release, namespace, map[string]string{"driver.updateStrategy.rollingUpdate.maxSurge": surge}); err != nil {
			t.Errorf("maxSurge %s: %v", surge, err)
		}
	}
}

// TestPodTemplateStableAcrossChartVersions: a chart-only bump (same
// appVersion, same values) renders the same driver pod template.
func TestPodTemplateStableAcrossChartVersions(t *testing.T) {
	h := newHelm(t)
	objs := render(t, h, nil)
	ds := daemonSet(t, objs, nil)
	if _, ok := ds.Spec.Template.Labels["helm.sh/chart"]; ok {
		t.Errorf("pod template carries helm.sh/chart: %v", ds.Spec.Template.Labels)
	}
	if ds.Labels["helm.sh/chart"] == "" {
		t.Error("the DaemonSet itself lost helm.sh/chart")
	}
	for k, v := range ds.Spec.Selector.MatchLabels {
		if ds.Spec.Template.Labels[k] != v {
			t.Errorf("pod template label %s=%q does not match the selector's %q", k, ds.Spec.Template.Labels[k], v)
		}
	}
}

// TestUpgradeGuards installs a release on a real API server, then upgrades
// it with each value that must not change and expects a failure that says
// how to migrate; an upgrade changing nothing of that passes.
func TestUpgradeGuards(t *testing.T) {
	c, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	// namespace.create: Helm adopts the existing release namespace
	// (--take-ownership) and labels it.
	_, kc, h := helmCluster(t, c, kubeharness.Options{Mode: kubeharness.ControlPlane})
	out, err := h.Run(c, "install", release, chartDir(t), "--namespace", namespace,
		"--take-ownership", "--set", "namespace.create=true")
	if err != nil {
		t.Fatalf("helm install: %v\n%s", err, out)
	}
	ns, err := kc.Kube.CoreV1().Namespaces().Get(c, namespace, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ns.Labels["pod-security.kubernetes.io/enforce"] != "privileged" {
		t.Errorf("namespace labels %v", ns.Labels)
	}
	for _, tc := range []struct {
		name string
		set  []string
		want []string
	}{
		{"driverName", []string{"driverName=csi.other.example.com"}, []string{
			`driverName cannot change on upgrade (installed: "csi.meshcsi.io", now: "csi.other.example.com")`,
			"install a second release", "helm uninstall " + release,
		}},
		{"kubeletDir", []string{"kubeletDir=/data/kubelet"}, []string{
			"kubeletDir cannot change on upgrade (installed: /var/lib/kubelet, now: /data/kubelet)", "drain the nodes",
		}},
		{"fullnameOverride", []string{"fullnameOverride=mesh"}, []string{
			"fullnameOverride cannot change on upgrade (installed: DaemonSet meshcsi-driver, now: mesh-driver)",
			"Keep fullnameOverride=meshcsi",
		}},
		{"nothing guarded", []string{"driver.podAnnotations.example\\.com/x=y", "namespace.create=true"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// --no-hooks: the pre-upgrade hook's Job cannot run here (no
			// scheduler or kubelet; TestUpgradeChangingSentinelPod runs its
			// command); the guards fail the rendering, before any hook.
			args := []string{"upgrade", release, chartDir(t), "--namespace", namespace, "--no-hooks"}
			for _, s := range tc.set {
				args = append(args, "--set", s)
			}
			out, err := h.Run(c, args...)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("helm upgrade: %v\n%s", err, out)
				}
				return
			}
			if err == nil {
				t.Fatalf("helm upgrade passed:\n%s", out)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error()+out, w) {
					t.Errorf("failure lacks %q:\n%v\n%s", w, err, out)
				}
			}
			t.Logf("helm upgrade --set %s:\n%v", strings.Join(tc.set, " "), err)
		})
	}
}
