package env

import (
	"fmt"
	"strings"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// MetricValue sums the samples of metric in a Prometheus text exposition
// whose labels include every name="value" pair in labels (a histogram or
// summary counts its sample count). found is false when no sample matches;
// err reports an exposition that does not parse or a malformed label pair.
func MetricValue(exposition, metric string, labels ...string) (sum float64, found bool, err error) {
	want := make(map[string]string, len(labels))
	for _, l := range labels {
		name, value, ok := strings.Cut(l, "=")
		if !ok || len(value) < 2 || value[0] != '"' || value[len(value)-1] != '"' {
			return 0, false, fmt.Errorf("label %q: want name=\"value\"", l)
		}
		want[name] = value[1 : len(value)-1]
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(exposition))
	if err != nil {
		return 0, false, fmt.Errorf("failed to parse the metrics exposition: %w", err)
	}
	mf, ok := families[metric]
	if !ok {
		return 0, false, nil
	}
	for _, m := range mf.GetMetric() {
		if !hasLabels(m, want) {
			continue
		}
		sum += sampleValue(m)
		found = true
	}
	return sum, found, nil
}

func hasLabels(m *dto.Metric, want map[string]string) bool {
	n := 0
	for _, lp := range m.GetLabel() {
		if v, ok := want[lp.GetName()]; ok {
			if v != lp.GetValue() {
				return false
			}
			n++
		}
	}
	return n == len(want)
}

func sampleValue(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.GetCounter().GetValue()
	case m.Gauge != nil:
		return m.GetGauge().GetValue()
	case m.Untyped != nil:
		return m.GetUntyped().GetValue()
	case m.Histogram != nil:
		return float64(m.GetHistogram().GetSampleCount())
	case m.Summary != nil:
		return float64(m.GetSummary().GetSampleCount())
	}
	return 0
}
