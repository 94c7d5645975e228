// Package nodecheck asks the driver on every node how many volumes it still
// has published, before the sentinel deletes the DaemonSet. "No pod object"
// is not "no mount": a force-deleted pod on a live node, or a kubelet whose
// informer still held the CSIDriver, can leave a published volume with no pod
// object, and only that node's driver can unmount it. The driver counts its
// mounts from the mount table and serves the count as the gauge
// meshcsi_published_volumes on /metrics; the sentinel reads it through the
// API server's pod proxy (GET pods/proxy in the install namespace), so it
// needs no network path to the nodes and no broader permission.
package nodecheck

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/pager"

	"github.com/meshcsi/meshcsi/services/sentinel/internal/kube"
)

// Defaults of Config.
const (
	// DefaultPortName is the driver container's metrics port (the chart's).
	DefaultPortName = "http-metrics"
	// DefaultMetric is the driver's count of published volumes, by source.
	DefaultMetric = "meshcsi_published_volumes"
	// KnownMetric is 1 once the driver counted its volumes from the mount
	// table at start; 0 when that failed (its count is then only what it
	// published since).
	KnownMetric = "meshcsi_published_volumes_known"
	// DefaultRequestTimeout bounds one scrape through the proxy.
	DefaultRequestTimeout = 10 * time.Second
)

// ErrNoMetric marks a driver whose /metrics lacks the published-volumes gauge.
var ErrNoMetric = errors.New("no " + DefaultMetric + " in the driver's metrics")

// ErrCountUnknown marks a driver whose count does not cover every mount: it
// could not read its mount table at start (or does not say that it did), so
// its 0 is no proof that the node holds no volume.
var ErrCountUnknown = errors.New("its count of published volumes is unknown (" + KnownMetric +
	" is not 1: it could not read its mount table at start; restart the driver pod to count again)")

// Config says where the driver pods are and how to read them.
type Config struct {
	// Core reads pods and proxies to them; required.
	Core typedcorev1.CoreV1Interface
	// Namespace is the install namespace (the driver pods'); required.
	Namespace string
	// Release is the release name: driver pods carry
	// app.kubernetes.io/instance=<Release> and app.kubernetes.io/component=driver
	// (the chart's selector labels) and are controlled by a DaemonSet.
	Release string
	// PortName names the container port serving /metrics.
	PortName string
	// RequestTimeout bounds one scrape.
	RequestTimeout time.Duration
}

// Checker reads every driver pod's count of published volumes.
type Checker struct {
	cfg Config
}

// New validates cfg and fills its defaults.
func New(cfg Config) (*Checker, error) {
	if cfg.Core == nil || cfg.Namespace == "" || cfg.Release == "" {
		return nil, errors.New("nodecheck: a client, the install namespace and the release are required")
	}
	if cfg.PortName == "" {
		cfg.PortName = DefaultPortName
	}
	if cfg.RequestTimeout == 0 {
		cfg.RequestTimeout = DefaultRequestTimeout
	}
	return &Checker{cfg: cfg}, nil
}

// Node is what one node's driver reported.
type Node struct {
	// Node is the node's name.
	Node string `json:"node"`
	// Pod is the driver pod that was asked (the last one, when several).
	Pod string `json:"pod"`
	// Published is the driver's count; -1 when it could not be read.
	Published int `json:"published"`
	// Problem says why the count could not be read ("" when it was).
	Problem string `json:"problem,omitempty"`
}

// Clear reports whether the node's driver holds no published volume.
func (n Node) Clear() bool { return n.Problem == "" && n.Published == 0 }

// String names the node and what blocks it.
func (n Node) String() string {
	if n.Problem != "" {
		return fmt.Sprintf("%s: %s", n.Node, n.Problem)
	}
	return fmt.Sprintf("%s: %d published volumes (driver pod %s)", n.Node, n.Published, n.Pod)
}

// Result is one check of every node that runs a driver pod.
type Result struct {
	Nodes []Node `json:"nodes"`
}

// Clear reports whether every node's driver holds no published volume.
func (r Result) Clear() bool { return len(r.Holding()) == 0 }

// Holding lists the nodes whose driver holds volumes or could not be read.
func (r Result) Holding() []Node {
	var out []Node
	for _, n := range r.Nodes {
		if !n.Clear() {
			out = append(out, n)
		}
	}
	return out
}

// NodeClear reports whether node's driver was read and holds no volume. A
// node without a driver pod is not clear: nothing could confirm it.
func (r Result) NodeClear(node string) bool {
	for _, n := range r.Nodes {
		if n.Node == node {
			return n.Clear()
		}
	}
	return false
}

// Summary is a one-line list of the holding nodes, at most max of them.
func (r Result) Summary(max int) string {
	h := r.Holding()
	parts := make([]string, 0, len(h))
	for i, n := range h {
		if i == max {
			parts = append(parts, fmt.Sprintf("and %d more", len(h)-max))
			break
		}
		parts = append(parts, n.String())
	}
	return strings.Join(parts, "; ")
}

// Name names the check in the sentinel's reports.
func (c *Checker) Name() string { return "published volumes on the nodes" }

// Blocking runs Check and returns one line per node whose driver holds a
// volume or could not be read; none means every node is clear.
func (c *Checker) Blocking(ctx context.Context) ([]string, error) {
	res, err := c.Check(ctx)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, n := range res.Holding() {
		out = append(out, n.String())
	}
	return out, nil
}

// ClearNodes reports which nodes' drivers were read and hold no published
// volume, and one line for each node that holds some or could not be read:
// a finished (Succeeded or Failed) pod on a clear node no longer blocks
// removal, since the kubelet has torn its volumes down. A node missing from
// the map (no driver pod, or one that could not be read) is not clear.
func (c *Checker) ClearNodes(ctx context.Context) (map[string]bool, []string, error) {
	res, err := c.Check(ctx)
	if err != nil {
		return nil, nil, err
	}
	clear := map[string]bool{}
	var holding []string
	for _, n := range res.Nodes {
		if n.Clear() {
			clear[n.Node] = true
		} else {
			holding = append(holding, n.String())
		}
	}
	return clear, holding, nil
}

// Check asks every scheduled driver pod (the release's pods with the
// driver's selector labels that a DaemonSet controls) for its count. A pod that is not running, or
// whose metrics cannot be read, makes its node "not clear" with the reason:
// only a driver that answers can confirm that it holds nothing. A pod that
// was never scheduled holds nothing and is skipped, as are nodes that run no
// driver pod (no driver serves them). Only an error listing the driver pods
// is returned as an error.
func (c *Checker) Check(ctx context.Context) (Result, error) {
	var pods []*corev1.Pod
	p := pager.New(func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
		return c.cfg.Core.Pods(c.cfg.Namespace).List(ctx, opts)
	})
	p.PageSize = kube.PageSize
	sel := metav1.ListOptions{LabelSelector: "app.kubernetes.io/instance=" + c.cfg.Release + ",app.kubernetes.io/component=driver"}
	err := p.EachListItem(ctx, sel, func(obj runtime.Object) error {
		pod, ok := obj.(*corev1.Pod)
		if !ok {
			return nil
		}
		if ref := metav1.GetControllerOfNoCopy(pod); ref != nil && ref.Kind == "DaemonSet" && pod.Spec.NodeName != "" {
			pods = append(pods, pod)
		}
		return nil
	})
	if err != nil {
		return Result{}, fmt.Errorf("failed to list the driver pods in %s: %w", c.cfg.Namespace, err)
	}
	byNode := map[string]Node{}
	for _, pod := range pods {
		n := c.read(ctx, pod)
		// Several driver pods on one node (an update with surge): keep the
		// most cautious answer.
		if prev, ok := byNode[n.Node]; ok && moreCautious(prev, n) {
			n = prev
		}
		byNode[n.Node] = n
	}
	res := Result{Nodes: make([]Node, 0, len(byNode))}
	for _, n := range byNode {
		res.Nodes = append(res.Nodes, n)
	}
	sort.Slice(res.Nodes, func(i, j int) bool { return res.Nodes[i].Node < res.Nodes[j].Node })
	return res, nil
}

// moreCautious reports whether a says less about the node being clear than b.
func moreCautious(a, b Node) bool {
	if a.Problem != "" || b.Problem != "" {
		return a.Problem != ""
	}
	return a.Published > b.Published
}

// read asks one driver pod for its count.
func (c *Checker) read(ctx context.Context, pod *corev1.Pod) Node {
	n := Node{Node: pod.Spec.NodeName, Pod: pod.Name, Published: -1}
	if pod.Status.Phase != corev1.PodRunning {
		n.Problem = fmt.Sprintf("driver pod %s is %s, so it cannot confirm that it holds no volume", pod.Name, phaseOf(pod))
		return n
	}
	port := portOf(pod, c.cfg.PortName)
	if port == 0 {
		n.Problem = fmt.Sprintf("driver pod %s has no container port %q", pod.Name, c.cfg.PortName)
		return n
	}
	rctx, cancel := context.WithTimeout(ctx, c.cfg.RequestTimeout)
	defer cancel()
	raw, err := c.cfg.Core.Pods(pod.Namespace).ProxyGet("http", pod.Name, fmt.Sprint(port), "/metrics", nil).DoRaw(rctx)
	if err != nil {
		n.Problem = fmt.Sprintf("driver pod %s did not answer: %v", pod.Name, err)
		return n
	}
	count, err := Published(raw)
	if err != nil {
		n.Problem = fmt.Sprintf("driver pod %s: %v", pod.Name, err)
		return n
	}
	n.Published = count
	return n
}

// Published sums meshcsi_published_volumes over its sources in a Prometheus
// text exposition. A count the driver does not vouch for
// (meshcsi_published_volumes_known missing or not 1) is ErrCountUnknown.
func Published(text []byte) (int, error) {
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(string(text)))
	if err != nil {
		return -1, fmt.Errorf("failed to parse the driver's metrics: %w", err)
	}
	if k, ok := families[KnownMetric]; !ok || len(k.GetMetric()) != 1 || k.GetMetric()[0].GetGauge().GetValue() != 1 {
		return -1, ErrCountUnknown
	}
	mf, ok := families[DefaultMetric]
	if !ok {
		return -1, ErrNoMetric
	}
	var sum float64
	for _, m := range mf.GetMetric() {
		sum += m.GetGauge().GetValue()
	}
	return int(sum), nil
}

func portOf(pod *corev1.Pod, name string) int32 {
	for _, c := range pod.Spec.Containers {
		for _, p := range c.Ports {
			if p.Name == name {
				return p.ContainerPort
			}
		}
	}
	return 0
}

func phaseOf(pod *corev1.Pod) string {
	if pod.Status.Phase == "" {
		return "not started"
	}
	return strings.ToLower(string(pod.Status.Phase))
}
