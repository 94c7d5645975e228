// Package namespaces keeps a read-only cache of namespace labels, for
// sources limited to namespaces by a label selector. It lists and watches
// namespaces only (RBAC: get, list, watch on namespaces), through one
// informer that keeps just each namespace's name and labels.
package namespaces

import (
	"context"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// ErrNotSynced means the cache has not listed the namespaces yet.
var ErrNotSynced = errors.New("the namespace cache has not synced with the API server yet")

// Cache answers with namespace labels from an informer.
type Cache struct {
	factory  informers.SharedInformerFactory
	informer cache.SharedIndexInformer
}

// New builds a Cache on client; Start runs it.
func New(client kubernetes.Interface) (*Cache, error) {
	f := informers.NewSharedInformerFactoryWithOptions(client, 0,
		informers.WithTransform(slim))
	inf := f.Core().V1().Namespaces().Informer()
	return &Cache{factory: f, informer: inf}, nil
}

// slim keeps only what the driver reads: a namespace's name and labels.
func slim(obj any) (any, error) {
	ns, ok := obj.(*corev1.Namespace)
	if !ok {
		return obj, nil
	}
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		Name: ns.Name, Labels: ns.Labels, ResourceVersion: ns.ResourceVersion,
	}}, nil
}

// Start runs the informer until ctx is done. It does not wait for the first
// list: publish answers Unavailable until then (the kubelet retries), and
// unpublish never needs namespaces.
func (c *Cache) Start(ctx context.Context) { c.factory.Start(ctx.Done()) }

// Synced reports whether the first list is in the cache.
func (c *Cache) Synced() bool { return c.informer.HasSynced() }

// Labels implements node.Namespaces.
func (c *Cache) Labels(name string) (map[string]string, bool, error) {
	if !c.informer.HasSynced() {
		return nil, false, ErrNotSynced
	}
	obj, found, err := c.informer.GetStore().GetByKey(name)
	if err != nil || !found {
		return nil, false, err
	}
	ns, ok := obj.(*corev1.Namespace)
	if !ok {
		return nil, false, fmt.Errorf("namespace cache holds a %T", obj)
	}
	return ns.Labels, true, nil
}
