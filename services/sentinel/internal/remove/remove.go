// Package remove deletes recorded objects one at a time, each with a UID
// precondition, so an object that was replaced by a newer install (same name,
// new UID) is never touched, and an object that is already gone counts as
// done. That makes every step safe to repeat after a restart.
package remove

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/metadata"

	"github.com/meshcsi/meshcsi/services/sentinel/internal/plan"
)

// Outcome is what became of one object.
type Outcome string

const (
	// Deleted means this call deleted it.
	Deleted Outcome = "deleted"
	// Gone means it was already gone (NotFound, or its API is not served).
	Gone Outcome = "gone"
	// Replaced means an object of that name exists with another UID: it
	// belongs to a newer install and was left alone.
	Replaced Outcome = "replaced"
	// Forbidden means the sentinel's RBAC does not allow it: it is left for
	// the operator, and the removal goes on with the next object.
	Forbidden Outcome = "forbidden"
)

// Result records one deletion for the summary.
type Result struct {
	Object  plan.Object `json:"object"`
	Outcome Outcome     `json:"outcome"`
}

// Remover deletes and adopts plan objects through the metadata client.
type Remover struct {
	meta metadata.Interface
}

// New returns a Remover using meta.
func New(meta metadata.Interface) (*Remover, error) {
	if meta == nil {
		return nil, errors.New("remove: a metadata client is required")
	}
	return &Remover{meta: meta}, nil
}

func (r *Remover) resource(o plan.Object) metadata.ResourceInterface {
	if o.Namespace != "" {
		return r.meta.Resource(o.GVR()).Namespace(o.Namespace)
	}
	return r.meta.Resource(o.GVR())
}

// Delete deletes o if it still has the recorded UID. Dependents are removed
// in the background by the garbage collector (pods of a DaemonSet or Job).
func (r *Remover) Delete(ctx context.Context, o plan.Object) (Result, error) {
	if o.UID == "" {
		return Result{}, fmt.Errorf("failed to delete %s: no UID recorded", o)
	}
	uid := types.UID(o.UID)
	bg := metav1.DeletePropagationBackground
	err := r.resource(o).Delete(ctx, o.Name, metav1.DeleteOptions{
		Preconditions:     &metav1.Preconditions{UID: &uid},
		PropagationPolicy: &bg,
	})
	switch {
	case err == nil:
		return Result{Object: o, Outcome: Deleted}, nil
	case apierrors.IsNotFound(err):
		return Result{Object: o, Outcome: Gone}, nil
	case apierrors.IsConflict(err):
		// The UID precondition failed: the name now belongs to another object.
		return Result{Object: o, Outcome: Replaced}, nil
	case apierrors.IsForbidden(err):
		return Result{Object: o, Outcome: Forbidden}, nil
	default:
		return Result{}, fmt.Errorf("failed to delete %s: %w", o, err)
	}
}

// Adopt makes owner the owner of o (replacing o's owner references), so that
// deleting owner lets the garbage collector delete o. The patch carries o's
// recorded UID, so a replaced object is not adopted. It is how the sentinel
// removes its own RBAC: the last request it makes deletes its ClusterRole,
// and the collector removes the Job, the plan, the Lease, the ServiceAccount,
// the Role and the bindings that would otherwise have to outlive it.
func (r *Remover) Adopt(ctx context.Context, o plan.Object, owner plan.Object) (Result, error) {
	ref := metav1.OwnerReference{
		APIVersion: "rbac.authorization.k8s.io/v1",
		Kind:       owner.Kind,
		Name:       owner.Name,
		UID:        types.UID(owner.UID),
	}
	if owner.Group != "" {
		ref.APIVersion = owner.Group + "/" + owner.Version
	} else {
		ref.APIVersion = owner.Version
	}
	patch, err := json.Marshal(map[string]any{
		"metadata": map[string]any{
			"uid":             o.UID,
			"ownerReferences": []metav1.OwnerReference{ref},
		},
	})
	if err != nil {
		return Result{}, fmt.Errorf("failed to encode owner patch for %s: %w", o, err)
	}
	_, err = r.resource(o).Patch(ctx, o.Name, types.MergePatchType, patch, metav1.PatchOptions{})
	switch {
	case err == nil:
		return Result{Object: o, Outcome: "adopted"}, nil
	case apierrors.IsNotFound(err):
		return Result{Object: o, Outcome: Gone}, nil
	case apierrors.IsConflict(err), uidChanged(err):
		return Result{Object: o, Outcome: Replaced}, nil
	default:
		return Result{}, fmt.Errorf("failed to set owner of %s: %w", o, err)
	}
}

// uidChanged recognises kube-apiserver's answer to a patch whose metadata.uid
// is not the object's: unlike a delete precondition (409 Conflict), a patch
// fails validation, 422 Invalid on metadata.uid ("field is immutable").
func uidChanged(err error) bool {
	if !apierrors.IsInvalid(err) {
		return false
	}
	var st apierrors.APIStatus
	if !errors.As(err, &st) || st.Status().Details == nil {
		return false
	}
	for _, c := range st.Status().Details.Causes {
		if c.Field == "metadata.uid" {
			return true
		}
	}
	return false
}
