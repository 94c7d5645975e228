package env

import (
	"fmt"
	"strconv"
	"strings"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// MetricValue sums the samples of metric in a Prometheus text exposition
// whose labels include every name="value" pair in labels. metric is a family
// (a histogram or summary family counts its observations) or one of a
// histogram's or summary's own series, <name>_bucket (cumulative bucket
// counts; labels may hold le), <name>_count or <name>_sum, as rules and
// dashboards name them. found is false when no sample matches; err reports an
// exposition that does not parse or a malformed label pair.
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
	if mf, ok := families[metric]; ok {
		for _, m := range mf.GetMetric() {
			if hasLabels(m, want) {
				sum += sampleValue(m)
				found = true
			}
		}
		return sum, found, nil
	}
	for _, suffix := range []string{"_bucket", "_count", "_sum"} {
		base, ok := strings.CutSuffix(metric, suffix)
		if !ok {
			continue
		}
		mf := families[base]
		if mf == nil || (mf.GetType() != dto.MetricType_HISTOGRAM && mf.GetType() != dto.MetricType_SUMMARY) {
			return 0, false, nil
		}
		if suffix == "_bucket" {
			return bucketCounts(mf, want)
		}
		for _, m := range mf.GetMetric() {
			if !hasLabels(m, want) {
				continue
			}
			found = true
			switch {
			case m.Histogram != nil && suffix == "_count":
				sum += float64(m.GetHistogram().GetSampleCount())
			case m.Histogram != nil:
				sum += m.GetHistogram().GetSampleSum()
			case suffix == "_count":
				sum += float64(m.GetSummary().GetSampleCount())
			default:
				sum += m.GetSummary().GetSampleSum()
			}
		}
		return sum, found, nil
	}
	return 0, false, nil
}

// bucketCounts sums the cumulative counts of a histogram's buckets whose
// series match want; a wanted le selects the bucket with that upper bound.
func bucketCounts(mf *dto.MetricFamily, want map[string]string) (sum float64, found bool, err error) {
	le, byBound := want["le"]
	var bound float64
	if byBound {
		if bound, err = strconv.ParseFloat(le, 64); err != nil {
			return 0, false, fmt.Errorf("label le=%q: %w", le, err)
		}
		rest := make(map[string]string, len(want))
		for k, v := range want {
			if k != "le" {
				rest[k] = v
			}
		}
		want = rest
	}
	for _, m := range mf.GetMetric() {
		if mf.GetType() != dto.MetricType_HISTOGRAM || !hasLabels(m, want) {
			continue
		}
		for _, b := range m.GetHistogram().GetBucket() {
			if byBound && b.GetUpperBound() != bound {
				continue
			}
			sum += float64(b.GetCumulativeCount())
			found = true
		}
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
