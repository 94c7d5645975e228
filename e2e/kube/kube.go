// Package kube holds the API helpers the chart tests, the e2e suite and the
// demo share: creating rendered manifests (for real or as a server-side dry
// run with strict field validation) through a discovery-backed REST mapper,
// and applying CRDs.
package kube

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"

	"github.com/meshcsi/meshcsi/e2e/manifest"
)

// Client bundles the typed and dynamic clients with a REST mapper.
type Client struct {
	// Kube is the typed clientset.
	Kube kubernetes.Interface
	// Dynamic serves any kind, CRDs included.
	Dynamic dynamic.Interface
	mapper  *restmapper.DeferredDiscoveryRESTMapper
}

// New builds a Client from a REST config.
func New(cfg *rest.Config) (*Client, error) {
	kc, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("failed to build clientset: %w", err)
	}
	dc, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("failed to build dynamic client: %w", err)
	}
	return &Client{
		Kube:    kc,
		Dynamic: dc,
		mapper:  restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(kc.Discovery())),
	}, nil
}

// Resource returns the dynamic resource of obj's kind, namespaced when the
// kind is.
func (c *Client) Resource(obj *unstructured.Unstructured) (dynamic.ResourceInterface, error) {
	gvk := obj.GroupVersionKind()
	m, err := c.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		c.mapper.Reset()
		if m, err = c.mapper.RESTMapping(gvk.GroupKind(), gvk.Version); err != nil {
			return nil, fmt.Errorf("failed to map %s: %w", gvk, err)
		}
	}
	if m.Scope.Name() == meta.RESTScopeNameNamespace {
		return c.Dynamic.Resource(m.Resource).Namespace(obj.GetNamespace()), nil
	}
	return c.Dynamic.Resource(m.Resource), nil
}

// CreateOptions selects a dry run.
type CreateOptions struct {
	// DryRun asks the API server to validate and admit without persisting.
	DryRun bool
}

// Create creates every object with strict field validation: a field the
// API server's schema does not know is an error, not a warning.
func (c *Client) Create(ctx context.Context, objs manifest.Set, opts CreateOptions) error {
	var errs []error
	for _, o := range objs {
		ri, err := c.Resource(o)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		co := metav1.CreateOptions{FieldValidation: metav1.FieldValidationStrict}
		if opts.DryRun {
			co.DryRun = []string{metav1.DryRunAll}
		}
		if _, err := ri.Create(ctx, o.DeepCopy(), co); err != nil {
			errs = append(errs, fmt.Errorf("%s %s/%s: %w", o.GetKind(), o.GetNamespace(), o.GetName(), err))
		}
	}
	return errors.Join(errs...)
}

// ApplyCRDFiles creates the CRDs in files (if missing) and waits until the
// API server serves them.
func (c *Client) ApplyCRDFiles(ctx context.Context, files ...string) error {
	var all manifest.Set
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			return fmt.Errorf("failed to read %s: %w", f, err)
		}
		objs, err := manifest.Parse(string(raw))
		if err != nil {
			return fmt.Errorf("failed to parse %s: %w", f, err)
		}
		all = append(all, objs...)
	}
	crdGVR := schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
	for _, o := range all {
		_, err := c.Dynamic.Resource(crdGVR).Create(ctx, o, metav1.CreateOptions{FieldValidation: metav1.FieldValidationStrict})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("failed to create CRD %s: %w", o.GetName(), err)
		}
	}
	for _, o := range all {
		err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
			u, err := c.Dynamic.Resource(crdGVR).Get(ctx, o.GetName(), metav1.GetOptions{})
			if err != nil {
				return false, nil //nolint:nilerr // retried until the deadline
			}
			conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
			for _, ci := range conds {
				cm, _ := ci.(map[string]any)
				if cm["type"] == "Established" && cm["status"] == "True" {
					return true, nil
				}
			}
			return false, nil
		})
		if err != nil {
			return fmt.Errorf("CRD %s not established: %w", o.GetName(), err)
		}
	}
	c.mapper.Reset()
	return nil
}

// EnsureNamespace creates a namespace if it does not exist.
func (c *Client) EnsureNamespace(ctx context.Context, name string) error {
	ns := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": name},
	}}
	_, err := c.Dynamic.Resource(schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}).Create(ctx, ns, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("failed to create namespace %s: %w", name, err)
	}
	return nil
}
