//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/meshcsi/meshcsi/e2e/env"
	"github.com/meshcsi/meshcsi/e2e/monitoring"
)

// promConfig discovers pods through the local API server and keeps those
// with the conventional scrape annotations: the driver is found by its
// annotations alone. It loads the chart's alert rules too.
const promConfig = `global:
  scrape_interval: 2s
  evaluation_interval: 2s
rule_files:
  - %[1]s
scrape_configs:
  - job_name: meshcsi-driver
    kubernetes_sd_configs:
      - role: pod
        api_server: %[2]s
        tls_config:
          ca_file: %[3]s
          cert_file: %[4]s
          key_file: %[5]s
    relabel_configs:
      - source_labels: [__meta_kubernetes_pod_annotation_prometheus_io_scrape]
        action: keep
        regex: "true"
      - source_labels: [__meta_kubernetes_pod_annotation_prometheus_io_path]
        action: replace
        target_label: __metrics_path__
        regex: (.+)
      - source_labels: [__meta_kubernetes_pod_ip, __meta_kubernetes_pod_annotation_prometheus_io_port]
        action: replace
        regex: (.+);(.+)
        replacement: $1:$2
        target_label: __address__
      - source_labels: [__meta_kubernetes_namespace]
        target_label: namespace
      - source_labels: [__meta_kubernetes_pod_name]
        target_label: pod
      - source_labels: [__meta_kubernetes_pod_node_name]
        target_label: node
`

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = l.Close() }()
	return l.Addr().(*net.TCPAddr).Port
}

func casePrometheus(t *testing.T, ctx context.Context) {
	// Debian's prometheus is built without Kubernetes service discovery, so
	// the suite runs Prometheus built from its Go module (make prometheus).
	promBin := os.Getenv("MESHCSI_PROMETHEUS")
	if promBin == "" {
		t.Fatal("MESHCSI_PROMETHEUS must name a prometheus binary with Kubernetes service discovery (make test-e2e sets it)")
	}
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatalf("promtool (Debian package prometheus) is needed: %v", err)
	}
	dir := t.TempDir()
	rc := suite.Cluster.RESTConfig()
	files := map[string][]byte{"ca.crt": rc.CAData, "client.crt": rc.CertData, "client.key": rc.KeyData}
	for name, data := range files {
		if len(data) == 0 {
			t.Fatalf("the admin REST config has no inline %s", name)
		}
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	rules := filepath.Join(suite.ChartDir, "files", "prometheus-rules.yaml")
	cfg := fmt.Sprintf(promConfig, rules, rc.Host,
		filepath.Join(dir, "ca.crt"), filepath.Join(dir, "client.crt"), filepath.Join(dir, "client.key"))
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	var logBuf bytes.Buffer
	pctx, cancel := context.WithCancel(ctx)
	cmd := exec.CommandContext(pctx, promBin,
		"--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+fmt.Sprintf("127.0.0.1:%d", port),
	)
	cmd.Stdout, cmd.Stderr = &logBuf, &logBuf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("prometheus log:\n%s", lastLines(logBuf.String(), 30))
		}
	})

	// The driver pod found through Kubernetes service discovery, by its
	// annotations, and scraped.
	poll(t, ctx, 90*time.Second, "Prometheus scrapes the driver pod", func(ctx context.Context) error {
		var res struct {
			Data struct {
				ActiveTargets []struct {
					Labels    map[string]string `json:"labels"`
					Health    string            `json:"health"`
					LastError string            `json:"lastError"`
				} `json:"activeTargets"`
			} `json:"data"`
		}
		if err := getJSON(ctx, base+"/api/v1/targets?state=active", &res); err != nil {
			return err
		}
		for _, tg := range res.Data.ActiveTargets {
			if strings.HasPrefix(tg.Labels["pod"], release+"-driver-") && tg.Health == "up" {
				t.Logf("target %s (node %s) is up", tg.Labels["instance"], tg.Labels["node"])
				return nil
			}
		}
		// Say whether the driver answers a direct scrape, to tell a discovery
		// problem from a network one.
		direct := "direct scrape ok"
		if pod, err := suite.DriverPod(ctx, namespace, release); err != nil {
			direct = err.Error()
		} else if _, err := suite.DriverMetrics(ctx, pod); err != nil {
			direct = "direct scrape of " + pod.Status.PodIP + ": " + err.Error()
		}
		return fmt.Errorf("targets: %+v (%s)", res.Data.ActiveTargets, direct)
	})
	poll(t, ctx, 30*time.Second, "a query returns the publish counter", func(ctx context.Context) error {
		v, err := query(ctx, base, `sum(meshcsi_csi_operations_total{job="meshcsi-driver",method="NodePublishVolume",code="OK"})`)
		if err != nil {
			return err
		}
		if v < 1 {
			return fmt.Errorf("publish counter %v", v)
		}
		t.Logf("meshcsi_csi_operations_total{method=NodePublishVolume,code=OK} = %v", v)
		return nil
	})
	// The shipped rules load and evaluate against the real series.
	poll(t, ctx, 30*time.Second, "the alert rules are loaded and healthy", func(ctx context.Context) error {
		var res struct {
			Data struct {
				Groups []struct {
					Rules []struct {
						Name      string `json:"name"`
						Health    string `json:"health"`
						LastError string `json:"lastError"`
						State     string `json:"state"`
					} `json:"rules"`
				} `json:"groups"`
			} `json:"data"`
		}
		if err := getJSON(ctx, base+"/api/v1/rules", &res); err != nil {
			return err
		}
		n := 0
		for _, g := range res.Data.Groups {
			for _, r := range g.Rules {
				if r.Health != "ok" {
					return fmt.Errorf("rule %s: health %q %s", r.Name, r.Health, r.LastError)
				}
				if r.State == "firing" || r.State == "pending" {
					return fmt.Errorf("alert %s is %s on a healthy driver", r.Name, r.State)
				}
				n++
			}
		}
		if n < 5 {
			return fmt.Errorf("%d rules evaluated", n)
		}
		return nil
	})

	// promtool accepts the scrape, and it has every series the rules and
	// the dashboard use.
	pod, err := suite.DriverPod(ctx, namespace, release)
	if err != nil {
		t.Fatal(err)
	}
	expo, err := suite.DriverMetrics(ctx, pod)
	if err != nil {
		t.Fatal(err)
	}
	check := exec.CommandContext(ctx, promtool, "check", "metrics")
	check.Stdin = strings.NewReader(expo)
	if out, err := check.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
	for _, m := range monitoring.DriverMetrics {
		if m == "up" {
			continue
		}
		if _, ok, err := env.MetricValue(expo, m); err != nil || !ok {
			t.Errorf("the driver does not export %s, which the rules or dashboard use (%v)", m, err)
		}
	}
}

func getJSON(ctx context.Context, u string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s: %s", u, resp.Status, body)
	}
	return json.Unmarshal(body, v)
}

func query(ctx context.Context, base, q string) (float64, error) {
	var res struct {
		Data struct {
			Result []struct {
				Value []any `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := getJSON(ctx, base+"/api/v1/query?query="+url.QueryEscape(q), &res); err != nil {
		return 0, err
	}
	if len(res.Data.Result) == 0 || len(res.Data.Result[0].Value) != 2 {
		return 0, fmt.Errorf("no result for %s", q)
	}
	var v float64
	s, _ := res.Data.Result[0].Value[1].(string)
	_, err := fmt.Sscanf(s, "%g", &v)
	return v, err
}
