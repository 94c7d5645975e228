package storagesuite

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"net/http"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
)

func podJSON(t *testing.T, vols ...corev1.Volume) []byte {
	t.Helper()
	raw, err := json.Marshal(&corev1.Pod{Spec: corev1.PodSpec{Volumes: vols}})
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func TestReadOnlyPatch(t *testing.T) {
	yes, no := true, false
	csi := func(driver string, ro *bool) corev1.Volume {
		return corev1.Volume{VolumeSource: corev1.VolumeSource{CSI: &corev1.CSIVolumeSource{Driver: driver, ReadOnly: ro}}}
	}
	for name, tc := range map[string]struct {
		vols []corev1.Volume
		want string
	}{
		"unset":         {[]corev1.Volume{csi("d", nil)}, `[{"op":"add","path":"/spec/volumes/0/csi/readOnly","value":true}]`},
		"false":         {[]corev1.Volume{{Name: "e"}, csi("d", &no)}, `[{"op":"add","path":"/spec/volumes/1/csi/readOnly","value":true}]`},
		"already true":  {[]corev1.Volume{csi("d", &yes)}, ""},
		"other driver":  {[]corev1.Volume{csi("other", nil)}, ""},
		"no csi volume": {[]corev1.Volume{{Name: "e"}}, ""},
	} {
		t.Run(name, func(t *testing.T) {
			got, err := ReadOnlyPatch(podJSON(t, tc.vols...), "d")
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Errorf("patch %s, want %s", got, tc.want)
			}
		})
	}
}

func TestReadOnlyWebhookServes(t *testing.T) {
	w, err := StartReadOnlyWebhook("d")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Close(context.Background()) })
	cfg := w.Configuration("x")
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(cfg.Webhooks[0].ClientConfig.CABundle) {
		t.Fatal("CABundle holds no certificate")
	}
	review := admissionv1.AdmissionReview{Request: &admissionv1.AdmissionRequest{
		UID:    types.UID("u1"),
		Object: runtime.RawExtension{Raw: podJSON(t, corev1.Volume{VolumeSource: corev1.VolumeSource{CSI: &corev1.CSIVolumeSource{Driver: "d"}}})},
	}}
	body, _ := json.Marshal(review)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	resp, err := client.Post(*cfg.Webhooks[0].ClientConfig.URL, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	var got admissionv1.AdmissionReview
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	if r := got.Response; r == nil || !r.Allowed || r.UID != "u1" || r.PatchType == nil || len(r.Patch) == 0 {
		t.Fatalf("response %+v", got.Response)
	}
}
