// Package preview is the sentinel's `plan`: it prints what `run` would delete,
// in order, and which pods block removal right now, as a table or JSON. It
// deletes nothing and needs only read access.
package preview

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"

	"github.com/meshcsi/meshcsi/services/sentinel/internal/cleanup"
	"github.com/meshcsi/meshcsi/services/sentinel/internal/config"
	"github.com/meshcsi/meshcsi/services/sentinel/internal/plan"
	"github.com/meshcsi/meshcsi/services/sentinel/internal/watch"
)

// Output is the JSON form of a preview.
type Output struct {
	// Source is "configmap" (the recorded plan) or "live" (what a hand-off
	// would record now).
	Source   string          `json:"source"`
	Plan     *plan.Plan      `json:"plan"`
	Blockers []watch.Blocker `json:"blockers"`
}

// Build reads the recorded plan, or discovers one when none is recorded, and
// the current blockers from a fresh paged read.
func Build(ctx context.Context, cfg config.Config, client kubernetes.Interface, meta metadata.Interface, now time.Time) (Output, error) {
	out := Output{Source: "configmap"}
	p, _, err := cleanup.LoadPlan(ctx, client, cfg)
	if errors.Is(err, plan.ErrNoPlan) {
		out.Source = "live"
		rel := plan.Release{Name: cfg.Release, Namespace: cfg.Namespace, DriverName: cfg.DriverName, PartOf: cfg.PartOf}
		p, err = plan.Discover(ctx, meta, client.Discovery(), rel, "", now)
	}
	if err != nil {
		return out, err
	}
	out.Plan = p
	out.Blockers, err = watch.FreshBlockers(ctx, client, cfg.DriverName, 500)
	if err != nil {
		return out, err
	}
	if out.Blockers == nil {
		out.Blockers = []watch.Blocker{}
	}
	return out, nil
}

// Write prints o as "table" or "json".
func Write(w io.Writer, format string, o Output) error {
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
	if len(o.Blockers) == 0 {
		return nil
	}
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAMESPACE\tNAME\tOWNER\tNODE\tSTATE")
	for _, b := range o.Blockers {
		owner := "-"
		if b.OwnerKind != "" {
			owner = b.OwnerKind + "/" + b.OwnerName
		}
		state := b.Phase
		if b.TerminatingSince != nil {
			state = "Terminating since " + b.TerminatingSince.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", b.Namespace, b.Name, owner, b.Node, state)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("failed to write plan: %w", err)
	}
	return nil
}
