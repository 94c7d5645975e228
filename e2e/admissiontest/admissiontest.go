// Package admissiontest holds what the chart tests (against a control plane)
// and the e2e suite (against the full cluster) share to check the chart's pod
// admission policy: the values that configure sources with namespace rules,
// the table of pods it must reject or admit, and a wait until the API server
// enforces a freshly created policy.
package admissiontest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
)

// Namespaces the cases use: TeamA is allowed the team-only source by name,
// Gold carries the label the labelled source selects, Other neither.
const (
	TeamA = "adm-team-a"
	Gold  = "adm-gold"
	Other = "adm-other"
	// GoldKey is the label key of Gold the labelled source selects.
	GoldKey = "meshcsi-e2e/tier"
	// GoldValue is that label's value.
	GoldValue = "gold"
)

// Values are the chart values (helm --set) for three sources next to the
// defaults: "team-only" for TeamA by name and "labelled" for namespaces with
// GoldKey=GoldValue. The default source stays open to every namespace.
func Values() map[string]string {
	return map[string]string{
		"sources.team-only.path":                                    "/run/meshcsi-e2e/team-only",
		"sources.team-only.namespaces":                              "{" + TeamA + "}",
		"sources.labelled.path":                                     "/run/meshcsi-e2e/labelled",
		"sources.labelled.namespaceSelector.matchLabels." + GoldKey: GoldValue,
	}
}

// NamespaceLabels are the labels of each case namespace.
func NamespaceLabels() map[string]map[string]string {
	return map[string]map[string]string{
		TeamA: {"pod-security.kubernetes.io/enforce": "restricted"},
		Gold:  {"pod-security.kubernetes.io/enforce": "restricted", GoldKey: GoldValue},
		Other: {"pod-security.kubernetes.io/enforce": "restricted"},
	}
}

// EnsureNamespaces creates the case namespaces with their labels.
func EnsureNamespaces(ctx context.Context, kc kubernetes.Interface) error {
	for name, labels := range NamespaceLabels() {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
		if _, err := kc.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("failed to create namespace %s: %w", name, err)
		}
	}
	return nil
}

// WaitServiceAccounts waits until the controller manager has created the
// default ServiceAccount of every case namespace: without it every pod is
// refused before the policy is asked.
func WaitServiceAccounts(ctx context.Context, kc kubernetes.Interface, timeout time.Duration) error {
	for ns := range NamespaceLabels() {
		err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
			_, err := kc.CoreV1().ServiceAccounts(ns).Get(ctx, "default", metav1.GetOptions{})
			return err == nil, nil
		})
		if err != nil {
			return fmt.Errorf("no default ServiceAccount in %s after %s", ns, timeout)
		}
	}
	return nil
}

// Pod is a minimal pod satisfying Pod Security "restricted" with one csi
// volume of driver, read-only, naming source ("" names none).
func Pod(namespace, name, driver, source, image string) *corev1.Pod {
	f, t := false, true
	uid := int64(65532)
	attrs := map[string]string{}
	if source != "" {
		attrs["source"] = source
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace, Labels: map[string]string{"meshcsi-e2e/admission": name}},
		Spec: corev1.PodSpec{
			AutomountServiceAccountToken:  &f,
			TerminationGracePeriodSeconds: ptr(int64(1)),
			SecurityContext: &corev1.PodSecurityContext{
				RunAsNonRoot: &t, RunAsUser: &uid, RunAsGroup: &uid,
				SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
			},
			Containers: []corev1.Container{{
				Name:            "app",
				Image:           image,
				ImagePullPolicy: corev1.PullNever,
				VolumeMounts:    []corev1.VolumeMount{{Name: "agent-socket", MountPath: "/run/agent", ReadOnly: true}},
				SecurityContext: &corev1.SecurityContext{
					AllowPrivilegeEscalation: &f,
					Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
				},
			}},
			Volumes: []corev1.Volume{{
				Name: "agent-socket",
				VolumeSource: corev1.VolumeSource{CSI: &corev1.CSIVolumeSource{
					Driver: driver, ReadOnly: &t, VolumeAttributes: attrs,
				}},
			}},
		},
	}
}

// Case is one pod the policy must reject (Want is a part of the message) or
// admit (Want is empty).
type Case struct {
	Name      string
	Namespace string
	// Source is the volume's source attribute ("" names none).
	Source string
	// Mutate changes the pod after it is built; nil leaves it.
	Mutate func(p *corev1.Pod)
	Want   string
}

// Cases are the rejections and admissions for a policy rendered with
// Values() on top of defaultSource for driver.
func Cases(driver, defaultSource string) []Case {
	csi := func(p *corev1.Pod) *corev1.CSIVolumeSource { return p.Spec.Volumes[0].CSI }
	sorted := func(s ...string) string { slices.Sort(s); return strings.Join(s, ", ") }
	known := sorted("labelled", defaultSource, "team-only")
	return []Case{
		{Name: "no-readonly", Namespace: Other, Mutate: func(p *corev1.Pod) { csi(p).ReadOnly = nil },
			Want: `volume "agent-socket": spec.volumes[].csi.readOnly must be true (driver ` + driver + ` mounts read-only only); allowed values: true`},
		{Name: "readonly-false", Namespace: Other, Mutate: func(p *corev1.Pod) { csi(p).ReadOnly = ptr(false) },
			Want: `volume "agent-socket": spec.volumes[].csi.readOnly must be true`},
		{Name: "unknown-source", Namespace: Other, Source: "no-such-source",
			Want: `volume "agent-socket": spec.volumes[].csi.volumeAttributes.source "no-such-source" is not a source of driver ` + driver + `; allowed values: ` + known},
		{Name: "extra-attribute", Namespace: Other, Mutate: func(p *corev1.Pod) { csi(p).VolumeAttributes["path"] = "/etc" },
			Want: `volume "agent-socket": spec.volumes[].csi.volumeAttributes sets "path"; allowed keys: source`},
		{Name: "namespace-not-listed", Namespace: Other, Source: "team-only",
			Want: `volume "agent-socket": spec.volumes[].csi.volumeAttributes.source "team-only" may not be used in namespace "` + Other + `" (allowed in namespaces ` + TeamA + `); allowed values here: ` + defaultSource},
		{Name: "namespace-not-labelled", Namespace: TeamA, Source: "labelled",
			Want: `source "labelled" may not be used in namespace "` + TeamA + `" (allowed in namespaces labelled ` + GoldKey + `=` + GoldValue + `); allowed values here: ` + sorted(defaultSource, "team-only")},
		{Name: "default-source", Namespace: Other},
		{Name: "listed-namespace", Namespace: TeamA, Source: "team-only"},
		{Name: "labelled-namespace", Namespace: Gold, Source: "labelled"},
		{Name: "other-driver", Namespace: Other, Source: "no-such-source", Mutate: func(p *corev1.Pod) {
			csi(p).Driver = "other.csi.example.com"
			csi(p).ReadOnly = nil
		}},
	}
}

// WaitEnforced waits until the API server rejects a pod without readOnly in
// namespace (a dry run): a new policy takes a moment to reach the admission
// plugin. The returned error carries the last answer.
func WaitEnforced(ctx context.Context, kc kubernetes.Interface, namespace, driver, image string, timeout time.Duration) error {
	p := Pod(namespace, "policy-probe", driver, "", image)
	p.Spec.Volumes[0].CSI.ReadOnly = nil
	var last error
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		_, err := kc.CoreV1().Pods(namespace).Create(ctx, p, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		last = err
		return err != nil && strings.Contains(err.Error(), "readOnly must be true"), nil
	})
	if err != nil {
		return fmt.Errorf("the policy is not enforced after %s (last answer: %w)", timeout, last)
	}
	return nil
}

func ptr[T any](v T) *T { return &v }
