//go:build bench

package podstart

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"

	"github.com/meshcsi/meshcsi/e2e/env"
	"github.com/meshcsi/meshcsi/libs/roottest"
)

const (
	release   = "meshcsi"
	namespace = "meshcsi-system"
	benchNS   = "podstart-bench"
	// kindLabel marks a benchmark pod's volume kind.
	kindLabel = "meshcsi-bench/kind"
)

func envInt(name string, def int) int {
	var v int
	if _, err := fmt.Sscan(os.Getenv(name), &v); err == nil && v > 0 {
		return v
	}
	return def
}

// TestBenchPodStart starts a node-mode cluster (env.Setup, as the e2e suite),
// installs the chart and creates MESHCSI_BENCH_PODS (50) pods of each volume
// kind, MESHCSI_BENCH_CONCURRENCY (5) at a time, the kinds interleaved round
// by round so a change in the machine's load hits all three alike; each
// round's pods are deleted before the next. A pod's start is the time from
// just before its create request to the moment an informer sees it Running.
// The pods are the e2e workload pod (the demo agent's client, non-root,
// read-only root) and differ only in their volume. It asserts correctness
// only: every pod Running, one publish per meshcsi pod, every pod gone and
// no volume published at the end; the times are reported.
func TestBenchPodStart(t *testing.T) {
	roottest.Require(t, "the pod start benchmark (kubelet, containerd)")
	perKind, conc := envInt("MESHCSI_BENCH_PODS", 50), envInt("MESHCSI_BENCH_CONCURRENCY", 5)
	ctx := context.Background()
	began := time.Now()
	e, err := env.Setup(ctx, env.Options{Dir: t.TempDir(), Logf: t.Logf})
	if err != nil {
		t.Fatalf("setup: %v", err)
	}
	t.Cleanup(func() {
		if err := e.Close(context.Background()); err != nil {
			t.Errorf("teardown: %v", err)
		}
	})
	if out, err := e.Install(ctx, release, namespace, nil); err != nil {
		t.Fatalf("helm install: %v\n%s", err, out)
	}
	cs := e.Kube.Kube
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: benchNS}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// A new namespace's default ServiceAccount appears a moment later.
	if err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		_, err := cs.CoreV1().ServiceAccounts(benchNS).Get(ctx, "default", metav1.GetOptions{})
		return err == nil, nil
	}); err != nil {
		t.Fatalf("no default ServiceAccount in %s: %v", benchNS, err)
	}

	// Running times, as the informer sees them.
	var mu sync.Mutex
	running := map[string]time.Time{}
	seen := make(chan struct{}, 1)
	factory := informers.NewSharedInformerFactoryWithOptions(cs, 0, informers.WithNamespace(benchNS))
	inf := factory.Core().V1().Pods().Informer()
	record := func(obj any) {
		p, ok := obj.(*corev1.Pod)
		if !ok || p.Status.Phase != corev1.PodRunning {
			return
		}
		mu.Lock()
		if _, done := running[p.Name]; !done {
			running[p.Name] = time.Now()
		}
		mu.Unlock()
		select {
		case seen <- struct{}{}:
		default:
		}
	}
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: record, UpdateFunc: func(_, o any) { record(o) }}); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	defer close(stop)
	factory.Start(stop)
	if !cache.WaitForCacheSync(stop, inf.HasSynced) {
		t.Fatal("pod informer did not sync")
	}

	var driver *corev1.Pod
	if err := wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		driver, err = e.DriverPod(ctx, namespace, release)
		return err == nil, nil
	}); err != nil {
		t.Fatalf("driver pod not running: %v", err)
	}
	before := publishHistogram(ctx, t, e, driver)

	created := map[string]time.Time{}
	starts := map[string][]time.Duration{}
	template := env.WorkloadPod(benchNS, "x", "")
	for round := 0; round*conc < perKind; round++ {
		n := min(conc, perKind-round*conc)
		for _, kind := range Kinds {
			var names []string
			for i := 0; i < n; i++ {
				names = append(names, fmt.Sprintf("%s-%03d", kindName(kind), round*conc+i))
			}
			var wg sync.WaitGroup
			errs := make(chan error, n)
			for _, name := range names {
				p := WithVolume(template, kind, e.AgentDir)
				p.Name = name
				p.Labels = map[string]string{kindLabel: kindName(kind), "app": env.WorkloadApp}
				wg.Add(1)
				go func() {
					defer wg.Done()
					at := time.Now()
					mu.Lock()
					created[p.Name] = at
					mu.Unlock()
					if _, err := cs.CoreV1().Pods(benchNS).Create(ctx, p, metav1.CreateOptions{}); err != nil {
						errs <- fmt.Errorf("create %s: %w", p.Name, err)
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			waitRunning(t, &mu, running, seen, names, func(name string) string { return e.PodSummary(ctx, benchNS, name) })
			mu.Lock()
			for _, name := range names {
				starts[kind] = append(starts[kind], running[name].Sub(created[name]))
			}
			mu.Unlock()
			if err := e.DeletePodsAndWait(ctx, benchNS, kindLabel+"="+kindName(kind), 2*time.Minute); err != nil {
				t.Fatal(err)
			}
		}
	}

	after := publishHistogram(ctx, t, e, driver)
	pub, err := after.Sub(before)
	if err != nil {
		t.Fatal(err)
	}
	if int(pub.Count) < perKind {
		t.Errorf("the driver served %v NodePublishVolume calls for %d meshcsi pods", pub.Count, perKind)
	}
	res := Result{PodsPerKind: perKind, Concurrency: conc, Start: map[string]Stats{}, PublishCalls: int(pub.Count)}
	for _, k := range Kinds {
		res.Start[k] = Summarize(starts[k])
	}
	if pub.Count > 0 {
		res.PublishMeanMs = 1000 * pub.Sum / pub.Count
		res.PublishP50Ms = 1000 * pub.Quantile(0.50)
		res.PublishP95Ms = 1000 * pub.Quantile(0.95)
	}
	if m := res.Start[Meshcsi].Mean; m > 0 {
		res.DriverShare = res.PublishMeanMs / m
	}
	// Every pod gone: no volume may stay published.
	raw, err := e.DriverMetrics(ctx, driver)
	if err != nil {
		t.Fatal(err)
	}
	if n, _, err := env.MetricValue(raw, "meshcsi_published_volumes"); err != nil || n != 0 {
		t.Errorf("meshcsi_published_volumes after every pod is gone: %v (%v)", n, err)
	}
	res.Seconds = time.Since(began).Seconds()
	res.Print(os.Stdout)
}

func kindName(kind string) string {
	switch kind {
	case EmptyDir:
		return "emptydir"
	case HostPath:
		return "hostpath"
	}
	return kind
}

// waitRunning waits until the informer has seen every named pod Running.
func waitRunning(t *testing.T, mu *sync.Mutex, running map[string]time.Time, seen <-chan struct{}, names []string, summary func(string) string) {
	t.Helper()
	deadline := time.After(3 * time.Minute)
	for {
		mu.Lock()
		var left []string
		for _, n := range names {
			if _, ok := running[n]; !ok {
				left = append(left, n)
			}
		}
		mu.Unlock()
		if len(left) == 0 {
			return
		}
		select {
		case <-seen:
		case <-deadline:
			t.Fatalf("pods not Running after 3 min: %s: %s", left[0], summary(left[0]))
		}
	}
}

func publishHistogram(ctx context.Context, t *testing.T, e *env.Env, driver *corev1.Pod) Histogram {
	t.Helper()
	raw, err := e.DriverMetrics(ctx, driver)
	if err != nil {
		t.Fatal(err)
	}
	h, err := ReadHistogram(raw, "meshcsi_csi_operation_duration_seconds", "method", "NodePublishVolume")
	if err != nil {
		// No publish yet: the series appears with the first call.
		return Histogram{}
	}
	return h
}
