package server_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/meshcsi/meshcsi/services/csi-driver/internal/config"
	"github.com/meshcsi/meshcsi/services/csi-driver/internal/mount"
	"github.com/meshcsi/meshcsi/services/csi-driver/internal/server"
	tc "github.com/meshcsi/meshcsi/services/csi-driver/internal/drivertest"
)

// blockingMounter holds Publish until release is closed.
type blockingMounter struct {
	*mount.Fake
	entered chan struct{}
	release chan struct{}
}

func (b *blockingMounter) Publish(source, target string) (mount.Result, error) {
	close(b.entered)
	<-b.release
	return b.Fake.Publish(source, target)
}

// TestShutdownFinishesInFlightCalls cancels the server while a publish is in
// flight: the call completes with OK, new connections are refused, Run
// returns nil and both sockets are gone.
func TestShutdownFinishesInFlightCalls(t *testing.T) {
	dir := tc.TempDir(t, "shut")
	kd := filepath.Join(dir, "kubelet")
	fake := mount.NewFake()
	fake.Sources[tc.Source] = mount.ID{Dev: 1, Ino: 2}
	m := &blockingMounter{Fake: fake, entered: make(chan struct{}), release: make(chan struct{})}
	cfg := config.Config{
		Endpoint: filepath.Join(dir, "csi.sock"), DriverName: "csi.meshcsi.io", NodeID: "n",
		Sources: []config.Source{{Name: tc.Source, Dir: "/run/agent"}}, KubeletDir: kd,
	}
	srv, err := server.New(server.Options{Config: cfg, Logger: zap.NewNop(), Registry: prometheus.NewRegistry(), Mounter: m, ShutdownTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	waitFor(t, func() bool { _, err := os.Stat(cfg.RegistrationSocket()); return err == nil })

	conn, err := grpc.NewClient("unix://"+cfg.Endpoint, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	callErr := make(chan error, 1)
	go func() {
		_, err := csi.NewNodeClient(conn).NodePublishVolume(context.Background(), tc.Publish(kd, "vol"))
		callErr <- err
	}()
	<-m.entered
	cancel()
	// New connections are refused while the call drains.
	waitFor(t, func() bool { _, err := os.Stat(cfg.Endpoint); return os.IsNotExist(err) })
	select {
	case err := <-done:
		t.Fatalf("Run returned %v before the in-flight call finished", err)
	case <-time.After(50 * time.Millisecond):
	}
	close(m.release)
	if err := <-callErr; err != nil {
		t.Fatalf("in-flight publish = %v, want OK", err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Run = %v", err)
	}
	if _, err := os.Lstat(cfg.RegistrationSocket()); !os.IsNotExist(err) {
		t.Fatalf("registration socket left: %v", err)
	}
	if fake.Publishes != 1 {
		t.Fatalf("publishes = %d", fake.Publishes)
	}
}
