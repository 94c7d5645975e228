//go:build integration

package test

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
)

// Issue 13: removal that GitOps, policy engines and a flaky API server cannot
// trick into stranding a pod. Each test failed on the sentinel before the fix
// (see the note on each).

// observation is how long a test watches for something that must not
// happen, after a positive signal that the sentinel is in the state under
// test.
const observation = 3 * time.Second

// Finding 1: a CSIDriver re-created after the hand-off (GitOps self-heal)
// must keep the DaemonSet; the sentinel names who wrote it and keeps waiting.
// Before: the UID conflict was logged as "replaced" and the DaemonSet deleted.
func TestIntegrationRecreatedCSIDriverKeepsDaemonSet(t *testing.T) {
	r := install(t, "recreate", "recreate.csi.meshcsi.io")
	blockingPod(t, "team-r", "web", r.driver, 1, false)
	handoff(t, r)
	helmDeletes(t, r)
	s := start(t, r, "run")
	s.waitOutput(t, "waiting for 1 pods", 30*time.Second)
	ctx := context.Background()
	// Argo CD's self-heal: the CSIDriver is deleted and applied again.
	old, err := admin.StorageV1().CSIDrivers().Get(ctx, r.driver, metav1.GetOptions{})
	must(t, err)
	must(t, admin.StorageV1().CSIDrivers().Delete(ctx, r.driver, metav1.DeleteOptions{}))
	fresh := &storagev1.CSIDriver{ObjectMeta: metav1.ObjectMeta{Name: r.driver, Labels: old.Labels, Annotations: old.Annotations}, Spec: old.Spec}
	_, err = admin.StorageV1().CSIDrivers().Create(ctx, fresh, metav1.CreateOptions{FieldManager: "argocd-application-controller"})
	must(t, err)
	deletePod(t, "team-r", "web")
	s.waitOutput(t, "argocd-application-controller", 30*time.Second)
	// It says so, and waits: the DaemonSet stays while the CSIDriver exists.
	waitEvent(t, r, "CSIDriverExists", "argocd-application-controller")
	s.stillWaiting(t, observation, r)
	if _, err := admin.AppsV1().DaemonSets(r.ns).Get(ctx, r.name+"-driver", metav1.GetOptions{}); err != nil {
		t.Fatalf("DaemonSet deleted while a CSIDriver of the driver's name exists: %v", err)
	}
	// Whoever re-created it stops; once it is gone, removal goes on.
	must(t, admin.StorageV1().CSIDrivers().Delete(ctx, r.driver, metav1.DeleteOptions{}))
	if code := s.wait(t, 60*time.Second); code != 0 {
		t.Fatalf("run exit %d", code)
	}
	releaseGone(t, r, 60*time.Second)
}

// Finding 2: objects applied without Helm (helm template | kubectl apply,
// Argo CD) carry no meta.helm.sh annotations; the plan must still hold the
// release's cluster-scoped objects, the CSIDriver first of all. Before: the
// plan missed them and the DaemonSet went while the CSIDriver stayed.
func TestIntegrationPlainApplyRemovesCSIDriverFirst(t *testing.T) {
	r := install(t, "plain", "plain.csi.meshcsi.io")
	stripHelmAnnotations(t, r)
	blockingPod(t, "team-p", "web", r.driver, 1, false)
	handoff(t, r)
	helmDeletes(t, r)
	s := start(t, r, "run")
	s.waitOutput(t, "waiting for 1 pods", 30*time.Second)
	deletePod(t, "team-p", "web")
	if code := s.wait(t, 60*time.Second); code != 0 {
		t.Fatalf("run exit %d", code)
	}
	out := s.output()
	csi, ds := strings.Index(out, `"kind":"CSIDriver"`), strings.Index(out, `"kind":"DaemonSet"`)
	if csi < 0 || ds < 0 || csi > ds {
		t.Fatalf("want the CSIDriver removed before the DaemonSet (log positions %d, %d):\n%s", csi, ds, out)
	}
	if _, err := admin.StorageV1().CSIDrivers().Get(context.Background(), r.driver, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("CSIDriver left behind: %v", err)
	}
	releaseGone(t, r, 60*time.Second)
}

// Finding 3: a delete an admission policy refuses stops the removal with a
// Warning Event naming the object and the API server's message, and exit 4.
// Before: the refused DaemonSet counted as "forbidden" and removal went on.
func TestIntegrationRefusedDeleteStopsRemoval(t *testing.T) {
	r := install(t, "refused", "refused.csi.meshcsi.io")
	ctx := context.Background()
	name := r.name + "-keep-driver"
	msg := "policy engine: the driver DaemonSet must stay"
	pol := &admissionregistrationv1.ValidatingAdmissionPolicy{ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: admissionregistrationv1.ValidatingAdmissionPolicySpec{
			FailurePolicy: ptr(admissionregistrationv1.Fail),
			MatchConstraints: &admissionregistrationv1.MatchResources{ResourceRules: []admissionregistrationv1.NamedRuleWithOperations{{
				RuleWithOperations: admissionregistrationv1.RuleWithOperations{Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Delete},
					Rule: admissionregistrationv1.Rule{APIGroups: []string{"apps"}, APIVersions: []string{"v1"}, Resources: []string{"daemonsets"}}}}}},
			Validations: []admissionregistrationv1.Validation{{Expression: fmt.Sprintf("oldObject.metadata.name != %q", r.name+"-driver"),
				Message: msg, Reason: ptr(metav1.StatusReasonForbidden)}},
		}}
	_, err := admin.AdmissionregistrationV1().ValidatingAdmissionPolicies().Create(ctx, pol, metav1.CreateOptions{})
	must(t, err)
	binding := &admissionregistrationv1.ValidatingAdmissionPolicyBinding{ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: admissionregistrationv1.ValidatingAdmissionPolicyBindingSpec{PolicyName: name,
			ValidationActions: []admissionregistrationv1.ValidationAction{admissionregistrationv1.Deny},
			MatchResources: &admissionregistrationv1.MatchResources{NamespaceSelector: &metav1.LabelSelector{
				MatchLabels: map[string]string{"kubernetes.io/metadata.name": r.ns}}}}}
	_, err = admin.AdmissionregistrationV1().ValidatingAdmissionPolicyBindings().Create(ctx, binding, metav1.CreateOptions{})
	must(t, err)
	t.Cleanup(func() {
		_ = admin.AdmissionregistrationV1().ValidatingAdmissionPolicyBindings().Delete(context.Background(), name, metav1.DeleteOptions{})
		_ = admin.AdmissionregistrationV1().ValidatingAdmissionPolicies().Delete(context.Background(), name, metav1.DeleteOptions{})
	})
	// The policy is in force once a dry-run delete is refused.
	refusedOnCue(t, r, apierrors.IsForbidden)
	handoff(t, r)
	helmDeletes(t, r)
	s := start(t, r, "run")
	if code := s.wait(t, 60*time.Second); code != 4 {
		t.Fatalf("run exit %d, want 4 (a delete was refused):\n%s", code, s.output())
	}
	waitEvent(t, r, "RemovalRefused", "DaemonSet "+r.ns+"/"+r.name+"-driver", msg)
	if !strings.Contains(s.output(), `"result":"refused"`) {
		t.Fatalf("no refused summary:\n%s", s.output())
	}
	// Nothing after the refused step was deleted.
	if _, err := admin.CoreV1().ServiceAccounts(r.ns).Get(ctx, r.name+"-driver", metav1.GetOptions{}); err != nil {
		t.Fatalf("deleted on after a refused delete: %v", err)
	}
}

// Finding 4: transient API errors are retried in-process: here the DaemonSet
// delete fails with a 500 (a validating webhook the API server cannot reach,
// failurePolicy Fail), and while the sentinel retries, the real
// kube-apiserver is restarted (connection refused). Before: the first 500
// ended the run with exit 1.
func TestIntegrationTransientErrorsRetried(t *testing.T) {
	r := install(t, "flaky", "flaky.csi.meshcsi.io")
	ctx := context.Background()
	name := r.name + "-unreachable"
	hook := &admissionregistrationv1.ValidatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: name},
		Webhooks: []admissionregistrationv1.ValidatingWebhook{{
			Name:                    "unreachable.meshcsi.io",
			ClientConfig:            admissionregistrationv1.WebhookClientConfig{URL: ptr("https://127.0.0.1:1/validate")},
			Rules:                   []admissionregistrationv1.RuleWithOperations{{Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Delete}, Rule: admissionregistrationv1.Rule{APIGroups: []string{"apps"}, APIVersions: []string{"v1"}, Resources: []string{"daemonsets"}}}},
			FailurePolicy:           ptr(admissionregistrationv1.Fail),
			SideEffects:             ptr(admissionregistrationv1.SideEffectClassNone),
			AdmissionReviewVersions: []string{"v1"},
			TimeoutSeconds:          ptr(int32(2)),
			ObjectSelector:          &metav1.LabelSelector{MatchLabels: map[string]string{"app.kubernetes.io/instance": r.name}},
		}}}
	_, err := admin.AdmissionregistrationV1().ValidatingWebhookConfigurations().Create(ctx, hook, metav1.CreateOptions{})
	must(t, err)
	removeHook := func() {
		err := admin.AdmissionregistrationV1().ValidatingWebhookConfigurations().Delete(context.Background(), name, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			t.Error(err)
		}
	}
	t.Cleanup(removeHook)
	refusedOnCue(t, r, apierrors.IsInternalError)
	handoff(t, r)
	helmDeletes(t, r)
	s := start(t, r, "run")
	s.waitOutput(t, "transient API error; retrying", 60*time.Second)
	rctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	restartAt := len(s.output())
	must(t, cluster.RestartAPIServer(rctx))
	// It kept retrying across the restart (each attempt logs), still running.
	s.waitOutputAfter(t, restartAt, "transient API error; retrying", 60*time.Second)
	if !s.running() {
		t.Fatalf("sentinel ended on a transient error:\n%s", s.output())
	}
	if _, err := admin.AppsV1().DaemonSets(r.ns).Get(ctx, r.name+"-driver", metav1.GetOptions{}); err != nil {
		t.Fatalf("DaemonSet: %v", err)
	}
	removeHook()
	if code := s.wait(t, 90*time.Second); code != 0 {
		t.Fatalf("run exit %d after the webhook came back", code)
	}
	releaseGone(t, r, 60*time.Second)
}

// Finding 9: the pod store holds only pods that use the driver (and the
// driver's own DaemonSet pods), not every pod of the cluster. Before: every
// pod was cached.
func TestIntegrationStoreHoldsOnlyDriverPods(t *testing.T) {
	r := install(t, "store", "store.csi.meshcsi.io")
	blockingPod(t, "team-s", "user-1", r.driver, 1, false)
	blockingPod(t, "team-s", "user-2", r.driver, 1, false)
	for i := 0; i < 30; i++ {
		blockingPod(t, "team-s", fmt.Sprintf("bystander-%d", i), "other.csi.example.com", 1, false)
	}
	handoff(t, r)
	helmDeletes(t, r)
	s := start(t, r, "run")
	s.waitOutput(t, "waiting for 2 pods", 30*time.Second)
	m := regexp.MustCompile(`"pods_cached":(\d+)`).FindStringSubmatch(s.output())
	if m == nil {
		t.Fatalf("no pods_cached in the log:\n%s", s.output())
	}
	cached, _ := strconv.Atoi(m[1])
	// The driver's DaemonSet pods (if its controller made any) may be cached too.
	ds, err := admin.CoreV1().Pods(r.ns).List(context.Background(), metav1.ListOptions{})
	must(t, err)
	if cached < 2 || cached > 2+len(ds.Items) {
		t.Fatalf("pods_cached = %d, want 2 users (+ at most %d driver pods): the store must not hold the bystanders", cached, len(ds.Items))
	}
	deletePod(t, "team-s", "user-1")
	deletePod(t, "team-s", "user-2")
	if code := s.wait(t, 60*time.Second); code != 0 {
		t.Fatalf("run exit %d", code)
	}
}

// stripHelmAnnotations makes the release look applied without Helm.
func stripHelmAnnotations(t *testing.T, r *release) {
	t.Helper()
	ctx := context.Background()
	patch := []byte(`{"metadata":{"annotations":{"meta.helm.sh/release-name":null,"meta.helm.sh/release-namespace":null}}}`)
	sel := metav1.ListOptions{LabelSelector: "app.kubernetes.io/instance=" + r.name}
	csi, err := admin.StorageV1().CSIDrivers().List(ctx, sel)
	must(t, err)
	for _, o := range csi.Items {
		_, err := admin.StorageV1().CSIDrivers().Patch(ctx, o.Name, types.MergePatchType, patch, metav1.PatchOptions{})
		must(t, err)
	}
	crs, err := admin.RbacV1().ClusterRoles().List(ctx, sel)
	must(t, err)
	for _, o := range crs.Items {
		_, err := admin.RbacV1().ClusterRoles().Patch(ctx, o.Name, types.MergePatchType, patch, metav1.PatchOptions{})
		must(t, err)
	}
	crbs, err := admin.RbacV1().ClusterRoleBindings().List(ctx, sel)
	must(t, err)
	for _, o := range crbs.Items {
		_, err := admin.RbacV1().ClusterRoleBindings().Patch(ctx, o.Name, types.MergePatchType, patch, metav1.PatchOptions{})
		must(t, err)
	}
}

// refusedOnCue waits until a dry-run delete of the release's DaemonSet fails
// as is (an admission configuration takes a moment to be in force).
func refusedOnCue(t *testing.T, r *release, is func(error) bool) {
	t.Helper()
	var last error
	err := wait.PollUntilContextTimeout(context.Background(), 200*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		last = admin.AppsV1().DaemonSets(r.ns).Delete(ctx, r.name+"-driver", metav1.DeleteOptions{DryRun: []string{metav1.DryRunAll}})
		return is(last), nil
	})
	if err != nil {
		t.Fatalf("the API server does not refuse the DaemonSet delete on cue: %v", last)
	}
}

// waitEvent waits for an Event on the sentinel Job with reason whose
// message holds every text.
func waitEvent(t *testing.T, r *release, reason string, texts ...string) {
	t.Helper()
	var seen []string
	err := wait.PollUntilContextTimeout(context.Background(), 250*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		ev, err := admin.CoreV1().Events(r.ns).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=" + r.name + "-sentinel"})
		if err != nil {
			return false, err
		}
		seen = seen[:0]
		for _, e := range ev.Items {
			seen = append(seen, e.Reason+": "+e.Message)
			if e.Reason != reason {
				continue
			}
			all := true
			for _, x := range texts {
				all = all && strings.Contains(e.Message, x)
			}
			if all {
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		b, _ := json.MarshalIndent(seen, "", "  ")
		t.Fatalf("no %s Event with %q on the Job: %v; events:\n%s", reason, texts, err, b)
	}
}

// stillWaiting asserts that over window the sentinel keeps running and the
// driver's objects stay (the claim "nothing happened", after the caller saw
// the sentinel enter the waiting state).
func (p *proc) stillWaiting(t *testing.T, window time.Duration, r *release) {
	t.Helper()
	select {
	case <-p.done:
		t.Fatalf("sentinel exited (%d) while it should wait:\n%s", p.code, p.output())
	case <-time.After(window):
	}
	if !driverDaemonSetExists(t, r) {
		t.Fatalf("the DaemonSet went while the sentinel should wait:\n%s", p.output())
	}
}

// waitOutputAfter is waitOutput for output printed after byte offset from.
func (p *proc) waitOutputAfter(t *testing.T, from int, substr string, timeout time.Duration) {
	t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, timeout, true, func(context.Context) (bool, error) {
		out := p.output()
		return len(out) > from && strings.Contains(out[from:], substr), nil
	})
	if err != nil {
		t.Fatalf("sentinel did not print %q within %s:\n%s", substr, timeout, p.output())
	}
}

func driverDaemonSetExists(t *testing.T, r *release) bool {
	t.Helper()
	_, err := admin.AppsV1().DaemonSets(r.ns).Get(context.Background(), r.name+"-driver", metav1.GetOptions{})
	return err == nil
}

func ptr[T any](v T) *T { return &v }
