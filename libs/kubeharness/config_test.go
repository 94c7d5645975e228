package kubeharness

import (
	"strings"
	"testing"

	proxyv1alpha1 "k8s.io/kube-proxy/config/v1alpha1"
	kubeletv1beta1 "k8s.io/kubelet/config/v1beta1"
	"sigs.k8s.io/yaml"
)

func testCluster(t *testing.T) *Cluster {
	t.Helper()
	opts, err := Options{Mode: Node, Dir: "/state", KubeletDir: "/state/kubelet", EtcdPath: "/usr/bin/etcd"}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	c := &Cluster{opts: opts, paths: newPaths(opts.Dir)}
	c.st.Ports = ports{Etcd: 1, EtcdPeer: 2, APIServer: 3, ControllerManager: 4, Scheduler: 5, Kubelet: 6, KubeletHealthz: 7, KubeProxyHealthz: 8, KubeProxyMetrics: 9}
	return c
}

func TestKubeletConfig(t *testing.T) {
	c := testCluster(t)
	var cfg kubeletv1beta1.KubeletConfiguration
	if err := yaml.UnmarshalStrict([]byte(c.kubeletConfig()), &cfg); err != nil {
		t.Fatalf("kubelet config does not decode strictly: %v", err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"address", cfg.Address, "127.0.0.1"},
		{"port", cfg.Port, int32(6)},
		{"healthz address", cfg.HealthzBindAddress, "127.0.0.1"},
		{"read-only port", cfg.ReadOnlyPort, int32(0)},
		{"anonymous auth", *cfg.Authentication.Anonymous.Enabled, false},
		{"authorization", string(cfg.Authorization.Mode), "Webhook"},
		{"cgroup driver", cfg.CgroupDriver, "cgroupfs"},
		{"cgroup v1 allowed", *cfg.FailCgroupV1, false},
		{"runtime endpoint", cfg.ContainerRuntimeEndpoint, "unix:///state/containerd/containerd.sock"},
		{"pod logs", cfg.PodLogsDir, "/state/pod-logs"},
		{"volume plugins", cfg.VolumePluginDir, "/state/volume-plugins"},
		{"image GC off", *cfg.ImageGCHighThresholdPercent, int32(100)},
	}
	for _, ck := range checks {
		if ck.got != ck.want {
			t.Errorf("%s = %v, want %v", ck.name, ck.got, ck.want)
		}
	}
}

func TestKubeProxyConfig(t *testing.T) {
	c := testCluster(t)
	var cfg proxyv1alpha1.KubeProxyConfiguration
	if err := yaml.UnmarshalStrict([]byte(c.kubeProxyConfig()), &cfg); err != nil {
		t.Fatalf("kube-proxy config does not decode strictly: %v", err)
	}
	if cfg.Mode != "iptables" || cfg.HostnameOverride != NodeName || cfg.ClusterCIDR != DefaultPodCIDR {
		t.Errorf("config = %+v", cfg)
	}
	if cfg.HealthzBindAddress != "127.0.0.1:8" || cfg.MetricsBindAddress != "127.0.0.1:9" {
		t.Errorf("listeners %s %s not on loopback", cfg.HealthzBindAddress, cfg.MetricsBindAddress)
	}
	if len(cfg.NodePortAddresses) != 1 || cfg.NodePortAddresses[0] != DefaultNodeIP+"/32" {
		t.Errorf("node ports on %v, want only the node IP", cfg.NodePortAddresses)
	}
	if cfg.IPTables.LocalhostNodePorts == nil || *cfg.IPTables.LocalhostNodePorts {
		t.Error("localhost node ports enabled: kube-proxy would set route_localnet")
	}
	if cfg.Conntrack.MaxPerCore == nil || *cfg.Conntrack.MaxPerCore != 0 {
		t.Error("conntrack maxPerCore not 0: kube-proxy would change the conntrack table size")
	}
}

func TestContainerdConfig(t *testing.T) {
	conf := testCluster(t).containerdConfig()
	for _, want := range []string{
		`root = "/state/containerd/root"`,
		`address = "/state/containerd/containerd.sock"`,
		`restrict_oom_score_adj = true`,
		`sandbox_image = "meshcsi/pause:kubeharness"`,
		`stream_server_address = "127.0.0.1"`,
		`SystemdCgroup = false`,
		`bin_dir = "/usr/lib/cni"`,
		`conf_dir = "/state/cni/net.d"`,
	} {
		if !strings.Contains(conf, want) {
			t.Errorf("containerd config lacks %s", want)
		}
	}
}

func TestAPIServerArgs(t *testing.T) {
	tests := []struct {
		mode Mode
		want []string
	}{
		{ControlPlane, []string{"--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", "--endpoint-reconciler-type=none", "--authorization-mode=Node,RBAC"}},
		{Node, []string{"--bind-address=127.0.0.1", "--advertise-address=" + DefaultNodeIP, "--endpoint-reconciler-type=lease", "--kubelet-preferred-address-types=Hostname"}},
	}
	for _, tt := range tests {
		c := testCluster(t)
		c.opts.Mode = tt.mode
		c.opts.ExtraAPIServerArgs = []string{"--v=2"}
		args := strings.Join(c.apiServerArgs(), " ")
		for _, w := range append(tt.want, "--v=2", "--secure-port=3", "--etcd-servers=http://127.0.0.1:1") {
			if !strings.Contains(args, w) {
				t.Errorf("%s: kube-apiserver args lack %s", tt.mode, w)
			}
		}
	}
}
