package spire

import (
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/meshcsi/meshcsi/e2e/manifest"
)

func TestRender(t *testing.T) {
	cfg := Config{SocketDir: "/run/spire/agent-sockets", KubeletPort: 10250, ImageTag: "e2e"}
	server, agent, err := Render(cfg, "10.96.0.42")
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range append(append(manifest.Set{}, server...), agent...) {
		if ns := o.GetNamespace(); ns != "" && ns != DefaultNamespace {
			t.Errorf("%s %s in namespace %q", o.GetKind(), o.GetName(), ns)
		}
	}
	if server.Get("StatefulSet", "spire-server") == nil || server.Get("Service", "spire-server") == nil {
		t.Fatalf("server objects missing: %d objects", len(server))
	}
	for _, o := range server {
		if o.GetKind() == "DaemonSet" {
			t.Errorf("the agent's DaemonSet is in the server half")
		}
	}

	var cm corev1.ConfigMap
	into(t, agent.Get("ConfigMap", "spire-agent").Object, &cm)
	conf := cm.Data["agent.conf"]
	for _, want := range []string{
		`server_address = "10.96.0.42"`, `trust_domain = "meshcsi.test"`, `socket_path = "/run/spire/sockets/agent.sock"`,
		`cluster = "meshcsi"`, `kubelet_secure_port = 10250`, `skip_kubelet_verification = true`,
	} {
		if !strings.Contains(conf, want) {
			t.Errorf("agent.conf lacks %s:\n%s", want, conf)
		}
	}
	into(t, server.Get("ConfigMap", "spire-server").Object, &cm)
	if want := `service_account_allow_list = ["spire-system:spire-agent"]`; !strings.Contains(cm.Data["server.conf"], want) {
		t.Errorf("server.conf lacks %s:\n%s", want, cm.Data["server.conf"])
	}

	var ds appsv1.DaemonSet
	into(t, agent.Get("DaemonSet", "spire-agent").Object, &ds)
	var hostPath string
	for _, v := range ds.Spec.Template.Spec.Volumes {
		if v.HostPath != nil {
			hostPath = v.HostPath.Path
		}
	}
	if hostPath != cfg.SocketDir {
		t.Errorf("agent socket hostPath %q, want %q", hostPath, cfg.SocketDir)
	}
	if c := ds.Spec.Template.Spec.Containers[0]; c.Image != "meshcsi/spire-agent:e2e" || c.ImagePullPolicy != corev1.PullNever {
		t.Errorf("agent image %s %s", c.Image, c.ImagePullPolicy)
	}
}

func TestRenderNeedsConfig(t *testing.T) {
	for name, cfg := range map[string]Config{
		"no socket dir":   {KubeletPort: 1, ImageTag: "x"},
		"no kubelet port": {SocketDir: "/d", ImageTag: "x"},
		"no image tag":    {SocketDir: "/d", KubeletPort: 1},
	} {
		if _, _, err := Render(cfg, "10.0.0.1"); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestWorkloadPodHasOnlyTheCSIVolume(t *testing.T) {
	p := WorkloadPod(WorkloadOptions{Namespace: "w", Name: "p", ServiceAccount: "sa", Driver: "csi.meshcsi.io", Source: "spire-agent", ImageTag: "e2e"})
	if len(p.Spec.Volumes) != 1 || p.Spec.Volumes[0].CSI == nil || p.Spec.Volumes[0].CSI.VolumeAttributes["source"] != "spire-agent" {
		t.Errorf("volumes %+v, want the one meshcsi volume of source spire-agent", p.Spec.Volumes)
	}
	if p.Spec.AutomountServiceAccountToken == nil || *p.Spec.AutomountServiceAccountToken {
		t.Error("the workload mounts a service-account token")
	}
	if got := ID("td", "ns", "sa"); got != "spiffe://td/ns/ns/sa/sa" {
		t.Errorf("ID = %s", got)
	}
}

func into(t *testing.T, obj map[string]any, out any) {
	t.Helper()
	if obj == nil {
		t.Fatal("object missing")
	}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(obj, out); err != nil {
		t.Fatal(err)
	}
}
