// Command demo walks through meshcsi on a real local cluster:
//
//	demo up   --dir _output/demo   # build, start the cluster, install, use, uninstall
//	demo down --dir _output/demo   # stop the cluster and remove everything
//
// `up` builds the images, starts a single-node cluster and a demo agent that
// serves a Unix socket in a host directory, helm-installs meshcsi, runs a
// workload pod that talks to the agent through the CSI volume, shows the
// driver's metrics, runs `helm uninstall` and shows the sentinel waiting for
// the workload, deletes the workload and shows the sentinel finishing with
// nothing of the release left. The cluster keeps running for a look around
// until `down`.
//
// With --agent spire (the default; the Makefile's DEMO_AGENT) the workload is
// served by the real SPIRE server and agent (spire.go): it fetches its
// X509-SVID through the CSI volume, also after the agent pod is replaced.
// --agent demo keeps the quick stand-in agent.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/meshcsi/meshcsi/e2e/env"
	"github.com/meshcsi/meshcsi/e2e/spire"
	"github.com/meshcsi/meshcsi/libs/kubeharness"
)

const (
	release   = "meshcsi"
	namespace = "meshcsi-system"
	workloads = "demo"
	workload  = "demo-workload"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "demo: error:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return errors.New("usage: demo up|down --dir DIR")
	}
	fs := flag.NewFlagSet("demo "+args[0], flag.ContinueOnError)
	dir := fs.String("dir", "_output/demo", "where the cluster, images and agent socket live")
	version := fs.String("version", "demo", "version stamped into the binaries")
	agent := fs.String("agent", defaultAgent(), "the node agent: spire (the real SPIRE server and agent, built once by `make spire`) or demo (the quick stand-in); default from $"+agentEnv)
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	abs, err := filepath.Abs(*dir)
	if err != nil {
		return err
	}
	switch args[0] {
	case "up":
		if err := down(ctx, abs, false); err != nil {
			return err
		}
		if *agent != agentSPIRE && *agent != agentDemo {
			return fmt.Errorf("unknown --agent %q (want %s or %s)", *agent, agentSPIRE, agentDemo)
		}
		return up(ctx, abs, *version, *agent)
	case "down":
		return down(ctx, abs, true)
	default:
		return fmt.Errorf("unknown command %q (want up or down)", args[0])
	}
}

var (
	started = time.Now()
	stepN   = 0
)

// steps is 12 with the SPIRE agent.
var steps = 10

func step(format string, a ...any) {
	stepN++
	fmt.Printf("\n\033[1m==> [%d/%d] %s\033[0m  (%.0fs)\n", stepN, steps, fmt.Sprintf(format, a...), time.Since(started).Seconds())
}

func info(format string, a ...any) { fmt.Printf("    %s\n", fmt.Sprintf(format, a...)) }

func up(ctx context.Context, dir, version, agent string) error {
	if os.Geteuid() != 0 {
		return errors.New("the demo runs a kubelet and containerd: run it as root")
	}
	if agent == agentSPIRE {
		steps = 12
	}
	step("Building images and starting the local cluster")
	e, err := env.Setup(ctx, env.Options{
		Dir: dir, Version: version, Logf: info, Detached: true,
	})
	if err != nil {
		return err
	}
	ok := false
	defer func() {
		_ = e.StopAgent()
		if !ok {
			info("stopping the cluster after the failure")
			_ = e.Close(context.WithoutCancel(ctx))
		}
	}()
	kc := e.Kube.Kube
	var sp *spireDemo
	var values map[string]string
	if agent == agentSPIRE {
		if sp, err = setUpSpire(ctx, e, dir, version); err != nil {
			return err
		}
		values = sp.values()
	}

	if sp != nil {
		step("helm install meshcsi (source %q = %s, the SPIRE agent's socket directory on the node)", spireSource, sp.socketDir)
	} else {
		step("helm install meshcsi (source %q = %s on the node)", env.Source, e.AgentDir)
	}
	out, err := e.Install(ctx, release, namespace, values)
	if err != nil {
		return err
	}
	printIndented(firstLines(out, 6))
	ds, err := kc.AppsV1().DaemonSets(namespace).Get(ctx, release+"-driver", metav1.GetOptions{})
	if err != nil {
		return err
	}
	info("DaemonSet %s/%s: %d/%d driver pods ready", namespace, ds.Name, ds.Status.NumberReady, ds.Status.DesiredNumberScheduled)
	if err := poll(ctx, time.Minute, func(ctx context.Context) error {
		n, err := kc.StorageV1().CSINodes().Get(ctx, kubeharness.NodeName, metav1.GetOptions{})
		if err != nil || len(n.Spec.Drivers) == 0 {
			return fmt.Errorf("driver not registered yet: %w", err)
		}
		info("CSINode %s lists driver %s: the driver registered itself with the kubelet", n.Name, n.Spec.Drivers[0].Name)
		return nil
	}); err != nil {
		return err
	}

	if sp != nil {
		step("The SPIRE %s server and agent (k8s_psat node attestation, k8s workload attestor)", spire.Version)
		if err := sp.deploy(ctx); err != nil {
			return err
		}
	}
	step("Running workload %s/%s (Pod Security \"restricted\") with the CSI volume", workloads, workload)
	if err := e.EnsureWorkloadNamespace(ctx, workloads); err != nil {
		return err
	}
	if sp != nil {
		if err := sp.runWorkload(ctx); err != nil {
			return err
		}
		step("Restarting the SPIRE agent while the workload runs")
		if err := sp.restartAgent(ctx); err != nil {
			return err
		}
	} else if err := demoWorkload(ctx, e); err != nil {
		return err
	}

	step("The driver's metrics (GET /metrics on the driver pod)")
	pod, err := e.DriverPod(ctx, namespace, release)
	if err != nil {
		return err
	}
	expo, err := e.DriverMetrics(ctx, pod)
	if err != nil {
		return err
	}
	for _, line := range strings.Split(expo, "\n") {
		if strings.HasPrefix(line, "meshcsi_") && !strings.Contains(line, "_bucket") {
			info("%s", line)
		}
	}

	step("helm uninstall meshcsi, while the workload still uses the volume")
	out, took, err := e.Uninstall(ctx, release, namespace)
	if err != nil {
		return err
	}
	printIndented(out)
	info("helm uninstall returned in %.1fs; the driver stays until no pod uses it", took.Seconds())

	step("The sentinel waits for the workload (kubectl -n %s logs -f job/%s-sentinel)", namespace, release)
	logs := make(chan string, 100)
	lctx, stopLogs := context.WithCancel(ctx)
	defer stopLogs()
	go followSentinel(lctx, e, logs)
	deadline := time.After(20 * time.Second)
	seenWait := false
waiting:
	for {
		select {
		case l := <-logs:
			info("sentinel | %s", l)
			if strings.Contains(l, workload) {
				seenWait = true
			}
		case <-deadline:
			break waiting
		}
		if seenWait {
			// Show one more report and move on.
			select {
			case l := <-logs:
				info("sentinel | %s", l)
			case <-time.After(6 * time.Second):
			}
			break
		}
	}
	if evs, err := e.SentinelEvents(ctx, release, namespace); err == nil {
		for _, ev := range lastN(evs, 3) {
			info("event on job/%s-sentinel: %s", release, ev)
		}
	}

	step("Deleting the workload")
	start := time.Now()
	if err := e.DeletePodsAndWait(ctx, workloads, env.WorkloadSelector, 2*time.Minute); err != nil {
		return err
	}
	info("pod %s/%s terminated in %.1fs (its volume was unmounted by the driver)", workloads, workload, time.Since(start).Seconds())

	step("The sentinel removes the release, itself last")
	gone := make(chan error, 1)
	go func() { gone <- e.WaitReleaseGone(ctx, release, namespace, 3*time.Minute) }()
	for done := false; !done; {
		select {
		case l := <-logs:
			info("sentinel | %s", l)
		case err := <-gone:
			if err != nil {
				return err
			}
			done = true
		}
	}
	stopLogs()

	step("Nothing of the release is left")
	left, err := e.ReleaseObjects(ctx, release, namespace)
	if err != nil {
		return err
	}
	if len(left) != 0 {
		return fmt.Errorf("objects left: %v", left)
	}
	info("no object labelled app.kubernetes.io/instance=%s and none of its names, in any namespace or cluster-wide", release)
	n, err := kc.StorageV1().CSINodes().Get(ctx, kubeharness.NodeName, metav1.GetOptions{})
	if err == nil {
		info("CSINode %s drivers: %d", n.Name, len(n.Spec.Drivers))
	}

	step("Done in %.0fs", time.Since(started).Seconds())
	info("the cluster keeps running: KUBECONFIG=%s", e.Cluster.Kubeconfig())
	info("tear it down with: make demo-down")
	ok = true
	return nil
}

// followSentinel streams the sentinel pod's log lines, shortened.
func followSentinel(ctx context.Context, e *env.Env, out chan<- string) {
	var pod *corev1.Pod
	_ = poll(ctx, time.Minute, func(ctx context.Context) error {
		p, err := e.SentinelPod(ctx, release, namespace)
		if err != nil || p.Status.Phase == corev1.PodPending {
			return fmt.Errorf("not running yet: %w", err)
		}
		pod = p
		return nil
	})
	if pod == nil {
		return
	}
	s, err := e.Kube.Kube.CoreV1().Pods(namespace).GetLogs(pod.Name, &corev1.PodLogOptions{Follow: true}).Stream(ctx)
	if err != nil {
		out <- "(cannot follow the log: " + err.Error() + ")"
		return
	}
	defer func() { _ = s.Close() }()
	sc := bufio.NewScanner(s)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line, ok := readable(sc.Text())
		if !ok {
			continue
		}
		select {
		case out <- line:
		case <-ctx.Done():
			return
		}
	}
}

// readable turns one of the sentinel's JSON log lines into "msg key=value
// ...", keeping the fields a person follows; client-go's own info lines are
// dropped.
func readable(l string) (string, bool) {
	var m map[string]any
	if err := json.Unmarshal([]byte(l), &m); err != nil {
		return shorten(l), !strings.HasPrefix(l, "I")
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%v", m["msg"])
	for _, k := range []string{"blockers", "waited", "kind", "namespace", "name", "outcome", "objects", "result", "check"} {
		v, ok := m[k]
		if !ok || v == "" {
			continue
		}
		fmt.Fprintf(&b, " %s=%v", k, v)
	}
	return shorten(b.String()), true
}

func shorten(l string) string {
	if len(l) > 200 {
		return l[:197] + "..."
	}
	return l
}

func down(ctx context.Context, dir string, verbose bool) error {
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) { //nolint:gosec // dir is the operator's --dir
		if verbose {
			fmt.Println("demo: nothing to tear down in", dir)
		}
		return nil
	}
	clusterDir := filepath.Join(dir, "cluster")
	c, err := kubeharness.Attach(clusterDir)
	if err == nil {
		fmt.Println("demo: stopping the local cluster in", clusterDir)
		if err := c.Stop(ctx); err != nil {
			// A stop that tripped over a half-removed rule or an already
			// stopped component has still stopped the cluster if none of its
			// processes is left.
			if left := kubeharness.ProcessesMentioning(clusterDir); len(left) > 0 {
				return fmt.Errorf("failed to stop the cluster (processes %v left): %w", left, err)
			}
			fmt.Println("demo: warning: the cluster stopped with an error:", err)
		}
	} else if verbose {
		fmt.Println("demo: no running cluster:", err)
	}
	// The agent's directory is a shared bind mount onto itself (env.Setup).
	if err := env.UnshareAgentDir(dir); err != nil {
		return err
	}
	if err := unshareSpireDir(dir); err != nil {
		return err
	}
	if err := os.RemoveAll(dir); err != nil { //nolint:gosec // dir is the operator's --dir, the demo's own
		return fmt.Errorf("failed to remove %s: %w", dir, err)
	}
	if verbose {
		fmt.Println("demo: removed", dir)
	}
	return nil
}

func poll(ctx context.Context, timeout time.Duration, cond func(context.Context) error) error {
	var last error
	err := wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		last = cond(ctx)
		return last == nil, nil
	})
	if err != nil {
		return fmt.Errorf("%w: %w", err, last)
	}
	return nil
}

func printIndented(s string) {
	for _, l := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		info("| %s", l)
	}
}

func firstLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[:n]
	}
	return strings.Join(lines, "\n")
}

func lastN(s []string, n int) []string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// demoWorkload runs the workload that pings the stand-in agent.
func demoWorkload(ctx context.Context, e *env.Env) error {
	info("volumes: [{name: agent-socket, csi: {driver: %s, readOnly: true, volumeAttributes: {source: %s}}}]", env.DriverName, env.Source)
	p, err := e.StartWorkload(ctx, workloads, workload)
	if err != nil {
		return err
	}
	info("agent    | ping #%d from %s at %s", p.Seq, p.Name, p.At.Format("15:04:05.000"))
	info("the workload reached the agent through the volume; its attempt to write into it: %s", p.Write)
	return nil
}
