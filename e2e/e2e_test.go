//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshcsi/meshcsi/e2e/env"
	"github.com/meshcsi/meshcsi/libs/roottest"
)

// The suite shares one cluster: starting it costs more than all cases.
var (
	suite     *env.Env
	durations []caseDuration
)

type caseDuration struct {
	name   string
	took   time.Duration
	failed bool
}

const (
	release   = "meshcsi"
	namespace = "meshcsi-system"
	workloads = "e2e-workloads"
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	if missing, msg, fail := roottest.Missing("the e2e suite (kubelet, containerd)"); missing {
		fmt.Fprintln(os.Stderr, "e2e:", msg)
		if fail {
			return 1
		}
		return 0
	}
	dir, err := os.MkdirTemp("", "meshcsi-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer func() { _ = os.RemoveAll(dir) }()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	start := time.Now()
	logf := func(f string, a ...any) {
		fmt.Printf("e2e setup [%5.1fs] %s\n", time.Since(start).Seconds(), fmt.Sprintf(f, a...))
	}
	suite, err = env.Setup(ctx, env.Options{Dir: dir, Logf: logf})
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: setup:", err)
		return 1
	}
	setup := time.Since(start)
	code := m.Run()
	stopStart := time.Now()
	if err := suite.Close(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: teardown:", err)
		code = 1
	}
	report(setup, time.Since(stopStart))
	return code
}

func report(setup, teardown time.Duration) {
	var b strings.Builder
	fmt.Fprintf(&b, "\ne2e durations\n  %-58s %8s\n", "setup: build images, start the cluster, import", setup.Round(100*time.Millisecond))
	for _, d := range durations {
		status := "ok"
		if d.failed {
			status = "FAIL"
		}
		fmt.Fprintf(&b, "  %-58s %8s %s\n", d.name, d.took.Round(100*time.Millisecond), status)
	}
	fmt.Fprintf(&b, "  %-58s %8s\n", "teardown: stop the cluster, clean the node", teardown.Round(100*time.Millisecond))
	fmt.Print(b.String())
	if p := os.Getenv("MESHCSI_E2E_REPORT"); p != "" {
		_ = os.MkdirAll(filepath.Dir(p), 0o755)
		_ = os.WriteFile(p, []byte(b.String()), 0o644)
	}
}

// step runs one case as a subtest and records its duration.
func step(t *testing.T, name string, f func(t *testing.T, ctx context.Context)) bool {
	t.Helper()
	start := time.Now()
	ok := t.Run(name, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
		defer cancel()
		t.Cleanup(func() {
			if t.Failed() {
				diagnose(t)
			}
		})
		f(t, ctx)
	})
	durations = append(durations, caseDuration{name: name, took: time.Since(start), failed: !ok})
	return ok
}

// TestE2E runs the cases in the order of their numbers, which reuses
// installs: 1 to 5 share one install, 6 uninstalls it, 7 installs and
// uninstalls in OpenShift mode, 8 re-installs while the sentinel waits and
// finally uninstalls. A new case gets the next number and its own file.
func TestE2E(t *testing.T) {
	ctx := context.Background()
	if err := suite.EnsureWorkloadNamespace(ctx, workloads); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		f    func(t *testing.T, ctx context.Context)
	}{
		{"1 install: driver ready, socket read-only, unknown source", caseInstall},
		{"2 pod deletion unpublishes, no mount left", casePodDeletion},
		{"3 Prometheus scrapes the driver by its annotations", casePrometheus},
		{"4 driver pod restarted while workloads run", caseDriverRestart},
		{"5 admission policy: bad pods refused at create, owner events, driver still enforces", caseAdmission},
		{"6 helm uninstall hands off to the sentinel", caseUninstall},
		{"7 OpenShift mode: driver SCC created, then removed", caseOpenShift},
		{"8 re-install while the sentinel waits", caseReinstall},
		{"9 SPIRE: the real agent's SVIDs through meshcsi, agent restart", caseSpire},
		{"10 Kubernetes storage e2e suite: CSI ephemeral volumes", caseStorageSuite},
		{"11 removal guards after removal cycles: late pod and namespace deletion refused", caseRemovalGuards},
		{"12 helm upgrade and rollback of the driver under churn", caseUpgrade},
		{"13 driver SIGKILL, containerd and kubelet restarts x10 under churn", caseNodeFaults},
		{"14 node reboot: pods come back, pods deleted meanwhile terminate", caseReboot},
		{"15 failed hand-off (image not pullable, then refused): helm uninstall fails, nothing removed; the documented recovery", caseHandoffFailure},
	}
	for i, c := range cases {
		if !step(t, c.name, c.f) {
			// Each case starts from the state the one before leaves.
			for _, rest := range cases[i+1:] {
				t.Errorf("not run: %s (an earlier case failed)", rest.name)
			}
			return
		}
	}
}

// diagnose logs what helps to understand a failed case: the pods of the
// install namespace and the workloads, the driver's and sentinel's logs, and
// the kubelet's last lines.
func diagnose(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, ns := range []string{namespace, workloads} {
		pods, err := suite.Kube.Kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			continue
		}
		for _, p := range pods.Items {
			sum := suite.PodSummary(ctx, ns, p.Name)
			if len(sum) > 1500 {
				sum = sum[:1500] + "..."
			}
			t.Logf("diagnose: pod %s/%s: %s", ns, p.Name, sum)
			if ns == namespace {
				if raw, err := suite.Kube.Kube.CoreV1().Pods(ns).GetLogs(p.Name, &corev1.PodLogOptions{TailLines: ptr(int64(20))}).DoRaw(ctx); err == nil {
					t.Logf("diagnose: log of %s:\n%s", p.Name, raw)
				}
			}
		}
	}
	if raw, err := os.ReadFile(suite.Cluster.LogPath("kubelet")); err == nil {
		var lines []string
		for _, l := range strings.Split(string(raw), "\n") {
			if strings.Contains(l, "csi") || strings.Contains(l, "meshcsi") || strings.HasPrefix(l, "E") {
				if len(l) > 400 {
					l = l[:400] + "..."
				}
				lines = append(lines, l)
			}
		}
		t.Logf("diagnose: kubelet log, last CSI/error lines:\n%s", lastLines(strings.Join(lines, "\n"), 12))
	}
}

func ptr[T any](v T) *T { return &v }
