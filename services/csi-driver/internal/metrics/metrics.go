// Package metrics defines the driver's Prometheus metrics on an injected
// registry. Labels are bounded: the gRPC method, the gRPC code and the
// configured source name, never a pod or a volume ID.
package metrics

import (
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"
)

// Namespace prefixes every metric name.
const Namespace = "meshcsi"

// Buckets spans 25 µs to 10 s: a publish takes tens of microseconds, a
// stuck one seconds.
var Buckets = []float64{
	25e-6, 50e-6, 100e-6, 250e-6, 500e-6,
	1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3, 100e-3, 250e-3, 500e-3,
	1, 2.5, 5, 10,
}

// Metrics holds the driver's collectors.
type Metrics struct {
	ops       *prometheus.CounterVec
	duration  *prometheus.HistogramVec
	published *prometheus.GaugeVec
	ready     *prometheus.GaugeVec

	mu        sync.RWMutex
	observers map[string]prometheus.Observer
}

// New registers the driver's collectors on reg and initialises the per-source
// series to zero so that dashboards see every source from the start.
func New(reg prometheus.Registerer, sources []string) (*Metrics, error) {
	m := &Metrics{
		ops: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace,
			Name:      "csi_operations_total",
			Help:      "CSI calls served, by gRPC method and status code.",
		}, []string{"method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace,
			Name:      "csi_operation_duration_seconds",
			Help:      "Time to serve a CSI call, by gRPC method.",
			Buckets:   Buckets,
		}, []string{"method"}),
		published: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: Namespace,
			Name:      "published_volumes",
			Help:      "Volumes currently bind-mounted into pods, by source.",
		}, []string{"source"}),
		ready: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: Namespace,
			Name:      "source_ready",
			Help:      "1 when the source directory exists, else 0; updated on Probe and publish.",
		}, []string{"source"}),
		observers: map[string]prometheus.Observer{},
	}
	for _, c := range []prometheus.Collector{m.ops, m.duration, m.published, m.ready} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("failed to register metrics: %w", err)
		}
	}
	for _, s := range sources {
		m.published.WithLabelValues(s)
		m.ready.WithLabelValues(s)
	}
	return m, nil
}

// Observe records one served call.
func (m *Metrics) Observe(method string, code codes.Code, d time.Duration) {
	m.ops.WithLabelValues(method, code.String()).Inc()
	m.mu.RLock()
	o, ok := m.observers[method]
	m.mu.RUnlock()
	if !ok {
		o = m.duration.WithLabelValues(method)
		m.mu.Lock()
		m.observers[method] = o
		m.mu.Unlock()
	}
	o.Observe(d.Seconds())
}

// AddPublished moves the published-volumes gauge of source by delta.
func (m *Metrics) AddPublished(source string, delta float64) {
	m.published.WithLabelValues(source).Add(delta)
}

// SetSourceReady records whether the source directory exists.
func (m *Metrics) SetSourceReady(source string, ready bool) {
	v := 0.0
	if ready {
		v = 1
	}
	m.ready.WithLabelValues(source).Set(v)
}

// PublishedGauge returns the published-volumes gauge of source, for tests.
func (m *Metrics) PublishedGauge(source string) prometheus.Gauge {
	return m.published.WithLabelValues(source)
}

// ReadyGauge returns the source-ready gauge of source, for tests.
func (m *Metrics) ReadyGauge(source string) prometheus.Gauge {
	return m.ready.WithLabelValues(source)
}
