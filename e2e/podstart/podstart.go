// Package podstart measures what a meshcsi volume adds to a pod's start on a
// real node (make bench-podstart): the time from a pod's creation to Running
// for pods with a meshcsi CSI ephemeral volume, against the same pods with an
// emptyDir and with a hostPath volume, and the driver's own share of it (its
// NodePublishVolume latency, read from its histogram). The benchmark itself
// is podstart_bench_test.go (build tag bench); this file holds what it
// computes and prints, so that is unit-tested without a cluster.
package podstart

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	corev1 "k8s.io/api/core/v1"
)

// Volume kinds compared.
const (
	Meshcsi  = "meshcsi"
	EmptyDir = "emptyDir"
	HostPath = "hostPath"
)

// Kinds is the order in which kinds are created in every round and printed.
var Kinds = []string{Meshcsi, EmptyDir, HostPath}

// WithVolume returns pod with its one volume replaced by kind's: the
// meshcsi volume stays, emptyDir and hostPath (the agent's directory,
// read-only, as a workload would mount it without meshcsi) replace it.
func WithVolume(pod *corev1.Pod, kind, hostDir string) *corev1.Pod {
	p := pod.DeepCopy()
	v := &p.Spec.Volumes[0]
	switch kind {
	case EmptyDir:
		v.VolumeSource = corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}
	case HostPath:
		t := corev1.HostPathDirectory
		v.VolumeSource = corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: hostDir, Type: &t}}
	}
	return p
}

// Stats are the quantiles of one set of durations, in milliseconds.
type Stats struct {
	N    int     `json:"n"`
	P50  float64 `json:"p50_ms"`
	P95  float64 `json:"p95_ms"`
	Mean float64 `json:"mean_ms"`
}

// Summarize computes Stats (nearest-rank quantiles).
func Summarize(ds []time.Duration) Stats {
	if len(ds) == 0 {
		return Stats{}
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	var sum time.Duration
	for _, d := range s {
		sum += d
	}
	rank := func(q float64) float64 {
		i := int(math.Ceil(q*float64(len(s)))) - 1
		return ms(s[max(i, 0)])
	}
	return Stats{N: len(s), P50: rank(0.50), P95: rank(0.95), Mean: ms(sum / time.Duration(len(s)))}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// Histogram is one histogram series' cumulative buckets.
type Histogram struct {
	Bounds []float64 // upper bounds, ascending, +Inf last
	Counts []float64 // cumulative
	Count  float64
	Sum    float64
}

// ReadHistogram reads the series of histogram family name whose label
// label has value value from a Prometheus text exposition.
func ReadHistogram(exposition, name, label, value string) (Histogram, error) {
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(exposition))
	if err != nil {
		return Histogram{}, fmt.Errorf("failed to parse the metrics exposition: %w", err)
	}
	mf, ok := fams[name]
	if !ok {
		return Histogram{}, fmt.Errorf("no metric %s", name)
	}
	for _, m := range mf.GetMetric() {
		for _, lp := range m.GetLabel() {
			if lp.GetName() != label || lp.GetValue() != value || m.GetHistogram() == nil {
				continue
			}
			h := Histogram{Count: float64(m.GetHistogram().GetSampleCount()), Sum: m.GetHistogram().GetSampleSum()}
			for _, b := range m.GetHistogram().GetBucket() {
				h.Bounds = append(h.Bounds, b.GetUpperBound())
				h.Counts = append(h.Counts, float64(b.GetCumulativeCount()))
			}
			if len(h.Bounds) == 0 || !math.IsInf(h.Bounds[len(h.Bounds)-1], 1) {
				h.Bounds = append(h.Bounds, math.Inf(1))
				h.Counts = append(h.Counts, h.Count)
			}
			return h, nil
		}
	}
	return Histogram{}, fmt.Errorf("no series of %s with %s=%q", name, label, value)
}

// Sub returns the observations made between before and h (same buckets).
func (h Histogram) Sub(before Histogram) (Histogram, error) {
	if len(before.Bounds) == 0 {
		return h, nil
	}
	if len(before.Bounds) != len(h.Bounds) {
		return Histogram{}, fmt.Errorf("bucket layout changed: %d vs %d buckets", len(before.Bounds), len(h.Bounds))
	}
	d := Histogram{Bounds: h.Bounds, Count: h.Count - before.Count, Sum: h.Sum - before.Sum}
	for i := range h.Counts {
		d.Counts = append(d.Counts, h.Counts[i]-before.Counts[i])
	}
	return d, nil
}

// Quantile estimates quantile q in seconds as Prometheus' histogram_quantile
// does: linear interpolation inside the bucket that holds the rank (the
// upper bound of the highest finite bucket when the rank falls in +Inf).
func (h Histogram) Quantile(q float64) float64 {
	if h.Count == 0 || len(h.Bounds) < 2 {
		return math.NaN()
	}
	rank := q * h.Count
	for i, c := range h.Counts {
		if c < rank {
			continue
		}
		if math.IsInf(h.Bounds[i], 1) {
			return h.Bounds[i-1]
		}
		lo, below := 0.0, 0.0
		if i > 0 {
			lo, below = h.Bounds[i-1], h.Counts[i-1]
		}
		if c == below {
			return h.Bounds[i]
		}
		return lo + (h.Bounds[i]-lo)*(rank-below)/(c-below)
	}
	return h.Bounds[len(h.Bounds)-2]
}

// Result is what the benchmark prints as one JSON line.
type Result struct {
	PodsPerKind int              `json:"pods_per_kind"`
	Concurrency int              `json:"concurrency"`
	Start       map[string]Stats `json:"create_to_running"`
	// Publish is the driver's NodePublishVolume latency over the meshcsi
	// pods (from its histogram: the quantiles are bucket estimates).
	PublishCalls  int     `json:"publish_calls"`
	PublishMeanMs float64 `json:"publish_mean_ms"`
	PublishP50Ms  float64 `json:"publish_p50_ms"`
	PublishP95Ms  float64 `json:"publish_p95_ms"`
	// DriverShare is the driver's mean publish time over the meshcsi pods'
	// mean create-to-Running time.
	DriverShare float64 `json:"driver_share"`
	Seconds     float64 `json:"seconds"`
}

// Print writes the table and the JSON line (prefixed BENCH_JSON).
func (r Result) Print(w io.Writer) {
	fmt.Fprintf(w, "\npod start: creation to Running, %d pods per volume kind, %d created at a time (kinds interleaved)\n", r.PodsPerKind, r.Concurrency)
	fmt.Fprintf(w, "%-10s %10s %10s %10s %22s\n", "volume", "p50 (ms)", "p95 (ms)", "mean (ms)", "p50 vs emptyDir (ms)")
	base := r.Start[EmptyDir].P50
	for _, k := range Kinds {
		s := r.Start[k]
		fmt.Fprintf(w, "%-10s %10.0f %10.0f %10.0f %+22.0f\n", k, s.P50, s.P95, s.Mean, s.P50-base)
	}
	fmt.Fprintf(w, "driver NodePublishVolume (%d calls): mean %.2f ms, p50 ~%.2f ms, p95 ~%.2f ms (bucket estimates)\n",
		r.PublishCalls, r.PublishMeanMs, r.PublishP50Ms, r.PublishP95Ms)
	fmt.Fprintf(w, "driver's share of a meshcsi pod's start (mean publish / mean create-to-Running): %.2f %%\n", 100*r.DriverShare)
	line, _ := json.Marshal(r)
	fmt.Fprintf(w, "BENCH_JSON %s\n", line)
}
