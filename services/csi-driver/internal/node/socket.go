package node

import (
	"context"
	"path/filepath"
	"sync/atomic"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
)

// DefaultSocketPoll is how often a waiting publish tries its source's
// socket again.
const DefaultSocketPoll = 50 * time.Millisecond

// waitSocket waits until the socket of source accepts a connection, at most
// s.socketWait, and returns nil, a refusal with errUnavailable naming the
// source and socket when it did not, or the context's error when the call
// was cancelled. It holds no lock: other targets, and unpublish of this
// one, proceed meanwhile. The wait is observed in a histogram.
func (s *Service) waitSocket(ctx context.Context, source string) error {
	sock := s.sockets[source]
	if sock == "" {
		return nil
	}
	start := time.Now()
	if s.ready[source].check(sock, start) {
		s.metrics.ObserveSocketWait(source, "ready", time.Since(start))
		return nil
	}
	s.metrics.Waiting(source, 1)
	defer s.metrics.Waiting(source, -1)
	wctx, cancel := context.WithTimeout(ctx, s.socketWait)
	defer cancel()
	err := wait.PollUntilContextCancel(wctx, s.socketPoll, false, func(context.Context) (bool, error) {
		return s.ready[source].check(sock, time.Now()), nil
	})
	d := time.Since(start)
	switch {
	case err == nil:
		s.metrics.ObserveSocketWait(source, "ready", d)
		return nil
	case ctx.Err() != nil:
		s.metrics.ObserveSocketWait(source, "canceled", d)
		return ctx.Err()
	default:
		s.metrics.ObserveSocketWait(source, "timeout", d)
		return refuse(errUnavailable, "volume_context[%s] %q: the agent's socket %s did not accept a connection within %v; the kubelet retries", KeySource, source, sock, s.socketWait)
	}
}

// socketPath is where source dir's socket file is.
func socketPath(dir, file string) string { return filepath.Join(dir, file) }

// ReadyFor is how long a socket that accepted a connection counts as ready
// while it is still the same file (same device and inode): a publish storm
// then costs one lstat per call, not a connection to the agent each.
const ReadyFor = time.Second

// readiness remembers the socket file that last accepted a connection.
type readiness struct {
	last atomic.Pointer[readySocket]
}

type readySocket struct {
	id fileID
	at time.Time
}

// check reports whether the socket at path accepts connections: the same
// socket file that did so less than ReadyFor ago, or one that does now.
func (r *readiness) check(path string, now time.Time) bool {
	id, ok := socketID(path)
	if !ok {
		return false
	}
	if l := r.last.Load(); l != nil && l.id == id && now.Sub(l.at) < ReadyFor {
		return true
	}
	if !accepts(path) {
		return false
	}
	r.last.Store(&readySocket{id: id, at: now})
	return true
}
