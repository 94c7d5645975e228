//go:build chart

package chart

import (
	"strings"
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
		if driverSCC == nil {
			t.Fatal("driver SCC missing")
		}
		// Workloads use restricted-v2 (csi volumes allowed since 4.13): a
		// custom workload SCC could win SCC selection over it.
		if n := len(objs.Kind("SecurityContextConstraints")); n != 1 {
			t.Errorf("%d SCCs, want only the driver's", n)
		}
		if v, _, _ := unstructuredBool(driverSCC.Object, "allowPrivilegedContainer"); !v {
			t.Error("driver SCC does not allow privileged containers")
		}
		if v, _, _ := unstructuredBool(driverSCC.Object, "allowHostDirVolumePlugin"); !v {
			t.Error("driver SCC does not allow hostPath")
		}
		// `use` of the driver's SCC goes to its ServiceAccount only.
		var rb rbacv1.RoleBinding
		if err := manifest.Into(objs.Get("RoleBinding", "meshcsi-driver-scc"), &rb); err != nil {
			t.Fatal(err)
		}
		if rb.RoleRef.Name != "meshcsi-driver-scc" || len(rb.Subjects) != 1 || rb.Subjects[0].Name != "meshcsi-driver" {
			t.Errorf("driver SCC binding %+v", rb)
		}
		for _, o := range objs.Kind("RoleBinding") {
			if o.GetNamespace() != namespace {
				t.Errorf("%s: a RoleBinding outside the install namespace", id(o))
			}
		}
		csi := objs.Get("CSIDriver", "csi.meshcsi.io")
		if p := csi.GetLabels()["security.openshift.io/csi-ephemeral-volume-profile"]; p != "restricted" {
			t.Errorf("CSIDriver csi-ephemeral-volume-profile %q, want restricted", p)
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

// TestSELinuxRelabel: the opt-in init container labels every source
// directory container_file_t on each start, mounted read-write, privileged.
func TestSELinuxRelabel(t *testing.T) {
	h := newHelm(t)
	set := map[string]string{
		"openshift.enabled":             "true",
		"driver.seLinuxRelabel.enabled": "true",
		"sources.other":                 "/run/other",
	}
	ds := daemonSet(t, render(t, h, set), set)
	inits := ds.Spec.Template.Spec.InitContainers
	if len(inits) != 1 {
		t.Fatalf("%d init containers, want 1", len(inits))
	}
	ic := inits[0]
	cmd := strings.Join(append(ic.Command, ic.Args...), " ")
	if want := "chcon -R -v -t container_file_t -l s0 /run/other /run/spire/agent-sockets"; cmd != want {
		t.Errorf("init command %q, want %q", cmd, want)
	}
	if len(ic.VolumeMounts) != 2 || ic.VolumeMounts[0].ReadOnly || ic.SecurityContext == nil || !*ic.SecurityContext.Privileged {
		t.Errorf("init container mounts %+v, security %+v", ic.VolumeMounts, ic.SecurityContext)
	}
	if len(daemonSet(t, render(t, h, nil), nil).Spec.Template.Spec.InitContainers) != 0 {
		t.Error("init container rendered by default")
	}
}
