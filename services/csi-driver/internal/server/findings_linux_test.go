package server_test

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"

	tc "github.com/meshcsi/meshcsi/services/csi-driver/internal/drivertest"
	"github.com/meshcsi/meshcsi/services/csi-driver/internal/mount"
	"github.com/meshcsi/meshcsi/services/csi-driver/internal/server"
)

// The tests in this file are the driver-side findings of the adversarial
// review (issue 9): each failed on the code before the fix.

func inode(t *testing.T, p string) uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		t.Fatalf("%s: %v", p, err)
	}
	return st.Ino
}

// Finding 2: a second instance on the same sockets exits with an error naming
// the holder, leaving the first one's sockets alone.
func TestSecondInstanceExitsNamingTheHolder(t *testing.T) {
	e := newEnv(t)
	e.start(t)
	csiIno, regIno := inode(t, e.cfg.Endpoint), inode(t, e.cfg.RegistrationSocket())

	m, err := mount.NewLinux(mountConfig(e.cfg))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(server.Options{Config: e.cfg, Logger: zap.NewNop(), Registry: prometheus.NewRegistry(), Mounter: m})
	if err != nil {
		t.Fatal(err)
	}
	// The fixed driver returns at once; the old one served (took over) until
	// this deadline.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	err = srv.Run(ctx)
	host, _ := os.Hostname()
	holder := "pid " + strconv.Itoa(os.Getpid()) + " on host " + host
	if err == nil || !errors.Is(err, server.ErrInUse) || !strings.Contains(err.Error(), holder) || !strings.Contains(err.Error(), "--endpoint") {
		t.Fatalf("second Run = %v, want ErrInUse naming --endpoint and %q", err, holder)
	}
	if inode(t, e.cfg.Endpoint) != csiIno || inode(t, e.cfg.RegistrationSocket()) != regIno {
		t.Fatal("the second instance replaced the first one's sockets")
	}
	tc.WaitServing(t, e.cfg.Endpoint)
}

// Finding 2: on exit a driver removes only the sockets it created.
func TestExitLeavesSocketsItDidNotCreate(t *testing.T) {
	e := newEnv(t)
	r := e.start(t)
	// Someone else's socket now sits at the endpoint (e.g. an operator's
	// manual restart raced this one).
	if err := os.Remove(e.cfg.Endpoint); err != nil {
		t.Fatal(err)
	}
	other, err := net.Listen("unix", e.cfg.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	other.(*net.UnixListener).SetUnlinkOnClose(false)
	defer other.Close()
	ino := inode(t, e.cfg.Endpoint)
	r.stop(t)
	if _, err := os.Lstat(e.cfg.Endpoint); err != nil || inode(t, e.cfg.Endpoint) != ino {
		t.Fatalf("exit removed a socket it did not create: %v", err)
	}
	// Its own registration socket is gone.
	if _, err := os.Lstat(e.cfg.RegistrationSocket()); !os.IsNotExist(err) {
		t.Fatalf("registration socket left: %v", err)
	}
}

// rawCodec sends bytes as they are, to deliver requests that do not decode.
type rawCodec struct{}

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	return mem.BufferSlice{mem.SliceBuffer(v.([]byte))}, nil
}
func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	*(v.(*[]byte)) = data.Materialize()
	return nil
}
func (rawCodec) Name() string { return "proto" }

// Finding 7: hostile input is logged bounded, and requests that fail to
// decode are counted and logged.
func TestHostileInputIsLoggedBounded(t *testing.T) {
	e := newEnv(t)
	r := e.start(t)
	conn, err := grpc.NewClient("unix://"+e.cfg.Endpoint, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallSendMsgSize(8<<20)))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := csi.NewNodeClient(conn)
	big := strings.Repeat("x", 1<<20) + "\n{\"level\":\"info\",\"msg\":\"forged\"}"
	req := tc.Publish(e.kd, "vol")
	req.VolumeId = big
	req.TargetPath = "/" + big
	if _, err := client.NodePublishVolume(context.Background(), req); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("publish = %v", err)
	}
	if _, err := client.NodeUnpublishVolume(context.Background(), &csi.NodeUnpublishVolumeRequest{VolumeId: "v", TargetPath: big}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("unpublish = %v", err)
	}
	// Bytes that are not a protobuf message.
	var out []byte
	err = conn.Invoke(context.Background(), "/csi.v1.Node/NodePublishVolume", []byte{0xff, 0xff, 0xff, 0xff, 0x0f}, &out, grpc.ForceCodecV2(rawCodec{}))
	if err == nil {
		t.Fatal("a garbage request succeeded")
	}
	total := 0
	for _, entry := range r.logs.All() {
		total += len(entry.Message)
		for k, v := range entry.ContextMap() {
			s, _ := v.(string)
			total += len(s)
			if len(s) > 1024 || strings.ContainsAny(s, "\n\r") {
				t.Errorf("log %q field %s holds %d bytes (or a line break)", entry.Message, k, len(s))
			}
		}
	}
	if total > 16<<10 {
		t.Errorf("three hostile requests logged %d bytes", total)
	}
	if got := r.logs.FilterMessage("CSI request could not be decoded").Len(); got != 1 {
		t.Errorf("logged %d undecodable requests, want 1", got)
	}
	if v := value(t, scrape(t, r.http), "meshcsi_csi_undecodable_requests_total", nil); v != 1 {
		t.Errorf("meshcsi_csi_undecodable_requests_total = %v, want 1", v)
	}
}

// Finding 8: unpublish of a path with a regular file in the middle finds
// nothing of ours there: OK, and the file is left alone.
func TestRootUnpublishThroughAFileIsOK(t *testing.T) {
	tc.RequireRoot(t)
	e := newEnv(t)
	e.start(t)
	vol := filepath.Dir(tc.Target(e.kd, "vol")) // .../kubernetes.io~csi/vol
	if err := os.Remove(vol); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(vol, []byte("keep"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := e.node(t).NodeUnpublishVolume(context.Background(), unpublish("vol", e.kd)); err != nil {
		t.Fatalf("unpublish through a file = %v, want OK", err)
	}
	if b, err := os.ReadFile(vol); err != nil || string(b) != "keep" {
		t.Fatalf("the file was touched: %q, %v", b, err)
	}
}

// Finding 8: a source that is a file is FailedPrecondition naming the
// source, not Internal and not about the target.
func TestRootSourceIsAFileIsFailedPrecondition(t *testing.T) {
	tc.RequireRoot(t)
	e := newEnv(t)
	if err := os.WriteFile(e.cfg.Sources[1].Dir, []byte("not a dir"), 0o600); err != nil { // source "gone"
		t.Fatal(err)
	}
	e.start(t)
	req := tc.Publish(e.kd, "vol")
	req.VolumeContext["source"] = tc.MissingSource
	_, err := e.node(t).NodePublishVolume(context.Background(), req)
	st, _ := status.FromError(err)
	if st.Code() != codes.FailedPrecondition || !strings.Contains(st.Message(), `"`+tc.MissingSource+`"`) || strings.Contains(st.Message(), "target") {
		t.Fatalf("publish of a file source = %v, want FailedPrecondition naming the source, not the target", err)
	}
	if m := tc.MountsBelow(t, e.kd); len(m) != 0 {
		t.Fatalf("left mounts %v", m)
	}
}

// The agent restarts and recreates its socket: the pod's mount (a
// directory bind) reaches the new socket without a remount. Publish waited
// for the socket first.
func TestRootAgentRestartReachedWithoutRemount(t *testing.T) {
	tc.RequireRoot(t)
	e := newEnv(t)
	e.cfg.Sources[0].Socket = "agent.sock"
	e.cfg.SocketWait = tc.ServeTimeout
	r := e.start(t)
	sock := filepath.Join(e.src, "agent.sock")
	serve := func(greeting string) net.Listener {
		l, err := net.Listen("unix", sock)
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				_, _ = c.Write([]byte(greeting))
				c.Close()
			}
		}()
		return l
	}
	// The agent comes up while the publish waits for it.
	published := make(chan error, 1)
	req := tc.Publish(e.kd, "vol")
	go func() {
		_, err := e.node(t).NodePublishVolume(context.Background(), req)
		published <- err
	}()
	waitFor(t, "the publish to wait for the agent", func() bool {
		return value(t, scrape(t, r.http), "meshcsi_socket_waits_in_progress", map[string]string{"source": tc.Source}) == 1
	})
	agent := serve("first")
	if err := <-published; err != nil {
		t.Fatal(err)
	}
	short := filepath.Join(tc.TempDir(t, "lnk"), "m")
	if err := os.Symlink(req.TargetPath, short); err != nil {
		t.Fatal(err)
	}
	read := func() string {
		c, err := net.Dial("unix", filepath.Join(short, "agent.sock"))
		if err != nil {
			t.Fatalf("dial through the mount: %v", err)
		}
		defer c.Close()
		b, _ := io.ReadAll(c)
		return string(b)
	}
	if got := read(); got != "first" {
		t.Fatalf("read %q", got)
	}
	agent.Close() // removes the socket, as an agent's exit does
	if _, err := os.Lstat(sock); !os.IsNotExist(err) {
		t.Fatalf("socket still there after the agent stopped: %v", err)
	}
	agent = serve("second")
	defer agent.Close()
	if got := read(); got != "second" {
		t.Fatalf("after the agent restarted, read %q through the same mount", got)
	}
	if m := tc.MountsBelow(t, e.kd); len(m) != 1 {
		t.Fatalf("mounts %v, want the one", m)
	}
	if _, err := e.node(t).NodeUnpublishVolume(context.Background(), unpublish("vol", e.kd)); err != nil {
		t.Fatal(err)
	}
}
