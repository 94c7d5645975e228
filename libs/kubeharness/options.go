package kubeharness

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// KubeVersion is the Kubernetes release whose binaries the harness runs.
const KubeVersion = "v1.33.13"

// BinDirEnv overrides where the Kubernetes binaries are looked up.
const BinDirEnv = "MESHCSI_KUBE_BIN_DIR"

// Mode selects which components Start runs.
type Mode int

const (
	// ControlPlane runs etcd and kube-apiserver (and kube-controller-manager
	// when Options.ControllerManager is set): enough for controllers and
	// API-level integration tests, up in a few seconds, no root needed.
	ControlPlane Mode = iota
	// Node runs a whole single-node cluster: etcd, kube-apiserver,
	// kube-controller-manager, kube-scheduler, containerd with runc and the
	// CNI bridge, the kubelet and kube-proxy. It needs root and is exclusive
	// on a machine.
	Node
)

// String returns the name used on the command line.
func (m Mode) String() string {
	switch m {
	case ControlPlane:
		return "control-plane"
	case Node:
		return "node"
	default:
		return fmt.Sprintf("Mode(%d)", int(m))
	}
}

// ParseMode parses "control-plane" or "node".
func ParseMode(s string) (Mode, error) {
	switch s {
	case "control-plane", "controlplane":
		return ControlPlane, nil
	case "node":
		return Node, nil
	default:
		return 0, fmt.Errorf("unknown mode %q (want control-plane or node)", s)
	}
}

// Options configures Start. The zero value (besides Mode) is a working
// control plane in a temporary directory.
type Options struct {
	// Mode selects the components; see ControlPlane and Node.
	Mode Mode
	// Dir holds all state: certificates, kubeconfigs, etcd data, logs,
	// containerd and kubelet directories. Empty means a new temporary
	// directory, removed by Stop. A given Dir is created if missing and kept.
	Dir string
	// KeepDir keeps a temporary Dir after Stop (to read the logs).
	KeepDir bool
	// ControllerManager also runs kube-controller-manager in ControlPlane mode
	// (garbage collection, Jobs, namespace deletion, service accounts). Node
	// mode always runs it.
	ControllerManager bool
	// BinDir holds kube-apiserver, kube-controller-manager, kube-scheduler,
	// kubelet and kube-proxy. Default: $MESHCSI_KUBE_BIN_DIR, else
	// $HOME/.cache/meshcsi/kube/<KubeVersion>/bin.
	BinDir string
	// EtcdPath is the etcd binary. Default: etcd on $PATH.
	EtcdPath string
	// NodeIP is the node's address in Node mode. It is put on the harness's
	// own bridge, so it never leaves the machine. Default 198.51.100.1.
	NodeIP string
	// PodCIDR is the pod subnet of the single node. Default 10.244.0.0/24.
	PodCIDR string
	// ServiceCIDR is the Service IP range. Default 10.96.0.0/16.
	ServiceCIDR string
	// KubeletDir is the kubelet's root directory. Default <Dir>/kubelet; set
	// /var/lib/kubelet to mimic a stock node.
	KubeletDir string
	// Bridge is the name of the CNI bridge the harness creates. Default khbr0.
	Bridge string
	// StartTimeout bounds the wait for each component. Default 60s.
	StartTimeout time.Duration
	// Detached says the cluster outlives the calling process (`kubeharness
	// up`). Otherwise a later node-mode Start stops the cluster if the
	// process that started it has died without calling Stop.
	Detached bool
	// NodeWait is how long a node-mode Start waits for the machine's single
	// node slot while another cluster holds it. Zero fails at once.
	NodeWait time.Duration
	// ExtraAPIServerArgs are appended to kube-apiserver's flags.
	ExtraAPIServerArgs []string
	// Logf receives progress messages. Default: discard.
	Logf func(format string, args ...any)
}

// Defaults for Options.
const (
	DefaultNodeIP      = "198.51.100.1"
	DefaultPodCIDR     = "10.244.0.0/24"
	DefaultServiceCIDR = "10.96.0.0/16"
	DefaultBridge      = "khbr0"
)

// DefaultBinDir returns where `make kube-binaries` puts the Kubernetes
// binaries, honouring $MESHCSI_KUBE_BIN_DIR.
func DefaultBinDir() string {
	if d := os.Getenv(BinDirEnv); d != "" {
		return d
	}
	home, err := os.UserHomeDir()
	if err != nil {
		home = "/root"
	}
	return filepath.Join(home, ".cache", "meshcsi", "kube", KubeVersion, "bin")
}

// withDefaults fills empty fields and validates the result.
func (o Options) withDefaults() (Options, error) {
	if o.Mode != ControlPlane && o.Mode != Node {
		return o, fmt.Errorf("invalid Mode %d", int(o.Mode))
	}
	if o.BinDir == "" {
		o.BinDir = DefaultBinDir()
	}
	if o.EtcdPath == "" {
		p, err := exec.LookPath("etcd")
		if err != nil {
			return o, fmt.Errorf("failed to find etcd (install the Debian package etcd-server or set EtcdPath): %w", err)
		}
		o.EtcdPath = p
	}
	if o.NodeIP == "" {
		o.NodeIP = DefaultNodeIP
	}
	if ip := net.ParseIP(o.NodeIP); ip == nil || ip.To4() == nil || ip.IsLoopback() {
		return o, fmt.Errorf("invalid NodeIP %q: need a non-loopback IPv4 address", o.NodeIP)
	}
	if o.PodCIDR == "" {
		o.PodCIDR = DefaultPodCIDR
	}
	if _, _, err := net.ParseCIDR(o.PodCIDR); err != nil {
		return o, fmt.Errorf("invalid PodCIDR %q: %w", o.PodCIDR, err)
	}
	if o.ServiceCIDR == "" {
		o.ServiceCIDR = DefaultServiceCIDR
	}
	if _, _, err := net.ParseCIDR(o.ServiceCIDR); err != nil {
		return o, fmt.Errorf("invalid ServiceCIDR %q: %w", o.ServiceCIDR, err)
	}
	if o.Bridge == "" {
		o.Bridge = DefaultBridge
	}
	if len(o.Bridge) > 15 {
		return o, fmt.Errorf("invalid Bridge %q: longer than 15 characters", o.Bridge)
	}
	if o.StartTimeout <= 0 {
		o.StartTimeout = 60 * time.Second
	}
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	return o, nil
}

// binaries lists the Kubernetes binaries a mode needs.
func (o Options) binaries() []string {
	bins := []string{"kube-apiserver"}
	if o.Mode == Node || o.ControllerManager {
		bins = append(bins, "kube-controller-manager")
	}
	if o.Mode == Node {
		bins = append(bins, "kube-scheduler", "kubelet", "kube-proxy")
	}
	return bins
}

// ErrMissingBinaries is returned (wrapped) when the Kubernetes binaries have
// not been built; run `make kube-binaries`.
var ErrMissingBinaries = errors.New("kubernetes binaries missing (run `make kube-binaries`)")

func (o Options) checkBinaries() error {
	for _, b := range o.binaries() {
		if _, err := os.Stat(filepath.Join(o.BinDir, b)); err != nil {
			return fmt.Errorf("%w: %s not in %s", ErrMissingBinaries, b, o.BinDir)
		}
	}
	return nil
}
