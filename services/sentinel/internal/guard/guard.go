// Package guard raises the removal guard. The chart installs, up front, a
// ValidatingAdmissionPolicy that refuses new pods using the driver ("meshcsi
// is being removed: ...") and a binding whose parameter is the RemovalGuard
// object <fullname>-removing in the install namespace. The hand-off creates
// that object with spec.removing true (or sets it, if a re-install rendered
// it): from then on the API server refuses new pods that could get a volume
// in the window between the sentinel's last check and the CSIDriver's
// deletion reaching every kubelet. The hand-off may create and patch objects
// of that one kind only; it never gets the right to create or change
// admission policies. A re-install lifts the guard: the chart's pre-install
// hook replaces the object with one that says removing: false (Helm deletes
// the old one first). The sentinel deletes the binding, the policy and the
// kind's CustomResourceDefinition (and with it the parameter), last.
//
// The parameter's kind is the release's own CustomResourceDefinition rather
// than a ConfigMap: kube-apiserver (v1.33 to v1.35, generic/policy_source.go)
// takes the informer for a built-in paramKind from its shared informer
// factory and stops it as soon as no binding names that kind; a stopped
// informer of that factory is never started again, so after one removal
// cycle a ConfigMap parameter was never read again and the guard was
// silently off (kubernetes#130887, #133827). For a custom kind it starts a
// new dynamic informer each time the kind is used again.
package guard

import (
	"context"
	"errors"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
)

// Kind, Resource and Version of the parameter; the group is the release's.
const (
	Kind     = "RemovalGuard"
	Resource = "removalguards"
	Version  = "v1"
)

// ErrNoParameter is returned when the RemovalGuard kind is not served, so the
// guard cannot be raised (a chart older than the guard, or a rendering
// without it).
var ErrNoParameter = errors.New("the removal guard's RemovalGuard kind is not served")

// Target names the parameter object and what it is labelled with.
type Target struct {
	// Group is the API group of the release's RemovalGuard kind.
	Group string
	// Namespace and Name name the parameter object (the binding's paramRef).
	Namespace, Name string
	// Labels are the release's labels (docs/chart.md), so the object is found
	// as the release's.
	Labels map[string]string
}

// GVR is the parameter's resource.
func (t Target) GVR() schema.GroupVersionResource {
	return schema.GroupVersionResource{Group: t.Group, Version: Version, Resource: Resource}
}

// Raise makes the parameter say removing: true (since: now), creating it if
// the chart did not render it (a first install, where the kind did not exist
// yet at render time).
func Raise(ctx context.Context, c dynamic.Interface, t Target, now time.Time) error {
	if c == nil {
		return errors.New("guard: a dynamic client is required")
	}
	ri := c.Resource(t.GVR()).Namespace(t.Namespace)
	since := now.UTC().Format(time.RFC3339)
	patch := fmt.Appendf(nil, `{"spec":{"removing":true,"since":%q}}`, since)
	_, err := ri.Patch(ctx, t.Name, types.MergePatchType, patch, metav1.PatchOptions{})
	if err == nil {
		return nil
	}
	if !apierrors.IsNotFound(err) {
		return fmt.Errorf("failed to raise the removal guard (%s %s/%s): %w", Kind, t.Namespace, t.Name, err)
	}
	labels := map[string]any{}
	for k, v := range t.Labels {
		labels[k] = v
	}
	obj := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": t.Group + "/" + Version,
		"kind":       Kind,
		"metadata":   map[string]any{"name": t.Name, "namespace": t.Namespace, "labels": labels},
		"spec":       map[string]any{"removing": true, "since": since},
	}}
	_, err = ri.Create(ctx, obj, metav1.CreateOptions{})
	switch {
	case err == nil:
		return nil
	case apierrors.IsAlreadyExists(err):
		// Created in between (a re-install, or a second hand-off): set it.
		if _, err := ri.Patch(ctx, t.Name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
			return fmt.Errorf("failed to raise the removal guard (%s %s/%s): %w", Kind, t.Namespace, t.Name, err)
		}
		return nil
	case apierrors.IsNotFound(err):
		// The resource itself is not served: no CustomResourceDefinition.
		return fmt.Errorf("%w: %s", ErrNoParameter, t.GVR().GroupResource())
	default:
		return fmt.Errorf("failed to raise the removal guard (create %s %s/%s): %w", Kind, t.Namespace, t.Name, err)
	}
}
