package sanitytest

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"github.com/kubernetes-csi/csi-test/v5/pkg/sanity"
	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/ginkgo/v2/types"
	"github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/meshcsi/meshcsi/services/csi-driver/internal/config"
	"github.com/meshcsi/meshcsi/services/csi-driver/internal/mount"
	"github.com/meshcsi/meshcsi/services/csi-driver/internal/server"
	tc "github.com/meshcsi/meshcsi/services/csi-driver/internal/testcases"
)

// SkipStrings are the sanity specs skipped by name, with the reason. Every
// other spec either runs or skips itself because the driver does not
// advertise the capability it needs; the test logs each skip with sanity's
// own reason, and docs/driver.md lists them.
var SkipStrings = map[string]string{
	`\[Controller Server\]`: "the driver has no controller service: ephemeral inline volumes are never provisioned (the fake controller here only hands sanity a volume context)",
}

// fakeController stands in for the controller service sanity uses to obtain
// a volume before it calls the node: CreateVolume returns the volume
// context the kubelet would send for an inline volume (ephemeral=true and
// the source). Every NodePublish/NodeUnpublish goes to the real driver.
type fakeController struct {
	csi.UnimplementedControllerServer
	// IdentityServer forwards to the real driver: sanity asks both
	// endpoints for their identity.
	csi.IdentityServer
	mu   sync.Mutex
	vols map[string]bool
}

func (f *fakeController) ControllerGetCapabilities(context.Context, *csi.ControllerGetCapabilitiesRequest) (*csi.ControllerGetCapabilitiesResponse, error) {
	return &csi.ControllerGetCapabilitiesResponse{Capabilities: []*csi.ControllerServiceCapability{{
		Type: &csi.ControllerServiceCapability_Rpc{Rpc: &csi.ControllerServiceCapability_RPC{Type: csi.ControllerServiceCapability_RPC_CREATE_DELETE_VOLUME}},
	}}}, nil
}

func (f *fakeController) CreateVolume(_ context.Context, req *csi.CreateVolumeRequest) (*csi.CreateVolumeResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.vols[req.Name] = true
	vc := map[string]string{"csi.storage.k8s.io/ephemeral": "true"}
	for k, v := range req.Parameters {
		vc[k] = v
	}
	return &csi.CreateVolumeResponse{Volume: &csi.Volume{VolumeId: "csi-" + req.Name, VolumeContext: vc}}, nil
}

func (f *fakeController) DeleteVolume(context.Context, *csi.DeleteVolumeRequest) (*csi.DeleteVolumeResponse, error) {
	return &csi.DeleteVolumeResponse{}, nil
}

// identityProxy serves the driver's Identity answers on the fake
// controller's socket.
type identityProxy struct {
	csi.UnimplementedIdentityServer
	c csi.IdentityClient
}

func (p identityProxy) GetPluginInfo(ctx context.Context, r *csi.GetPluginInfoRequest) (*csi.GetPluginInfoResponse, error) {
	return p.c.GetPluginInfo(ctx, r)
}

func (p identityProxy) GetPluginCapabilities(ctx context.Context, r *csi.GetPluginCapabilitiesRequest) (*csi.GetPluginCapabilitiesResponse, error) {
	return p.c.GetPluginCapabilities(ctx, r)
}

func (p identityProxy) Probe(ctx context.Context, r *csi.ProbeRequest) (*csi.ProbeResponse, error) {
	return p.c.Probe(ctx, r)
}

func TestRootSanity(t *testing.T) {
	tc.RequireRoot(t)
	kd := tc.KubeletDir(t)
	volDir := filepath.Join(kd, "pods", tc.PodUID, "volumes", "kubernetes.io~csi")
	if err := os.MkdirAll(filepath.Join(kd, "plugins"), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(volDir, 0o750); err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(tc.TempDir(t, "src"), "agent")
	if err := os.Mkdir(src, 0o755); err != nil {
		t.Fatal(err)
	}
	sockDir := tc.TempDir(t, "sock")
	cfg := config.Config{
		Endpoint:      filepath.Join(sockDir, "csi.sock"),
		DriverName:    "csi.meshcsi.io",
		NodeID:        "sanity-node",
		Sources:       []config.Source{{Name: tc.Source, Dir: src}},
		DefaultSource: tc.Source,
		KubeletDir:    kd,
	}
	m, err := mount.NewLinux(cfg.PodsDir())
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(server.Options{Config: cfg, Version: "sanity", Logger: zap.NewNop(), Registry: prometheus.NewRegistry(), Mounter: m})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run = %v", err)
		}
	})

	ctrlSock := filepath.Join(sockDir, "controller.sock")
	l, err := net.Listen("unix", ctrlSock)
	if err != nil {
		t.Fatal(err)
	}
	driverConn, err := grpc.NewClient("unix://"+cfg.Endpoint, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { driverConn.Close() })
	fake := &fakeController{IdentityServer: identityProxy{c: csi.NewIdentityClient(driverConn)}, vols: map[string]bool{}}
	g := grpc.NewServer()
	csi.RegisterControllerServer(g, fake)
	csi.RegisterIdentityServer(g, fake)
	go func() { _ = g.Serve(l) }()
	t.Cleanup(g.Stop)
	deadline := time.Now().Add(5 * time.Second)
	for _, err := os.Stat(cfg.Endpoint); err != nil; _, err = os.Stat(cfg.Endpoint) {
		if time.Now().After(deadline) {
			t.Fatal("driver socket did not appear")
		}
		time.Sleep(2 * time.Millisecond)
	}

	sc := sanity.NewTestConfig()
	sc.Address = "unix://" + cfg.Endpoint
	sc.ControllerAddress = "unix://" + ctrlSock
	sc.TargetPath = filepath.Join(volDir, "sanity")
	sc.StagingPath = filepath.Join(kd, "plugins", "staging") // unused: no stage step
	sc.TestVolumeParameters = map[string]string{"source": tc.Source}
	sc.IDGen = &sanity.DefaultIDGenerator{}

	sanity.GinkgoTest(&sc)
	gomega.RegisterFailHandler(ginkgo.Fail)
	suite, reporter := ginkgo.GinkgoConfiguration()
	reporter.NoColor = true
	for re := range SkipStrings {
		suite.SkipStrings = append(suite.SkipStrings, re)
	}
	var report ginkgo.Report
	ginkgo.ReportAfterSuite("summary", func(r ginkgo.Report) { report = r })
	if !ginkgo.RunSpecs(t, "meshcsi sanity", suite, reporter) {
		t.Fatal("sanity failed")
	}
	var ran, skipped []string
	for _, s := range report.SpecReports {
		if s.LeafNodeType != types.NodeTypeIt {
			continue
		}
		name := strings.TrimSpace(s.FullText())
		switch s.State {
		case types.SpecStatePassed:
			ran = append(ran, name)
		case types.SpecStateSkipped, types.SpecStatePending:
			reason := s.Failure.Message
			if reason == "" {
				reason = "skipped by name: no controller service"
				if s.State == types.SpecStatePending {
					reason = "pending in csi-test"
				}
			}
			skipped = append(skipped, name+" -- "+reason)
		default:
			t.Errorf("spec %q: %s", name, s.State)
		}
	}
	for _, n := range ran {
		t.Logf("passed: %s", n)
	}
	for _, n := range skipped {
		t.Logf("skipped: %s", n)
	}
	t.Logf("%d sanity specs passed, %d skipped", len(ran), len(skipped))
	if len(ran) < 10 {
		t.Fatalf("only %d sanity specs ran", len(ran))
	}
	if m := tc.MountsBelow(t, kd); len(m) != 0 {
		t.Fatalf("sanity left mounts %v", m)
	}
}
