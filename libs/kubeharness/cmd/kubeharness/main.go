// Command kubeharness starts and stops the local Kubernetes cluster used by
// `make cluster-up` / `make cluster-down`, the e2e suite and the demo.
package main

import (
	"context"
	"fmt"
	"os"

	"go.uber.org/zap"

	"github.com/meshcsi/meshcsi/libs/logging"
	"github.com/meshcsi/meshcsi/libs/signals"
)

func main() {
	ctx, stop := signals.Context(context.Background())
	defer stop()
	log, err := logging.New(logging.Config{Format: string(logging.FormatConsole)}, os.Stderr)
	if err != nil {
		_, _ = fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	if err := run(ctx, os.Args[1:], os.Stdout, log.Sugar()); err != nil {
		log.Error("kubeharness failed", zap.Error(err))
		_ = log.Sync()
		os.Exit(1)
	}
	_ = log.Sync()
}
