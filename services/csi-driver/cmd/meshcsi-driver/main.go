// Command meshcsi-driver is the meshcsi CSI node plugin: it bind-mounts
// admin-configured host directories (agent sockets) read-only into pods that
// ask for them with a CSI ephemeral inline volume.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"k8s.io/client-go/metadata"

	"github.com/meshcsi/meshcsi/libs/kubeclient"
	"github.com/meshcsi/meshcsi/libs/logging"
	"github.com/meshcsi/meshcsi/libs/opshttp"
	"github.com/meshcsi/meshcsi/libs/signals"
	"github.com/meshcsi/meshcsi/services/csi-driver/internal/config"
	"github.com/meshcsi/meshcsi/services/csi-driver/internal/mount"
	"github.com/meshcsi/meshcsi/services/csi-driver/internal/namespaces"
	"github.com/meshcsi/meshcsi/services/csi-driver/internal/server"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// Runtime settings of a per-node daemon; GOGC and GOMAXPROCS override them
// (docs/driver.md, "Flags and environment").
const (
	// gcPercent keeps the heap small.
	gcPercent = 50
	// maxProcs: one P runs the driver's Go code. Its calls are short and
	// mostly system calls (mkdir, mount, umount), which run on threads of
	// their own and do not need a P. With more Ps every goroutine the
	// kubelet's new connection readies wakes an idle P's thread, which
	// spins and sleeps: sequential publish+unpublish pairs per new
	// connection came out at 0.82-0.86x a no-op gRPC server's with 2 Ps
	// and 0.92-0.98x with 1 (make bench-driver).
	maxProcs = 1
)

func main() {
	tuneRuntime(os.Getenv)
	ctx, stop := signals.Context(context.Background())
	defer stop()
	cfg, err := config.Parse(os.Args[1:], os.Getenv, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "meshcsi-driver:", err)
		os.Exit(2)
	}
	if err := run(ctx, cfg); err != nil {
		fmt.Fprintln(os.Stderr, "meshcsi-driver:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, cfg config.Config) error {
	// Log lines go through a buffer flushed every second and at exit: a
	// write(2) per CSI call was a measurable part of a publish. A crash loses
	// at most the last second of lines (klog buffers for 5 s).
	out := &zapcore.BufferedWriteSyncer{WS: zapcore.AddSync(os.Stderr), Size: 256 << 10, FlushInterval: time.Second}
	defer func() { _ = out.Stop() }()
	log, err := logging.New(cfg.Logging, out)
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
	sources := make([]mount.Source, 0, len(cfg.Sources))
	for _, s := range cfg.Sources {
		sources = append(sources, mount.Source{Name: s.Name, Path: s.Dir})
	}
	mounter, err := mount.New(mount.Config{PodsDir: cfg.PodsDir(), Sources: sources, Logger: log})
	if err != nil {
		return err
	}
	opts := server.Options{
		Config:   cfg,
		Version:  buildVersion(),
		Logger:   log,
		Registry: opshttp.NewRegistry("meshcsi", "csi-driver", buildVersion()),
		Mounter:  mounter,
	}
	if cfg.NeedsNamespaces() {
		if opts.Namespaces, err = namespaceCache(log); err != nil {
			return err
		}
	}
	srv, err := server.New(opts)
	if err != nil {
		return err
	}
	return srv.Run(ctx)
}

// tuneRuntime applies the daemon's GC target and GOMAXPROCS unless the
// environment sets them.
func tuneRuntime(getenv func(string) string) {
	if getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercent)
	}
	if getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(maxProcs)
	}
}

// namespaceCache reads namespaces (only) with the pod's service account.
func namespaceCache(log *zap.Logger) (*namespaces.Cache, error) {
	kubeclient.RouteKlog(log)
	rc, err := kubeclient.RESTConfig(kubeclient.Options{UserAgent: "meshcsi-driver/" + buildVersion()})
	if err != nil {
		return nil, fmt.Errorf("--source-namespace-selector needs the API server: %w", err)
	}
	client, err := metadata.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("--source-namespace-selector: %w", err)
	}
	return namespaces.New(client)
}

// buildVersion is the -ldflags version, else the module version recorded in
// the build info (go install), else "dev".
func buildVersion() string {
	if version != "dev" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return version
}
