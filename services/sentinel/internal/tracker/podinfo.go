package tracker

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/tools/cache"
)

// PodInfo is what Pods keeps of a pod: a few hundred bytes instead of
// a full corev1.Pod (whose empty struct alone is over a kilobyte), so ten
// thousand pods fit in a few MiB. It embeds ObjectMeta, holding only name,
// namespace, UID, resourceVersion, deletionTimestamp and the controller
// reference, so informer key functions and indexers work unchanged.
type PodInfo struct {
	metav1.TypeMeta
	metav1.ObjectMeta
	// Node is spec.nodeName, Phase status.phase; set only for blocking pods.
	Node  string
	Phase corev1.PodPhase
	// Blocking is true when the pod has a CSI volume of the driver.
	Blocking bool
}

// GetObjectKind implements runtime.Object.
func (p *PodInfo) GetObjectKind() schema.ObjectKind { return &p.TypeMeta }

// DeepCopyObject implements runtime.Object.
func (p *PodInfo) DeepCopyObject() runtime.Object {
	out := *p
	p.DeepCopyInto(&out.ObjectMeta)
	return &out
}

// PodInfoList is the list type the tracker's paged list returns.
type PodInfoList struct {
	metav1.TypeMeta
	metav1.ListMeta
	Items []PodInfo
}

// GetObjectKind implements runtime.Object.
func (l *PodInfoList) GetObjectKind() schema.ObjectKind { return &l.TypeMeta }

// DeepCopyObject implements runtime.Object.
func (l *PodInfoList) DeepCopyObject() runtime.Object {
	out := &PodInfoList{TypeMeta: l.TypeMeta}
	l.DeepCopyInto(&out.ListMeta)
	out.Items = make([]PodInfo, len(l.Items))
	for i := range l.Items {
		out.Items[i] = *l.Items[i].DeepCopyObject().(*PodInfo)
	}
	return out
}

// Info reduces pod to a PodInfo for driver.
func Info(pod *corev1.Pod, driver string) *PodInfo {
	out := &PodInfo{ObjectMeta: metav1.ObjectMeta{
		Name:              pod.Name,
		Namespace:         pod.Namespace,
		UID:               pod.UID,
		ResourceVersion:   pod.ResourceVersion,
		DeletionTimestamp: pod.DeletionTimestamp,
	}}
	if ref := metav1.GetControllerOfNoCopy(pod); ref != nil {
		out.OwnerReferences = []metav1.OwnerReference{{Kind: ref.Kind, Name: ref.Name, UID: ref.UID, Controller: ref.Controller}}
	} else if len(pod.OwnerReferences) > 0 {
		r := pod.OwnerReferences[0]
		out.OwnerReferences = []metav1.OwnerReference{{Kind: r.Kind, Name: r.Name, UID: r.UID}}
	}
	if UsesDriver(pod, driver) {
		out.Blocking, out.Node, out.Phase = true, pod.Spec.NodeName, pod.Status.Phase
	}
	return out
}

// Strip returns a transform that reduces each pod to a PodInfo. It is
// idempotent, as informer transforms must be.
func Strip(driver string) cache.TransformFunc {
	return func(obj any) (any, error) {
		if pod, ok := obj.(*corev1.Pod); ok {
			return Info(pod, driver), nil
		}
		// PodInfos, tombstones and other wrappers pass through untouched.
		return obj, nil
	}
}

// blocker describes a blocking PodInfo.
func (p *PodInfo) blocker() Blocker {
	b := Blocker{Namespace: p.Namespace, Name: p.Name, UID: string(p.UID), Node: p.Node, Phase: string(p.Phase)}
	if len(p.OwnerReferences) > 0 {
		b.OwnerKind, b.OwnerName = p.OwnerReferences[0].Kind, p.OwnerReferences[0].Name
	}
	if p.DeletionTimestamp != nil {
		t := p.DeletionTimestamp.Time
		b.TerminatingSince = &t
	}
	return b
}
