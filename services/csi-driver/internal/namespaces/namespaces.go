// Package namespaces keeps a read-only cache of namespace labels, for
// sources limited to namespaces by a label selector. It lists and watches
// namespaces only (RBAC: get, list, watch on namespaces), through one
// metadata informer that keeps just each namespace's name and labels.
//
// It uses client-go's metadata client, not the typed clientset: the typed
// clientset registers every API group at start (megabytes of heap and
// milliseconds before the first Probe for a daemon on every node), while
// labels are metadata.
package namespaces

import (
	"context"
	"errors"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/tools/cache"
)

// resource is the one resource the cache reads.
var resource = schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}

// ErrNotSynced means the cache has not listed the namespaces yet.
var ErrNotSynced = errors.New("the namespace cache has not synced with the API server yet")

// Cache answers with namespace labels from an informer.
type Cache struct {
	informer cache.SharedIndexInformer
}

// New builds a Cache on client; Start runs it.
func New(client metadata.Interface) (*Cache, error) {
	res := client.Resource(resource)
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			return res.List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			return res.Watch(ctx, o)
		},
	}
	// Built directly, not with metadatainformer: that package links every
	// typed informer of client-go.
	inf := cache.NewSharedIndexInformer(lw, &metav1.PartialObjectMetadata{}, 0, cache.Indexers{})
	if err := inf.SetTransform(slim); err != nil {
		return nil, fmt.Errorf("namespace cache: %w", err)
	}
	return &Cache{informer: inf}, nil
}

// slim keeps only what the driver reads: a namespace's name and labels.
func slim(obj any) (any, error) {
	m, ok := obj.(*metav1.PartialObjectMetadata)
	if !ok {
		return obj, nil
	}
	return &metav1.PartialObjectMetadata{TypeMeta: m.TypeMeta, ObjectMeta: metav1.ObjectMeta{
		Name: m.Name, Labels: m.Labels, ResourceVersion: m.ResourceVersion,
	}}, nil
}

// Start runs the informer until ctx is done. It does not wait for the first
// list: publish answers Unavailable until then (the kubelet retries), and
// unpublish never needs namespaces.
func (c *Cache) Start(ctx context.Context) { go c.informer.RunWithContext(ctx) }

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
	m, ok := obj.(*metav1.PartialObjectMetadata)
	if !ok {
		return nil, false, fmt.Errorf("namespace cache holds a %T", obj)
	}
	return m.Labels, true, nil
}
