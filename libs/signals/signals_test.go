package signals

import (
	"context"
	"errors"
	"os"
	"syscall"
	"testing"
	"time"
)

func TestFirstSignalCancelsSecondExits(t *testing.T) {
	exited := make(chan int, 1)
	exit = func(code int) { exited <- code }
	t.Cleanup(func() { exit = os.Exit })

	ch := make(chan os.Signal, 2)
	ctx, stop := notifyContext(context.Background(), ch, syscall.SIGUSR2)
	t.Cleanup(stop)

	ch <- syscall.SIGTERM
	select {
	case <-ctx.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("context not cancelled by the first signal")
	}
	var sigErr *Error
	if !errors.As(context.Cause(ctx), &sigErr) || sigErr.Signal != syscall.SIGTERM {
		t.Fatalf("cause = %v, want SIGTERM", context.Cause(ctx))
	}
	ch <- syscall.SIGTERM
	select {
	case code := <-exited:
		if code != 1 {
			t.Fatalf("exit code %d, want 1", code)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("second signal did not exit")
	}
}

func TestStopReleasesWithoutExit(t *testing.T) {
	exit = func(int) { t.Error("exit called after stop") }
	t.Cleanup(func() { exit = os.Exit })
	ctx, stop := Context(context.Background())
	stop()
	if !errors.Is(context.Cause(ctx), context.Canceled) {
		t.Fatalf("cause = %v, want Canceled", context.Cause(ctx))
	}
}
