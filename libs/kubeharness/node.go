package kubeharness

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"github.com/meshcsi/meshcsi/libs/kubeharness/image"
)

// nodeLockPath records which directory's cluster owns this machine's single
// Node-mode slot (the kubelet, the bridge and the iptables chains are
// machine-wide).
const nodeLockPath = "/run/kubeharness-node.json"

// CNIBinDir is where Debian's containernetworking-plugins installs the plugins.
const CNIBinDir = "/usr/lib/cni"

// savedSysctls are the kernel settings the kubelet and the CNI bridge change;
// Stop puts them back.
var savedSysctls = []string{
	"net/ipv4/ip_forward",
	"kernel/panic",
	"kernel/panic_on_oops",
	"vm/overcommit_memory",
	"vm/panic_on_oom",
	"kernel/keys/root_maxkeys",
	"kernel/keys/root_maxbytes",
	bridgeNFSysctl,
}

// bridgeNFSysctl makes bridged pod-to-pod traffic pass through iptables, so
// that a pod reaches a Service backed by a pod on the same bridge.
const bridgeNFSysctl = "net/bridge/bridge-nf-call-iptables"

type nodeLock struct {
	Dir      string `json:"dir"`
	PID      int    `json:"pid"`
	Detached bool   `json:"detached"`
}

// StopOrphanedNode frees the machine's node-mode slot when the cluster that
// holds it is orphaned: started through the Go API by a process that has
// died without calling Stop (a test binary killed by its timeout), or dead
// altogether. Such a cluster is stopped and cleaned up. A cluster started by
// `kubeharness up` that still runs, or whose starter still runs, is left
// alone. It reports whether it freed the slot.
func StopOrphanedNode(ctx context.Context, logf func(format string, args ...any)) (bool, error) {
	data, err := os.ReadFile(nodeLockPath)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("failed to read %s: %w", nodeLockPath, err)
	}
	var held nodeLock
	if err := json.Unmarshal(data, &held); err != nil || held.Dir == "" {
		// Being written by a concurrent Start, or damaged: not ours to free.
		return false, nil //nolint:nilerr // an unreadable slot is reported by lockNode
	}
	if pidAlive(held.PID) || (held.Detached && len(ownedProcesses(held.Dir)) > 0) {
		return false, nil
	}
	if stale, err := Attach(held.Dir); err == nil {
		if logf != nil {
			logf("kubeharness: stopping the node-mode cluster in %s left by exited process %d", held.Dir, held.PID)
		}
		if err := stale.Stop(ctx); err != nil {
			return false, fmt.Errorf("failed to stop the orphaned cluster in %s: %w", held.Dir, err)
		}
	}
	if err := os.Remove(nodeLockPath); err != nil && !errors.Is(err, os.ErrNotExist) {
		return false, fmt.Errorf("failed to remove %s: %w", nodeLockPath, err)
	}
	return true, nil
}

// WaitForNodeSlot waits up to timeout until no live node-mode cluster holds
// the machine's node slot, stopping an orphaned one. It returns an error
// naming the holder's directory if the slot is still held. Tests that compare
// the host before and after a node-mode cluster call it before their first
// look at the host.
func WaitForNodeSlot(ctx context.Context, timeout time.Duration, logf func(format string, args ...any)) error {
	holder := ""
	// The condition stops an orphan with the caller's ctx, not the poll's,
	// whose deadline may already be near.
	err := wait.PollUntilContextTimeout(ctx, time.Second, max(timeout, 0), true, func(context.Context) (bool, error) {
		if _, err := StopOrphanedNode(ctx, logf); err != nil {
			return false, err
		}
		data, err := os.ReadFile(nodeLockPath)
		if errors.Is(err, os.ErrNotExist) {
			return true, nil
		}
		if err != nil {
			return false, fmt.Errorf("failed to read %s: %w", nodeLockPath, err)
		}
		var h nodeLock
		if json.Unmarshal(data, &h) != nil || h.Dir == "" {
			h.Dir = "(being claimed)"
		}
		if holder == "" && logf != nil {
			logf("kubeharness: waiting up to %s for the node-mode cluster in %s to stop", timeout, h.Dir)
		}
		holder = h.Dir
		return false, nil
	})
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil:
		return fmt.Errorf("gave up waiting for the node-mode slot held by %s: %w", holder, ctx.Err())
	case wait.Interrupted(err):
		return fmt.Errorf("%w (dir %s); stop it with `kubeharness down --dir %s`", ErrNodeBusy, holder, holder)
	default:
		return err
	}
}

// StopNodeSlotHolder stops whatever node-mode cluster holds the machine's
// node slot, live or not. It is for CI, where no developer's cluster can be
// running and a cluster left by a previous session must not block the run.
func StopNodeSlotHolder(ctx context.Context, logf func(format string, args ...any)) error {
	data, err := os.ReadFile(nodeLockPath)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("failed to read %s: %w", nodeLockPath, err)
	}
	var held nodeLock
	if err := json.Unmarshal(data, &held); err == nil && held.Dir != "" {
		if c, err := Attach(held.Dir); err == nil {
			if logf != nil {
				logf("kubeharness: stopping the node-mode cluster in %s", held.Dir)
			}
			if err := c.Stop(ctx); err != nil {
				return err
			}
		}
	}
	if err := os.Remove(nodeLockPath); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("failed to remove %s: %w", nodeLockPath, err)
	}
	return nil
}

// ErrNodeBusy is returned (wrapped) when another node-mode cluster runs on
// this machine.
var ErrNodeBusy = errors.New("another node-mode cluster runs on this machine")

// lockNode claims the machine's node-mode slot (atomically, so two Starts
// cannot both get it), waiting up to Options.NodeWait for a live holder and
// freeing it from an orphaned one. Only a cluster holding the slot touches
// machine-wide state, in Start and in Stop.
func (c *Cluster) lockNode(ctx context.Context) error {
	if runtime.GOOS != "linux" {
		return errors.New("node mode needs Linux (containerd, runc, the kubelet's cgroups)")
	}
	if os.Geteuid() != 0 {
		return errors.New("node mode needs root (containerd, kubelet, bridge, iptables)")
	}
	data, err := json.Marshal(nodeLock{Dir: c.opts.Dir, PID: os.Getpid(), Detached: c.opts.Detached})
	if err != nil {
		return fmt.Errorf("failed to encode node lock: %w", err)
	}
	deadline := time.Now().Add(c.opts.NodeWait)
	for {
		if err := WaitForNodeSlot(ctx, time.Until(deadline), c.opts.Logf); err != nil {
			return err
		}
		f, err := os.OpenFile(nodeLockPath, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, os.ErrExist) {
			continue // another Start claimed it first: wait again
		}
		if err != nil {
			return fmt.Errorf("failed to create %s: %w", nodeLockPath, err)
		}
		_, werr := f.Write(data)
		if cerr := f.Close(); werr == nil {
			werr = cerr
		}
		if werr != nil {
			_ = os.Remove(nodeLockPath)
			return fmt.Errorf("failed to write %s: %w", nodeLockPath, werr)
		}
		c.st.HoldsNode = true
		return c.saveState()
	}
}

func (c *Cluster) unlockNode() error {
	data, err := os.ReadFile(nodeLockPath)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("failed to read %s: %w", nodeLockPath, err)
	}
	var held nodeLock
	if json.Unmarshal(data, &held) == nil && held.Dir != c.opts.Dir {
		return nil
	}
	if err := os.Remove(nodeLockPath); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("failed to remove %s: %w", nodeLockPath, err)
	}
	return nil
}

// NodeLink is the interface (a port-less bridge) that carries the node IP.
const NodeLink = "khnode0"

// setUpNetwork records the sysctls it may change, creates the interface that
// carries the node IP, installs the guards that keep pod traffic
// on this machine and writes the CNI configuration.
func (c *Cluster) setUpNetwork() error {
	// The kubelet's device-plugin directory is fixed; remember whether the
	// cluster creates it (and its parent) so that Stop can remove them.
	for _, p := range []string{"/var/lib/kubelet", "/var/lib/kubelet/device-plugins"} {
		if _, err := os.Stat(p); errors.Is(err, os.ErrNotExist) {
			c.st.CreatedPaths = append(c.st.CreatedPaths, p)
			break
		}
	}
	c.st.Sysctls = map[string]string{}
	for _, key := range savedSysctls {
		if v, err := readSysctl(key); err == nil {
			c.st.Sysctls[key] = v
		}
	}
	if err := c.saveState(); err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join("/proc/sys", bridgeNFSysctl)); err != nil {
		if err := run("modprobe", "br_netfilter"); err != nil {
			c.opts.Logf("kubeharness: br_netfilter unavailable (%v): pod-to-Service traffic to pods on the same node may fail", err)
		}
	}
	if v, err := readSysctl(bridgeNFSysctl); err == nil && v != "1" {
		if err := writeSysctl(bridgeNFSysctl, "1"); err != nil {
			return err
		}
	}
	br := c.opts.Bridge
	for _, link := range []string{br, NodeLink} {
		if _, err := net.InterfaceByName(link); err == nil {
			// Someone else's network: give the slot back so that the
			// cleanup after this failed Start leaves the machine alone.
			c.st.HoldsNode = false
			if err := c.unlockNode(); err != nil {
				return err
			}
			return fmt.Errorf("interface %s already exists: a cluster not recorded in %s runs, or an earlier run left it (`kubeharness down --dir <its dir>` removes it)", link, nodeLockPath)
		}
	}
	// The node IP lives on a bridge of its own with no ports: a local
	// address that nothing outside this machine routes to. The CNI plugin
	// creates the pod bridge, which must carry only the pods' gateway.
	for _, args := range [][]string{
		{"link", "add", NodeLink, "type", "bridge"},
		{"addr", "add", c.opts.NodeIP + "/32", "dev", NodeLink},
		{"link", "set", NodeLink, "up"},
	} {
		if err := run("ip", args...); err != nil {
			return err
		}
	}
	if err := installGuards(br, c.opts.NodeIP); err != nil {
		return err
	}
	conf, err := cniConfig(br, c.opts.PodCIDR, filepath.Join(c.paths.cni, "ipam"))
	if err != nil {
		return err
	}
	confDir := filepath.Join(c.paths.cni, "net.d")
	if err := os.MkdirAll(confDir, 0o750); err != nil {
		return fmt.Errorf("failed to create %s: %w", confDir, err)
	}
	if err := os.WriteFile(filepath.Join(confDir, "10-kubeharness.conflist"), conf, 0o600); err != nil {
		return fmt.Errorf("failed to write CNI config: %w", err)
	}
	return nil
}

// cniConfig renders the bridge network: pods get addresses from podCIDR, the
// bridge is their gateway, and nothing is masqueraded (the guards drop
// forwarded traffic anyway).
func cniConfig(bridge, podCIDR, ipamDir string) ([]byte, error) {
	if _, _, err := net.ParseCIDR(podCIDR); err != nil {
		return nil, fmt.Errorf("invalid pod CIDR %q: %w", podCIDR, err)
	}
	conf := map[string]any{
		"cniVersion": "1.0.0",
		"name":       "kubeharness",
		"plugins": []any{
			map[string]any{
				"type":        "bridge",
				"bridge":      bridge,
				"isGateway":   true,
				"ipMasq":      false,
				"hairpinMode": true,
				"ipam": map[string]any{
					"type":    "host-local",
					"ranges":  [][]map[string]string{{{"subnet": podCIDR}}},
					"routes":  []map[string]string{{"dst": "0.0.0.0/0"}},
					"dataDir": ipamDir,
				},
			},
		},
	}
	data, err := json.MarshalIndent(conf, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("failed to encode CNI config: %w", err)
	}
	return data, nil
}

// containerdSocket is the containerd (and CRI) endpoint of the cluster.
func (c *Cluster) containerdSocket() string {
	return filepath.Join(c.paths.containerd, "containerd.sock")
}

// KubeletDir returns the kubelet's root directory (Node mode): charts that
// mount pod volumes need it as their kubelet directory.
func (c *Cluster) KubeletDir() string { return c.opts.KubeletDir }

// ImportImages imports docker-archive or OCI archives into the node's
// containerd, in the namespace the kubelet uses.
func (c *Cluster) ImportImages(ctx context.Context, archives ...string) error {
	if c.opts.Mode != Node {
		return errors.New("images can only be imported in node mode")
	}
	for _, a := range archives {
		if err := image.Import(ctx, c.containerdSocket(), a); err != nil {
			return err
		}
	}
	return nil
}

func (c *Cluster) containerdConfig() string {
	d := c.paths.containerd
	return fmt.Sprintf(`version = 2
root = %[1]q
state = %[2]q
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]

[grpc]
  address = %[3]q

[ttrpc]
  address = %[4]q

[debug]
  level = "info"

[plugins."io.containerd.internal.v1.opt"]
  path = %[5]q

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = %[6]q
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  disable_apparmor = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = %[7]q
    conf_dir = %[8]q
    max_conf_num = 1
`, filepath.Join(d, "root"), filepath.Join(d, "state"), c.containerdSocket(), filepath.Join(d, "ttrpc.sock"),
		filepath.Join(d, "opt"), image.PauseRef, CNIBinDir, filepath.Join(c.paths.cni, "net.d"))
}

func (c *Cluster) kubeletConfig() string {
	p := c.st.Ports
	return fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: 127.0.0.1
port: %d
healthzBindAddress: 127.0.0.1
healthzPort: %d
readOnlyPort: 0
tlsCertFile: %q
tlsPrivateKeyFile: %q
authentication:
  anonymous:
    enabled: false
  webhook:
    enabled: true
  x509:
    clientCAFile: %q
authorization:
  mode: Webhook
cgroupDriver: cgroupfs
failCgroupV1: false
failSwapOn: false
containerRuntimeEndpoint: unix://%s
clusterDomain: cluster.local
podLogsDir: %q
volumePluginDir: %q
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard:
  memory.available: 100Mi
  nodefs.available: 1%%
  imagefs.available: 1%%
  nodefs.inodesFree: 1%%
serializeImagePulls: false
registerNode: true
rotateCertificates: false
serverTLSBootstrap: false
enableDebuggingHandlers: true
`, p.Kubelet, p.KubeletHealthz, c.pki("kubelet-serving.crt"), c.pki("kubelet-serving.key"), c.pki("ca.crt"),
		c.containerdSocket(), filepath.Join(c.opts.Dir, "pod-logs"), filepath.Join(c.opts.Dir, "volume-plugins"))
}

func (c *Cluster) kubeProxyConfig() string {
	p := c.st.Ports
	return fmt.Sprintf(`apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection:
  kubeconfig: %q
mode: iptables
hostnameOverride: %s
bindAddress: 127.0.0.1
healthzBindAddress: 127.0.0.1:%d
metricsBindAddress: 127.0.0.1:%d
clusterCIDR: %s
nodePortAddresses: [%q]
detectLocalMode: ClusterCIDR
conntrack:
  maxPerCore: 0
  min: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
iptables:
  localhostNodePorts: false
  minSyncPeriod: 1s
  syncPeriod: 30s
`, filepath.Join(c.paths.kubeconfigs, "kube-proxy.kubeconfig"), NodeName, p.KubeProxyHealthz, p.KubeProxyMetrics,
		c.opts.PodCIDR, c.opts.NodeIP+"/32")
}

// startNode runs containerd, the API forwarder, kube-scheduler, the kubelet
// and kube-proxy, then waits for the node to be Ready and the default
// ServiceAccount to exist.
func (c *Cluster) startNode(ctx context.Context) error {
	if len(c.containerdSocket()) > 100 {
		return fmt.Errorf("state dir %s is too deep: containerd's socket path would exceed the unix socket limit", c.opts.Dir)
	}
	for _, d := range []string{c.paths.containerd, c.opts.KubeletDir, filepath.Join(c.opts.Dir, "pod-logs"),
		filepath.Join(c.opts.Dir, "volume-plugins"), filepath.Join(c.opts.Dir, "images")} {
		if err := os.MkdirAll(d, 0o750); err != nil {
			return fmt.Errorf("failed to create %s: %w", d, err)
		}
	}
	// Build the pause image while containerd starts.
	pauseErr := make(chan error, 1)
	pauseArchive := filepath.Join(c.opts.Dir, "images", "pause.tar")
	go func() { pauseErr <- image.BuildPause(ctx, pauseArchive) }()

	cfgPath := filepath.Join(c.paths.containerd, "config.toml")
	if err := os.WriteFile(cfgPath, []byte(c.containerdConfig()), 0o600); err != nil {
		return fmt.Errorf("failed to write containerd config: %w", err)
	}
	containerd := c.newComponent("containerd", "containerd", "--config="+cfgPath)
	if err := c.launch(ctx, containerd, func(ctx context.Context) error {
		return criReady(ctx, c.containerdSocket())
	}); err != nil {
		return err
	}
	if err := <-pauseErr; err != nil {
		return fmt.Errorf("failed to build the pause image: %w", err)
	}
	if err := c.ImportImages(ctx, pauseArchive); err != nil {
		return err
	}

	// Pods reach the API server through the kubernetes Service, whose
	// endpoint is NodeIP:port; the API server itself listens on loopback.
	apiPort := strconv.Itoa(c.st.Ports.APIServer)
	nodeAddr := net.JoinHostPort(c.opts.NodeIP, apiPort)
	forwarder := c.newComponent("api-forwarder", "socat",
		"TCP-LISTEN:"+apiPort+",bind="+c.opts.NodeIP+",fork,reuseaddr", "TCP:127.0.0.1:"+apiPort)
	if err := c.launch(ctx, forwarder, func(ctx context.Context) error {
		conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", nodeAddr)
		if err != nil {
			return err
		}
		return conn.Close()
	}); err != nil {
		return err
	}

	schedKC := filepath.Join(c.paths.kubeconfigs, "scheduler.kubeconfig")
	scheduler := c.newComponent("kube-scheduler", c.bin("kube-scheduler"),
		"--kubeconfig="+schedKC,
		"--authentication-kubeconfig="+schedKC,
		"--authorization-kubeconfig="+schedKC,
		"--bind-address=127.0.0.1",
		fmt.Sprintf("--secure-port=%d", c.st.Ports.Scheduler),
		"--cert-dir="+filepath.Join(c.opts.Dir, "scheduler"),
		"--leader-elect=false",
		"--profiling=false",
	)
	if err := c.launch(ctx, scheduler, c.healthzCheck(c.st.Ports.Scheduler)); err != nil {
		return err
	}

	kubeletCfg := filepath.Join(c.opts.Dir, "kubelet-config.yaml")
	if err := os.WriteFile(kubeletCfg, []byte(c.kubeletConfig()), 0o600); err != nil {
		return fmt.Errorf("failed to write kubelet config: %w", err)
	}
	client, err := kubernetes.NewForConfig(c.RESTConfig())
	if err != nil {
		return fmt.Errorf("failed to create client: %w", err)
	}
	kubelet := c.newComponent("kubelet", c.bin("kubelet"),
		"--config="+kubeletCfg,
		"--kubeconfig="+filepath.Join(c.paths.kubeconfigs, "kubelet.kubeconfig"),
		"--root-dir="+c.opts.KubeletDir,
		"--hostname-override="+NodeName,
		"--node-ip="+c.opts.NodeIP,
	)
	kubeletHealth := fmt.Sprintf("http://127.0.0.1:%d/healthz", c.st.Ports.KubeletHealthz)
	if err := c.launch(ctx, kubelet, func(ctx context.Context) error {
		if _, err := get(ctx, httpClient, kubeletHealth); err != nil {
			return err
		}
		return nodeReady(ctx, client)
	}); err != nil {
		return err
	}

	proxyCfg := filepath.Join(c.opts.Dir, "kube-proxy-config.yaml")
	if err := os.WriteFile(proxyCfg, []byte(c.kubeProxyConfig()), 0o600); err != nil {
		return fmt.Errorf("failed to write kube-proxy config: %w", err)
	}
	proxy := c.newComponent("kube-proxy", c.bin("kube-proxy"), "--config="+proxyCfg)
	proxyHealth := fmt.Sprintf("http://127.0.0.1:%d/healthz", c.st.Ports.KubeProxyHealthz)
	if err := c.launch(ctx, proxy, func(ctx context.Context) error {
		_, err := get(ctx, httpClient, proxyHealth)
		return err
	}); err != nil {
		return err
	}

	// Pods need the namespace's default ServiceAccount and root CA ConfigMap,
	// which kube-controller-manager creates.
	kcm := c.componentByName("kube-controller-manager")
	return waitReady(ctx, kcm, c.opts.StartTimeout, func(ctx context.Context) error {
		if _, err := client.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{}); err != nil {
			return fmt.Errorf("default ServiceAccount: %w", err)
		}
		if _, err := client.CoreV1().ConfigMaps("default").Get(ctx, "kube-root-ca.crt", metav1.GetOptions{}); err != nil {
			return fmt.Errorf("kube-root-ca.crt ConfigMap: %w", err)
		}
		return nil
	})
}

// nodeReady checks that the node is registered and Ready.
func nodeReady(ctx context.Context, client kubernetes.Interface) error {
	node, err := client.CoreV1().Nodes().Get(ctx, NodeName, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("node %s: %w", NodeName, err)
	}
	for _, cond := range node.Status.Conditions {
		if cond.Type == corev1.NodeReady {
			if cond.Status == corev1.ConditionTrue {
				return nil
			}
			return fmt.Errorf("node %s not Ready: %s: %s", NodeName, cond.Reason, cond.Message)
		}
	}
	return fmt.Errorf("node %s has no Ready condition yet", NodeName)
}

// stopNode stops the kubelet (so it recreates nothing), then every pod
// sandbox through the CRI (which kills the containers and tears down their
// network), then containerd.
func (c *Cluster) stopNode(ctx context.Context) []error {
	var errs []error
	if k := c.componentByName("kubelet"); k != nil {
		if err := k.stop(ctx, stopGrace, c.opts.Dir); err != nil {
			errs = append(errs, err)
		}
	}
	if cd := c.componentByName("containerd"); cd != nil && cd.alive(c.opts.Dir) {
		if err := removeAllSandboxes(ctx, c.containerdSocket()); err != nil {
			errs = append(errs, err)
		}
		if err := cd.stop(ctx, stopGrace, c.opts.Dir); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// cleanNodeHost removes what Node mode left on the host once its processes
// are gone: stray pod processes, mounts, the bridge and veths, iptables
// chains, cgroups and sysctl changes.
func (c *Cluster) cleanNodeHost() []error {
	var errs []error
	killPodProcesses()
	if err := unmountBelow(c.opts.Dir, c.opts.KubeletDir, "/run/netns/cni-", "/var/run/netns/cni-"); err != nil {
		errs = append(errs, err)
	}
	for _, link := range []string{c.opts.Bridge, NodeLink} {
		if link == "" {
			continue
		}
		if err := deleteBridge(link); err != nil {
			errs = append(errs, err)
		}
	}
	if err := removeChains(); err != nil {
		errs = append(errs, err)
	}
	removePodCgroups()
	removeContainerLogLinks(filepath.Join(c.opts.Dir, "pod-logs"))
	for _, p := range c.st.CreatedPaths {
		removeEmptyTree(p)
	}
	for key, v := range c.st.Sysctls {
		if cur, err := readSysctl(key); err == nil && cur != v {
			if err := writeSysctl(key, v); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if err := c.unlockNode(); err != nil {
		errs = append(errs, err)
	}
	return errs
}

func readSysctl(key string) (string, error) {
	data, err := os.ReadFile(filepath.Join("/proc/sys", key))
	if err != nil {
		return "", fmt.Errorf("failed to read sysctl %s: %w", key, err)
	}
	return strings.TrimSpace(string(data)), nil
}

func writeSysctl(key, value string) error {
	if err := os.WriteFile(filepath.Join("/proc/sys", key), []byte(value), 0o600); err != nil {
		return fmt.Errorf("failed to set sysctl %s=%s: %w", key, value, err)
	}
	return nil
}

// run executes a host tool and returns its output in the error.
func run(name string, args ...string) error {
	out, err := exec.Command(name, args...).CombinedOutput() //nolint:gosec // fixed host tools (ip, iptables) with harness-made arguments
	if err != nil {
		return fmt.Errorf("failed to run %s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// httpClient probes plain-HTTP loopback health endpoints.
var httpClient = &http.Client{Timeout: 2 * time.Second}
