// Package opshttp serves a binary's operational endpoints on one listener:
// Prometheus metrics at /metrics, liveness at /healthz and readiness at
// /readyz. The CSI driver is its user; it lives in libs/ so that another
// meshcsi binary that serves these endpoints does so the same way. The
// registry and listener are injected so tests can run the real handler on an
// ephemeral port.
package opshttp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"
)

// Check reports whether one aspect of the process is healthy. A nil error
// means healthy; the error text is returned to the prober.
type Check func(ctx context.Context) error

// Config holds what a Server needs.
type Config struct {
	// Gatherer is scraped at /metrics. Required.
	Gatherer prometheus.Gatherer
	// Logger receives serve errors. Required.
	Logger *zap.Logger
	// Live is checked at /healthz; nil means always live.
	Live Check
	// Ready is checked at /readyz; nil means always ready.
	Ready Check
	// ShutdownTimeout bounds the drain of in-flight requests; default 5s.
	ShutdownTimeout time.Duration
}

// Server is the operational HTTP server.
type Server struct {
	cfg Config
	srv *http.Server
}

// New validates cfg and builds a Server.
func New(cfg Config) (*Server, error) {
	if cfg.Gatherer == nil {
		return nil, errors.New("opshttp: a metrics gatherer is required")
	}
	if cfg.Logger == nil {
		return nil, errors.New("opshttp: a logger is required")
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = 5 * time.Second
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(cfg.Gatherer, promhttp.HandlerOpts{
		ErrorLog:          zap.NewStdLog(cfg.Logger),
		EnableOpenMetrics: true,
	}))
	mux.Handle("GET /healthz", checkHandler(cfg.Live))
	mux.Handle("GET /readyz", checkHandler(cfg.Ready))
	return &Server{
		cfg: cfg,
		srv: &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second},
	}, nil
}

// Serve serves on l until ctx is cancelled, then drains in-flight requests
// within the shutdown timeout. It returns nil after a clean shutdown.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	errCh := make(chan error, 1)
	go func() { errCh <- s.srv.Serve(l) }()
	select {
	case err := <-errCh:
		return fmt.Errorf("failed to serve http on %s: %w", l.Addr(), err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.ShutdownTimeout)
	defer cancel()
	if err := s.srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("failed to shut down http server: %w", err)
	}
	if err := <-errCh; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("failed to serve http: %w", err)
	}
	return nil
}

func checkHandler(check Check) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		if check != nil {
			if err := check(r.Context()); err != nil {
				w.WriteHeader(http.StatusServiceUnavailable)
				_, _ = fmt.Fprintf(w, "not ok: %v\n", err)
				return
			}
		}
		_, _ = fmt.Fprintln(w, "ok")
	})
}

// NewRegistry returns a registry holding the Go runtime and process
// collectors and a <namespace>_build_info gauge labelled with the binary's
// version, revision and Go version, so every binary that uses it reports them
// alike.
func NewRegistry(namespace, component, version string) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	revision, goVersion := "unknown", "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		goVersion = bi.GoVersion
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				revision = s.Value
			}
		}
	}
	bi := prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: namespace,
		Name:      "build_info",
		Help:      "Build information of the running binary; always 1.",
		ConstLabels: prometheus.Labels{
			"component":  component,
			"version":    version,
			"revision":   revision,
			"go_version": goVersion,
		},
	})
	bi.Set(1)
	reg.MustRegister(bi)
	return reg
}
