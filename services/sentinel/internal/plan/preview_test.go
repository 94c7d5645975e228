package plan_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshcsi/meshcsi/services/sentinel/internal/plan"
	"github.com/meshcsi/meshcsi/services/sentinel/internal/sentineltest"
)

func TestPreviewLiveTableAndJSON(t *testing.T) {
	c := sentineltest.New(t)
	c.AddRelease(t)
	ts := metav1.NewTime(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "web", DeletionTimestamp: &ts, Finalizers: []string{"x"}},
		Spec: corev1.PodSpec{NodeName: "n1", Volumes: []corev1.Volume{{Name: "s", VolumeSource: corev1.VolumeSource{CSI: &corev1.CSIVolumeSource{Driver: sentineltest.Driver}}}}}}
	if err := c.Client.Tracker().Add(pod); err != nil {
		t.Fatal(err)
	}
	cfg := sentineltest.Config()
	out, err := plan.BuildPreview(context.Background(), cfg, c.Clients(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if out.Source != "live" || len(out.Plan.Objects) != 12 || len(out.Blockers) != 1 {
		t.Fatalf("preview = %+v", out)
	}
	var table bytes.Buffer
	if err := out.Write(&table, "table"); err != nil {
		t.Fatal(err)
	}
	lines := map[string]bool{}
	for _, l := range strings.Split(table.String(), "\n") {
		lines[strings.Join(strings.Fields(l), " ")] = true
	}
	for _, want := range []string{"1 CSIDriver - csi.meshcsi.io uid-csidriver", "12 ClusterRoleBinding - meshcsi-sentinel uid-crb-sentinel",
		"blocking pods: 1", "team-a/web (no owner, node n1, terminating since 2026-01-01T00:00:00Z)"} {
		if !lines[want] {
			t.Errorf("table lacks line %q:\n%s", want, table.String())
		}
	}
	var js bytes.Buffer
	if err := out.Write(&js, "json"); err != nil {
		t.Fatal(err)
	}
	var back plan.Preview
	if err := json.Unmarshal(js.Bytes(), &back); err != nil || len(back.Blockers) != 1 || back.Plan.Release != sentineltest.Release {
		t.Fatalf("json = %s (%v)", js.String(), err)
	}
	if muts := c.Mutations(); len(muts) != 0 {
		t.Fatalf("plan mutated the cluster: %v", muts)
	}
}
