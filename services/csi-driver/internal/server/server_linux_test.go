package server_test

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/meshcsi/meshcsi/services/csi-driver/internal/config"
	tc "github.com/meshcsi/meshcsi/services/csi-driver/internal/drivertest"
	"github.com/meshcsi/meshcsi/services/csi-driver/internal/mount"
	"github.com/meshcsi/meshcsi/services/csi-driver/internal/server"
)

// Every test in this file whose name starts with TestRoot makes real bind
// mounts in temporary directories and needs root (tc.RequireRoot).

type env struct {
	kd, src, other string
	cfg            config.Config
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{kd: tc.KubeletDir(t, "vol", "a", "b")}
	base := tc.TempDir(t, "src")
	e.src, e.other = filepath.Join(base, "agent"), filepath.Join(base, "other")
	for _, d := range []string{e.src, e.other} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	e.cfg = config.Config{
		Endpoint:   filepath.Join(tc.TempDir(t, "sock"), "csi.sock"),
		DriverName: "csi.meshcsi.io",
		NodeID:     "node-1",
		Sources: []config.Source{
			{Name: tc.Source, Dir: e.src},
			{Name: tc.MissingSource, Dir: filepath.Join(base, "gone")},
			{Name: "other", Dir: e.other},
		},
		KubeletDir: e.kd,
	}
	e.cfg.Logging.Level, e.cfg.Logging.Format = "info", "json"
	return e
}

type running struct {
	srv    *server.Server
	reg    *prometheus.Registry
	logs   *observer.ObservedLogs
	http   string
	cancel context.CancelFunc
	done   chan error
}

func (e *env) start(t *testing.T) *running {
	t.Helper()
	m, err := mount.NewLinux(mountConfig(e.cfg))
	if err != nil {
		t.Fatal(err)
	}
	hl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zap.DebugLevel)
	r := &running{reg: prometheus.NewRegistry(), logs: logs, http: "http://" + hl.Addr().String(), done: make(chan error, 1)}
	r.srv, err = server.New(server.Options{Config: e.cfg, Version: "test", Logger: zap.New(core), Registry: r.reg, Mounter: m, HTTPListener: hl})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() { r.done <- r.srv.Run(ctx) }()
	t.Cleanup(func() { r.stop(t) })
	tc.WaitServing(t, e.cfg.Endpoint)
	return r
}

func (r *running) stop(t *testing.T) {
	t.Helper()
	if r.cancel == nil {
		return
	}
	r.cancel()
	r.cancel = nil
	select {
	case err := <-r.done:
		if err != nil {
			t.Errorf("Run = %v", err)
		}
	case <-time.After(tc.ServeTimeout):
		t.Error("Run did not return")
	}
}

// node dials a fresh connection, as the kubelet does for every call.
func (e *env) node(t *testing.T) csi.NodeClient {
	t.Helper()
	conn, err := grpc.NewClient("unix://"+e.cfg.Endpoint, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return csi.NewNodeClient(conn)
}

func unpublish(vol string, kd string) *csi.NodeUnpublishVolumeRequest {
	return &csi.NodeUnpublishVolumeRequest{VolumeId: "csi-" + vol, TargetPath: tc.Target(kd, vol)}
}

// podsTree lists everything below the pods directory.
func podsTree(t *testing.T, kd string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(filepath.Join(kd, "pods"), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		out = append(out, p)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestRootHostileInputLeavesNothing(t *testing.T) {
	tc.RequireRoot(t)
	e := newEnv(t)
	e.start(t)
	client := e.node(t)
	outside := tc.TempDir(t, "outside")
	for _, c := range tc.Hostile() {
		t.Run(c.Name, func(t *testing.T) {
			if c.Symlink != "" {
				link := filepath.Join(e.kd, "pods", c.Symlink)
				if err := os.Symlink(outside, link); err != nil {
					t.Fatal(err)
				}
				defer os.Remove(link)
			}
			before := podsTree(t, e.kd)
			req := tc.Publish(e.kd, "vol")
			c.Mutate(e.kd, req)
			_, err := client.NodePublishVolume(context.Background(), req)
			st, _ := status.FromError(err)
			if st.Code() != c.Code || !strings.Contains(st.Message(), c.Field) {
				t.Fatalf("NodePublishVolume = %v, want %s naming %s", err, c.Code, c.Field)
			}
			if m := tc.MountsBelow(t, e.kd); len(m) != 0 {
				t.Fatalf("left mounts %v", m)
			}
			if m := tc.MountsBelow(t, outside); len(m) != 0 {
				t.Fatalf("mounted outside: %v", m)
			}
			if after := podsTree(t, e.kd); strings.Join(after, "\n") != strings.Join(before, "\n") {
				t.Fatalf("pods dir changed:\nbefore %v\nafter  %v", before, after)
			}
			if ents, _ := os.ReadDir(outside); len(ents) != 0 {
				t.Fatalf("wrote through a symlink: %v", ents)
			}
		})
	}
}

func TestRootPublishLifecycle(t *testing.T) {
	tc.RequireRoot(t)
	e := newEnv(t)
	r := e.start(t)
	client := e.node(t)
	ctx := context.Background()

	// An agent serves on a socket in the source directory.
	agent, err := net.Listen("unix", filepath.Join(e.src, "agent.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer agent.Close()
	go func() {
		for {
			c, err := agent.Accept()
			if err != nil {
				return
			}
			_, _ = c.Write([]byte("hello"))
			c.Close()
		}
	}()

	req := tc.Publish(e.kd, "vol")
	for i := 0; i < 3; i++ {
		if _, err := client.NodePublishVolume(ctx, req); err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
	}
	if m := tc.MountsBelow(t, e.kd); len(m) != 1 {
		t.Fatalf("3 publishes left %d mounts", len(m))
	}
	// The pod reaches the agent through the read-only mount (via a short
	// symlink: socket addresses are limited to 107 bytes).
	short := filepath.Join(tc.TempDir(t, "lnk"), "m")
	if err := os.Symlink(req.TargetPath, short); err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("unix", filepath.Join(short, "agent.sock"))
	if err != nil {
		t.Fatalf("dial through the mount: %v", err)
	}
	b, _ := io.ReadAll(c)
	c.Close()
	if string(b) != "hello" {
		t.Fatalf("read %q through the mount", b)
	}
	if err := os.WriteFile(filepath.Join(req.TargetPath, "x"), nil, 0o644); !errors.Is(err, unix.EROFS) {
		t.Fatalf("write through the mount = %v, want EROFS", err)
	}
	// Another source on the same target.
	other := tc.Publish(e.kd, "vol")
	other.VolumeContext["source"] = "other"
	_, err = client.NodePublishVolume(ctx, other)
	if status.Code(err) != codes.AlreadyExists {
		t.Fatalf("publish of another source = %v, want AlreadyExists", err)
	}

	mfs := scrape(t, r.http)
	for _, want := range []struct {
		name   string
		labels map[string]string
		value  float64
	}{
		{"meshcsi_published_volumes", map[string]string{"source": "agent"}, 1},
		{"meshcsi_csi_operations_total", map[string]string{"code": "OK", "method": "NodePublishVolume"}, 3},
		{"meshcsi_csi_operations_total", map[string]string{"code": "AlreadyExists", "method": "NodePublishVolume"}, 1},
		{"meshcsi_source_ready", map[string]string{"source": "agent"}, 1},
	} {
		if got := value(t, mfs, want.name, want.labels); got != want.value {
			t.Errorf("%s%v = %v, want %v", want.name, want.labels, got, want.value)
		}
	}
	if b := mfs["meshcsi_csi_operation_duration_seconds"].GetMetric()[0].GetHistogram().GetBucket(); b[0].GetUpperBound() != 25e-6 {
		t.Errorf("lowest duration bucket %v, want 25 µs", b[0].GetUpperBound())
	}

	for i := 0; i < 2; i++ {
		if _, err := client.NodeUnpublishVolume(ctx, unpublish("vol", e.kd)); err != nil {
			t.Fatalf("unpublish %d: %v", i, err)
		}
	}
	if _, err := os.Lstat(req.TargetPath); !os.IsNotExist(err) {
		t.Fatalf("target left: %v", err)
	}
	if m := tc.MountsBelow(t, e.kd); len(m) != 0 {
		t.Fatalf("left mounts %v", m)
	}
	// An unmounted directory (a replay after reboot) is removed, with OK.
	if err := os.Mkdir(req.TargetPath, 0o750); err != nil {
		t.Fatal(err)
	}
	if _, err := client.NodeUnpublishVolume(ctx, unpublish("vol", e.kd)); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(req.TargetPath); !os.IsNotExist(err) {
		t.Fatalf("target left: %v", err)
	}
	if v := value(t, scrape(t, r.http), "meshcsi_published_volumes", map[string]string{"source": "agent"}); v != 0 {
		t.Errorf("published gauge = %v after unpublish, want 0", v)
	}
	if got := len(r.logs.FilterMessage("published volume").All()); got != 3 {
		t.Errorf("logged %d publishes, want 3", got)
	}
	if got := r.logs.FilterMessage("CSI call failed").All(); len(got) != 1 || got[0].ContextMap()["code"] != "AlreadyExists" {
		t.Errorf("error logs = %v, want one AlreadyExists", got)
	}
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestRootConcurrentIdenticalPublish(t *testing.T) {
	tc.RequireRoot(t)
	e := newEnv(t)
	e.start(t)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	start := make(chan struct{})
	for i := 0; i < 8; i++ {
		client := e.node(t)
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			_, err := client.NodePublishVolume(context.Background(), tc.Publish(e.kd, "vol"))
			errs <- err
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if m := tc.MountsBelow(t, e.kd); len(m) != 1 {
		t.Fatalf("8 concurrent publishes left %d mounts", len(m))
	}
	if _, err := e.node(t).NodeUnpublishVolume(context.Background(), unpublish("vol", e.kd)); err != nil {
		t.Fatal(err)
	}
}

func TestRootStackedMountsAreUnwound(t *testing.T) {
	tc.RequireRoot(t)
	e := newEnv(t)
	e.start(t)
	client := e.node(t)
	req := tc.Publish(e.kd, "vol")
	if _, err := client.NodePublishVolume(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ { // what an older instance stacked after kubelet restarts
		if err := unix.Mount(e.src, req.TargetPath, "", unix.MS_BIND, ""); err != nil {
			t.Fatal(err)
		}
		if err := unix.Mount("", req.TargetPath, "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
			t.Fatal(err)
		}
	}
	if m := tc.MountsBelow(t, e.kd); len(m) != 4 {
		t.Fatalf("stacked %d mounts, want 4", len(m))
	}
	// A replayed publish adds nothing.
	if _, err := client.NodePublishVolume(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	if m := tc.MountsBelow(t, e.kd); len(m) != 4 {
		t.Fatalf("replayed publish stacked: %d mounts", len(m))
	}
	if _, err := client.NodeUnpublishVolume(context.Background(), unpublish("vol", e.kd)); err != nil {
		t.Fatal(err)
	}
	if m := tc.MountsBelow(t, e.kd); len(m) != 0 {
		t.Fatalf("left mounts %v", m)
	}
}

func TestRootRestartServesUnpublish(t *testing.T) {
	tc.RequireRoot(t)
	e := newEnv(t)
	r := e.start(t)
	client := e.node(t)
	for _, v := range []string{"a", "b"} {
		if _, err := client.NodePublishVolume(context.Background(), tc.Publish(e.kd, v)); err != nil {
			t.Fatal(err)
		}
	}
	r.stop(t)
	for _, p := range []string{e.cfg.Endpoint, e.cfg.RegistrationSocket()} {
		if _, err := os.Lstat(p); !os.IsNotExist(err) {
			t.Fatalf("socket %s left after shutdown: %v", p, err)
		}
	}
	if m := tc.MountsBelow(t, e.kd); len(m) != 2 {
		t.Fatalf("mounts did not outlive the driver: %v", m)
	}
	r2 := e.start(t)
	client = e.node(t)
	// Publish and unpublish wait until the start-up count is done: once a
	// replayed publish returns, the gauge holds the count.
	if _, err := client.NodePublishVolume(context.Background(), tc.Publish(e.kd, "a")); err != nil {
		t.Fatal(err)
	}
	if v := value(t, scrape(t, r2.http), "meshcsi_published_volumes", map[string]string{"source": "agent"}); v != 2 {
		t.Fatalf("restarted driver counted %v mounts, want 2", v)
	}
	for _, v := range []string{"a", "b"} {
		if _, err := client.NodeUnpublishVolume(context.Background(), unpublish(v, e.kd)); err != nil {
			t.Fatal(err)
		}
	}
	if m := tc.MountsBelow(t, e.kd); len(m) != 0 {
		t.Fatalf("left mounts %v", m)
	}
	if v := value(t, scrape(t, r2.http), "meshcsi_published_volumes", map[string]string{"source": "agent"}); v != 0 {
		t.Fatalf("gauge after unpublish = %v, want 0", v)
	}
}

// scrape reads /metrics with expfmt.
func scrape(t *testing.T, base string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return mfs
}

// value returns the value of the counter or gauge name{labels} in mfs.
func value(t *testing.T, mfs map[string]*dto.MetricFamily, name string, labels map[string]string) float64 {
	t.Helper()
next:
	for _, m := range mfs[name].GetMetric() {
		for _, l := range m.GetLabel() {
			if want, ok := labels[l.GetName()]; ok && want != l.GetValue() {
				continue next
			}
		}
		if m.GetCounter() != nil {
			return m.GetCounter().GetValue()
		}
		return m.GetGauge().GetValue()
	}
	t.Fatalf("%s%v not scraped", name, labels)
	return 0
}

func TestSocketsAreStaleSafeAndPrivate(t *testing.T) {
	e := newEnv(t)
	// A stale socket left by a killed driver is replaced.
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: e.cfg.Endpoint}); err != nil {
		t.Fatal(err)
	}
	unix.Close(fd)
	r := e.start(t)
	for _, p := range []string{e.cfg.Endpoint, e.cfg.RegistrationSocket()} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm()&0o077 != 0 {
			t.Fatalf("%s is %v, want no group/other access", p, fi.Mode())
		}
	}
	if s := get(t, r.http+"/readyz"); !strings.Contains(s, "not ok") {
		t.Fatalf("/readyz with a missing source = %q", s)
	}
	if err := os.Mkdir(e.cfg.Sources[1].Dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if s := get(t, r.http+"/readyz"); s != "ok\n" {
		t.Fatalf("/readyz = %q", s)
	}
	r.stop(t)

	// A regular file where the socket goes is not removed.
	if err := os.WriteFile(e.cfg.Endpoint, []byte("keep"), 0o600); err != nil {
		t.Fatal(err)
	}
	m, _ := mount.NewLinux(mountConfig(e.cfg))
	srv, err := server.New(server.Options{Config: e.cfg, Logger: zap.NewNop(), Registry: prometheus.NewRegistry(), Mounter: m})
	if err != nil {
		t.Fatal(err)
	}
	err = srv.Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "--endpoint") {
		t.Fatalf("Run = %v, want an error naming --endpoint", err)
	}
}

func TestProbeAndIdentityOverSocket(t *testing.T) {
	e := newEnv(t)
	if err := os.Mkdir(e.cfg.Sources[1].Dir, 0o755); err != nil {
		t.Fatal(err)
	}
	e.start(t)
	conn, err := grpc.NewClient("unix://"+e.cfg.Endpoint, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	id := csi.NewIdentityClient(conn)
	p, err := id.Probe(context.Background(), &csi.ProbeRequest{})
	if err != nil || !p.GetReady().GetValue() {
		t.Fatalf("Probe = %v, %v", p, err)
	}
	info, err := id.GetPluginInfo(context.Background(), &csi.GetPluginInfoRequest{})
	if err != nil || info.Name != "csi.meshcsi.io" || info.VendorVersion != "test" {
		t.Fatalf("GetPluginInfo = %v, %v", info, err)
	}
	_, err = csi.NewNodeClient(conn).NodeGetVolumeStats(context.Background(), &csi.NodeGetVolumeStatsRequest{})
	if status.Code(err) != codes.Unimplemented {
		t.Fatalf("NodeGetVolumeStats = %v, want Unimplemented", err)
	}
}

// mountConfig is the mounter configuration main builds from cfg.
func mountConfig(cfg config.Config) mount.Config {
	c := mount.Config{PodsDir: cfg.PodsDir()}
	for _, s := range cfg.Sources {
		c.Sources = append(c.Sources, mount.Source{Name: s.Name, Path: s.Dir})
	}
	return c
}
