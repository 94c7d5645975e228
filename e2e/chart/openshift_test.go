//go:build chart

package chart

import (
	"slices"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"

	"github.com/meshcsi/meshcsi/e2e/manifest"
)

func TestOpenShiftMode(t *testing.T) {
	h := newHelm(t)
	t.Run("off", func(t *testing.T) {
		objs := render(t, h, nil)
		if n := len(objs.Kind("SecurityContextConstraints")); n != 0 {
			t.Errorf("%d SCCs outside OpenShift mode", n)
		}
		ds := daemonSet(t, objs, nil)
		if ds.Spec.Template.Spec.Containers[0].SecurityContext.SELinuxOptions != nil {
			t.Error("SELinux options set outside OpenShift mode")
		}
	})
	t.Run("on", func(t *testing.T) {
		set := valueSets["openshift"]
		objs := render(t, h, set)
		driverSCC := objs.Get("SecurityContextConstraints", "meshcsi-driver")
		workloadSCC := objs.Get("SecurityContextConstraints", "meshcsi-workload")
		if driverSCC == nil || workloadSCC == nil {
			t.Fatal("driver or workload SCC missing")
		}
		if v, _, _ := unstructuredBool(driverSCC.Object, "allowPrivilegedContainer"); !v {
			t.Error("driver SCC does not allow privileged containers")
		}
		if v, _, _ := unstructuredBool(driverSCC.Object, "allowHostDirVolumePlugin"); !v {
			t.Error("driver SCC does not allow hostPath")
		}
		if v, _, _ := unstructuredBool(workloadSCC.Object, "allowPrivilegedContainer"); v {
			t.Error("workload SCC allows privileged containers")
		}
		if v, _, _ := unstructuredBool(workloadSCC.Object, "allowHostDirVolumePlugin"); v {
			t.Error("workload SCC allows hostPath")
		}
		vols, _ := workloadSCC.Object["volumes"].([]any)
		if !slices.Contains(vols, any("csi")) || slices.Contains(vols, any("hostPath")) || slices.Contains(vols, any("*")) {
			t.Errorf("workload SCC volumes %v: want csi, no hostPath", vols)
		}
		// `use` grants: the driver's to its ServiceAccount only, the
		// workloads' to the listed namespaces.
		var rb rbacv1.RoleBinding
		if err := manifest.Into(objs.Get("RoleBinding", "meshcsi-driver-scc"), &rb); err != nil {
			t.Fatal(err)
		}
		if rb.RoleRef.Name != "meshcsi-driver-scc" || len(rb.Subjects) != 1 || rb.Subjects[0].Name != "meshcsi-driver" {
			t.Errorf("driver SCC binding %+v", rb)
		}
		var got []string
		for _, o := range objs.Kind("RoleBinding") {
			if o.GetName() == "meshcsi-workload-scc" {
				got = append(got, o.GetNamespace())
			}
		}
		if !slices.Equal(got, []string{"team-a", "team-b"}) {
			t.Errorf("workload SCC RoleBindings in %v", got)
		}
		ds := daemonSet(t, objs, set)
		se := ds.Spec.Template.Spec.Containers[0].SecurityContext.SELinuxOptions
		if se == nil || se.Type != "spc_t" {
			t.Errorf("driver SELinux options %+v, want type spc_t", se)
		}
		if ds.Spec.Template.Annotations["openshift.io/required-scc"] != "meshcsi-driver" {
			t.Error("driver pods do not ask for their SCC")
		}
	})
}

func unstructuredBool(obj map[string]any, key string) (bool, bool, error) {
	v, ok := obj[key].(bool)
	return v, ok, nil
}
