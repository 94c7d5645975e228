package kubeharness

import (
	"crypto/x509"
	"encoding/pem"
	"net"
	"os"
	"path/filepath"
	"testing"
)

func TestIssueCertificates(t *testing.T) {
	ca, err := newCA("test-ca")
	if err != nil {
		t.Fatal(err)
	}
	if !ca.Cert.IsCA {
		t.Fatal("CA certificate is not a CA")
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)

	tests := []struct {
		name     string
		req      certRequest
		usage    x509.ExtKeyUsage
		dnsName  string
		wantOrgs []string
	}{
		{
			name:     "admin client",
			req:      certRequest{CommonName: "kubeharness-admin", Organization: []string{"system:masters"}, Client: true},
			usage:    x509.ExtKeyUsageClientAuth,
			wantOrgs: []string{"system:masters"},
		},
		{
			name:    "apiserver serving",
			req:     certRequest{CommonName: "kube-apiserver", DNSNames: []string{"kubernetes.default.svc"}, IPs: []net.IP{net.ParseIP("127.0.0.1")}, Server: true},
			usage:   x509.ExtKeyUsageServerAuth,
			dnsName: "kubernetes.default.svc",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kp, err := ca.issue(tt.req)
			if err != nil {
				t.Fatal(err)
			}
			opts := x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{tt.usage}, DNSName: tt.dnsName}
			if _, err := kp.Cert.Verify(opts); err != nil {
				t.Fatalf("certificate does not verify against the CA: %v", err)
			}
			if kp.Cert.Subject.CommonName != tt.req.CommonName {
				t.Errorf("CN = %q, want %q", kp.Cert.Subject.CommonName, tt.req.CommonName)
			}
			if len(tt.wantOrgs) > 0 && (len(kp.Cert.Subject.Organization) != 1 || kp.Cert.Subject.Organization[0] != tt.wantOrgs[0]) {
				t.Errorf("O = %v, want %v", kp.Cert.Subject.Organization, tt.wantOrgs)
			}
			dir := t.TempDir()
			certPath, keyPath, err := kp.writeFiles(dir, "x")
			if err != nil {
				t.Fatal(err)
			}
			if st, err := os.Stat(keyPath); err != nil || st.Mode().Perm() != 0o600 {
				t.Errorf("key file mode = %v (%v), want 0600", st.Mode().Perm(), err)
			}
			data, err := os.ReadFile(certPath)
			if err != nil {
				t.Fatal(err)
			}
			if block, _ := pem.Decode(data); block == nil || block.Type != "CERTIFICATE" {
				t.Errorf("%s is not a PEM certificate", filepath.Base(certPath))
			}
		})
	}
}

func TestIssueRequiresUsage(t *testing.T) {
	ca, err := newCA("test-ca")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ca.issue(certRequest{CommonName: "nothing"}); err == nil {
		t.Fatal("issue without usage succeeded")
	}
}

func TestServiceAccountKey(t *testing.T) {
	priv, pub, err := newServiceAccountKey()
	if err != nil {
		t.Fatal(err)
	}
	pb, _ := pem.Decode(priv)
	if pb == nil {
		t.Fatal("private key is not PEM")
	}
	key, err := x509.ParseECPrivateKey(pb.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	ub, _ := pem.Decode(pub)
	if ub == nil {
		t.Fatal("public key is not PEM")
	}
	pubKey, err := x509.ParsePKIXPublicKey(ub.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if !key.PublicKey.Equal(pubKey) {
		t.Fatal("public key does not match private key")
	}
}
