package node

import (
	"fmt"

	"k8s.io/apimachinery/pkg/labels"

	"github.com/meshcsi/meshcsi/services/csi-driver/internal/config"
)

// Namespaces answers with the labels of a namespace from a read-only cache
// (an informer); the driver asks it only for sources with a namespace
// selector.
type Namespaces interface {
	// Labels returns the labels of namespace name and whether it exists;
	// an error means the cache cannot answer yet (not synced).
	Labels(name string) (map[string]string, bool, error)
}

// access limits a source to namespaces: a namespace is allowed when it is
// listed or its labels match the selector. A source with neither is open
// to every namespace.
type access struct {
	names    map[string]bool
	selector labels.Selector
}

func newAccess(src config.Source) (*access, error) {
	if !src.Restricted() {
		return nil, nil
	}
	a := &access{names: map[string]bool{}}
	for _, ns := range src.Namespaces {
		a.names[ns] = true
	}
	if src.NamespaceSelector != "" {
		sel, err := labels.Parse(src.NamespaceSelector)
		if err != nil {
			return nil, fmt.Errorf("node: --source-namespace-selector %s: %w", src.Name, err)
		}
		a.selector = sel
	}
	return a, nil
}

// check returns nil when pods of namespace ns may use source.
func (s *Service) checkAccess(source, ns string) error {
	a := s.access[source]
	if a == nil {
		return nil
	}
	if ns == "" {
		return refuse(errDenied, "volume_context[%s] %q is limited to some namespaces and the request names none (volume_context[%s]; the CSIDriver needs podInfoOnMount: true)", KeySource, source, KeyPodNamespace)
	}
	if a.names[ns] {
		return nil
	}
	if a.selector != nil {
		lbls, found, err := s.namespaces.Labels(ns)
		if err != nil {
			return refuse(errUnavailable, "volume_context[%s] %q: cannot check namespace %q yet: %v", KeySource, source, ns, err)
		}
		if found && a.selector.Matches(labels.Set(lbls)) {
			return nil
		}
	}
	return refuse(errDenied, "volume_context[%s] %q may not be used by pods in namespace %q", KeySource, source, ns)
}
