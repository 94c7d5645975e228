//go:build chart

package chart

import (
	"strings"
	"testing"
)

// TestSchemaRejects: values.schema.json (and the templates' own checks)
// turn typos and bad values into an error that names them.
func TestSchemaRejects(t *testing.T) {
	h := newHelm(t)
	cases := []struct {
		name string
		set  map[string]string
		want string
	}{
		{"unknown top-level key", map[string]string{"driverNmae": "x"}, "driverNmae"},
		{"unknown nested key", map[string]string{"driver.imagee.tag": "x"}, "imagee"},
		{"unknown metrics key", map[string]string{"metrics.podmonitor.enabled": "true"}, "podmonitor"},
		{"unknown openshift key", map[string]string{"openshift.enable": "true"}, "enable"},
		{"unknown sentinel key", map[string]string{"sentinel.timeOut": "1h"}, "timeOut"},
		{"port not a number", map[string]string{"metrics.port": "http"}, "port"},
		{"port out of range", map[string]string{"metrics.port": "70000"}, "port"},
		{"bool as string", map[string]string{"openshift.enabled": "yes"}, "enabled"},
		{"bad pull policy", map[string]string{"driver.image.pullPolicy": "Sometimes"}, "pullPolicy"},
		{"bad log level", map[string]string{"log.level": "verbose"}, "level"},
		{"relative source dir", map[string]string{"sources.spire-agent": "run/spire"}, "spire-agent"},
		{"dot-dot source dir", map[string]string{"sources.spire-agent": "/run/../etc"}, "spire-agent"},
		{"bad source name", map[string]string{"sources.Spire_Agent": "/run/x"}, "Spire_Agent"},
		{"relative kubelet dir", map[string]string{"kubeletDir": "var/lib/kubelet"}, "kubeletDir"},
		{"bad driver name", map[string]string{"driverName": "-csi"}, "driverName"},
		{"bad duration", map[string]string{"sentinel.timeout": "forever"}, "timeout"},
		{"bad digest", map[string]string{"driver.image.digest": "latest"}, "digest"},
		{"bad toleration operator", map[string]string{"driver.tolerations[0].operator": "Maybe"}, "operator"},
		{"long fullname", map[string]string{"fullnameOverride": strings.Repeat("a", 41)}, "fullnameOverride"},
		{"bad profile", map[string]string{"openshift.csiEphemeralVolumeProfile": "open"}, "csiEphemeralVolumeProfile"},
		{"default source not configured", map[string]string{"defaultSource": "other"}, `defaultSource "other" is not a key of sources`},
		// Only nulls left (what --reuse-values keeps after removing sources).
		{"every source removed", map[string]string{"sources.spire-agent": "null", "sources.other": "null"}, "at least one source"},
		{"default source removed", map[string]string{"sources.spire-agent": "null", "sources.other": "null", "sources.agent": "/run/a"}, `defaultSource "spire-agent" is not a key of sources`},
		{"service monitor without service", map[string]string{"metrics.serviceMonitor.enabled": "true"}, "needs metrics.service.enabled"},
		{"pod and service monitor", map[string]string{"metrics.service.enabled": "true", "metrics.serviceMonitor.enabled": "true", "metrics.podMonitor.enabled": "true"}, "enable one"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, err := h.Template(ctx(t), chartDir(t), release, namespace, tc.set)
			if err == nil {
				t.Fatalf("rendered although it should fail:\n%.400s", out)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error does not name %q: %v", tc.want, err)
			}
		})
	}
}
