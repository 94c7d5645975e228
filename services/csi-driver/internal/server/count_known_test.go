package server_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/meshcsi/meshcsi/services/csi-driver/internal/config"
	tc "github.com/meshcsi/meshcsi/services/csi-driver/internal/drivertest"
	"github.com/meshcsi/meshcsi/services/csi-driver/internal/mount"
	"github.com/meshcsi/meshcsi/services/csi-driver/internal/mount/mounttest"
	"github.com/meshcsi/meshcsi/services/csi-driver/internal/server"
)

// unreadableMounter cannot read the mount table at start.
type unreadableMounter struct{ *mounttest.Fake }

func (unreadableMounter) Recover() (map[string]int, error) {
	return nil, errors.New("open /proc/self/mountinfo: too many open files")
}

// TestPublishedCountKnown: meshcsi_published_volumes_known is 1 only once the
// start-up count of the mount table succeeded. When it failed, the gauge of
// published volumes counts only what this instance publishes, so it stays 0
// and the sentinel does not take that count for "no volume on this node".
func TestPublishedCountKnown(t *testing.T) {
	for _, tt := range []struct {
		name    string
		mounter func(*mounttest.Fake) mount.Mounter
		want    float64
	}{
		{"mount table read", func(f *mounttest.Fake) mount.Mounter { return f }, 1},
		{"mount table unreadable", func(f *mounttest.Fake) mount.Mounter { return unreadableMounter{f} }, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := tc.TempDir(t, "known")
			cfg := config.Config{
				Endpoint: filepath.Join(dir, "csi.sock"), DriverName: "csi.meshcsi.io", NodeID: "n",
				Sources: []config.Source{{Name: tc.Source, Dir: "/run/agent"}}, KubeletDir: filepath.Join(dir, "kubelet"),
			}
			core, logs := observer.New(zap.InfoLevel)
			reg := prometheus.NewRegistry()
			srv, err := server.New(server.Options{Config: cfg, Logger: zap.New(core), Registry: reg,
				Mounter: tt.mounter(mounttest.NewFake()), ShutdownTimeout: 5 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- srv.Run(ctx) }()
			t.Cleanup(func() {
				cancel()
				if err := <-done; err != nil {
					t.Errorf("Run = %v", err)
				}
			})
			// Wait for the count's outcome itself: the gauge set, or the
			// failure logged.
			waitFor(t, "the start-up count", func() bool {
				if tt.want == 1 {
					return known(t, reg) == 1
				}
				return logs.FilterMessage("failed to read the mount table; published volumes are not counted").Len() == 1
			})
			if got := known(t, reg); got != tt.want {
				t.Fatalf("meshcsi_published_volumes_known = %v, want %v", got, tt.want)
			}
		})
	}
}

// known gathers meshcsi_published_volumes_known from reg.
func known(t *testing.T, reg *prometheus.Registry) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "meshcsi_published_volumes_known" {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatal("meshcsi_published_volumes_known is not registered")
	return -1
}
