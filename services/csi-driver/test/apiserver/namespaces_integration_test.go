//go:build integration

package apiserver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"github.com/moby/sys/mountinfo"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"

	"github.com/meshcsi/meshcsi/libs/kubeharness"
	tc "github.com/meshcsi/meshcsi/services/csi-driver/internal/drivertest"
)

const (
	release    = "meshcsi"
	installNS  = "meshcsi-system"
	driverSA   = "meshcsi-driver"
	selected   = "spire-agent" // limited by the selector mesh=enabled
	listed     = "listed"      // limited to the namespace team-listed
	meshLabel  = "mesh"
	waitBudget = 60 * time.Second
)

// TestIntegrationNamespaceSelector runs the driver binary with the flags
// the chart renders against a real kube-apiserver, as a pod would: the
// in-cluster configuration (KUBERNETES_SERVICE_HOST/PORT, the token and CA
// in /var/run/secrets/kubernetes.io/serviceaccount, put there in the
// driver's own mount namespace) with a real token of its ServiceAccount,
// bound by the chart's RBAC; real mounts:
//   - without a namespaceSelector the chart gives the driver no API access,
//     and the ServiceAccount cannot list namespaces;
//   - with one, it may get, list and watch namespaces and nothing else;
//   - a publish from a labelled namespace mounts; from an unlabelled, a
//     missing or an unlisted namespace it is PermissionDenied naming the
//     source and the namespace, and nothing is mounted;
//   - labelling a namespace, creating a labelled one and removing a label at
//     runtime take effect through the informer (the test waits for the
//     driver's answer to change, no sleeps);
//   - unpublish needs no namespace and leaves no mount.
func TestIntegrationNamespaceSelector(t *testing.T) {
	tc.RequireRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cluster, err := kubeharness.Start(ctx, kubeharness.Options{Mode: kubeharness.ControlPlane})
	if err != nil {
		t.Fatalf("start the control plane (make kube-binaries builds it): %v", err)
	}
	t.Cleanup(func() {
		if err := cluster.Stop(context.Background()); err != nil {
			t.Errorf("stop the control plane: %v", err)
		}
	})
	admin, err := kubernetes.NewForConfig(cluster.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	for name, labels := range map[string]map[string]string{
		installNS: nil, "team-on": {meshLabel: "enabled"}, "team-off": nil,
		"team-other": {meshLabel: "disabled"}, "team-listed": nil,
	} {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
		if _, err := admin.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := admin.CoreV1().ServiceAccounts(installNS).Create(ctx,
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: driverSA}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// A token of the driver's ServiceAccount, as the kubelet projects it.
	tr, err := admin.CoreV1().ServiceAccounts(installNS).CreateToken(ctx, driverSA,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptrTo(int64(3600))}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	adminRC := cluster.RESTConfig()
	asDriver := &rest.Config{Host: adminRC.Host, BearerToken: tr.Status.Token, TLSClientConfig: rest.TLSClientConfig{
		CAFile: adminRC.CAFile, CAData: adminRC.CAData,
	}}
	driverClient, err := kubernetes.NewForConfig(asDriver)
	if err != nil {
		t.Fatal(err)
	}
	driverUser := "system:serviceaccount:" + installNS + ":" + driverSA
	driverGroups := []string{"system:serviceaccounts", "system:serviceaccounts:" + installNS, "system:authenticated"}

	kd := tc.KubeletDir(t)
	srcSelected := filepath.Join(tc.TempDir(t, "src"), "agent")
	srcListed := filepath.Join(tc.TempDir(t, "src"), "listed")
	for _, d := range []string{srcSelected, srcListed, filepath.Join(kd, "plugins", "csi.meshcsi.io"), filepath.Join(kd, "plugins_registry")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("without a namespaceSelector the driver gets no API access", func(t *testing.T) {
		objs := renderChart(t, map[string]string{"kubeletDir": kd, "sources.spire-agent.path": srcSelected})
		if rbac := driverRBAC(objs); len(rbac) != 0 {
			t.Errorf("the chart binds the driver's account although no source has a namespaceSelector: %v", rbac)
		}
		if ds := driverDaemonSet(t, objs); ds.Spec.Template.Spec.AutomountServiceAccountToken == nil || *ds.Spec.Template.Spec.AutomountServiceAccountToken {
			t.Error("the driver pod mounts an API token although it never talks to the API server")
		}
		_, err := driverClient.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
		if !apierrors.IsForbidden(err) {
			t.Errorf("the driver's ServiceAccount without the chart's ClusterRole lists namespaces: %v, want Forbidden", err)
		}
	})

	set := map[string]string{
		"kubeletDir":               kd,
		"sources.spire-agent.path": srcSelected,
		"sources.spire-agent.namespaceSelector.matchLabels." + meshLabel: "enabled",
		"sources." + listed + ".path":                                    srcListed,
		"sources." + listed + ".namespaces":                              "{team-listed}",
	}
	objs := renderChart(t, set)
	t.Run("with a namespaceSelector: read-only namespaces, nothing else", func(t *testing.T) {
		rbac := driverRBAC(objs)
		var roles, bindings int
		for _, doc := range rbac {
			switch doc.Kind {
			case "ClusterRole":
				var cr rbacv1.ClusterRole
				mustUnmarshal(t, doc.raw, &cr)
				for _, r := range cr.Rules {
					if !slices.Equal(r.APIGroups, []string{""}) || !slices.Equal(r.Resources, []string{"namespaces"}) ||
						!slices.Equal(r.Verbs, []string{"list", "watch"}) {
						t.Errorf("ClusterRole %s rule %+v: want exactly list and watch on namespaces (what the informer uses)", cr.Name, r)
					}
				}
				if _, err := admin.RbacV1().ClusterRoles().Create(ctx, &cr, metav1.CreateOptions{}); err != nil {
					t.Fatal(err)
				}
				roles++
			case "ClusterRoleBinding":
				var crb rbacv1.ClusterRoleBinding
				mustUnmarshal(t, doc.raw, &crb)
				if _, err := admin.RbacV1().ClusterRoleBindings().Create(ctx, &crb, metav1.CreateOptions{}); err != nil {
					t.Fatal(err)
				}
				bindings++
			default:
				t.Errorf("the chart gives the driver a %s %s", doc.Kind, doc.Name)
			}
		}
		if roles != 1 || bindings != 1 {
			t.Fatalf("want one ClusterRole and one ClusterRoleBinding for the driver, got %d and %d", roles, bindings)
		}
		if ds := driverDaemonSet(t, objs); ds.Spec.Template.Spec.AutomountServiceAccountToken == nil || !*ds.Spec.Template.Spec.AutomountServiceAccountToken {
			t.Error("the driver pod does not mount its token although it must watch namespaces")
		}
		// What the informer does, under the chart's RBAC, once the API
		// server's authorizer has seen the new binding (its own informer).
		var listErr error
		if err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, waitBudget, true, func(ctx context.Context) (bool, error) {
			_, listErr = driverClient.CoreV1().Namespaces().List(ctx, metav1.ListOptions{Limit: 1})
			return listErr == nil, nil
		}); err != nil {
			t.Fatalf("list namespaces as the driver under the chart's ClusterRole: %v", listErr)
		}
		w, err := driverClient.CoreV1().Namespaces().Watch(ctx, metav1.ListOptions{})
		if err != nil {
			t.Errorf("watch namespaces as the driver: %v", err)
		} else {
			w.Stop()
		}
		// Everything else is refused, as the API server's authorizer says.
		for _, ra := range []authorizationv1.ResourceAttributes{
			{Verb: "create", Resource: "namespaces"},
			{Verb: "get", Resource: "namespaces", Name: "team-off"},
			{Verb: "update", Resource: "namespaces", Name: "team-off"},
			{Verb: "patch", Resource: "namespaces", Name: "team-off"},
			{Verb: "delete", Resource: "namespaces", Name: "team-off"},
			{Verb: "list", Resource: "pods"},
			{Verb: "get", Resource: "secrets", Namespace: installNS},
			{Verb: "list", Resource: "configmaps", Namespace: installNS},
			{Verb: "get", Resource: "nodes"},
			{Verb: "create", Resource: "serviceaccounts", Subresource: "token", Namespace: installNS, Name: driverSA},
			{Verb: "get", Group: "storage.k8s.io", Resource: "csidrivers"},
		} {
			sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
				User: driverUser, Groups: driverGroups, ResourceAttributes: &ra,
			}}
			got, err := admin.AuthorizationV1().SubjectAccessReviews().Create(ctx, sar, metav1.CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if got.Status.Allowed {
				t.Errorf("the driver may %s %s/%s %s/%s: the chart's RBAC must be read-only on namespaces", ra.Verb, ra.Group, ra.Resource, ra.Namespace, ra.Name)
			}
		}
	})
	if t.Failed() {
		t.FailNow()
	}

	// The driver binary with the flags the chart renders (no HTTP
	// listener: tests run side by side), as its ServiceAccount.
	args := append(driverArgs(t, objs), "--http-address=")
	var endpoint string
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, "--endpoint="); ok {
			endpoint = strings.TrimPrefix(v, "unix://")
		}
	}
	if endpoint == "" || !slices.ContainsFunc(args, func(a string) bool { return strings.HasPrefix(a, "--source-namespace-selector=") }) {
		t.Fatalf("the chart's driver flags lack --endpoint or --source-namespace-selector: %q", args)
	}
	drv := startDriver(t, ctx, args, endpoint, adminRC, tr.Status.Token)
	node := drv.node

	publish := func(vol, source, ns string) error {
		if err := os.MkdirAll(filepath.Dir(tc.Target(kd, vol)), 0o750); err != nil {
			t.Fatal(err)
		}
		req := tc.Publish(kd, vol)
		req.VolumeContext["source"] = source
		req.VolumeContext["csi.storage.k8s.io/pod.namespace"] = ns
		_, err := node.NodePublishVolume(ctx, req)
		return err
	}
	unpublish := func(vol string) error {
		_, err := node.NodeUnpublishVolume(ctx, &csi.NodeUnpublishVolumeRequest{VolumeId: "csi-" + vol, TargetPath: tc.Target(kd, vol)})
		return err
	}
	// waitFor publishes until the driver answers with code: the informer's
	// first list and later events reach the driver asynchronously, so the
	// test waits for the driver's own answer. Each try is a new volume
	// (vol-1, vol-2, ...): a try answered OK while waiting for a refusal is
	// unpublished at once, so it cannot answer the next try. It returns the
	// volume that got code.
	waitFor := func(t *testing.T, vol, source, ns string, code codes.Code) string {
		t.Helper()
		var (
			last error
			try  int
			name string
		)
		err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, waitBudget, true, func(context.Context) (bool, error) {
			try++
			name = fmt.Sprintf("%s-%d", vol, try)
			last = publish(name, source, ns)
			if status.Code(last) == code {
				return true, nil
			}
			if last == nil {
				return false, unpublish(name)
			}
			return false, nil
		})
		if err != nil {
			t.Fatalf("publish %s (source %s, namespace %s): still %v after %s, want %s", name, source, ns, last, waitBudget, code)
		}
		return name
	}
	mounted := func(vol string) bool { return slices.Contains(drv.mountsBelow(t, kd), tc.Target(kd, vol)) }
	denied := func(t *testing.T, vol, source, ns string) {
		t.Helper()
		err := publish(vol, source, ns)
		if status.Code(err) != codes.PermissionDenied {
			t.Fatalf("publish from namespace %s with source %s: %v, want PermissionDenied", ns, source, err)
		}
		if msg := status.Convert(err).Message(); !strings.Contains(msg, `"`+source+`"`) || !strings.Contains(msg, `"`+ns+`"`) {
			t.Errorf("PermissionDenied does not name the source %q and namespace %q: %s", source, ns, msg)
		}
		if mounted(vol) {
			t.Errorf("a refused publish left a mount at %s", tc.Target(kd, vol))
		}
	}

	var published []string
	t.Run("labelled namespace mounts, others are refused", func(t *testing.T) {
		// The first answer other than Unavailable comes once the informer
		// has listed the namespaces.
		on := waitFor(t, "on", selected, "team-on", codes.OK)
		published = append(published, on)
		if !mounted(on) {
			t.Fatal("publish returned OK but nothing is mounted")
		}
		denied(t, "off", selected, "team-off")
		denied(t, "other", selected, "team-other")
		denied(t, "ghost", selected, "team-ghost")
		// Per source: the listed source ignores the selector.
		if err := publish("listed", listed, "team-listed"); err != nil {
			t.Errorf("publish of the listed source from its namespace: %v", err)
		}
		published = append(published, "listed")
		denied(t, "listed-on", listed, "team-on")
	})

	t.Run("label changes at runtime take effect", func(t *testing.T) {
		patch := func(ns, body string) {
			t.Helper()
			if _, err := admin.CoreV1().Namespaces().Patch(ctx, ns, types.MergePatchType, []byte(body), metav1.PatchOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		patch("team-off", `{"metadata":{"labels":{"`+meshLabel+`":"enabled"}}}`)
		published = append(published, waitFor(t, "off-labelled", selected, "team-off", codes.OK))

		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team-ghost", Labels: map[string]string{meshLabel: "enabled"}}}
		if _, err := admin.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		published = append(published, waitFor(t, "ghost-created", selected, "team-ghost", codes.OK))

		patch("team-on", `{"metadata":{"labels":{"`+meshLabel+`":null}}}`)
		waitFor(t, "on-unlabelled", selected, "team-on", codes.PermissionDenied)
		denied(t, "on-unlabelled", selected, "team-on")
		// What was mounted before stays mounted: the driver never
		// unmounts on its own.
		on := published[0]
		if !mounted(on) {
			t.Errorf("%s, published while team-on was labelled, is gone", on)
		}
		// Unless that same target is published again (the kubelet's retry
		// after a lost reply): refused, and the earlier mount is undone. A
		// PermissionDenied is final for the kubelet, which then never
		// unpublishes the volume: the mount would stay behind for good.
		if err := publish(on, selected, "team-on"); status.Code(err) != codes.PermissionDenied {
			t.Fatalf("publish of %s again after team-on lost its label: %v, want PermissionDenied", on, err)
		}
		if mounted(on) {
			t.Errorf("%s is still mounted after a refused publish of the same target", on)
		}
	})

	t.Run("unpublish needs no namespace and leaves no mount", func(t *testing.T) {
		for _, vol := range published {
			if err := unpublish(vol); err != nil {
				t.Errorf("unpublish %s: %v", vol, err)
			}
		}
		if m := drv.mountsBelow(t, kd); len(m) != 0 {
			t.Errorf("mounts left below the kubelet dir: %v", m)
		}
		if m := tc.MountsBelow(t, kd); len(m) != 0 {
			t.Errorf("the driver's mounts reached the host's mount namespace: %v", m)
		}
	})
}

// driver is the driver binary running in a mount namespace of its own.
type driver struct {
	node csi.NodeClient
	pid  int
}

// startDriver runs the driver binary ($MESHCSI_DRIVER_BIN, which `make
// test-driver-integration` builds, else built here) with args, configured
// as in a pod: KUBERNETES_SERVICE_HOST/PORT name the API server of rc, and
// the token and CA are in the in-cluster path, on a tmpfs over /run (the
// target of /var/run) in a private mount namespace, so nothing on the host
// changes. Its mounts live in that namespace too and go with it; the test
// reads them from /proc/<pid>/mountinfo. The driver is stopped with
// SIGTERM at the end and must exit 0.
func startDriver(t *testing.T, ctx context.Context, args []string, endpoint string, rc *rest.Config, token string) *driver {
	t.Helper()
	bin := os.Getenv("MESHCSI_DRIVER_BIN")
	if bin == "" {
		bin = filepath.Join(t.TempDir(), "meshcsi-driver")
		build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/meshcsi-driver")
		build.Dir = filepath.Join("..", "..")
		if out, err := build.CombinedOutput(); err != nil {
			t.Fatalf("build the driver: %v\n%s", err, out)
		}
	}
	u, err := url.Parse(rc.Host)
	if err != nil {
		t.Fatal(err)
	}
	ca := rc.CAData
	if len(ca) == 0 {
		if ca, err = os.ReadFile(rc.CAFile); err != nil {
			t.Fatal(err)
		}
	}
	sa := t.TempDir()
	for name, data := range map[string][]byte{"token": []byte(token), "ca.crt": ca, "namespace": []byte(installNS)} {
		if err := os.WriteFile(filepath.Join(sa, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	const saDir = "/var/run/secrets/kubernetes.io/serviceaccount"
	script := `set -e; mount -t tmpfs -o mode=0755 meshcsi-test /run; mkdir -p ` + saDir + `; cp "$SA_SRC"/* ` + saDir + `/; unset SA_SRC; exec "$@"`
	cmd := exec.Command("unshare", append([]string{"--mount", "--propagation", "private", "--", "/bin/sh", "-c", script, "sh", bin}, args...)...)
	cmd.Env = append(os.Environ(), "NODE_NAME=node-1", "KUBERNETES_SERVICE_HOST="+u.Hostname(),
		"KUBERNETES_SERVICE_PORT="+u.Port(), "SA_SRC="+sa)
	logf, err := os.Create(filepath.Join(t.TempDir(), "driver.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("the driver did not exit cleanly on SIGTERM: %v", err)
			}
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			t.Errorf("the driver did not stop within 30s of SIGTERM")
		}
		if t.Failed() {
			if raw, err := os.ReadFile(logf.Name()); err == nil {
				t.Logf("driver log:\n%s", raw)
			}
		}
		_ = logf.Close()
	})
	tc.WaitServing(t, endpoint)
	conn, err := grpc.NewClient("unix://"+endpoint, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return &driver{node: csi.NewNodeClient(conn), pid: cmd.Process.Pid}
}

// mountsBelow lists the mount points below dir in the driver's mount
// namespace.
func (d *driver) mountsBelow(t *testing.T, dir string) []string {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/mountinfo", d.pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ms, err := mountinfo.GetMountsFromReader(f, mountinfo.PrefixFilter(dir))
	if err != nil {
		t.Fatal(err)
	}
	out := make([]string, 0, len(ms))
	for _, m := range ms {
		if m.Mountpoint != dir {
			out = append(out, m.Mountpoint)
		}
	}
	return out
}

func ptrTo[T any](v T) *T { return &v }

// doc is one object of the rendered chart.
type doc struct {
	Kind     string `json:"kind"`
	Metadata struct {
		Name   string            `json:"name"`
		Labels map[string]string `json:"labels"`
	} `json:"metadata"`
	Name string `json:"-"`
	raw  []byte
}

// renderChart renders charts/meshcsi with set through helm ($MESHCSI_HELM,
// which `make test-driver-integration` sets, else helm on $PATH).
func renderChart(t *testing.T, set map[string]string) []doc {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cannot locate the test file")
	}
	chart := filepath.Join(filepath.Dir(file), "..", "..", "..", "..", "charts", "meshcsi")
	bin := os.Getenv("MESHCSI_HELM")
	if bin == "" {
		bin = "helm"
	}
	args := []string{"template", release, chart, "--namespace", installNS, "--kube-version", "1.33.13"}
	keys := make([]string, 0, len(set))
	for k := range set {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		args = append(args, "--set", k+"="+set[k])
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+t.TempDir(), "HELM_CONFIG_HOME="+t.TempDir(), "HELM_DATA_HOME="+t.TempDir())
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) || errors.Is(err, exec.ErrNotFound) {
			t.Fatalf("helm template (make test-driver-integration sets MESHCSI_HELM): %v: %s", err, stderr.String())
		}
		t.Fatal(err)
	}
	var docs []doc
	for _, part := range strings.Split(string(out), "\n---") {
		var d doc
		if err := yaml.Unmarshal([]byte(part), &d); err != nil {
			t.Fatalf("rendered chart: %v", err)
		}
		if d.Kind == "" {
			continue
		}
		d.Name, d.raw = d.Metadata.Name, []byte(part)
		docs = append(docs, d)
	}
	if len(docs) == 0 {
		t.Fatal("the chart rendered nothing")
	}
	return docs
}

// driverRBAC returns the RBAC objects of the chart that concern the driver's
// account: roles and bindings of the driver component.
func driverRBAC(objs []doc) []doc {
	var out []doc
	for _, d := range objs {
		if strings.HasPrefix(d.Kind, "Cluster") || d.Kind == "Role" || d.Kind == "RoleBinding" {
			if d.Metadata.Labels["app.kubernetes.io/component"] == "driver" {
				out = append(out, d)
			}
		}
	}
	return out
}

func driverDaemonSet(t *testing.T, objs []doc) *appsv1.DaemonSet {
	t.Helper()
	for _, d := range objs {
		if d.Kind == "DaemonSet" && d.Metadata.Labels["app.kubernetes.io/component"] == "driver" {
			var ds appsv1.DaemonSet
			mustUnmarshal(t, d.raw, &ds)
			return &ds
		}
	}
	t.Fatal("the chart renders no driver DaemonSet")
	return nil
}

// driverArgs are the driver container's arguments in the rendered chart.
func driverArgs(t *testing.T, objs []doc) []string {
	t.Helper()
	for _, c := range driverDaemonSet(t, objs).Spec.Template.Spec.Containers {
		if c.Name == "driver" {
			return c.Args
		}
	}
	t.Fatal("the driver DaemonSet has no container named driver")
	return nil
}

func mustUnmarshal(t *testing.T, raw []byte, into any) {
	t.Helper()
	if err := yaml.Unmarshal(raw, into); err != nil {
		t.Fatal(err)
	}
}
