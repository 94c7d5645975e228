//go:build chart

package chart

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/meshcsi/meshcsi/e2e/admissiontest"
	"github.com/meshcsi/meshcsi/e2e/kube"
	"github.com/meshcsi/meshcsi/e2e/manifest"
	"github.com/meshcsi/meshcsi/libs/kubeharness"
)

// admissionSet is the defaults plus sources restricted by namespace name
// and by namespace label.
func admissionSet() map[string]string {
	return admissiontest.Values()
}

// policyObjects are the rendered policy and binding of set.
func policyObjects(t *testing.T, set map[string]string) manifest.Set {
	t.Helper()
	objs := render(t, newHelm(t), set)
	var out manifest.Set
	for _, o := range objs {
		if strings.HasPrefix(o.GetKind(), "ValidatingAdmissionPolicy") && strings.HasSuffix(o.GetName(), "-pod-volumes") {
			out = append(out, o)
		}
	}
	if len(out) != 2 {
		t.Fatalf("want a ValidatingAdmissionPolicy and its binding, got %d objects", len(out))
	}
	return out
}

// TestAdmissionPolicyRendering: the policy and the driver's flags come from
// the same values, and admissionPolicy.enabled=false drops the policy.
func TestAdmissionPolicyRendering(t *testing.T) {
	h := newHelm(t)
	set := admissionSet()
	objs := render(t, h, set)
	var vap admissionv1.ValidatingAdmissionPolicy
	if err := manifest.Into(objs.Get("ValidatingAdmissionPolicy", "meshcsi-pod-volumes"), &vap); err != nil {
		t.Fatal(err)
	}
	var vapb admissionv1.ValidatingAdmissionPolicyBinding
	if err := manifest.Into(objs.Get("ValidatingAdmissionPolicyBinding", "meshcsi-pod-volumes"), &vapb); err != nil {
		t.Fatal(err)
	}
	if vapb.Spec.PolicyName != vap.Name || len(vapb.Spec.ValidationActions) != 1 || vapb.Spec.ValidationActions[0] != admissionv1.Deny {
		t.Errorf("binding %+v", vapb.Spec)
	}
	if p := vap.Spec.FailurePolicy; p == nil || *p != admissionv1.Fail {
		t.Errorf("failurePolicy %v", p)
	}
	vars := map[string]string{}
	for _, v := range vap.Spec.Variables {
		vars[v.Name] = v.Expression
	}
	if want := `["labelled","spire-agent","team-only"]`; vars["known"] != want {
		t.Errorf("known sources %s, want %s", vars["known"], want)
	}
	if want := `{"team-only":["` + admissiontest.TeamA + `"]}`; vars["namespaces"] != want {
		t.Errorf("namespaces %s, want %s", vars["namespaces"], want)
	}
	if want := `{"labelled":{"` + admissiontest.GoldKey + `":"` + admissiontest.GoldValue + `"}}`; vars["selectors"] != want {
		t.Errorf("selectors %s, want %s", vars["selectors"], want)
	}
	args := strings.Join(daemonSet(t, objs, set).Spec.Template.Spec.Containers[0].Args, " ")
	for _, want := range []string{
		"--source=labelled=/run/meshcsi-e2e/labelled",
		"--source=team-only=/run/meshcsi-e2e/team-only",
		"--source=spire-agent=/run/spire/agent-sockets",
		"--source-namespaces=team-only=" + admissiontest.TeamA,
		"--source-namespace-selector=labelled=" + admissiontest.GoldKey + "=" + admissiontest.GoldValue,
	} {
		if !strings.Contains(args, want) {
			t.Errorf("driver args lack %s: %s", want, args)
		}
	}
	off := maps.Clone(set)
	off["admissionPolicy.enabled"] = "false"
	for _, o := range render(t, h, off) {
		if strings.HasPrefix(o.GetKind(), "ValidatingAdmissionPolicy") && strings.HasSuffix(o.GetName(), "-pod-volumes") {
			t.Errorf("%s rendered with admissionPolicy.enabled=false", id(o))
		}
	}
}

// TestAdmissionPolicyEnforced creates the rendered policy on a real v1.33
// API server (with the controller manager) and checks every rejection
// message, the pods it must admit, and that a controller's pod gets the
// message as a FailedCreate Event of its owner.
func TestAdmissionPolicyEnforced(t *testing.T) {
	c, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	_, kc := startControlPlane(t, c, kubeharness.Options{Mode: kubeharness.ControlPlane, ControllerManager: true})
	const driver, image = "csi.meshcsi.io", "meshcsi/demo-agent:test"
	if err := kc.Create(c, policyObjects(t, admissionSet()), kube.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// A second release with another driver and no default source.
	other := maps.Clone(admissionSet())
	maps.Copy(other, map[string]string{"fullnameOverride": "other", "driverName": "csi.other.example.com", "defaultSource": ""})
	if err := kc.Create(c, policyObjects(t, other), kube.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := admissiontest.EnsureNamespaces(c, kc.Kube); err != nil {
		t.Fatal(err)
	}
	if err := admissiontest.WaitServiceAccounts(c, kc.Kube, time.Minute); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{driver, "csi.other.example.com"} {
		if err := admissiontest.WaitEnforced(c, kc.Kube, admissiontest.Other, d, image, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range admissiontest.Cases(driver, "spire-agent") {
		t.Run(tc.Name, func(t *testing.T) {
			p := admissiontest.Pod(tc.Namespace, tc.Name, driver, tc.Source, image)
			if tc.Mutate != nil {
				tc.Mutate(p)
			}
			_, err := kc.Kube.CoreV1().Pods(tc.Namespace).Create(c, p, metav1.CreateOptions{})
			switch {
			case tc.Want == "" && err != nil:
				t.Fatalf("rejected: %v", err)
			case tc.Want != "" && err == nil:
				t.Fatalf("admitted, want rejected with %q", tc.Want)
			case tc.Want != "" && !strings.Contains(err.Error(), tc.Want):
				t.Fatalf("message:\n got %v\nwant %s", err, tc.Want)
			case err != nil:
				t.Logf("kubectl would print: Error from server (%s): %v", reasonOf(err), err)
			}
		})
	}
	t.Run("no source and no default source", func(t *testing.T) {
		p := admissiontest.Pod(admissiontest.Other, "no-source", "csi.other.example.com", "", image)
		_, err := kc.Kube.CoreV1().Pods(p.Namespace).Create(c, p, metav1.CreateOptions{})
		want := `volume "agent-socket": spec.volumes[].csi.volumeAttributes.source is required (driver csi.other.example.com has no default source); allowed values: labelled, spire-agent, team-only`
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("got %v, want %s", err, want)
		}
	})
	t.Run("a controller's pod: FailedCreate Event on the owner", func(t *testing.T) {
		p := admissiontest.Pod(admissiontest.Other, "", driver, "no-such-source", image)
		rs := &appsv1.ReplicaSet{
			ObjectMeta: metav1.ObjectMeta{Name: "bad-source", Namespace: admissiontest.Other},
			Spec: appsv1.ReplicaSetSpec{
				Replicas: ptrTo(int32(1)),
				Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "bad-source"}},
				Template: corev1.PodTemplateSpec{
					ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "bad-source"}},
					Spec:       p.Spec,
				},
			},
		}
		if _, err := kc.Kube.AppsV1().ReplicaSets(rs.Namespace).Create(c, rs, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		msg, err := ownerEvent(c, kc, rs.Namespace, rs.Name, "FailedCreate", `"no-such-source" is not a source of driver csi.meshcsi.io`)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("kubectl describe replicaset bad-source: Warning FailedCreate: %s", msg)
	})
}

// ownerEvent waits for an Event of reason on the named object whose message
// contains want and returns the message.
func ownerEvent(ctx context.Context, kc *kube.Client, ns, name, reason, want string) (string, error) {
	var msg string
	var seen []string
	err := wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		evs, err := kc.Kube.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=" + name})
		if err != nil {
			return false, nil //nolint:nilerr // retried until the deadline
		}
		seen = seen[:0]
		for _, ev := range evs.Items {
			if ev.Reason == reason && strings.Contains(ev.Message, want) {
				msg = ev.Message
				return true, nil
			}
			seen = append(seen, ev.Reason+": "+ev.Message)
		}
		return false, nil
	})
	if err != nil {
		return "", fmt.Errorf("no %s Event on %s/%s containing %q; seen %q", reason, ns, name, want, seen)
	}
	return msg, nil
}

func reasonOf(err error) string {
	if s, ok := err.(interface{ Status() metav1.Status }); ok {
		return string(s.Status().Reason)
	}
	return "unknown"
}

func ptrTo[T any](v T) *T { return &v }
