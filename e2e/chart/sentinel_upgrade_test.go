//go:build chart

package chart

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/meshcsi/meshcsi/e2e/helm"
	"github.com/meshcsi/meshcsi/e2e/kube"
	"github.com/meshcsi/meshcsi/e2e/manifest"
	"github.com/meshcsi/meshcsi/libs/kubeharness"
)

// TestPrepareUpgradeHook checks the pre-upgrade and pre-rollback hook that
// lets an upgrade change the sentinel's pod: a Job running `meshcsi-sentinel
// prepare-upgrade` (the sentinel image, the hand-off's deadline and pod
// settings, restricted) under its own account, whose ServiceAccount, Role
// and RoleBinding are hooks of the same events with a lower weight, so they
// exist before the Job (an upgrade from an older chart has none).
func TestPrepareUpgradeHook(t *testing.T) {
	h := newHelm(t)
	for name, set := range valueSets {
		t.Run(name, func(t *testing.T) {
			objs := render(t, h, set)
			fn := fullname(set)
			jobO := objs.Get("Job", fn+"-upgrade")
			if jobO == nil {
				t.Fatal("pre-upgrade hook Job not rendered")
			}
			a := jobO.GetAnnotations()
			for k, v := range map[string]string{
				"helm.sh/hook": "pre-upgrade,pre-rollback", "helm.sh/hook-weight": "0",
				"helm.sh/hook-delete-policy":     "before-hook-creation,hook-succeeded",
				"helm.sh/hook-output-log-policy": "hook-failed",
			} {
				if a[k] != v {
					t.Errorf("%s: %s = %q, want %q", id(jobO), k, a[k], v)
				}
			}
			if msg := a["meshcsi.io/if-failed"]; !strings.Contains(msg, "stopped before changing anything") || !strings.Contains(msg, "logs -l job-name="+fn+"-upgrade") {
				t.Errorf("%s: meshcsi.io/if-failed does not say what happened and where to look: %q", id(jobO), msg)
			}
			var job, handoff, sentinel batchv1.Job
			for _, d := range []struct {
				name string
				into *batchv1.Job
			}{{fn + "-upgrade", &job}, {fn + "-handoff", &handoff}, {fn + "-sentinel", &sentinel}} {
				o := objs.Get("Job", d.name)
				if o == nil {
					t.Fatalf("Job %s not rendered", d.name)
				}
				if err := manifest.Into(o, d.into); err != nil {
					t.Fatal(err)
				}
			}
			if d, hd := job.Spec.ActiveDeadlineSeconds, handoff.Spec.ActiveDeadlineSeconds; d == nil || hd == nil || *d != *hd {
				t.Errorf("deadline %v, want the hand-off's %v (sentinel.handoffDeadlineSeconds)", d, hd)
			}
			pfp := job.Spec.PodFailurePolicy
			if pfp == nil || len(pfp.Rules) == 0 || pfp.Rules[0].Action != batchv1.PodFailurePolicyActionFailJob ||
				pfp.Rules[0].OnExitCodes == nil || !reflect.DeepEqual(pfp.Rules[0].OnExitCodes.Values, []int32{5}) {
				t.Errorf("podFailurePolicy %+v: exit 5 (the sentinel Job kept) must fail the Job at once", pfp)
			}
			pod, hpod := job.Spec.Template.Spec, handoff.Spec.Template.Spec
			if pod.ServiceAccountName != fn+"-upgrade" || pod.RestartPolicy != corev1.RestartPolicyNever {
				t.Errorf("hook pod: account %q restart %q, want its own account %s-upgrade, Never", pod.ServiceAccountName, pod.RestartPolicy, fn)
			}
			// The same pod settings as the hand-off (meshcsi.sentinel.podSpec).
			if !reflect.DeepEqual(pod.NodeSelector, hpod.NodeSelector) || !reflect.DeepEqual(pod.Tolerations, hpod.Tolerations) ||
				!reflect.DeepEqual(pod.ImagePullSecrets, hpod.ImagePullSecrets) || !reflect.DeepEqual(pod.SecurityContext, hpod.SecurityContext) {
				t.Errorf("hook pod settings differ from the hand-off's:\n hook    %+v\n handoff %+v", pod, hpod)
			}
			c := pod.Containers[0]
			if c.Image != sentinel.Spec.Template.Spec.Containers[0].Image {
				t.Errorf("hook image %s, want the sentinel's %s", c.Image, sentinel.Spec.Template.Spec.Containers[0].Image)
			}
			if c.Args[0] != "prepare-upgrade" {
				t.Errorf("hook runs %q, want prepare-upgrade", c.Args)
			}
			for _, want := range []string{"--namespace=" + namespace, "--release=" + release, "--job-name=" + fn + "-sentinel"} {
				if !slices.Contains(c.Args, want) {
					t.Errorf("hook args %q lack %s", c.Args, want)
				}
			}
			if c.TerminationMessagePolicy != corev1.TerminationMessageFallbackToLogsOnError {
				t.Errorf("terminationMessagePolicy %q, want FallbackToLogsOnError", c.TerminationMessagePolicy)
			}
			checkRestricted(t, "pre-upgrade hook", pod, c, set)

			for _, kind := range []string{"ServiceAccount", "Role", "RoleBinding"} {
				o := objs.Get(kind, fn+"-upgrade")
				if o == nil {
					t.Fatalf("%s %s-upgrade not rendered", kind, fn)
				}
				oa := o.GetAnnotations()
				w, err := strconv.Atoi(oa["helm.sh/hook-weight"])
				if oa["helm.sh/hook"] != "pre-upgrade,pre-rollback" || err != nil || w >= 0 ||
					oa["helm.sh/hook-delete-policy"] != "before-hook-creation,hook-succeeded" {
					t.Errorf("%s: hook annotations %v: want the hook Job's events, a lower weight, deleted once the hooks ran", id(o), oa)
				}
			}
			var rb rbacv1.RoleBinding
			if err := manifest.Into(objs.Get("RoleBinding", fn+"-upgrade"), &rb); err != nil {
				t.Fatal(err)
			}
			if rb.RoleRef.Kind != "Role" || rb.RoleRef.Name != fn+"-upgrade" || len(rb.Subjects) != 1 ||
				rb.Subjects[0].Name != fn+"-upgrade" || rb.Subjects[0].Namespace != namespace {
				t.Errorf("RoleBinding %s-upgrade binds %+v to %+v", fn, rb.RoleRef, rb.Subjects)
			}
		})
	}
}

// TestUpgradeChangingSentinelPod runs the real helm against a real API
// server (with the Job controller) and shows that an upgrade or rollback
// that changes the sentinel's pod (here its image, as every new chart
// version does) works: the pre-upgrade hook deletes the suspended,
// never-started sentinel Job and Helm creates it anew, suspended, with the
// new pod. The hook itself cannot run here (no scheduler or kubelet), so the
// test does what it does, as the chart's tests do with the hand-off: it runs
// the hook's command (the real meshcsi-sentinel, with the rendered hook
// Job's arguments) under the hook's rendered ServiceAccount and Role with a
// token of that account, then runs helm with --no-hooks. Without the hook
// the upgrade fails on the Job with "field is immutable" (the limitation
// the hook removes). A Job in which a sentinel has started (resumed, as
// the hand-off does) is never deleted: the hook exits 5 and names it. The
// real hook Job runs in helm upgrade and rollback on the real node (e2e
// case 12).
func TestUpgradeChangingSentinelPod(t *testing.T) {
	c, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	bin := sentinelBinary(t)
	cluster, kc, hk := helmCluster(t, c, kubeharness.Options{Mode: kubeharness.ControlPlane, ControllerManager: true})
	out, err := hk.Run(c, "install", release, chartDir(t), "--namespace", namespace)
	if err != nil {
		t.Fatalf("install: %v\n%s", err, out)
	}
	if want := "first run the hook Job " + release + "-upgrade (same\ndeadline; give them --timeout 300s or more)"; !strings.Contains(out, want) {
		t.Errorf("NOTES lack %q:\n%s", want, out)
	}
	jobs := kc.Kube.BatchV1().Jobs(namespace)
	const oldImage, newImage = "meshcsi/sentinel:0.1.0", "meshcsi/sentinel:0.2.0-next"
	next := map[string]string{"sentinel.image.tag": "0.2.0-next"}
	first := sentinelJob(t, c, kc, oldImage)

	// Without the hook, as before it existed: helm fails on the Job.
	upgrade := append([]string{"upgrade", release, chartDir(t), "--namespace", namespace, "--no-hooks"}, helm.SetArgs(next)...)
	_, err = hk.Run(c, upgrade...)
	if err == nil || !strings.Contains(err.Error(), `cannot patch "`+release+`-sentinel" with kind Job`) || !strings.Contains(err.Error(), "field is immutable") {
		t.Fatalf("helm upgrade changing the sentinel's image without the hook: %v, want field is immutable on the Job", err)
	}

	// With the hook: the Job goes, helm creates it with the new pod.
	hook := prepareUpgradeHook{t: t, c: c, cluster: cluster, kc: kc, h: &hk, bin: bin}
	if code, out := hook.run(next); code != 0 || !strings.Contains(out, "deleted the suspended, never-started sentinel Job") {
		t.Fatalf("prepare-upgrade: exit %d, want 0 and the Job deleted:\n%s", code, out)
	}
	if _, err := jobs.Get(c, release+"-sentinel", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("the sentinel Job is still there after the hook: %v", err)
	}
	if out, err := hk.Run(c, upgrade...); err != nil {
		t.Fatalf("helm upgrade after the hook: %v\n%s", err, out)
	}
	upgraded := sentinelJob(t, c, kc, newImage)
	if upgraded.UID == first.UID {
		t.Error("the upgraded sentinel Job has the old Job's UID")
	}

	// helm rollback to the first revision: the same, back to the old pod.
	if code, out := hook.run(nil); code != 0 {
		t.Fatalf("prepare-upgrade before the rollback: exit %d, want 0:\n%s", code, out)
	}
	if out, err := hk.Run(c, "rollback", release, "1", "--namespace", namespace, "--no-hooks"); err != nil {
		t.Fatalf("helm rollback after the hook: %v\n%s", err, out)
	}
	rolledBack := sentinelJob(t, c, kc, oldImage)

	// A sentinel has started (the hand-off resumed the Job; the Job
	// controller sets its start time and creates its pod, which no node
	// runs here): the hook keeps the Job and stops the upgrade.
	if _, err := jobs.Patch(c, release+"-sentinel", types.MergePatchType, []byte(`{"spec":{"suspend":false}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := wait.PollUntilContextTimeout(c, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		j, err := jobs.Get(ctx, release+"-sentinel", metav1.GetOptions{})
		return err == nil && j.Status.StartTime != nil, err
	}); err != nil {
		t.Fatalf("the Job controller did not start the resumed Job: %v", err)
	}
	code, out := hook.run(next)
	if code != 5 {
		t.Fatalf("prepare-upgrade with a started sentinel Job: exit %d, want 5:\n%s", code, out)
	}
	for _, want := range []string{namespace + "/" + release + "-sentinel", "an uninstall is in progress or a sentinel ran", "the upgrade stops before changing anything"} {
		if !strings.Contains(out, want) {
			t.Errorf("prepare-upgrade's message lacks %q:\n%s", want, out)
		}
	}
	t.Logf("prepare-upgrade with a started sentinel, as helm would print it:\n%s", out)
	if j, err := jobs.Get(c, release+"-sentinel", metav1.GetOptions{}); err != nil || j.UID != rolledBack.UID || j.DeletionTimestamp != nil {
		t.Fatalf("the started sentinel Job was deleted or replaced: %v", err)
	}
}

// sentinelJob waits for the sentinel Job with image and checks it is
// suspended.
func sentinelJob(t *testing.T, c context.Context, kc *kube.Client, image string) *batchv1.Job {
	t.Helper()
	var j *batchv1.Job
	err := wait.PollUntilContextTimeout(c, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		var err error
		j, err = kc.Kube.BatchV1().Jobs(namespace).Get(ctx, release+"-sentinel", metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return err == nil, err
	})
	if err != nil {
		t.Fatalf("sentinel Job: %v", err)
	}
	if got := j.Spec.Template.Spec.Containers[0].Image; got != image || j.Spec.Suspend == nil || !*j.Spec.Suspend {
		t.Fatalf("sentinel Job: image %s, suspend %v; want %s, suspended", got, j.Spec.Suspend, image)
	}
	return j
}

// prepareUpgradeHook does what the chart's pre-upgrade hook does, where no
// pod can run: Helm's hook objects (ServiceAccount, Role, RoleBinding)
// rendered from the chart with the upgrade's values are created, the hook
// Job's command runs as that ServiceAccount (a token as the kubelet would
// project it), and the hook objects are deleted again (hook-succeeded).
type prepareUpgradeHook struct {
	t       *testing.T
	c       context.Context
	cluster *kubeharness.Cluster
	kc      *kube.Client
	h       *helm.Helm
	bin     string
}

func (p prepareUpgradeHook) run(set map[string]string) (int, string) {
	t := p.t
	t.Helper()
	out, err := p.h.Template(p.c, chartDir(t), release, namespace, set,
		"--show-only", "templates/upgrade-rbac.yaml", "--show-only", "templates/upgrade-job.yaml")
	if err != nil {
		t.Fatal(err)
	}
	objs, err := manifest.Parse(out)
	if err != nil {
		t.Fatal(err)
	}
	var job batchv1.Job
	if err := manifest.Into(objs.Get("Job", release+"-upgrade"), &job); err != nil {
		t.Fatal(err)
	}
	rbac := append(append(objs.Kind("ServiceAccount"), objs.Kind("Role")...), objs.Kind("RoleBinding")...)
	if err := p.kc.Create(p.c, rbac, kube.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	defer func() {
		for _, o := range rbac {
			ri, err := p.kc.Resource(o)
			if err == nil {
				err = ri.Delete(context.Background(), o.GetName(), metav1.DeleteOptions{})
			}
			if err != nil {
				t.Errorf("delete hook object %s: %v", id(o), err)
			}
		}
	}()
	sa := job.Spec.Template.Spec.ServiceAccountName
	tr, err := p.kc.Kube.CoreV1().ServiceAccounts(namespace).CreateToken(p.c, sa,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptrTo(int64(600))}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rc := p.cluster.RESTConfig()
	kcfg := clientcmdapi.NewConfig()
	kcfg.Clusters["c"] = &clientcmdapi.Cluster{Server: rc.Host, CertificateAuthority: rc.CAFile, CertificateAuthorityData: rc.CAData}
	kcfg.AuthInfos[sa] = &clientcmdapi.AuthInfo{Token: tr.Status.Token}
	kcfg.Contexts["c"] = &clientcmdapi.Context{Cluster: "c", AuthInfo: sa}
	kcfg.CurrentContext = "c"
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*kcfg, path); err != nil {
		t.Fatal(err)
	}
	ctr := job.Spec.Template.Spec.Containers[0]
	cmd := exec.CommandContext(p.c, p.bin, append(slices.Clone(ctr.Args), "--kubeconfig", path)...)
	cmd.Env = []string{"HOME=" + t.TempDir()}
	for _, e := range ctr.Env {
		if e.ValueFrom == nil {
			cmd.Env = append(cmd.Env, e.Name+"="+e.Value)
		}
	}
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	err = cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0, buf.String()
	case errors.As(err, &exit):
		return exit.ExitCode(), buf.String()
	}
	t.Fatalf("run %s: %v\n%s", p.bin, err, buf.String())
	return -1, ""
}

var (
	buildSentinel sync.Once
	builtSentinel string
	buildErr      error
)

// sentinelBinary is $MESHCSI_SENTINEL_BIN (make test-chart passes the one
// it built), or the sentinel built once for this test process.
func sentinelBinary(t *testing.T) string {
	t.Helper()
	if bin := os.Getenv("MESHCSI_SENTINEL_BIN"); bin != "" {
		return bin
	}
	buildSentinel.Do(func() {
		dir, err := os.MkdirTemp("", "meshcsi-chart-sentinel-")
		if err != nil {
			buildErr = err
			return
		}
		builtSentinel = filepath.Join(dir, "meshcsi-sentinel")
		cmd := exec.Command("go", "build", "-o", builtSentinel, "./cmd/meshcsi-sentinel")
		cmd.Dir = filepath.Join(chartDir(t), "..", "..", "services", "sentinel")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = errors.New("go build the sentinel: " + err.Error() + "\n" + string(out))
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return builtSentinel
}
