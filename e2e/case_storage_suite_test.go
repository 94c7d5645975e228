//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshcsi/meshcsi/e2e/env"
	"github.com/meshcsi/meshcsi/e2e/storagesuite"
)

// caseStorageSuite runs Kubernetes' own storage e2e suite (External.Storage,
// CSI ephemeral volumes) against meshcsi, as described in
// e2e/storage/testdriver.yaml: every spec it runs passes, the read-only
// inline volume spec runs, and the others skip with the suite's own reason. The summary goes into the test log and next to the
// e2e durations (_output/storage-e2e.txt).
func caseStorageSuite(t *testing.T, ctx context.Context) {
	bin := os.Getenv(storagesuite.BinaryEnv)
	if bin == "" {
		t.Fatalf("%s is not set: run the suite with `make test-e2e` (it builds the storage suite)", storagesuite.BinaryEnv)
	}
	dir := t.TempDir()
	archive := filepath.Join(dir, "busybox.tar")
	if err := storagesuite.BuildBusybox(archive); err != nil {
		t.Fatal(err)
	}
	if err := suite.Cluster.ImportImages(ctx, archive); err != nil {
		t.Fatal(err)
	}
	install(t, ctx, nil)

	// The suite's pods leave csi.readOnly unset, which meshcsi refuses by
	// design: a webhook sets it, as a user writes it (docs/proof.md).
	hook, err := storagesuite.StartReadOnlyWebhook(env.DriverName)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = hook.Close(context.Background()) })
	hooks := suite.Kube.Kube.AdmissionregistrationV1().MutatingWebhookConfigurations()
	whc, err := hooks.Create(ctx, hook.Configuration("meshcsi-storage-e2e-csi-readonly"), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = hooks.Delete(context.Background(), whc.Name, metav1.DeleteOptions{}) })

	start := time.Now()
	res, err := storagesuite.Run(ctx, storagesuite.Options{
		Binary:     bin,
		Kubeconfig: suite.Cluster.Kubeconfig(),
		DriverFile: filepath.Join(suite.Root, "e2e", "storage", "testdriver.yaml"),
		Dir:        filepath.Join(dir, "suite"),
		Output:     testWriter{t},
	})
	took := time.Since(start)
	note := storageNote(res, took)
	t.Log(note)
	if p := os.Getenv("MESHCSI_E2E_REPORT"); p != "" {
		_ = os.WriteFile(filepath.Join(filepath.Dir(p), "storage-e2e.txt"), []byte(note), 0o644)
	}
	if err != nil {
		t.Fatal(err)
	}
	ran := map[string]string{}
	for _, s := range res.Specs {
		if s.State != "passed" && s.State != "skipped" {
			t.Errorf("%s: %s %s", s.Name, s.State, s.Message)
		}
		ran[s.Name] = s.State
	}
	// "two pods which have the same volume definition" skips itself for a
	// read-only inline volume in v1.33 (it never sets the test's ReadOnly).
	for _, want := range []string{"should create read-only inline ephemeral volume"} {
		found := false
		for name, state := range ran {
			if strings.HasSuffix(name, want) {
				found = true
				if state != "passed" {
					t.Errorf("%q %s, want passed", want, state)
				}
			}
		}
		if !found {
			t.Errorf("%q is not among the specs the suite reported", want)
		}
	}
	uninstallAndWaitGone(t, ctx)
}

// storageNote lists the Ginkgo summary and each selected spec with its state
// and, for skipped ones, the suite's reason.
func storageNote(res *storagesuite.Result, took time.Duration) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Kubernetes storage e2e suite against csi.meshcsi.io (focus %q), %s\n", storagesuite.Focus, took.Round(100*time.Millisecond))
	if res == nil {
		return b.String()
	}
	for _, l := range res.Summary {
		fmt.Fprintf(&b, "  %s\n", l)
	}
	for _, s := range res.Specs {
		fmt.Fprintf(&b, "  %-7s %6s  %s\n", s.State, s.RunTime.Round(100*time.Millisecond), s.Name)
		if s.State == "skipped" && s.Message != "" {
			fmt.Fprintf(&b, "          reason: %s\n", firstLine(s.Message))
		}
	}
	return b.String()
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// testWriter streams a subprocess's output into the test log, line by line.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	for _, l := range strings.Split(strings.TrimRight(string(p), "\n"), "\n") {
		w.t.Log("storage suite: " + l)
	}
	return len(p), nil
}
