package storagesuite

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// FrameworkNamespaceLabel is set by Kubernetes' e2e framework on every
// namespace it creates for a test.
const FrameworkNamespaceLabel = "e2e-framework"

// ReadOnlyWebhook is a mutating admission webhook, served by the e2e process
// on 127.0.0.1 for the API server on the same machine, that sets
// `csi.readOnly: true` on a pod's volumes of one CSI driver.
//
// Why: meshcsi requires `readOnly: true` on the pod's csi volume (its
// admission policy refuses a pod without it, and the driver refuses
// NodePublishVolume with readonly=false, since on SELinux nodes the kubelet
// would relabel the read-only mount and fail the container). The storage
// suite's inline-volume pods set readOnly only on the container's
// volumeMount, never on the csi volume source, so without this stand-in for
// what a user writes every meshcsi pod of the suite is refused.
type ReadOnlyWebhook struct {
	driver string
	srv    *http.Server
	ln     net.Listener
	ca     []byte
	done   chan error
}

// StartReadOnlyWebhook serves the webhook for driver on a free loopback port
// with a fresh self-signed certificate.
func StartReadOnlyWebhook(driver string) (*ReadOnlyWebhook, error) {
	cert, caPEM, err := selfSigned()
	if err != nil {
		return nil, err
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	if err != nil {
		return nil, fmt.Errorf("failed to listen for the webhook: %w", err)
	}
	w := &ReadOnlyWebhook{driver: driver, ln: ln, ca: caPEM, done: make(chan error, 1)}
	mux := http.NewServeMux()
	mux.HandleFunc("/mutate", w.serve)
	w.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { w.done <- w.srv.Serve(ln) }()
	return w, nil
}

// URL is the webhook's address.
func (w *ReadOnlyWebhook) URL() string { return "https://" + w.ln.Addr().String() + "/mutate" }

// Close stops serving.
func (w *ReadOnlyWebhook) Close(ctx context.Context) error {
	err := w.srv.Shutdown(ctx)
	if serr := <-w.done; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	return err
}

// Configuration registers the webhook for pods created in the e2e
// framework's namespaces only.
func (w *ReadOnlyWebhook) Configuration(name string) *admissionregistrationv1.MutatingWebhookConfiguration {
	url := w.URL()
	fail := admissionregistrationv1.Fail
	none := admissionregistrationv1.SideEffectClassNone
	never := admissionregistrationv1.NeverReinvocationPolicy
	scope := admissionregistrationv1.NamespacedScope
	timeout := int32(5)
	return &admissionregistrationv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Webhooks: []admissionregistrationv1.MutatingWebhook{{
			Name:                    "csi-readonly.storage-e2e.meshcsi.io",
			ClientConfig:            admissionregistrationv1.WebhookClientConfig{URL: &url, CABundle: w.ca},
			AdmissionReviewVersions: []string{"v1"},
			SideEffects:             &none,
			FailurePolicy:           &fail,
			ReinvocationPolicy:      &never,
			TimeoutSeconds:          &timeout,
			NamespaceSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
				{Key: FrameworkNamespaceLabel, Operator: metav1.LabelSelectorOpExists},
			}},
			Rules: []admissionregistrationv1.RuleWithOperations{{
				Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
				Rule: admissionregistrationv1.Rule{
					APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"}, Scope: &scope,
				},
			}},
		}},
	}
}

func (w *ReadOnlyWebhook) serve(rw http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 8<<20))
	if err != nil {
		http.Error(rw, err.Error(), http.StatusBadRequest)
		return
	}
	var review admissionv1.AdmissionReview
	if err := json.Unmarshal(body, &review); err != nil || review.Request == nil {
		http.Error(rw, "not an AdmissionReview", http.StatusBadRequest)
		return
	}
	resp := &admissionv1.AdmissionResponse{UID: review.Request.UID, Allowed: true}
	patch, err := ReadOnlyPatch(review.Request.Object.Raw, w.driver)
	if err != nil {
		resp.Allowed = false
		resp.Result = &metav1.Status{Message: err.Error()}
	} else if patch != nil {
		pt := admissionv1.PatchTypeJSONPatch
		resp.Patch, resp.PatchType = patch, &pt
	}
	review.Response, review.Request = resp, nil
	rw.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(rw).Encode(review)
}

// ReadOnlyPatch returns the JSON patch that sets csi.readOnly: true on the
// pod's volumes of driver that lack it, or nil when none does.
func ReadOnlyPatch(rawPod []byte, driver string) ([]byte, error) {
	var pod corev1.Pod
	if err := json.Unmarshal(rawPod, &pod); err != nil {
		return nil, fmt.Errorf("failed to decode the pod: %w", err)
	}
	type op struct {
		Op    string `json:"op"`
		Path  string `json:"path"`
		Value bool   `json:"value"`
	}
	var ops []op
	for i, v := range pod.Spec.Volumes {
		if v.CSI == nil || v.CSI.Driver != driver || (v.CSI.ReadOnly != nil && *v.CSI.ReadOnly) {
			continue
		}
		ops = append(ops, op{Op: "add", Path: fmt.Sprintf("/spec/volumes/%d/csi/readOnly", i), Value: true})
	}
	if len(ops) == 0 {
		return nil, nil
	}
	return json.Marshal(ops)
}

// selfSigned makes a certificate for 127.0.0.1 that is its own CA.
func selfSigned() (tls.Certificate, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("failed to generate a key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("failed to pick a serial: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "meshcsi storage e2e webhook"},
		NotBefore:             time.Now().Add(-time.Minute),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("failed to create the certificate: %w", err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("failed to encode the key: %w", err)
	}
	cert, err := tls.X509KeyPair(certPEM, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}))
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("failed to load the certificate: %w", err)
	}
	return cert, certPEM, nil
}
