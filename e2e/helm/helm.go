// Package helm runs the pinned helm binary for the chart tests, the e2e suite
// and the demo, so all three drive the chart exactly as a user would.
package helm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
)

// BinEnv names the helm binary to use; the Makefile sets it to the pinned
// helm under the tools cache.
const BinEnv = "MESHCSI_HELM"

// KubeVersion is the Kubernetes version `helm template` renders for; it
// matches the local cluster the e2e suite runs.
const KubeVersion = "1.33.13"

// ErrNotFound is returned when no helm binary can be found.
var ErrNotFound = errors.New("helm binary not found")

// Find returns the helm binary: $MESHCSI_HELM, else the newest
// $HOME/.cache/meshcsi/tools/helm-*/helm.
func Find() (string, error) {
	if p := os.Getenv(BinEnv); p != "" {
		if _, err := os.Stat(p); err != nil { //nolint:gosec // the operator names the helm binary
			return "", fmt.Errorf("%w: %s=%s: %w", ErrNotFound, BinEnv, p, err)
		}
		return p, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	matches, _ := filepath.Glob(filepath.Join(home, ".cache", "meshcsi", "tools", "helm-*", "helm"))
	if len(matches) == 0 {
		return "", fmt.Errorf("%w: set %s or run `make helm`", ErrNotFound, BinEnv)
	}
	sort.Strings(matches)
	return matches[len(matches)-1], nil
}

// Helm runs one helm binary, optionally against a kubeconfig.
type Helm struct {
	// Bin is the helm binary.
	Bin string
	// Kubeconfig is passed as --kubeconfig when set.
	Kubeconfig string
	// Dir keeps helm's cache, config and data out of $HOME; a temporary
	// directory is best.
	Dir string
}

// New finds helm and returns a Helm that keeps its state under dir.
func New(kubeconfig, dir string) (*Helm, error) {
	bin, err := Find()
	if err != nil {
		return nil, err
	}
	return &Helm{Bin: bin, Kubeconfig: kubeconfig, Dir: dir}, nil
}

// Run runs helm with args and returns its stdout; a failure carries stderr.
func (h *Helm) Run(ctx context.Context, args ...string) (string, error) {
	if h.Kubeconfig != "" {
		args = append(args, "--kubeconfig", h.Kubeconfig)
	}
	cmd := exec.CommandContext(ctx, h.Bin, args...) //nolint:gosec // the pinned helm binary with the caller's arguments
	cmd.Env = append(os.Environ(),
		"HELM_CACHE_HOME="+filepath.Join(h.Dir, "cache"),
		"HELM_CONFIG_HOME="+filepath.Join(h.Dir, "config"),
		"HELM_DATA_HOME="+filepath.Join(h.Dir, "data"),
	)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("failed to run helm %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// SetArgs turns key=value pairs into --set flags (sorted, so runs repeat).
func SetArgs(set map[string]string) []string {
	keys := make([]string, 0, len(set))
	for k := range set {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	args := make([]string, 0, 2*len(keys))
	for _, k := range keys {
		args = append(args, "--set", k+"="+set[k])
	}
	return args
}

// Template renders chart as release in namespace with the given --set
// values and returns the manifests.
func (h *Helm) Template(ctx context.Context, chart, release, namespace string, set map[string]string, extra ...string) (string, error) {
	args := []string{"template", release, chart, "--namespace", namespace, "--kube-version", KubeVersion}
	args = append(args, SetArgs(set)...)
	args = append(args, extra...)
	return h.Run(ctx, args...)
}
