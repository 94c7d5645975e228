// Package kube holds what every part of the sentinel needs to talk to the
// API server: the few typed clients it uses (not the whole clientset, so the
// binary links a handful of API groups instead of all of them), the one page
// size of its paged LISTs, a paged walk over pods through client-go's pager,
// and the retry of transient API errors.
package kube

import (
	"context"
	"fmt"
	"net/http"
	"sync"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	typedbatchv1 "k8s.io/client-go/kubernetes/typed/batch/v1"
	typedcoordinationv1 "k8s.io/client-go/kubernetes/typed/coordination/v1"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	typedstoragev1 "k8s.io/client-go/kubernetes/typed/storage/v1"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/pager"
)

// PageSize is the page size of every paged LIST the sentinel makes: the
// informer's initial pod list, the fresh read before a delete, and the
// hand-off's discovery of the release's objects.
const PageSize = 500

// Clients are the API clients the sentinel uses. Objects it only lists,
// patches and deletes go through Meta (metadata only, any kind, including
// OpenShift SCCs and monitoring kinds that have no typed client here).
type Clients struct {
	// Core reads pods, the plan and marker ConfigMaps, and records Events.
	Core typedcorev1.CoreV1Interface
	// Batch creates and reads the sentinel Job (hand-off).
	Batch typedbatchv1.BatchV1Interface
	// Coordination holds the Lease.
	Coordination typedcoordinationv1.CoordinationV1Interface
	// Storage reads the CSIDriver of the driver's name.
	Storage typedstoragev1.StorageV1Interface
	// Discovery tells which optional APIs are served.
	Discovery discovery.DiscoveryInterface
	// Meta lists, patches and deletes the release's objects.
	Meta metadata.Interface
	// Dynamic creates and patches the removal guard's parameter, an object
	// of the release's own RemovalGuard kind (hand-off only; may be nil
	// elsewhere).
	Dynamic dynamic.Interface
}

// Validate reports a missing client.
func (c Clients) Validate() error {
	if c.Core == nil || c.Batch == nil || c.Coordination == nil || c.Storage == nil || c.Discovery == nil || c.Meta == nil {
		return fmt.Errorf("kube: core, batch, coordination, storage, discovery and metadata clients are required")
	}
	return nil
}

// NewForConfig builds the clients over one shared HTTP client. Typed
// clients speak protobuf (half the decode cost and garbage of JSON for the
// pod LIST and watch); the metadata client asks for metadata only.
func NewForConfig(rc *rest.Config) (Clients, error) {
	httpClient, err := rest.HTTPClientFor(rc)
	if err != nil {
		return Clients{}, fmt.Errorf("failed to build HTTP client: %w", err)
	}
	typed := rest.CopyConfig(rc)
	typed.ContentType = "application/vnd.kubernetes.protobuf"
	typed.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
	var c Clients
	steps := []struct {
		name  string
		build func(*rest.Config, *http.Client) error
	}{
		{"core", func(rc *rest.Config, h *http.Client) (err error) {
			c.Core, err = typedcorev1.NewForConfigAndClient(rc, h)
			return
		}},
		{"batch", func(rc *rest.Config, h *http.Client) (err error) {
			c.Batch, err = typedbatchv1.NewForConfigAndClient(rc, h)
			return
		}},
		{"coordination", func(rc *rest.Config, h *http.Client) (err error) {
			c.Coordination, err = typedcoordinationv1.NewForConfigAndClient(rc, h)
			return
		}},
		{"storage", func(rc *rest.Config, h *http.Client) (err error) {
			c.Storage, err = typedstoragev1.NewForConfigAndClient(rc, h)
			return
		}},
	}
	for _, s := range steps {
		if err := s.build(typed, httpClient); err != nil {
			return Clients{}, fmt.Errorf("failed to build %s client: %w", s.name, err)
		}
	}
	if c.Discovery, err = discovery.NewDiscoveryClientForConfigAndClient(rc, httpClient); err != nil {
		return Clients{}, fmt.Errorf("failed to build discovery client: %w", err)
	}
	if c.Meta, err = metadata.NewForConfigAndClient(rc, httpClient); err != nil {
		return Clients{}, fmt.Errorf("failed to build metadata client: %w", err)
	}
	if c.Dynamic, err = dynamic.NewForConfigAndClient(rc, httpClient); err != nil {
		return Clients{}, fmt.Errorf("failed to build dynamic client: %w", err)
	}
	return c, nil
}

// EachPod walks all pods matching opts, in any namespace, in pages of
// PageSize from the API server (a consistent read, not served from the watch
// cache), and calls fn for each pod as its page arrives, so a large cluster
// never has all its pod objects in memory at once. It returns the list's
// resourceVersion. An expired continue token is returned as an error (the
// 410 is transient, see Transient) rather than falling back to one unpaged
// LIST of every pod.
func EachPod(ctx context.Context, core typedcorev1.CoreV1Interface, opts metav1.ListOptions, fn func(*corev1.Pod) error) (string, error) {
	var mu sync.Mutex
	var rv string
	p := newPager(func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
		list, err := core.Pods(metav1.NamespaceAll).List(ctx, o)
		if err == nil {
			mu.Lock()
			rv = list.ResourceVersion
			mu.Unlock()
		}
		return list, err
	})
	err := p.EachListItem(ctx, opts, func(obj runtime.Object) error {
		pod, ok := obj.(*corev1.Pod)
		if !ok {
			return fmt.Errorf("unexpected pod list item %T", obj)
		}
		return fn(pod)
	})
	if err != nil {
		return "", fmt.Errorf("failed to list pods: %w", err)
	}
	mu.Lock()
	defer mu.Unlock()
	return rv, nil
}

// EachMeta walks the objects of ri matching opts in pages of PageSize.
func EachMeta(ctx context.Context, ri metadata.ResourceInterface, opts metav1.ListOptions, fn func(*metav1.PartialObjectMetadata) error) error {
	p := newPager(func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
		return ri.List(ctx, o)
	})
	return p.EachListItem(ctx, opts, func(obj runtime.Object) error {
		m, ok := obj.(*metav1.PartialObjectMetadata)
		if !ok {
			return fmt.Errorf("unexpected list item %T", obj)
		}
		return fn(m)
	})
}

// newPager pages by PageSize with one page in flight beside the one being
// handled, and never falls back to an unpaged LIST.
func newPager(fn pager.ListPageFunc) *pager.ListPager {
	p := pager.New(fn)
	p.PageSize = PageSize
	p.PageBufferSize = 0
	p.FullListIfExpired = false
	return p
}
