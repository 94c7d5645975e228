package env

import "testing"

func TestMetricValue(t *testing.T) {
	const expo = `# HELP meshcsi_csi_operations_total CSI calls.
# TYPE meshcsi_csi_operations_total counter
meshcsi_csi_operations_total{code="OK",method="NodePublishVolume"} 3
meshcsi_csi_operations_total{code="NotFound",method="NodePublishVolume"} 1
meshcsi_csi_operations_total{code="OK",method="NodeUnpublishVolume"} 2
# TYPE meshcsi_published_volumes gauge
meshcsi_published_volumes{source="demo"} 1
meshcsi_published_volumes{source="a,b=\"c\""} 5
# TYPE meshcsi_op_seconds histogram
meshcsi_op_seconds_bucket{le="0.001"} 3
meshcsi_op_seconds_bucket{le="+Inf"} 7
meshcsi_op_seconds_sum 0.5
meshcsi_op_seconds_count 7
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
		// A label value holding a comma, an equals sign and escaped quotes.
		{"meshcsi_published_volumes", []string{`source="a,b="c""`}, 5, true},
		{"meshcsi_published_volumes", []string{`source="b"`}, 0, false},
		{"meshcsi_op_seconds", nil, 7, true},
		// A histogram's series by their own names, as rules and dashboards
		// name them.
		{"meshcsi_op_seconds_bucket", nil, 10, true},
		{"meshcsi_op_seconds_bucket", []string{`le="0.001"`}, 3, true},
		{"meshcsi_op_seconds_bucket", []string{`le="+Inf"`}, 7, true},
		{"meshcsi_op_seconds_bucket", []string{`le="0.5"`}, 0, false},
		{"meshcsi_op_seconds_count", nil, 7, true},
		{"meshcsi_op_seconds_sum", nil, 0.5, true},
		{"meshcsi_csi_operations_total_count", nil, 0, false},
		{"up", nil, 1, true},
		{"meshcsi_published", nil, 0, false},
	} {
		got, found, err := MetricValue(expo, tc.metric, tc.labels...)
		if err != nil || got != tc.want || found != tc.found {
			t.Errorf("%s%v = %v, %v, %v; want %v, %v", tc.metric, tc.labels, got, found, err, tc.want, tc.found)
		}
	}
	if _, _, err := MetricValue("not a metric line {", "up"); err == nil {
		t.Error("a broken exposition parsed")
	}
	if _, _, err := MetricValue(expo, "up", "source=demo"); err == nil {
		t.Error("an unquoted label value was accepted")
	}
}
