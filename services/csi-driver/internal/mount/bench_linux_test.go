//go:build linux

package mount_test

import (
	"testing"
	"time"

	"golang.org/x/sys/unix"

	tc "github.com/meshcsi/meshcsi/services/csi-driver/internal/drivertest"
)

// BenchmarkRootPublishUnpublish measures one publish and one unpublish of a
// fresh target (open source and parent, mkdir, clone, attach; check, umount,
// rmdir): the mount layer's whole per-request cost. cpu-µs/op (user+system
// time of the process) is reported too: on a shared machine wall time is
// mostly waiting for the kernel's RCU grace periods of umount.
func BenchmarkRootPublishUnpublish(b *testing.B) {
	e := newEnv(b, "vol")
	target := tc.Target(e.kd, "vol")
	before := cpu(b)
	for b.Loop() {
		if _, err := e.m.Publish("agent", target); err != nil {
			b.Fatal(err)
		}
		if _, err := e.m.Unpublish(target); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64((cpu(b)-before).Microseconds())/float64(b.N), "cpu-µs/op")
}

func cpu(b *testing.B) time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
