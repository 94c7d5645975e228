package config

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestParseDefaultsAndEnv(t *testing.T) {
	c, err := Parse([]string{"run", "--release", "mesh"}, env(map[string]string{"POD_NAMESPACE": "meshcsi-system", "MESHCSI_TIMEOUT": "5m"}), &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	want := Config{Command: CmdRun, Namespace: "meshcsi-system", Release: "mesh", DriverName: DefaultDriverName, PartOf: DefaultPartOf,
		PlanConfigMap: "mesh-sentinel-plan", JobName: "mesh-sentinel", InstallMarker: "mesh-install", LeaseName: "mesh-sentinel", RemovalGuard: "mesh-removing",
		RemovalGuardGroup: "mesh.meshcsi-system.meshcsi.io",
		Timeout:           5 * time.Minute, ReportInterval: DefaultReportInterval, Output: "table"}
	want.Log.Level, want.Log.Format = "info", "json"
	if c != want {
		t.Fatalf("Parse() = %+v\nwant %+v", c, want)
	}
	// The pre-upgrade hook's subcommand takes the same flags.
	c, err = Parse([]string{"prepare-upgrade", "--namespace=ns", "--release=r", "--job-name=r-sentinel"}, env(nil), &bytes.Buffer{})
	if err != nil || c.Command != CmdPrepareUpgrade || c.JobName != "r-sentinel" {
		t.Fatalf("Parse(prepare-upgrade) = %+v, %v", c, err)
	}
	// A flag beats its environment variable.
	c, err = Parse([]string{"plan", "--namespace=ns", "--release=r", "--timeout=1s", "-o", "json"}, env(map[string]string{"POD_NAMESPACE": "other", "MESHCSI_TIMEOUT": "5m"}), &bytes.Buffer{})
	if err != nil || c.Namespace != "ns" || c.Timeout != time.Second || c.Output != "json" {
		t.Fatalf("Parse() = %+v, %v", c, err)
	}
}

func TestParseRejects(t *testing.T) {
	base := map[string]string{"POD_NAMESPACE": "ns", "MESHCSI_RELEASE": "r"}
	tests := []struct {
		name string
		args []string
		env  map[string]string
		flag string
	}{
		{"no subcommand", nil, base, "subcommand"},
		{"unknown subcommand", []string{"delete"}, base, "subcommand"},
		{"missing namespace", []string{"run"}, map[string]string{"MESHCSI_RELEASE": "r"}, "--namespace"},
		{"bad namespace", []string{"run", "--namespace", "Not_OK"}, base, "--namespace"},
		{"missing release", []string{"run"}, map[string]string{"POD_NAMESPACE": "ns"}, "--release"},
		{"empty driver", []string{"run", "--driver-name", ""}, base, "--driver-name"},
		{"bad timeout", []string{"run", "--timeout", "soon"}, base, "--timeout"},
		{"negative timeout", []string{"run", "--timeout", "-1s"}, base, "--timeout"},
		{"zero report interval", []string{"run", "--report-interval", "0s"}, base, "--report-interval"},
		{"bad removal guard name", []string{"handoff", "--removal-guard", "UPPER"}, base, "--removal-guard"},
		{"bad removal guard name, old flag", []string{"handoff", "--removal-guard-configmap", "UPPER"}, base, "--removal-guard"},
		{"bad removal guard group", []string{"handoff", "--removal-guard-group", "Not_A_Group"}, base, "--removal-guard-group"},
		{"bad output", []string{"plan", "-o", "yaml"}, base, "-o"},
		{"bad log level", []string{"run", "--log-level", "loud"}, base, "--log-level"},
		{"bad plan name", []string{"run", "--plan-configmap", "UPPER"}, base, "--plan-configmap"},
		{"stray argument", []string{"run", "extra"}, base, "unexpected"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(tt.args, env(tt.env), &bytes.Buffer{})
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Parse() error = %v, want ErrInvalid", err)
			}
			if !strings.Contains(err.Error(), tt.flag) {
				t.Fatalf("error %q does not name %s", err, tt.flag)
			}
		})
	}
}

func TestHelp(t *testing.T) {
	var out bytes.Buffer
	if _, err := Parse([]string{"--help"}, env(nil), &out); !errors.Is(err, ErrHelp) || !strings.Contains(out.String(), "handoff") {
		t.Fatalf("--help: err=%v out=%q", err, out.String())
	}
}
