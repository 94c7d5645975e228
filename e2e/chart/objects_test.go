//go:build chart

package chart

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/meshcsi/meshcsi/e2e/manifest"
)

// clusterScoped are the kinds the chart renders without a namespace.
var clusterScoped = map[string]bool{
	"CSIDriver": true, "ClusterRole": true, "ClusterRoleBinding": true, "SecurityContextConstraints": true,
	"Namespace": true, "ValidatingAdmissionPolicy": true, "ValidatingAdmissionPolicyBinding": true,
	"CustomResourceDefinition": true,
}

// builtinKinds are converted into their typed API structs, which rejects
// fields the v1.33 API does not know.
var builtinKinds = map[string]func() any{
	"DaemonSet":          func() any { return &appsv1.DaemonSet{} },
	"Job":                func() any { return &batchv1.Job{} },
	"ConfigMap":          func() any { return &corev1.ConfigMap{} },
	"Service":            func() any { return &corev1.Service{} },
	"ServiceAccount":     func() any { return &corev1.ServiceAccount{} },
	"CSIDriver":          func() any { return &storagev1.CSIDriver{} },
	"ClusterRole":        func() any { return &rbacv1.ClusterRole{} },
	"ClusterRoleBinding": func() any { return &rbacv1.ClusterRoleBinding{} },
	"Role":               func() any { return &rbacv1.Role{} },
	"RoleBinding":        func() any { return &rbacv1.RoleBinding{} },
	"Namespace":          func() any { return &corev1.Namespace{} },
	"ResourceQuota":      func() any { return &corev1.ResourceQuota{} },
	"ValidatingAdmissionPolicy": func() any {
		return &admissionregistrationv1.ValidatingAdmissionPolicy{}
	},
	"ValidatingAdmissionPolicyBinding": func() any {
		return &admissionregistrationv1.ValidatingAdmissionPolicyBinding{}
	},
}

func fullname(set map[string]string) string {
	if f := set["fullnameOverride"]; f != "" {
		return f
	}
	return release
}

func driverName(set map[string]string) string {
	if d := set["driverName"]; d != "" {
		return d
	}
	return "csi.meshcsi.io"
}

func id(o *unstructured.Unstructured) string {
	if o.GetNamespace() == "" {
		return o.GetKind() + " " + o.GetName()
	}
	return o.GetKind() + " " + o.GetNamespace() + "/" + o.GetName()
}

// TestEveryObject checks, for every value set, what docs/contracts.md asks
// of every object: the release labels, the namespace, the keep policy on
// exactly what pods and the sentinel still need, and well-typed fields.
func TestEveryObject(t *testing.T) {
	h := newHelm(t)
	for name, set := range valueSets {
		t.Run(name, func(t *testing.T) {
			objs := render(t, h, set)
			fn := fullname(set)
			wantLabels := map[string]string{
				"app.kubernetes.io/name":       "meshcsi",
				"app.kubernetes.io/instance":   release,
				"app.kubernetes.io/part-of":    "meshcsi",
				"app.kubernetes.io/managed-by": "Helm",
				"meshcsi.io/driver-name":       driverName(set),
			}
			components := []string{"driver", "sentinel", "handoff", "upgrade", "monitoring", "install-marker", "guard"}
			var kept []string
			for _, o := range objs {
				for k, v := range wantLabels {
					if got := o.GetLabels()[k]; got != v {
						t.Errorf("%s: label %s = %q, want %q", id(o), k, got, v)
					}
				}
				if c := o.GetLabels()["app.kubernetes.io/component"]; !slices.Contains(components, c) {
					t.Errorf("%s: component label %q not one of %v", id(o), c, components)
				}
				if clusterScoped[o.GetKind()] {
					if o.GetNamespace() != "" {
						t.Errorf("%s: cluster-scoped object with a namespace", id(o))
					}
				} else if o.GetNamespace() == "" {
					t.Errorf("%s: namespaced object without a namespace", id(o))
				}
				if o.GetAnnotations()["helm.sh/resource-policy"] == "keep" {
					kept = append(kept, id(o))
				}
				if o.GetAnnotations()["helm.sh/hook"] != "" && o.GetAnnotations()["helm.sh/resource-policy"] != "" {
					t.Errorf("%s: a hook object must not carry a resource policy", id(o))
				}
				if mk, ok := builtinKinds[o.GetKind()]; ok {
					if err := manifest.Into(o, mk()); err != nil {
						t.Errorf("%s: %v", id(o), err)
					}
				}
			}
			want := []string{
				"DaemonSet " + namespace + "/" + fn + "-driver",
				"CSIDriver " + driverName(set),
				"ServiceAccount " + namespace + "/" + fn + "-driver",
				"ServiceAccount " + namespace + "/" + fn + "-sentinel",
				"ClusterRole " + fn + "-sentinel",
				"ClusterRoleBinding " + fn + "-sentinel",
				"Role " + namespace + "/" + fn + "-sentinel",
				"RoleBinding " + namespace + "/" + fn + "-sentinel",
				"Job " + namespace + "/" + fn + "-sentinel",
				"ConfigMap " + namespace + "/" + fn + "-sentinel-config",
				"CustomResourceDefinition removalguards." + fn + "." + namespace + ".meshcsi.io",
				"ValidatingAdmissionPolicy " + fn + "-removal-guard",
				"ValidatingAdmissionPolicyBinding " + fn + "-removal-guard",
				"ValidatingAdmissionPolicy " + fn + "-namespace-guard",
				"ValidatingAdmissionPolicyBinding " + fn + "-namespace-guard",
			}
			if set["namespace.create"] == "true" {
				want = append(want, "Namespace "+namespace)
			}
			if set["openshift.enabled"] == "true" {
				want = append(want,
					"SecurityContextConstraints "+fn+"-driver",
					"ClusterRole "+fn+"-driver-scc",
					"RoleBinding "+namespace+"/"+fn+"-driver-scc",
				)
			}
			sort.Strings(want)
			sort.Strings(kept)
			if !slices.Equal(kept, want) {
				t.Errorf("objects kept on uninstall:\n got %v\nwant %v", kept, want)
			}
			marker := objs.Get("ConfigMap", fn+"-install")
			if marker == nil {
				t.Fatalf("install marker ConfigMap %s-install missing", fn)
			}
			if c := marker.GetLabels()["app.kubernetes.io/component"]; c != "install-marker" {
				t.Errorf("install marker component = %q", c)
			}
		})
	}
}

// TestLeastPrivilege: no cluster-admin, no wildcards, no secrets, and the
// SCC grants name exactly one SCC.
func TestLeastPrivilege(t *testing.T) {
	h := newHelm(t)
	for name, set := range valueSets {
		t.Run(name, func(t *testing.T) {
			objs := render(t, h, set)
			for _, o := range objs {
				switch o.GetKind() {
				case "ClusterRoleBinding", "RoleBinding":
					var b rbacv1.RoleBinding
					if err := manifest.Into(o, &b); err != nil {
						t.Fatal(err)
					}
					if b.RoleRef.Name == "cluster-admin" || b.RoleRef.Name == "admin" || b.RoleRef.Name == "edit" {
						t.Errorf("%s binds %s", id(o), b.RoleRef.Name)
					}
				case "ClusterRole", "Role":
					var r rbacv1.ClusterRole
					if err := manifest.Into(o, &r); err != nil {
						t.Fatal(err)
					}
					for _, rule := range r.Rules {
						for _, list := range [][]string{rule.Verbs, rule.Resources, rule.APIGroups} {
							if slices.Contains(list, "*") {
								t.Errorf("%s: wildcard in rule %+v", id(o), rule)
							}
						}
						for _, v := range []string{"escalate", "bind", "impersonate"} {
							if slices.Contains(rule.Verbs, v) {
								t.Errorf("%s: verb %s in rule %+v", id(o), v, rule)
							}
						}
						if slices.Contains(rule.Resources, "secrets") {
							t.Errorf("%s: access to secrets in rule %+v", id(o), rule)
						}
						if slices.Contains(rule.Verbs, "use") && len(rule.ResourceNames) != 1 {
							t.Errorf("%s: `use` must name exactly one SCC: %+v", id(o), rule)
						}
					}
				}
			}
		})
	}
}

func daemonSet(t *testing.T, objs manifest.Set, set map[string]string) *appsv1.DaemonSet {
	t.Helper()
	o := objs.Get("DaemonSet", fullname(set)+"-driver")
	if o == nil {
		t.Fatal("driver DaemonSet missing")
	}
	var ds appsv1.DaemonSet
	if err := manifest.Into(o, &ds); err != nil {
		t.Fatal(err)
	}
	return &ds
}

func TestDriverDaemonSet(t *testing.T) {
	h := newHelm(t)
	for name, set := range valueSets {
		t.Run(name, func(t *testing.T) {
			if name == "platform" {
				t.Skip("its init container, token, extra volumes and sources: TestPlatformValues")
			}
			objs := render(t, h, set)
			ds := daemonSet(t, objs, set)
			spec := ds.Spec.Template.Spec
			kubeletDir := "/var/lib/kubelet"
			if d := set["kubeletDir"]; d != "" {
				kubeletDir = d
			}
			dn := driverName(set)
			if len(spec.Containers) != 1 || len(spec.InitContainers) != 0 {
				t.Fatalf("want exactly one container, got %d (+%d init)", len(spec.Containers), len(spec.InitContainers))
			}
			c := spec.Containers[0]
			sc := c.SecurityContext
			if sc == nil || sc.Privileged == nil || !*sc.Privileged {
				t.Error("driver container is not privileged")
			}
			if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
				t.Error("driver root filesystem is not read-only")
			}
			if spec.PriorityClassName != "system-node-critical" {
				t.Errorf("priorityClassName = %q", spec.PriorityClassName)
			}
			if len(spec.Tolerations) != 1 || spec.Tolerations[0].Operator != corev1.TolerationOpExists || spec.Tolerations[0].Key != "" {
				t.Errorf("tolerations %+v do not tolerate every taint", spec.Tolerations)
			}
			if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
				t.Error("the driver needs no API token; it must not be mounted")
			}
			if c.LivenessProbe == nil || c.LivenessProbe.HTTPGet == nil || c.LivenessProbe.HTTPGet.Path != "/healthz" {
				t.Errorf("liveness probe %+v is not /healthz", c.LivenessProbe)
			}
			if c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet == nil || c.ReadinessProbe.HTTPGet.Path != "/readyz" {
				t.Errorf("readiness probe %+v is not /readyz", c.ReadinessProbe)
			}
			if len(c.Env) == 0 || c.Env[0].Name != "NODE_NAME" || c.Env[0].ValueFrom == nil || c.Env[0].ValueFrom.FieldRef.FieldPath != "spec.nodeName" {
				t.Errorf("NODE_NAME from spec.nodeName missing: %+v", c.Env)
			}
			port := "9809"
			if p := set["metrics.port"]; p != "" {
				port = p
			}
			if len(c.Ports) != 1 || fmt.Sprint(c.Ports[0].ContainerPort) != port || c.Ports[0].Name != "http-metrics" {
				t.Errorf("ports %+v, want http-metrics %s", c.Ports, port)
			}
			ann := ds.Spec.Template.Annotations
			if set["metrics.podAnnotations"] == "false" {
				if _, ok := ann["prometheus.io/scrape"]; ok {
					t.Error("scrape annotations present though metrics.podAnnotations=false")
				}
			} else if ann["prometheus.io/scrape"] != "true" || ann["prometheus.io/port"] != port || ann["prometheus.io/path"] != "/metrics" {
				t.Errorf("scrape annotations %v", ann)
			}

			// hostPath volumes and where they are mounted.
			sources := map[string]string{"spire-agent": "/run/spire/agent-sockets"}
			if set["sources.agent-a"] != "" {
				sources = map[string]string{"agent-a": set["sources.agent-a"], "agent-b": set["sources.agent-b"]}
			}
			type hp struct {
				path, typ, propagation string
			}
			want := map[string]hp{
				"plugin-dir":       {kubeletDir + "/plugins/" + dn, "DirectoryOrCreate", ""},
				"registration-dir": {kubeletDir + "/plugins_registry", "Directory", ""},
				"pods-dir":         {kubeletDir + "/pods", "Directory", "Bidirectional"},
			}
			for n, d := range sources {
				want["source-"+n] = hp{d, "DirectoryOrCreate", "HostToContainer"}
			}
			got := map[string]hp{}
			for _, v := range spec.Volumes {
				if v.HostPath == nil {
					t.Errorf("volume %s is not a hostPath", v.Name)
					continue
				}
				got[v.Name] = hp{path: v.HostPath.Path, typ: string(*v.HostPath.Type)}
			}
			for _, m := range c.VolumeMounts {
				g := got[m.Name]
				if m.MountPath != g.path {
					t.Errorf("volume %s mounted at %s, want its host path %s", m.Name, m.MountPath, g.path)
				}
				if m.MountPropagation != nil {
					g.propagation = string(*m.MountPropagation)
				}
				got[m.Name] = g
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("volumes:\n got %v\nwant %v", got, want)
			}

			// The command line (docs/contracts.md).
			wantArgs := []string{
				"--endpoint=unix://" + kubeletDir + "/plugins/" + dn + "/csi.sock",
				"--driver-name=" + dn,
				"--kubelet-dir=" + kubeletDir,
			}
			names := make([]string, 0, len(sources))
			for n := range sources {
				names = append(names, n)
			}
			sort.Strings(names)
			for _, n := range names {
				wantArgs = append(wantArgs, "--source="+n+"="+sources[n])
			}
			def := "spire-agent"
			if d := set["defaultSource"]; d != "" {
				def = d
			}
			level, format := "info", "json"
			if l := set["log.level"]; l != "" {
				level, format = l, set["log.format"]
			}
			wantArgs = append(wantArgs, "--default-source="+def, "--http-address=:"+port, "--log-level="+level, "--log-format="+format)
			if !slices.Equal(c.Args, wantArgs) {
				t.Errorf("args:\n got %q\nwant %q", c.Args, wantArgs)
			}
			if set["driver.image.digest"] != "" && c.Image != "meshcsi/driver@"+set["driver.image.digest"] {
				t.Errorf("image %s does not use the digest", c.Image)
			}
			if set["driver.hostNetwork"] == "true" && (!spec.HostNetwork || spec.DNSPolicy != corev1.DNSClusterFirstWithHostNet) {
				t.Error("hostNetwork not applied")
			}
		})
	}
}

func TestCSIDriver(t *testing.T) {
	h := newHelm(t)
	for name, set := range valueSets {
		t.Run(name, func(t *testing.T) {
			objs := render(t, h, set)
			o := objs.Get("CSIDriver", driverName(set))
			if o == nil {
				t.Fatal("CSIDriver missing")
			}
			var d storagev1.CSIDriver
			if err := manifest.Into(o, &d); err != nil {
				t.Fatal(err)
			}
			if d.Spec.AttachRequired == nil || *d.Spec.AttachRequired {
				t.Error("attachRequired must be false")
			}
			if d.Spec.PodInfoOnMount == nil || !*d.Spec.PodInfoOnMount {
				t.Error("podInfoOnMount must be true")
			}
			if !slices.Equal(d.Spec.VolumeLifecycleModes, []storagev1.VolumeLifecycleMode{storagev1.VolumeLifecycleEphemeral}) {
				t.Errorf("volumeLifecycleModes = %v", d.Spec.VolumeLifecycleModes)
			}
			if d.Spec.FSGroupPolicy == nil || *d.Spec.FSGroupPolicy != storagev1.NoneFSGroupPolicy {
				t.Error("fsGroupPolicy must be None")
			}
			profile, has := d.Labels["security.openshift.io/csi-ephemeral-volume-profile"]
			switch {
			case set["openshift.enabled"] != "true" && has:
				t.Error("csi-ephemeral-volume-profile label outside OpenShift mode")
			case set["openshift.enabled"] == "true":
				want := "restricted"
				if p := set["openshift.csiEphemeralVolumeProfile"]; p != "" {
					want = p
				}
				if profile != want {
					t.Errorf("csi-ephemeral-volume-profile = %q, want %q", profile, want)
				}
			}
		})
	}
}

// TestHandoff checks the pre-delete hook and the sentinel Job the chart
// creates suspended (the hand-off only resumes it), each pod under its own
// ServiceAccount.
func TestHandoff(t *testing.T) {
	h := newHelm(t)
	for name, set := range valueSets {
		t.Run(name, func(t *testing.T) {
			objs := render(t, h, set)
			fn := fullname(set)
			jobO := objs.Get("Job", fn+"-handoff")
			if jobO == nil {
				t.Fatal("hand-off Job missing")
			}
			if objs.Get("ConfigMap", fn+"-handoff") != nil {
				t.Error("a hand-off ConfigMap is rendered: the hand-off no longer creates the sentinel Job from a template")
			}
			a := jobO.GetAnnotations()
			if a["helm.sh/hook"] != "pre-delete" {
				t.Errorf("%s: hook = %q", id(jobO), a["helm.sh/hook"])
			}
			if a["helm.sh/hook-delete-policy"] != "before-hook-creation,hook-succeeded" {
				t.Errorf("%s: hook-delete-policy = %q", id(jobO), a["helm.sh/hook-delete-policy"])
			}
			var job batchv1.Job
			if err := manifest.Into(jobO, &job); err != nil {
				t.Fatal(err)
			}
			if job.Spec.ActiveDeadlineSeconds == nil {
				t.Error("the hand-off needs a deadline so helm uninstall never hangs (TestHandoffDeadline checks its value)")
			}
			pod := job.Spec.Template.Spec
			if pod.ServiceAccountName != fn+"-handoff" {
				t.Errorf("hand-off runs as %q, want its own account %s-handoff", pod.ServiceAccountName, fn)
			}
			hc := pod.Containers[0]
			if hc.Args[0] != "handoff" || slices.ContainsFunc(hc.Args, func(a string) bool { return strings.HasPrefix(a, "--job-template") }) {
				t.Errorf("hand-off args %q", hc.Args)
			}
			checkRestricted(t, "hand-off", pod, hc, set)

			sjO := objs.Get("Job", fn+"-sentinel")
			if sjO == nil {
				t.Fatal("the sentinel Job is not rendered")
			}
			var sj batchv1.Job
			if err := manifest.Into(sjO, &sj); err != nil {
				t.Fatal(err)
			}
			if sj.Namespace != namespace || sj.Annotations["helm.sh/hook"] != "" || sj.Annotations["helm.sh/resource-policy"] != "keep" {
				t.Errorf("sentinel Job %s/%s annotations %v: a kept plain object", sj.Namespace, sj.Name, sj.Annotations)
			}
			if sj.Spec.Suspend == nil || !*sj.Spec.Suspend {
				t.Error("the sentinel Job must be created suspended: no pod may run before the hand-off")
			}
			if sj.Spec.ManualSelector == nil || !*sj.Spec.ManualSelector || sj.Spec.Selector == nil {
				t.Error("the sentinel Job sets its selector itself, so its live copy can be created again (re-launch)")
			} else {
				for k, v := range sj.Spec.Selector.MatchLabels {
					if sj.Spec.Template.Labels[k] != v {
						t.Errorf("pod template lacks selector label %s=%s", k, v)
					}
				}
			}
			if sj.Labels["app.kubernetes.io/component"] != "sentinel" || sj.Labels["app.kubernetes.io/instance"] != release {
				t.Errorf("sentinel Job labels %v", sj.Labels)
			}
			sp := sj.Spec.Template.Spec
			if sp.ServiceAccountName != fn+"-sentinel" || sp.RestartPolicy != corev1.RestartPolicyNever {
				t.Errorf("sentinel pod: sa %q restart %q", sp.ServiceAccountName, sp.RestartPolicy)
			}
			sc := sp.Containers[0]
			timeout, report := "0", "30s"
			if v := set["sentinel.timeout"]; v != "" {
				timeout, report = v, set["sentinel.reportInterval"]
			}
			for _, want := range []string{
				"--namespace=" + namespace, "--release=" + release, "--driver-name=" + driverName(set),
				"--plan-configmap=" + fn + "-sentinel-plan", "--job-name=" + fn + "-sentinel",
				"--install-marker=" + fn + "-install", "--removal-guard=" + fn + "-removing",
				"--removal-guard-group=" + fn + "." + namespace + ".meshcsi.io",
			} {
				if !slices.Contains(sc.Args, want) {
					t.Errorf("sentinel args %q lack %s", sc.Args, want)
				}
				if !slices.Contains(hc.Args, want) {
					t.Errorf("hand-off args %q lack %s", hc.Args, want)
				}
			}
			// The tunables reach the sentinel through a kept ConfigMap (its
			// pod template can never change), the hand-off through its env.
			cfgO := objs.Get("ConfigMap", fn+"-sentinel-config")
			if cfgO == nil || cfgO.GetAnnotations()["helm.sh/resource-policy"] != "keep" {
				t.Fatal("the sentinel's settings ConfigMap is missing or not kept")
			}
			var cfgMap corev1.ConfigMap
			if err := manifest.Into(cfgO, &cfgMap); err != nil {
				t.Fatal(err)
			}
			if len(sc.EnvFrom) != 1 || sc.EnvFrom[0].ConfigMapRef == nil || sc.EnvFrom[0].ConfigMapRef.Name != fn+"-sentinel-config" {
				t.Errorf("sentinel envFrom %+v", sc.EnvFrom)
			}
			henv := map[string]string{}
			for _, e := range hc.Env {
				henv[e.Name] = e.Value
			}
			for k, v := range map[string]string{"MESHCSI_TIMEOUT": timeout, "MESHCSI_REPORT_INTERVAL": report} {
				if cfgMap.Data[k] != v || henv[k] != v {
					t.Errorf("%s: sentinel ConfigMap %q, hand-off env %q, want %q", k, cfgMap.Data[k], henv[k], v)
				}
			}
			if sc.Args[0] != "run" {
				t.Errorf("sentinel runs %q, want run", sc.Args[0])
			}
			if sc.Image != hc.Image {
				t.Errorf("hand-off image %s != sentinel image %s", hc.Image, sc.Image)
			}
			registry := ""
			if r := set["global.imageRegistry"]; r != "" {
				registry = r + "/"
			}
			if want := registry + "meshcsi/sentinel:" + map[bool]string{true: set["sentinel.image.tag"], false: "0.1.0"}[set["sentinel.image.tag"] != ""]; sc.Image != want {
				t.Errorf("sentinel image %s, want %s", sc.Image, want)
			}
			checkRestricted(t, "sentinel", sp, sc, set)
		})
	}
}

// checkRestricted: the hand-off and sentinel pods pass Pod Security
// "restricted" (and OpenShift's restricted-v2, which assigns the UID).
func checkRestricted(t *testing.T, what string, pod corev1.PodSpec, c corev1.Container, set map[string]string) {
	t.Helper()
	sc := c.SecurityContext
	if sc == nil {
		t.Fatalf("%s: no security context", what)
	}
	if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Errorf("%s: privilege escalation allowed", what)
	}
	if sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
		t.Errorf("%s: runAsNonRoot unset", what)
	}
	if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
		t.Errorf("%s: capabilities not dropped", what)
	}
	if sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("%s: no RuntimeDefault seccomp profile", what)
	}
	if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		t.Errorf("%s: root filesystem writable", what)
	}
	if set["openshift.enabled"] == "true" && sc.RunAsUser != nil {
		t.Errorf("%s: fixed runAsUser in OpenShift mode (restricted-v2 assigns it)", what)
	}
	if set["openshift.enabled"] != "true" && (sc.RunAsUser == nil || *sc.RunAsUser == 0) {
		t.Errorf("%s: runAsUser must be a non-root UID", what)
	}
	if pod.HostNetwork || pod.HostPID || pod.HostIPC {
		t.Errorf("%s: host namespaces", what)
	}
}
