//go:build integration

package kubeharness_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/meshcsi/meshcsi/libs/kubeharness"
	"github.com/meshcsi/meshcsi/libs/kubeharness/image"
	"github.com/meshcsi/meshcsi/libs/roottest"
)

// helloSource is the smoke test's workload: it greets, then waits for
// SIGTERM; with "serve" it also answers HTTP on :8080; with "api" it calls the
// API server through the kubernetes Service with its service-account token,
// then the hello Service (a pod on the same bridge), and exits.
const helloSource = `package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
)

const sa = "/var/run/secrets/kubernetes.io/serviceaccount/"

func main() {
	fmt.Println("hello from kubeharness", os.Args[1:])
	if len(os.Args) > 1 && os.Args[1] == "api" {
		if err := callAPI(); err != nil {
			fmt.Println("api error:", err)
			os.Exit(1)
		}
		if err := callHello(); err != nil {
			fmt.Println("hello service error:", err)
			os.Exit(1)
		}
		return
	}
	if len(os.Args) > 1 && os.Args[1] == "serve" {
		go func() {
			_ = http.ListenAndServe(":8080", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				fmt.Fprint(w, "hello from a pod")
			}))
		}()
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	<-sigs
}

func callHello() error {
	host := net.JoinHostPort(os.Getenv("HELLO_SERVICE_HOST"), os.Getenv("HELLO_SERVICE_PORT"))
	resp, err := http.Get("http://" + host + "/")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Printf("hello service via %s: %s\n", host, body)
	return nil
}

func callAPI() error {
	ca, err := os.ReadFile(sa + "ca.crt")
	if err != nil {
		return err
	}
	token, err := os.ReadFile(sa + "token")
	if err != nil {
		return err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	host := net.JoinHostPort(os.Getenv("KUBERNETES_SERVICE_HOST"), os.Getenv("KUBERNETES_SERVICE_PORT"))
	req, _ := http.NewRequest("GET", "https://"+host+"/api/v1/namespaces/"+os.Getenv("POD_NAMESPACE")+"/pods", nil)
	req.Header.Set("Authorization", "Bearer "+string(token))
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	// The default service account may not list pods: a 403 from the API
	// server proves the path through the Service, TLS and the token.
	fmt.Printf("api reachable via %s: %d\n", host, resp.StatusCode)
	if resp.StatusCode != 403 {
		return fmt.Errorf("unexpected status %d: %s", resp.StatusCode, body)
	}
	return nil
}
`

const helloRef = "meshcsi/kubeharness-hello:test"

// hostSnapshot is what a node-mode cluster may change on the host and must
// restore: iptables rules and chains, routes, links, sysctls.
type hostSnapshot struct {
	iptables, ip6tables, routes, links, sysctls string
}

func takeSnapshot(t *testing.T) hostSnapshot {
	t.Helper()
	return hostSnapshot{
		iptables:  normalizedRules(t, "iptables-save"),
		ip6tables: normalizedRules(t, "ip6tables-save"),
		routes:    output(t, "ip", "route", "show", "table", "all"),
		links:     linkNames(t),
		sysctls:   sysctls(t),
	}
}

// normalizedRules returns the rules and user chains of iptables-save, without
// counters or empty built-in tables (which nftables keeps once created).
func normalizedRules(t *testing.T, tool string) string {
	out, err := exec.Command(tool).Output()
	if err != nil {
		return ""
	}
	var lines []string
	table := ""
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		l := sc.Text()
		switch {
		case strings.HasPrefix(l, "*"):
			table = l
		case strings.HasPrefix(l, "-A "):
			lines = append(lines, table+" "+l)
		case strings.HasPrefix(l, ":"):
			name := strings.Fields(l[1:])[0]
			switch name {
			case "INPUT", "OUTPUT", "FORWARD", "PREROUTING", "POSTROUTING":
				if !strings.Contains(l, " ACCEPT ") {
					lines = append(lines, table+" policy "+l)
				}
			default:
				lines = append(lines, table+" chain "+name)
			}
		}
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

func linkNames(t *testing.T) string {
	out := output(t, "ip", "-o", "link", "show")
	var names []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(l)
		if len(f) > 1 {
			names = append(names, f[1])
		}
	}
	sort.Strings(names)
	return strings.Join(names, " ")
}

func sysctls(t *testing.T) string {
	var b strings.Builder
	for _, k := range []string{"net/ipv4/ip_forward", "net/bridge/bridge-nf-call-iptables", "net/ipv6/conf/all/forwarding", "kernel/panic", "kernel/panic_on_oops", "vm/overcommit_memory", "vm/panic_on_oom"} {
		data, err := os.ReadFile("/proc/sys/" + k)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s=%s ", k, strings.TrimSpace(string(data)))
	}
	return b.String()
}

func output(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).Output()
	if err != nil {
		t.Fatalf("%s %v: %v", name, args, err)
	}
	return string(out)
}

func buildHelloImage(t *testing.T, ctx context.Context) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(helloSource), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module hello\n\ngo 1.22\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "hello")
	if err := image.BuildGo(ctx, image.GoBinary{Dir: dir, Package: ".", Output: bin, LDFlags: "-s -w", Env: []string{"GOWORK=off"}}); err != nil {
		t.Fatal(err)
	}
	archive := filepath.Join(dir, "hello.tar")
	if err := image.BuildArchive(image.Spec{
		Ref:        helloRef,
		Files:      []image.File{{Path: "/hello", Source: bin}},
		Entrypoint: []string{"/hello"},
		User:       "65532:65532",
		Labels:     map[string]string{"org.opencontainers.image.title": "hello"},
	}, archive); err != nil {
		t.Fatal(err)
	}
	return archive
}

func TestNodeSmoke(t *testing.T) {
	roottest.Require(t, "the node-mode smoke test (containerd, kubelet)")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	archive := buildHelloImage(t, ctx)
	// Another cluster (a developer's e2e run, or one orphaned by a killed
	// test) would spoil the before/after comparison: wait for the slot first.
	// In CI no developer is around, so whatever holds it is stopped.
	if os.Getenv("CI") == "true" {
		if err := kubeharness.StopNodeSlotHolder(ctx, t.Logf); err != nil {
			t.Fatal(err)
		}
	}
	if err := kubeharness.WaitForNodeSlot(ctx, 10*time.Minute, t.Logf); err != nil {
		t.Fatal(err)
	}

	before := takeSnapshot(t)
	began := time.Now()
	// Developers' e2e runs may hold the machine's node slot: wait for it.
	c, err := kubeharness.Start(ctx, kubeharness.Options{Mode: kubeharness.Node, NodeWait: 10 * time.Minute, Logf: t.Logf})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Logf("node up in %s", time.Since(began).Round(time.Millisecond))
	dir, kubeletDir := c.Dir(), c.KubeletDir()
	pids := c.PIDs()
	stopped := false
	t.Cleanup(func() {
		if t.Failed() {
			for _, name := range []string{"kubelet", "containerd", "kube-controller-manager", "kube-scheduler", "kube-proxy", "kube-apiserver"} {
				data, _ := os.ReadFile(c.LogPath(name))
				lines := strings.Split(strings.TrimSpace(string(data)), "\n")
				if len(lines) > 40 {
					lines = lines[len(lines)-40:]
				}
				t.Logf("last lines of %s:\n%s", name, strings.Join(lines, "\n"))
			}
		}
		if !stopped {
			if err := c.Stop(context.Background()); err != nil {
				t.Errorf("Stop: %v", err)
			}
		}
	})

	// A second node-mode cluster is refused, and its failed Start leaves the
	// running cluster's machine-wide state alone.
	if _, err := kubeharness.Start(ctx, kubeharness.Options{Mode: kubeharness.Node, Logf: t.Logf}); err == nil ||
		!errors.Is(err, kubeharness.ErrNodeBusy) || !strings.Contains(err.Error(), "(dir "+dir+")") {
		t.Errorf("second node-mode Start: err = %v, want a refusal naming %s", err, dir)
	}

	// The guards are in place while the cluster runs.
	guard := output(t, "iptables", "-w", "-t", "mangle", "-S", "KUBEHARNESS-FORWARD")
	for _, want := range []string{"-i khbr0 ! -o khbr0 -j DROP", "! -i khbr0 -o khbr0 -j DROP"} {
		if !strings.Contains(guard, want) {
			t.Errorf("pod traffic guard lacks %q:\n%s", want, guard)
		}
	}
	for _, link := range []string{kubeharness.NodeLink} {
		if _, err := net.InterfaceByName(link); err != nil {
			t.Errorf("link %s missing while the cluster runs: %v", link, err)
		}
	}
	if rss := totalRSS(t, pids); rss > 0 {
		t.Logf("cluster RSS after start: %d MiB", rss>>20)
	}

	if err := c.ImportImages(ctx, archive); err != nil {
		t.Fatal(err)
	}
	client := kubernetes.NewForConfigOrDie(c.RESTConfig())
	ns := "smoke"
	if _, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "default ServiceAccount in "+ns, func(ctx context.Context) (bool, error) {
		_, err := client.CoreV1().ServiceAccounts(ns).Get(ctx, "default", metav1.GetOptions{})
		return err == nil, nil
	})

	container := func(args ...string) corev1.Container {
		return corev1.Container{
			Name: "hello", Image: helloRef, ImagePullPolicy: corev1.PullNever, Args: args,
			Env: []corev1.EnvVar{{Name: "POD_NAMESPACE", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.namespace"}}}},
			SecurityContext: &corev1.SecurityContext{
				AllowPrivilegeEscalation: ptr.To(false), RunAsNonRoot: ptr.To(true),
				Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
			},
		}
	}

	// A pod with a locally built image runs, and its log is served.
	podStart := time.Now()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "hello"},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{container("pod")}, TerminationGracePeriodSeconds: ptr.To[int64](5)},
	}
	if _, err := client.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "pod hello Running", func(ctx context.Context) (bool, error) {
		p, err := client.CoreV1().Pods(ns).Get(ctx, "hello", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		if p.Status.Phase == corev1.PodFailed {
			return false, fmt.Errorf("pod failed: %+v", p.Status)
		}
		return p.Status.Phase == corev1.PodRunning, nil
	})
	t.Logf("pod Running %s after create", time.Since(podStart).Round(time.Millisecond))
	waitFor(t, ctx, "log of pod hello", func(ctx context.Context) (bool, error) {
		logs, err := client.CoreV1().Pods(ns).GetLogs("hello", &corev1.PodLogOptions{}).DoRaw(ctx)
		if err != nil {
			return false, nil
		}
		return strings.Contains(string(logs), "hello from kubeharness [pod]"), nil
	})

	// A DaemonSet becomes ready on the node.
	labels := map[string]string{"app": "hello-ds"}
	ds := &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Name: "hello"},
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{container("serve")}, TerminationGracePeriodSeconds: ptr.To[int64](5)},
			},
		},
	}
	if _, err := client.AppsV1().DaemonSets(ns).Create(ctx, ds, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "daemonset hello ready", func(ctx context.Context) (bool, error) {
		d, err := client.AppsV1().DaemonSets(ns).Get(ctx, "hello", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return d.Status.DesiredNumberScheduled == 1 && d.Status.NumberReady == 1, nil
	})

	// A Service in front of the DaemonSet's pod, for the Job to call.
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "hello"},
		Spec: corev1.ServiceSpec{
			Selector: labels,
			Ports:    []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8080)}},
		},
	}
	if _, err := client.CoreV1().Services(ns).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	// A Job that calls the API server through the kubernetes Service and the
	// DaemonSet's pod through the hello Service (so kube-proxy and bridged
	// Service traffic work) completes.
	job := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: "api"},
		Spec: batchv1.JobSpec{
			BackoffLimit: ptr.To[int32](0),
			Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
				RestartPolicy: corev1.RestartPolicyNever,
				Containers:    []corev1.Container{container("api")},
			}},
		},
	}
	if _, err := client.BatchV1().Jobs(ns).Create(ctx, job, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "job api complete", func(ctx context.Context) (bool, error) {
		j, err := client.BatchV1().Jobs(ns).Get(ctx, "api", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		if j.Status.Failed > 0 {
			return false, fmt.Errorf("job failed: %s", jobLogs(ctx, client, ns))
		}
		return j.Status.Succeeded == 1, nil
	})
	logs := jobLogs(ctx, client, ns)
	if !strings.Contains(logs, "api reachable via 10.96.0.1:443: 403") {
		t.Errorf("job log = %q, want the API reached through the kubernetes Service", logs)
	}
	if !strings.Contains(logs, ":80: hello from a pod") {
		t.Errorf("job log = %q, want the pod reached through the hello Service", logs)
	}

	// The namespace, with its running pods, deletes.
	if err := client.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "namespace deleted", func(ctx context.Context) (bool, error) {
		_, err := client.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})

	// A pod still running at Stop must be cleaned up too.
	if _, err := client.CoreV1().Pods("default").Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "left-running"},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{container("left")}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "pod left-running Running", func(ctx context.Context) (bool, error) {
		p, err := client.CoreV1().Pods("default").Get(ctx, "left-running", metav1.GetOptions{})
		return err == nil && p.Status.Phase == corev1.PodRunning, nil
	})
	if len(kubeharness.PodProcesses()) == 0 {
		t.Error("no process found in pod cgroups while a pod runs")
	}
	// The node survives restarts of its runtime and kubelet, and a reboot.
	checkNodeFaults(t, ctx, c, client, "default", "left-running")

	stopBegan := time.Now()
	stopped = true
	if err := c.Stop(ctx); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	t.Logf("node stopped in %s", time.Since(stopBegan).Round(time.Millisecond))

	// Nothing is left behind.
	for name, pid := range pids {
		if alive(pid) {
			t.Errorf("%s (pid %d) still running after Stop", name, pid)
		}
	}
	if left := kubeharness.ProcessesMentioning(dir); len(left) > 0 {
		t.Errorf("processes mentioning %s left: %v", dir, left)
	}
	if left := kubeharness.PodProcesses(); len(left) > 0 {
		t.Errorf("pod processes left: %v", left)
	}
	mounts, err := kubeharness.MountsBelow(dir, kubeletDir, "/run/netns/cni-")
	if err != nil {
		t.Fatal(err)
	}
	if len(mounts) > 0 {
		t.Errorf("mounts left: %v", mounts)
	}
	after := takeSnapshot(t)
	for _, cmp := range []struct{ what, before, after string }{
		{"iptables rules", before.iptables, after.iptables},
		{"ip6tables rules", before.ip6tables, after.ip6tables},
		{"routes", before.routes, after.routes},
		{"links", before.links, after.links},
		{"sysctls", before.sysctls, after.sysctls},
	} {
		if cmp.before != cmp.after {
			t.Errorf("%s changed by the cluster:\nbefore:\n%s\nafter:\n%s", cmp.what, cmp.before, cmp.after)
		}
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("state dir %s still exists (%v)", dir, err)
	}
}

func jobLogs(ctx context.Context, client kubernetes.Interface, ns string) string {
	pods, err := client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "job-name=api"})
	if err != nil || len(pods.Items) == 0 {
		return fmt.Sprintf("(no job pod: %v)", err)
	}
	logs, err := client.CoreV1().Pods(ns).GetLogs(pods.Items[0].Name, &corev1.PodLogOptions{}).DoRaw(ctx)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	return string(logs)
}

func waitFor(t *testing.T, ctx context.Context, what string, cond wait.ConditionWithContextFunc) {
	t.Helper()
	if err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 2*time.Minute, true, cond); err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := strings.LastIndexByte(string(data), ')')
	return i > 0 && i+2 < len(data) && data[i+2] != 'Z'
}

// totalRSS sums the resident memory of the given processes.
func totalRSS(t *testing.T, pids map[string]int) int64 {
	var total int64
	for _, pid := range pids {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			continue
		}
		for _, l := range strings.Split(string(data), "\n") {
			if strings.HasPrefix(l, "VmRSS:") {
				var kb int64
				if _, err := fmt.Sscanf(strings.TrimSpace(strings.TrimPrefix(l, "VmRSS:")), "%d", &kb); err != nil {
					t.Errorf("bad VmRSS line %q: %v", l, err)
				}
				total += kb << 10
			}
		}
	}
	return total
}
