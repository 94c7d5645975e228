package sanity_test

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"github.com/kubernetes-csi/csi-test/v5/pkg/sanity"
	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/ginkgo/v2/types"
	"github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"

	"github.com/meshcsi/meshcsi/services/csi-driver/internal/config"
	tc "github.com/meshcsi/meshcsi/services/csi-driver/internal/drivertest"
	"github.com/meshcsi/meshcsi/services/csi-driver/internal/mount"
	"github.com/meshcsi/meshcsi/services/csi-driver/internal/server"
)

// skipStrings are the sanity specs skipped by name, with the reason. Every
// other spec either runs or skips itself because the driver does not
// advertise the capability it needs; the test logs each skip with sanity's
// own reason, and docs/driver.md lists them.
var skipStrings = map[string]string{
	`\[Controller Server\]`: "the driver has no controller service: ephemeral inline volumes are never provisioned (the fake controller here only hands sanity a volume context)",
}

// mustPass pins, by name, the specs that apply to a node-only ephemeral
// driver. The test fails when one of them does not pass (for instance when it
// starts skipping itself) and when a spec not listed here passes (a csi-test
// upgrade added one: review it and pin it).
var mustPass = []string{
	"Identity Service GetPluginCapabilities should return appropriate capabilities",
	"Identity Service Probe should return appropriate information",
	"Identity Service GetPluginInfo should return appropriate information",
	"Node Service NodeGetCapabilities should return appropriate capabilities",
	"Node Service NodeGetInfo should return appropriate values",
	"Node Service NodePublishVolume should fail when no volume id is provided",
	"Node Service NodePublishVolume should fail when no target path is provided",
	"Node Service NodePublishVolume should fail when no volume capability is provided",
	"Node Service NodeUnpublishVolume should fail when no volume id is provided",
	"Node Service NodeUnpublishVolume should fail when no target path is provided",
	"Node Service NodeUnpublishVolume should remove target path",
}

// asKubelet makes sanity's node calls look like the kubelet's for an inline
// volume with readOnly: true, the only kind the driver publishes: csi-test
// has no configuration for ephemeral inline volumes (v5.6.0 always sends
// readonly=false), and the volume context comes from the fake controller.
func asKubelet(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	if r, ok := req.(*csi.NodePublishVolumeRequest); ok {
		r = proto.Clone(r).(*csi.NodePublishVolumeRequest)
		r.Readonly = true
		req = r
	}
	return invoker(ctx, method, req, reply, cc, opts...)
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
	m, err := mount.NewLinux(mount.Config{PodsDir: cfg.PodsDir(), Sources: []mount.Source{{Name: tc.Source, Path: src}}})
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
	tc.WaitServing(t, cfg.Endpoint)

	sc := sanity.NewTestConfig()
	sc.Address = "unix://" + cfg.Endpoint
	sc.DialOptions = []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithUnaryInterceptor(asKubelet)}
	sc.ControllerAddress = "unix://" + ctrlSock
	sc.TargetPath = filepath.Join(volDir, "sanity")
	sc.StagingPath = filepath.Join(kd, "plugins", "staging") // unused: no stage step
	sc.TestVolumeParameters = map[string]string{"source": tc.Source}
	sc.IDGen = &sanity.DefaultIDGenerator{}

	sanity.GinkgoTest(&sc)
	gomega.RegisterFailHandler(ginkgo.Fail)
	suite, reporter := ginkgo.GinkgoConfiguration()
	reporter.NoColor = true
	for re := range skipStrings {
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
	for _, n := range mustPass {
		if !slices.Contains(ran, n) {
			t.Errorf("pinned sanity spec did not pass: %s", n)
		}
	}
	for _, n := range ran {
		if !slices.Contains(mustPass, n) {
			t.Errorf("sanity spec passed but is not pinned (add it to mustPass and docs/driver.md): %s", n)
		}
	}
	if m := tc.MountsBelow(t, kd); len(m) != 0 {
		t.Fatalf("sanity left mounts %v", m)
	}
}
