// Package server wires the driver together: the CSI socket, the kubelet
// registration socket and the metrics/health listener, one gRPC interceptor
// for metrics and error logs, the start-up count of published volumes, and
// a bounded graceful shutdown that removes both sockets.
package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"

	"github.com/meshcsi/meshcsi/libs/opshttp"
	"github.com/meshcsi/meshcsi/services/csi-driver/internal/config"
	"github.com/meshcsi/meshcsi/services/csi-driver/internal/logfield"
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
	// Namespaces reads namespace labels for sources with a namespace
	// selector; required when the configuration has one. Run starts it.
	Namespaces NamespaceCache
	// HTTPListener, when set, is used instead of listening on
	// Config.HTTPAddress (tests pass an ephemeral one).
	HTTPListener net.Listener
	// ShutdownTimeout bounds the drain; zero means DefaultShutdownTimeout.
	ShutdownTimeout time.Duration
}

// NamespaceCache is a node.Namespaces that Run starts (an informer).
type NamespaceCache interface {
	node.Namespaces
	// Start runs the cache until ctx is done, without waiting for it to
	// sync.
	Start(ctx context.Context)
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
	sockets []*ownedSocket
}

// New validates opts and builds a Server; it touches nothing on the host.
func New(opts Options) (*Server, error) {
	if opts.Logger == nil || opts.Registry == nil || opts.Mounter == nil {
		return nil, errors.New("server: a logger, a registry and a mounter are required")
	}
	if err := opts.Config.Validate(); err != nil {
		return nil, err
	}
	if opts.Config.NeedsNamespaces() && opts.Namespaces == nil {
		return nil, errors.New("server: --source-namespace-selector needs a namespace cache")
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
	var namespaces node.Namespaces
	if opts.Namespaces != nil {
		namespaces = opts.Namespaces
	}
	svc, err := node.New(node.Config{
		Namespaces:    namespaces,
		SocketWait:    cfg.SocketWait,
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
	// The kubelet opens a connection per call and requests are small:
	// 4 KiB read and write buffers (32 KiB each by default) hold a whole
	// call, and grpc-go returns the write buffer to a pool between
	// flushes. No buffers at all cost a system call per HTTP/2 frame
	// header and payload (24 reads and 14 writes per publish+unpublish
	// pair instead of 8 and 4, ~60 µs a call).
	s.csi = grpc.NewServer(
		grpc.UnaryInterceptor(s.intercept),
		grpc.ReadBufferSize(4<<10),
		grpc.WriteBufferSize(4<<10),
		grpc.ForceServerCodecV2(countingCodec{CodecV2: encoding.GetCodecV2(proto.Name), onError: s.undecodable}),
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

// Run locks and listens on both sockets, counts what is already
// published, serves until ctx is cancelled, then stops accepting, drains
// in-flight calls within the shutdown timeout and removes the sockets it
// created. A second instance on the same sockets fails with ErrInUse
// naming the first one's pid, touching nothing. It returns nil after a
// clean shutdown.
func (s *Server) Run(ctx context.Context) (err error) {
	cfg := s.opts.Config
	csiSock, err := listenOwned(cfg.Endpoint, "endpoint")
	if err != nil {
		return err
	}
	defer csiSock.release()
	regSock, err := listenOwned(cfg.RegistrationSocket(), "kubelet-dir")
	if err != nil {
		return err
	}
	defer regSock.release()
	s.sockets = []*ownedSocket{csiSock, regSock}
	httpL := s.opts.HTTPListener
	if httpL == nil && cfg.HTTPAddress != "" {
		if httpL, err = net.Listen("tcp", cfg.HTTPAddress); err != nil {
			return fmt.Errorf("--http-address %s: failed to listen: %w", cfg.HTTPAddress, err)
		}
	}
	if s.opts.Namespaces != nil {
		nsCtx, stopNS := context.WithCancel(ctx)
		defer stopNS()
		s.opts.Namespaces.Start(nsCtx)
	}
	csiL, regL := csiSock.listener, regSock.listener

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
	for _, o := range s.sockets {
		o.remove()
	}
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
		// meshcsi_published_volumes_known stays 0: the sentinel will not
		// take this driver's count for "no volume on this node".
		s.log.Warn("failed to read the mount table; published volumes are not counted", zap.Error(err))
		return
	}
	s.metrics.SetPublishedKnown(true)
	if len(counts) > 0 {
		s.log.Info("found volumes published by an earlier instance", zap.Any("by_source", counts))
	}
}

// intercept records metrics for every CSI call and logs a failed one once,
// with every request-supplied field bounded (logfield).
func (s *Server) intercept(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	start := time.Now()
	resp, err := handler(ctx, req)
	method := path.Base(info.FullMethod)
	st, _ := status.FromError(err)
	s.metrics.Observe(method, st.Code(), time.Since(start))
	if err != nil {
		fields := []zap.Field{zap.String("method", method), zap.String("code", st.Code().String()), logfield.String("error", st.Message())}
		if r, ok := req.(interface{ GetVolumeId() string }); ok {
			fields = append(fields, logfield.String("volume_id", r.GetVolumeId()))
		}
		if r, ok := req.(interface{ GetTargetPath() string }); ok {
			fields = append(fields, logfield.String("target_path", r.GetTargetPath()))
		}
		s.log.Error("CSI call failed", fields...)
	}
	return resp, err
}

// undecodable counts and logs a request that failed to decode: it never
// reaches a handler, so the interceptor does not see it.
func (s *Server) undecodable(err error) {
	s.metrics.UndecodableRequest()
	s.log.Warn("CSI request could not be decoded", logfield.String("error", err.Error()))
}

// countingCodec is the proto codec, reporting every failed decode.
type countingCodec struct {
	encoding.CodecV2
	onError func(error)
}

// Unmarshal decodes data into v and reports a failure.
func (c countingCodec) Unmarshal(data mem.BufferSlice, v any) error {
	err := c.CodecV2.Unmarshal(data, v)
	if err != nil {
		c.onError(err)
	}
	return err
}

func wrap(what string, err error) error {
	if err == nil || errors.Is(err, grpc.ErrServerStopped) {
		return nil
	}
	return fmt.Errorf("failed to serve %s: %w", what, err)
}
