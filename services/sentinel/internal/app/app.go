// Package app wires the sentinel's subcommands to real clients, so main stays
// a few lines: it parses the configuration, builds the logger and the
// Kubernetes clients, runs the subcommand and maps its outcome to the exit
// code (0 done or stood down, 1 configuration or API error, 2 timeout).
package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/clock"

	"github.com/meshcsi/meshcsi/libs/kubeclient"
	"github.com/meshcsi/meshcsi/libs/logging"
	"github.com/meshcsi/meshcsi/libs/signals"
	"github.com/meshcsi/meshcsi/services/sentinel/internal/cleanup"
	"github.com/meshcsi/meshcsi/services/sentinel/internal/config"
	"github.com/meshcsi/meshcsi/services/sentinel/internal/handoff"
	"github.com/meshcsi/meshcsi/services/sentinel/internal/lease"
	"github.com/meshcsi/meshcsi/services/sentinel/internal/preview"
)

// Exit codes.
const (
	// ExitOK: done, stood down, or nothing to do.
	ExitOK = 0
	// ExitError: a configuration error or an API error it cannot get past.
	ExitError = 1
	// ExitTimeout: --timeout passed while pods still used the driver.
	ExitTimeout = 2
	// ExitInterrupted: stopped by SIGTERM/SIGINT (an evicted or deleted pod)
	// before it finished; running it again continues the job.
	ExitInterrupted = 3
)

// Env is what the process gets from its surroundings.
type Env struct {
	Args   []string
	Getenv func(string) string
	Stdout io.Writer
	Stderr io.Writer
	// Version is stamped into the user agent.
	Version string
	// WrapTransport, if set, wraps the HTTP transport (request counting in
	// benchmarks).
	WrapTransport func(rt http.RoundTripper) http.RoundTripper
}

// Main runs one subcommand and returns the exit code.
func Main(ctx context.Context, env Env) int {
	cfg, err := config.Parse(env.Args, env.Getenv, env.Stderr)
	if errors.Is(err, config.ErrHelp) {
		return ExitOK
	}
	if err != nil {
		fmt.Fprintln(env.Stderr, "meshcsi-sentinel:", err)
		return ExitError
	}
	log, err := logging.New(cfg.Log, env.Stderr)
	if err != nil {
		fmt.Fprintln(env.Stderr, "meshcsi-sentinel:", err)
		return ExitError
	}
	defer func() { _ = log.Sync() }()
	kubeclient.RouteKlog(log)
	err = run(ctx, cfg, env, log)
	switch {
	case err == nil:
		return ExitOK
	case errors.Is(err, cleanup.ErrTimeout):
		log.Error("gave up waiting; nothing more was deleted", zap.Error(err))
		return ExitTimeout
	case interrupted(ctx):
		log.Warn("interrupted before finishing; run again to continue", zap.String("command", cfg.Command), zap.Error(err))
		return ExitInterrupted
	default:
		log.Error("sentinel failed", zap.String("command", cfg.Command), zap.Error(err))
		return ExitError
	}
}

// interrupted reports whether ctx was cancelled by a signal.
func interrupted(ctx context.Context) bool {
	var sig *signals.Error
	return errors.As(context.Cause(ctx), &sig)
}

func run(ctx context.Context, cfg config.Config, env Env, log *zap.Logger) error {
	rc, err := kubeclient.RESTConfig(kubeclient.Options{
		Kubeconfig: cfg.Kubeconfig,
		UserAgent:  "meshcsi-sentinel/" + env.Version,
		QPS:        20, Burst: 40,
	})
	if err != nil {
		return err
	}
	if env.WrapTransport != nil {
		rc.Wrap(env.WrapTransport)
	}
	typed := rest.CopyConfig(rc)
	// Protobuf halves the decode cost and garbage of the pod LIST and watch.
	typed.ContentType = "application/vnd.kubernetes.protobuf"
	typed.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
	client, err := kubernetes.NewForConfig(typed)
	if err != nil {
		return fmt.Errorf("failed to build clientset: %w", err)
	}
	meta, err := metadata.NewForConfig(rc)
	if err != nil {
		return fmt.Errorf("failed to build metadata client: %w", err)
	}
	clk := clock.RealClock{}
	switch cfg.Command {
	case config.CmdPlan:
		out, err := preview.Build(ctx, cfg, client, meta, clk.Now())
		if err != nil {
			return err
		}
		return preview.Write(env.Stdout, cfg.Output, out)
	case config.CmdHandoff:
		_, err := handoff.Run(ctx, cfg, handoff.Deps{Client: client, Meta: meta, Clock: clk, Logger: log})
		return err
	}
	tuneForRun(env.Getenv)
	identity := cfg.Identity
	if identity == "" {
		if identity, err = os.Hostname(); err != nil {
			return fmt.Errorf("failed to get hostname for --identity: %w", err)
		}
	}
	broadcaster := record.NewBroadcaster(record.WithContext(ctx))
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: client.CoreV1().Events(cfg.Namespace)})
	defer broadcaster.Shutdown()
	recorder := broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "meshcsi-sentinel"})
	deps := cleanup.Deps{Client: client, Meta: meta, Clock: clk, Logger: log, Recorder: recorder, EventFlush: 300 * time.Millisecond}
	// Validate before waiting for the Lease; each attempt gets fresh informers.
	if _, err := cleanup.New(cfg, deps); err != nil {
		return err
	}
	return lease.Run(ctx, lease.Config{Client: client, Namespace: cfg.Namespace, Name: cfg.LeaseName, Identity: identity, Logger: log},
		func(ctx context.Context) error {
			s, err := cleanup.New(cfg, deps)
			if err != nil {
				return err
			}
			sum, err := s.Run(ctx)
			if err == nil && sum.Result == cleanup.ResultDone {
				// Its Lease went with its own objects: nothing to release.
				return lease.ErrRemovedByWork
			}
			return err
		})
}
