package plan

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"

	"github.com/meshcsi/meshcsi/services/sentinel/internal/config"
	"github.com/meshcsi/meshcsi/services/sentinel/internal/kube"
	"github.com/meshcsi/meshcsi/services/sentinel/internal/tracker"
)

// Load reads the plan ConfigMap and checks it belongs to this release. It
// returns the plan and the plan ConfigMap as an Object (the sentinel deletes
// it by that UID).
func Load(ctx context.Context, core typedcorev1.CoreV1Interface, cfg config.Config) (*Plan, Object, error) {
	cm, err := core.ConfigMaps(cfg.Namespace).Get(ctx, cfg.PlanConfigMap, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, Object{}, fmt.Errorf("%w (looked for ConfigMap %s/%s)", ErrNoPlan, cfg.Namespace, cfg.PlanConfigMap)
	}
	if err != nil {
		return nil, Object{}, fmt.Errorf("failed to get plan ConfigMap %s/%s: %w", cfg.Namespace, cfg.PlanConfigMap, err)
	}
	p, err := FromConfigMap(cm)
	if err != nil {
		return nil, Object{}, err
	}
	if p.Release != cfg.Release || p.Namespace != cfg.Namespace || p.DriverName != cfg.DriverName {
		return nil, Object{}, fmt.Errorf("%w: plan %s/%s is for release %s/%s driver %s, not --release %s --namespace %s --driver-name %s",
			config.ErrInvalid, cm.Namespace, cm.Name, p.Namespace, p.Release, p.DriverName, cfg.Release, cfg.Namespace, cfg.DriverName)
	}
	self := Object{Kind: "ConfigMap", Version: "v1", Resource: "configmaps", Namespace: cm.Namespace, Name: cm.Name, UID: string(cm.UID), Self: true}
	return p, self, nil
}

// Preview is what the `plan` command shows (and prints as JSON).
type Preview struct {
	// Source is "configmap" (the recorded plan) or "live" (what a hand-off
	// would record now).
	Source   string            `json:"source"`
	Plan     *Plan             `json:"plan"`
	Blockers []tracker.Blocker `json:"blockers"`
}

// BuildPreview reads the recorded plan, or discovers one when none is
// recorded, and the current blockers from a fresh paged read. It deletes
// nothing and needs read access only.
func BuildPreview(ctx context.Context, cfg config.Config, c kube.Clients, now time.Time) (Preview, error) {
	out := Preview{Source: "configmap"}
	p, _, err := Load(ctx, c.Core, cfg)
	if errors.Is(err, ErrNoPlan) {
		out.Source = "live"
		rel := Release{Name: cfg.Release, Namespace: cfg.Namespace, DriverName: cfg.DriverName, PartOf: cfg.PartOf}
		p, err = Discover(ctx, c.Meta, c.Discovery, rel, "", now)
	}
	if err != nil {
		return out, err
	}
	out.Plan = p
	out.Blockers, err = tracker.FreshBlockers(ctx, c.Core, cfg.DriverName)
	if err != nil {
		return out, err
	}
	if out.Blockers == nil {
		out.Blockers = []tracker.Blocker{}
	}
	return out, nil
}

// Write prints o as "table" or "json".
func (o Preview) Write(w io.Writer, format string) error {
	if format == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if err := enc.Encode(o); err != nil {
			return fmt.Errorf("failed to write plan: %w", err)
		}
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "plan for release %s in %s (driver %s, from %s)\n", o.Plan.Release, o.Plan.Namespace, o.Plan.DriverName, o.Source)
	fmt.Fprintln(tw, "STEP\tKIND\tNAMESPACE\tNAME\tUID")
	for i, obj := range o.Plan.Objects {
		ns := obj.Namespace
		if ns == "" {
			ns = "-"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", i+1, obj.Kind, ns, obj.Name, obj.UID)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("failed to write plan: %w", err)
	}
	fmt.Fprintf(w, "then the sentinel Job, its Lease and the plan ConfigMap (by name, with its own RBAC)\n")
	fmt.Fprintf(w, "\nblocking pods: %d\n", len(o.Blockers))
	for _, b := range o.Blockers {
		fmt.Fprintf(w, "  %s\n", b)
	}
	return nil
}
