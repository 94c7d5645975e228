package kube

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
)

// PodReady reports whether the pod is Running with every container ready.
func PodReady(p *corev1.Pod) bool {
	if p.Status.Phase != corev1.PodRunning {
		return false
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// PodState describes a pod for a failure message: its phase (or since when
// it is terminating), then each container that waits or has terminated, with
// the reason and message, and its restarts.
func PodState(p *corev1.Pod) string {
	s := string(p.Status.Phase)
	if p.DeletionTimestamp != nil {
		s = "Terminating since " + p.DeletionTimestamp.Format("15:04:05")
	}
	for _, cs := range p.Status.ContainerStatuses {
		switch {
		case cs.State.Waiting != nil:
			s += fmt.Sprintf(", %s waiting: %s", cs.Name, cs.State.Waiting.Reason)
			if m := cs.State.Waiting.Message; m != "" {
				s += " " + m
			}
		case cs.State.Terminated != nil:
			s += fmt.Sprintf(", %s terminated: %s (exit %d)", cs.Name, cs.State.Terminated.Reason, cs.State.Terminated.ExitCode)
		}
		if cs.RestartCount > 0 {
			s += fmt.Sprintf(", %d restarts", cs.RestartCount)
		}
	}
	return s
}
