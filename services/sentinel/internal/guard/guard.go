// Package guard raises the removal guard. The chart installs, up front, a
// ValidatingAdmissionPolicy that refuses new pods using the driver ("meshcsi
// is being removed: ...") and a binding whose parameter is a ConfigMap in the
// install namespace. The hand-off sets that ConfigMap's "removing" to "true":
// from then on the API server refuses new pods that could get a volume in the
// window between the sentinel's last check and the CSIDriver's deletion
// reaching every kubelet. The hand-off only patches one named ConfigMap; it
// never gets the right to create or change admission policies. A re-install
// applies the chart's "false" again, which lifts the guard; the sentinel
// deletes the policy, binding and ConfigMap by name, last.
package guard

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
)

// Keys of the parameter ConfigMap.
const (
	// KeyRemoving is "true" while the release is being removed.
	KeyRemoving = "removing"
	// KeySince is when the hand-off raised the guard (RFC 3339).
	KeySince = "since"
)

// ErrNoParameter is returned when the chart's parameter ConfigMap does not exist, so the
// guard cannot be raised (a chart older than the guard, or a rendering
// without it).
var ErrNoParameter = errors.New("the removal guard's parameter ConfigMap does not exist")

// Raise sets removing=true on the parameter ConfigMap namespace/name.
func Raise(ctx context.Context, c typedcorev1.CoreV1Interface, namespace, name string, now time.Time) error {
	patch, err := json.Marshal(map[string]any{"data": map[string]string{KeyRemoving: "true", KeySince: now.UTC().Format(time.RFC3339)}})
	if err != nil {
		return fmt.Errorf("failed to encode the guard patch: %w", err)
	}
	_, err = c.ConfigMaps(namespace).Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{})
	if apierrors.IsNotFound(err) {
		return fmt.Errorf("%w: ConfigMap %s/%s", ErrNoParameter, namespace, name)
	}
	if err != nil {
		return fmt.Errorf("failed to raise the removal guard (ConfigMap %s/%s): %w", namespace, name, err)
	}
	return nil
}
