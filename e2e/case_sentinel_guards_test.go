//go:build e2e

package e2e

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/meshcsi/meshcsi/e2e/env"
)

// caseRemovalGuards (issue 13, findings 7, 8 and 10) on the real cluster: from
// `helm uninstall` on, the API server refuses new pods that use the driver
// ("meshcsi is being removed: ...") and the deletion of the install
// namespace, while pods without the driver are admitted; the hand-off ran
// under its own account, which Helm has deleted; once the workloads are gone
// the sentinel removes both guards with the rest, and the namespace can go.
// It runs after earlier cases removed and re-installed the release on the
// same API server: the guard's parameter is of the release's own kind, whose
// informer the API server starts anew each time (a ConfigMap parameter was
// read from a stopped informer after the first removal: docs/sentinel.md).
func caseRemovalGuards(t *testing.T, ctx context.Context) {
	install(t, ctx, nil)
	startWorkload(t, ctx, "ws-g")
	uninstallWithWorkloads(t, ctx, "ws-g")
	kc := suite.Kube.Kube
	// The suite's own workload pod: valid for Pod Security and the pod
	// admission policy, so only the removal guard can refuse it.
	late := env.WorkloadPod(workloads, "late", "")
	dry := metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}
	// Up to 30 s after a first install the API server may not resolve the
	// guard's new kind yet (its discovery cache), and the policy admits.
	poll(t, ctx, 45*time.Second, "a new pod using the driver is refused", func(ctx context.Context) error {
		_, err := kc.CoreV1().Pods(workloads).Create(ctx, late, dry)
		if err == nil {
			return errors.New("a pod using the driver was admitted")
		}
		if !strings.Contains(err.Error(), "meshcsi is being removed:") {
			return fmt.Errorf("create refused for another reason: %w", err)
		}
		t.Logf("refused: %v", err)
		return nil
	})
	plain := late.DeepCopy()
	plain.Spec.Volumes = nil
	for i := range plain.Spec.Containers {
		plain.Spec.Containers[i].VolumeMounts = nil
	}
	if _, err := kc.CoreV1().Pods(workloads).Create(ctx, plain, dry); err != nil {
		t.Errorf("a pod without the driver was refused during removal: %v", err)
	}
	err := kc.CoreV1().Namespaces().Delete(ctx, namespace, metav1.DeleteOptions{DryRun: []string{metav1.DryRunAll}})
	if err == nil || !strings.Contains(err.Error(), "helm uninstall") {
		t.Errorf("deleting the install namespace during removal: %v, want a refusal naming helm uninstall", err)
	}
	if _, err := kc.CoreV1().ServiceAccounts(namespace).Get(ctx, release+"-handoff", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the hand-off's ServiceAccount outlived helm uninstall: %v", err)
	}
	removeWorkloadsAndExpectCleanup(t, ctx)
	for _, name := range []string{release + "-removal-guard", release + "-namespace-guard"} {
		if _, err := kc.AdmissionregistrationV1().ValidatingAdmissionPolicies().Get(ctx, name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("ValidatingAdmissionPolicy %s left after removal: %v", name, err)
		}
		if _, err := kc.AdmissionregistrationV1().ValidatingAdmissionPolicyBindings().Get(ctx, name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("ValidatingAdmissionPolicyBinding %s left after removal: %v", name, err)
		}
	}
	crd := "removalguards." + release + "." + namespace + ".meshcsi.io"
	poll(t, ctx, 30*time.Second, "the removal guard's CustomResourceDefinition is gone", func(ctx context.Context) error {
		_, err := suite.Kube.Dynamic.Resource(schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}).Get(ctx, crd, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err == nil {
			return fmt.Errorf("CustomResourceDefinition %s still exists", crd)
		}
		return fmt.Errorf("CustomResourceDefinition %s: %w", crd, err)
	})
	poll(t, ctx, 30*time.Second, "the install namespace may be deleted after removal", func(ctx context.Context) error {
		return kc.CoreV1().Namespaces().Delete(ctx, namespace, metav1.DeleteOptions{DryRun: []string{metav1.DryRunAll}})
	})
}
