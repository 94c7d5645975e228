package kubeharness

import (
	"net"
	"strings"
	"testing"

	"k8s.io/client-go/tools/clientcmd"
)

func TestOptionsDefaults(t *testing.T) {
	t.Setenv(BinDirEnv, "/opt/kube/bin")
	tests := []struct {
		name    string
		in      Options
		wantErr string
		check   func(t *testing.T, o Options)
	}{
		{
			name: "control plane defaults",
			in:   Options{EtcdPath: "/usr/bin/etcd"},
			check: func(t *testing.T, o Options) {
				if o.BinDir != "/opt/kube/bin" || o.NodeIP != DefaultNodeIP || o.PodCIDR != DefaultPodCIDR ||
					o.ServiceCIDR != DefaultServiceCIDR || o.Bridge != DefaultBridge || o.StartTimeout <= 0 || o.Logf == nil {
					t.Errorf("defaults not applied: %+v", o)
				}
			},
		},
		{name: "loopback node IP", in: Options{EtcdPath: "/e", NodeIP: "127.0.0.2"}, wantErr: "NodeIP"},
		{name: "bad pod CIDR", in: Options{EtcdPath: "/e", PodCIDR: "10.0.0.0"}, wantErr: "PodCIDR"},
		{name: "bad service CIDR", in: Options{EtcdPath: "/e", ServiceCIDR: "x"}, wantErr: "ServiceCIDR"},
		{name: "long bridge name", in: Options{EtcdPath: "/e", Bridge: "a-very-long-bridge"}, wantErr: "Bridge"},
		{name: "bad mode", in: Options{EtcdPath: "/e", Mode: Mode(7)}, wantErr: "Mode"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := tt.in.withDefaults()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one naming %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, o)
		})
	}
}

func TestBinaries(t *testing.T) {
	tests := []struct {
		opts Options
		want string
	}{
		{Options{Mode: ControlPlane}, "kube-apiserver"},
		{Options{Mode: ControlPlane, ControllerManager: true}, "kube-apiserver,kube-controller-manager"},
		{Options{Mode: Node}, "kube-apiserver,kube-controller-manager,kube-scheduler,kubelet,kube-proxy"},
	}
	for _, tt := range tests {
		if got := strings.Join(tt.opts.binaries(), ","); got != tt.want {
			t.Errorf("%+v: binaries = %s, want %s", tt.opts, got, tt.want)
		}
	}
}

func TestCheckBinariesMissing(t *testing.T) {
	err := Options{Mode: Node, BinDir: t.TempDir()}.checkBinaries()
	if err == nil || !strings.Contains(err.Error(), "make kube-binaries") {
		t.Fatalf("err = %v, want ErrMissingBinaries", err)
	}
}

func TestParseMode(t *testing.T) {
	for _, m := range []Mode{ControlPlane, Node} {
		got, err := ParseMode(m.String())
		if err != nil || got != m {
			t.Errorf("ParseMode(%q) = %v, %v", m.String(), got, err)
		}
	}
	if _, err := ParseMode("cluster"); err == nil {
		t.Error("ParseMode accepted an unknown mode")
	}
}

func TestFirstServiceIP(t *testing.T) {
	tests := []struct {
		cidr, want string
		wantErr    bool
	}{
		{cidr: "10.96.0.0/16", want: "10.96.0.1"},
		{cidr: "10.0.0.0/24", want: "10.0.0.1"},
		{cidr: "fd00::/64", wantErr: true},
		{cidr: "nope", wantErr: true},
	}
	for _, tt := range tests {
		ip, err := firstServiceIP(tt.cidr)
		if (err != nil) != tt.wantErr {
			t.Errorf("%s: err = %v", tt.cidr, err)
			continue
		}
		if !tt.wantErr && !ip.Equal(net.ParseIP(tt.want)) {
			t.Errorf("%s: got %s, want %s", tt.cidr, ip, tt.want)
		}
	}
}

func TestRenderKubeconfig(t *testing.T) {
	data, err := renderKubeconfig("https://127.0.0.1:6443", []byte("CA"), []byte("CERT"), []byte("KEY"), "admin")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := clientcmd.Load(data)
	if err != nil {
		t.Fatalf("rendered kubeconfig does not load: %v", err)
	}
	ctx := cfg.Contexts[cfg.CurrentContext]
	if ctx == nil || ctx.AuthInfo != "admin" {
		t.Fatalf("current context = %+v", ctx)
	}
	cl := cfg.Clusters[ctx.Cluster]
	if cl.Server != "https://127.0.0.1:6443" || string(cl.CertificateAuthorityData) != "CA" {
		t.Errorf("cluster = %+v", cl)
	}
	u := cfg.AuthInfos["admin"]
	if string(u.ClientCertificateData) != "CERT" || string(u.ClientKeyData) != "KEY" {
		t.Errorf("user = %+v", u)
	}
}
