//go:build chart

package chart

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/meshcsi/meshcsi/e2e/helm"
	"github.com/meshcsi/meshcsi/e2e/manifest"
)

const (
	release   = "meshcsi"
	namespace = "meshcsi-system"
)

// chartDir is charts/meshcsi, found from this file so tests run from anywhere.
func chartDir(t *testing.T) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cannot locate the test file")
	}
	dir := filepath.Join(filepath.Dir(file), "..", "..", "charts", "meshcsi")
	if _, err := os.Stat(filepath.Join(dir, "Chart.yaml")); err != nil {
		t.Fatalf("chart not found: %v", err)
	}
	return dir
}

func newHelm(t *testing.T) *helm.Helm {
	t.Helper()
	h, err := helm.New("", t.TempDir())
	if err != nil {
		t.Fatalf("helm is needed for the chart tests (make test-chart installs it): %v", err)
	}
	return h
}

func ctx(t *testing.T) context.Context {
	t.Helper()
	c, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return c
}

// valueSets are the configurations every generic assertion runs against.
var valueSets = map[string]map[string]string{
	"defaults": nil,
	"openshift": {
		"openshift.enabled": "true",
	},
	"monitoring": {
		"metrics.service.enabled":          "true",
		"metrics.podMonitor.enabled":       "true",
		"metrics.prometheusRule.enabled":   "true",
		"metrics.grafanaDashboard.enabled": "true",
		"metrics.jobName":                  "csi-socket-driver",
	},
	// What a platform team sets: a registry mirror, update strategy,
	// overrides, extras, SELinux relabelling, the priority quota, the
	// namespace, and sources restricted by namespace.
	"platform": {
		"global.imageRegistry":                                 "registry.example.com/mirror",
		"driver.updateStrategy.rollingUpdate.maxUnavailable":   "25%",
		"driver.serviceAccount.annotations.example\\.com/team": "platform",
		"driver.podSecurityContext.supplementalGroups[0]":      "1000",
		"driver.securityContext.seccompProfile.type":           "Unconfined",
		"driver.extraArgs[0]":                                  "--socket-wait=60s",
		"driver.extraEnv[0].name":                              "GOTRACEBACK",
		"driver.extraEnv[0].value":                             "all",
		"driver.extraVolumes[0].name":                          "extra",
		"driver.extraVolumes[0].emptyDir.medium":               "Memory",
		"driver.extraVolumeMounts[0].name":                     "extra",
		"driver.extraVolumeMounts[0].mountPath":                "/extra",
		"driver.seLinuxRelabel.enabled":                        "true",
		"driver.priorityClassQuota.enabled":                    "true",
		"namespace.create":                                     "true",
		"commonLabels.team":                                    "platform",
		"sources.spire-agent.socket":                           "api.sock",
		"sources.spire-agent.namespaces":                       "{team-a,team-b}",
		"sources.other.path":                                   "/run/other",
		"sources.other.namespaceSelector.matchLabels.mesh":     "enabled",
		"openshift.enabled":                                    "true",
	},
	"custom": {
		"fullnameOverride":                    "mesh",
		"driverName":                          "csi.example.com",
		"kubeletDir":                          "/data/kubelet",
		"sources.spire-agent":                 "null",
		"sources.agent-a":                     "/run/agent-a",
		"sources.agent-b":                     "/run/agent-b/sockets",
		"defaultSource":                       "agent-b",
		"driver.hostNetwork":                  "true",
		"metrics.port":                        "19809",
		"metrics.podAnnotations":              "false",
		"metrics.service.enabled":             "true",
		"metrics.serviceMonitor.enabled":      "true",
		"sentinel.timeout":                    "2h",
		"sentinel.reportInterval":             "10s",
		"log.level":                           "debug",
		"log.format":                          "console",
		"driver.image.digest":                 "sha256:" + strings.Repeat("ab", 32),
		"sentinel.image.tag":                  "v9.9.9",
		"imagePullSecrets[0].name":            "regcred",
		"commonLabels.team":                   "platform",
		"openshift.enabled":                   "true",
		"openshift.csiEphemeralVolumeProfile": "baseline",
	},
}

func render(t *testing.T, h *helm.Helm, set map[string]string) manifest.Set {
	t.Helper()
	out, err := h.Template(ctx(t), chartDir(t), release, namespace, set)
	if err != nil {
		t.Fatalf("render: %v", err)
	}
	objs, err := manifest.Parse(out)
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	if len(objs) == 0 {
		t.Fatal("rendered no objects")
	}
	return objs
}

func TestLint(t *testing.T) {
	h := newHelm(t)
	for name, set := range valueSets {
		t.Run(name, func(t *testing.T) {
			args := append([]string{"lint", chartDir(t), "--strict", "--kube-version", helm.KubeVersion}, helm.SetArgs(set)...)
			out, err := h.Run(ctx(t), args...)
			if err != nil {
				t.Fatalf("helm lint: %v\n%s", err, out)
			}
			if !strings.Contains(out, "0 chart(s) failed") {
				t.Fatalf("helm lint did not pass:\n%s", out)
			}
			for _, line := range strings.Split(out, "\n") {
				if strings.HasPrefix(line, "[WARNING]") || strings.HasPrefix(line, "[ERROR]") {
					t.Errorf("helm lint: %s", line)
				}
			}
		})
	}
}
