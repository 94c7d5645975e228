//go:build chart

package chart

import (
	"reflect"
	"strings"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"

	"github.com/meshcsi/meshcsi/e2e/manifest"
)

// TestSentinelRBACMatchesItsDoc: the chart grants the hand-off, the
// sentinel and the pre-upgrade hook (each its own account) exactly the rules
// docs/sentinel.md documents (and the sentinel's integration tests run
// under), for the default and an overridden fullname; the pre-upgrade hook
// has a Role and no ClusterRole.
func TestSentinelRBACMatchesItsDoc(t *testing.T) {
	block := docRBACBlock(t)
	h := newHelm(t)
	for _, set := range []map[string]string{nil, valueSets["custom"]} {
		fn, dn := fullname(set), driverName(set)
		want, err := manifest.Parse(strings.NewReplacer(
			"{{fullname}}", fn, "{{namespace}}", namespace, "{{driverName}}", dn,
		).Replace(block))
		if err != nil {
			t.Fatal(err)
		}
		got := render(t, h, set)
		for _, set := range []manifest.Set{want, got} {
			if set.Get("ClusterRole", fn+"-upgrade") != nil || set.Get("ClusterRoleBinding", fn+"-upgrade") != nil {
				t.Errorf("a ClusterRole or ClusterRoleBinding %s-upgrade exists (doc or chart): the pre-upgrade hook's rights end at its namespace", fn)
			}
		}
		for _, kn := range [][2]string{{"ClusterRole", "-sentinel"}, {"Role", "-sentinel"}, {"ClusterRole", "-handoff"}, {"Role", "-handoff"}, {"Role", "-upgrade"}} {
			kind, name := kn[0], fn+kn[1]
			w, g := want.Get(kind, name), got.Get(kind, name)
			if w == nil || g == nil {
				t.Fatalf("%s %s: in doc %v, in chart %v", kind, name, w != nil, g != nil)
			}
			var wr, gr rbacv1.ClusterRole
			if err := manifest.Into(w, &wr); err != nil {
				t.Fatal(err)
			}
			if err := manifest.Into(g, &gr); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(wr.Rules, gr.Rules) {
				t.Errorf("%s %s rules differ from docs/sentinel.md:\n chart %+v\n doc   %+v", kind, name, gr.Rules, wr.Rules)
			}
		}
	}
}
