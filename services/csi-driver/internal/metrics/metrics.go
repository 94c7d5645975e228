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

// WaitBuckets spans 10 µs (the socket is there: one connect) to the longest
// --socket-wait a publish is likely to be given.
var WaitBuckets = []float64{
	10e-6, 25e-6, 50e-6, 100e-6, 250e-6, 500e-6,
	1e-3, 10e-3, 100e-3, 250e-3, 500e-3, 1, 2.5, 5, 10, 30, 60,
}

// Metrics holds the driver's collectors.
type Metrics struct {
	ops        *prometheus.CounterVec
	duration   *prometheus.HistogramVec
	published  *prometheus.GaugeVec
	known      prometheus.Gauge
	ready      *prometheus.GaugeVec
	socketWait *prometheus.HistogramVec
	waiting    *prometheus.GaugeVec
	foreign    *prometheus.CounterVec
	undecoded  prometheus.Counter

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
		known: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: Namespace,
			Name:      "published_volumes_known",
			Help:      "1 once the driver counted its published volumes from the mount table at start; 0 before, or when that failed (meshcsi_published_volumes then holds only what this instance published since, and the sentinel does not trust it).",
		}),
		ready: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: Namespace,
			Name:      "source_ready",
			Help:      "1 when the source directory exists, else 0; updated on Probe and publish.",
		}, []string{"source"}),
		socketWait: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace,
			Name:      "socket_wait_seconds",
			Help:      "Time a publish waited for its source's socket (--source-socket) to accept a connection, by source and outcome (ready, timeout, canceled).",
			Buckets:   WaitBuckets,
		}, []string{"source", "outcome"}),
		waiting: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: Namespace,
			Name:      "socket_waits_in_progress",
			Help:      "Publishes waiting now for their source's socket (pods waiting for their agent), by source.",
		}, []string{"source"}),
		foreign: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace,
			Name:      "foreign_targets_total",
			Help:      "Calls refused because the target held something the driver did not make (left untouched), by gRPC method and what was found.",
		}, []string{"method", "kind"}),
		undecoded: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: Namespace,
			Name:      "csi_undecodable_requests_total",
			Help:      "CSI requests that could not be decoded (they never reach a handler).",
		}),
		observers: map[string]prometheus.Observer{},
	}
	for _, c := range []prometheus.Collector{m.ops, m.duration, m.published, m.known, m.ready, m.socketWait, m.waiting, m.foreign, m.undecoded} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("failed to register metrics: %w", err)
		}
	}
	for _, s := range sources {
		m.published.WithLabelValues(s)
		m.ready.WithLabelValues(s)
		m.waiting.WithLabelValues(s)
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

// SetPublishedKnown records whether the published-volumes gauge counts every
// mount of the driver's (the start-up read of the mount table succeeded).
func (m *Metrics) SetPublishedKnown(known bool) {
	v := 0.0
	if known {
		v = 1
	}
	m.known.Set(v)
}

// SetSourceReady records whether the source directory exists.
func (m *Metrics) SetSourceReady(source string, ready bool) {
	v := 0.0
	if ready {
		v = 1
	}
	m.ready.WithLabelValues(source).Set(v)
}

// ObserveSocketWait records how long a publish of source waited for its
// socket; outcome is "ready", "timeout" or "canceled".
func (m *Metrics) ObserveSocketWait(source, outcome string, d time.Duration) {
	m.socketWait.WithLabelValues(source, outcome).Observe(d.Seconds())
}

// Waiting moves the number of publishes waiting for source's socket by
// delta (+1 when a wait starts, -1 when it ends).
func (m *Metrics) Waiting(source string, delta float64) { m.waiting.WithLabelValues(source).Add(delta) }

// ForeignTarget counts a call refused because its target held something the
// driver did not make; kind is a bounded name of what was found.
func (m *Metrics) ForeignTarget(method, kind string) { m.foreign.WithLabelValues(method, kind).Inc() }

// UndecodableRequest counts a request that failed to decode.
func (m *Metrics) UndecodableRequest() { m.undecoded.Inc() }
