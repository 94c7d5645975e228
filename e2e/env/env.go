// Package env sets up what the e2e suite and the demo run against: a real
// single-node cluster from the harness, meshcsi's images built with the
// harness's Go image builder and imported into the node, a stand-in node
// agent serving a Unix socket in a host directory, and helm. It also holds
// the waits and checks both use, so the demo shows what the suite asserts.
package env

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/meshcsi/meshcsi/e2e/agent"
	"github.com/meshcsi/meshcsi/e2e/helm"
	"github.com/meshcsi/meshcsi/e2e/images"
	"github.com/meshcsi/meshcsi/e2e/kube"
	"github.com/meshcsi/meshcsi/libs/kubeharness"
)

// Names used throughout.
const (
	// DriverName is the CSI driver name (the chart's default).
	DriverName = "csi.meshcsi.io"
	// Source is the name of the demo agent's source.
	Source = "demo"
	// ImageTag is the tag of the locally built images.
	ImageTag = "e2e"
	// AgentSocketName is the agent's socket file name in its directory.
	AgentSocketName = "agent.sock"
	// WorkloadApp is the app label of every workload pod.
	WorkloadApp = "meshcsi-e2e-workload"
	// agentDirName is the agent's directory below Options.Dir.
	agentDirName = "agent-sockets"
)

// WorkloadSelector selects every workload pod.
const WorkloadSelector = "app=" + WorkloadApp

// PodSelector selects one workload pod by name.
func PodSelector(name string) string { return "meshcsi-e2e/name=" + name }

// NodeSlotWait bounds the wait for another process's node-mode cluster to
// stop: one node-mode cluster runs on a machine at a time.
const NodeSlotWait = 10 * time.Minute

// Options configures Setup.
type Options struct {
	// Dir holds the cluster, the images and the agent's socket directory.
	Dir string
	// Version is stamped into the binaries.
	Version string
	// Logf receives progress lines.
	Logf func(format string, args ...any)
	// AgentLog receives the agent's log (one line per ping); nil discards.
	AgentLog io.Writer
	// Detached keeps the cluster running after this process exits (the
	// demo); `demo down` stops it.
	Detached bool
}

// Env is a running cluster with meshcsi's images and a node agent.
type Env struct {
	Cluster *kubeharness.Cluster
	Kube    *kube.Client
	Helm    *helm.Helm
	Agent   *agent.Server
	// AgentDir is the host directory holding the agent's socket: the source
	// the chart configures.
	AgentDir string
	// Root is the repository root.
	Root string
	// ChartDir is charts/meshcsi.
	ChartDir string
	logf     func(string, ...any)
	// agentMounted is set while AgentDir is bind-mounted onto itself.
	agentMounted bool
	stop         context.CancelFunc
	agentErr     chan error
}

// RepoRoot finds the repository root from this source file.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// Setup builds the images, starts the cluster, imports the images and starts
// the agent. Call Close when done.
func Setup(ctx context.Context, opts Options) (_ *Env, err error) {
	if opts.Logf == nil {
		opts.Logf = func(string, ...any) {}
	}
	if opts.Version == "" {
		opts.Version = "e2e"
	}
	e := &Env{Root: RepoRoot(), logf: opts.Logf}
	e.ChartDir = filepath.Join(e.Root, "charts", "meshcsi")
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil { //nolint:gosec // holds the agent directory pods traverse
		return nil, fmt.Errorf("failed to create %s: %w", opts.Dir, err)
	}

	opts.Logf("building the driver, sentinel and demo-agent images with the Go image builder (the first time compiles them: a minute or two)")
	archives, err := images.Build(ctx, e.Root, filepath.Join(opts.Dir, "images"), ImageTag, opts.Version,
		images.Driver, images.Sentinel, images.DemoAgent)
	if err != nil {
		return nil, err
	}

	opts.Logf("starting the local single-node cluster (etcd, apiserver, controller-manager, scheduler, containerd, kubelet, kube-proxy; about 10-30 s)")
	// A cluster left by a killed run is stopped; one that another live
	// process runs (a developer's harness test) is waited for.
	// In CI no developer's cluster can be running: whatever holds the slot
	// (a demo left running by the session before) is stopped.
	if os.Getenv("CI") == "true" {
		if err := kubeharness.StopNodeSlotHolder(ctx, opts.Logf); err != nil {
			return nil, err
		}
	} else if stopped, err := kubeharness.StopOrphanedNode(ctx, opts.Logf); err != nil {
		return nil, err
	} else if stopped {
		opts.Logf("stopped a cluster orphaned by an earlier run")
	}
	e.Cluster, err = kubeharness.Start(ctx, kubeharness.Options{
		Mode:     kubeharness.Node,
		Dir:      filepath.Join(opts.Dir, "cluster"),
		Detached: opts.Detached,
		NodeWait: NodeSlotWait,
		Logf:     func(f string, a ...any) { opts.Logf("  cluster: "+f, a...) },
	})
	if err != nil {
		return nil, fmt.Errorf("failed to start the cluster: %w", err)
	}
	defer func() {
		if err != nil {
			_ = e.Close(context.WithoutCancel(ctx))
		}
	}()
	opts.Logf("importing the images into the node's containerd")
	if err := e.Cluster.ImportImages(ctx, archives...); err != nil {
		return nil, err
	}
	if e.Kube, err = kube.New(e.Cluster.RESTConfig()); err != nil {
		return nil, err
	}
	if e.Helm, err = helm.New(e.Cluster.Kubeconfig(), filepath.Join(opts.Dir, "helm")); err != nil {
		return nil, err
	}

	e.AgentDir = filepath.Join(opts.Dir, agentDirName)
	if err := e.shareAgentDir(); err != nil {
		return nil, err
	}
	if e.Agent, err = agent.Listen(filepath.Join(e.AgentDir, AgentSocketName), opts.AgentLog); err != nil {
		return nil, err
	}
	actx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	e.stop, e.agentErr = cancel, make(chan error, 1)
	go func() { e.agentErr <- e.Agent.Serve(actx) }()
	opts.Logf("demo agent serving on %s", filepath.Join(e.AgentDir, AgentSocketName))
	return e, nil
}

// StopAgent stops the demo agent (Close does too).
func (e *Env) StopAgent() error {
	if e.stop == nil {
		return nil
	}
	e.stop()
	e.stop = nil
	return <-e.agentErr
}

// Close stops the agent and the cluster; the cluster's Stop cleans the node
// (mounts, network, processes).
func (e *Env) Close(ctx context.Context) error {
	errs := []error{e.StopAgent()}
	if e.Cluster != nil {
		errs = append(errs, e.Cluster.Stop(ctx))
	}
	if e.agentMounted {
		if err := UnshareAgentDir(filepath.Dir(e.AgentDir)); err != nil {
			errs = append(errs, err)
		}
		e.agentMounted = false
	}
	return errors.Join(errs...)
}

// InstallValues are the --set values of every install: the local images,
// the node's kubelet directory, the agent's directory as source "demo" and
// quick sentinel reports.
func (e *Env) InstallValues(extra map[string]string) map[string]string {
	v := map[string]string{
		"kubeletDir":                          e.Cluster.KubeletDir(),
		"sources.spire-agent":                 "null",
		"sources." + Source:                   e.AgentDir,
		"defaultSource":                       Source,
		"driver.image.tag":                    ImageTag,
		"driver.image.pullPolicy":             "Never",
		"sentinel.image.tag":                  ImageTag,
		"sentinel.image.pullPolicy":           "Never",
		"sentinel.reportInterval":             "5s",
		"driver.readinessProbe.periodSeconds": "2",
	}
	for k, val := range extra {
		v[k] = val
	}
	return v
}

// Install runs `helm install --wait` and returns helm's output.
func (e *Env) Install(ctx context.Context, release, namespace string, extra map[string]string) (string, error) {
	args := []string{"install", release, e.ChartDir, "--namespace", namespace, "--create-namespace", "--wait", "--timeout", "3m"}
	args = append(args, helm.SetArgs(e.InstallValues(extra))...)
	return e.Helm.Run(ctx, args...)
}

// Uninstall runs `helm uninstall` and returns its output and duration. Its
// timeout is helm's default (5m), 60 s above the chart's default hand-off
// deadline, as the chart's NOTES advise: a hand-off that fails is then
// reported by Kubernetes' deadline, not cut short by helm.
func (e *Env) Uninstall(ctx context.Context, release, namespace string) (string, time.Duration, error) {
	start := time.Now()
	out, err := e.Helm.Run(ctx, "uninstall", release, "--namespace", namespace, "--timeout", "5m")
	return out, time.Since(start), err
}

// WorkloadPod is a pod that mounts the agent's socket directory through the
// CSI volume (read-only) and pings the agent every second. It satisfies Pod
// Security "restricted".
func WorkloadPod(namespace, name, source string) *corev1.Pod {
	f, t := false, true
	uid := int64(65532)
	attrs := map[string]string{}
	if source != "" {
		attrs["source"] = source
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace, Labels: map[string]string{
			"app": WorkloadApp, "meshcsi-e2e/name": name,
		}},
		Spec: corev1.PodSpec{
			TerminationGracePeriodSeconds: ptr(int64(2)),
			SecurityContext: &corev1.PodSecurityContext{
				RunAsNonRoot: &t, RunAsUser: &uid, RunAsGroup: &uid,
				SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
			},
			Containers: []corev1.Container{{
				Name:            "client",
				Image:           images.DemoAgent.Ref(ImageTag),
				ImagePullPolicy: corev1.PullNever,
				Args:            []string{"client", "--socket", "/run/agent/" + AgentSocketName, "--interval", "1s"},
				Env: []corev1.EnvVar{{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{
					FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"},
				}}},
				VolumeMounts: []corev1.VolumeMount{{Name: "agent-socket", MountPath: "/run/agent", ReadOnly: true}},
				SecurityContext: &corev1.SecurityContext{
					AllowPrivilegeEscalation: &f,
					ReadOnlyRootFilesystem:   &t,
					Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
				},
			}},
			Volumes: []corev1.Volume{{
				Name: "agent-socket",
				VolumeSource: corev1.VolumeSource{CSI: &corev1.CSIVolumeSource{
					Driver: DriverName, ReadOnly: &t, VolumeAttributes: attrs,
				}},
			}},
		},
	}
}

func ptr[T any](v T) *T { return &v }

// EnsureWorkloadNamespace creates a namespace enforcing Pod Security
// "restricted": the CSI volume is allowed there, a hostPath would not be.
func (e *Env) EnsureWorkloadNamespace(ctx context.Context, name string) error {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{
		"pod-security.kubernetes.io/enforce": "restricted",
	}}}
	_, err := e.Kube.Kube.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("failed to create namespace %s: %w", name, err)
	}
	return nil
}

// StartWorkload creates a workload pod and waits until the agent has heard
// from it; it returns the first ping.
func (e *Env) StartWorkload(ctx context.Context, namespace, name string) (agent.Ping, error) {
	if _, err := e.Kube.Kube.CoreV1().Pods(namespace).Create(ctx, WorkloadPod(namespace, name, ""), metav1.CreateOptions{}); err != nil {
		return agent.Ping{}, fmt.Errorf("failed to create pod %s/%s: %w", namespace, name, err)
	}
	wctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	p, err := e.Agent.WaitFor(wctx, func(p agent.Ping) bool { return p.Name == name })
	if err != nil {
		return p, fmt.Errorf("pod %s/%s never reached the agent: %w (%s)", namespace, name, err, e.PodSummary(ctx, namespace, name))
	}
	return p, nil
}

// PodSummary describes a pod (kube.PodState, or why it could not be read)
// and its recent Events, for error messages.
func (e *Env) PodSummary(ctx context.Context, namespace, name string) string {
	var b strings.Builder
	if p, err := e.Kube.Kube.CoreV1().Pods(namespace).Get(ctx, name, metav1.GetOptions{}); err != nil {
		fmt.Fprintf(&b, "cannot read the pod: %v", err)
	} else {
		b.WriteString("phase " + kube.PodState(p))
	}
	if evs, err := e.Kube.Kube.CoreV1().Events(namespace).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=" + name}); err == nil {
		for _, ev := range evs.Items {
			fmt.Fprintf(&b, "; event %s: %s", ev.Reason, ev.Message)
		}
	}
	return b.String()
}

// DeletePodsAndWait deletes the pods matching selector in namespace and
// waits until every one is gone (none stuck Terminating).
func (e *Env) DeletePodsAndWait(ctx context.Context, namespace, selector string, timeout time.Duration) error {
	pods := e.Kube.Kube.CoreV1().Pods(namespace)
	if err := pods.DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{LabelSelector: selector}); err != nil {
		return fmt.Errorf("failed to delete pods %s in %s: %w", selector, namespace, err)
	}
	var left []string
	err := wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		l, err := pods.List(ctx, metav1.ListOptions{LabelSelector: selector})
		if err != nil {
			return false, nil //nolint:nilerr // retried until the deadline
		}
		left = left[:0]
		for _, p := range l.Items {
			left = append(left, p.Name+" ("+string(p.Status.Phase)+")")
		}
		return len(l.Items) == 0, nil
	})
	if err != nil {
		return fmt.Errorf("pods still there after %s: %v: %w", timeout, left, err)
	}
	return nil
}

// DriverPod returns the running driver pod of a release.
func (e *Env) DriverPod(ctx context.Context, namespace, release string) (*corev1.Pod, error) {
	l, err := e.Kube.Kube.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{
		LabelSelector: "app.kubernetes.io/component=driver,app.kubernetes.io/instance=" + release,
	})
	if err != nil {
		return nil, fmt.Errorf("failed to list driver pods: %w", err)
	}
	for i := range l.Items {
		p := &l.Items[i]
		if p.DeletionTimestamp == nil && p.Status.Phase == corev1.PodRunning && p.Status.PodIP != "" {
			return p, nil
		}
	}
	return nil, fmt.Errorf("no running driver pod of release %s in %s", release, namespace)
}

// DriverMetrics scrapes the driver pod's /metrics.
func (e *Env) DriverMetrics(ctx context.Context, pod *corev1.Pod) (string, error) {
	url := fmt.Sprintf("http://%s:9809/metrics", pod.Status.PodIP)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("failed to scrape %s: %w", url, err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("failed to scrape %s: %s: %w", url, resp.Status, err)
	}
	return string(body), nil
}
