package kubeharness

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestShimsToKill(t *testing.T) {
	// The components that keep running (control plane, kube-proxy) carry
	// the same environment marker as the shims: they must be spared.
	got := shimsToKill([]int{40, 7, 12, 99}, map[int]bool{12: true, 99: true})
	if want := []int{7, 40}; !reflect.DeepEqual(got, want) {
		t.Errorf("shimsToKill = %v, want %v", got, want)
	}
	if got := shimsToKill(nil, map[int]bool{1: true}); len(got) != 0 {
		t.Errorf("shimsToKill(nil) = %v", got)
	}
}

func TestEmptyDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	if err := emptyDir(dir); err != nil {
		t.Fatalf("missing dir: %v", err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "a", "b"), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "f"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := emptyDir(dir); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) != 0 {
		t.Errorf("after emptyDir: %v %v (want the directory kept, empty)", entries, err)
	}
}

func TestNodeFaultsNeedNodeMode(t *testing.T) {
	c := &Cluster{opts: Options{Mode: ControlPlane}}
	ctx := context.Background()
	for name, f := range map[string]func(context.Context) error{
		"PowerOff":          c.PowerOff,
		"RestartKubelet":    c.RestartKubelet,
		"RestartContainerd": c.RestartContainerd,
	} {
		if err := f(ctx); err == nil || !strings.Contains(err.Error(), "node-mode") {
			t.Errorf("%s on a control plane: %v, want a refusal naming node mode", name, err)
		}
	}
}
