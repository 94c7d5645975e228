package main

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/meshcsi/meshcsi/libs/kubeharness"
)

func TestParseUp(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr bool
		check   func(t *testing.T, o kubeharness.Options)
	}{
		{
			name: "defaults",
			args: nil,
			check: func(t *testing.T, o kubeharness.Options) {
				if o.Mode != kubeharness.Node || !filepath.IsAbs(o.Dir) || !strings.HasSuffix(o.Dir, "_output/cluster") {
					t.Errorf("defaults = %+v", o)
				}
			},
		},
		{
			name: "control plane with controller manager",
			args: []string{"--mode", "control-plane", "--controller-manager", "--dir", "/tmp/x", "--timeout", "5s"},
			check: func(t *testing.T, o kubeharness.Options) {
				if o.Mode != kubeharness.ControlPlane || !o.ControllerManager || o.Dir != "/tmp/x" || o.StartTimeout != 5*time.Second {
					t.Errorf("options = %+v", o)
				}
			},
		},
		{name: "bad mode", args: []string{"--mode", "cluster"}, wantErr: true},
		{name: "empty dir", args: []string{"--dir", ""}, wantErr: true},
		{name: "stray argument", args: []string{"now"}, wantErr: true},
		{name: "unknown flag", args: []string{"--nope"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := parseUp(tt.args)
			if tt.wantErr {
				if !errors.Is(err, errUsage) {
					t.Fatalf("err = %v, want a usage error", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, cfg.opts)
		})
	}
}

func TestRunCommands(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr error
		wantOut string
	}{
		{name: "no command", args: nil, wantErr: errUsage},
		{name: "unknown command", args: []string{"sideways"}, wantErr: errUsage},
		{name: "help", args: []string{"help"}, wantOut: "commands:"},
		{name: "down without a cluster is a no-op", args: []string{"down", "--dir", t.TempDir()}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			err := run(context.Background(), tt.args, &out, zap.NewNop().Sugar())
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(out.String(), tt.wantOut) {
				t.Errorf("output %q lacks %q", out.String(), tt.wantOut)
			}
		})
	}
}

func TestStatusWithoutCluster(t *testing.T) {
	err := run(context.Background(), []string{"status", "--dir", t.TempDir()}, &bytes.Buffer{}, zap.NewNop().Sugar())
	if err == nil {
		t.Fatal("status succeeded without a cluster")
	}
}
