// Package server wires the driver together: the CSI socket, the kubelet
// registration socket and the metrics/health listener, one gRPC interceptor
// for metrics and error logs, the start-up count of published volumes, and
// a bounded graceful shutdown that removes both sockets.
package server

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path"
	"path/filepath"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"

	"github.com/meshcsi/meshcsi/libs/opshttp"
	"github.com/meshcsi/meshcsi/services/csi-driver/internal/config"
	"github.com/meshcsi/meshcsi/services/csi-driver/internal/metrics"
	"github.com/meshcsi/meshcsi/services/csi-driver/internal/mount"
	"github.com/meshcsi/meshcsi/services/csi-driver/internal/node"
	"github.com/meshcsi/meshcsi/services/csi-driver/internal/registration"
)

// DefaultShutdownTimeout bounds the drain of in-flight CSI calls.
const DefaultShutdownTimeout = 10 * time.Second

// Options holds what a Server needs besides the configuration.
type Options struct {
	// Config is the validated configuration. Required.
	Config config.Config
	// Version is reported by GetPluginInfo and in build info.
	Version string
	// Logger is required.
	Logger *zap.Logger
	// Registry receives the driver's metrics and is served at /metrics.
	// Required.
	Registry *prometheus.Registry
	// Mounter performs the mounts. Required.
	Mounter mount.Mounter
	// HTTPListener, when set, is used instead of listening on
	// Config.HTTPAddress (tests pass an ephemeral one).
	HTTPListener net.Listener
	// ShutdownTimeout bounds the drain; zero means DefaultShutdownTimeout.
	ShutdownTimeout time.Duration
}

// Server is the running driver.
type Server struct {
	opts    Options
	log     *zap.Logger
	node    *node.Service
	metrics *metrics.Metrics
	reg     *registration.Server
	csi     *grpc.Server
	regGRPC *grpc.Server
	ops     *opshttp.Server
}

// New validates opts and builds a Server; it touches nothing on the host.
func New(opts Options) (*Server, error) {
	if opts.Logger == nil || opts.Registry == nil || opts.Mounter == nil {
		return nil, errors.New("server: a logger, a registry and a mounter are required")
	}
	if err := opts.Config.Validate(); err != nil {
		return nil, err
	}
	if opts.ShutdownTimeout <= 0 {
		opts.ShutdownTimeout = DefaultShutdownTimeout
	}
	cfg := opts.Config
	names := make([]string, 0, len(cfg.Sources))
	for _, s := range cfg.Sources {
		names = append(names, s.Name)
	}
	m, err := metrics.New(opts.Registry, names)
	if err != nil {
		return nil, err
	}
	svc, err := node.New(node.Config{
		DriverName:    cfg.DriverName,
		Version:       opts.Version,
		NodeID:        cfg.NodeID,
		PodsDir:       cfg.PodsDir(),
		Sources:       cfg.Sources,
		DefaultSource: cfg.DefaultSource,
		Mounter:       opts.Mounter,
		Metrics:       m,
		Logger:        opts.Logger,
	})
	if err != nil {
		return nil, err
	}
	reg, err := registration.New(registration.Config{DriverName: cfg.DriverName, Endpoint: cfg.Endpoint, Logger: opts.Logger})
	if err != nil {
		return nil, err
	}
	s := &Server{opts: opts, log: opts.Logger, node: svc, metrics: m, reg: reg}
	// The kubelet opens a connection per call and requests are small: no
	// per-connection read/write buffers (32 KiB each by default), which
	// keeps the per-call allocations and the resident memory down.
	s.csi = grpc.NewServer(
		grpc.UnaryInterceptor(s.intercept),
		grpc.ReadBufferSize(0),
		grpc.WriteBufferSize(0),
	)
	csi.RegisterIdentityServer(s.csi, svc)
	csi.RegisterNodeServer(s.csi, svc)
	s.regGRPC = grpc.NewServer()
	reg.Register(s.regGRPC)
	if cfg.HTTPAddress != "" || opts.HTTPListener != nil {
		s.ops, err = opshttp.New(opshttp.Config{
			Gatherer: opts.Registry,
			Logger:   opts.Logger,
			Ready:    func(context.Context) error { return svc.Ready() },
		})
		if err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Node returns the CSI service, for tests.
func (s *Server) Node() *node.Service { return s.node }

// Run listens, counts what is already published, serves until ctx is
// cancelled, then stops accepting, drains in-flight calls within the
// shutdown timeout and removes both sockets. It returns nil after a clean
// shutdown.
func (s *Server) Run(ctx context.Context) (err error) {
	cfg := s.opts.Config
	csiL, err := ListenUnix(cfg.Endpoint, "endpoint")
	if err != nil {
		return err
	}
	defer removeSocket(cfg.Endpoint)
	regL, err := ListenUnix(cfg.RegistrationSocket(), "kubelet-dir")
	if err != nil {
		_ = csiL.Close()
		return err
	}
	defer removeSocket(cfg.RegistrationSocket())
	httpL := s.opts.HTTPListener
	if httpL == nil && cfg.HTTPAddress != "" {
		if httpL, err = net.Listen("tcp", cfg.HTTPAddress); err != nil {
			_ = csiL.Close()
			_ = regL.Close()
			return fmt.Errorf("--http-address %s: failed to listen: %w", cfg.HTTPAddress, err)
		}
	}

	errCh := make(chan error, 3)
	// Publish and unpublish wait until the count of what an earlier instance
	// published is done; Probe answers at once.
	resume := s.node.Pause()
	s.node.SetServing(true)
	go func() { errCh <- wrap("CSI", s.csi.Serve(csiL)) }()
	go func() { errCh <- wrap("registration", s.regGRPC.Serve(regL)) }()
	httpCtx, stopHTTP := context.WithCancel(context.WithoutCancel(ctx))
	defer stopHTTP()
	running := 2
	if s.ops != nil {
		running++
		go func() { errCh <- s.ops.Serve(httpCtx, httpL) }()
	}
	s.log.Info("serving",
		zap.String("driver", cfg.DriverName), zap.String("version", s.opts.Version),
		zap.String("endpoint", cfg.Endpoint), zap.String("registration", cfg.RegistrationSocket()),
		zap.String("http_address", cfg.HTTPAddress))
	s.countPublished()
	resume()
	if err := s.node.Ready(); err != nil {
		s.log.Warn("not ready", zap.Error(err))
	}

	var runErr error
	select {
	case <-ctx.Done():
		s.log.Info("shutting down", zap.String("cause", context.Cause(ctx).Error()))
	case runErr = <-errCh:
		running--
	}
	s.node.SetServing(false)
	s.stopGracefully()
	stopHTTP()
	for ; running > 0; running-- {
		if err := <-errCh; err != nil {
			runErr = errors.Join(runErr, err)
		}
	}
	return runErr
}

// stopGracefully stops both gRPC servers: no new connections, in-flight calls
// finish within the shutdown timeout, then the rest is cut.
func (s *Server) stopGracefully() {
	done := make(chan struct{})
	go func() {
		s.csi.GracefulStop()
		s.regGRPC.GracefulStop()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(s.opts.ShutdownTimeout):
		s.log.Warn("in-flight calls did not finish in time; stopping", zap.Duration("timeout", s.opts.ShutdownTimeout))
		s.csi.Stop()
		s.regGRPC.Stop()
		<-done
	}
}

// countPublished has the mounter read the mount table once and sets the
// published gauge.
func (s *Server) countPublished() {
	counts, err := s.node.CountPublished()
	if err != nil {
		s.log.Warn("failed to read the mount table; published volumes are not counted", zap.Error(err))
		return
	}
	if len(counts) > 0 {
		s.log.Info("found volumes published by an earlier instance", zap.Any("by_source", counts))
	}
}

// intercept records metrics for every CSI call and logs a failed one once.
func (s *Server) intercept(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	start := time.Now()
	resp, err := handler(ctx, req)
	method := path.Base(info.FullMethod)
	st, _ := status.FromError(err)
	s.metrics.Observe(method, st.Code(), time.Since(start))
	if err != nil {
		fields := []zap.Field{zap.String("method", method), zap.String("code", st.Code().String()), zap.String("error", st.Message())}
		if r, ok := req.(interface{ GetVolumeId() string }); ok {
			fields = append(fields, zap.String("volume_id", r.GetVolumeId()))
		}
		if r, ok := req.(interface{ GetTargetPath() string }); ok {
			fields = append(fields, zap.String("target_path", r.GetTargetPath()))
		}
		s.log.Error("CSI call failed", fields...)
	}
	return resp, err
}

// ListenUnix listens on a Unix socket at p that only root can use (0600),
// replacing a stale socket file; flag names the setting in errors.
func ListenUnix(p, flag string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
		return nil, fmt.Errorf("--%s: failed to create the directory of %s: %w", flag, p, err)
	}
	if fi, err := os.Lstat(p); err == nil {
		if fi.Mode().Type() != fs.ModeSocket {
			return nil, fmt.Errorf("--%s: %s exists and is not a socket", flag, p)
		}
		if err := os.Remove(p); err != nil {
			return nil, fmt.Errorf("--%s: failed to remove the stale socket %s: %w", flag, p, err)
		}
	}
	old := unix.Umask(0o177)
	l, err := net.Listen("unix", p)
	unix.Umask(old)
	if err != nil {
		return nil, fmt.Errorf("--%s: failed to listen on %s: %w", flag, p, err)
	}
	if err := os.Chmod(p, 0o600); err != nil {
		_ = l.Close()
		return nil, fmt.Errorf("--%s: failed to restrict %s: %w", flag, p, err)
	}
	return l, nil
}

func removeSocket(p string) {
	if fi, err := os.Lstat(p); err == nil && fi.Mode().Type() == fs.ModeSocket {
		_ = os.Remove(p)
	}
}

func wrap(what string, err error) error {
	if err == nil || errors.Is(err, grpc.ErrServerStopped) {
		return nil
	}
	return fmt.Errorf("failed to serve %s: %w", what, err)
}
