package env

import "testing"

func TestMetricValue(t *testing.T) {
	const expo = `# HELP meshcsi_csi_operations_total CSI calls.
# TYPE meshcsi_csi_operations_total counter
meshcsi_csi_operations_total{code="OK",method="NodePublishVolume"} 3
meshcsi_csi_operations_total{code="NotFound",method="NodePublishVolume"} 1
meshcsi_csi_operations_total{code="OK",method="NodeUnpublishVolume"} 2
meshcsi_published_volumes{source="demo"} 1
up 1
`
	for _, tc := range []struct {
		metric string
		labels []string
		want   float64
		found  bool
	}{
		{"meshcsi_csi_operations_total", []string{`method="NodePublishVolume"`}, 4, true},
		{"meshcsi_csi_operations_total", []string{`method="NodePublishVolume"`, `code="OK"`}, 3, true},
		{"meshcsi_csi_operations_total", []string{`method="NodeStageVolume"`}, 0, false},
		{"meshcsi_published_volumes", []string{`source="demo"`}, 1, true},
		{"up", nil, 1, true},
		{"meshcsi_published", nil, 0, false},
	} {
		got, found := MetricValue(expo, tc.metric, tc.labels...)
		if got != tc.want || found != tc.found {
			t.Errorf("%s%v = %v, %v; want %v, %v", tc.metric, tc.labels, got, found, tc.want, tc.found)
		}
	}
}
