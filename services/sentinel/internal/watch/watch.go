// Package watch keeps an event-driven picture of the pods that block the
// removal of a CSI driver: every pod, in any namespace, with a volume whose
// csi.driver is the driver's name, from the moment it is created until its
// object is gone (Terminating pods included). It holds one shared pod informer
// whose transform strips each pod to the handful of fields used here, so
// memory stays small on large clusters, and after the initial LIST it learns
// only from watch events.
package watch

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
	watchapi "k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
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
	OwnerKind string `json:"ownerKind,omitempty"`
	OwnerName string `json:"ownerName,omitempty"`
	Node      string `json:"node,omitempty"`
	Phase     string `json:"phase,omitempty"`
	// TerminatingSince is the pod's deletionTimestamp, if it has one.
	TerminatingSince *time.Time `json:"terminatingSince,omitempty"`
	// NodeGone is true when the pod's Node object no longer exists.
	NodeGone bool `json:"nodeGone,omitempty"`
}

// String renders the blocker the way progress reports list it.
func (b Blocker) String() string {
	s := b.Namespace + "/" + b.Name
	if b.OwnerKind != "" {
		s += " owner=" + b.OwnerKind + "/" + b.OwnerName
	} else {
		s += " owner=none"
	}
	node := b.Node
	if node == "" {
		node = "<unscheduled>"
	}
	s += " node=" + node
	if b.NodeGone {
		s += " (node gone)"
	}
	if b.TerminatingSince != nil {
		s += " terminating since " + b.TerminatingSince.UTC().Format(time.RFC3339)
	} else {
		s += " phase=" + b.Phase
	}
	return s
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

// BlockerFor converts a pod into its Blocker description.
func BlockerFor(pod *corev1.Pod) Blocker {
	b := Blocker{Namespace: pod.Namespace, Name: pod.Name, Node: pod.Spec.NodeName, Phase: string(pod.Status.Phase)}
	if ref := metav1.GetControllerOfNoCopy(pod); ref != nil {
		b.OwnerKind, b.OwnerName = ref.Kind, ref.Name
	} else if len(pod.OwnerReferences) > 0 {
		b.OwnerKind, b.OwnerName = pod.OwnerReferences[0].Kind, pod.OwnerReferences[0].Name
	}
	if pod.DeletionTimestamp != nil {
		t := pod.DeletionTimestamp.Time
		b.TerminatingSince = &t
	}
	return b
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

// Strip returns a transform that reduces each pod to a PodInfo: identity,
// deletionTimestamp, the controller (or first owner) reference, and for pods
// with a volume of driver their node and phase. It is idempotent, as informer
// transforms must be.
func Strip(driver string) cache.TransformFunc {
	return func(obj any) (any, error) {
		if pod, ok := obj.(*corev1.Pod); ok {
			return Info(pod, driver), nil
		}
		// PodInfos, tombstones and other wrappers pass through untouched.
		return obj, nil
	}
}

// ListPageSize is the page size of the informer's initial list.
const ListPageSize = 500

// Tracker watches all pods and answers which of them block removal.
type Tracker struct {
	driver   string
	informer cache.SharedIndexInformer
	wg       sync.WaitGroup
	changed  broadcast
}

// strippedList lists all pods in pages of ListPageSize from the API server
// (a consistent read, not the watch cache's unpaged "resourceVersion=0"
// answer) and strips every pod as its page arrives, so a large cluster never
// has all its full pod objects in memory at once.
func strippedList(client kubernetes.Interface, strip cache.TransformFunc) cache.ListWithContextFunc {
	return func(ctx context.Context, options metav1.ListOptions) (runtime.Object, error) {
		opts := metav1.ListOptions{LabelSelector: options.LabelSelector, FieldSelector: options.FieldSelector, Limit: ListPageSize}
		out := &PodInfoList{}
		for {
			page, err := client.CoreV1().Pods(metav1.NamespaceAll).List(ctx, opts)
			if err != nil {
				return nil, err
			}
			if out.ResourceVersion == "" {
				out.ResourceVersion = page.ResourceVersion
			}
			for i := range page.Items {
				obj, err := strip(&page.Items[i])
				if err != nil {
					return nil, err
				}
				out.Items = append(out.Items, *obj.(*PodInfo))
			}
			if page.Continue == "" {
				return out, nil
			}
			opts.Continue = page.Continue
		}
	}
}

// NewTracker builds a Tracker over client for driver. Nothing runs until
// Start is called.
func NewTracker(client kubernetes.Interface, driver string) (*Tracker, error) {
	if client == nil {
		return nil, errors.New("watch: a kubernetes client is required")
	}
	if driver == "" {
		return nil, errors.New("watch: --driver-name must not be empty")
	}
	t := &Tracker{driver: driver}
	strip := Strip(driver)
	lw := &cache.ListWatch{
		ListWithContextFunc: strippedList(client, strip),
		WatchFuncWithContext: func(ctx context.Context, options metav1.ListOptions) (watchapi.Interface, error) {
			return client.CoreV1().Pods(metav1.NamespaceAll).Watch(ctx, options)
		},
		// strippedList pages by itself.
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
	if err := t.informer.SetTransform(strip); err != nil {
		return nil, fmt.Errorf("failed to set pod transform: %w", err)
	}
	notify := func(any) { t.notify() }
	if _, err := t.informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    notify,
		UpdateFunc: func(_, n any) { t.notify() },
		DeleteFunc: notify,
	}); err != nil {
		return nil, fmt.Errorf("failed to add pod event handler: %w", err)
	}
	return t, nil
}

// Start runs the informer until ctx is done.
func (t *Tracker) Start(ctx context.Context) {
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		t.informer.RunWithContext(ctx)
	}()
}

// Shutdown waits for the informer goroutine after ctx was cancelled.
func (t *Tracker) Shutdown() { t.wg.Wait() }

// WaitForSync blocks until the initial LIST is in the cache or ctx ends.
func (t *Tracker) WaitForSync(ctx context.Context) bool {
	return cache.WaitForCacheSync(ctx.Done(), t.informer.HasSynced)
}

// HasSynced reports whether the initial LIST is in the cache.
func (t *Tracker) HasSynced() bool { return t.informer.HasSynced() }

// Changed returns a channel closed at the next pod event after the call.
// Callers re-read Blockers after it fires.
func (t *Tracker) Changed() <-chan struct{} { return t.changed.wait() }

func (t *Tracker) notify() { t.changed.notify() }

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

// Blockers returns the pods that use the driver now, sorted.
func (t *Tracker) Blockers() []Blocker {
	objs, err := t.informer.GetIndexer().ByIndex(indexBlocking, blockingValue)
	if err != nil {
		return nil // the index is registered in NewTracker; cannot fail
	}
	out := make([]Blocker, 0, len(objs))
	for _, o := range objs {
		if p, ok := o.(*PodInfo); ok {
			out = append(out, blockerOf(p))
		}
	}
	SortBlockers(out)
	return out
}

// ControlledBy counts the pods whose controller has uid (e.g. a DaemonSet).
func (t *Tracker) ControlledBy(uid string) int {
	objs, err := t.informer.GetIndexer().ByIndex(indexController, uid)
	if err != nil {
		return 0
	}
	return len(objs)
}

// Cached reports how many pods the cache holds (for benchmarks and debug logs).
func (t *Tracker) Cached() int { return len(t.informer.GetStore().ListKeys()) }

// FreshBlockers reads all pods from the API server in pages (not from any
// cache) and returns those that use driver. It is the last check before
// anything is deleted.
func FreshBlockers(ctx context.Context, client kubernetes.Interface, driver string, pageSize int64) ([]Blocker, error) {
	var out []Blocker
	opts := metav1.ListOptions{Limit: pageSize}
	for {
		list, err := client.CoreV1().Pods(metav1.NamespaceAll).List(ctx, opts)
		if err != nil {
			return nil, fmt.Errorf("failed to list pods: %w", err)
		}
		for i := range list.Items {
			if UsesDriver(&list.Items[i], driver) {
				out = append(out, BlockerFor(&list.Items[i]))
			}
		}
		if list.Continue == "" {
			break
		}
		opts.Continue = list.Continue
	}
	SortBlockers(out)
	return out, nil
}
