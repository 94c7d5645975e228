package server_test

import (
	"context"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/meshcsi/meshcsi/services/csi-driver/internal/config"
	tc "github.com/meshcsi/meshcsi/services/csi-driver/internal/drivertest"
	"github.com/meshcsi/meshcsi/services/csi-driver/internal/mount"
	"github.com/meshcsi/meshcsi/services/csi-driver/internal/mount/mounttest"
	"github.com/meshcsi/meshcsi/services/csi-driver/internal/server"
)

// blockingMounter holds Publish until release is closed and records when
// it returned.
type blockingMounter struct {
	*mounttest.Fake
	entered  chan struct{}
	release  chan struct{}
	returned atomic.Bool
}

func (b *blockingMounter) Publish(source, target string) (mount.Result, error) {
	close(b.entered)
	<-b.release
	defer b.returned.Store(true)
	return b.Fake.Publish(source, target)
}

// TestShutdownFinishesInFlightCalls cancels the server while a publish is in
// flight: the call completes with OK, new connections are refused, Run
// returns nil only after the call returned, and both sockets are gone.
func TestShutdownFinishesInFlightCalls(t *testing.T) {
	dir := tc.TempDir(t, "shut")
	kd := filepath.Join(dir, "kubelet")
	fake := mounttest.NewFake()
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
	tc.WaitServing(t, cfg.Endpoint)

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
	// New connections are refused while the call drains: the socket goes
	// first, and Run is still draining (the call is held).
	waitFor(t, "the socket to go", func() bool { _, err := os.Stat(cfg.Endpoint); return os.IsNotExist(err) })
	select {
	case err := <-done:
		t.Fatalf("Run returned %v while a call was held in flight", err)
	default:
	}
	close(m.release)
	if err := <-done; err != nil {
		t.Fatalf("Run = %v", err)
	}
	// Run returned only after the in-flight call did.
	if !m.returned.Load() {
		t.Fatal("Run returned before the in-flight publish returned")
	}
	if err := <-callErr; err != nil {
		t.Fatalf("in-flight publish = %v, want OK", err)
	}
	if _, err := os.Lstat(cfg.RegistrationSocket()); !os.IsNotExist(err) {
		t.Fatalf("registration socket left: %v", err)
	}
	if fake.Publishes != 1 {
		t.Fatalf("publishes = %d", fake.Publishes)
	}
}

// waitFor polls cond (apimachinery wait) until it holds, with a generous
// deadline: a busy machine must not fail a correctness test.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), time.Millisecond, tc.ServeTimeout, true,
		func(context.Context) (bool, error) { return cond(), nil })
	if err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}
