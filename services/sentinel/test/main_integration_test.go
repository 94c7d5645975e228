//go:build integration

// Package test runs meshcsi-sentinel, as a separate process, against a real
// etcd and kube-apiserver (with kube-controller-manager for garbage
// collection) started by libs/kubeharness. The sentinel runs under the exact
// RBAC documented in docs/sentinel.md, impersonating its ServiceAccount.
package test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/yaml"

	"github.com/meshcsi/meshcsi/libs/kubeharness"
)

var (
	cluster *kubeharness.Cluster
	admin   *kubernetes.Clientset
	binPath string
)

func TestMain(m *testing.M) {
	os.Exit(mainErr(m))
}

func mainErr(m *testing.M) int {
	ctx := context.Background()
	tmp, err := os.MkdirTemp("", "sentinel-it-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(tmp)
	binPath = os.Getenv("MESHCSI_SENTINEL_BIN")
	if binPath == "" {
		binPath = filepath.Join(tmp, "meshcsi-sentinel")
		// The binary is the parent module's: build it from there.
		build := exec.Command("go", "build", "-o", binPath, "./cmd/meshcsi-sentinel")
		build.Dir = ".."
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "build:", err)
			return 1
		}
	}
	// The benchmark runs without kube-controller-manager: its pod GC and
	// eviction must not delete the benchmark's pods, and it is load.
	bench := os.Getenv("MESHCSI_BENCH_PODS") != ""
	var apiArgs []string
	if bench {
		// The scale benchmark counts each measured client's requests in
		// the API server's audit log (only theirs are logged).
		if apiArgs, err = benchAuditArgs(tmp); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	cluster, err = kubeharness.Start(ctx, kubeharness.Options{Mode: kubeharness.ControlPlane, ControllerManager: !bench,
		ExtraAPIServerArgs: apiArgs,
		Logf:               func(f string, a ...any) { fmt.Fprintf(os.Stderr, "harness: "+f+"\n", a...) }})
	if err != nil {
		fmt.Fprintln(os.Stderr, "start control plane:", err)
		return 1
	}
	defer func() { _ = cluster.Stop(context.Background()) }()
	admin, err = kubernetes.NewForConfig(cluster.RESTConfig())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	// Pods are bound to this Node (no kubelet runs), so the pod garbage
	// collector does not treat them as orphans.
	if _, err := admin.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: nodeName}}, metav1.CreateOptions{}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

const nodeName = "node-1"

// release is one installed meshcsi release, as the chart would render it.
type release struct {
	name, ns, driver string
	kubeconfig       string // impersonates the sentinel's ServiceAccount
	handoffConfig    string // impersonates the hand-off's ServiceAccount
	upgradeConfig    string // impersonates the pre-upgrade hook's ServiceAccount
}

func labels(r *release, component string) map[string]string {
	return map[string]string{
		"app.kubernetes.io/name": "meshcsi", "app.kubernetes.io/instance": r.name, "app.kubernetes.io/part-of": "meshcsi",
		"app.kubernetes.io/managed-by": "Helm", "app.kubernetes.io/component": component, "meshcsi.io/driver-name": r.driver,
	}
}

func meta(r *release, name, component string, namespaced bool) metav1.ObjectMeta {
	m := metav1.ObjectMeta{Name: name, Labels: labels(r, component),
		Annotations: map[string]string{"meta.helm.sh/release-name": r.name, "meta.helm.sh/release-namespace": r.ns, "helm.sh/resource-policy": "keep"}}
	if namespaced {
		m.Namespace = r.ns
	}
	return m
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// install creates what the chart would: the driver's objects, the
// sentinel's ServiceAccount with the documented RBAC, the install marker.
func install(t *testing.T, name, driver string) *release {
	t.Helper()
	ctx := context.Background()
	r := &release{name: name, ns: name + "-system", driver: driver}
	_, err := admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: r.ns}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	f := r.name
	_, err = admin.StorageV1().CSIDrivers().Create(ctx, &storagev1.CSIDriver{ObjectMeta: meta(r, driver, "driver", false),
		Spec: storagev1.CSIDriverSpec{VolumeLifecycleModes: []storagev1.VolumeLifecycleMode{storagev1.VolumeLifecycleEphemeral}}}, metav1.CreateOptions{})
	must(t, err)
	sel := map[string]string{"app.kubernetes.io/instance": r.name, "app.kubernetes.io/component": "driver"}
	_, err = admin.AppsV1().DaemonSets(r.ns).Create(ctx, &appsv1.DaemonSet{ObjectMeta: meta(r, f+"-driver", "driver", true),
		Spec: appsv1.DaemonSetSpec{Selector: &metav1.LabelSelector{MatchLabels: sel},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: sel},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "driver", Image: "meshcsi/driver:test"}}}}}}, metav1.CreateOptions{})
	must(t, err)
	for _, sa := range []string{f + "-driver", f + "-sentinel", f + "-handoff"} {
		comp := strings.TrimPrefix(sa, f+"-")
		_, err = admin.CoreV1().ServiceAccounts(r.ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: meta(r, sa, comp, true)}, metav1.CreateOptions{})
		must(t, err)
	}
	_, err = admin.CoreV1().Services(r.ns).Create(ctx, &corev1.Service{ObjectMeta: meta(r, f+"-driver-metrics", "monitoring", true),
		Spec: corev1.ServiceSpec{ClusterIP: corev1.ClusterIPNone, Ports: []corev1.ServicePort{{Name: "metrics", Port: 9809}}, Selector: sel}}, metav1.CreateOptions{})
	must(t, err)
	_, err = admin.CoreV1().ConfigMaps(r.ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: meta(r, f+"-dashboard", "monitoring", true)}, metav1.CreateOptions{})
	must(t, err)
	_, err = admin.RbacV1().ClusterRoles().Create(ctx, &rbacv1.ClusterRole{ObjectMeta: meta(r, f+"-driver-scc", "driver", false)}, metav1.CreateOptions{})
	must(t, err)
	installMarker(t, r)
	applySentinelRBAC(t, r)
	r.kubeconfig = impersonatingKubeconfig(t, "system:serviceaccount:"+r.ns+":"+f+"-sentinel")
	r.handoffConfig = impersonatingKubeconfig(t, "system:serviceaccount:"+r.ns+":"+f+"-handoff")
	r.upgradeConfig = impersonatingKubeconfig(t, "system:serviceaccount:"+r.ns+":"+f+"-upgrade")
	createSentinelJob(t, r)
	return r
}

// createSentinelJob creates the sentinel Job suspended, as the chart does
// (the hand-off resumes it; its pod is never scheduled here: no scheduler
// runs).
func createSentinelJob(t *testing.T, r *release) *batchv1.Job {
	t.Helper()
	suspend, manual := true, true
	jobSel := map[string]string{"app.kubernetes.io/instance": r.name, "app.kubernetes.io/component": "sentinel"}
	job, err := admin.BatchV1().Jobs(r.ns).Create(context.Background(), &batchv1.Job{ObjectMeta: meta(r, r.name+"-sentinel", "sentinel", true),
		Spec: batchv1.JobSpec{Suspend: &suspend, ManualSelector: &manual, Selector: &metav1.LabelSelector{MatchLabels: jobSel},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: jobSel},
				Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever, ServiceAccountName: r.name + "-sentinel",
					Containers: []corev1.Container{{Name: "sentinel", Image: "meshcsi/sentinel:test", Args: []string{"run"}}}}}}}, metav1.CreateOptions{})
	must(t, err)
	return job
}

func installMarker(t *testing.T, r *release) {
	t.Helper()
	m := meta(r, r.name+"-install", "install-marker", true)
	delete(m.Annotations, "helm.sh/resource-policy")
	_, err := admin.CoreV1().ConfigMaps(r.ns).Create(context.Background(), &corev1.ConfigMap{ObjectMeta: m}, metav1.CreateOptions{})
	must(t, err)
}

// rbacBlock returns the documents of the YAML block between the rbac markers
// of docs/sentinel.md, for r: the hand-off's ClusterRole and Role, the
// sentinel's ClusterRole and Role, the pre-upgrade hook's Role.
func rbacBlock(t *testing.T, r *release) []string {
	t.Helper()
	doc, err := os.ReadFile("../../../docs/sentinel.md")
	must(t, err)
	block := regexp.MustCompile("(?s)<!-- rbac:begin -->\\s*```yaml\\n(.*?)```\\s*<!-- rbac:end -->").FindSubmatch(doc)
	if block == nil {
		t.Fatal("docs/sentinel.md has no rbac block")
	}
	text := strings.NewReplacer("{{fullname}}", r.name, "{{namespace}}", r.ns, "{{driverName}}", r.driver).Replace(string(block[1]))
	parts := strings.Split(text, "\n---\n")
	if len(parts) != 5 {
		t.Fatalf("rbac block has %d documents, want ClusterRole and Role of the hand-off, then of the sentinel, then the pre-upgrade hook's Role", len(parts))
	}
	return parts
}

func noWildcard(t *testing.T, rules []rbacv1.PolicyRule) {
	t.Helper()
	for _, rule := range rules {
		for _, s := range append(append(rule.Verbs, rule.Resources...), rule.APIGroups...) {
			if s == "*" {
				t.Fatalf("wildcard in documented RBAC: %+v", rule)
			}
		}
	}
}

// applyUpgradeRBAC creates the pre-upgrade hook's Role of docs/sentinel.md
// and binds it to <release>-upgrade, as Helm does for the hook (and deletes
// both when the hook has run: the caller's cleanup).
func applyUpgradeRBAC(t *testing.T, r *release) {
	t.Helper()
	ctx := context.Background()
	var role rbacv1.Role
	must(t, yaml.UnmarshalStrict([]byte(rbacBlock(t, r)[4]), &role))
	name := r.name + "-upgrade"
	if role.Name != name {
		t.Fatalf("rbac block: Role %q, want %q", role.Name, name)
	}
	noWildcard(t, role.Rules)
	role.ObjectMeta = meta(r, name, "upgrade", true)
	delete(role.Annotations, "helm.sh/resource-policy")
	_, err := admin.RbacV1().Roles(r.ns).Create(ctx, &role, metav1.CreateOptions{})
	must(t, err)
	rb := &rbacv1.RoleBinding{ObjectMeta: role.ObjectMeta,
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: name},
		Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: name, Namespace: r.ns}}}
	_, err = admin.RbacV1().RoleBindings(r.ns).Create(ctx, rb, metav1.CreateOptions{})
	must(t, err)
	t.Cleanup(func() {
		_ = admin.RbacV1().RoleBindings(r.ns).Delete(context.Background(), name, metav1.DeleteOptions{})
		_ = admin.RbacV1().Roles(r.ns).Delete(context.Background(), name, metav1.DeleteOptions{})
	})
}

// applySentinelRBAC creates the ClusterRoles and Roles of the hand-off and
// the sentinel of docs/sentinel.md (the YAML block between the rbac markers)
// and binds them.
func applySentinelRBAC(t *testing.T, r *release) {
	t.Helper()
	ctx := context.Background()
	parts := rbacBlock(t, r)
	var err error
	for i, account := range []string{"handoff", "sentinel"} {
		var cr rbacv1.ClusterRole
		var role rbacv1.Role
		must(t, yaml.UnmarshalStrict([]byte(parts[2*i]), &cr))
		must(t, yaml.UnmarshalStrict([]byte(parts[2*i+1]), &role))
		name := r.name + "-" + account
		if cr.Name != name || role.Name != name {
			t.Fatalf("rbac block: ClusterRole %q and Role %q, want %q", cr.Name, role.Name, name)
		}
		noWildcard(t, cr.Rules)
		noWildcard(t, role.Rules)
		cr.ObjectMeta = meta(r, name, account, false)
		role.ObjectMeta = meta(r, name, account, true)
		_, err = admin.RbacV1().ClusterRoles().Create(ctx, &cr, metav1.CreateOptions{})
		must(t, err)
		_, err = admin.RbacV1().Roles(r.ns).Create(ctx, &role, metav1.CreateOptions{})
		must(t, err)
		subj := []rbacv1.Subject{{Kind: "ServiceAccount", Name: name, Namespace: r.ns}}
		_, err = admin.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{ObjectMeta: meta(r, name, account, false),
			RoleRef: rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: name}, Subjects: subj}, metav1.CreateOptions{})
		must(t, err)
		_, err = admin.RbacV1().RoleBindings(r.ns).Create(ctx, &rbacv1.RoleBinding{ObjectMeta: meta(r, name, account, true),
			RoleRef: rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: name}, Subjects: subj}, metav1.CreateOptions{})
		must(t, err)
	}
}

func impersonatingKubeconfig(t *testing.T, user string) string {
	t.Helper()
	cfg, err := clientcmd.LoadFromFile(cluster.Kubeconfig())
	must(t, err)
	for _, ai := range cfg.AuthInfos {
		ai.Impersonate = user
	}
	path := filepath.Join(t.TempDir(), "kubeconfig")
	must(t, clientcmd.WriteToFile(*cfg, path))
	return path
}

// blockingPod creates a pod in ns using driver (n volumes), bound to a node
// that has no kubelet: it only goes when deleted with grace 0.
func blockingPod(t *testing.T, ns, name, driver string, volumes int, finalizer bool) {
	t.Helper()
	ctx := context.Background()
	ensureNamespace(t, ns)
	var err error
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: corev1.PodSpec{NodeName: nodeName, Containers: []corev1.Container{{Name: "c", Image: "pause"}}}}
	if finalizer {
		p.Finalizers = []string{"meshcsi.io/test-hold"}
	}
	for i := 0; i < volumes; i++ {
		p.Spec.Volumes = append(p.Spec.Volumes, corev1.Volume{Name: fmt.Sprintf("sock%d", i),
			VolumeSource: corev1.VolumeSource{CSI: &corev1.CSIVolumeSource{Driver: driver}}})
	}
	// A new namespace's default ServiceAccount appears a moment later
	// (until then the API server refuses the pod as Forbidden).
	_ = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		_, err = admin.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{})
		return !apierrors.IsForbidden(err), nil
	})
	must(t, err)
}

// ensureNamespace creates ns and its default ServiceAccount (which
// kube-controller-manager would create, but the benchmark runs without it).
func ensureNamespace(t *testing.T, ns string) {
	t.Helper()
	ctx := context.Background()
	_, err := admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	_, err = admin.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
}

func deletePod(t *testing.T, ns, name string) {
	t.Helper()
	zero := int64(0)
	err := admin.CoreV1().Pods(ns).Delete(context.Background(), name, metav1.DeleteOptions{GracePeriodSeconds: &zero})
	if err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
}

// proc is a running meshcsi-sentinel.
type proc struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	out  bytes.Buffer
	done chan struct{}
	code int
	// lineSeen is signalled on every output line.
	lineSeen chan struct{}
}

func start(t *testing.T, r *release, args ...string) *proc {
	t.Helper()
	kubeconfig := r.kubeconfig
	switch args[0] {
	case "handoff":
		kubeconfig = r.handoffConfig
	case "prepare-upgrade":
		kubeconfig = r.upgradeConfig
	}
	full := append([]string{args[0], "--kubeconfig", kubeconfig, "--namespace", r.ns, "--release", r.name,
		"--driver-name", r.driver, "--report-interval", "1s", "--log-format", "json"}, args[1:]...)
	return startProc(t, "sentinel "+args[0], exec.Command(binPath, full...))
}

// startProc starts cmd and collects its output (stderr, then stdout) for
// waitOutput; name labels its output in a failed test's log.
func startProc(t *testing.T, name string, cmd *exec.Cmd) *proc {
	t.Helper()
	p := &proc{cmd: cmd, done: make(chan struct{}), lineSeen: make(chan struct{}, 1)}
	p.cmd.Env = append(os.Environ(), "POD_NAME=")
	stderr, err := p.cmd.StderrPipe()
	must(t, err)
	p.cmd.Stdout = &lockedWriter{p: p}
	must(t, p.cmd.Start())
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			p.mu.Lock()
			p.out.Write(sc.Bytes())
			p.out.WriteByte('\n')
			p.mu.Unlock()
			select {
			case p.lineSeen <- struct{}{}:
			default:
			}
		}
		err := p.cmd.Wait()
		p.code = p.cmd.ProcessState.ExitCode()
		_ = err
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("%s output:\n%s", name, p.output())
		}
	})
	return p
}

type lockedWriter struct{ p *proc }

func (w *lockedWriter) Write(b []byte) (int, error) {
	w.p.mu.Lock()
	defer w.p.mu.Unlock()
	return w.p.out.Write(b)
}

func (p *proc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

func (p *proc) waitOutput(t *testing.T, substr string, timeout time.Duration) {
	t.Helper()
	deadline := time.After(timeout)
	for !strings.Contains(p.output(), substr) {
		select {
		case <-p.lineSeen:
		case <-time.After(100 * time.Millisecond):
		case <-p.done:
			if !strings.Contains(p.output(), substr) {
				t.Fatalf("sentinel exited (%d) without printing %q", p.code, substr)
			}
		case <-deadline:
			t.Fatalf("sentinel did not print %q within %s", substr, timeout)
		}
	}
}

func (p *proc) wait(t *testing.T, timeout time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
		return p.code
	case <-time.After(timeout):
		t.Fatalf("sentinel still running after %s", timeout)
		return -1
	}
}

func (p *proc) running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

func (p *proc) kill() { _ = p.cmd.Process.Signal(syscall.SIGKILL); <-p.done }

var _ io.Writer = (*lockedWriter)(nil)

// handoff runs `meshcsi-sentinel handoff` and checks it succeeded.
func handoff(t *testing.T, r *release) {
	t.Helper()
	p := start(t, r, "handoff")
	if code := p.wait(t, 30*time.Second); code != 0 {
		t.Fatalf("handoff exit %d:\n%s", code, p.output())
	}
}

// helmDeletes simulates what `helm uninstall` removes after the hook: the
// objects without the keep policy (here the install marker).
func helmDeletes(t *testing.T, r *release) {
	t.Helper()
	ctx := context.Background()
	name := r.name + "-handoff"
	for _, del := range []func() error{
		func() error {
			return admin.CoreV1().ConfigMaps(r.ns).Delete(ctx, r.name+"-install", metav1.DeleteOptions{})
		},
		// The hand-off's account and RBAC are not kept.
		func() error { return admin.CoreV1().ServiceAccounts(r.ns).Delete(ctx, name, metav1.DeleteOptions{}) },
		func() error { return admin.RbacV1().Roles(r.ns).Delete(ctx, name, metav1.DeleteOptions{}) },
		func() error { return admin.RbacV1().RoleBindings(r.ns).Delete(ctx, name, metav1.DeleteOptions{}) },
		func() error { return admin.RbacV1().ClusterRoles().Delete(ctx, name, metav1.DeleteOptions{}) },
		func() error { return admin.RbacV1().ClusterRoleBindings().Delete(ctx, name, metav1.DeleteOptions{}) },
	} {
		if err := del(); err != nil && !apierrors.IsNotFound(err) {
			t.Fatal(err)
		}
	}
}

// driverObjectsExist reports whether the CSIDriver and DaemonSet are there.
func driverObjectsExist(t *testing.T, r *release) bool {
	t.Helper()
	ctx := context.Background()
	_, err1 := admin.StorageV1().CSIDrivers().Get(ctx, r.driver, metav1.GetOptions{})
	_, err2 := admin.AppsV1().DaemonSets(r.ns).Get(ctx, r.name+"-driver", metav1.GetOptions{})
	return err1 == nil && err2 == nil
}

// releaseGone waits until nothing labelled for the release is left.
func releaseGone(t *testing.T, r *release, timeout time.Duration) {
	t.Helper()
	ctx := context.Background()
	sel := metav1.ListOptions{LabelSelector: "app.kubernetes.io/instance=" + r.name}
	var left []string
	err := wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		left = nil
		add := func(kind string, n int, err error) {
			must(t, err)
			if n > 0 {
				left = append(left, fmt.Sprintf("%d %s", n, kind))
			}
		}
		csi, err := admin.StorageV1().CSIDrivers().List(ctx, sel)
		add("csidrivers", len(csi.Items), err)
		ds, err := admin.AppsV1().DaemonSets(r.ns).List(ctx, sel)
		add("daemonsets", len(ds.Items), err)
		sa, err := admin.CoreV1().ServiceAccounts(r.ns).List(ctx, sel)
		add("serviceaccounts", len(sa.Items), err)
		cm, err := admin.CoreV1().ConfigMaps(r.ns).List(ctx, sel)
		add("configmaps", len(cm.Items), err)
		svc, err := admin.CoreV1().Services(r.ns).List(ctx, sel)
		add("services", len(svc.Items), err)
		ro, err := admin.RbacV1().Roles(r.ns).List(ctx, sel)
		add("roles", len(ro.Items), err)
		rb, err := admin.RbacV1().RoleBindings(r.ns).List(ctx, sel)
		add("rolebindings", len(rb.Items), err)
		cr, err := admin.RbacV1().ClusterRoles().List(ctx, sel)
		add("clusterroles", len(cr.Items), err)
		crb, err := admin.RbacV1().ClusterRoleBindings().List(ctx, sel)
		add("clusterrolebindings", len(crb.Items), err)
		jobs, err := admin.BatchV1().Jobs(r.ns).List(ctx, sel)
		add("jobs", len(jobs.Items), err)
		_, lerr := admin.CoordinationV1().Leases(r.ns).Get(ctx, r.name+"-sentinel", metav1.GetOptions{})
		if lerr == nil {
			left = append(left, "lease")
		}
		return len(left) == 0, nil
	})
	if err != nil {
		t.Fatalf("release %s not gone after %s: %v", r.name, timeout, left)
	}
}

// restConfig is the admin config (for tests that need raw access).
func restConfig() *rest.Config { return cluster.RESTConfig() }
