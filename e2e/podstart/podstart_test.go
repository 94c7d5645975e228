package podstart

import (
	"fmt"
	"math"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

func TestSummarize(t *testing.T) {
	var ds []time.Duration
	for i := 1; i <= 20; i++ {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	got := Summarize(ds)
	if got.N != 20 || got.P50 != 10 || got.P95 != 19 || got.Mean != 10.5 {
		t.Fatalf("Summarize = %+v, want n 20, p50 10, p95 19, mean 10.5", got)
	}
	if (Summarize(nil) != Stats{}) {
		t.Fatal("Summarize(nil) is not zero")
	}
}

const exposition = `# HELP meshcsi_csi_operation_duration_seconds x
# TYPE meshcsi_csi_operation_duration_seconds histogram
meshcsi_csi_operation_duration_seconds_bucket{method="NodePublishVolume",le="0.001"} %d
meshcsi_csi_operation_duration_seconds_bucket{method="NodePublishVolume",le="0.002"} %d
meshcsi_csi_operation_duration_seconds_bucket{method="NodePublishVolume",le="+Inf"} %d
meshcsi_csi_operation_duration_seconds_sum{method="NodePublishVolume"} %g
meshcsi_csi_operation_duration_seconds_count{method="NodePublishVolume"} %d
meshcsi_csi_operation_duration_seconds_bucket{method="Probe",le="0.001"} 7
meshcsi_csi_operation_duration_seconds_bucket{method="Probe",le="0.002"} 7
meshcsi_csi_operation_duration_seconds_bucket{method="Probe",le="+Inf"} 7
meshcsi_csi_operation_duration_seconds_sum{method="Probe"} 0.001
meshcsi_csi_operation_duration_seconds_count{method="Probe"} 7
`

func expo(b1, b2, inf int, sum float64) string {
	return fmt.Sprintf(exposition, b1, b2, inf, sum, inf)
}

func TestHistogramDeltaAndQuantile(t *testing.T) {
	before, err := ReadHistogram(expo(1, 2, 2, 0.002), "meshcsi_csi_operation_duration_seconds", "method", "NodePublishVolume")
	if err != nil {
		t.Fatal(err)
	}
	after, err := ReadHistogram(expo(3, 12, 12, 0.017), "meshcsi_csi_operation_duration_seconds", "method", "NodePublishVolume")
	if err != nil {
		t.Fatal(err)
	}
	d, err := after.Sub(before)
	if err != nil {
		t.Fatal(err)
	}
	// 10 calls: 2 below 1 ms, 8 in (1, 2] ms.
	if d.Count != 10 || math.Abs(d.Sum-0.015) > 1e-9 {
		t.Fatalf("delta count %v sum %v, want 10 and 0.015", d.Count, d.Sum)
	}
	if q := d.Quantile(0.5); math.Abs(q-0.001375) > 1e-9 {
		t.Fatalf("p50 %v, want 0.001375 (interpolated in the (1, 2] ms bucket)", q)
	}
	if q := d.Quantile(0.1); math.Abs(q-0.0005) > 1e-9 {
		t.Fatalf("p10 %v, want 0.0005", q)
	}
	if _, err := ReadHistogram(expo(1, 1, 1, 0), "meshcsi_csi_operation_duration_seconds", "method", "NodeUnpublishVolume"); err == nil {
		t.Fatal("a missing series read without error")
	}
}

func TestWithVolume(t *testing.T) {
	base := &corev1.Pod{Spec: corev1.PodSpec{Volumes: []corev1.Volume{{Name: "v",
		VolumeSource: corev1.VolumeSource{CSI: &corev1.CSIVolumeSource{Driver: "csi.meshcsi.io"}}}}}}
	if p := WithVolume(base, Meshcsi, "/x"); p.Spec.Volumes[0].CSI == nil {
		t.Fatal("meshcsi pod lost its CSI volume")
	}
	if p := WithVolume(base, EmptyDir, "/x"); p.Spec.Volumes[0].EmptyDir == nil || p.Spec.Volumes[0].CSI != nil {
		t.Fatalf("emptyDir pod: %+v", p.Spec.Volumes[0])
	}
	p := WithVolume(base, HostPath, "/x")
	if hp := p.Spec.Volumes[0].HostPath; hp == nil || hp.Path != "/x" || p.Spec.Volumes[0].Name != "v" {
		t.Fatalf("hostPath pod: %+v", p.Spec.Volumes[0])
	}
	if base.Spec.Volumes[0].CSI == nil {
		t.Fatal("WithVolume changed its argument")
	}
}
