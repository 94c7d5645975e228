//go:build integration

package kubeharness_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/meshcsi/meshcsi/libs/kubeharness"
)

func startControlPlane(t *testing.T, opts kubeharness.Options) *kubeharness.Cluster {
	t.Helper()
	opts.Mode = kubeharness.ControlPlane
	opts.Logf = t.Logf
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	began := time.Now()
	c, err := kubeharness.Start(ctx, opts)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Logf("control plane up in %s", time.Since(began).Round(time.Millisecond))
	t.Cleanup(func() {
		if err := c.Stop(context.Background()); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	return c
}

func TestControlPlane(t *testing.T) {
	c := startControlPlane(t, kubeharness.Options{})
	dir := c.Dir()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// The admin kubeconfig file and RESTConfig reach the same server.
	fromFile, err := clientcmd.BuildConfigFromFlags("", c.Kubeconfig())
	if err != nil {
		t.Fatalf("kubeconfig does not load: %v", err)
	}
	fileClient := kubernetes.NewForConfigOrDie(fromFile)
	client := kubernetes.NewForConfigOrDie(c.RESTConfig())
	version, err := client.Discovery().ServerVersion()
	if err != nil {
		t.Fatal(err)
	}
	if version.GitVersion != kubeharness.KubeVersion {
		t.Errorf("server version = %s, want %s", version.GitVersion, kubeharness.KubeVersion)
	}

	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "survives-restart", Namespace: "default"}, Data: map[string]string{"k": "v"}}
	if _, err := fileClient.CoreV1().ConfigMaps("default").Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	// RBAC is enforced: a service account without bindings may not list secrets.
	nobody := c.RESTConfig()
	nobody.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:default:nobody"}
	_, err = kubernetes.NewForConfigOrDie(nobody).CoreV1().Secrets("default").List(ctx, metav1.ListOptions{})
	if !apierrors.IsForbidden(err) {
		t.Errorf("unbound service account listing secrets: err = %v, want Forbidden", err)
	}

	before := c.PIDs()["kube-apiserver"]
	if err := c.RestartAPIServer(ctx); err != nil {
		t.Fatalf("RestartAPIServer: %v", err)
	}
	after := c.PIDs()["kube-apiserver"]
	if before == 0 || after == 0 || before == after {
		t.Errorf("kube-apiserver pid before/after restart = %d/%d, want two different processes", before, after)
	}
	got, err := client.CoreV1().ConfigMaps("default").Get(ctx, "survives-restart", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get after restart: %v", err)
	}
	if got.Data["k"] != "v" {
		t.Errorf("data after restart = %v", got.Data)
	}

	if err := c.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if pids := kubeharness.ProcessesMentioning(dir); len(pids) > 0 {
		t.Errorf("processes left after Stop: %v", pids)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("temporary dir %s still exists after Stop (%v)", dir, err)
	}
	if err := c.Stop(ctx); err != nil {
		t.Errorf("second Stop: %v", err)
	}
}

func TestControlPlaneWithControllerManager(t *testing.T) {
	c := startControlPlane(t, kubeharness.Options{ControllerManager: true})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	client := kubernetes.NewForConfigOrDie(c.RESTConfig())

	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "doomed"}}
	if _, err := client.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// The service-account controller runs: the default ServiceAccount appears.
	if err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		_, err := client.CoreV1().ServiceAccounts("doomed").Get(ctx, "default", metav1.GetOptions{})
		return err == nil, nil
	}); err != nil {
		t.Fatalf("default ServiceAccount never appeared: %v", err)
	}

	// The garbage collector runs: a dependent goes with its owner.
	owner, err := client.CoreV1().ConfigMaps("doomed").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "owner"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dep := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "dependent", OwnerReferences: []metav1.OwnerReference{{
		APIVersion: "v1", Kind: "ConfigMap", Name: owner.Name, UID: owner.UID,
	}}}}
	if _, err := client.CoreV1().ConfigMaps("doomed").Create(ctx, dep, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := client.CoreV1().ConfigMaps("doomed").Delete(ctx, "owner", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		_, err := client.CoreV1().ConfigMaps("doomed").Get(ctx, "dependent", metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	}); err != nil {
		t.Fatalf("garbage collector never deleted the dependent: %v", err)
	}

	// The namespace controller runs: a deleted namespace goes away.
	if err := client.CoreV1().Namespaces().Delete(ctx, "doomed", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		_, err := client.CoreV1().Namespaces().Get(ctx, "doomed", metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	}); err != nil {
		t.Fatalf("namespace never deleted: %v", err)
	}
}

func TestStartFailsFastWithLog(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	began := time.Now()
	_, err := kubeharness.Start(ctx, kubeharness.Options{
		Mode:               kubeharness.ControlPlane,
		ExtraAPIServerArgs: []string{"--no-such-flag"},
		Logf:               t.Logf,
	})
	if err == nil {
		t.Fatal("Start succeeded with a bad kube-apiserver flag")
	}
	if time.Since(began) > 30*time.Second {
		t.Errorf("failure took %s: not failing fast", time.Since(began))
	}
	t.Logf("error (as expected): %v", err)
	for _, want := range []string{"kube-apiserver exited", "no-such-flag"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q", want)
		}
	}
}
