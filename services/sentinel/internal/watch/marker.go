package watch

import (
	"context"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// Marker watches the release's install-marker ConfigMap. The chart creates it
// on every install and Helm deletes it on uninstall, so a marker whose UID
// differs from the one recorded at hand-off means the release was installed
// again. Only the one named object is listed and watched.
type Marker struct {
	namespace, name string
	factory         informers.SharedInformerFactory
	informer        cache.SharedIndexInformer
	changed         broadcast
}

// NewMarker builds a Marker for namespace/name. Nothing runs until Start.
func NewMarker(client kubernetes.Interface, namespace, name string) (*Marker, error) {
	if client == nil || namespace == "" || name == "" {
		return nil, errors.New("watch: client, --namespace and --install-marker are required")
	}
	m := &Marker{namespace: namespace, name: name}
	m.factory = informers.NewSharedInformerFactoryWithOptions(client, 0,
		informers.WithNamespace(namespace),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("metadata.name", name).String()
		}),
		informers.WithTransform(func(obj any) (any, error) {
			if cm, ok := obj.(*corev1.ConfigMap); ok {
				return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{
					Name: cm.Name, Namespace: cm.Namespace, UID: cm.UID, ResourceVersion: cm.ResourceVersion,
				}}, nil
			}
			return obj, nil
		}))
	m.informer = m.factory.Core().V1().ConfigMaps().Informer()
	notify := func(any) { m.notify() }
	if _, err := m.informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: notify, UpdateFunc: func(_, _ any) { m.notify() }, DeleteFunc: notify,
	}); err != nil {
		return nil, fmt.Errorf("failed to add marker event handler: %w", err)
	}
	return m, nil
}

// Start runs the informer until ctx is done.
func (m *Marker) Start(ctx context.Context) { m.factory.Start(ctx.Done()) }

// Shutdown waits for the informer goroutines after ctx was cancelled.
func (m *Marker) Shutdown() { m.factory.Shutdown() }

// WaitForSync blocks until the initial LIST is in the cache or ctx ends.
func (m *Marker) WaitForSync(ctx context.Context) bool {
	return cache.WaitForCacheSync(ctx.Done(), m.informer.HasSynced)
}

// UID returns the marker's UID, or "" when it does not exist.
func (m *Marker) UID() string {
	obj, ok, err := m.informer.GetStore().GetByKey(m.namespace + "/" + m.name)
	if err != nil || !ok {
		return ""
	}
	if cm, ok := obj.(*corev1.ConfigMap); ok {
		return string(cm.UID)
	}
	return ""
}

// Reinstalled reports whether the marker shows a newer install than the one
// whose marker UID was recorded: a marker exists and its UID differs.
func (m *Marker) Reinstalled(recorded string) bool {
	uid := m.UID()
	return uid != "" && uid != recorded
}

// Changed returns a channel closed at the next marker event after the call.
func (m *Marker) Changed() <-chan struct{} { return m.changed.wait() }

func (m *Marker) notify() { m.changed.notify() }
