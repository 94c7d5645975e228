// Package app wires the sentinel's subcommands to real clients, so main stays
// a few lines: it parses the configuration, builds the logger and the
// Kubernetes clients, runs the subcommand and maps its outcome to the exit
// code (0 done or stood down, 1 configuration or permanent API error, 2
// timeout, 3 interrupted, 4 a delete refused by the API server, 5 the
// sentinel Job kept by prepare-upgrade).
package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/clock"

	"github.com/meshcsi/meshcsi/libs/kubeclient"
	"github.com/meshcsi/meshcsi/libs/logging"
	"github.com/meshcsi/meshcsi/libs/signals"
	"github.com/meshcsi/meshcsi/services/sentinel/internal/config"
	"github.com/meshcsi/meshcsi/services/sentinel/internal/handoff"
	"github.com/meshcsi/meshcsi/services/sentinel/internal/kube"
	"github.com/meshcsi/meshcsi/services/sentinel/internal/lease"
	"github.com/meshcsi/meshcsi/services/sentinel/internal/nodecheck"
	"github.com/meshcsi/meshcsi/services/sentinel/internal/plan"
	"github.com/meshcsi/meshcsi/services/sentinel/internal/preupgrade"
	"github.com/meshcsi/meshcsi/services/sentinel/internal/run"
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
	// ExitRefused: the API server refused a delete (RBAC, an admission
	// policy or webhook); the removal stopped there and a Warning Event
	// names the object and the API server's message.
	ExitRefused = 4
	// ExitKept: prepare-upgrade kept the sentinel Job (it has started, is
	// not the release's, or changed while it was checked), so the upgrade
	// must stop; final (the chart's hook fails at once, no retry).
	ExitKept = 5
)

// Env is what the process gets from its surroundings.
type Env struct {
	Args   []string
	Getenv func(string) string
	Stdout io.Writer
	Stderr io.Writer
	// Version is stamped into the user agent.
	Version string
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
	err = execute(ctx, cfg, env, log)
	switch {
	case err == nil:
		return ExitOK
	case errors.Is(err, run.ErrTimeout):
		log.Error("gave up waiting; nothing more was deleted", zap.Error(err))
		return ExitTimeout
	case errors.Is(err, run.ErrRefused):
		log.Error("a delete was refused; the removal stopped", zap.Error(err))
		return ExitRefused
	case errors.Is(err, preupgrade.ErrKept):
		log.Error("the sentinel Job was kept; the upgrade must stop", zap.Error(err))
		return ExitKept
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

func execute(ctx context.Context, cfg config.Config, env Env, log *zap.Logger) error {
	rc, err := kubeclient.RESTConfig(kubeclient.Options{
		Kubeconfig: cfg.Kubeconfig,
		UserAgent:  "meshcsi-sentinel/" + env.Version,
		QPS:        20, Burst: 40,
	})
	if err != nil {
		return err
	}
	clients, err := kube.NewForConfig(rc)
	if err != nil {
		return err
	}
	clk := clock.RealClock{}
	switch cfg.Command {
	case config.CmdPlan:
		out, err := plan.BuildPreview(ctx, cfg, clients, clk.Now())
		if err != nil {
			return err
		}
		return out.Write(env.Stdout, cfg.Output)
	case config.CmdHandoff:
		_, err := handoff.Run(ctx, cfg, handoff.Deps{Clients: clients, Clock: clk, Logger: log})
		return err
	case config.CmdPrepareUpgrade:
		_, err := preupgrade.Run(ctx, cfg, preupgrade.Deps{Batch: clients.Batch, Logger: log})
		return err
	}
	tuneForRun(env.Getenv, log)
	identity := cfg.Identity
	if identity == "" {
		if identity, err = os.Hostname(); err != nil {
			return fmt.Errorf("failed to get hostname for --identity: %w", err)
		}
	}
	broadcaster := record.NewBroadcaster(record.WithContext(ctx))
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: clients.Core.Events(cfg.Namespace)})
	defer broadcaster.Shutdown()
	recorder := broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "meshcsi-sentinel"})
	mounts, err := nodecheck.New(nodecheck.Config{Core: clients.Core, Namespace: cfg.Namespace, Release: cfg.Release})
	if err != nil {
		return err
	}
	deps := run.Deps{Clients: clients, Clock: clk, Logger: log, Recorder: recorder, EventFlush: 300 * time.Millisecond,
		PreDeleteChecks: []run.Check{mounts}, FinishedPods: mounts, InJob: env.Getenv("POD_NAME") != ""}
	// Validate before waiting for the Lease; each attempt gets fresh informers.
	if _, err := run.New(cfg, deps); err != nil {
		return err
	}
	return lease.Run(ctx, lease.Config{Client: clients.Coordination, Namespace: cfg.Namespace, Name: cfg.LeaseName, Identity: identity, Logger: log},
		func(ctx context.Context) error {
			r, err := run.New(cfg, deps)
			if err != nil {
				return err
			}
			sum, err := r.Run(ctx)
			if err == nil && sum.Result == run.ResultDone {
				// Its Lease went with its own objects: nothing to release.
				return lease.ErrRemovedByWork
			}
			return err
		})
}
