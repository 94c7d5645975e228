package lease

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

func cfg(client *fake.Clientset, id string) Config {
	return Config{Client: client, Namespace: "ns", Name: "r-sentinel", Identity: id, Logger: zap.NewNop(),
		LeaseDuration: 2 * time.Second, RenewDeadline: 1500 * time.Millisecond, RetryPeriod: 100 * time.Millisecond}
}

func TestOneHolderAtATime(t *testing.T) {
	client := fake.NewClientset()
	var active, maxActive, runs atomic.Int32
	work := func(ctx context.Context) error {
		n := active.Add(1)
		for {
			m := maxActive.Load()
			if n <= m || maxActive.CompareAndSwap(m, n) {
				break
			}
		}
		time.Sleep(300 * time.Millisecond)
		active.Add(-1)
		runs.Add(1)
		return nil
	}
	errs := make(chan error, 2)
	for _, id := range []string{"a", "b"} {
		go func() { errs <- Run(context.Background(), cfg(client, id), work) }()
	}
	for range 2 {
		select {
		case err := <-errs:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("a contender never got the lease")
		}
	}
	if runs.Load() != 2 || maxActive.Load() != 1 {
		t.Fatalf("runs=%d max concurrent=%d; want 2 runs, never concurrent", runs.Load(), maxActive.Load())
	}
}

func TestWorkErrorReturned(t *testing.T) {
	boom := errors.New("boom")
	err := Run(context.Background(), cfg(fake.NewClientset(), "a"), func(context.Context) error { return boom })
	if !errors.Is(err, boom) {
		t.Fatalf("Run() = %v, want boom", err)
	}
}

func TestCancelledWhileWaiting(t *testing.T) {
	client := fake.NewClientset()
	hold := make(chan struct{})
	go func() {
		_ = Run(context.Background(), cfg(client, "holder"), func(context.Context) error { <-hold; return nil })
	}()
	defer close(hold)
	time.Sleep(300 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	ran := false
	err := Run(ctx, cfg(client, "waiter"), func(context.Context) error { ran = true; return nil })
	if ran || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Run() = %v, ran=%v; want the deadline and no work", err, ran)
	}
}

func TestRequiresSettings(t *testing.T) {
	if err := Run(context.Background(), Config{}, func(context.Context) error { return nil }); err == nil {
		t.Fatal("Run() accepted an empty Config")
	}
}

func TestReleasedAfterWork(t *testing.T) {
	client := fake.NewClientset()
	c := cfg(client, "first")
	c.LeaseDuration = time.Minute // a successor could not wait for expiry
	c.RenewDeadline = 40 * time.Second
	if err := Run(context.Background(), c, func(context.Context) error { return nil }); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	second := c
	second.Identity = "second"
	ran := false
	if err := Run(ctx, second, func(context.Context) error { ran = true; return nil }); err != nil || !ran {
		t.Fatalf("successor: err=%v ran=%v; want the released lease taken at once", err, ran)
	}
}

func TestNotReleasedWhenRemovedByWork(t *testing.T) {
	client := fake.NewClientset()
	core, logs := observer.New(zap.DebugLevel)
	c := cfg(client, "a")
	c.Logger = zap.New(core)
	c.RetryPeriod = time.Second // renewals are not what this test is about
	err := Run(context.Background(), c, func(ctx context.Context) error {
		if err := client.CoordinationV1().Leases("ns").Delete(ctx, "r-sentinel", metav1.DeleteOptions{}); err != nil {
			return err
		}
		return ErrRemovedByWork
	})
	if err != nil {
		t.Fatalf("Run() = %v, want nil", err)
	}
	// A release of a Lease that is gone could only fail and log it.
	if n := logs.FilterMessage("failed to release the sentinel lease").Len(); n != 0 {
		t.Fatalf("tried to release the lease the work removed (%d failures logged)", n)
	}
}
