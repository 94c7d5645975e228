package spire

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

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
	// Labels are added to the pod's (app: spire-workload by default).
	Labels map[string]string
}

// WorkloadPod is a pod that fetches its X509-SVID every second through the
// meshcsi volume. It satisfies Pod Security "restricted" and has no other
// volume: not even a service-account token (the k8s workload attestor reads
// the service account from the pod's spec).
func WorkloadPod(o WorkloadOptions) *corev1.Pod {
	f, t := false, true
	uid := int64(65532)
	grace := int64(2)
	labels := map[string]string{"app": "spire-workload"}
	for k, v := range o.Labels {
		labels[k] = v
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: o.Name, Namespace: o.Namespace, Labels: labels},
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

// WaitSVID waits until the workload pod's log shows an SVID fetched at or
// after since and returns that attempt. On timeout the error carries the
// last fetch error (e.g. the agent's "no identity issued").
func WaitSVID(ctx context.Context, kc *kube.Client, namespace, pod string, since time.Time, timeout time.Duration) (fetch.Attempt, error) {
	var got fetch.Attempt
	var last error
	err := wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		attempts, err := Attempts(ctx, kc, namespace, pod)
		if err != nil {
			last = err
			return false, nil
		}
		lastErr := "none"
		for _, a := range attempts {
			if !a.Time.Before(since) && a.OK() {
				got = a
				return true, nil
			}
			if a.Error != "" {
				lastErr = a.Error
			}
		}
		last = fmt.Errorf("%d attempts, none with an SVID since %s; last error: %s", len(attempts), since.Format(time.RFC3339), lastErr)
		return false, nil
	})
	if err != nil {
		return got, fmt.Errorf("pod %s/%s fetched no X509-SVID within %s: %w", namespace, pod, timeout, last)
	}
	return got, nil
}
