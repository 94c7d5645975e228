// Package crds finds the real CustomResourceDefinitions of the third-party
// kinds the chart renders, in the Go modules that publish them: OpenShift's
// SecurityContextConstraints from github.com/openshift/api and the
// prometheus-operator's PodMonitor, ServiceMonitor and PrometheusRule from
// github.com/prometheus-operator/prometheus-operator. The modules are
// fetched into the module cache with `go mod download` at the pinned
// versions below (the module proxy serves them), never added to a go.mod:
// their k8s.io requirements are newer than the workspace's.
package crds

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// The pinned module versions (../shared/THIRD-PARTY.md for OpenShift's).
const (
	OpenShiftAPI       = "github.com/openshift/api"
	OpenShiftAPIVer    = "v0.0.0-20251015095338-264e80a2b6e7"
	PrometheusOperator = "github.com/prometheus-operator/prometheus-operator"
	// PrometheusOperatorVer is the newest version the module proxy serves.
	PrometheusOperatorVer = "v0.85.0"
)

// ModuleDir downloads module@version into the module cache (if missing) and
// returns its directory.
func ModuleDir(ctx context.Context, module, version string) (string, error) {
	cmd := exec.CommandContext(ctx, "go", "mod", "download", "-json", module+"@"+version) //nolint:gosec // the pinned modules of this package
	// Outside any module or workspace: nothing here may change a go.mod.
	cmd.Dir = os.TempDir()
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var info struct{ Dir, Error string }
	if jerr := json.Unmarshal(out, &info); jerr == nil && info.Error != "" {
		return "", fmt.Errorf("failed to download %s@%s: %s", module, version, info.Error)
	}
	if err != nil {
		return "", fmt.Errorf("failed to download %s@%s: %w: %s", module, version, err, stderr.String())
	}
	if info.Dir == "" {
		return "", fmt.Errorf("go mod download %s@%s printed no directory", module, version)
	}
	return info.Dir, nil
}

// SecurityContextConstraints is the path of OpenShift's SCC CRD.
func SecurityContextConstraints(ctx context.Context) (string, error) {
	dir, err := ModuleDir(ctx, OpenShiftAPI, OpenShiftAPIVer)
	if err != nil {
		return "", err
	}
	return existing(filepath.Join(dir, "security", "v1", "zz_generated.crd-manifests",
		"0000_03_config-operator_01_securitycontextconstraints.crd.yaml"))
}

// Monitoring are the paths of the prometheus-operator CRDs the chart uses:
// PodMonitor, ServiceMonitor and PrometheusRule.
func Monitoring(ctx context.Context) ([]string, error) {
	dir, err := ModuleDir(ctx, PrometheusOperator, PrometheusOperatorVer)
	if err != nil {
		return nil, err
	}
	var paths []string
	for _, kind := range []string{"podmonitors", "servicemonitors", "prometheusrules"} {
		p, err := existing(filepath.Join(dir, "example", "prometheus-operator-crd", "monitoring.coreos.com_"+kind+".yaml"))
		if err != nil {
			return nil, err
		}
		paths = append(paths, p)
	}
	return paths, nil
}

// All are every CRD the chart's optional objects need.
func All(ctx context.Context) ([]string, error) {
	scc, err := SecurityContextConstraints(ctx)
	if err != nil {
		return nil, err
	}
	mon, err := Monitoring(ctx)
	if err != nil {
		return nil, err
	}
	return append([]string{scc}, mon...), nil
}

func existing(p string) (string, error) {
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("CRD file missing from its module: %w", err)
	}
	return p, nil
}
