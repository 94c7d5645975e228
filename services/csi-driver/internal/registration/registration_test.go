package registration

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	registerapi "k8s.io/kubelet/pkg/apis/pluginregistration/v1"
)

// TestKubeletRegistration plays the kubelet's plugin watcher against the
// real server over a Unix socket.
func TestKubeletRegistration(t *testing.T) {
	core, logs := observer.New(zap.InfoLevel)
	srv, err := New(Config{DriverName: "csi.meshcsi.io", Endpoint: "/var/lib/kubelet/plugins/csi.meshcsi.io/csi.sock", Logger: zap.New(core)})
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "meshcsi-reg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "csi.meshcsi.io-reg.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer()
	srv.Register(g)
	go func() { _ = g.Serve(l) }()
	t.Cleanup(g.Stop)

	conn, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	kubelet := registerapi.NewRegistrationClient(conn)
	ctx := context.Background()
	info, err := kubelet.GetInfo(ctx, &registerapi.InfoRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if info.Type != registerapi.CSIPlugin || info.Name != "csi.meshcsi.io" ||
		info.Endpoint != "/var/lib/kubelet/plugins/csi.meshcsi.io/csi.sock" ||
		!reflect.DeepEqual(info.SupportedVersions, []string{"1.0.0"}) {
		t.Fatalf("GetInfo = %+v", info)
	}

	if _, err := kubelet.NotifyRegistrationStatus(ctx, &registerapi.RegistrationStatus{PluginRegistered: false, Error: "plugin name collides"}); err != nil {
		t.Fatal(err)
	}
	refused := logs.FilterMessageSnippet("refused").All()
	if len(refused) != 1 || refused[0].ContextMap()["reason"] != "plugin name collides" {
		t.Fatalf("refusal logs = %+v", refused)
	}
	// The kubelet retries; success is logged at info.
	if _, err := kubelet.NotifyRegistrationStatus(ctx, &registerapi.RegistrationStatus{PluginRegistered: true}); err != nil {
		t.Fatal(err)
	}
	if ok := logs.FilterMessage("registered with the kubelet").All(); len(ok) != 1 || ok[0].Level != zap.InfoLevel {
		t.Fatalf("success logs = %+v", ok)
	}
}

func TestNewRequiresSettings(t *testing.T) {
	for _, c := range []Config{
		{Endpoint: "/e", Logger: zap.NewNop()},
		{DriverName: "d", Logger: zap.NewNop()},
		{DriverName: "d", Endpoint: "/e"},
	} {
		if _, err := New(c); err == nil {
			t.Fatalf("New(%+v) succeeded", c)
		}
	}
}
