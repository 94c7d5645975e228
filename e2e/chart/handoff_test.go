//go:build chart

package chart

import (
	"maps"
	"testing"

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
	for name, want := range map[string]map[string]string{"meshcsi-sentinel": keep, "meshcsi-handoff": nil} {
		if got := objs.Get("ServiceAccount", name).GetAnnotations(); !maps.Equal(got, want) {
			t.Errorf("defaults: ServiceAccount %s annotations %v, want %v", name, got, want)
		}
	}
}

func merged(a, b map[string]string) map[string]string {
	m := maps.Clone(a)
	maps.Copy(m, b)
	return m
}
