package metrics

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/grpc/codes"
)

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := New(reg, []string{"spire", "mesh"})
	if err != nil {
		t.Fatal(err)
	}
	m.Observe("NodePublishVolume", codes.OK, 40*time.Microsecond)
	m.Observe("NodePublishVolume", codes.OK, 3*time.Millisecond)
	m.Observe("NodePublishVolume", codes.InvalidArgument, 10*time.Microsecond)
	m.AddPublished("spire", 2)
	m.AddPublished("spire", -1)
	m.SetSourceReady("spire", true)
	m.ObserveSocketWait("spire", "ready", 20*time.Microsecond)
	m.ForeignTarget("NodeUnpublishVolume", "tmpfs")
	m.UndecodableRequest()
	// Unknown until the start-up count of the mount table succeeded.
	if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP meshcsi_published_volumes_known 1 once the driver counted its published volumes from the mount table at start; 0 before, or when that failed (meshcsi_published_volumes then holds only what this instance published since, and the sentinel does not trust it).
# TYPE meshcsi_published_volumes_known gauge
meshcsi_published_volumes_known 0
`), "meshcsi_published_volumes_known"); err != nil {
		t.Fatal(err)
	}
	m.SetPublishedKnown(true)

	want := `
# HELP meshcsi_csi_operations_total CSI calls served, by gRPC method and status code.
# TYPE meshcsi_csi_operations_total counter
meshcsi_csi_operations_total{code="InvalidArgument",method="NodePublishVolume"} 1
meshcsi_csi_operations_total{code="OK",method="NodePublishVolume"} 2
# HELP meshcsi_csi_undecodable_requests_total CSI requests that could not be decoded (they never reach a handler).
# TYPE meshcsi_csi_undecodable_requests_total counter
meshcsi_csi_undecodable_requests_total 1
# HELP meshcsi_foreign_targets_total Calls refused because the target held something the driver did not make (left untouched), by gRPC method and what was found.
# TYPE meshcsi_foreign_targets_total counter
meshcsi_foreign_targets_total{kind="tmpfs",method="NodeUnpublishVolume"} 1
# HELP meshcsi_published_volumes Volumes currently bind-mounted into pods, by source.
# TYPE meshcsi_published_volumes gauge
meshcsi_published_volumes{source="mesh"} 0
meshcsi_published_volumes{source="spire"} 1
# HELP meshcsi_published_volumes_known 1 once the driver counted its published volumes from the mount table at start; 0 before, or when that failed (meshcsi_published_volumes then holds only what this instance published since, and the sentinel does not trust it).
# TYPE meshcsi_published_volumes_known gauge
meshcsi_published_volumes_known 1
# HELP meshcsi_source_ready 1 when the source directory exists, else 0; updated on Probe and publish.
# TYPE meshcsi_source_ready gauge
meshcsi_source_ready{source="mesh"} 0
meshcsi_source_ready{source="spire"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"meshcsi_csi_operations_total", "meshcsi_published_volumes", "meshcsi_published_volumes_known", "meshcsi_source_ready",
		"meshcsi_foreign_targets_total", "meshcsi_csi_undecodable_requests_total"); err != nil {
		t.Fatal(err)
	}
	if n := testutil.CollectAndCount(m.duration); n != 1 {
		t.Fatalf("duration series = %d, want 1", n)
	}
	if n := testutil.CollectAndCount(m.socketWait); n != 1 {
		t.Fatalf("socket wait series = %d, want 1", n)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "meshcsi_csi_operation_duration_seconds" {
			continue
		}
		// 10 µs and 40 µs fall in the two lowest buckets (25 µs, 50 µs):
		// sub-millisecond calls are resolved, not lumped together.
		h := mf.GetMetric()[0].GetHistogram()
		if h.GetSampleCount() != 3 || h.GetBucket()[0].GetUpperBound() != 25e-6 ||
			h.GetBucket()[0].GetCumulativeCount() != 1 || h.GetBucket()[1].GetCumulativeCount() != 2 {
			t.Fatalf("histogram = %v", h)
		}
	}
	if _, err := New(reg, nil); err == nil {
		t.Fatal("registering twice succeeded")
	}
}
