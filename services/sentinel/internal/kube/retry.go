package kube

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"time"

	"go.uber.org/zap"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/apimachinery/pkg/util/wait"
)

// Backoff paces Retry: from a quarter second, doubling, to at most 30
// seconds between attempts, for as long as the context lasts (a sentinel may
// wait for weeks, across API server upgrades).
var Backoff = wait.Backoff{Duration: 250 * time.Millisecond, Factor: 2, Jitter: 0.2, Steps: 1 << 30, Cap: 30 * time.Second}

// Transient reports whether err is worth retrying: the API server or the
// network will likely answer differently soon. Timeouts, 429 Too Many
// Requests, 5xx answers (a webhook the API server cannot reach included),
// an expired LIST continue token, and the connection errors an API server
// restart causes. Anything else (Forbidden, Invalid, NotFound, Conflict, a
// bad configuration) is permanent.
func Transient(err error) bool {
	if err == nil {
		return false
	}
	switch {
	case apierrors.IsServerTimeout(err), apierrors.IsTimeout(err), apierrors.IsTooManyRequests(err),
		apierrors.IsInternalError(err), apierrors.IsServiceUnavailable(err), apierrors.IsUnexpectedServerError(err),
		apierrors.IsResourceExpired(err), apierrors.IsGone(err):
		return true
	}
	var st apierrors.APIStatus
	if errors.As(err, &st) {
		return st.Status().Code >= 500
	}
	if utilnet.IsConnectionRefused(err) || utilnet.IsConnectionReset(err) || utilnet.IsProbableEOF(err) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EPIPE) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// Retry calls fn until it succeeds, fails permanently (see Transient), or
// ctx ends, backing off between attempts and logging each transient error.
// what names the request in the log ("delete DaemonSet ns/name").
func Retry(ctx context.Context, log *zap.Logger, what string, fn func(context.Context) error) error {
	var last error
	attempt := 0
	err := Backoff.DelayFunc().Until(ctx, true, true, func(ctx context.Context) (bool, error) {
		attempt++
		last = fn(ctx)
		if last == nil {
			return true, nil
		}
		if !Transient(last) || ctx.Err() != nil {
			return false, last
		}
		if log != nil {
			log.Warn("transient API error; retrying", zap.String("request", what), zap.Int("attempt", attempt), zap.Error(last))
		}
		return false, nil
	})
	if err != nil && last != nil && !errors.Is(err, last) {
		// The context ended while retrying: say what the API server last said.
		return fmt.Errorf("%w (last error: %w)", err, last)
	}
	return err
}
