package openshift

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	securityv1 "github.com/openshift/api/security/v1"
	"github.com/openshift/apiserver-library-go/pkg/securitycontextconstraints/sccdefaults"
	"github.com/openshift/apiserver-library-go/pkg/securitycontextconstraints/sccmatching"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
	k8syaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/kubernetes/pkg/apis/core"
	corev1conv "k8s.io/kubernetes/pkg/apis/core/v1"
	"sigs.k8s.io/yaml"
)

// namespace is a project as OpenShift creates it: the annotations the
// MustRunAs/MustRunAsRange strategies read their ranges from.
var namespace = &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
	Name: "team-a",
	Annotations: map[string]string{
		"openshift.io/sa.scc.uid-range":           "1000680000/10000",
		"openshift.io/sa.scc.mcs":                 "s0:c26,c15",
		"openshift.io/sa.scc.supplemental-groups": "1000680000/10000",
	},
}}

// restrictedV2 is OpenShift's built-in restricted-v2 SCC (4.11+; `csi` in
// its volumes since 4.13), as `oc get scc restricted-v2 -o yaml` shows it.
func restrictedV2() *securityv1.SecurityContextConstraints {
	f := false
	scc := &securityv1.SecurityContextConstraints{
		ObjectMeta:               metav1.ObjectMeta{Name: "restricted-v2"},
		AllowPrivilegedContainer: false,
		AllowPrivilegeEscalation: &f,
		AllowedCapabilities:      []corev1.Capability{"NET_BIND_SERVICE"},
		RequiredDropCapabilities: []corev1.Capability{"ALL"},
		RunAsUser:                securityv1.RunAsUserStrategyOptions{Type: securityv1.RunAsUserStrategyMustRunAsRange},
		SELinuxContext:           securityv1.SELinuxContextStrategyOptions{Type: securityv1.SELinuxStrategyMustRunAs},
		FSGroup:                  securityv1.FSGroupStrategyOptions{Type: securityv1.FSGroupStrategyMustRunAs},
		SupplementalGroups:       securityv1.SupplementalGroupsStrategyOptions{Type: securityv1.SupplementalGroupsStrategyRunAsAny},
		SeccompProfiles:          []string{"runtime/default"},
		Volumes: []securityv1.FSType{
			securityv1.FSTypeConfigMap, securityv1.FSTypeCSI, securityv1.FSTypeDownwardAPI, securityv1.FSTypeEmptyDir,
			securityv1.FSTypeEphemeral, securityv1.FSTypePersistentVolumeClaim, securityv1.FSProjected, securityv1.FSTypeSecret,
		},
	}
	sccdefaults.SetDefaults_SCC(scc)
	return scc
}

// render runs helm template on the chart with OpenShift mode and extra --set
// values and returns the objects by "Kind/name".
func render(t *testing.T, set ...string) map[string][]byte {
	t.Helper()
	helm := os.Getenv("MESHCSI_HELM")
	if helm == "" {
		helm = "helm"
	}
	_, file, _, _ := runtime.Caller(0)
	chart := filepath.Join(filepath.Dir(file), "..", "..", "charts", "meshcsi")
	args := []string{"template", "meshcsi", chart, "--namespace", "meshcsi-system", "--kube-version", "1.33.13",
		"--set", "openshift.enabled=true"}
	for _, s := range set {
		args = append(args, "--set", s)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, helm, args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("helm template (set MESHCSI_HELM; make test-chart does): %v\n%s", err, stderr.String())
	}
	objs := map[string][]byte{}
	dec := k8syaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(out)))
	for {
		doc, err := dec.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		var meta metav1.PartialObjectMetadata
		if err := yaml.Unmarshal(doc, &meta); err != nil {
			t.Fatal(err)
		}
		if meta.Kind != "" {
			objs[meta.Kind+"/"+meta.Name] = doc
		}
	}
	return objs
}

func decode[T any](t *testing.T, objs map[string][]byte, key string) *T {
	t.Helper()
	raw, ok := objs[key]
	if !ok {
		t.Fatalf("%s not rendered", key)
	}
	var v T
	if err := yaml.UnmarshalStrict(raw, &v); err != nil {
		t.Fatalf("%s: %v", key, err)
	}
	return &v
}

// admit runs OpenShift's SCC admission of pod under scc in namespace (the
// provider OpenShift builds for the namespace, then AssignSecurityContext
// on the defaulted, internal pod) and returns its errors.
func admit(t *testing.T, scc *securityv1.SecurityContextConstraints, pod *corev1.Pod) field.ErrorList {
	t.Helper()
	pod = pod.DeepCopy()
	corev1conv.SetObjectDefaults_Pod(pod)
	var internal core.Pod
	if err := corev1conv.Convert_v1_Pod_To_core_Pod(pod, &internal, nil); err != nil {
		t.Fatal(err)
	}
	provider, err := sccmatching.CreateProviderFromConstraint(namespace, scc)
	if err != nil {
		t.Fatal(err)
	}
	return sccmatching.AssignSecurityContext(provider, &internal, field.NewPath("pod"))
}

// driverPod is the pod the rendered DaemonSet creates.
func driverPod(ds *appsv1.DaemonSet) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "meshcsi-driver-x", Namespace: ds.Namespace, Annotations: ds.Spec.Template.Annotations},
		Spec:       ds.Spec.Template.Spec,
	}
}

// workload is a pod as a restricted-v2 user writes it: no UID, no SELinux
// options (the SCC assigns them), the CSI volume read-only.
func workload() *corev1.Pod {
	f, t := false, true
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: namespace.Name},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{
				Name: "app", Image: "app:1",
				VolumeMounts: []corev1.VolumeMount{{Name: "agent-socket", MountPath: "/run/agent", ReadOnly: true}},
				SecurityContext: &corev1.SecurityContext{
					AllowPrivilegeEscalation: &f, RunAsNonRoot: &t,
					Capabilities:   &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
					SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
				},
			}},
			Volumes: []corev1.Volume{{Name: "agent-socket", VolumeSource: corev1.VolumeSource{CSI: &corev1.CSIVolumeSource{
				Driver: "csi.meshcsi.io", ReadOnly: &t, VolumeAttributes: map[string]string{"source": "spire-agent"},
			}}}},
		},
	}
}

func TestDriverSCCAdmitsTheDriverPod(t *testing.T) {
	for name, set := range map[string][]string{
		"defaults":        nil,
		"selinux relabel": {"driver.seLinuxRelabel.enabled=true"},
		"host network":    {"driver.hostNetwork=true"},
	} {
		t.Run(name, func(t *testing.T) {
			objs := render(t, set...)
			scc := decode[securityv1.SecurityContextConstraints](t, objs, "SecurityContextConstraints/meshcsi-driver")
			sccdefaults.SetDefaults_SCC(scc)
			pod := driverPod(decode[appsv1.DaemonSet](t, objs, "DaemonSet/meshcsi-driver"))
			if errs := admit(t, scc, pod); len(errs) > 0 {
				t.Fatalf("SCC %s does not admit the driver pod:\n%v", scc.Name, errs.ToAggregate())
			}
			if got := pod.Annotations["openshift.io/required-scc"]; got != scc.Name {
				t.Errorf("driver pod asks for SCC %q, want %q", got, scc.Name)
			}
			// The check bites: restricted-v2 refuses the same pod.
			if errs := admit(t, restrictedV2(), pod); len(errs) == 0 {
				t.Error("restricted-v2 admits the privileged driver pod; the check proves nothing")
			}
		})
	}
}

func TestRestrictedV2AdmitsAWorkloadWithTheVolume(t *testing.T) {
	objs := render(t)
	for key := range objs {
		if strings.HasPrefix(key, "SecurityContextConstraints/") && key != "SecurityContextConstraints/meshcsi-driver" {
			t.Errorf("%s rendered: workloads need no SCC of the chart (restricted-v2 allows csi volumes)", key)
		}
	}
	if errs := admit(t, restrictedV2(), workload()); len(errs) > 0 {
		t.Fatalf("restricted-v2 does not admit a workload with the CSI volume:\n%v", errs.ToAggregate())
	}
	// The check bites: without `csi` in its volumes (restricted-v2 before
	// OpenShift 4.13) the same pod is refused, naming the volume type.
	old := restrictedV2()
	old.Volumes = old.Volumes[:1]
	errs := admit(t, old, workload())
	if len(errs) == 0 || !strings.Contains(errs.ToAggregate().Error(), "csi volumes are not allowed") {
		t.Fatalf("an SCC without csi volumes: %v, want \"csi volumes are not allowed\"", errs.ToAggregate())
	}
}

// TestRestrictedV2AdmitsTheSentinelJobs: the hand-off hook, the sentinel and
// the pre-upgrade hook run under OpenShift's restricted-v2 (no SCC of the
// chart, no fixed UID), as every pod of the chart but the driver's.
func TestRestrictedV2AdmitsTheSentinelJobs(t *testing.T) {
	objs := render(t)
	for _, name := range []string{"meshcsi-handoff", "meshcsi-sentinel", "meshcsi-upgrade"} {
		job := decode[batchv1.Job](t, objs, "Job/"+name)
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name + "-x", Namespace: job.Namespace}, Spec: job.Spec.Template.Spec}
		if errs := admit(t, restrictedV2(), pod); len(errs) > 0 {
			t.Errorf("restricted-v2 does not admit the pod of Job %s:\n%v", name, errs.ToAggregate())
		}
	}
}
