package kubeharness

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// stateFile is where a running cluster records itself, so that another
// process (`kubeharness down`) can stop it.
const stateFile = "state.json"

// serviceAccountIssuer is the issuer of service-account tokens, as on most
// clusters.
const serviceAccountIssuer = "https://kubernetes.default.svc.cluster.local"

// stopGrace is how long a component gets between SIGTERM and SIGKILL.
const stopGrace = 10 * time.Second

// ports are the loopback ports of one cluster, chosen free at Start.
type ports struct {
	Etcd              int `json:"etcd"`
	EtcdPeer          int `json:"etcdPeer"`
	APIServer         int `json:"apiServer"`
	ControllerManager int `json:"controllerManager"`
	Scheduler         int `json:"scheduler"`
	Kubelet           int `json:"kubelet"`
	KubeletHealthz    int `json:"kubeletHealthz"`
	KubeProxyHealthz  int `json:"kubeProxyHealthz"`
	KubeProxyMetrics  int `json:"kubeProxyMetrics"`
}

// state is what state.json holds: enough to stop the cluster from another
// process.
type state struct {
	Mode       string            `json:"mode"`
	Dir        string            `json:"dir"`
	OwnsDir    bool              `json:"ownsDir"`
	Ports      ports             `json:"ports"`
	NodeIP     string            `json:"nodeIP,omitempty"`
	Bridge     string            `json:"bridge,omitempty"`
	KubeletDir string            `json:"kubeletDir,omitempty"`
	PodCIDR    string            `json:"podCIDR,omitempty"`
	Sysctls    map[string]string `json:"sysctls,omitempty"`
	// CreatedPaths are host directories outside Dir that the cluster
	// created and Stop removes if nothing else was put there.
	CreatedPaths []string `json:"createdPaths,omitempty"`
	// HoldsNode is set once the cluster owns the machine's node-mode slot:
	// only then may Stop touch machine-wide state (bridges, iptables chains,
	// pod cgroups, sysctls).
	HoldsNode  bool         `json:"holdsNode,omitempty"`
	Components []*component `json:"components"`
}

// Cluster is a running set of Kubernetes components on this machine.
type Cluster struct {
	opts  Options
	st    state
	mu    sync.Mutex
	paths paths
	lock  *os.File

	caPEM, adminCertPEM, adminKeyPEM []byte
}

// paths are the files and directories of a cluster below its Dir.
type paths struct {
	pki, logs, etcd, kubeconfigs, admin, containerd, cni string
}

func newPaths(dir string) paths {
	return paths{
		pki:         filepath.Join(dir, "pki"),
		logs:        filepath.Join(dir, "logs"),
		etcd:        filepath.Join(dir, "etcd"),
		kubeconfigs: filepath.Join(dir, "kubeconfigs"),
		admin:       filepath.Join(dir, "kubeconfig"),
		containerd:  filepath.Join(dir, "containerd"),
		cni:         filepath.Join(dir, "cni"),
	}
}

// Start brings up a cluster and returns once every component is ready. On
// failure it stops whatever it started and returns an error carrying the tail
// of the failing component's log.
func Start(ctx context.Context, opts Options) (*Cluster, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := opts.checkBinaries(); err != nil {
		return nil, err
	}
	owns := false
	if opts.Dir == "" {
		d, err := os.MkdirTemp("", "kubeharness-")
		if err != nil {
			return nil, fmt.Errorf("failed to create state dir: %w", err)
		}
		opts.Dir, owns = d, true
	} else {
		abs, err := filepath.Abs(opts.Dir)
		if err != nil {
			return nil, fmt.Errorf("failed to resolve Dir %s: %w", opts.Dir, err)
		}
		opts.Dir = abs
		if err := prepareDir(abs); err != nil {
			return nil, err
		}
	}
	if opts.Mode == Node && opts.KubeletDir == "" {
		opts.KubeletDir = filepath.Join(opts.Dir, "kubelet")
	}
	c := &Cluster{opts: opts, paths: newPaths(opts.Dir)}
	c.st = state{Mode: opts.Mode.String(), Dir: opts.Dir, OwnsDir: owns}
	if opts.Mode == Node {
		c.st.NodeIP, c.st.Bridge, c.st.KubeletDir, c.st.PodCIDR = opts.NodeIP, opts.Bridge, opts.KubeletDir, opts.PodCIDR
	}
	if err := c.start(ctx); err != nil {
		stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
		defer cancel()
		if stopErr := c.Stop(stopCtx); stopErr != nil {
			err = errors.Join(err, fmt.Errorf("failed to clean up after failed start: %w", stopErr))
		}
		return nil, err
	}
	return c, nil
}

// dirMarker marks a directory as the harness's, so that a later Start may
// clear what an earlier, stopped cluster left in it (logs, etcd data).
const dirMarker = ".kubeharness"

// prepareDir makes dir ready for a new cluster: it refuses a directory in use
// by a running cluster or one the harness did not create, and empties one
// left by a stopped cluster.
func prepareDir(dir string) error {
	if _, err := os.Stat(filepath.Join(dir, stateFile)); err == nil {
		return fmt.Errorf("a cluster already uses %s (stop it with `kubeharness down --dir %s`)", dir, dir)
	}
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("failed to read %s: %w", dir, err)
	}
	if len(entries) == 0 {
		return nil
	}
	if _, err := os.Stat(filepath.Join(dir, dirMarker)); err != nil {
		return fmt.Errorf("refusing to use %s: not empty and not a kubeharness directory", dir)
	}
	mps, err := MountsBelow(dir)
	if err != nil {
		return err
	}
	if len(mps) > 0 {
		return fmt.Errorf("refusing to clear %s: mounts remain below it (%v); run `kubeharness down --dir %s`", dir, mps, dir)
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return fmt.Errorf("failed to clear %s: %w", dir, err)
		}
	}
	return nil
}

func (c *Cluster) start(ctx context.Context) error {
	began := time.Now()
	for _, d := range []string{c.opts.Dir, c.paths.pki, c.paths.logs, c.paths.kubeconfigs} {
		if err := os.MkdirAll(d, 0o750); err != nil {
			return fmt.Errorf("failed to create %s: %w", d, err)
		}
	}
	if err := os.WriteFile(filepath.Join(c.opts.Dir, dirMarker), nil, 0o600); err != nil {
		return fmt.Errorf("failed to mark %s: %w", c.opts.Dir, err)
	}
	if c.opts.Mode == Node {
		if err := c.lockNode(ctx); err != nil {
			return err
		}
	}
	if err := c.pickPorts(); err != nil {
		return err
	}
	if err := c.writePKI(); err != nil {
		return err
	}
	if err := c.saveState(); err != nil {
		return err
	}
	if c.opts.Mode == Node {
		if err := c.setUpNetwork(); err != nil {
			return err
		}
	}
	if err := c.startEtcd(ctx); err != nil {
		return err
	}
	if err := c.startAPIServer(ctx); err != nil {
		return err
	}
	if c.opts.Mode == Node || c.opts.ControllerManager {
		if err := c.startControllerManager(ctx); err != nil {
			return err
		}
	}
	if c.opts.Mode == Node {
		if err := c.startNode(ctx); err != nil {
			return err
		}
	}
	c.opts.Logf("kubeharness: %s cluster ready in %s (kubeconfig %s)", c.opts.Mode, time.Since(began).Round(10*time.Millisecond), c.paths.admin)
	return nil
}

// pickPorts reserves free loopback ports, holding them all open until every
// one is chosen so no two are equal.
func (c *Cluster) pickPorts() error {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			_ = l.Close()
		}
	}()
	p := &c.st.Ports
	for _, dst := range []*int{&p.Etcd, &p.EtcdPeer, &p.APIServer, &p.ControllerManager, &p.Scheduler,
		&p.Kubelet, &p.KubeletHealthz, &p.KubeProxyHealthz, &p.KubeProxyMetrics} {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return fmt.Errorf("failed to find a free port: %w", err)
		}
		ls = append(ls, l)
		*dst = l.Addr().(*net.TCPAddr).Port
	}
	return nil
}

// component identities: the client certificates each component presents.
var identities = []struct {
	name string
	req  certRequest
}{
	{"admin", certRequest{CommonName: "kubeharness-admin", Organization: []string{"system:masters"}, Client: true}},
	{"apiserver-kubelet-client", certRequest{CommonName: "kube-apiserver-kubelet-client", Organization: []string{"system:masters"}, Client: true}},
	{"controller-manager", certRequest{CommonName: "system:kube-controller-manager", Client: true}},
	{"scheduler", certRequest{CommonName: "system:kube-scheduler", Client: true}},
	{"kubelet", certRequest{CommonName: "system:node:" + NodeName, Organization: []string{"system:nodes"}, Client: true}},
	{"kube-proxy", certRequest{CommonName: "system:kube-proxy", Client: true}},
}

// NodeName is the name of the single node in Node mode. The kubelet runs
// with --hostname-override=localhost so that the API server reaches it (logs,
// exec) on the loopback interface.
const NodeName = "localhost"

// writePKI creates the CA, serving and client certificates, the
// service-account key pair and one kubeconfig per identity.
func (c *Cluster) writePKI() error {
	ca, err := newCA("kubeharness-ca")
	if err != nil {
		return err
	}
	if _, _, err := ca.writeFiles(c.paths.pki, "ca"); err != nil {
		return err
	}
	c.caPEM = ca.CertPEM
	serviceIP, err := firstServiceIP(c.opts.ServiceCIDR)
	if err != nil {
		return err
	}
	ips := []net.IP{net.ParseIP("127.0.0.1"), serviceIP}
	if c.opts.Mode == Node {
		ips = append(ips, net.ParseIP(c.opts.NodeIP))
	}
	serving, err := ca.issue(certRequest{
		CommonName: "kube-apiserver",
		DNSNames: []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
			"kubernetes.default.svc.cluster.local"},
		IPs:    ips,
		Server: true,
	})
	if err != nil {
		return err
	}
	if _, _, err := serving.writeFiles(c.paths.pki, "apiserver"); err != nil {
		return err
	}
	kubeletServing, err := ca.issue(certRequest{CommonName: NodeName, DNSNames: []string{NodeName},
		IPs: []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP(c.opts.NodeIP)}, Server: true})
	if err != nil {
		return err
	}
	if _, _, err := kubeletServing.writeFiles(c.paths.pki, "kubelet-serving"); err != nil {
		return err
	}
	priv, pub, err := newServiceAccountKey()
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(c.paths.pki, "sa.key"), priv, 0o600); err != nil {
		return fmt.Errorf("failed to write service-account key: %w", err)
	}
	if err := os.WriteFile(filepath.Join(c.paths.pki, "sa.pub"), pub, 0o600); err != nil {
		return fmt.Errorf("failed to write service-account public key: %w", err)
	}
	for _, id := range identities {
		kp, err := ca.issue(id.req)
		if err != nil {
			return err
		}
		if _, _, err := kp.writeFiles(c.paths.pki, id.name); err != nil {
			return err
		}
		path := filepath.Join(c.paths.kubeconfigs, id.name+".kubeconfig")
		if id.name == "admin" {
			path = c.paths.admin
			c.adminCertPEM, c.adminKeyPEM = kp.CertPEM, kp.KeyPEM
		}
		if err := writeKubeconfig(path, c.serverURL(), ca.CertPEM, kp.CertPEM, kp.KeyPEM, id.name); err != nil {
			return err
		}
	}
	return nil
}

// renderKubeconfig returns a kubeconfig with one cluster, user and context,
// all credentials embedded.
func renderKubeconfig(server string, caPEM, certPEM, keyPEM []byte, user string) ([]byte, error) {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["kubeharness"] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: caPEM}
	cfg.AuthInfos[user] = &clientcmdapi.AuthInfo{ClientCertificateData: certPEM, ClientKeyData: keyPEM}
	cfg.Contexts["kubeharness"] = &clientcmdapi.Context{Cluster: "kubeharness", AuthInfo: user, Namespace: "default"}
	cfg.CurrentContext = "kubeharness"
	data, err := clientcmd.Write(*cfg)
	if err != nil {
		return nil, fmt.Errorf("failed to render kubeconfig for %s: %w", user, err)
	}
	return data, nil
}

func writeKubeconfig(path, server string, caPEM, certPEM, keyPEM []byte, user string) error {
	data, err := renderKubeconfig(server, caPEM, certPEM, keyPEM, user)
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return fmt.Errorf("failed to write %s: %w", path, err)
	}
	return nil
}

// firstServiceIP returns the first host address of cidr: the ClusterIP of
// the `kubernetes` Service.
func firstServiceIP(cidr string) (net.IP, error) {
	_, n, err := net.ParseCIDR(cidr)
	if err != nil {
		return nil, fmt.Errorf("invalid service CIDR %q: %w", cidr, err)
	}
	ip := n.IP.To4()
	if ip == nil {
		return nil, fmt.Errorf("invalid service CIDR %q: not IPv4", cidr)
	}
	out := make(net.IP, 4)
	copy(out, ip)
	out[3]++
	return out, nil
}

func (c *Cluster) serverURL() string {
	return "https://127.0.0.1:" + strconv.Itoa(c.st.Ports.APIServer)
}

func (c *Cluster) newComponent(name, bin string, args ...string) *component {
	comp := &component{
		Name:    name,
		Path:    bin,
		Args:    args,
		Env:     []string{dirEnv + "=" + c.opts.Dir},
		LogPath: filepath.Join(c.paths.logs, name+".log"),
	}
	return comp
}

// launch starts comp, records it in the state file and waits for check.
func (c *Cluster) launch(ctx context.Context, comp *component, check func(context.Context) error) error {
	began := time.Now()
	if err := comp.start(); err != nil {
		return err
	}
	c.mu.Lock()
	replaced := false
	for i, old := range c.st.Components {
		if old.Name == comp.Name {
			c.st.Components[i], replaced = comp, true
		}
	}
	if !replaced {
		c.st.Components = append(c.st.Components, comp)
	}
	c.mu.Unlock()
	if err := c.saveState(); err != nil {
		return err
	}
	if err := waitReady(ctx, comp, c.opts.StartTimeout, check); err != nil {
		return err
	}
	c.opts.Logf("kubeharness: %s ready in %s (pid %d)", comp.Name, time.Since(began).Round(10*time.Millisecond), comp.PID)
	return nil
}

func (c *Cluster) bin(name string) string { return filepath.Join(c.opts.BinDir, name) }

func (c *Cluster) pki(name string) string { return filepath.Join(c.paths.pki, name) }

func (c *Cluster) startEtcd(ctx context.Context) error {
	p := c.st.Ports
	client := fmt.Sprintf("http://127.0.0.1:%d", p.Etcd)
	peer := fmt.Sprintf("http://127.0.0.1:%d", p.EtcdPeer)
	comp := c.newComponent("etcd", c.opts.EtcdPath,
		"--name=kubeharness",
		"--data-dir="+c.paths.etcd,
		"--listen-client-urls="+client,
		"--advertise-client-urls="+client,
		"--listen-peer-urls="+peer,
		"--initial-advertise-peer-urls="+peer,
		"--initial-cluster=kubeharness="+peer,
		"--listen-metrics-urls=",
		"--unsafe-no-fsync",
		"--logger=zap",
		"--log-outputs=stderr",
	)
	httpc := &http.Client{Timeout: 2 * time.Second}
	return c.launch(ctx, comp, func(ctx context.Context) error {
		body, err := get(ctx, httpc, client+"/health")
		if err != nil {
			return err
		}
		if !strings.Contains(body, `"health":"true"`) {
			return fmt.Errorf("etcd not healthy: %s", body)
		}
		return nil
	})
}

func (c *Cluster) apiServerArgs() []string {
	p := c.st.Ports
	advertise, reconciler := "127.0.0.1", "none"
	if c.opts.Mode == Node {
		advertise, reconciler = c.opts.NodeIP, "lease"
	}
	args := []string{
		fmt.Sprintf("--etcd-servers=http://127.0.0.1:%d", p.Etcd),
		"--bind-address=127.0.0.1",
		fmt.Sprintf("--secure-port=%d", p.APIServer),
		"--advertise-address=" + advertise,
		"--endpoint-reconciler-type=" + reconciler,
		"--cert-dir=" + c.paths.pki,
		"--tls-cert-file=" + c.pki("apiserver.crt"),
		"--tls-private-key-file=" + c.pki("apiserver.key"),
		"--client-ca-file=" + c.pki("ca.crt"),
		"--kubelet-client-certificate=" + c.pki("apiserver-kubelet-client.crt"),
		"--kubelet-client-key=" + c.pki("apiserver-kubelet-client.key"),
		"--kubelet-preferred-address-types=Hostname",
		"--service-account-issuer=" + serviceAccountIssuer,
		"--service-account-key-file=" + c.pki("sa.pub"),
		"--service-account-signing-key-file=" + c.pki("sa.key"),
		"--service-cluster-ip-range=" + c.opts.ServiceCIDR,
		"--authorization-mode=Node,RBAC",
		"--allow-privileged=true",
		"--profiling=false",
		"--event-ttl=1h",
	}
	return append(args, c.opts.ExtraAPIServerArgs...)
}

func (c *Cluster) startAPIServer(ctx context.Context) error {
	comp := c.newComponent("kube-apiserver", c.bin("kube-apiserver"), c.apiServerArgs()...)
	httpc, err := c.adminHTTPClient()
	if err != nil {
		return err
	}
	return c.launch(ctx, comp, func(ctx context.Context) error {
		body, err := get(ctx, httpc, c.serverURL()+"/readyz")
		if err != nil {
			return err
		}
		if strings.TrimSpace(body) != "ok" {
			return fmt.Errorf("readyz: %s", body)
		}
		return nil
	})
}

func (c *Cluster) startControllerManager(ctx context.Context) error {
	kc := filepath.Join(c.paths.kubeconfigs, "controller-manager.kubeconfig")
	comp := c.newComponent("kube-controller-manager", c.bin("kube-controller-manager"),
		"--kubeconfig="+kc,
		"--authentication-kubeconfig="+kc,
		"--authorization-kubeconfig="+kc,
		"--bind-address=127.0.0.1",
		fmt.Sprintf("--secure-port=%d", c.st.Ports.ControllerManager),
		"--cert-dir="+filepath.Join(c.opts.Dir, "controller-manager"),
		"--leader-elect=false",
		"--use-service-account-credentials=true",
		"--service-account-private-key-file="+c.pki("sa.key"),
		"--root-ca-file="+c.pki("ca.crt"),
		"--cluster-signing-cert-file="+c.pki("ca.crt"),
		"--cluster-signing-key-file="+c.pki("ca.key"),
		"--flex-volume-plugin-dir="+filepath.Join(c.opts.Dir, "volume-plugins"),
		"--profiling=false",
	)
	return c.launch(ctx, comp, c.healthzCheck(c.st.Ports.ControllerManager))
}

// healthzCheck probes a component's self-signed HTTPS /healthz on loopback.
func (c *Cluster) healthzCheck(port int) func(context.Context) error {
	httpc := &http.Client{Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // self-signed loopback health port
	}}
	url := fmt.Sprintf("https://127.0.0.1:%d/healthz", port)
	return func(ctx context.Context) error {
		body, err := get(ctx, httpc, url)
		if err != nil {
			return err
		}
		if strings.TrimSpace(body) != "ok" {
			return fmt.Errorf("healthz: %s", body)
		}
		return nil
	}
}

func (c *Cluster) adminHTTPClient() (*http.Client, error) {
	cert, err := tls.X509KeyPair(c.adminCertPEM, c.adminKeyPEM)
	if err != nil {
		return nil, fmt.Errorf("failed to load admin certificate: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(c.caPEM) {
		return nil, errors.New("failed to load cluster CA")
	}
	return &http.Client{Transport: &http.Transport{
		TLSClientConfig: &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: pool, MinVersion: tls.VersionTLS12},
	}}, nil
}

func get(ctx context.Context, httpc *http.Client, url string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := httpc.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: %s: %s", url, resp.Status, strings.TrimSpace(string(body)))
	}
	return string(body), nil
}

// Kubeconfig returns the path of the admin kubeconfig (system:masters).
func (c *Cluster) Kubeconfig() string { return c.paths.admin }

// RESTConfig returns a fresh admin client configuration.
func (c *Cluster) RESTConfig() *rest.Config {
	return &rest.Config{
		Host: c.serverURL(),
		TLSClientConfig: rest.TLSClientConfig{
			CAData:   c.caPEM,
			CertData: c.adminCertPEM,
			KeyData:  c.adminKeyPEM,
		},
		QPS:   100,
		Burst: 200,
	}
}

// Dir returns the directory holding all of the cluster's state and logs.
func (c *Cluster) Dir() string { return c.opts.Dir }

// Mode returns the mode the cluster was started in.
func (c *Cluster) Mode() Mode { return c.opts.Mode }

// LogPath returns the log file of a component ("etcd", "kube-apiserver",
// "kube-controller-manager", "kube-scheduler", "containerd", "kubelet",
// "kube-proxy").
func (c *Cluster) LogPath(component string) string {
	return filepath.Join(c.paths.logs, component+".log")
}

// PIDs returns the PIDs of the components the harness started, by name.
func (c *Cluster) PIDs() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]int, len(c.st.Components))
	for _, comp := range c.st.Components {
		if comp.PID > 0 {
			out[comp.Name] = comp.PID
		}
	}
	return out
}

// RestartAPIServer stops kube-apiserver and starts it again with the same
// flags and port, returning once it is ready: clients see a real outage.
func (c *Cluster) RestartAPIServer(ctx context.Context) error {
	comp := c.componentByName("kube-apiserver")
	if comp == nil {
		return errors.New("kube-apiserver is not running")
	}
	if err := comp.stop(ctx, stopGrace, c.opts.Dir); err != nil {
		return fmt.Errorf("failed to stop kube-apiserver: %w", err)
	}
	if err := c.startAPIServer(ctx); err != nil {
		return fmt.Errorf("failed to restart kube-apiserver: %w", err)
	}
	return nil
}

func (c *Cluster) componentByName(name string) *component {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, comp := range c.st.Components {
		if comp.Name == name {
			return comp
		}
	}
	return nil
}

func (c *Cluster) saveState() error {
	c.mu.Lock()
	data, err := json.MarshalIndent(c.st, "", "  ")
	c.mu.Unlock()
	if err != nil {
		return fmt.Errorf("failed to encode state: %w", err)
	}
	path := filepath.Join(c.opts.Dir, stateFile)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return fmt.Errorf("failed to write %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("failed to write %s: %w", path, err)
	}
	return nil
}

// Attach returns the cluster recorded in dir by a Start in another process,
// so that it can be inspected or stopped (`kubeharness down`).
func Attach(dir string) (*Cluster, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("failed to resolve %s: %w", dir, err)
	}
	data, err := os.ReadFile(filepath.Join(abs, stateFile))
	if err != nil {
		return nil, fmt.Errorf("failed to read cluster state: %w", err)
	}
	var st state
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, fmt.Errorf("failed to decode %s: %w", filepath.Join(abs, stateFile), err)
	}
	mode, err := ParseMode(st.Mode)
	if err != nil {
		return nil, err
	}
	opts := Options{Mode: mode, Dir: st.Dir, NodeIP: st.NodeIP, Bridge: st.Bridge, KubeletDir: st.KubeletDir,
		PodCIDR: st.PodCIDR, Logf: func(string, ...any) {}}
	c := &Cluster{opts: opts, st: st, paths: newPaths(st.Dir)}
	if data, err := os.ReadFile(c.pki("ca.crt")); err == nil {
		c.caPEM = data
	}
	if data, err := os.ReadFile(c.pki("admin.crt")); err == nil {
		c.adminCertPEM = data
	}
	if data, err := os.ReadFile(c.pki("admin.key")); err == nil {
		c.adminKeyPEM = data
	}
	return c, nil
}

// SetLogf sets the function that receives progress messages (Attach starts
// with none).
func (c *Cluster) SetLogf(logf func(format string, args ...any)) {
	if logf != nil {
		c.opts.Logf = logf
	}
}

// Running reports which recorded components are alive.
func (c *Cluster) Running() map[string]bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]bool, len(c.st.Components))
	for _, comp := range c.st.Components {
		out[comp.Name] = comp.alive(c.opts.Dir)
	}
	return out
}

// Stop stops every component in reverse start order and, in Node mode,
// removes the pods' containers, mounts, network interfaces, iptables rules
// and routes the cluster created. It removes a temporary Dir. Stop is
// idempotent and also cleans up after a Start that failed half-way.
func (c *Cluster) Stop(ctx context.Context) error {
	var errs []error
	holdsNode := c.opts.Mode == Node && c.st.HoldsNode
	if holdsNode {
		errs = append(errs, c.stopNode(ctx)...)
	}
	c.mu.Lock()
	comps := append([]*component(nil), c.st.Components...)
	c.mu.Unlock()
	for i := len(comps) - 1; i >= 0; i-- {
		if err := comps[i].stop(ctx, stopGrace, c.opts.Dir); err != nil {
			errs = append(errs, err)
		}
	}
	for _, pid := range ownedProcesses(c.opts.Dir) {
		straggler := &component{Name: fmt.Sprintf("process %d", pid), PID: pid}
		if err := straggler.stop(ctx, 2*time.Second, c.opts.Dir); err != nil {
			errs = append(errs, err)
		}
	}
	if holdsNode {
		errs = append(errs, c.cleanNodeHost()...)
	}
	if c.lock != nil {
		_ = c.lock.Close()
		c.lock = nil
	}
	if len(errs) > 0 {
		return fmt.Errorf("failed to stop cluster in %s: %w", c.opts.Dir, errors.Join(errs...))
	}
	if c.st.OwnsDir && !c.opts.KeepDir {
		if err := os.RemoveAll(c.opts.Dir); err != nil {
			return fmt.Errorf("failed to remove %s: %w", c.opts.Dir, err)
		}
	} else if err := os.Remove(filepath.Join(c.opts.Dir, stateFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("failed to remove state file: %w", err)
	}
	return nil
}
