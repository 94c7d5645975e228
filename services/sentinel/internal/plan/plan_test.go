package plan_test

import (
	"context"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshcsi/meshcsi/services/sentinel/internal/plan"
	"github.com/meshcsi/meshcsi/services/sentinel/internal/sentineltest"
)

var rel = plan.Release{Name: sentineltest.Release, Namespace: sentineltest.NS, DriverName: sentineltest.Driver, PartOf: "meshcsi"}

func discover(t *testing.T, c *sentineltest.Cluster) *plan.Plan {
	t.Helper()
	p, err := plan.Discover(context.Background(), c.Meta, c.Client.Discovery(), rel, "uid-marker-1", time.Unix(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func render(objs []plan.Object) string {
	var b []string
	for _, o := range objs {
		s := o.String() + "=" + o.UID
		if o.Self {
			s += "(self)"
		}
		b = append(b, s)
	}
	return strings.Join(b, "\n")
}

func TestDiscoverSelectsOnlyTheReleaseInOrder(t *testing.T) {
	c := sentineltest.New(t)
	c.AddRelease(t)
	p := discover(t, c)
	want := strings.Join([]string{
		"CSIDriver csi.meshcsi.io=uid-csidriver",
		"DaemonSet meshcsi-system/meshcsi-driver=uid-ds",
		"ServiceAccount meshcsi-system/meshcsi-driver=uid-sa-driver",
		"ConfigMap meshcsi-system/meshcsi-dashboard=uid-cm-dashboard",
		"Service meshcsi-system/meshcsi-metrics=uid-svc",
		"ClusterRole meshcsi-driver=uid-cr-driver",
		"ClusterRoleBinding meshcsi-driver=uid-crb-driver",
		"ServiceAccount meshcsi-system/meshcsi-sentinel=uid-sa-sentinel(self)",
		"Role meshcsi-system/meshcsi-sentinel=uid-role-sentinel(self)",
		"RoleBinding meshcsi-system/meshcsi-sentinel=uid-rb-sentinel(self)",
		"ClusterRole meshcsi-sentinel=uid-cr-sentinel(self)",
		"ClusterRoleBinding meshcsi-sentinel=uid-crb-sentinel(self)",
	}, "\n")
	if got := render(p.Objects); got != want {
		t.Fatalf("plan objects:\n%s\nwant:\n%s", got, want)
	}
	if p.MarkerUID != "uid-marker-1" {
		t.Fatalf("MarkerUID = %q", p.MarkerUID)
	}
	// Phases partition the plan.
	n := 0
	for _, ph := range []plan.Phase{plan.PhaseCSIDriver, plan.PhaseDaemonSet, plan.PhaseRest, plan.PhaseSelf} {
		n += len(p.Phase(ph))
	}
	if n != len(p.Objects) || len(p.Phase(plan.PhaseSelf)) != 5 || p.Phase(plan.PhaseCSIDriver)[0].Kind != "CSIDriver" {
		t.Fatalf("phases do not partition the plan")
	}
}

func TestOptionalKinds(t *testing.T) {
	scc, _ := plan.KindByName("SecurityContextConstraints")
	pm, _ := plan.KindByName("PodMonitor")
	tests := []struct {
		name    string
		served  []string
		wantSCC bool
		wantMon bool
	}{
		{"absent APIs skipped cleanly", nil, false, false},
		{"openshift served", []string{"security.openshift.io/v1"}, true, false},
		{"monitoring served", []string{"monitoring.coreos.com/v1"}, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := sentineltest.New(t, tt.served...)
			c.Add(t, scc, "", "meshcsi-driver", "uid-scc", sentineltest.Labels("driver"), map[string]string{plan.AnnotReleaseNS: sentineltest.NS})
			c.Add(t, pm, sentineltest.NS, "meshcsi", "uid-pm", sentineltest.Labels("monitoring"), nil)
			got := render(discover(t, c).Objects)
			if strings.Contains(got, "uid-scc") != tt.wantSCC || strings.Contains(got, "uid-pm") != tt.wantMon {
				t.Fatalf("plan = %q", got)
			}
		})
	}
}

func TestConfigMapRoundTrip(t *testing.T) {
	c := sentineltest.New(t)
	c.AddRelease(t)
	p := discover(t, c)
	cm, err := p.ToConfigMap("meshcsi-sentinel-plan")
	if err != nil {
		t.Fatal(err)
	}
	if cm.Labels[plan.LabelComponent] != plan.ComponentSelf || cm.Namespace != sentineltest.NS {
		t.Fatalf("plan ConfigMap meta = %+v", cm.ObjectMeta)
	}
	back, err := plan.FromConfigMap(cm)
	if err != nil {
		t.Fatal(err)
	}
	if render(back.Objects) != render(p.Objects) || back.MarkerUID != p.MarkerUID {
		t.Fatal("plan changed in the round trip")
	}
	delete(cm.Data, plan.DataKey)
	if _, err := plan.FromConfigMap(cm); err == nil {
		t.Fatal("a ConfigMap without the plan key was accepted")
	}
}

// The chart's labels, not Helm's annotations, make an object the release's:
// `helm template | kubectl apply` and Argo CD set no meta.helm.sh annotations.
func TestOwnsByLabelsNotHelmAnnotations(t *testing.T) {
	csi, _ := plan.KindByName("CSIDriver")
	ds, _ := plan.KindByName("DaemonSet")
	obj := func(ns string, ann map[string]string) *metav1.ObjectMeta {
		return &metav1.ObjectMeta{Name: "x", Namespace: ns, Labels: sentineltest.Labels("driver"), Annotations: ann}
	}
	tests := []struct {
		name string
		kind plan.Kind
		m    *metav1.ObjectMeta
		want bool
	}{
		{"cluster-scoped, applied without Helm", csi, obj("", nil), true},
		{"cluster-scoped, Helm of this namespace", csi, obj("", map[string]string{plan.AnnotReleaseNS: sentineltest.NS}), true},
		{"cluster-scoped, Helm of another namespace", csi, obj("", map[string]string{plan.AnnotReleaseNS: "elsewhere"}), false},
		{"namespaced, install namespace", ds, obj(sentineltest.NS, nil), true},
		{"namespaced, another namespace", ds, obj("elsewhere", nil), false},
		{"unlabelled", csi, &metav1.ObjectMeta{Name: "x"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := rel.Owns(tt.kind, tt.m); got != tt.want {
				t.Fatalf("Owns() = %v, want %v", got, tt.want)
			}
		})
	}
}
