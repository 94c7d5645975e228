package tracker

import (
	"context"
	"errors"
	"fmt"
	"sync"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	typedstoragev1 "k8s.io/client-go/kubernetes/typed/storage/v1"
	"k8s.io/client-go/tools/cache"
)

// Named watches one object by name (a metadata.name field selector, which
// RBAC's resourceNames allows for list and watch) and keeps only its
// identity: whether it exists and its UID.
type Named struct {
	key      string
	informer cache.SharedIndexInformer
	wg       sync.WaitGroup
	changed  broadcast
}

type listFunc func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error)
type watchFunc func(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error)

func newNamed(namespace, name string, example runtime.Object, list listFunc, watchFn watchFunc) (*Named, error) {
	byName := func(o metav1.ListOptions) metav1.ListOptions {
		o.FieldSelector = fields.OneTermEqualSelector("metadata.name", name).String()
		return o
	}
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) { return list(ctx, byName(o)) },
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			return watchFn(ctx, byName(o))
		},
	}
	n := &Named{key: name}
	if namespace != "" {
		n.key = namespace + "/" + name
	}
	n.informer = cache.NewSharedIndexInformerWithOptions(lw, example, cache.SharedIndexInformerOptions{ObjectDescription: n.key})
	if err := n.informer.SetTransform(func(obj any) (any, error) {
		m, err := meta.Accessor(obj)
		if err != nil {
			return obj, nil // tombstones pass through
		}
		return &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{
			Name: m.GetName(), Namespace: m.GetNamespace(), UID: m.GetUID(), ResourceVersion: m.GetResourceVersion(),
		}}, nil
	}); err != nil {
		return nil, fmt.Errorf("failed to set transform for %s: %w", n.key, err)
	}
	notify := func(any) { n.changed.notify() }
	if _, err := n.informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: notify, UpdateFunc: func(_, _ any) { n.changed.notify() }, DeleteFunc: notify,
	}); err != nil {
		return nil, fmt.Errorf("failed to add event handler for %s: %w", n.key, err)
	}
	return n, nil
}

// Start runs the informer until ctx is done.
func (n *Named) Start(ctx context.Context) {
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		n.informer.RunWithContext(ctx)
	}()
}

// Shutdown waits for the informer goroutine after ctx was cancelled.
func (n *Named) Shutdown() { n.wg.Wait() }

// WaitForSync blocks until the initial LIST is in the cache or ctx ends.
func (n *Named) WaitForSync(ctx context.Context) bool {
	return cache.WaitForCacheSync(ctx.Done(), n.informer.HasSynced)
}

// UID returns the object's UID, or "" when it does not exist.
func (n *Named) UID() string {
	obj, ok, err := n.informer.GetStore().GetByKey(n.key)
	if err != nil || !ok {
		return ""
	}
	if m, err := meta.Accessor(obj); err == nil {
		return string(m.GetUID())
	}
	return ""
}

// Changed returns a channel closed at the next event after the call.
func (n *Named) Changed() <-chan struct{} { return n.changed.wait() }

// Marker watches the release's install-marker ConfigMap. The chart creates it
// on every install and Helm deletes it on uninstall, so a marker whose UID
// differs from the one recorded at hand-off means the release was installed
// again.
type Marker struct{ *Named }

// NewMarker builds a Marker for namespace/name. Nothing runs until Start.
func NewMarker(core typedcorev1.CoreV1Interface, namespace, name string) (*Marker, error) {
	if core == nil || namespace == "" || name == "" {
		return nil, errors.New("tracker: core client, --namespace and --install-marker are required")
	}
	cms := core.ConfigMaps(namespace)
	n, err := newNamed(namespace, name, &corev1.ConfigMap{},
		func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) { return cms.List(ctx, o) },
		func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) { return cms.Watch(ctx, o) })
	if err != nil {
		return nil, err
	}
	return &Marker{n}, nil
}

// Reinstalled reports whether the marker shows a newer install than the one
// whose marker UID was recorded: a marker exists and its UID differs.
func (m *Marker) Reinstalled(recorded string) bool {
	uid := m.UID()
	return uid != "" && uid != recorded
}

// NewCSIDriver watches the CSIDriver named driver: while one exists, pods
// can get volumes of the driver, so the DaemonSet must stay.
func NewCSIDriver(storage typedstoragev1.StorageV1Interface, driver string) (*Named, error) {
	if storage == nil || driver == "" {
		return nil, errors.New("tracker: storage client and --driver-name are required")
	}
	cs := storage.CSIDrivers()
	return newNamed("", driver, &storagev1.CSIDriver{},
		func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) { return cs.List(ctx, o) },
		func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) { return cs.Watch(ctx, o) })
}
