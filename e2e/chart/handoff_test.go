//go:build chart

package chart

import (
	"maps"
	"strings"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/meshcsi/meshcsi/e2e/manifest"
)

// TestServiceAccountAnnotations: sentinel.serviceAccount.annotations reach
// the hand-off's and the sentinel's accounts as driver.serviceAccount
// .annotations reaches the driver's, without displacing the keep policy
// of the accounts that outlive Helm, and without leaking onto another
// component's account.
func TestServiceAccountAnnotations(t *testing.T) {
	h := newHelm(t)
	objs := render(t, h, map[string]string{
		"driver.serviceAccount.annotations.example\\.com/owner":   "driver-team",
		"sentinel.serviceAccount.annotations.example\\.com/owner": "platform",
		"sentinel.serviceAccount.annotations.example\\.com/cost":  "shared",
	})
	sentinelWant := map[string]string{"example.com/owner": "platform", "example.com/cost": "shared"}
	keep := map[string]string{"helm.sh/resource-policy": "keep"}
	for _, tc := range []struct {
		name string
		want map[string]string
	}{
		{"meshcsi-driver", merged(keep, map[string]string{"example.com/owner": "driver-team"})},
		{"meshcsi-sentinel", merged(keep, sentinelWant)},
		// Not kept: Helm deletes it after the pre-delete hook has run.
		{"meshcsi-handoff", sentinelWant},
		// A hook of its own: Helm deletes it once the pre-upgrade hooks ran.
		{"meshcsi-upgrade", merged(upgradeHook, sentinelWant)},
	} {
		var sa corev1.ServiceAccount
		o := objs.Get("ServiceAccount", tc.name)
		if o == nil {
			t.Fatalf("ServiceAccount %s not rendered", tc.name)
		}
		if err := manifest.Into(o, &sa); err != nil {
			t.Fatal(err)
		}
		if !maps.Equal(sa.Annotations, tc.want) {
			t.Errorf("ServiceAccount %s annotations %v, want %v", tc.name, sa.Annotations, tc.want)
		}
	}
	// The defaults add nothing.
	objs = render(t, h, nil)
	for name, want := range map[string]map[string]string{"meshcsi-sentinel": keep, "meshcsi-handoff": nil, "meshcsi-upgrade": upgradeHook} {
		if got := objs.Get("ServiceAccount", name).GetAnnotations(); !maps.Equal(got, want) {
			t.Errorf("defaults: ServiceAccount %s annotations %v, want %v", name, got, want)
		}
	}
}

// upgradeHook is what the pre-upgrade hook's account carries as a hook
// (weight below the hook Job's, so it exists first).
var upgradeHook = map[string]string{
	"helm.sh/hook": "pre-upgrade,pre-rollback", "helm.sh/hook-weight": "-5",
	"helm.sh/hook-delete-policy": "before-hook-creation,hook-succeeded",
}

func merged(a, b map[string]string) map[string]string {
	m := maps.Clone(a)
	maps.Copy(m, b)
	return m
}

// TestHandoffDeadline: the hand-off hook's deadline leaves room for a cold
// image pull and stays 60 s below helm's default --timeout (5m), its value
// is bounded by the schema, and a failed hook explains itself: Helm prints
// the hand-off's log, the container's error becomes its termination
// message, and the Job says what to do with the command to run.
func TestHandoffDeadline(t *testing.T) {
	h := newHelm(t)
	for _, tc := range []struct {
		set      map[string]string
		deadline int64
		timeout  string
	}{
		{nil, 240, "--timeout 300s"},
		{map[string]string{"sentinel.handoffDeadlineSeconds": "600"}, 600, "--timeout 660s"},
		{map[string]string{"fullnameOverride": "mesh", "sentinel.handoffDeadlineSeconds": "30"}, 30, "--timeout 90s"},
	} {
		objs := render(t, h, tc.set)
		fn := fullname(tc.set)
		o := objs.Get("Job", fn+"-handoff")
		if o == nil {
			t.Fatalf("%v: hand-off Job not rendered", tc.set)
		}
		var job batchv1.Job
		if err := manifest.Into(o, &job); err != nil {
			t.Fatal(err)
		}
		if d := job.Spec.ActiveDeadlineSeconds; d == nil || *d != tc.deadline {
			t.Errorf("%v: activeDeadlineSeconds %v, want %d", tc.set, d, tc.deadline)
		}
		if tc.set == nil && *job.Spec.ActiveDeadlineSeconds+60 > 300 {
			t.Errorf("the default deadline must stay 60 s below helm's default --timeout of 5m")
		}
		a := job.Annotations
		if a["helm.sh/hook-output-log-policy"] != "hook-failed" {
			t.Errorf("%v: helm.sh/hook-output-log-policy = %q, want hook-failed (helm prints the failed hand-off's log)", tc.set, a["helm.sh/hook-output-log-policy"])
		}
		if !strings.Contains(a["helm.sh/hook-delete-policy"], "before-hook-creation") || strings.Contains(a["helm.sh/hook-delete-policy"], "hook-failed") {
			t.Errorf("%v: a failed hand-off Job must be kept for kubectl describe and replaced by the next try: delete policy %q", tc.set, a["helm.sh/hook-delete-policy"])
		}
		msg := a["meshcsi.io/if-failed"]
		for _, want := range []string{
			"before deleting anything",
			"describe pods -l job-name=" + fn + "-handoff",
			"ErrImagePull",
			"helm uninstall " + release + " -n " + namespace + " " + tc.timeout,
			"--no-hooks",
		} {
			if !strings.Contains(msg, want) {
				t.Errorf("%v: meshcsi.io/if-failed lacks %q:\n%s", tc.set, want, msg)
			}
		}
		c := job.Spec.Template.Spec.Containers[0]
		if c.TerminationMessagePolicy != corev1.TerminationMessageFallbackToLogsOnError {
			t.Errorf("%v: terminationMessagePolicy %q, want FallbackToLogsOnError (the hand-off's error in kubectl describe)", tc.set, c.TerminationMessagePolicy)
		}
	}
	for _, bad := range []string{"29", "3601", "4m"} {
		if out, err := h.Template(ctx(t), chartDir(t), release, namespace, map[string]string{"sentinel.handoffDeadlineSeconds": bad}); err == nil || !strings.Contains(err.Error(), "handoffDeadlineSeconds") {
			t.Errorf("handoffDeadlineSeconds=%s: %v, want a schema error naming it\n%.300s", bad, err, out)
		}
	}
}
