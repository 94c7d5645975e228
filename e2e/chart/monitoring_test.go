//go:build chart

package chart

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/meshcsi/meshcsi/e2e/monitoring"
)

var metricRE = regexp.MustCompile(`\b(up|meshcsi_[a-z_]+|process_[a-z_]+)\b`)

func TestMonitoringObjects(t *testing.T) {
	h := newHelm(t)
	t.Run("off by default", func(t *testing.T) {
		objs := render(t, h, nil)
		for _, k := range []string{"Service", "PodMonitor", "ServiceMonitor", "PrometheusRule"} {
			if n := len(objs.Kind(k)); n != 0 {
				t.Errorf("%d %s rendered by default", n, k)
			}
		}
		if objs.Get("ConfigMap", "meshcsi-dashboard") != nil {
			t.Error("dashboard ConfigMap rendered by default")
		}
	})
	t.Run("on", func(t *testing.T) {
		objs := render(t, h, valueSets["monitoring"])
		svc := objs.Get("Service", "meshcsi-driver-metrics")
		pm := objs.Get("PodMonitor", "meshcsi-driver")
		rule := objs.Get("PrometheusRule", "meshcsi-driver")
		dash := objs.Get("ConfigMap", "meshcsi-dashboard")
		if svc == nil || pm == nil || rule == nil || dash == nil {
			t.Fatalf("service %v podmonitor %v rule %v dashboard %v", svc != nil, pm != nil, rule != nil, dash != nil)
		}
		b, _ := json.Marshal(pm.Object["spec"])
		if !strings.Contains(string(b), `"replacement":"csi-socket-driver"`) || !strings.Contains(string(b), `"port":"http-metrics"`) {
			t.Errorf("PodMonitor spec %s", b)
		}
		rb, _ := json.Marshal(rule.Object["spec"])
		if strings.Contains(string(rb), `meshcsi-driver\"`) || !strings.Contains(string(rb), `job=\"csi-socket-driver\"`) {
			t.Errorf("PrometheusRule does not select job csi-socket-driver: %s", rb)
		}
		data, _ := dash.Object["data"].(map[string]any)
		js, _ := data["meshcsi-driver.json"].(string)
		var d map[string]any
		if err := json.Unmarshal([]byte(js), &d); err != nil {
			t.Fatalf("dashboard in ConfigMap is not JSON: %v", err)
		}
		if strings.Contains(js, `job=\"meshcsi-driver\"`) || !strings.Contains(js, `job=\"csi-socket-driver\"`) {
			t.Error("dashboard does not select job csi-socket-driver")
		}
		if dash.GetLabels()["grafana_dashboard"] != "1" {
			t.Error("dashboard ConfigMap lacks the sidecar label")
		}
	})
	t.Run("servicemonitor", func(t *testing.T) {
		objs := render(t, h, valueSets["custom"])
		if objs.Get("ServiceMonitor", "mesh-driver") == nil || objs.Get("Service", "mesh-driver-metrics") == nil {
			t.Error("ServiceMonitor or its Service missing")
		}
	})
}

func TestRulesFile(t *testing.T) {
	path := filepath.Join(chartDir(t), "files", "prometheus-rules.yaml")
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatalf("promtool (Debian package prometheus, installed by make deps) is needed: %v", err)
	}
	out, err := exec.CommandContext(ctx(t), promtool, "check", "rules", path).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check rules: %v\n%s", err, out)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var rf struct {
		Groups []struct {
			Rules []struct {
				Alert string `json:"alert"`
				Expr  string `json:"expr"`
			} `json:"rules"`
		} `json:"groups"`
	}
	if err := yaml.Unmarshal(raw, &rf); err != nil {
		t.Fatal(err)
	}
	var alerts []string
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			alerts = append(alerts, r.Alert)
			checkMetrics(t, r.Alert, r.Expr)
		}
	}
	for _, want := range []string{"MeshcsiDriverDown", "MeshcsiPublishErrors", "MeshcsiPublishLatencyHigh"} {
		if !slices.Contains(alerts, want) {
			t.Errorf("alert %s missing (have %v)", want, alerts)
		}
	}
}

func TestDashboardFile(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(chartDir(t), "files", "grafana-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		UID    string `json:"uid"`
		Title  string `json:"title"`
		Panels []struct {
			ID      int    `json:"id"`
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatalf("dashboard is not JSON: %v", err)
	}
	if d.UID == "" || d.Title == "" || len(d.Panels) < 5 {
		t.Fatalf("dashboard uid %q title %q panels %d", d.UID, d.Title, len(d.Panels))
	}
	ids := map[int]bool{}
	for _, p := range d.Panels {
		if ids[p.ID] {
			t.Errorf("duplicate panel id %d", p.ID)
		}
		ids[p.ID] = true
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			checkMetrics(t, p.Title, tg.Expr)
			if strings.Count(tg.Expr, "(") != strings.Count(tg.Expr, ")") {
				t.Errorf("panel %q: unbalanced parentheses in %s", p.Title, tg.Expr)
			}
		}
	}
}

func checkMetrics(t *testing.T, where, expr string) {
	t.Helper()
	names := metricRE.FindAllString(expr, -1)
	if len(names) == 0 {
		t.Errorf("%s: no metric in %q", where, expr)
	}
	for _, n := range names {
		if !slices.Contains(monitoring.DriverMetrics, n) {
			t.Errorf("%s: unknown metric %s", where, n)
		}
	}
}
