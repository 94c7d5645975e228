//go:build integration && bench

package test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

const (
	// holdFinalizer keeps a deleted pod Terminating until the benchmark
	// releases it (kwok, the benchmark's kubelet, waits for it to go).
	holdFinalizer = "meshcsi.io/bench-hold"
	// scaleWindow is how long both are watched waiting for the last pod
	// after the churn (the poller lists three times in it).
	scaleWindow = 15 * time.Second
)

// kwokStages are the pod stages kwok runs instead of its defaults: a pod
// bound to a fake node becomes Running, and a deleted pod is removed once
// it has no finalizer left (the default stage empties the finalizers,
// which would end every Terminating pod at once). Nodes keep kwok's default
// stages (Ready, heartbeat through Leases).
const kwokStages = `apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: bench-pod-running
spec:
  resourceRef:
    apiGroup: v1
    kind: Pod
  selector:
    matchExpressions:
    - key: .metadata.deletionTimestamp
      operator: DoesNotExist
    - key: .status.podIP
      operator: DoesNotExist
  next:
    statusTemplate: |
      {{ $now := Now }}
      phase: Running
      startTime: {{ $now | Quote }}
      hostIP: {{ NodeIPWith .spec.nodeName | Quote }}
      podIP: {{ PodIPWith .spec.nodeName false .metadata.uid .metadata.name .metadata.namespace | Quote }}
      conditions:
      - type: Ready
        status: "True"
        lastTransitionTime: {{ $now | Quote }}
      containerStatuses:
      {{ range .spec.containers }}
      - name: {{ .name | Quote }}
        image: {{ .image | Quote }}
        ready: true
        restartCount: 0
        state:
          running:
            startedAt: {{ $now | Quote }}
      {{ end }}
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: bench-pod-gone
spec:
  resourceRef:
    apiGroup: v1
    kind: Pod
  selector:
    matchExpressions:
    - key: .metadata.deletionTimestamp
      operator: Exists
    - key: .metadata.finalizers
      operator: DoesNotExist
  next:
    delete: true
`

// ScaleSide is one measured cleanup process's figures.
type ScaleSide struct {
	StartSeconds    float64        `json:"start_to_waiting_seconds"`
	PeakRSSMiB      float64        `json:"peak_rss_mib"`
	CPUSeconds      float64        `json:"cpu_seconds"`
	WaitSeconds     float64        `json:"wait_seconds"`
	RequestsStart   map[string]int `json:"requests_start"`
	RequestsWaiting map[string]int `json:"requests_while_waiting"`
	ListsWaiting    int            `json:"lists_while_waiting"`
	ReactionSeconds float64        `json:"reaction_seconds"`
	released        time.Time
}

// ScaleResult is what `make bench-sentinel-scale` prints as one JSON line.
type ScaleResult struct {
	Nodes         int     `json:"nodes"`
	Pods          int     `json:"pods"`
	Blocking      int     `json:"blocking"`
	Terminating   int     `json:"terminating"`
	NodesSeconds  float64 `json:"setup_nodes_ready_seconds"`
	CreateSeconds float64 `json:"setup_pods_created_seconds"`
	RunSeconds    float64 `json:"setup_pods_running_seconds"`
	// ListMiB is the size of one unpaged JSON LIST of every pod: what the
	// poller reads every 5 s.
	ListMiB  float64   `json:"all_pods_list_json_mib"`
	Sentinel ScaleSide `json:"sentinel"`
	Poller   ScaleSide `json:"naive_poller"`
}

// blocker is one pod that uses the driver.
type blocker struct {
	ns, name, node string
	terminating    bool
}

// TestBenchScale simulates MESHCSI_BENCH_NODES nodes with kwok (their
// "kubelets": pods become Running, deleted pods go once no finalizer holds
// them) and MESHCSI_BENCH_PODS pods spread over them, 1 % using the driver,
// a tenth of those Terminating (held by a finalizer). It then measures, one
// after the other on the same cluster, the sentinel and a naive poller (one
// unpaged LIST of every pod each 5 s): peak RSS, CPU, API requests by verb
// (from the audit log: only theirs), and the time from the last blocker's
// release to cleanup done. It asserts only correctness (both clean up, the
// sentinel makes no LIST while it waits); times are reported.
//
// No driver pod runs on the fake nodes (no DaemonSet controller runs, and a
// driver's /metrics cannot be faked behind kwok's pod IPs), so the
// sentinel's per-node check of published volumes lists an empty set and asks
// nobody; the poller has no such check. Both are therefore measured on the
// same thing: waiting for the pods.
func TestBenchScale(t *testing.T) {
	nodes, total := envInt("MESHCSI_BENCH_NODES", 100), envInt("MESHCSI_BENCH_PODS", 5000)
	nBlock := envInt("MESHCSI_BENCH_BLOCKING", total/100)
	nTerm := envInt("MESHCSI_BENCH_TERMINATING", max(nBlock/10, 1))
	if auditLogPath == "" {
		t.Fatal("the control plane was started without the benchmark's audit log (set MESHCSI_BENCH_PODS)")
	}
	ctx := context.Background()
	fast := restConfig()
	fast.QPS, fast.Burst = 5000, 10000
	fast.ContentType = "application/vnd.kubernetes.protobuf"
	cs, err := kubernetes.NewForConfig(fast)
	must(t, err)
	res := ScaleResult{Nodes: nodes, Pods: total, Blocking: nBlock, Terminating: nTerm}

	startKwok(t)
	t0 := time.Now()
	must(t, parallel(32, nodes, func(i int) error {
		_, err := cs.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: kwokNode(i),
			Annotations: map[string]string{"kwok.x-k8s.io/node": "fake"}, Labels: map[string]string{"type": "kwok"}},
			Spec: corev1.NodeSpec{PodCIDR: fmt.Sprintf("10.%d.%d.0/24", 64+i/256, i%256)}}, metav1.CreateOptions{})
		return err
	}))
	waitNodesReady(t, cs, nodes)
	res.NodesSeconds = time.Since(t0).Seconds()
	t.Logf("%d kwok nodes Ready in %.1fs", nodes, res.NodesSeconds)

	const namespaces = 20
	for i := 0; i < namespaces; i++ {
		ensureNamespace(t, fmt.Sprintf("scale-%02d", i))
	}
	// The blockers, spread over the nodes and namespaces; the last nTerm
	// of them will be Terminating, so the very last one is too.
	var blockers []blocker
	for b := 0; b < nBlock; b++ {
		blockers = append(blockers, blocker{ns: fmt.Sprintf("scale-%02d", b%namespaces), name: fmt.Sprintf("b-%05d", b),
			node: kwokNode(b * 7 % nodes), terminating: b >= nBlock-nTerm})
	}
	r := install(t, scaleRelease, scaleDriver)
	t0 = time.Now()
	must(t, parallel(48, total-nBlock, func(i int) error {
		ns := fmt.Sprintf("scale-%02d", i%namespaces)
		_, err := cs.CoreV1().Pods(ns).Create(ctx, benchPod(ns, fmt.Sprintf("p-%05d", i), kwokNode(i%nodes), "", false), metav1.CreateOptions{})
		return err
	}))
	createBlockers(t, cs, blockers, r.driver)
	res.CreateSeconds = time.Since(t0).Seconds()
	waitPodsRunning(t, cs, 10*time.Minute)
	res.RunSeconds = time.Since(t0).Seconds()
	terminate(t, cs, blockers)
	raw, err := admin.CoreV1().RESTClient().Get().AbsPath("/api/v1/pods").SetHeader("Accept", "application/json").DoRaw(ctx)
	must(t, err)
	res.ListMiB = float64(len(raw)) / (1 << 20)
	t.Logf("created %d pods (%d using the driver, %d of them Terminating) in %.1fs, all Running after %.1fs",
		total, nBlock, nTerm, res.CreateSeconds, res.RunSeconds)

	// The sentinel, authenticated as its own ServiceAccount.
	handoff(t, r)
	helmDeletes(t, r)
	r.kubeconfig = tokenKubeconfig(t, r.ns, r.name+"-sentinel")
	s := start(t, r, "run", "--report-interval", "5s")
	res.Sentinel = measureSide(t, cs, s, sentinelUser, blockers)
	if code := s.code; code != 0 {
		t.Fatalf("sentinel run exit %d", code)
	}
	if _, err := admin.StorageV1().CSIDrivers().Get(ctx, r.driver, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("sentinel done but CSIDriver %s: %v", r.driver, err)
	}
	logSince(t, s.output(), res.Sentinel.released)

	// The naive poller, on the same cluster with the same blockers again.
	pollerSetup(t, r.driver)
	createBlockers(t, cs, blockers, r.driver)
	waitPodsRunning(t, cs, 5*time.Minute)
	terminate(t, cs, blockers)
	p := startProc(t, "naive-poller", exec.Command(pollerBin(t), "--kubeconfig", tokenKubeconfig(t, pollerNS, pollerSA),
		"--driver-name", r.driver, "--daemonset", pollerNS+"/driver", "--interval", "5s"))
	res.Poller = measureSide(t, cs, p, pollerUser, blockers)
	if p.code != 0 {
		t.Fatalf("naive poller exit %d", p.code)
	}
	if _, err := admin.StorageV1().CSIDrivers().Get(ctx, r.driver, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("poller done but CSIDriver %s: %v", r.driver, err)
	}

	printScale(res)
	if res.Sentinel.ListsWaiting != 0 {
		t.Errorf("the sentinel made %d LISTs while it waited", res.Sentinel.ListsWaiting)
	}
}

// logSince logs the JSON log lines at or after since with their offset from
// it: where the reaction time goes.
func logSince(t *testing.T, out string, since time.Time) {
	t.Helper()
	for _, line := range strings.Split(out, "\n") {
		var l struct {
			TS    string `json:"ts"`
			Msg   string `json:"msg"`
			Check string `json:"check"`
			Kind  string `json:"kind"`
		}
		if json.Unmarshal([]byte(line), &l) != nil {
			continue
		}
		ts, err := time.Parse("2006-01-02T15:04:05.000Z0700", l.TS)
		if err != nil || ts.Before(since.Truncate(time.Millisecond)) {
			continue
		}
		t.Logf("sentinel +%6.2fs %s %s%s", ts.Sub(since).Seconds(), l.Msg, l.Check, l.Kind)
	}
}

func kwokNode(i int) string { return fmt.Sprintf("kwok-node-%04d", i) }

func benchPod(ns, name, node, driver string, hold bool) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "c", Image: "pause"}}}}
	if driver != "" {
		p.Spec.Volumes = []corev1.Volume{{Name: "sock", VolumeSource: corev1.VolumeSource{CSI: &corev1.CSIVolumeSource{Driver: driver}}}}
	}
	if hold {
		p.Finalizers = []string{holdFinalizer}
	}
	return p
}

// parallel runs fn(0..n-1) on workers goroutines and returns the first error.
func parallel(workers, n int, fn func(i int) error) error {
	jobs := make(chan int)
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				if err := fn(i); err != nil {
					once.Do(func() { first = err })
				}
			}
		}()
	}
	for i := 0; i < n; i++ {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	return first
}

func createBlockers(t *testing.T, cs kubernetes.Interface, bs []blocker, driver string) {
	t.Helper()
	must(t, parallel(16, len(bs), func(i int) error {
		b := bs[i]
		_, err := cs.CoreV1().Pods(b.ns).Create(context.Background(), benchPod(b.ns, b.name, b.node, driver, b.terminating), metav1.CreateOptions{})
		return err
	}))
}

// terminate deletes the blockers marked terminating: their finalizer keeps
// them Terminating until release.
func terminate(t *testing.T, cs kubernetes.Interface, bs []blocker) {
	t.Helper()
	must(t, parallel(16, len(bs), func(i int) error {
		if !bs[i].terminating {
			return nil
		}
		return cs.CoreV1().Pods(bs[i].ns).Delete(context.Background(), bs[i].name, metav1.DeleteOptions{})
	}))
}

// releaseBlocker lets a blocker go as its kubelet would: a running one is deleted
// (kwok removes it), a Terminating one loses its finalizer.
func releaseBlocker(cs kubernetes.Interface, b blocker) error {
	ctx := context.Background()
	if b.terminating {
		_, err := cs.CoreV1().Pods(b.ns).Patch(ctx, b.name, types.MergePatchType, []byte(`{"metadata":{"finalizers":null}}`), metav1.PatchOptions{})
		return err
	}
	return cs.CoreV1().Pods(b.ns).Delete(ctx, b.name, metav1.DeleteOptions{})
}

// measureSide measures one cleanup process (already started) from its start
// to its exit: it waits until the process reports all blockers, releases
// all but the last, watches it wait for the last for scaleWindow, releases
// the last and waits for the process to finish.
func measureSide(t *testing.T, cs kubernetes.Interface, p *proc, user string, bs []blocker) ScaleSide {
	t.Helper()
	var side ScaleSide
	started := time.Now()
	var peak float64
	stopRSS, rssDone := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(rssDone)
		for {
			if v := procStatusKiB(p.cmd.Process.Pid, "VmHWM:"); v > peak {
				peak = v
			}
			select {
			case <-stopRSS:
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	p.waitOutput(t, fmt.Sprintf("waiting for %d pods", len(bs)), 5*time.Minute)
	waitStart := time.Now()
	side.StartSeconds = waitStart.Sub(started).Seconds()
	must(t, parallel(16, len(bs)-1, func(i int) error { return releaseBlocker(cs, bs[i]) }))
	p.waitOutput(t, "waiting for 1 pods", 2*time.Minute)
	// The stated window after the positive signal: it keeps waiting.
	time.Sleep(scaleWindow)
	if !p.running() {
		t.Fatal("cleanup went on while a pod blocks")
	}
	waitEnd := time.Now()
	side.WaitSeconds = waitEnd.Sub(waitStart).Seconds()
	must(t, releaseBlocker(cs, bs[len(bs)-1]))
	released := time.Now()
	side.released = released
	p.wait(t, 5*time.Minute)
	side.ReactionSeconds = time.Since(released).Seconds()
	close(stopRSS)
	<-rssDone
	side.PeakRSSMiB = peak / 1024
	if st := p.cmd.ProcessState; st != nil {
		side.CPUSeconds = (st.UserTime() + st.SystemTime()).Seconds()
	}
	side.RequestsStart = auditCounts(t, user, started, waitStart)
	side.RequestsWaiting = auditCounts(t, user, waitStart, waitEnd)
	for k, v := range side.RequestsWaiting {
		if strings.HasPrefix(k, "list ") {
			side.ListsWaiting += v
		}
	}
	return side
}

// auditCounts counts user's requests received in [from, to) by "verb
// resource[/subresource]".
func auditCounts(t *testing.T, user string, from, to time.Time) map[string]int {
	t.Helper()
	f, err := os.Open(auditLogPath)
	must(t, err)
	defer f.Close()
	out := map[string]int{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<22)
	for sc.Scan() {
		var ev struct {
			Verb string `json:"verb"`
			User struct {
				Username string `json:"username"`
			} `json:"user"`
			ObjectRef *struct {
				Resource    string `json:"resource"`
				Subresource string `json:"subresource"`
			} `json:"objectRef"`
			Received metav1.MicroTime `json:"requestReceivedTimestamp"`
		}
		if json.Unmarshal(sc.Bytes(), &ev) != nil || ev.User.Username != user {
			continue
		}
		if ev.Received.Time.Before(from) || !ev.Received.Time.Before(to) {
			continue
		}
		k := ev.Verb
		if ev.ObjectRef != nil {
			k += " " + ev.ObjectRef.Resource
			if ev.ObjectRef.Subresource != "" {
				k += "/" + ev.ObjectRef.Subresource
			}
		}
		out[k]++
	}
	must(t, sc.Err())
	return out
}

// startKwok runs kwok (MESHCSI_KWOK, built by `make kwok`) as the kubelet
// of the nodes annotated kwok.x-k8s.io/node=fake.
func startKwok(t *testing.T) {
	t.Helper()
	bin := os.Getenv("MESHCSI_KWOK")
	if bin == "" {
		t.Fatal("MESHCSI_KWOK is not set: run make bench-sentinel-scale (it builds kwok with make kwok)")
	}
	dir := t.TempDir()
	stages := filepath.Join(dir, "stages.yaml")
	must(t, os.WriteFile(stages, []byte(kwokStages), 0o600))
	logf, err := os.Create(filepath.Join(dir, "kwok.log"))
	must(t, err)
	cmd := exec.Command(bin, "--kubeconfig", cluster.Kubeconfig(), "--config", stages,
		"--manage-all-nodes=false", "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake")
	cmd.Env = append(os.Environ(), "KWOK_WORKDIR="+dir)
	cmd.Stdout, cmd.Stderr = logf, logf
	must(t, cmd.Start())
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
		_ = logf.Close()
		if t.Failed() {
			if b, err := os.ReadFile(logf.Name()); err == nil {
				if len(b) > 8000 {
					b = b[len(b)-8000:]
				}
				t.Logf("kwok log (tail):\n%s", b)
			}
		}
	})
}

func waitNodesReady(t *testing.T, cs kubernetes.Interface, n int) {
	t.Helper()
	ready := 0
	err := wait.PollUntilContextTimeout(context.Background(), time.Second, 5*time.Minute, true, func(ctx context.Context) (bool, error) {
		l, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{LabelSelector: "type=kwok"})
		if err != nil {
			return false, nil //nolint:nilerr // retried until the deadline
		}
		ready = 0
		for _, nd := range l.Items {
			for _, c := range nd.Status.Conditions {
				if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
					ready++
				}
			}
		}
		return ready == n, nil
	})
	if err != nil {
		t.Fatalf("%d of %d kwok nodes Ready: %v", ready, n, err)
	}
}

// waitPodsRunning waits until no pod (but Terminating ones) is outside
// Running.
func waitPodsRunning(t *testing.T, cs kubernetes.Interface, timeout time.Duration) {
	t.Helper()
	var left []string
	err := wait.PollUntilContextTimeout(context.Background(), 2*time.Second, timeout, true, func(ctx context.Context) (bool, error) {
		l, err := cs.CoreV1().Pods("").List(ctx, metav1.ListOptions{FieldSelector: "status.phase!=Running", Limit: 20})
		if err != nil {
			return false, nil //nolint:nilerr // retried until the deadline
		}
		left = left[:0]
		for _, p := range l.Items {
			if p.DeletionTimestamp == nil && p.Namespace != scaleRelease+"-system" {
				left = append(left, p.Namespace+"/"+p.Name+" "+string(p.Status.Phase))
			}
		}
		return len(left) == 0, nil
	})
	if err != nil {
		t.Fatalf("pods not Running after %s: %v: %v", timeout, left, err)
	}
}

// tokenKubeconfig writes a kubeconfig that authenticates as ServiceAccount
// ns/sa with a bound token.
func tokenKubeconfig(t *testing.T, ns, sa string) string {
	t.Helper()
	ctx := context.Background()
	exp := int64(3600)
	tok, err := admin.CoreV1().ServiceAccounts(ns).CreateToken(ctx, sa,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &exp}}, metav1.CreateOptions{})
	must(t, err)
	base, err := clientcmd.LoadFromFile(cluster.Kubeconfig())
	must(t, err)
	cfg := clientcmdapi.NewConfig()
	for name, c := range base.Clusters {
		cfg.Clusters[name] = c
		cfg.AuthInfos[sa] = &clientcmdapi.AuthInfo{Token: tok.Status.Token}
		cfg.Contexts[sa] = &clientcmdapi.Context{Cluster: name, AuthInfo: sa}
		cfg.CurrentContext = sa
		break
	}
	path := filepath.Join(t.TempDir(), "kubeconfig")
	must(t, clientcmd.WriteToFile(*cfg, path))
	return path
}

// pollerSetup gives the poller what it removes (the CSIDriver again and a
// DaemonSet) and its account: list pods, delete those two.
func pollerSetup(t *testing.T, driver string) {
	t.Helper()
	ctx := context.Background()
	ensureNamespace(t, pollerNS)
	_, err := admin.StorageV1().CSIDrivers().Create(ctx, &storagev1.CSIDriver{ObjectMeta: metav1.ObjectMeta{Name: driver},
		Spec: storagev1.CSIDriverSpec{VolumeLifecycleModes: []storagev1.VolumeLifecycleMode{storagev1.VolumeLifecycleEphemeral}}}, metav1.CreateOptions{})
	must(t, err)
	sel := map[string]string{"app": "naive-driver"}
	_, err = admin.AppsV1().DaemonSets(pollerNS).Create(ctx, &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Name: "driver"},
		Spec: appsv1.DaemonSetSpec{Selector: &metav1.LabelSelector{MatchLabels: sel},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: sel},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "driver", Image: "meshcsi/driver:test"}}}}}}, metav1.CreateOptions{})
	must(t, err)
	_, err = admin.CoreV1().ServiceAccounts(pollerNS).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: pollerSA}}, metav1.CreateOptions{})
	must(t, err)
	name := "naive-poller"
	_, err = admin.RbacV1().ClusterRoles().Create(ctx, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: name}, Rules: []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"list"}},
		{APIGroups: []string{"storage.k8s.io"}, Resources: []string{"csidrivers"}, Verbs: []string{"delete"}},
		{APIGroups: []string{"apps"}, Resources: []string{"daemonsets"}, Verbs: []string{"delete"}},
	}}, metav1.CreateOptions{})
	must(t, err)
	_, err = admin.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: name},
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: name},
		Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: pollerSA, Namespace: pollerNS}}}, metav1.CreateOptions{})
	must(t, err)
}

// pollerBin builds the naive poller (this module's cmd/naive-poller).
func pollerBin(t *testing.T) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "naive-poller")
	build := exec.Command("go", "build", "-o", out, "./cmd/naive-poller")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	must(t, build.Run())
	return out
}

func fmtRequests(m map[string]int) string {
	var reqs []string
	for k, v := range m {
		reqs = append(reqs, fmt.Sprintf("%s=%d", k, v))
	}
	sort.Strings(reqs)
	if len(reqs) == 0 {
		return "none"
	}
	return strings.Join(reqs, ", ")
}

func printScale(res ScaleResult) {
	fmt.Printf("\nmeshcsi-sentinel scale benchmark (kwok: %d nodes, %d pods, %d using the driver, %d of them Terminating)\n",
		res.Nodes, res.Pods, res.Blocking, res.Terminating)
	fmt.Printf("setup: nodes Ready %.1fs, pods created %.1fs, all Running %.1fs; one unpaged JSON LIST of every pod: %.1f MiB\n",
		res.NodesSeconds, res.CreateSeconds, res.RunSeconds, res.ListMiB)
	fmt.Printf("%-44s %14s %14s\n", "measure", "sentinel", "naive poller")
	row := func(name, f string, a, b float64) {
		fmt.Printf("%-44s %14s %14s\n", name, fmt.Sprintf(f, a), fmt.Sprintf(f, b))
	}
	s, p := res.Sentinel, res.Poller
	row("start to 'waiting for all' (s)", "%.1f", s.StartSeconds, p.StartSeconds)
	row("peak RSS (MiB)", "%.1f", s.PeakRSSMiB, p.PeakRSSMiB)
	row("CPU, whole run (s)", "%.2f", s.CPUSeconds, p.CPUSeconds)
	row("LISTs while waiting", "%.0f", float64(s.ListsWaiting), float64(p.ListsWaiting))
	row("wait measured (s)", "%.1f", s.WaitSeconds, p.WaitSeconds)
	row("last blocker released -> cleanup done (s)", "%.2f", s.ReactionSeconds, p.ReactionSeconds)
	fmt.Printf("sentinel requests while waiting: %s\n", fmtRequests(s.RequestsWaiting))
	fmt.Printf("poller requests while waiting:   %s\n", fmtRequests(p.RequestsWaiting))
	fmt.Printf("sentinel requests at start:      %s\n", fmtRequests(s.RequestsStart))
	fmt.Printf("poller requests at start:        %s\n", fmtRequests(p.RequestsStart))
	line, _ := json.Marshal(res)
	fmt.Printf("BENCH_JSON %s\n", line)
}
