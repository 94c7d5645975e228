package kube

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"syscall"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

func TestTransient(t *testing.T) {
	gr := schema.GroupResource{Group: "apps", Resource: "daemonsets"}
	refused := &url.Error{Op: "Get", URL: "https://10.0.0.1:6443", Err: &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}}
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"429", apierrors.NewTooManyRequests("slow down", 1), true},
		{"500 (webhook unreachable)", apierrors.NewInternalError(errors.New("failed calling webhook")), true},
		{"503", apierrors.NewServiceUnavailable("restarting"), true},
		{"504 timeout", apierrors.NewTimeoutError("timeout", 1), true},
		{"server timeout", apierrors.NewServerTimeout(gr, "delete", 1), true},
		{"expired continue token", apierrors.NewResourceExpired("too old"), true},
		{"connection refused", fmt.Errorf("failed to list pods: %w", refused), true},
		{"connection reset", &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}, true},
		{"unexpected EOF", io.ErrUnexpectedEOF, true},
		{"forbidden", apierrors.NewForbidden(gr, "x", errors.New("rbac")), false},
		{"invalid (admission policy)", apierrors.NewInvalid(schema.GroupKind{Kind: "DaemonSet"}, "x", nil), false},
		{"not found", apierrors.NewNotFound(gr, "x"), false},
		{"conflict", apierrors.NewConflict(gr, "x", errors.New("uid")), false},
		{"plain error", errors.New("bad config"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Transient(tt.err); got != tt.want {
				t.Fatalf("Transient(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}

func TestRetry(t *testing.T) {
	old := Backoff
	Backoff.Duration = time.Millisecond
	t.Cleanup(func() { Backoff = old })
	ctx := context.Background()

	calls := 0
	err := Retry(ctx, nil, "get", func(context.Context) error {
		calls++
		if calls < 3 {
			return apierrors.NewServiceUnavailable("restarting")
		}
		return nil
	})
	if err != nil || calls != 3 {
		t.Fatalf("Retry() = %v after %d calls; want success on the third", err, calls)
	}

	calls = 0
	forbidden := apierrors.NewForbidden(schema.GroupResource{Resource: "pods"}, "x", errors.New("rbac"))
	err = Retry(ctx, nil, "get", func(context.Context) error { calls++; return forbidden })
	if !apierrors.IsForbidden(err) || calls != 1 {
		t.Fatalf("Retry() = %v after %d calls; want the permanent error at once", err, calls)
	}

	cctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	err = Retry(cctx, nil, "get", func(context.Context) error { return apierrors.NewTooManyRequests("busy", 1) })
	if !errors.Is(err, context.DeadlineExceeded) || !apierrors.IsTooManyRequests(err) {
		t.Fatalf("Retry() = %v; want the deadline, wrapping the last API error", err)
	}
}
