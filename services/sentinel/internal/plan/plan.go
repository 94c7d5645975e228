// Package plan decides what the sentinel removes and in which order. A Plan
// is recorded once, at hand-off, with the UID of every object of the release,
// so that a restarted sentinel deletes exactly what it was launched for and
// never a newer install's objects.
package plan

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/metadata"

	"github.com/meshcsi/meshcsi/services/sentinel/internal/kube"
)

// Labels and annotations of the chart contract (docs/chart.md).
const (
	LabelInstance    = "app.kubernetes.io/instance"
	LabelPartOf      = "app.kubernetes.io/part-of"
	LabelComponent   = "app.kubernetes.io/component"
	LabelDriverName  = "meshcsi.io/driver-name"
	AnnotReleaseNS   = "meta.helm.sh/release-namespace"
	ComponentSelf    = "sentinel"
	ComponentHandoff = "handoff"
	ComponentMarker  = "install-marker"
	// ComponentUpgrade labels the pre-upgrade hook's objects (Helm's).
	ComponentUpgrade = "upgrade"
	// DataKey is the ConfigMap key holding the JSON plan.
	DataKey = "plan.json"
)

// Phase groups kinds by when they may go.
type Phase int

const (
	// PhaseCSIDriver goes first: without it no new pod can get a volume.
	PhaseCSIDriver Phase = iota
	// PhaseDaemonSet goes after a re-check; then its pods must be gone.
	PhaseDaemonSet
	// PhaseRest is everything else of the release, in Kinds order.
	PhaseRest
	// PhaseGuard is the removal and namespace guards (admission policies,
	// their bindings and the removal guard's CustomResourceDefinition): they
	// hold until the driver is gone, then go by name.
	PhaseGuard
	// PhaseSelf is the sentinel's own Job, plan and RBAC, last.
	PhaseSelf
)

// Kind describes one resource type the sentinel may delete.
type Kind struct {
	Kind       string
	GVR        schema.GroupVersionResource
	Namespaced bool
	// Optional kinds are skipped cleanly when their API is not served.
	Optional bool
	Phase    Phase
}

// Kinds lists every resource type of a release in deletion order.
var Kinds = []Kind{
	{Kind: "CSIDriver", GVR: schema.GroupVersionResource{Group: "storage.k8s.io", Version: "v1", Resource: "csidrivers"}, Phase: PhaseCSIDriver},
	{Kind: "DaemonSet", GVR: schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "daemonsets"}, Namespaced: true, Phase: PhaseDaemonSet},
	{Kind: "ServiceAccount", GVR: schema.GroupVersionResource{Version: "v1", Resource: "serviceaccounts"}, Namespaced: true, Phase: PhaseRest},
	{Kind: "Role", GVR: schema.GroupVersionResource{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "roles"}, Namespaced: true, Phase: PhaseRest},
	{Kind: "RoleBinding", GVR: schema.GroupVersionResource{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "rolebindings"}, Namespaced: true, Phase: PhaseRest},
	{Kind: "ConfigMap", GVR: schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}, Namespaced: true, Phase: PhaseRest},
	{Kind: "Service", GVR: schema.GroupVersionResource{Version: "v1", Resource: "services"}, Namespaced: true, Phase: PhaseRest},
	{Kind: "ClusterRole", GVR: schema.GroupVersionResource{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "clusterroles"}, Phase: PhaseRest},
	{Kind: "ClusterRoleBinding", GVR: schema.GroupVersionResource{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "clusterrolebindings"}, Phase: PhaseRest},
	{Kind: "SecurityContextConstraints", GVR: schema.GroupVersionResource{Group: "security.openshift.io", Version: "v1", Resource: "securitycontextconstraints"}, Optional: true, Phase: PhaseRest},
	{Kind: "PodMonitor", GVR: schema.GroupVersionResource{Group: "monitoring.coreos.com", Version: "v1", Resource: "podmonitors"}, Namespaced: true, Optional: true, Phase: PhaseRest},
	{Kind: "ServiceMonitor", GVR: schema.GroupVersionResource{Group: "monitoring.coreos.com", Version: "v1", Resource: "servicemonitors"}, Namespaced: true, Optional: true, Phase: PhaseRest},
	{Kind: "PrometheusRule", GVR: schema.GroupVersionResource{Group: "monitoring.coreos.com", Version: "v1", Resource: "prometheusrules"}, Namespaced: true, Optional: true, Phase: PhaseRest},
	{Kind: "ValidatingAdmissionPolicyBinding", GVR: schema.GroupVersionResource{Group: "admissionregistration.k8s.io", Version: "v1", Resource: "validatingadmissionpolicybindings"}, Phase: PhaseGuard},
	{Kind: "ValidatingAdmissionPolicy", GVR: schema.GroupVersionResource{Group: "admissionregistration.k8s.io", Version: "v1", Resource: "validatingadmissionpolicies"}, Phase: PhaseGuard},
	// The removal guard's parameter kind, after the policy that names it; its
	// deletion takes the parameter object with it.
	{Kind: "CustomResourceDefinition", GVR: schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}, Phase: PhaseGuard},
}

// Job and Lease are the sentinel's own objects not recorded at hand-off.
var (
	JobKind   = Kind{Kind: "Job", GVR: schema.GroupVersionResource{Group: "batch", Version: "v1", Resource: "jobs"}, Namespaced: true, Phase: PhaseSelf}
	LeaseKind = Kind{Kind: "Lease", GVR: schema.GroupVersionResource{Group: "coordination.k8s.io", Version: "v1", Resource: "leases"}, Namespaced: true, Phase: PhaseSelf}
)

// KindByName finds a Kind by its kind name.
func KindByName(name string) (Kind, bool) {
	for _, k := range append(Kinds[:len(Kinds):len(Kinds)], JobKind, LeaseKind) {
		if k.Kind == name {
			return k, true
		}
	}
	return Kind{}, false
}

// Object is one recorded object of the release.
type Object struct {
	Kind      string `json:"kind"`
	Group     string `json:"group,omitempty"`
	Version   string `json:"version"`
	Resource  string `json:"resource"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
	UID       string `json:"uid"`
	// Self marks the sentinel's own objects (component=sentinel), removed last.
	Self bool `json:"self,omitempty"`
}

// GVR returns the object's resource.
func (o Object) GVR() schema.GroupVersionResource {
	return schema.GroupVersionResource{Group: o.Group, Version: o.Version, Resource: o.Resource}
}

// String names the object as kind namespace/name.
func (o Object) String() string {
	if o.Namespace == "" {
		return o.Kind + " " + o.Name
	}
	return o.Kind + " " + o.Namespace + "/" + o.Name
}

// Plan is what one hand-off launched the sentinel for.
type Plan struct {
	Release    string    `json:"release"`
	Namespace  string    `json:"namespace"`
	DriverName string    `json:"driverName"`
	PartOf     string    `json:"partOf"`
	CreatedAt  time.Time `json:"createdAt"`
	// MarkerUID is the install marker's UID at hand-off ("" if absent).
	MarkerUID string   `json:"markerUID"`
	Objects   []Object `json:"objects"`
}

// Release identifies the release whose objects a plan may hold.
type Release struct {
	Name, Namespace, DriverName, PartOf string
}

// Selector is the label selector that picks the release's objects.
func (r Release) Selector() string {
	return fmt.Sprintf("%s=%s,%s=%s,%s=%s", LabelInstance, r.Name, LabelPartOf, r.PartOf, LabelDriverName, r.DriverName)
}

// Owns reports whether an object with these metadata belongs to the
// release, by what the chart guarantees rather than by what Helm adds: the
// release labels, and for namespaced objects the install namespace. A
// cluster-scoped object is the release's unless its Helm release-namespace
// annotation names another namespace (a same-named release elsewhere); an
// object applied without Helm (`helm template | kubectl apply`, Argo CD)
// carries no such annotation and is the release's by its labels.
func (r Release) Owns(k Kind, m metav1.Object) bool {
	l := m.GetLabels()
	if l[LabelInstance] != r.Name || l[LabelPartOf] != r.PartOf || l[LabelDriverName] != r.DriverName {
		return false
	}
	if k.Namespaced {
		return m.GetNamespace() == r.Namespace
	}
	ns, annotated := m.GetAnnotations()[AnnotReleaseNS]
	return !annotated || ns == r.Namespace
}

// Served reports whether the API server serves gvr, so optional kinds
// (OpenShift SCCs, monitoring CRDs) can be skipped when absent.
func Served(dc discovery.DiscoveryInterface, gvr schema.GroupVersionResource) (bool, error) {
	list, err := dc.ServerResourcesForGroupVersion(gvr.GroupVersion().String())
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("failed to discover %s: %w", gvr.GroupVersion(), err)
	}
	for _, r := range list.APIResources {
		if r.Name == gvr.Resource {
			return true, nil
		}
	}
	return false, nil
}

// Discover lists the release's objects of every kind, skipping optional
// kinds whose API is not served and the hand-off's and pre-upgrade hooks'
// and the install marker's objects (Helm owns those). markerUID is recorded as given.
func Discover(ctx context.Context, meta metadata.Interface, dc discovery.DiscoveryInterface, r Release, markerUID string, now time.Time) (*Plan, error) {
	p := &Plan{Release: r.Name, Namespace: r.Namespace, DriverName: r.DriverName, PartOf: r.PartOf, CreatedAt: now.UTC(), MarkerUID: markerUID}
	for _, k := range Kinds {
		if k.Optional {
			ok, err := Served(dc, k.GVR)
			if err != nil {
				return nil, err
			}
			if !ok {
				continue
			}
		}
		var ri metadata.ResourceInterface = meta.Resource(k.GVR)
		if k.Namespaced {
			ri = meta.Resource(k.GVR).Namespace(r.Namespace)
		}
		err := kube.EachMeta(ctx, ri, metav1.ListOptions{LabelSelector: r.Selector()}, func(m *metav1.PartialObjectMetadata) error {
			if !r.Owns(k, m) {
				return nil
			}
			switch m.GetLabels()[LabelComponent] {
			case ComponentHandoff, ComponentUpgrade, ComponentMarker:
				return nil
			}
			p.Objects = append(p.Objects, Object{
				Kind: k.Kind, Group: k.GVR.Group, Version: k.GVR.Version, Resource: k.GVR.Resource,
				Namespace: m.GetNamespace(), Name: m.GetName(), UID: string(m.GetUID()),
				Self: m.GetLabels()[LabelComponent] == ComponentSelf,
			})
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("failed to list %s: %w", k.GVR.Resource, err)
		}
	}
	p.Sort()
	return p, nil
}

// Sort puts the objects in deletion order: by phase (self last), then by
// Kinds order, then by namespace and name.
func (p *Plan) Sort() {
	rank := func(o Object) (int, int) {
		phase := PhaseRest
		idx := len(Kinds)
		for i, k := range Kinds {
			if k.Kind == o.Kind {
				phase, idx = k.Phase, i
			}
		}
		if o.Self {
			phase = PhaseSelf
		}
		return int(phase), idx
	}
	sort.SliceStable(p.Objects, func(i, j int) bool {
		pi, ki := rank(p.Objects[i])
		pj, kj := rank(p.Objects[j])
		if pi != pj {
			return pi < pj
		}
		if ki != kj {
			return ki < kj
		}
		if p.Objects[i].Namespace != p.Objects[j].Namespace {
			return p.Objects[i].Namespace < p.Objects[j].Namespace
		}
		return p.Objects[i].Name < p.Objects[j].Name
	})
}

// Phase returns the non-self objects of phase ph, in order.
func (p *Plan) Phase(ph Phase) []Object {
	var out []Object
	for _, o := range p.Objects {
		if o.Self {
			if ph == PhaseSelf {
				out = append(out, o)
			}
			continue
		}
		if k, ok := KindByName(o.Kind); ok && k.Phase == ph {
			out = append(out, o)
		}
	}
	return out
}

// ErrNoPlan is returned when the plan ConfigMap does not exist.
var ErrNoPlan = errors.New("no plan ConfigMap: run `meshcsi-sentinel handoff` first")

// ToConfigMap renders the plan into the plan ConfigMap.
func (p *Plan) ToConfigMap(name string) (*corev1.ConfigMap, error) {
	data, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("failed to encode plan: %w", err)
	}
	return &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{
			Name:      name,
			Namespace: p.Namespace,
			Labels: map[string]string{
				"app.kubernetes.io/name":       p.PartOf,
				LabelInstance:                  p.Release,
				LabelPartOf:                    p.PartOf,
				"app.kubernetes.io/managed-by": "meshcsi-sentinel",
				LabelComponent:                 ComponentSelf,
				LabelDriverName:                p.DriverName,
			},
		},
		Data: map[string]string{DataKey: string(data)},
	}, nil
}

// FromConfigMap reads a plan from its ConfigMap.
func FromConfigMap(cm *corev1.ConfigMap) (*Plan, error) {
	raw, ok := cm.Data[DataKey]
	if !ok {
		return nil, fmt.Errorf("failed to read plan %s/%s: key %s missing", cm.Namespace, cm.Name, DataKey)
	}
	var p Plan
	if err := json.Unmarshal([]byte(raw), &p); err != nil {
		return nil, fmt.Errorf("failed to decode plan %s/%s: %w", cm.Namespace, cm.Name, err)
	}
	return &p, nil
}
