package tracker

import (
	"context"
	"errors"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/metadata/metadatainformer"
	"k8s.io/client-go/tools/cache"
)

// Nodes watches the names of the cluster's Nodes (metadata only), so reports
// can say which blocking pods sit on a node that no longer exists. It is
// advisory: such pods still block (see docs/sentinel.md), and until its cache
// has synced, or if it cannot sync, no node is reported gone.
type Nodes struct {
	factory  metadatainformer.SharedInformerFactory
	informer cache.SharedIndexInformer
}

var nodesGVR = schema.GroupVersionResource{Version: "v1", Resource: "nodes"}

// NewNodes builds a Nodes watcher. Nothing runs until Start.
func NewNodes(meta metadata.Interface) (*Nodes, error) {
	if meta == nil {
		return nil, errors.New("watch: a metadata client is required")
	}
	n := &Nodes{}
	n.factory = metadatainformer.NewFilteredSharedInformerFactory(meta, 0, metav1.NamespaceAll, nil)
	n.informer = n.factory.ForResource(nodesGVR).Informer()
	if err := n.informer.SetTransform(func(obj any) (any, error) {
		if m, ok := obj.(*metav1.PartialObjectMetadata); ok {
			return &metav1.PartialObjectMetadata{TypeMeta: m.TypeMeta, ObjectMeta: metav1.ObjectMeta{Name: m.Name, UID: m.UID, ResourceVersion: m.ResourceVersion}}, nil
		}
		return obj, nil
	}); err != nil {
		return nil, err
	}
	return n, nil
}

// Start runs the informer until ctx is done.
func (n *Nodes) Start(ctx context.Context) { n.factory.Start(ctx.Done()) }

// Shutdown waits for the informer goroutines after ctx was cancelled.
func (n *Nodes) Shutdown() { n.factory.Shutdown() }

// Gone reports whether node is known not to exist.
func (n *Nodes) Gone(node string) bool {
	if node == "" || !n.informer.HasSynced() {
		return false
	}
	_, ok, err := n.informer.GetStore().GetByKey(node)
	return err == nil && !ok
}

// Mark sets NodeGone on the blockers whose node no longer exists.
func (n *Nodes) Mark(bs []Blocker) []Blocker {
	for i := range bs {
		bs[i].NodeGone = n.Gone(bs[i].Node)
	}
	return bs
}
