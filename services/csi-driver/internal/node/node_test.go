package node

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/meshcsi/meshcsi/services/csi-driver/internal/config"
	tc "github.com/meshcsi/meshcsi/services/csi-driver/internal/drivertest"
	"github.com/meshcsi/meshcsi/services/csi-driver/internal/metrics"
	"github.com/meshcsi/meshcsi/services/csi-driver/internal/mount"
	"github.com/meshcsi/meshcsi/services/csi-driver/internal/mount/mounttest"
)

const kd = "/var/lib/kubelet"

type fixture struct {
	svc  *Service
	fake *mounttest.Fake
	reg  *prometheus.Registry
	logs *observer.ObservedLogs
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	fake := mounttest.NewFake()
	fake.Sources[tc.Source] = mount.ID{Dev: 1, Ino: 10}
	fake.Sources["other"] = mount.ID{Dev: 1, Ino: 11}
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg, []string{tc.Source, tc.MissingSource, "other"})
	if err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zap.DebugLevel)
	svc, err := New(Config{
		DriverName: "csi.meshcsi.io", Version: "v1", NodeID: "node-1",
		PodsDir: kd + "/pods",
		Sources: []config.Source{
			{Name: tc.Source, Dir: "/run/agent"},
			{Name: tc.MissingSource, Dir: "/run/gone"},
			// other is limited to namespace "allowed" and those labelled team=a.
			{Name: "other", Dir: "/run/other", Namespaces: []string{"allowed"}, NamespaceSelector: "team=a"},
		},
		Namespaces: fakeNamespaces{labels: map[string]map[string]string{"team-a": {"team": "a"}, "team-b": {"team": "b"}}},
		Mounter:    fake, Metrics: m, Logger: zap.New(core),
	})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{svc: svc, fake: fake, reg: reg, logs: logs}
}

func TestNewRejectsMissingSettings(t *testing.T) {
	f := newFixture(t)
	base := Config{DriverName: "d", NodeID: "n", PodsDir: "/p", Sources: []config.Source{{Name: "a", Dir: "/a"}},
		Mounter: f.fake, Metrics: f.svc.metrics, Logger: zap.NewNop()}
	tests := []struct {
		name   string
		mutate func(*Config)
		want   string
	}{
		{"driver name", func(c *Config) { c.DriverName = "" }, "--driver-name"},
		{"node id", func(c *Config) { c.NodeID = "" }, "--node-id"},
		{"pods dir", func(c *Config) { c.PodsDir = "" }, "--kubelet-dir"},
		{"sources", func(c *Config) { c.Sources = nil }, "--source"},
		{"default source", func(c *Config) { c.DefaultSource = "b" }, "--default-source"},
		{"mounter", func(c *Config) { c.Mounter = nil }, "mounter"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := base
			tt.mutate(&c)
			_, err := New(c)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New() error = %v, want one naming %s", err, tt.want)
			}
		})
	}
}

func TestPublishRejectsHostileInput(t *testing.T) {
	for _, c := range tc.Hostile() {
		t.Run(c.Name, func(t *testing.T) {
			f := newFixture(t)
			if c.Symlink != "" {
				f.fake.Symlinks[filepath.Base(c.Symlink)] = true
			}
			req := tc.Publish(kd, "vol")
			c.Mutate(kd, req)
			_, err := f.svc.NodePublishVolume(context.Background(), req)
			assertCode(t, err, c.Code, c.Field)
			if f.fake.Publishes != 0 || len(f.fake.Mounts) != 0 || len(f.fake.Dirs) != 0 {
				t.Fatalf("hostile request left state: mounts=%v dirs=%v", f.fake.Mounts, f.fake.Dirs)
			}
		})
	}
}

func assertCode(t testing.TB, err error, code codes.Code, field string) {
	t.Helper()
	st, ok := status.FromError(err)
	if !ok || st.Code() != code {
		t.Fatalf("error = %v, want code %s", err, code)
	}
	if !strings.Contains(st.Message(), field) {
		t.Fatalf("message %q does not name %q", st.Message(), field)
	}
}

func TestPublishUnpublish(t *testing.T) {
	f := newFixture(t)
	req := tc.Publish(kd, "vol")
	for i := 0; i < 3; i++ {
		if _, err := f.svc.NodePublishVolume(context.Background(), req); err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
	}
	if f.fake.Publishes != 1 || len(f.fake.Mounts[req.TargetPath]) != 1 {
		t.Fatalf("repeated publish mounted %d times, stack %v", f.fake.Publishes, f.fake.Mounts)
	}
	if got := gauge(t, f.reg, "meshcsi_published_volumes", tc.Source); got != 1 {
		t.Fatalf("published gauge = %v, want 1", got)
	}
	// A different source on the same target is refused.
	other := tc.Publish(kd, "vol")
	other.VolumeContext["source"] = "other"
	other.VolumeContext[KeyPodNamespace] = "allowed"
	_, err := f.svc.NodePublishVolume(context.Background(), other)
	assertCode(t, err, codes.AlreadyExists, "target_path")

	// Something the driver did not make at a target is refused and left.
	foreign := tc.Publish(kd, "vol2")
	f.fake.Foreign[foreign.TargetPath] = "writable, suid, dev or exec mount of source agent"
	_, err = f.svc.NodePublishVolume(context.Background(), foreign)
	assertCode(t, err, codes.FailedPrecondition, "writable")
	_, err = f.svc.NodeUnpublishVolume(context.Background(), &csi.NodeUnpublishVolumeRequest{VolumeId: foreign.VolumeId, TargetPath: foreign.TargetPath})
	assertCode(t, err, codes.FailedPrecondition, "writable")
	delete(f.fake.Foreign, foreign.TargetPath)

	un := &csi.NodeUnpublishVolumeRequest{VolumeId: req.VolumeId, TargetPath: req.TargetPath}
	for i := 0; i < 2; i++ {
		if _, err := f.svc.NodeUnpublishVolume(context.Background(), un); err != nil {
			t.Fatalf("unpublish %d: %v", i, err)
		}
	}
	if len(f.fake.Mounts) != 0 || len(f.fake.Dirs) != 0 {
		t.Fatalf("unpublish left %v %v", f.fake.Mounts, f.fake.Dirs)
	}
	if got := gauge(t, f.reg, "meshcsi_published_volumes", tc.Source); got != 0 {
		t.Fatalf("published gauge = %v, want 0", got)
	}
	var published, unpublished int
	for _, e := range f.logs.All() {
		switch e.Message {
		case "published volume":
			published++
			m := e.ContextMap()
			for _, k := range []string{"volume_id", "target_path", "namespace", "pod", "source", "duration"} {
				if _, ok := m[k]; !ok {
					t.Errorf("publish log lacks %s: %v", k, m)
				}
			}
		case "unpublished volume":
			unpublished++
		}
	}
	if published != 3 || unpublished != 2 {
		t.Fatalf("logged %d publishes and %d unpublishes, want 3 and 2", published, unpublished)
	}
}

func TestPublishDefaultSource(t *testing.T) {
	f := newFixture(t)
	req := tc.Publish(kd, "vol")
	delete(req.VolumeContext, "source")
	_, err := f.svc.NodePublishVolume(context.Background(), req)
	assertCode(t, err, codes.InvalidArgument, "volume_context[source] is required")
	f.svc.defaultSource = tc.Source
	if _, err := f.svc.NodePublishVolume(context.Background(), req); err != nil {
		t.Fatal(err)
	}
}

func TestPublishMountFailureIsInternal(t *testing.T) {
	f := newFixture(t)
	f.fake.PublishErr = errors.New("boom")
	_, err := f.svc.NodePublishVolume(context.Background(), tc.Publish(kd, "vol"))
	assertCode(t, err, codes.Internal, "boom")
	if got := gauge(t, f.reg, "meshcsi_published_volumes", tc.Source); got != 0 {
		t.Fatalf("published gauge = %v after a failure", got)
	}
}

func TestConcurrentIdenticalPublishMountsOnce(t *testing.T) {
	f := newFixture(t)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := f.svc.NodePublishVolume(context.Background(), tc.Publish(kd, "vol"))
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if f.fake.Publishes != 1 {
		t.Fatalf("8 identical publishes mounted %d times", f.fake.Publishes)
	}
	if len(f.svc.locks.m) != 0 {
		t.Fatalf("lock map kept %d entries", len(f.svc.locks.m))
	}
}

func TestUnpublishValidation(t *testing.T) {
	tests := []struct {
		name  string
		req   *csi.NodeUnpublishVolumeRequest
		field string
	}{
		{"missing volume_id", &csi.NodeUnpublishVolumeRequest{TargetPath: tc.Target(kd, "v")}, "volume_id"},
		{"missing target_path", &csi.NodeUnpublishVolumeRequest{VolumeId: "v"}, "target_path"},
		{"relative", &csi.NodeUnpublishVolumeRequest{VolumeId: "v", TargetPath: "pods/x/y"}, "target_path"},
		{"unclean", &csi.NodeUnpublishVolumeRequest{VolumeId: "v", TargetPath: kd + "/pods/x/../../y"}, "target_path"},
		{"outside", &csi.NodeUnpublishVolumeRequest{VolumeId: "v", TargetPath: "/etc/x/y"}, "target_path"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			_, err := f.svc.NodeUnpublishVolume(context.Background(), tt.req)
			assertCode(t, err, codes.InvalidArgument, tt.field)
		})
	}
}

func TestIdentityAndInfo(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	info, err := f.svc.GetPluginInfo(ctx, nil)
	if err != nil || info.Name != "csi.meshcsi.io" || info.VendorVersion != "v1" {
		t.Fatalf("GetPluginInfo = %v, %v", info, err)
	}
	ni, err := f.svc.NodeGetInfo(ctx, nil)
	if err != nil || ni.NodeId != "node-1" {
		t.Fatalf("NodeGetInfo = %v, %v", ni, err)
	}
	caps, err := f.svc.NodeGetCapabilities(ctx, nil)
	if err != nil || len(caps.Capabilities) != 0 {
		t.Fatalf("NodeGetCapabilities = %v, %v", caps, err)
	}
	// Not serving and a missing source: not ready.
	p, _ := f.svc.Probe(ctx, nil)
	if p.Ready.Value {
		t.Fatal("Probe ready before serving")
	}
	f.svc.SetServing(true)
	p, _ = f.svc.Probe(ctx, nil)
	if p.Ready.Value {
		t.Fatal("Probe ready with a missing source")
	}
	if got := gauge(t, f.reg, "meshcsi_source_ready", tc.MissingSource); got != 0 {
		t.Fatalf("source_ready{gone} = %v", got)
	}
	f.fake.Sources[tc.MissingSource] = mount.ID{Dev: 1, Ino: 12}
	p, _ = f.svc.Probe(ctx, nil)
	if !p.Ready.Value {
		t.Fatalf("Probe not ready: %v", f.svc.Ready())
	}
}

func TestCountPublished(t *testing.T) {
	f := newFixture(t)
	a, b := tc.Target(kd, "a"), tc.Target(kd, "b")
	f.fake.Mounts[a] = []mount.ID{{Dev: 1, Ino: 10}, {Dev: 1, Ino: 10}}
	f.fake.Mounts[b] = []mount.ID{{Dev: 1, Ino: 11}}
	f.fake.Mounts[tc.Target(kd, "c")] = []mount.ID{{Dev: 9, Ino: 9}}
	got, err := f.svc.CountPublished()
	if err != nil || got[tc.Source] != 1 || got["other"] != 1 || len(got) != 2 {
		t.Fatalf("CountPublished = %v", got)
	}
	if v := gauge(t, f.reg, "meshcsi_published_volumes", tc.Source); v != 1 {
		t.Fatalf("gauge = %v", v)
	}
}

// gauge reads the value of metric{source=...} from reg.
func gauge(t testing.TB, reg *prometheus.Registry, name, source string) float64 {
	t.Helper()
	return value(t, reg, name, map[string]string{"source": source})
}

// value reads the value of the gauge or counter name{labels} from reg.
func value(t testing.TB, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if want, ok := labels[l.GetName()]; ok && want != l.GetValue() {
					continue metrics
				}
			}
			if m.GetCounter() != nil {
				return m.GetCounter().GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	t.Fatalf("%s%v not found", name, labels)
	return 0
}
