// Package spire runs the real SPIRE server and agent on the local cluster
// with meshcsi handing the agent's Workload API socket to workloads: the
// proof that the use case meshcsi exists for works end to end. The e2e suite
// and the demo share it.
//
// The manifests (server.yaml, agent.yaml) are what a user would apply:
// k8s_psat node attestation through the API server's TokenReview, the k8s
// workload attestor through the kubelet's secure port, the trust bundle
// published in a ConfigMap. The images hold SPIRE's own binaries, built once
// from the Go module proxy into the cache (`make spire`).
package spire

import (
	"bytes"
	"context"
	_ "embed" // the manifests
	"errors"
	"fmt"
	"strings"
	"text/template"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/httpstream"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/remotecommand"

	"github.com/meshcsi/meshcsi/e2e/kube"
	"github.com/meshcsi/meshcsi/e2e/manifest"
)

//go:embed server.yaml
var serverYAML string

//go:embed agent.yaml
var agentYAML string

// Defaults of Config.
const (
	DefaultNamespace   = "spire-system"
	DefaultTrustDomain = "meshcsi.test"
	DefaultCluster     = "meshcsi"
	// SocketName is the agent's Workload API socket in its directory.
	SocketName = "agent.sock"
	// ServerSocket is the server's admin API socket inside its pod.
	ServerSocket = "/run/spire/server-socket/api.sock"
	// AgentAliasSA is the agent's service account; every agent of the cluster
	// gets the alias ID spiffe://<td>/ns/<namespace>/sa/spire-agent.
	AgentAliasSA = "spire-agent"
)

// Config describes one SPIRE deployment.
type Config struct {
	// Namespace holds the server and the agent (DefaultNamespace if empty).
	Namespace string
	// TrustDomain (DefaultTrustDomain if empty).
	TrustDomain string
	// Cluster is the k8s_psat cluster name (DefaultCluster if empty).
	Cluster string
	// SocketDir is the host directory the agent serves its socket in: the
	// meshcsi source. Required.
	SocketDir string
	// KubeletPort is the kubelet's secure port. Required.
	KubeletPort int
	// ImageTag is the tag of the images (see Images).
	ImageTag string
}

func (c *Config) defaults() error {
	if c.Namespace == "" {
		c.Namespace = DefaultNamespace
	}
	if c.TrustDomain == "" {
		c.TrustDomain = DefaultTrustDomain
	}
	if c.Cluster == "" {
		c.Cluster = DefaultCluster
	}
	if c.SocketDir == "" {
		return errors.New("spire: Config.SocketDir is required")
	}
	if c.KubeletPort <= 0 {
		return errors.New("spire: Config.KubeletPort is required")
	}
	if c.ImageTag == "" {
		return errors.New("spire: Config.ImageTag is required")
	}
	return nil
}

// ID is the SPIFFE ID registered for a service account.
func ID(trustDomain, namespace, serviceAccount string) string {
	return "spiffe://" + trustDomain + "/ns/" + namespace + "/sa/" + serviceAccount
}

// values are the template's inputs.
type values struct {
	Config
	ServerImage, AgentImage       string
	ServerSocket, ServerSocketDir string
	SocketName                    string
	ServerAddress                 string
}

func (c Config) values(serverAddress string) values {
	return values{
		Config:          c,
		ServerImage:     Server.Ref(c.ImageTag),
		AgentImage:      Agent.Ref(c.ImageTag),
		ServerSocket:    ServerSocket,
		ServerSocketDir: ServerSocket[:strings.LastIndex(ServerSocket, "/")],
		SocketName:      SocketName,
		ServerAddress:   serverAddress,
	}
}

// Render returns the server's and the agent's objects; the agent's need the
// server's address.
func Render(c Config, serverAddress string) (server, agent manifest.Set, err error) {
	if err := c.defaults(); err != nil {
		return nil, nil, err
	}
	v := c.values(serverAddress)
	if server, err = render("server.yaml", serverYAML, v); err != nil {
		return nil, nil, err
	}
	if agent, err = render("agent.yaml", agentYAML, v); err != nil {
		return nil, nil, err
	}
	return server, agent, nil
}

func render(name, text string, v values) (manifest.Set, error) {
	t, err := template.New(name).Option("missingkey=error").Parse(text)
	if err != nil {
		return nil, fmt.Errorf("failed to parse %s: %w", name, err)
	}
	var b bytes.Buffer
	if err := t.Execute(&b, v); err != nil {
		return nil, fmt.Errorf("failed to render %s: %w", name, err)
	}
	return manifest.Parse(b.String())
}

// Deployment is SPIRE running on a cluster.
type Deployment struct {
	cfg  Config
	kube *kube.Client
	rest *rest.Config
	logf func(string, ...any)
	// ServerAddress is the server Service's cluster IP.
	ServerAddress string
}

// TrustDomain is the deployment's trust domain.
func (d *Deployment) TrustDomain() string { return d.cfg.TrustDomain }

// Namespace is the deployment's namespace.
func (d *Deployment) Namespace() string { return d.cfg.Namespace }

// KubeletPort returns the secure port of the node's kubelet, as the node
// reports it.
func KubeletPort(ctx context.Context, kc *kube.Client, node string) (int, error) {
	n, err := kc.Kube.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
	if err != nil {
		return 0, fmt.Errorf("failed to get node %s: %w", node, err)
	}
	p := int(n.Status.DaemonEndpoints.KubeletEndpoint.Port)
	if p == 0 {
		return 0, fmt.Errorf("node %s reports no kubelet port", node)
	}
	return p, nil
}

// Deploy creates the server, waits until it is ready and has published its
// trust bundle, then creates the agent and waits until it serves the
// Workload API. logf receives progress lines (may be nil).
func Deploy(ctx context.Context, kc *kube.Client, rc *rest.Config, cfg Config, logf func(string, ...any)) (*Deployment, error) {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	d := &Deployment{cfg: cfg, kube: kc, rest: rc, logf: logf}
	server, _, err := Render(cfg, "")
	if err != nil {
		return nil, err
	}
	logf("creating the SPIRE server (StatefulSet, k8s_psat node attestor, k8sbundle notifier) in %s", cfg.Namespace)
	if err := kc.Create(ctx, server, kube.CreateOptions{}); err != nil {
		return nil, fmt.Errorf("failed to create the SPIRE server: %w", err)
	}
	svc, err := kc.Kube.CoreV1().Services(cfg.Namespace).Get(ctx, "spire-server", metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("failed to get the spire-server Service: %w", err)
	}
	d.ServerAddress = svc.Spec.ClusterIP
	if _, err := d.waitReady(ctx, "app=spire-server", 3*time.Minute); err != nil {
		return nil, fmt.Errorf("SPIRE server not ready: %w", err)
	}
	if err := d.waitBundle(ctx, time.Minute); err != nil {
		return nil, err
	}
	logf("SPIRE server ready; trust bundle published in ConfigMap %s/spire-bundle", cfg.Namespace)
	_, agent, err := Render(cfg, d.ServerAddress)
	if err != nil {
		return nil, err
	}
	logf("creating the SPIRE agent (DaemonSet, socket in hostPath %s, k8s workload attestor on the kubelet's port %d)", cfg.SocketDir, cfg.KubeletPort)
	if err := kc.Create(ctx, agent, kube.CreateOptions{}); err != nil {
		return nil, fmt.Errorf("failed to create the SPIRE agent: %w", err)
	}
	p, err := d.waitReady(ctx, "app=spire-agent", 3*time.Minute)
	if err != nil {
		return nil, fmt.Errorf("SPIRE agent not ready: %w", err)
	}
	logf("SPIRE agent %s attested and serving the Workload API", p.Name)
	return d, nil
}

// waitBundle waits until the server's notifier has written the bundle.
func (d *Deployment) waitBundle(ctx context.Context, timeout time.Duration) error {
	err := wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		cm, err := d.kube.Kube.CoreV1().ConfigMaps(d.cfg.Namespace).Get(ctx, "spire-bundle", metav1.GetOptions{})
		if err != nil {
			return false, nil //nolint:nilerr // retried until the deadline
		}
		return strings.Contains(cm.Data["bundle.crt"], "BEGIN CERTIFICATE"), nil
	})
	if err != nil {
		return fmt.Errorf("the SPIRE server did not publish its trust bundle within %s: %w", timeout, err)
	}
	return nil
}

// waitReady waits for a ready, not terminating pod matching selector.
func (d *Deployment) waitReady(ctx context.Context, selector string, timeout time.Duration) (*corev1.Pod, error) {
	return WaitReadyPod(ctx, d.kube, d.cfg.Namespace, selector, timeout)
}

// WaitReadyPod waits for a ready, not terminating pod matching selector and
// returns it; on timeout the error says what the pods were doing.
func WaitReadyPod(ctx context.Context, kc *kube.Client, namespace, selector string, timeout time.Duration) (*corev1.Pod, error) {
	var ready *corev1.Pod
	var state string
	err := wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		l, err := kc.Kube.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{LabelSelector: selector})
		if err != nil {
			state = err.Error()
			return false, nil
		}
		var states []string
		for i := range l.Items {
			p := &l.Items[i]
			states = append(states, p.Name+": "+kube.PodState(p))
			if p.DeletionTimestamp == nil && kube.PodReady(p) {
				ready = p
				return true, nil
			}
		}
		state = strings.Join(states, "; ")
		return false, nil
	})
	if err != nil {
		return nil, fmt.Errorf("no ready pod %s in %s after %s (%s): %w", selector, namespace, timeout, state, err)
	}
	return ready, nil
}

// ServerPod returns the ready server pod.
func (d *Deployment) ServerPod(ctx context.Context) (*corev1.Pod, error) {
	return d.waitReady(ctx, "app=spire-server", 30*time.Second)
}

// AgentPod returns the ready agent pod.
func (d *Deployment) AgentPod(ctx context.Context) (*corev1.Pod, error) {
	return d.waitReady(ctx, "app=spire-agent", 30*time.Second)
}

// ServerCommand runs `spire-server <args>` in the server pod (against its
// admin socket) and returns its output.
func (d *Deployment) ServerCommand(ctx context.Context, args ...string) (string, error) {
	p, err := d.ServerPod(ctx)
	if err != nil {
		return "", err
	}
	cmd := append([]string{Server.Path()}, args...)
	cmd = append(cmd, "-socketPath", ServerSocket)
	return Exec(ctx, d.kube, d.rest, p.Namespace, p.Name, "spire-server", cmd...)
}

// RegisterAgents creates the node alias entry every agent of the cluster
// gets (selector k8s_psat:cluster:<cluster>) and returns its ID.
func (d *Deployment) RegisterAgents(ctx context.Context) (string, error) {
	id := ID(d.cfg.TrustDomain, d.cfg.Namespace, AgentAliasSA)
	out, err := d.ServerCommand(ctx, "entry", "create", "-node", "-spiffeID", id,
		"-selector", "k8s_psat:cluster:"+d.cfg.Cluster)
	if err != nil {
		return "", fmt.Errorf("failed to register the agents: %w: %s", err, out)
	}
	return id, nil
}

// RegisterWorkload creates the entry for pods of a service account (selectors
// k8s:ns and k8s:sa under the agents' alias) and returns its SPIFFE ID.
func (d *Deployment) RegisterWorkload(ctx context.Context, namespace, serviceAccount string) (string, error) {
	id := ID(d.cfg.TrustDomain, namespace, serviceAccount)
	out, err := d.ServerCommand(ctx, "entry", "create",
		"-parentID", ID(d.cfg.TrustDomain, d.cfg.Namespace, AgentAliasSA),
		"-spiffeID", id, "-selector", "k8s:ns:"+namespace, "-selector", "k8s:sa:"+serviceAccount)
	if err != nil {
		return "", fmt.Errorf("failed to register %s/%s: %w: %s", namespace, serviceAccount, err, out)
	}
	return id, nil
}

// RestartAgent deletes the agent pod and waits for the DaemonSet's new pod
// to be ready; it returns the old and the new pod.
func (d *Deployment) RestartAgent(ctx context.Context) (old, replacement *corev1.Pod, err error) {
	old, err = d.AgentPod(ctx)
	if err != nil {
		return nil, nil, err
	}
	if err := d.kube.Kube.CoreV1().Pods(d.cfg.Namespace).Delete(ctx, old.Name, metav1.DeleteOptions{}); err != nil {
		return nil, nil, fmt.Errorf("failed to delete the agent pod %s: %w", old.Name, err)
	}
	err = wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, 3*time.Minute, true, func(ctx context.Context) (bool, error) {
		l, err := d.kube.Kube.CoreV1().Pods(d.cfg.Namespace).List(ctx, metav1.ListOptions{LabelSelector: "app=spire-agent"})
		if err != nil {
			return false, nil //nolint:nilerr // retried until the deadline
		}
		for i := range l.Items {
			p := &l.Items[i]
			if p.UID != old.UID && p.DeletionTimestamp == nil && kube.PodReady(p) {
				replacement = p
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		return old, nil, fmt.Errorf("no new ready agent pod after deleting %s: %w", old.Name, err)
	}
	return old, replacement, nil
}

// Remove deletes the namespace and the cluster-wide RBAC objects and waits
// until the namespace is gone.
func (d *Deployment) Remove(ctx context.Context) error {
	return Remove(ctx, d.kube, d.cfg.Namespace)
}

// Remove deletes a SPIRE deployment's namespace and cluster-wide RBAC objects
// and waits until the namespace is gone.
func Remove(ctx context.Context, kc *kube.Client, namespace string) error {
	var errs []error
	rbac := kc.Kube.RbacV1()
	for _, n := range []string{namespace + "-spire-server", namespace + "-spire-agent"} {
		if err := rbac.ClusterRoleBindings().Delete(ctx, n, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, err)
		}
		if err := rbac.ClusterRoles().Delete(ctx, n, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, err)
		}
	}
	if err := DeleteNamespace(ctx, kc, namespace, 2*time.Minute); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// DeleteNamespace deletes a namespace and waits until it is gone.
func DeleteNamespace(ctx context.Context, kc *kube.Client, namespace string, timeout time.Duration) error {
	err := kc.Kube.CoreV1().Namespaces().Delete(ctx, namespace, metav1.DeleteOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("failed to delete namespace %s: %w", namespace, err)
	}
	err = wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		_, err := kc.Kube.CoreV1().Namespaces().Get(ctx, namespace, metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
	if err != nil {
		return fmt.Errorf("namespace %s still there after %s: %w", namespace, timeout, err)
	}
	return nil
}

// Exec runs a command in a container and returns its combined output. It
// speaks WebSocket and falls back to SPDY, as kubectl does.
func Exec(ctx context.Context, kc *kube.Client, rc *rest.Config, namespace, pod, container string, cmd ...string) (string, error) {
	req := kc.Kube.CoreV1().RESTClient().Post().Resource("pods").Namespace(namespace).Name(pod).SubResource("exec").
		VersionedParams(&corev1.PodExecOptions{Container: container, Command: cmd, Stdout: true, Stderr: true}, scheme.ParameterCodec)
	ws, err := remotecommand.NewWebSocketExecutor(rc, "GET", req.URL().String())
	if err != nil {
		return "", fmt.Errorf("failed to set up exec: %w", err)
	}
	spdy, err := remotecommand.NewSPDYExecutor(rc, "POST", req.URL())
	if err != nil {
		return "", fmt.Errorf("failed to set up exec: %w", err)
	}
	ex, err := remotecommand.NewFallbackExecutor(ws, spdy, func(err error) bool {
		return httpstream.IsUpgradeFailure(err) || httpstream.IsHTTPSProxyError(err)
	})
	if err != nil {
		return "", fmt.Errorf("failed to set up exec: %w", err)
	}
	var out bytes.Buffer
	err = ex.StreamWithContext(ctx, remotecommand.StreamOptions{Stdout: &out, Stderr: &out})
	if err != nil {
		return out.String(), fmt.Errorf("exec %v in %s/%s: %w", cmd, namespace, pod, err)
	}
	return out.String(), nil
}
