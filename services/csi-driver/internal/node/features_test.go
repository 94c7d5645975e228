package node

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
	"google.golang.org/grpc/codes"

	"github.com/meshcsi/meshcsi/services/csi-driver/internal/config"
	tc "github.com/meshcsi/meshcsi/services/csi-driver/internal/drivertest"
	"github.com/meshcsi/meshcsi/services/csi-driver/internal/metrics"
	"github.com/meshcsi/meshcsi/services/csi-driver/internal/mount"
	"github.com/meshcsi/meshcsi/services/csi-driver/internal/mount/mounttest"
)

// fakeNamespaces is a synced (or not) namespace cache.
type fakeNamespaces struct {
	labels map[string]map[string]string
	err    error
}

func (f fakeNamespaces) Labels(name string) (map[string]string, bool, error) {
	if f.err != nil {
		return nil, false, f.err
	}
	l, ok := f.labels[name]
	return l, ok, nil
}

// newSourceFixture builds a Service whose only source is src.
func newSourceFixture(t *testing.T, src config.Source, ns Namespaces, wait time.Duration) *fixture {
	t.Helper()
	fake := mounttest.NewFake()
	fake.Sources[src.Name] = mount.ID{Dev: 1, Ino: 10}
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg, []string{src.Name})
	if err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zap.DebugLevel)
	svc, err := New(Config{
		DriverName: "csi.meshcsi.io", NodeID: "node-1", PodsDir: kd + "/pods",
		Sources: []config.Source{src}, Mounter: fake, Metrics: m, Logger: zap.New(core),
		Namespaces: ns, SocketWait: wait, SocketPoll: time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{svc: svc, fake: fake, reg: reg, logs: logs}
}

func publishIn(ns string) *csi.NodePublishVolumeRequest {
	r := tc.Publish(kd, "vol")
	r.VolumeContext[KeyPodNamespace] = ns
	return r
}

func TestSourceNamespaces(t *testing.T) {
	nsCache := fakeNamespaces{labels: map[string]map[string]string{
		"team-a": {"team": "a"}, "team-b": {"team": "b"}, "listed": {},
	}}
	src := config.Source{Name: tc.Source, Dir: "/run/agent", Namespaces: []string{"listed"}, NamespaceSelector: "team=a"}
	for _, tt := range []struct {
		ns   string
		code codes.Code
	}{
		{"listed", codes.OK}, // by name
		{"team-a", codes.OK}, // by selector
		{"team-b", codes.PermissionDenied},
		{"missing", codes.PermissionDenied}, // not in the cache: no labels to match
		{"", codes.PermissionDenied},
	} {
		t.Run(tt.ns, func(t *testing.T) {
			f := newSourceFixture(t, src, nsCache, time.Second)
			_, err := f.svc.NodePublishVolume(context.Background(), publishIn(tt.ns))
			if tt.code == codes.OK {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			assertCode(t, err, tt.code, `"`+tc.Source+`"`)
			if tt.ns != "" && !strings.Contains(err.Error(), `namespace "`+tt.ns+`"`) {
				t.Fatalf("%v does not name the namespace", err)
			}
			if f.fake.Publishes != 0 {
				t.Fatal("a denied publish mounted")
			}
		})
	}
	// A cache that has not synced yet: Unavailable, the kubelet retries.
	f := newSourceFixture(t, src, fakeNamespaces{err: errors.New("not synced")}, time.Second)
	_, err := f.svc.NodePublishVolume(context.Background(), publishIn("team-a"))
	assertCode(t, err, codes.Unavailable, "team-a")
	// A list only needs no cache.
	f = newSourceFixture(t, config.Source{Name: tc.Source, Dir: "/run/agent", Namespaces: []string{"a"}}, nil, time.Second)
	_, err = f.svc.NodePublishVolume(context.Background(), publishIn("b"))
	assertCode(t, err, codes.PermissionDenied, `namespace "b"`)
	// A selector without a cache is a configuration error.
	if _, err := New(Config{DriverName: "d", NodeID: "n", PodsDir: "/p", Mounter: f.fake, Metrics: f.svc.metrics, Logger: zap.NewNop(),
		Sources: []config.Source{{Name: "a", Dir: "/a", NamespaceSelector: "x=y"}}}); err == nil {
		t.Fatal("New accepted a selector without a namespace cache")
	}
}

// TestAccessRevokedUndoesEarlierPublish: the kubelet publishes again when it
// does not know whether a publish worked (a lost reply). If the namespace has
// lost access in between, PermissionDenied is final for the kubelet: it
// forgets the volume and never unpublishes it, so a mount made by the first
// call would be left in the pod's directory for good. The driver undoes its
// own mount at that target before refusing; a refusal it may change its
// mind about (cache not synced: Unavailable) leaves the mount alone.
func TestAccessRevokedUndoesEarlierPublish(t *testing.T) {
	nsCache := fakeNamespaces{labels: map[string]map[string]string{"team-a": {"team": "a"}}}
	src := config.Source{Name: tc.Source, Dir: "/run/agent", NamespaceSelector: "team=a"}
	f := newSourceFixture(t, src, nsCache, time.Second)
	req := publishIn("team-a")
	if _, err := f.svc.NodePublishVolume(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	if n := len(f.fake.Mounts[req.TargetPath]); n != 1 {
		t.Fatalf("%d mounts at the target after publish, want 1", n)
	}

	// Not synced: the kubelet retries, the mount stays.
	f.svc.namespaces = fakeNamespaces{err: errors.New("not synced")}
	_, err := f.svc.NodePublishVolume(context.Background(), req)
	assertCode(t, err, codes.Unavailable, "team-a")
	if n := len(f.fake.Mounts[req.TargetPath]); n != 1 {
		t.Fatalf("%d mounts at the target after an Unavailable refusal, want 1", n)
	}

	// Access revoked: refused, and the earlier mount is gone.
	nsCache.labels["team-a"] = map[string]string{"team": "b"}
	f.svc.namespaces = nsCache
	_, err = f.svc.NodePublishVolume(context.Background(), req)
	assertCode(t, err, codes.PermissionDenied, `namespace "team-a"`)
	if n := len(f.fake.Mounts[req.TargetPath]); n != 0 {
		t.Fatalf("%d mounts left at the target after access was revoked, want 0", n)
	}
	if got := gauge(t, f.reg, "meshcsi_published_volumes", tc.Source); got != 0 {
		t.Fatalf("published gauge = %v, want 0", got)
	}
	if f.logs.FilterMessage("undid an earlier publish: the namespace may no longer use the source").Len() != 1 {
		t.Fatalf("no log line says the mount was undone: %v", f.logs.All())
	}
}

func TestSocketWait(t *testing.T) {
	dir, err := os.MkdirTemp("", "meshcsi-sw-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	src := config.Source{Name: tc.Source, Dir: dir, Socket: "agent.sock"}

	// No socket: Unavailable after the bounded wait, naming source and socket.
	f := newSourceFixture(t, src, nil, 20*time.Millisecond)
	_, err = f.svc.NodePublishVolume(context.Background(), tc.Publish(kd, "vol"))
	assertCode(t, err, codes.Unavailable, filepath.Join(dir, "agent.sock"))
	if f.fake.Publishes != 0 {
		t.Fatal("published without the socket")
	}
	// A socket file nobody listens on (a dead agent's) is not ready either.
	stale, err := net.Listen("unix", filepath.Join(dir, "agent.sock"))
	if err != nil {
		t.Fatal(err)
	}
	stale.(*net.UnixListener).SetUnlinkOnClose(false)
	stale.Close()
	_, err = f.svc.NodePublishVolume(context.Background(), tc.Publish(kd, "vol"))
	assertCode(t, err, codes.Unavailable, tc.Source)
	os.Remove(filepath.Join(dir, "agent.sock"))

	// Cancelled by the caller: returns at once with Canceled.
	f = newSourceFixture(t, src, nil, time.Hour)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := f.svc.NodePublishVolume(ctx, tc.Publish(kd, "vol"))
		errc <- err
	}()
	// While it waits, calls for its own target are served: the wait holds
	// no lock (not even the target's).
	waitFor(t, func() bool {
		return value(t, f.reg, "meshcsi_socket_waits_in_progress", map[string]string{"source": tc.Source}) == 1
	})
	un := &csi.NodeUnpublishVolumeRequest{VolumeId: "csi-vol", TargetPath: tc.Target(kd, "vol")}
	if _, err := f.svc.NodeUnpublishVolume(context.Background(), un); err != nil {
		t.Fatal(err)
	}
	cancel()
	select {
	case err := <-errc:
		assertCode(t, err, codes.Canceled, "")
	case <-time.After(tc.ServeTimeout):
		t.Fatal("a cancelled wait did not return")
	}

	// The agent comes up during the wait: the publish goes through.
	f = newSourceFixture(t, src, nil, tc.ServeTimeout)
	go func() {
		_, err := f.svc.NodePublishVolume(context.Background(), tc.Publish(kd, "vol"))
		errc <- err
	}()
	// Start the agent once the publish is waiting (its first try failed).
	waitFor(t, func() bool {
		return value(t, f.reg, "meshcsi_socket_waits_in_progress", map[string]string{"source": tc.Source}) == 1
	})
	agent, err := net.Listen("unix", filepath.Join(dir, "agent.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer agent.Close()
	if err := <-errc; err != nil {
		t.Fatalf("publish after the agent came up = %v", err)
	}
	if n, err := testutil.GatherAndCount(f.reg, "meshcsi_socket_wait_seconds"); err != nil || n != 1 {
		t.Fatalf("socket wait series = %d, %v", n, err)
	}
	if v := value(t, f.reg, "meshcsi_socket_waits_in_progress", map[string]string{"source": tc.Source}); v != 0 {
		t.Fatalf("waits in progress after the wait = %v", v)
	}
}

// waitFor polls cond with a generous deadline.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(tc.ServeTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met before the deadline")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestForeignTargetIsCounted(t *testing.T) {
	f := newFixture(t)
	req := tc.Publish(kd, "vol")
	f.fake.Foreign[req.TargetPath] = "tmpfs mount"
	_, err := f.svc.NodeUnpublishVolume(context.Background(), &csi.NodeUnpublishVolumeRequest{VolumeId: req.VolumeId, TargetPath: req.TargetPath})
	assertCode(t, err, codes.FailedPrecondition, "tmpfs mount")
	if got := value(t, f.reg, "meshcsi_foreign_targets_total", map[string]string{"method": "NodeUnpublishVolume", "kind": mount.KindOther}); got != 1 {
		t.Fatalf("foreign targets = %v", got)
	}
}

func TestLogsAreBounded(t *testing.T) {
	f := newFixture(t)
	req := tc.Publish(kd, "vol")
	req.VolumeContext[KeyPodName] = strings.Repeat("p", 4<<20) + "\n{\"forged\":1}"
	if _, err := f.svc.NodePublishVolume(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	for _, e := range f.logs.All() {
		for k, v := range e.ContextMap() {
			if s, ok := v.(string); ok && (len(s) > 512 || strings.ContainsAny(s, "\n\r")) {
				t.Fatalf("log field %s holds %d bytes (or a newline)", k, len(s))
			}
		}
	}
}

// The readiness check connects once, then trusts the same socket file for
// ReadyFor; a recreated socket (new inode) is connected to again.
func TestSocketReadinessCache(t *testing.T) {
	dir, err := os.MkdirTemp("", "meshcsi-rc-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "agent.sock")
	var r readiness
	t0 := time.Now()
	if r.check(sock, t0) {
		t.Fatal("ready without a socket")
	}
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	if !r.check(sock, t0) {
		t.Fatal("not ready with a listening socket")
	}
	l.Close() // the agent died and left its socket file
	if !r.check(sock, t0.Add(ReadyFor/2)) {
		t.Fatal("the same socket file is not trusted within ReadyFor")
	}
	if r.check(sock, t0.Add(2*ReadyFor)) {
		t.Fatal("a dead socket counted as ready after ReadyFor")
	}
	// A recreated socket with nobody listening is a new file: checked again.
	os.Remove(sock)
	l2, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	l2.(*net.UnixListener).SetUnlinkOnClose(false)
	l2.Close()
	if r.check(sock, t0) {
		t.Fatal("a new socket file was trusted without a connection")
	}
}
