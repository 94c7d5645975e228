package env

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
)

// kinds is every resource a release (with its hook, sentinel and pods) can
// leave behind; optional ones are skipped when the API does not serve them.
var kinds = []struct {
	gvr        schema.GroupVersionResource
	namespaced bool
}{
	{schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "daemonsets"}, true},
	{schema.GroupVersionResource{Group: "storage.k8s.io", Version: "v1", Resource: "csidrivers"}, false},
	{schema.GroupVersionResource{Version: "v1", Resource: "serviceaccounts"}, true},
	{schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}, true},
	{schema.GroupVersionResource{Version: "v1", Resource: "services"}, true},
	{schema.GroupVersionResource{Version: "v1", Resource: "pods"}, true},
	{schema.GroupVersionResource{Group: "batch", Version: "v1", Resource: "jobs"}, true},
	{schema.GroupVersionResource{Group: "coordination.k8s.io", Version: "v1", Resource: "leases"}, true},
	{schema.GroupVersionResource{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "roles"}, true},
	{schema.GroupVersionResource{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "rolebindings"}, true},
	{schema.GroupVersionResource{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "clusterroles"}, false},
	{schema.GroupVersionResource{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "clusterrolebindings"}, false},
	{schema.GroupVersionResource{Group: "security.openshift.io", Version: "v1", Resource: "securitycontextconstraints"}, false},
	// The removal guard's parameter kind (docs/sentinel.md); it must be gone
	// before the next install creates it again.
	{schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}, false},
	{schema.GroupVersionResource{Group: "monitoring.coreos.com", Version: "v1", Resource: "podmonitors"}, true},
	{schema.GroupVersionResource{Group: "monitoring.coreos.com", Version: "v1", Resource: "servicemonitors"}, true},
	{schema.GroupVersionResource{Group: "monitoring.coreos.com", Version: "v1", Resource: "prometheusrules"}, true},
}

// ReleaseObjects lists, in every namespace and cluster-wide, the objects
// labelled as part of release, plus every object of release's well-known
// names (docs/contracts.md) whatever its labels. The result is sorted.
func (e *Env) ReleaseObjects(ctx context.Context, release, namespace string) ([]string, error) {
	found := map[string]bool{}
	sel := "app.kubernetes.io/part-of=meshcsi,app.kubernetes.io/instance=" + release
	for _, k := range kinds {
		served, err := e.served(k.gvr)
		if err != nil {
			return nil, err
		}
		if !served {
			continue
		}
		l, err := e.Kube.Dynamic.Resource(k.gvr).List(ctx, metav1.ListOptions{LabelSelector: sel})
		if err != nil {
			return nil, fmt.Errorf("failed to list %s: %w", k.gvr.Resource, err)
		}
		for _, o := range l.Items {
			found[ref(k.gvr.Resource, o.GetNamespace(), o.GetName())] = true
		}
	}
	for _, n := range e.ReleaseNames(release, namespace) {
		served, err := e.served(n.gvr)
		if err != nil {
			return nil, err
		}
		if !served {
			continue
		}
		ri := e.Kube.Dynamic.Resource(n.gvr)
		var err2 error
		if n.namespace != "" {
			_, err2 = ri.Namespace(n.namespace).Get(ctx, n.name, metav1.GetOptions{})
		} else {
			_, err2 = ri.Get(ctx, n.name, metav1.GetOptions{})
		}
		switch {
		case err2 == nil:
			found[ref(n.gvr.Resource, n.namespace, n.name)] = true
		case !apierrors.IsNotFound(err2):
			return nil, fmt.Errorf("failed to get %s %s: %w", n.gvr.Resource, n.name, err2)
		}
	}
	out := make([]string, 0, len(found))
	for r := range found {
		out = append(out, r)
	}
	sort.Strings(out)
	return out, nil
}

func ref(resource, namespace, name string) string {
	if namespace == "" {
		return resource + "/" + name
	}
	return resource + "/" + namespace + "/" + name
}

func (e *Env) served(gvr schema.GroupVersionResource) (bool, error) {
	l, err := e.Kube.Kube.Discovery().ServerResourcesForGroupVersion(gvr.GroupVersion().String())
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("failed to discover %s: %w", gvr.GroupVersion(), err)
	}
	for _, r := range l.APIResources {
		if r.Name == gvr.Resource {
			return true, nil
		}
	}
	return false, nil
}

// Named is one object the release is known to create, by name.
type Named struct {
	gvr             schema.GroupVersionResource
	namespace, name string
}

// ReleaseNames are the names the chart, the hand-off and the sentinel give
// their objects for release (fullname = release).
func (e *Env) ReleaseNames(release, namespace string) []Named {
	g := func(group, resource string) schema.GroupVersionResource {
		return schema.GroupVersionResource{Group: group, Version: "v1", Resource: resource}
	}
	rbac := "rbac.authorization.k8s.io"
	return []Named{
		{g("apps", "daemonsets"), namespace, release + "-driver"},
		{g("storage.k8s.io", "csidrivers"), "", DriverName},
		{g("", "serviceaccounts"), namespace, release + "-driver"},
		{g("", "serviceaccounts"), namespace, release + "-sentinel"},
		{g("", "configmaps"), namespace, release + "-install"},
		{g("", "configmaps"), namespace, release + "-handoff"},
		{g("", "configmaps"), namespace, release + "-sentinel-plan"},
		{g("batch", "jobs"), namespace, release + "-handoff"},
		{g("batch", "jobs"), namespace, release + "-sentinel"},
		{g("coordination.k8s.io", "leases"), namespace, release + "-sentinel"},
		{g(rbac, "roles"), namespace, release + "-sentinel"},
		{g(rbac, "rolebindings"), namespace, release + "-sentinel"},
		{g(rbac, "rolebindings"), namespace, release + "-driver-scc"},
		{g(rbac, "clusterroles"), "", release + "-sentinel"},
		{g(rbac, "clusterrolebindings"), "", release + "-sentinel"},
		{g(rbac, "clusterroles"), "", release + "-driver-scc"},
		{g(rbac, "clusterroles"), "", release + "-workload-scc"},
		{g("security.openshift.io", "securitycontextconstraints"), "", release + "-driver"},
		{g("security.openshift.io", "securitycontextconstraints"), "", release + "-workload"},
	}
}

// WaitReleaseGone waits until ReleaseObjects is empty and returns what was
// left at the deadline otherwise.
func (e *Env) WaitReleaseGone(ctx context.Context, release, namespace string, timeout time.Duration) error {
	var left []string
	err := wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		var err error
		left, err = e.ReleaseObjects(ctx, release, namespace)
		if err != nil {
			return false, nil //nolint:nilerr // retried until the deadline
		}
		return len(left) == 0, nil
	})
	if err != nil {
		return fmt.Errorf("objects of release %s left after %s: %s", release, timeout, strings.Join(left, ", "))
	}
	return nil
}

// SentinelPod returns the sentinel Job's newest pod.
func (e *Env) SentinelPod(ctx context.Context, release, namespace string) (*corev1.Pod, error) {
	l, err := e.Kube.Kube.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{LabelSelector: "job-name=" + release + "-sentinel"})
	if err != nil {
		return nil, fmt.Errorf("failed to list sentinel pods: %w", err)
	}
	if len(l.Items) == 0 {
		return nil, fmt.Errorf("no sentinel pod in %s", namespace)
	}
	sort.Slice(l.Items, func(i, j int) bool { return l.Items[i].CreationTimestamp.After(l.Items[j].CreationTimestamp.Time) })
	return &l.Items[0], nil
}

// SentinelLog returns the sentinel pod's log (what `kubectl logs
// job/<release>-sentinel` shows).
func (e *Env) SentinelLog(ctx context.Context, release, namespace string) (string, error) {
	p, err := e.SentinelPod(ctx, release, namespace)
	if err != nil {
		return "", err
	}
	raw, err := e.Kube.Kube.CoreV1().Pods(namespace).GetLogs(p.Name, &corev1.PodLogOptions{}).DoRaw(ctx)
	if err != nil {
		return "", fmt.Errorf("failed to get the log of %s: %w", p.Name, err)
	}
	return string(raw), nil
}

// SentinelEvents returns the messages of the Events on the sentinel Job.
func (e *Env) SentinelEvents(ctx context.Context, release, namespace string) ([]string, error) {
	l, err := e.Kube.Kube.CoreV1().Events(namespace).List(ctx, metav1.ListOptions{
		FieldSelector: "involvedObject.kind=Job,involvedObject.name=" + release + "-sentinel",
	})
	if err != nil {
		return nil, fmt.Errorf("failed to list events: %w", err)
	}
	out := make([]string, 0, len(l.Items))
	for _, ev := range l.Items {
		out = append(out, ev.Reason+": "+ev.Message)
	}
	return out, nil
}
