package kubeharness

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestPrepareDir(t *testing.T) {
	write := func(t *testing.T, dir string, files ...string) {
		t.Helper()
		for _, f := range files {
			p := filepath.Join(dir, f)
			if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	tests := []struct {
		name    string
		files   []string
		wantErr string
		kept    string
	}{
		{name: "missing dir"},
		{name: "empty dir"},
		{name: "stopped cluster's leftovers", files: []string{dirMarker, "logs/etcd.log", "etcd/member/x"}},
		{name: "running cluster", files: []string{dirMarker, stateFile}, wantErr: "already uses", kept: stateFile},
		{name: "foreign dir", files: []string{"precious.txt"}, wantErr: "not a kubeharness directory", kept: "precious.txt"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "cluster")
			if tt.name != "missing dir" {
				if err := os.MkdirAll(dir, 0o750); err != nil {
					t.Fatal(err)
				}
			}
			write(t, dir, tt.files...)
			err := prepareDir(dir)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				if _, err := os.Stat(filepath.Join(dir, tt.kept)); err != nil {
					t.Errorf("%s was touched: %v", tt.kept, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 0 {
				t.Errorf("dir not emptied: %v", entries)
			}
		})
	}
}
