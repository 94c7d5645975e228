package kubeclient

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

const kubeconfig = `apiVersion: v1
kind: Config
clusters:
- name: a
  cluster: {server: "https://127.0.0.1:6443"}
- name: b
  cluster: {server: "https://127.0.0.2:6443"}
users:
- name: u
  user: {token: secret}
contexts:
- name: a
  context: {cluster: a, user: u}
- name: b
  context: {cluster: b, user: u}
current-context: a
`

func TestRESTConfigFromKubeconfig(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(path, []byte(kubeconfig), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := RESTConfig(Options{Kubeconfig: path, UserAgent: "meshcsi-test/v1", QPS: 7, Burst: 9})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Host != "https://127.0.0.1:6443" || cfg.UserAgent != "meshcsi-test/v1" || cfg.QPS != 7 || cfg.Burst != 9 {
		t.Fatalf("unexpected config: host=%s ua=%s qps=%v burst=%d", cfg.Host, cfg.UserAgent, cfg.QPS, cfg.Burst)
	}
	cfg, err = RESTConfig(Options{Kubeconfig: path, Context: "b"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Host != "https://127.0.0.2:6443" {
		t.Fatalf("context b not honoured: %s", cfg.Host)
	}
}

func TestRESTConfigErrors(t *testing.T) {
	if _, err := RESTConfig(Options{Kubeconfig: filepath.Join(t.TempDir(), "missing")}); err == nil {
		t.Fatal("accepted a missing kubeconfig")
	}
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	t.Setenv("KUBERNETES_SERVICE_PORT", "")
	if _, err := RESTConfig(Options{}); !errors.Is(err, ErrNoConfig) {
		t.Fatalf("error = %v, want ErrNoConfig", err)
	}
}
