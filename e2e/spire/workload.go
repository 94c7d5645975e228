package spire

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshcsi/meshcsi/e2e/kube"
	"github.com/meshcsi/meshcsi/e2e/spire/fetch"
)

// WorkloadOptions describes a workload pod.
type WorkloadOptions struct {
	// Namespace, Name and ServiceAccount of the pod.
	Namespace, Name, ServiceAccount string
	// Driver is the meshcsi CSI driver name and Source the meshcsi source
	// that is the agent's socket directory.
	Driver, Source string
	// ImageTag is the workload image's tag.
	ImageTag string
}

// WorkloadPod is a pod that fetches its X509-SVID every second through the
// meshcsi volume. It satisfies Pod Security "restricted" and has no other
// volume: not even a service-account token (the k8s workload attestor reads
// the service account from the pod's spec).
func WorkloadPod(o WorkloadOptions) *corev1.Pod {
	f, t := false, true
	uid := int64(65532)
	grace := int64(2)
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: o.Name, Namespace: o.Namespace, Labels: map[string]string{"app": "spire-workload"}},
		Spec: corev1.PodSpec{
			ServiceAccountName:            o.ServiceAccount,
			AutomountServiceAccountToken:  &f,
			TerminationGracePeriodSeconds: &grace,
			SecurityContext: &corev1.PodSecurityContext{
				RunAsNonRoot: &t, RunAsUser: &uid, RunAsGroup: &uid,
				SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
			},
			Containers: []corev1.Container{{
				Name:            "workload",
				Image:           Workload.Ref(o.ImageTag),
				ImagePullPolicy: corev1.PullNever,
				Args:            []string{"--socket", "/run/spire/sockets/" + SocketName, "--interval", "1s"},
				VolumeMounts:    []corev1.VolumeMount{{Name: "spire-agent-socket", MountPath: "/run/spire/sockets", ReadOnly: true}},
				SecurityContext: &corev1.SecurityContext{
					AllowPrivilegeEscalation: &f,
					ReadOnlyRootFilesystem:   &t,
					Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
				},
			}},
			Volumes: []corev1.Volume{{
				Name: "spire-agent-socket",
				VolumeSource: corev1.VolumeSource{CSI: &corev1.CSIVolumeSource{
					Driver: o.Driver, ReadOnly: &t, VolumeAttributes: map[string]string{"source": o.Source},
				}},
			}},
		},
	}
}

// Attempts returns the fetch attempts in a workload pod's log.
func Attempts(ctx context.Context, kc *kube.Client, namespace, pod string) ([]fetch.Attempt, error) {
	raw, err := kc.Kube.CoreV1().Pods(namespace).GetLogs(pod, &corev1.PodLogOptions{}).DoRaw(ctx)
	if err != nil {
		return nil, fmt.Errorf("failed to get the log of %s/%s: %w", namespace, pod, err)
	}
	return fetch.Parse(string(raw)), nil
}
