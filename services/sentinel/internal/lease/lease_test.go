package lease

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

func cfg(client *fake.Clientset, id string) Config {
	return Config{Client: client.CoordinationV1(), Namespace: "ns", Name: "r-sentinel", Identity: id, Logger: zap.NewNop(),
		LeaseDuration: 2 * time.Second, RenewDeadline: 1500 * time.Millisecond, RetryPeriod: 100 * time.Millisecond}
}

// observe is how long a test watches for something that must not happen.
const observe = 500 * time.Millisecond

func TestOneHolderAtATime(t *testing.T) {
	client := fake.NewClientset()
	started := make(chan string, 2)
	release := make(chan struct{})
	work := func(id string) func(context.Context) error {
		return func(context.Context) error {
			started <- id
			<-release
			return nil
		}
	}
	errs := make(chan error, 2)
	for _, id := range []string{"a", "b"} {
		go func() { errs <- Run(context.Background(), cfg(client, id), work(id)) }()
	}
	var first string
	select {
	case first = <-started:
	case <-time.After(20 * time.Second):
		t.Fatal("no contender got the lease")
	}
	// The other contender must not start while the first holds the lease.
	select {
	case second := <-started:
		t.Fatalf("%s started while %s held the lease", second, first)
	case <-time.After(observe):
	}
	close(release)
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
	if len(started) != 1 {
		t.Fatalf("the second contender did not run after the first released the lease")
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
	hold, holding := make(chan struct{}), make(chan struct{})
	go func() {
		_ = Run(context.Background(), cfg(client, "holder"), func(context.Context) error { close(holding); <-hold; return nil })
	}()
	defer close(hold)
	<-holding
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
