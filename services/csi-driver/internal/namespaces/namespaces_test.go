package namespaces

import (
	"context"
	"errors"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/metadata/fake"
	"k8s.io/client-go/tools/cache"
)

func TestCache(t *testing.T) {
	scheme := runtime.NewScheme()
	if err := metav1.AddMetaToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	ns := func(labels map[string]string) *metav1.PartialObjectMetadata {
		return &metav1.PartialObjectMetadata{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"},
			ObjectMeta: metav1.ObjectMeta{Name: "team-a", Labels: labels, Annotations: map[string]string{"big": "x"}},
		}
	}
	client := fake.NewSimpleMetadataClient(scheme, ns(map[string]string{"team": "a"}))
	c, err := New(client)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Labels("team-a"); !errors.Is(err, ErrNotSynced) {
		t.Fatalf("Labels before sync = %v, want ErrNotSynced", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c.Start(ctx)
	sctx, scancel := context.WithTimeout(ctx, 30*time.Second)
	defer scancel()
	if !cache.WaitForCacheSync(sctx.Done(), c.Synced) {
		t.Fatal("cache did not sync")
	}
	l, found, err := c.Labels("team-a")
	if err != nil || !found || l["team"] != "a" {
		t.Fatalf("Labels = %v, %v, %v", l, found, err)
	}
	obj, _, _ := c.informer.GetStore().GetByKey("team-a")
	if len(obj.(*metav1.PartialObjectMetadata).Annotations) != 0 {
		t.Fatal("the cache keeps more than name and labels")
	}
	if _, found, err := c.Labels("nope"); found || err != nil {
		t.Fatalf("Labels(nope) = %v, %v", found, err)
	}
	// A label change reaches the cache through the watch.
	if _, err := client.Resource(resource).(fake.MetadataClient).UpdateFake(ns(map[string]string{"team": "b"}), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	err = wait.PollUntilContextTimeout(ctx, 5*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		l, _, _ := c.Labels("team-a")
		return l["team"] == "b", nil
	})
	if err != nil {
		t.Fatalf("label change not seen: %v", err)
	}
}
