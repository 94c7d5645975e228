//go:build e2e

package e2e

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshcsi/meshcsi/e2e/admissiontest"
	"github.com/meshcsi/meshcsi/e2e/env"
	"github.com/meshcsi/meshcsi/e2e/images"
	"github.com/meshcsi/meshcsi/e2e/kube"
	"github.com/meshcsi/meshcsi/e2e/manifest"
)

// caseAdmission: the release's pod admission policy rejects, through the
// real API server, a pod without readOnly and one naming an unknown source,
// admits a correct pod that then reaches the agent, and a Deployment's bad
// pod shows up as a FailedCreate Event of its ReplicaSet. The namespace
// rules are checked with the same chart rendered for a second driver name
// with namespace-restricted sources (only its policy is applied). Finally,
// with the release's binding removed, the driver itself refuses an unknown
// source (FailedMount): defence in depth.
func caseAdmission(t *testing.T, ctx context.Context) {
	kc := suite.Kube.Kube
	image := images.DemoAgent.Ref(env.ImageTag)
	if err := admissiontest.WaitEnforced(ctx, kc, workloads, env.DriverName, image, time.Minute); err != nil {
		t.Fatal(err)
	}
	reject := func(p *corev1.Pod, want string) {
		t.Helper()
		_, err := kc.CoreV1().Pods(p.Namespace).Create(ctx, p, metav1.CreateOptions{})
		if err == nil {
			t.Fatalf("pod %s admitted, want rejected with %q", p.Name, want)
		}
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("pod %s: got %v, want %q", p.Name, err, want)
		}
		t.Logf("kubectl apply of pod %s: Error from server (%s): %v", p.Name, apierrors.ReasonForError(err), err)
	}
	p := env.WorkloadPod(workloads, "adm-no-readonly", "")
	p.Spec.Volumes[0].CSI.ReadOnly = nil
	reject(p, `volume "agent-socket": spec.volumes[].csi.readOnly must be true (driver `+env.DriverName+` mounts read-only only); allowed values: true`)
	reject(env.WorkloadPod(workloads, "adm-unknown", "no-such-source"),
		`spec.volumes[].csi.volumeAttributes.source "no-such-source" is not a source of driver `+env.DriverName+`; allowed values: `+env.Source)

	// An allowed pod is admitted and reaches the agent through the volume.
	startWorkload(t, ctx, "adm-ok")
	deleteWorkloads(t, ctx, env.PodSelector("adm-ok"))

	// A controller's pod: the message is a FailedCreate Event on the owner.
	bad := env.WorkloadPod(workloads, "", "")
	bad.Spec.Volumes[0].CSI.ReadOnly = nil
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "adm-deploy", Namespace: workloads},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "adm-deploy"}},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "adm-deploy"}}, Spec: bad.Spec},
		},
	}
	if _, err := kc.AppsV1().Deployments(workloads).Create(ctx, dep, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	poll(t, ctx, time.Minute, "FailedCreate Event on the Deployment's ReplicaSet", func(ctx context.Context) error {
		rss, err := kc.AppsV1().ReplicaSets(workloads).List(ctx, metav1.ListOptions{LabelSelector: "app=adm-deploy"})
		if err != nil {
			return err
		}
		if len(rss.Items) == 0 {
			return errors.New("no ReplicaSet yet")
		}
		rs := rss.Items[0].Name
		evs, err := kc.CoreV1().Events(workloads).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=" + rs})
		if err != nil {
			return err
		}
		for _, ev := range evs.Items {
			if ev.Reason == "FailedCreate" && strings.Contains(ev.Message, "readOnly must be true") {
				t.Logf("kubectl describe replicaset %s: Warning FailedCreate %s: %s", rs, ev.Source.Component, ev.Message)
				return nil
			}
		}
		return fmt.Errorf("no FailedCreate Event on %s yet (%d events)", rs, len(evs.Items))
	})
	if err := kc.AppsV1().Deployments(workloads).Delete(ctx, dep.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}

	namespaceRules(t, ctx, image)
	driverStillEnforces(t, ctx)
}

// namespaceRules renders the chart's policy for another driver name with
// namespace-restricted sources, creates it on the cluster and runs the
// shared rejection table; admitted pods are dry runs (that driver does not
// run). The policy is removed afterwards.
func namespaceRules(t *testing.T, ctx context.Context, image string) {
	t.Helper()
	const driver = "csi.admission.meshcsi.io"
	set := admissiontest.Values()
	maps.Copy(set, map[string]string{"fullnameOverride": "adm", "driverName": driver, "defaultSource": "spire-agent"})
	out, err := suite.Helm.Template(ctx, suite.ChartDir, release, namespace, set)
	if err != nil {
		t.Fatal(err)
	}
	all, err := manifest.Parse(out)
	if err != nil {
		t.Fatal(err)
	}
	var policy manifest.Set
	for _, o := range all {
		if strings.HasPrefix(o.GetKind(), "ValidatingAdmissionPolicy") && strings.HasSuffix(o.GetName(), "-pod-volumes") {
			policy = append(policy, o)
		}
	}
	if err := suite.Kube.Create(ctx, policy, kube.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, o := range policy {
			if ri, err := suite.Kube.Resource(o); err == nil {
				_ = ri.Delete(context.Background(), o.GetName(), metav1.DeleteOptions{})
			}
		}
	})
	kc := suite.Kube.Kube
	if err := admissiontest.EnsureNamespaces(ctx, kc); err != nil {
		t.Fatal(err)
	}
	if err := admissiontest.WaitServiceAccounts(ctx, kc, time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := admissiontest.WaitEnforced(ctx, kc, admissiontest.Other, driver, image, time.Minute); err != nil {
		t.Fatal(err)
	}
	for _, tc := range admissiontest.Cases(driver, "spire-agent") {
		p := admissiontest.Pod(tc.Namespace, tc.Name, driver, tc.Source, image)
		if tc.Mutate != nil {
			tc.Mutate(p)
		}
		_, err := kc.CoreV1().Pods(tc.Namespace).Create(ctx, p, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		switch {
		case tc.Want == "" && err != nil:
			t.Errorf("%s: rejected: %v", tc.Name, err)
		case tc.Want != "" && (err == nil || !strings.Contains(err.Error(), tc.Want)):
			t.Errorf("%s: got %v, want %q", tc.Name, err, tc.Want)
		case err != nil:
			t.Logf("%s in %s: %v", tc.Name, tc.Namespace, err)
		}
	}
}

// driverStillEnforces removes the release's policy binding, shows that the
// driver refuses a pod naming an unknown source with a FailedMount Event,
// and puts the binding back (as rendered, so Helm still owns it).
func driverStillEnforces(t *testing.T, ctx context.Context) {
	t.Helper()
	out, err := suite.Helm.Template(ctx, suite.ChartDir, release, namespace, suite.InstallValues(nil))
	if err != nil {
		t.Fatal(err)
	}
	all, err := manifest.Parse(out)
	if err != nil {
		t.Fatal(err)
	}
	binding := all.Get("ValidatingAdmissionPolicyBinding", release+"-pod-volumes")
	if binding == nil {
		t.Fatal("the release renders no policy binding")
	}
	// Helm's ownership annotations, so a later upgrade or uninstall owns it.
	ann := map[string]string{"meta.helm.sh/release-name": release, "meta.helm.sh/release-namespace": namespace}
	binding.SetAnnotations(ann)
	ri, err := suite.Kube.Resource(binding)
	if err != nil {
		t.Fatal(err)
	}
	if err := ri.Delete(ctx, binding.GetName(), metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	restored := false
	restore := func() {
		if restored {
			return
		}
		if err := suite.Kube.Create(context.Background(), manifest.Set{binding}, kube.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Errorf("restore the policy binding: %v", err)
		}
		restored = true
	}
	t.Cleanup(restore)
	bad := env.WorkloadPod(workloads, "adm-bad-source", "no-such-source")
	poll(t, ctx, time.Minute, "the pod admitted once the binding is gone", func(ctx context.Context) error {
		_, err := suite.Kube.Kube.CoreV1().Pods(workloads).Create(ctx, bad, metav1.CreateOptions{})
		return err
	})
	poll(t, ctx, time.Minute, "FailedMount Event naming the unknown source", func(ctx context.Context) error {
		evs, err := suite.Kube.Kube.CoreV1().Events(workloads).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=adm-bad-source"})
		if err != nil {
			return err
		}
		var seen []string
		for _, ev := range evs.Items {
			if ev.Reason == "FailedMount" && strings.Contains(ev.Message, "no-such-source") {
				t.Logf("without the policy: %s", ev.Message)
				return nil
			}
			seen = append(seen, ev.Reason+": "+ev.Message)
		}
		return fmt.Errorf("events so far: %q", seen)
	})
	deleteWorkloads(t, ctx, env.PodSelector("adm-bad-source"))
	restore()
	if err := admissiontest.WaitEnforced(ctx, suite.Kube.Kube, workloads, env.DriverName, images.DemoAgent.Ref(env.ImageTag), time.Minute); err != nil {
		t.Fatal(err)
	}
}
