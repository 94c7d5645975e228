package tracker

import (
	"context"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metadatafake "k8s.io/client-go/metadata/fake"
)

func TestNodesGone(t *testing.T) {
	scheme := metadatafake.NewTestScheme()
	if err := metav1.AddMetaToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	meta := metadatafake.NewSimpleMetadataClient(scheme)
	node := &metav1.PartialObjectMetadata{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Node"}, ObjectMeta: metav1.ObjectMeta{Name: "worker-1"}}
	if err := meta.Tracker().Create(nodesGVR, node, ""); err != nil {
		t.Fatal(err)
	}
	n, err := NewNodes(meta)
	if err != nil {
		t.Fatal(err)
	}
	if n.Gone("worker-2") {
		t.Fatal("a node is reported gone before the cache synced")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer func() { cancel(); n.Shutdown() }()
	n.Start(ctx)
	waitFor(t, n.informer.HasSynced)
	bs := n.Mark([]Blocker{{Name: "a", Node: "worker-1"}, {Name: "b", Node: "worker-2"}, {Name: "c"}})
	if bs[0].NodeGone || !bs[1].NodeGone || bs[2].NodeGone {
		t.Fatalf("Mark() = %+v; want only worker-2 gone", bs)
	}
	if got := bs[1].String(); got != "/b (no owner, node worker-2 (gone), )" {
		t.Fatalf("String() = %q", got)
	}
	if err := meta.Tracker().Delete(nodesGVR, "", "worker-1"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return n.Gone("worker-1") })
}
