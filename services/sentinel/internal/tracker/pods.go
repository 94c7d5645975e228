// Package tracker keeps event-driven pictures of what the sentinel waits on:
// the pods that block the removal of a CSI driver (every pod, in any
// namespace, with a volume whose csi.driver is the driver's name, from its
// creation until its object is gone), single named objects (the install
// marker, the CSIDriver), and the names of the cluster's Nodes. Each is a
// client-go informer that keeps only what is used, and after the initial
// LIST learns only from watch events.
package tracker

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/meshcsi/meshcsi/services/sentinel/internal/kube"
)

const (
	indexBlocking   = "meshcsi-blocking"
	indexController = "meshcsi-controller-uid"
	blockingValue   = "true"
)

// Blocker describes one pod that keeps the driver in place.
type Blocker struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	UID       string `json:"uid,omitempty"`
	OwnerKind string `json:"ownerKind,omitempty"`
	OwnerName string `json:"ownerName,omitempty"`
	Node      string `json:"node,omitempty"`
	Phase     string `json:"phase,omitempty"`
	// TerminatingSince is the pod's deletionTimestamp, if it has one.
	TerminatingSince *time.Time `json:"terminatingSince,omitempty"`
	// NodeGone is true when the pod's Node object no longer exists.
	NodeGone bool `json:"nodeGone,omitempty"`
}

// String is the one rendering of a blocker, used by the log, the Events and
// the plan command: "ns/name (Kind/owner, node N, Phase)".
func (b Blocker) String() string {
	owner := "no owner"
	if b.OwnerKind != "" {
		owner = b.OwnerKind + "/" + b.OwnerName
	}
	node := b.Node
	if node == "" {
		node = "<unscheduled>"
	}
	if b.NodeGone {
		node += " (gone)"
	}
	state := b.Phase
	if b.TerminatingSince != nil {
		state = "terminating since " + b.TerminatingSince.UTC().Format(time.RFC3339)
	}
	return fmt.Sprintf("%s/%s (%s, node %s, %s)", b.Namespace, b.Name, owner, node, state)
}

// UsesDriver reports whether pod has a CSI volume of driver.
func UsesDriver(pod *corev1.Pod, driver string) bool {
	for i := range pod.Spec.Volumes {
		if csi := pod.Spec.Volumes[i].CSI; csi != nil && csi.Driver == driver {
			return true
		}
	}
	return false
}

// SortBlockers orders blockers by namespace and name, for stable reports.
func SortBlockers(bs []Blocker) {
	sort.Slice(bs, func(i, j int) bool {
		if bs[i].Namespace != bs[j].Namespace {
			return bs[i].Namespace < bs[j].Namespace
		}
		return bs[i].Name < bs[j].Name
	})
}

// Pods watches the pods that matter to removal and answers which of them
// block it. It keeps, of all the cluster's pods, only those that use the
// driver (a pod's volumes never change, so a pod that does not use the
// driver never will) and the driver's own DaemonSet pods in the install
// namespace (to wait for them after the DaemonSet is deleted); the others
// are dropped from the paged initial list and from the watch before they
// reach the store. Memory grows with the blocking pods, not the cluster.
type Pods struct {
	driver, namespace string
	informer          cache.SharedIndexInformer
	wg                sync.WaitGroup
	changed           broadcast
}

// keep decides which pods the store holds (see Pods).
func (t *Pods) keep(pod *corev1.Pod) bool {
	if UsesDriver(pod, t.driver) {
		return true
	}
	ref := metav1.GetControllerOfNoCopy(pod)
	return pod.Namespace == t.namespace && ref != nil && ref.Kind == "DaemonSet"
}

// stored reports whether the store holds pod.
func (t *Pods) stored(pod *corev1.Pod) bool {
	_, ok, err := t.informer.GetStore().GetByKey(pod.Namespace + "/" + pod.Name)
	return err == nil && ok
}

// NewPods builds a Pods tracker over core for driver, installed in
// namespace. Nothing runs until Start is called.
func NewPods(core typedcorev1.CoreV1Interface, driver, namespace string) (*Pods, error) {
	if core == nil {
		return nil, errors.New("tracker: a core client is required")
	}
	if driver == "" || namespace == "" {
		return nil, errors.New("tracker: --driver-name and --namespace must not be empty")
	}
	t := &Pods{driver: driver, namespace: namespace}
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, options metav1.ListOptions) (runtime.Object, error) {
			out := &PodInfoList{}
			opts := metav1.ListOptions{LabelSelector: options.LabelSelector, FieldSelector: options.FieldSelector}
			rv, err := kube.EachPod(ctx, core, opts, func(pod *corev1.Pod) error {
				if t.keep(pod) {
					out.Items = append(out.Items, *Info(pod, driver))
				}
				return nil
			})
			out.ResourceVersion = rv
			return out, err
		},
		WatchFuncWithContext: func(ctx context.Context, options metav1.ListOptions) (watch.Interface, error) {
			w, err := core.Pods(metav1.NamespaceAll).Watch(ctx, options)
			if err != nil {
				return nil, err
			}
			return watch.Filter(w, func(e watch.Event) (watch.Event, bool) {
				pod, ok := e.Object.(*corev1.Pod)
				// A pod the store holds is followed to its end even if it no
				// longer qualifies (a driver pod orphaned from its DaemonSet),
				// so no stale entry is left behind.
				return e, !ok || t.keep(pod) || (e.Type != watch.Added && t.stored(pod))
			}), nil
		},
		// The list pages by itself (kube.EachPod).
		DisableChunking: true,
	}
	indexers := cache.Indexers{
		indexBlocking: func(obj any) ([]string, error) {
			if p, ok := obj.(*PodInfo); ok && p.Blocking {
				return []string{blockingValue}, nil
			}
			return nil, nil
		},
		indexController: func(obj any) ([]string, error) {
			p, ok := obj.(*PodInfo)
			if !ok || len(p.OwnerReferences) == 0 || p.OwnerReferences[0].Controller == nil || !*p.OwnerReferences[0].Controller {
				return nil, nil
			}
			return []string{string(p.OwnerReferences[0].UID)}, nil
		},
	}
	t.informer = cache.NewSharedIndexInformerWithOptions(lw, &corev1.Pod{}, cache.SharedIndexInformerOptions{ObjectDescription: "pods", Indexers: indexers})
	if err := t.informer.SetTransform(Strip(driver)); err != nil {
		return nil, fmt.Errorf("failed to set pod transform: %w", err)
	}
	notify := func(any) { t.changed.notify() }
	if _, err := t.informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    notify,
		UpdateFunc: func(_, _ any) { t.changed.notify() },
		DeleteFunc: notify,
	}); err != nil {
		return nil, fmt.Errorf("failed to add pod event handler: %w", err)
	}
	return t, nil
}

// Start runs the informer until ctx is done.
func (t *Pods) Start(ctx context.Context) {
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		t.informer.RunWithContext(ctx)
	}()
}

// Shutdown waits for the informer goroutine after ctx was cancelled.
func (t *Pods) Shutdown() { t.wg.Wait() }

// WaitForSync blocks until the initial LIST is in the cache or ctx ends.
func (t *Pods) WaitForSync(ctx context.Context) bool {
	return cache.WaitForCacheSync(ctx.Done(), t.informer.HasSynced)
}

// Changed returns a channel closed at the next pod event after the call.
// Callers re-read Blockers after it fires.
func (t *Pods) Changed() <-chan struct{} { return t.changed.wait() }

// Blockers returns the pods that use the driver now, sorted.
func (t *Pods) Blockers() []Blocker {
	objs, err := t.informer.GetIndexer().ByIndex(indexBlocking, blockingValue)
	if err != nil {
		return nil // the index is registered in NewPods; cannot fail
	}
	out := make([]Blocker, 0, len(objs))
	for _, o := range objs {
		if p, ok := o.(*PodInfo); ok {
			out = append(out, p.blocker())
		}
	}
	SortBlockers(out)
	return out
}

// ControlledBy counts the pods whose controller has uid (e.g. a DaemonSet).
func (t *Pods) ControlledBy(uid string) int {
	objs, err := t.informer.GetIndexer().ByIndex(indexController, uid)
	if err != nil {
		return 0
	}
	return len(objs)
}

// Cached reports how many pods the store holds (for logs and benchmarks).
func (t *Pods) Cached() int { return len(t.informer.GetStore().ListKeys()) }

// FreshBlockers reads all pods from the API server in pages (not from any
// cache) and returns those that use driver. It is the last check before
// anything is deleted.
func FreshBlockers(ctx context.Context, core typedcorev1.CoreV1Interface, driver string) ([]Blocker, error) {
	var out []Blocker
	_, err := kube.EachPod(ctx, core, metav1.ListOptions{}, func(pod *corev1.Pod) error {
		if UsesDriver(pod, driver) {
			out = append(out, Info(pod, driver).blocker())
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	SortBlockers(out)
	return out, nil
}

// broadcast is a one-shot signal that re-arms itself: every caller of wait
// until the next notify shares one channel, which notify closes. Sharing
// matters: a sentinel waiting for days re-arms at every wake-up, and one
// channel per call would pile up between the (rare) events of the other
// watch.
type broadcast struct {
	mu sync.Mutex
	ch chan struct{}
}

func (b *broadcast) wait() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ch == nil {
		b.ch = make(chan struct{})
	}
	return b.ch
}

func (b *broadcast) notify() {
	b.mu.Lock()
	ch := b.ch
	b.ch = nil
	b.mu.Unlock()
	if ch != nil {
		close(ch)
	}
}
