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

	"go.uber.org/zap"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/metadata"

	"github.com/meshcsi/meshcsi/services/sentinel/internal/kube"
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
	// Adopted means the object was made a dependent of the sentinel's
	// ClusterRole (Adopt), for the garbage collector to remove.
	Adopted Outcome = "adopted"
)

// ErrRefused marks a delete or patch the API server refused: RBAC
// (Forbidden) or an admission policy or webhook (Forbidden or Invalid). The
// removal stops there: what is left would otherwise be removed behind the
// back of whoever refused, and a refused DaemonSet delete would leave the
// sentinel waiting for pods that never go.
var ErrRefused = errors.New("refused by the API server")

// RefusedError is the error of a refused request; errors.Is(err, ErrRefused).
type RefusedError struct {
	// Object is what was to be deleted or patched.
	Object plan.Object
	// Verb is "delete" or "patch".
	Verb string
	// Message is the API server's message (names the policy or the RBAC rule).
	Message string
	// Err is the API error.
	Err error
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("%s of %s was %s: %s", e.Verb, e.Object, ErrRefused, e.Message)
}

// Unwrap lets errors.Is find ErrRefused and the API error.
func (e *RefusedError) Unwrap() []error { return []error{ErrRefused, e.Err} }

// refused recognises a request the API server refused rather than failed:
// Forbidden (RBAC, or an admission policy/webhook that says so) or Invalid
// (a ValidatingAdmissionPolicy's default answer). A delete is never invalid
// otherwise; a patch's changed metadata.uid is handled before (uidChanged).
func refused(err error) bool {
	return apierrors.IsForbidden(err) || apierrors.IsInvalid(err)
}

func refusal(verb string, o plan.Object, err error) error {
	msg := err.Error()
	var st apierrors.APIStatus
	if errors.As(err, &st) && st.Status().Message != "" {
		msg = st.Status().Message
	}
	return &RefusedError{Object: o, Verb: verb, Message: msg, Err: err}
}

// Result records one deletion for the summary.
type Result struct {
	Object  plan.Object `json:"object"`
	Outcome Outcome     `json:"outcome"`
}

// Remover deletes and adopts plan objects through the metadata client,
// retrying transient API errors (kube.Retry).
type Remover struct {
	meta metadata.Interface
	log  *zap.Logger
}

// New returns a Remover using meta; log names the retried requests.
func New(meta metadata.Interface, log *zap.Logger) (*Remover, error) {
	if meta == nil || log == nil {
		return nil, errors.New("remove: a metadata client and a logger are required")
	}
	return &Remover{meta: meta, log: log}, nil
}

func (r *Remover) resource(o plan.Object) metadata.ResourceInterface {
	if o.Namespace != "" {
		return r.meta.Resource(o.GVR()).Namespace(o.Namespace)
	}
	return r.meta.Resource(o.GVR())
}

// Delete deletes o if it still has the recorded UID. Dependents are removed
// in the background by the garbage collector (pods of a DaemonSet or Job).
// A refused delete returns a *RefusedError.
func (r *Remover) Delete(ctx context.Context, o plan.Object) (Result, error) {
	if o.UID == "" {
		return Result{}, fmt.Errorf("failed to delete %s: no UID recorded", o)
	}
	uid := types.UID(o.UID)
	bg := metav1.DeletePropagationBackground
	err := kube.Retry(ctx, r.log, "delete "+o.String(), func(ctx context.Context) error {
		return r.resource(o).Delete(ctx, o.Name, metav1.DeleteOptions{
			Preconditions:     &metav1.Preconditions{UID: &uid},
			PropagationPolicy: &bg,
		})
	})
	switch {
	case err == nil:
		return Result{Object: o, Outcome: Deleted}, nil
	case apierrors.IsNotFound(err):
		return Result{Object: o, Outcome: Gone}, nil
	case apierrors.IsConflict(err):
		// The UID precondition failed: the name now belongs to another object.
		return Result{Object: o, Outcome: Replaced}, nil
	case refused(err):
		return Result{}, refusal("delete", o, err)
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
	err = kube.Retry(ctx, r.log, "patch "+o.String(), func(ctx context.Context) error {
		_, err := r.resource(o).Patch(ctx, o.Name, types.MergePatchType, patch, metav1.PatchOptions{})
		return err
	})
	switch {
	case err == nil:
		return Result{Object: o, Outcome: Adopted}, nil
	case apierrors.IsNotFound(err):
		return Result{Object: o, Outcome: Gone}, nil
	case apierrors.IsConflict(err), uidChanged(err):
		return Result{Object: o, Outcome: Replaced}, nil
	case refused(err):
		return Result{}, refusal("patch", o, err)
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
