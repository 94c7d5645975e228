//go:build integration && bench

package test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// BenchResult is what `make bench` prints as one JSON line.
type BenchResult struct {
	Pods              int            `json:"pods"`
	Blocking          int            `json:"blocking"`
	CreateSeconds     float64        `json:"create_seconds"`
	SyncSeconds       float64        `json:"sync_seconds"`
	PeakRSSMiB        float64        `json:"peak_rss_mib"`
	IdleRSSMiB        float64        `json:"idle_rss_mib"`
	PodsCached        int            `json:"pods_cached"`
	WaitSeconds       float64        `json:"wait_seconds"`
	ListsWhileWaiting int            `json:"lists_while_waiting"`
	RequestsWaiting   map[string]int `json:"requests_while_waiting"`
	ReactionSeconds   float64        `json:"reaction_seconds"`
}

// measureWindow is how long requests are counted while the sentinel waits.
const measureWindow = 10 * time.Second

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// TestBench measures the sentinel (a separate process) with many pods in a
// real API server: peak RSS, API requests while it waits (from the API
// server's apiserver_request_total, the only other client being this test,
// which only deletes), and the time from the last blocker's deletion to the
// end of cleanup. Targets: peak RSS <= 64 MiB at any cluster size (the store
// holds only the pods that use the driver), 0 LISTs while waiting.
func TestBench(t *testing.T) {
	total, blocking := envInt("MESHCSI_BENCH_PODS", 10000), envInt("MESHCSI_BENCH_BLOCKING", 300)
	ctx := context.Background()
	r := install(t, "bench", "bench.csi.meshcsi.io")
	fast := restConfig()
	fast.QPS, fast.Burst = 5000, 10000
	fast.ContentType = "application/vnd.kubernetes.protobuf"
	cs, err := kubernetes.NewForConfig(fast)
	must(t, err)
	const namespaces = 20
	for i := 0; i < namespaces; i++ {
		ensureNamespace(t, fmt.Sprintf("bench-%02d", i))
	}
	created := time.Now()
	var blockers []string
	jobs := make(chan int)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	for w := 0; w < 24; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				ns := fmt.Sprintf("bench-%02d", i%namespaces)
				p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("p-%05d", i), Namespace: ns},
					Spec: corev1.PodSpec{NodeName: nodeName, Containers: []corev1.Container{{Name: "c", Image: "pause"}}}}
				if i%(total/blocking) == 0 && i/(total/blocking) < blocking {
					p.Spec.Volumes = []corev1.Volume{{Name: "sock", VolumeSource: corev1.VolumeSource{CSI: &corev1.CSIVolumeSource{Driver: r.driver}}}}
					mu.Lock()
					blockers = append(blockers, ns+"/"+p.Name)
					mu.Unlock()
				}
				if _, err := cs.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{}); err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	for i := 0; i < total; i++ {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	must(t, firstErr)
	res := BenchResult{Pods: total, Blocking: len(blockers), CreateSeconds: time.Since(created).Seconds()}
	t.Logf("created %d pods (%d blocking) in %.1fs", total, len(blockers), res.CreateSeconds)

	handoff(t, r)
	helmDeletes(t, r)
	runStart := time.Now()
	s := start(t, r, "run", "--report-interval", "5s")
	var peak float64
	stopRSS := make(chan struct{})
	rssDone := make(chan struct{})
	go func() {
		defer close(rssDone)
		for {
			if v := procStatusKiB(s.cmd.Process.Pid, "VmHWM:"); v > peak {
				peak = v
			}
			select {
			case <-stopRSS:
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	s.waitOutput(t, "caches synced", 120*time.Second)
	res.SyncSeconds = time.Since(runStart).Seconds()
	s.waitOutput(t, fmt.Sprintf("waiting for %d pods", len(blockers)), 60*time.Second)
	before := requestCounts(t)
	waitStart := time.Now()
	// Delete all blockers but the last, concurrently, then let it wait a while.
	dj := make(chan string)
	var dwg sync.WaitGroup
	for w := 0; w < 16; w++ {
		dwg.Add(1)
		go func() {
			defer dwg.Done()
			zero := int64(0)
			for k := range dj {
				ns, name, _ := strings.Cut(k, "/")
				_ = cs.CoreV1().Pods(ns).Delete(ctx, name, metav1.DeleteOptions{GracePeriodSeconds: &zero})
			}
		}()
	}
	for _, k := range blockers[:len(blockers)-1] {
		dj <- k
	}
	close(dj)
	dwg.Wait()
	s.waitOutput(t, "waiting for 1 pods", 60*time.Second)
	// The measurement window: what the sentinel asks of the API server
	// while it waits for the last pod.
	time.Sleep(measureWindow)
	after := requestCounts(t)
	// Resident memory while it waits for the last pod, after the churn.
	res.IdleRSSMiB = procStatusKiB(s.cmd.Process.Pid, "VmRSS:") / 1024
	if m := regexp.MustCompile(`"pods_cached":(\d+)`).FindStringSubmatch(s.output()); m != nil {
		res.PodsCached, _ = strconv.Atoi(m[1])
	}
	if !s.running() || !driverObjectsExist(t, r) {
		t.Fatal("sentinel went on while a pod blocks")
	}
	res.WaitSeconds = time.Since(waitStart).Seconds()
	res.RequestsWaiting = map[string]int{}
	for k, v := range after {
		if d := v - before[k]; d > 0 && !strings.HasPrefix(k, "DELETE pods") {
			res.RequestsWaiting[k] = d
			if strings.HasPrefix(k, "LIST ") {
				res.ListsWhileWaiting += d
			}
		}
	}
	lastNS, lastName, _ := strings.Cut(blockers[len(blockers)-1], "/")
	deletePod(t, lastNS, lastName)
	deleted := time.Now()
	if code := s.wait(t, 60*time.Second); code != 0 {
		t.Fatalf("run exit %d", code)
	}
	res.ReactionSeconds = time.Since(deleted).Seconds()
	close(stopRSS)
	<-rssDone
	res.PeakRSSMiB = peak / 1024

	fmt.Printf("\nmeshcsi-sentinel benchmark (%d pods, %d blocking)\n", res.Pods, res.Blocking)
	fmt.Printf("%-40s %12s %10s\n", "measure", "value", "target")
	fmt.Printf("%-40s %12.1f %10s\n", "pod creation (s)", res.CreateSeconds, "")
	fmt.Printf("%-40s %12.2f %10s\n", "start to caches synced (s)", res.SyncSeconds, "")
	fmt.Printf("%-40s %12.1f %10s\n", "peak RSS (MiB)", res.PeakRSSMiB, "<= 64")
	fmt.Printf("%-40s %12.1f %10s\n", "RSS while waiting (MiB)", res.IdleRSSMiB, "")
	fmt.Printf("%-40s %12d %10s\n", "pods in its store", res.PodsCached, "")
	fmt.Printf("%-40s %12d %10s\n", fmt.Sprintf("LISTs while waiting (%.0f s)", res.WaitSeconds), res.ListsWhileWaiting, "0")
	var reqs []string
	for k, v := range res.RequestsWaiting {
		reqs = append(reqs, fmt.Sprintf("%s=%d", k, v))
	}
	sort.Strings(reqs)
	fmt.Printf("%-40s %s\n", "all requests while waiting", strings.Join(reqs, ", "))
	fmt.Printf("%-40s %12.2f %10s\n", "last blocker deleted -> cleanup done (s)", res.ReactionSeconds, "")
	line, _ := json.Marshal(res)
	fmt.Printf("BENCH_JSON %s\n", line)
	// Memory and requests are properties of the sentinel; the reaction time
	// is mostly two consistent paged reads of every pod, so it grows with the
	// cluster and the machine's load: reported, not a pass/fail target.
	if res.PeakRSSMiB > 64 || res.ListsWhileWaiting != 0 {
		t.Errorf("targets missed: %s", line)
	}
}

// procStatusKiB returns a /proc/<pid>/status field in KiB (VmHWM: the peak
// resident set, VmRSS: the current one).
func procStatusKiB(pid int, field string) float64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), field) {
			v, _ := strconv.ParseFloat(strings.Fields(sc.Text())[1], 64)
			return v
		}
	}
	return 0
}

// requestCounts reads apiserver_request_total as "VERB resource" -> count.
func requestCounts(t *testing.T) map[string]int {
	t.Helper()
	raw, err := admin.CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(context.Background())
	must(t, err)
	out := map[string]int{}
	for _, line := range strings.Split(string(raw), "\n") {
		if !strings.HasPrefix(line, "apiserver_request_total{") {
			continue
		}
		labels, val, _ := strings.Cut(strings.TrimPrefix(line, "apiserver_request_total{"), "} ")
		get := func(k string) string {
			i := strings.Index(labels, k+`="`)
			if i < 0 {
				return ""
			}
			rest := labels[i+len(k)+2:]
			return rest[:strings.Index(rest, `"`)]
		}
		if get("resource") == "" {
			continue
		}
		n, _ := strconv.ParseFloat(val, 64)
		out[get("verb")+" "+get("resource")] += int(n)
	}
	return out
}
