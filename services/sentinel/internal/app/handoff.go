package app

import (
	"context"
	"fmt"

	"go.uber.org/zap"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"

	"github.com/meshcsi/meshcsi/services/sentinel/internal/config"
	"github.com/meshcsi/meshcsi/services/sentinel/internal/handoff"
	"github.com/meshcsi/meshcsi/services/sentinel/internal/kube"
)

// handoffCmd runs the hand-off. It still takes the whole clientset (the
// hand-off is being reworked for issue 13 finding 8); once it takes
// kube.Clients, this file goes and the binary no longer links every API group.
func handoffCmd(ctx context.Context, cfg config.Config, rc *rest.Config, clients kube.Clients, clk clock.Clock, log *zap.Logger) error {
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return fmt.Errorf("failed to build clientset: %w", err)
	}
	_, err = handoff.Run(ctx, cfg, handoff.Deps{Client: cs, Meta: clients.Meta, Clock: clk, Logger: log})
	return err
}
